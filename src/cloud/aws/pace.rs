//! The client-side rate limiter on AWS: every request waits for its API class's token
//! ([`crate::cloud::limit::RateLimiter`]) before it goes out, so a process never exceeds AWS's request limits
//! however many applications it runs. Sits in the SDK's HTTP client, below its retries: each attempt is a request
//! AWS meters, and each takes a token.
//!
//! The class comes from the signed request itself: the service from the SigV4 credential scope, the operation
//! from the query protocol's `Action` (EC2, RDS) or, for Route 53's REST API, from the method and path.
//!
//! The same client runs every request under its region's circuit ([`crate::cloud::health`]): a request to an open
//! region is refused without being sent (a connector error of its own, [`Unreachable`], which the SDK does not
//! retry and `error::from_sdk` maps to `RegionUnreachable`), and what each attempt saw (an answer; a 5xx, a
//! connection error or a timeout) is recorded for its region.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use aws_smithy_runtime_api::client::result::ConnectorError;

use crate::cloud::health::{self, RegionHealth, Seen};
use crate::cloud::limit::RateLimiter;
use crate::run::Clock;

/// An HTTP client whose requests wait for the limiter (when there is one) and go through their region's circuit
/// (when there are circuits).
#[derive(Debug, Clone)]
pub struct Paced {
    inner: SharedHttpClient,
    limiter: Option<Arc<RateLimiter>>,
    health: Option<Arc<RegionHealth>>,
    clock: Clock,
}

impl Paced {
    pub fn new(inner: SharedHttpClient, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        Self { inner, limiter: Some(limiter), health: None, clock }
    }

    /// A client with an optional limiter and optional circuits.
    pub fn with(
        inner: SharedHttpClient,
        limiter: Option<Arc<RateLimiter>>,
        health: Option<Arc<RegionHealth>>,
        clock: Clock,
    ) -> Self {
        Self { inner, limiter, health, clock }
    }
}

/// The connector error of a request refused because its region's circuit is open: the circuit's key and state, so
/// `error::from_sdk` reports it with the operation as the adapter names it (region, since when, why, what the call
/// needed).
#[derive(Debug)]
pub struct Unreachable {
    pub key: String,
    pub open: health::Open,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is unreachable since {} ({}): not sent", self.key, self.open.since, self.open.evidence)
    }
}

impl std::error::Error for Unreachable {}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, the proxy from the environment), as
/// `aws-smithy-runtime` builds it when no client is given: pacing wraps it, so it must be built here.
pub fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut b =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.set_proxy_config(Some(ProxyConfig::from_env()));
        b.build()
    })
}

impl HttpClient for Paced {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(PacedConnector {
            inner,
            limiter: self.limiter.clone(),
            health: self.health.clone(),
            clock: self.clock.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    limiter: Option<Arc<RateLimiter>>,
    health: Option<Arc<RegionHealth>>,
    clock: Clock,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let call = operation(&request);
        let scope = signed_scope(&request);
        let (inner, limiter, health, clock) =
            (self.inner.clone(), self.limiter.clone(), self.health.clone(), self.clock.clone());
        HttpConnectorFuture::new(async move {
            if let (Some(limiter), Some((service, op, region))) = (&limiter, &call) {
                limiter.acquire(&clock, service, op, region).await;
            }
            match (health, scope) {
                (Some(h), Some((service, region, op))) => {
                    let key = health::key(&service, &region);
                    let what = format!("{service} {op}");
                    h.guard(
                        &key,
                        &what,
                        inner.call(request),
                        |r| judge(r, &what),
                        |open| ConnectorError::user(Box::new(Unreachable { key: key.clone(), open: open.clone() })),
                    )
                    .await
                }
                _ => inner.call(request).await,
            }
        })
    }
}

/// What an attempt's result says of its region: any answer below 500 is an answer (a 4xx too); a 5xx, a
/// connection error or a timeout is a failure; a refusal or a local error (credentials, TLS setup) says nothing.
fn judge(r: &Result<aws_smithy_runtime_api::http::Response, ConnectorError>, what: &str) -> Seen {
    match r {
        Ok(resp) if resp.status().as_u16() >= 500 => {
            Seen::ServerError(format!("HTTP {} to {what}", resp.status().as_u16()))
        }
        Ok(_) => Seen::Answered,
        Err(e) if e.is_timeout() => Seen::Failed(format!("{what} timed out")),
        Err(e) if e.is_io() => Seen::Failed(format!("connection error on {what}: {e}")),
        Err(e) if e.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError) => {
            Seen::Failed(format!("connection lost on {what}: {e}"))
        }
        Err(_) => Seen::Nothing,
    }
}

