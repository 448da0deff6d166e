//! From the SDK's `SdkError` to the port's [`CloudError`]: service, operation, AWS error code, message and request
//! id, classified by the port's one classifier ([`crate::cloud::classify`]), which the simulator's faults use too.
//! Failures with no AWS answer get codes of their own: `Timeout`, `ConnectionError` (both transient),
//! `ResponseError` (an unparseable answer, transient), `DispatchFailure` (credentials, endpoint, TLS: fatal).

use std::error::Error as StdError;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::RequestId;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloud::CloudError;

pub use crate::cloud::error::is_not_found_code;

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
    CloudError {
        service: service.to_string(),
        operation: operation.to_string(),
        region: region.to_string(),
        code: code.to_string(),
        message: message.into(),
        request_id,
        kind: crate::cloud::classify(code, status),
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
    if let SdkError::DispatchFailure(_) = &err
        && let Some(u) = unreachable(&err)
    {
        // not sent: the region's circuit is open
        return crate::cloud::health::RegionHealth::refusal(&u.key, &u.open, service, operation);
    }
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(e).to_string());
            let request_id = header_id.or_else(|| e.meta().request_id().map(str::to_string));
            cloud_error(service, operation, region, &code, message, request_id, status)
        }
        SdkError::TimeoutError(_) => {
            cloud_error(service, operation, region, "Timeout", DisplayErrorContext(&err).to_string(), None, None)
        }
        SdkError::DispatchFailure(d) => {
            let code = if d.is_timeout() {
                "Timeout"
            } else if d.is_io() || d.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError) {
                // a connection reset or closed before the answer: the connector calls it transient
                "ConnectionError"
            } else {
                "DispatchFailure"
            };
            // credentials, endpoint or TLS problems (`is_user`, `other`) do not go away on their own: DispatchFailure
            // is fatal, Timeout and ConnectionError transient
            cloud_error(service, operation, region, code, DisplayErrorContext(&err).to_string(), None, None)
        }
        SdkError::ResponseError(_) => cloud_error(
            service,
            operation,
            region,
            "ResponseError",
            DisplayErrorContext(&err).to_string(),
            header_id,
            status,
        ),
        SdkError::ConstructionFailure(_) => {
            cloud_error(service, operation, region, "InvalidRequest", DisplayErrorContext(&err).to_string(), None, None)
        }
        _ => {
            cloud_error(service, operation, region, "Unknown", DisplayErrorContext(&err).to_string(), header_id, status)
        }
    }
}

/// The refusal of a request whose region's circuit is open, if that is what `err` is.
fn unreachable<E: StdError + 'static>(err: &E) -> Option<&super::pace::Unreachable> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(u) = e.downcast_ref::<super::pace::Unreachable>() {
            return Some(u);
        }
        cur = e.source();
    }
    None
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
        assert!(t.is_throttling() && t.is_retryable() && !t.is_not_found());
        let n = cloud_error(
            "rds",
            "DescribeDBInstances",
            "us-east-1",
            "DBInstanceNotFound",
            "gone",
            Some("r-1".into()),
            Some(404),
        );
        assert!(n.is_not_found() && !n.is_retryable());
        let n2 = cloud_error("ec2", "DescribeVolumes", "us-east-1", "InvalidVolume.NotFound", "gone", None, Some(400));
        assert!(n2.is_not_found());
        let s = cloud_error("elbv2", "CreateLoadBalancer", "us-east-1", "InternalFailure", "oops", None, Some(500));
        assert!(s.is_retryable() && !s.is_throttling());
        let c =
            cloud_error("ec2", "RunInstances", "us-west-2", "InsufficientInstanceCapacity", "none", None, Some(500));
        assert_eq!(c.kind, crate::cloud::ErrorKind::Capacity);
        assert!(c.is_retryable(), "capacity comes back: the step may be retried");
        let f = cloud_error(
            "rds",
            "RestoreDBInstanceFromDBSnapshot",
            "us-west-2",
            "InvalidParameterValue",
            "bad",
            None,
            Some(400),
        );
        assert!(!f.is_retryable() && !f.is_throttling() && !f.is_not_found());
        assert_eq!(
            f.to_string(),
            "rds RestoreDBInstanceFromDBSnapshot in us-west-2 failed: InvalidParameterValue: bad",
            "the message names service, operation, code and message"
        );
    }
}
