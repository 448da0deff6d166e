//! The client-side rate limiter on AWS: every request waits for its API class's token
//! ([`crate::cloud::limit::RateLimiter`]) before it goes out, so a process never exceeds AWS's request limits
//! however many applications it runs. Sits in the SDK's HTTP client, below its retries: each attempt is a request
//! AWS meters, and each takes a token.
//!
//! The class comes from the signed request itself: the service from the SigV4 credential scope, the operation
//! from the query protocol's `Action` (EC2, RDS) or, for Route 53's REST API, from the method and path.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::cloud::limit::RateLimiter;
use crate::run::Clock;

/// An HTTP client whose requests wait for the limiter.
#[derive(Debug, Clone)]
pub struct Paced {
    inner: SharedHttpClient,
    limiter: Arc<RateLimiter>,
    clock: Clock,
}

impl Paced {
    pub fn new(inner: SharedHttpClient, limiter: Arc<RateLimiter>, clock: Clock) -> Self {
        Self { inner, limiter, clock }
    }
}

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
        SharedHttpConnector::new(PacedConnector { inner, limiter: self.limiter.clone(), clock: self.clock.clone() })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
    clock: Clock,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let call = operation(&request);
        let (inner, limiter, clock) = (self.inner.clone(), self.limiter.clone(), self.clock.clone());
        HttpConnectorFuture::new(async move {
            if let Some((service, op, region)) = call {
                limiter.acquire(&clock, &service, &op, &region).await;
            }
            inner.call(request).await
        })
    }
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