/// `(service, region, operation)` of any signed request (the operation as well as it can be told: a query
/// protocol's `Action`, a JSON protocol's `X-Amz-Target`, else the method and path).
fn signed_scope(req: &HttpRequest) -> Option<(String, String, String)> {
    let auth = req.headers().get("authorization")?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let region = scope.split('/').nth(2)?.to_string();
    let service = scope.split('/').nth(3)?.to_string();
    let from_body = req
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|body| body.split('&').find_map(|kv| kv.strip_prefix("Action=")).map(str::to_string));
    let op = from_body
        .or_else(|| req.headers().get("x-amz-target").and_then(|t| t.rsplit('.').next()).map(str::to_string))
        .unwrap_or_else(|| format!("{} {}", req.method(), req.uri().split('?').next().unwrap_or_default()));
    Some((service, region, op))
}

/// `(service, operation, region)` of a signed request, for the calls the limiter meters (EC2, RDS, Route 53).
fn operation(req: &HttpRequest) -> Option<(String, String, String)> {
    let auth = req.headers().get("authorization")?;
    // AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let region = scope.split('/').nth(2)?.to_string();
    let service = scope.split('/').nth(3)?.to_string();
    let op = match service.as_str() {
        "ec2" | "rds" => {
            let body = std::str::from_utf8(req.body().bytes()?).ok()?;
            body.split('&').find_map(|kv| kv.strip_prefix("Action="))?.to_string()
        }
        "route53" => {
            let path = req.uri().split('?').next().unwrap_or_default();
            if req.method() == "POST" && path.ends_with("/healthcheck") {
                "CreateHealthCheck".to_string()
            } else {
                format!("{} {path}", req.method())
            }
        }
        _ => return None,
    };
    Some((service, op, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn req(method: &str, uri: &str, scope: &str, body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_string()));
        r.set_method(method).unwrap_or_else(|e| panic!("{e}"));
        r.set_uri(uri).unwrap_or_else(|e| panic!("{e}"));
        r.headers_mut().insert(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKID/20261202/{scope}/aws4_request, SignedHeaders=host, Signature=x"),
        );
        r
    }

    #[test]
    fn requests_are_classed_from_their_signature_and_action() {
        let ec2 = req(
            "POST",
            "https://ec2.us-west-2.amazonaws.com/",
            "us-west-2/ec2",
            "Action=CreateNatGateway&Version=2016-11-15",
        );
        assert_eq!(operation(&ec2), Some(("ec2".into(), "CreateNatGateway".into(), "us-west-2".into())));
        let rds =
            req("POST", "http://127.0.0.1:5000/", "us-west-2/rds", "Version=2014-10-31&Action=DescribeDBInstances");
        assert_eq!(operation(&rds), Some(("rds".into(), "DescribeDBInstances".into(), "us-west-2".into())));
        let hc = req("POST", "https://route53.amazonaws.com/2013-04-01/healthcheck", "us-east-1/route53", "<x/>");
        assert_eq!(operation(&hc).map(|o| o.1), Some("CreateHealthCheck".into()));
        let elb = req(
            "POST",
            "https://elasticloadbalancing.us-west-2.amazonaws.com/",
            "us-west-2/elasticloadbalancing",
            "Action=DescribeTargetHealth",
        );
        assert_eq!(operation(&elb), None, "not metered here");
        let unsigned = HttpRequest::new(SdkBody::from("Action=DescribeVolumes"));
        assert_eq!(operation(&unsigned), None);
    }
}
