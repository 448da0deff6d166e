//! The port's error classifier: one table of AWS error codes, read by the AWS adapter (for what AWS answered) and by
//! the simulator (for the faults a world file injects), so a code means the same thing on both backends.
//!
//! Rules: a code is classified once, into an [`ErrorKind`]; callers ask the kind (`is_retryable`, `is_not_found`),
//! never the code. Capacity errors are retryable: capacity comes back, and a restore step that retries later (or in
//! another zone) is what an operator would do by hand.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is, and so how to treat it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The call was throttled: back off harder, then try again.
    Throttling,
    /// No capacity for the requested instance class or type right now (`InsufficientDBInstanceCapacity`,
    /// `InsufficientInstanceCapacity`): a later attempt may succeed.
    Capacity,
    /// Try again later: 5xx, a timeout, a dropped connection, a resource in a state that will change.
    Transient,
    /// The resource named in the call does not exist.
    NotFound,
    /// Refused by drconsole's account guard before anything was sent.
    Refused,
    /// Not sent: the region's circuit is open ([`crate::cloud::health`]), it did not answer. Counted as
    /// retryable (the region may come back, and a listing across regions carries on without it), but a step does
    /// not retry on it: it fails at once naming the region (`actions::kit::cerr`), and its `on_failure` applies.
    Unreachable,
    /// Anything else: another attempt would fail the same way (bad parameters, access denied...).
    #[default]
    Fatal,
}

impl ErrorKind {
    /// Another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttling | ErrorKind::Capacity | ErrorKind::Transient | ErrorKind::Unreachable)
    }
}

/// Error codes the SDK (and AWS) treat as throttling.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "Rate exceeded",
];

/// Error codes that say "no capacity for that right now".
const CAPACITY: &[&str] = &[
    "InsufficientDBInstanceCapacity",
    "InsufficientDBInstanceCapacityFault",
    "InsufficientDBClusterCapacity",
    "InsufficientDBClusterCapacityFault",
    "InsufficientStorageClusterCapacity",
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientAddressCapacity",
    "InsufficientCapacity",
    "InsufficientCapacityException",
];

/// Error codes that say "try again later" without being throttling or capacity.
const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "IDPCommunicationError",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "IncorrectState",
    "IncorrectInstanceState",
    "InvalidSnapshot.InUse",
    "ResourceInUseException",
    "ResourceInUse",
    "ScalingActivityInProgress",
    "WAFUnavailableEntityException",
    "ConcurrentModification",
    "ConcurrentModificationException",
    // the adapter's own codes for failures with no AWS answer (see `aws::error::from_sdk`)
    "Timeout",
    "ConnectionError",
    "ResponseError",
];

/// Error codes that say the region did not answer (rather than refused or failed the request): unavailable, timed
/// out, internal failures, and the adapter's own codes for a call that got no answer at all.
const NO_ANSWER: &[&str] = &[
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "Timeout",
    "RequestTimeout",
    "RequestTimeoutException",
    "ConnectionError",
    "DispatchFailure",
    "ResponseError",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
];

/// The region did not answer the call (see [`NO_ANSWER`]): what the console's region badge and the run view's
/// region health count as unreachable.
pub fn is_unanswered(code: &str) -> bool {
    NO_ANSWER.contains(&code)
}

/// True for AWS error codes that mean "no such resource".
pub fn is_not_found_code(code: &str) -> bool {
    code.ends_with("NotFound")
        || code.ends_with("NotFoundFault")
        || code.ends_with("NotFoundException")
        || code.ends_with(".NotFound")
        || code.ends_with(".Malformed") && code.starts_with("InvalidAMIID")
        || code.starts_with("NoSuch")
        || matches!(code, "ResourceNotFoundException" | "WAFNonexistentItemException" | "ValidationError.NotFound")
}

/// Classifies an AWS error code, with the HTTP status when there was an answer.
pub fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    if code == super::CODE_ACCOUNT_MISMATCH {
        ErrorKind::Refused
    } else if code == super::health::CODE_UNREACHABLE {
        ErrorKind::Unreachable
    } else if THROTTLING.contains(&code) || status == Some(429) {
        ErrorKind::Throttling
    } else if CAPACITY.contains(&code) {
        ErrorKind::Capacity
    } else if is_not_found_code(code) {
        ErrorKind::NotFound
    } else if TRANSIENT.contains(&code) || status.is_some_and(|s| s >= 500) {
        ErrorKind::Transient
    } else {
        ErrorKind::Fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_once_for_both_backends() {
        assert_eq!(classify("RequestLimitExceeded", Some(400)), ErrorKind::Throttling);
        assert_eq!(classify("Anything", Some(429)), ErrorKind::Throttling);
        assert_eq!(classify("InsufficientDBInstanceCapacity", Some(400)), ErrorKind::Capacity);
        assert_eq!(classify("InsufficientInstanceCapacity", Some(500)), ErrorKind::Capacity);
        assert_eq!(classify("DBInstanceNotFound", Some(404)), ErrorKind::NotFound);
        assert_eq!(classify("InvalidVolume.NotFound", Some(400)), ErrorKind::NotFound);
        assert_eq!(classify("InternalFailure", Some(500)), ErrorKind::Transient);
        assert_eq!(classify("Whatever", Some(503)), ErrorKind::Transient);
        assert_eq!(classify("ConnectionError", None), ErrorKind::Transient);
        assert_eq!(classify("InvalidParameterValue", Some(400)), ErrorKind::Fatal);
        assert_eq!(classify("DispatchFailure", None), ErrorKind::Fatal);
        assert_eq!(classify(super::super::CODE_ACCOUNT_MISMATCH, None), ErrorKind::Refused);
        assert_eq!(classify(super::super::health::CODE_UNREACHABLE, None), ErrorKind::Unreachable);
        for k in [ErrorKind::Throttling, ErrorKind::Capacity, ErrorKind::Transient, ErrorKind::Unreachable] {
            assert!(k.is_retryable(), "{k:?}");
        }
        for k in [ErrorKind::NotFound, ErrorKind::Refused, ErrorKind::Fatal] {
            assert!(!k.is_retryable(), "{k:?}");
        }
    }
}
