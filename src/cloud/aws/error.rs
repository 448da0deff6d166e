//! From the SDK's `SdkError` to the port's [`CloudError`]: service, operation, AWS error code, message and request
//! id, classified as throttling, transient (retryable) or not-found.

use std::error::Error as StdError;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::RequestId;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloud::CloudError;

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

/// Error codes that say "try again later" without being throttling.
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
    "PriorRequestNotComplete",
    "WAFUnavailableEntityException",
    "ConcurrentModification",
    "ConcurrentModificationException",
];

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

pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING.contains(&code)
}

pub fn is_transient_code(code: &str) -> bool {
    TRANSIENT.contains(&code)
}

/// Builds a [`CloudError`] from its parts, classifying the code.
pub fn cloud_error(
    service: &str,
    operation: &str,
    region: &str,
    code: &str,
    message: impl Into<String>,
    request_id: Option<String>,
    status: Option<u16>,
) -> CloudError {
    let throttling = is_throttling_code(code) || status == Some(429);
    let server = status.is_some_and(|s| s >= 500);
    let not_found = is_not_found_code(code);
    CloudError {
        service: service.to_string(),
        operation: operation.to_string(),
        region: region.to_string(),
        code: code.to_string(),
        message: message.into(),
        request_id,
        retryable: throttling || server || is_transient_code(code),
        throttling,
        not_found,
    }
}

/// Maps an SDK error. The message keeps the whole cause chain (`DisplayErrorContext`) when the service gave no
/// message of its own (dispatch failures, timeouts, unparseable responses).
pub fn from_sdk<E>(service: &str, operation: &str, region: &str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let header_id = err.request_id().map(str::to_string);
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(e).to_string());
            let request_id = header_id.or_else(|| e.meta().request_id().map(str::to_string));
            cloud_error(service, operation, region, &code, message, request_id, status)
        }
        SdkError::TimeoutError(_) => {
            let mut c =
                cloud_error(service, operation, region, "Timeout", DisplayErrorContext(&err).to_string(), None, None);
            c.retryable = true;
            c
        }
        SdkError::DispatchFailure(d) => {
            let code = if d.is_timeout() {
                "Timeout"
            } else if d.is_io() {
                "ConnectionError"
            } else {
                "DispatchFailure"
            };
            let mut c =
                cloud_error(service, operation, region, code, DisplayErrorContext(&err).to_string(), None, None);
            // credentials, endpoint or TLS problems (`is_user`, `other`) do not go away on their own
            c.retryable = d.is_timeout() || d.is_io();
            c
        }
        SdkError::ResponseError(_) => {
            let mut c = cloud_error(
                service,
                operation,
                region,
                "ResponseError",
                DisplayErrorContext(&err).to_string(),
                header_id,
                status,
            );
            c.retryable = true;
            c
        }
        SdkError::ConstructionFailure(_) => {
            cloud_error(service, operation, region, "InvalidRequest", DisplayErrorContext(&err).to_string(), None, None)
        }
        _ => {
            cloud_error(service, operation, region, "Unknown", DisplayErrorContext(&err).to_string(), header_id, status)
        }
    }
}

/// `.map_err(sdk("rds", "DescribeDBInstances", region))`
pub fn sdk<'a, E>(
    service: &'static str,
    operation: &'static str,
    region: &'a str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> CloudError + 'a
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    move |e| from_sdk(service, operation, region, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        let t = cloud_error("ec2", "RunInstances", "us-east-1", "RequestLimitExceeded", "slow down", None, Some(400));
        assert!(t.throttling && t.retryable && !t.not_found);
        let n = cloud_error(
            "rds",
            "DescribeDBInstances",
            "us-east-1",
            "DBInstanceNotFound",
            "gone",
            Some("r-1".into()),
            Some(404),
        );
        assert!(n.not_found && !n.retryable);
        let n2 = cloud_error("ec2", "DescribeVolumes", "us-east-1", "InvalidVolume.NotFound", "gone", None, Some(400));
        assert!(n2.not_found);
        let s = cloud_error("elbv2", "CreateLoadBalancer", "us-east-1", "InternalFailure", "oops", None, Some(500));
        assert!(s.retryable && !s.throttling);
        let f = cloud_error(
            "rds",
            "RestoreDBInstanceFromDBSnapshot",
            "us-west-2",
            "InvalidParameterValue",
            "bad",
            None,
            Some(400),
        );
        assert!(!f.retryable && !f.throttling && !f.not_found);
        assert_eq!(
            f.to_string(),
            "rds RestoreDBInstanceFromDBSnapshot in us-west-2 failed: InvalidParameterValue: bad",
            "the message names service, operation, code and message"
        );
    }
}
