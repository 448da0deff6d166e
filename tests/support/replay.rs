//! An in-process HTTP client for the AWS SDK that answers every request with a function's response: the recorded
//! responses of the offline adapter tests. It is what `aws_smithy_http_client::test_util::infallible_client_fn`
//! does, written on the SDK's public client traits so the test build turns on no extra feature of the SDK's crates
//! and reuses everything `cargo run` built (that feature alone rebuilt the whole SDK for the tests).
#![allow(dead_code)]

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::fmt;
use std::sync::Arc;

type Respond = dyn Fn(http::Request<SdkBody>) -> http::Response<SdkBody> + Send + Sync;

#[derive(Clone)]
struct FnClient(Arc<Respond>);

impl fmt::Debug for FnClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClient")
    }
}

impl HttpConnector for FnClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let answer = request.try_into_http1x().map_err(|e| ConnectorError::other(Box::new(e), None)).and_then(|req| {
            HttpResponse::try_from((self.0)(req)).map_err(|e| ConnectorError::other(Box::new(e), None))
        });
        HttpConnectorFuture::ready(answer)
    }
}

impl HttpClient for FnClient {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// A client answering each request with `respond(request)`.
pub fn infallible_client_fn(
    respond: impl Fn(http::Request<SdkBody>) -> http::Response<SdkBody> + Send + Sync + 'static,
) -> SharedHttpClient {
    SharedHttpClient::new(FnClient(Arc::new(respond)))
}
