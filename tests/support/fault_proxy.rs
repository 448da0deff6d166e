//! A fault-injecting HTTP/1.1 reverse proxy for integration tests, put in front of moto.
//!
//! Point the AWS SDK at [`FaultProxy::endpoint`] instead of moto's endpoint. Per request the proxy
//! (1) counts it, (2) sleeps `latency`, (3) asks the hook, then the forced rules, then the seeded
//! random draw whether to inject a fault, and (4) either answers with the fault itself, without
//! forwarding (a throttled or failed request is never executed by moto), or forwards it to the
//! upstream and relays the answer.
//!
//! Error bodies follow the request's AWS protocol, so the AWS SDK for Rust parses the error code:
//! * awsJson (`X-Amz-Target` or `application/x-amz-json-*`: DynamoDB, WAFv2, Secrets Manager, KMS)
//!   and restJson (`application/json`, or a service such as Backup signed without a body):
//!   `{"__type":CODE,"message":..}` plus header `x-amzn-errortype: CODE`;
//! * awsQuery (form `Action=`: RDS, ASG, ELBv2, STS, ...): `<ErrorResponse><Error><Type>..`;
//! * ec2Query (service `ec2` or `Version=2016-11-15`): `<Response><Errors><Error><Code>..`;
//! * restXml: S3 gets an unwrapped `<Error>`, Route 53 and others the `<ErrorResponse>` form.
//!
//! Throttling uses codes from the SDK's throttling list (`Throttling`, `ThrottlingException`,
//! `RequestLimitExceeded`, `SlowDown`), status 400, except S3 (`SlowDown`, 503: a HEAD answer has
//! no body, and 503 is retried on status alone). 5xx faults are 500 or 503, both retried as
//! transient. A dropped connection (no response) reaches the SDK as a transient I/O error.
//!
//! Region modes ([`FaultConfig::region`]) make one region misbehave as a regional outage does, by the region of
//! the request's SigV4 credential scope: `Refuse` (the connection closed at once, nothing answered: what a refused
//! connection is to the SDK, which cannot be refused per region on one endpoint), `Unavailable` (503
//! ServiceUnavailable), `Reset` (the connection reset: TCP RST), `Hang` (accepted, never answered: a brownout).
//! Global services signed for the region (Route 53, IAM) answer unless [`FaultConfig::region_with_global`].
//!
//! The proxy runs on its own thread with its own tokio runtime, so tests on any runtime (or none)
//! can use it; it stops when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What to do to one request instead of (or besides) forwarding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with the protocol's throttling error (retryable); not forwarded.
    Throttle,
    /// Answer with this 5xx status and an internal-error body (retryable); not forwarded.
    ServerError(u16),
    /// Close the connection without answering; not forwarded.
    Drop,
    /// Forward (moto executes it), then close the connection without relaying the answer:
    /// "the call happened but the client never heard back".
    DropAfterForward,
    /// Wait this long, then forward (on top of `latency`): for timeout tests.
    Delay(Duration),
    /// Answer with this error (e.g. 400 `InvalidParameterValue`, not retryable); not forwarded.
    Error { status: u16, code: String, message: String },
    /// Answer with this recorded response (for an API the upstream does not emulate); not forwarded.
    Respond { status: u16, content_type: String, body: String },
}

impl Fault {
    /// Shorthand for [`Fault::Error`].
    pub fn error(status: u16, code: impl Into<String>, message: impl Into<String>) -> Fault {
        Fault::Error { status, code: code.into(), message: message.into() }
    }
}

/// How a region misbehaves ([`FaultConfig::region`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionMode {
    /// The connection is closed at once without an answer.
    Refuse,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// The connection is reset (TCP RST) without an answer.
    Reset,
    /// Accepted and never answered, until the proxy stops.
    Hang,
}

/// Global services: signed for us-east-1 but served by their own endpoints.
const GLOBAL_SERVICES: &[&str] = &["route53", "iam", "cloudfront", "organizations"];

/// One request as the proxy saw it (see [`FaultProxy::log`]).
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: std::time::SystemTime,
    pub region: Option<String>,
    pub service: Option<String>,
    pub operation: String,
    pub app: Option<String>,
}

/// A forced fault for requests whose body, `X-Amz-Target`, `METHOD path?query` or operation
/// name contains `needle`. `times: Some(n)` applies it to the first n matches only.
#[derive(Clone, Debug)]
pub struct ForcedFault {
    pub needle: String,
    pub fault: Fault,
    pub times: Option<u64>,
}

/// What the hook sees of a request.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Service from the SigV4 credential scope (`rds`, `ec2`, `s3`, ...), if signed.
    pub service: Option<String>,
    /// Region from the SigV4 credential scope (`us-east-1`, ...), if signed.
    pub region: Option<String>,
    /// The key used in [`FaultProxy::counts`]: `Action=` value, `X-Amz-Target` operation,
    /// S3 `x-id`, or `METHOD /path[?query keys]` for other REST calls.
    pub operation: String,
    pub target: Option<String>,
    pub content_type: Option<String>,
    /// Body as (lossy) UTF-8.
    pub body: String,
    /// The drconsole application its user agent names (`app/drconsole-<app>`), if any.
    pub app: Option<String>,
}

/// Per-request hook: return `Some(fault)` to force a fault. Called before the forced rules.
pub type FaultHook = Arc<dyn Fn(&RequestInfo) -> Option<Fault> + Send + Sync>;

/// Fault proxy settings. `Default` is a pure pass-through with seed 0.
#[derive(Clone, Default)]
pub struct FaultConfig {
    /// Share of requests answered with a throttling error, 0.0..=1.0.
    pub throttle_rate: f64,
    /// Share of requests answered with 500 or 503.
    pub error_5xx_rate: f64,
    /// Added to every request before anything else.
    pub latency: Duration,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// When a random drop hits: forward first (moto executes) and drop the answer.
    pub drop_after_forward: bool,
    /// Seed of the random draws (one draw per request that reaches the random stage).
    pub seed: u64,
    /// Forced faults, first matching rule wins.
    pub forced: Vec<ForcedFault>,
    /// Optional hook, asked first.
    pub hook: Option<FaultHook>,
    /// Misbehaving regions: (region, mode, global services too), asked after the hook.
    pub regions: Vec<(String, RegionMode, bool)>,
}

impl fmt::Debug for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultConfig")
            .field("throttle_rate", &self.throttle_rate)
            .field("error_5xx_rate", &self.error_5xx_rate)
            .field("latency", &self.latency)
            .field("drop_rate", &self.drop_rate)
            .field("drop_after_forward", &self.drop_after_forward)
            .field("seed", &self.seed)
            .field("forced", &self.forced)
            .field("hook", &self.hook.as_ref().map(|_| "Fn"))
            .field("regions", &self.regions)
            .finish()
    }
}

impl FaultConfig {
    /// No faults, no latency.
    pub fn passthrough() -> FaultConfig {
        FaultConfig::default()
    }

    /// Always apply `fault` to requests matching `needle`.
    pub fn force(mut self, needle: impl Into<String>, fault: Fault) -> FaultConfig {
        self.forced.push(ForcedFault { needle: needle.into(), fault, times: None });
        self
    }

    /// Apply `fault` to the first `times` requests matching `needle`.
    pub fn force_times(mut self, needle: impl Into<String>, fault: Fault, times: u64) -> FaultConfig {
        self.forced.push(ForcedFault { needle: needle.into(), fault, times: Some(times) });
        self
    }

    /// Always answer requests matching `needle` with this error, e.g.
    /// `force_error("Action=RestoreDBInstanceFromDBSnapshot", 400, "InvalidParameterValue", "..")`.
    pub fn force_error(
        self,
        needle: impl Into<String>,
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> FaultConfig {
        self.force(needle, Fault::error(status, code, message))
    }

    /// Requests to `region`'s own endpoints misbehave this way (global services signed for it still answer).
    pub fn region(mut self, region: impl Into<String>, mode: RegionMode) -> FaultConfig {
        self.regions.push((region.into(), mode, false));
        self
    }

    /// As [`FaultConfig::region`], global services signed for the region (Route 53, IAM) too.
    pub fn region_with_global(mut self, region: impl Into<String>, mode: RegionMode) -> FaultConfig {
        self.regions.push((region.into(), mode, true));
        self
    }

    /// Set the per-request hook.
    pub fn with_hook(mut self, hook: impl Fn(&RequestInfo) -> Option<Fault> + Send + Sync + 'static) -> FaultConfig {
        self.hook = Some(Arc::new(hook));
        self
    }
}

/// A running fault proxy on 127.0.0.1, stopped on drop.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: use it as the AWS SDK `endpoint_url`.
    pub endpoint: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`, e.g. `MotoServer::endpoint`).
    /// Panics if it cannot bind or start its runtime.
    pub fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("fault proxy could not bind 127.0.0.1:0: {e}"));
        let port = listener.local_addr().expect("fault proxy local addr").port();
        listener.set_nonblocking(true).expect("fault proxy: set_nonblocking");
        let shared =
            Arc::new(Shared { upstream, active: Mutex::new(Active::new(config)), stats: Mutex::new(Stats::default()) });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fault proxy could not build its runtime: {e}"));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                runtime.block_on(serve(listener, thread_shared, rx));
                // Dropping the runtime cancels the connection tasks still running.
                drop(runtime);
            })
            .unwrap_or_else(|e| panic!("fault proxy could not spawn its thread: {e}"));
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), shared, shutdown: Some(tx), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Requests received (faulted or not): `"total"` plus one key per operation
    /// (see [`RequestInfo::operation`]), e.g. `"GetCallerIdentity"`, `"ListSecrets"`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.shared.stats.lock().unwrap().received.clone()
    }

    /// Requests received by application, as their user agent names it (`app/drconsole-<app>`; `"-"` for none).
    pub fn counts_by_app(&self) -> BTreeMap<String, u64> {
        self.shared.stats.lock().unwrap().by_app.clone()
    }

    /// Every request received, in order, with its time, region, service, operation and application.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.stats.lock().unwrap().log.clone()
    }

    /// Requests received by region (`"-"` for unsigned ones).
    pub fn counts_by_region(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for l in self.log() {
            bump(&mut m, l.region.as_deref().unwrap_or("-"));
        }
        m
    }

    /// Requests received for one operation (or `"total"`).
    pub fn count(&self, operation: &str) -> u64 {
        self.shared.stats.lock().unwrap().received.get(operation).copied().unwrap_or(0)
    }

    /// Requests forwarded to the upstream (i.e. executed by moto): `"total"` plus per operation.
    pub fn forwarded_counts(&self) -> BTreeMap<String, u64> {
        self.shared.stats.lock().unwrap().forwarded.clone()
    }

    /// Injected faults by kind: `throttle`, `5xx`, `drop`, `drop_after_forward`, `delay`,
    /// `error`, `region_refuse`, `region_503`, `region_reset`, `region_hang`, plus `upstream_error` (upstream
    /// unreachable: answered 502).
    pub fn faults(&self) -> BTreeMap<String, u64> {
        self.shared.stats.lock().unwrap().faults.clone()
    }

    /// Replaces the configuration (restarting the random sequence and `times` budgets).
    pub fn set_config(&self, config: FaultConfig) {
        *self.shared.active.lock().unwrap() = Active::new(config);
    }

    /// Zeroes all counters.
    pub fn reset_counts(&self) {
        *self.shared.stats.lock().unwrap() = Stats::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    upstream: String,
    active: Mutex<Active>,
    stats: Mutex<Stats>,
}

struct Active {
    config: FaultConfig,
    rng: u64,
    /// Remaining budget per forced rule (None = unlimited).
    remaining: Vec<Option<u64>>,
}

impl Active {
    fn new(config: FaultConfig) -> Active {
        let remaining = config.forced.iter().map(|f| f.times).collect();
        Active { rng: config.seed, config, remaining }
    }

    /// splitmix64
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Default)]
struct Stats {
    received: BTreeMap<String, u64>,
    /// Requests received by the application their user agent names (`app/drconsole-<app>`), `"-"` for none.
    by_app: BTreeMap<String, u64>,
    forwarded: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
    seq: u64,
    log: Vec<Logged>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_insert(0) += 1;
}

/// Returned by the service to make hyper close the connection without writing a response.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fault proxy: connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fault proxy: cannot register listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let resets = shared.active.lock().unwrap().config.regions.iter().any(|r| r.1 == RegionMode::Reset);
                if resets {
                    // an abortive close (RST) when a request of a `Reset` region drops the connection; SO_LINGER 0
                    // does not block on drop, which is what the deprecation warns of
                    #[allow(deprecated)]
                    let _ = stream.set_linger(Some(Duration::ZERO));
                }
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

type ProxyResponse = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<ProxyResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let info = request_info(&parts.method, &parts.uri, &parts.headers, &body);
    let protocol = Protocol::detect(&info);
    let request_id = {
        let mut stats = shared.stats.lock().unwrap();
        bump(&mut stats.received, "total");
        bump(&mut stats.received, &info.operation);
        bump(&mut stats.by_app, info.app.as_deref().unwrap_or("-"));
        stats.log.push(Logged {
            at: std::time::SystemTime::now(),
            region: info.region.clone(),
            service: info.service.clone(),
            operation: info.operation.clone(),
            app: info.app.clone(),
        });
        stats.seq += 1;
        format!("00000000-fa17-4000-8000-{:012x}", stats.seq)
    };

    let (latency, hook, mode) = {
        let active = shared.active.lock().unwrap();
        let global = info.service.as_deref().is_some_and(|s| GLOBAL_SERVICES.contains(&s));
        let mode = active
            .config
            .regions
            .iter()
            .find(|(r, _, with_global)| info.region.as_deref() == Some(r.as_str()) && (*with_global || !global))
            .map(|r| r.1);
        (active.config.latency, active.config.hook.clone(), mode)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let record = |kind: &str| bump(&mut shared.stats.lock().unwrap().faults, kind);
    let hooked = hook.and_then(|h| h(&info));
    if hooked.is_none()
        && let Some(mode) = mode
    {
        match mode {
            RegionMode::Refuse => {
                record("region_refuse");
                return Err(DropConnection);
            }
            RegionMode::Reset => {
                record("region_reset");
                return Err(DropConnection);
            }
            RegionMode::Unavailable => {
                record("region_503");
                let m = "Service is unavailable (region outage injected by fault proxy)";
                return Ok(error_response(&protocol, 503, "ServiceUnavailable", m, &request_id));
            }
            RegionMode::Hang => {
                record("region_hang");
                std::future::pending::<()>().await;
            }
        }
    }
    let fault = hooked.or_else(|| decide(&shared, &info));

    match fault {
        None => forward(&shared, &info, parts, body, &protocol, &request_id).await,
        Some(Fault::Throttle) => {
            record("throttle");
            Ok(throttle_response(&protocol, &request_id))
        }
        Some(Fault::ServerError(status)) => {
            record("5xx");
            let (code, message) = if status == 503 {
                ("ServiceUnavailable", "Service is unavailable (injected by fault proxy)")
            } else if protocol.is_json() {
                ("InternalFailure", "Internal failure (injected by fault proxy)")
            } else {
                ("InternalError", "Internal error (injected by fault proxy)")
            };
            Ok(error_response(&protocol, status, code, message, &request_id))
        }
        Some(Fault::Drop) => {
            record("drop");
            Err(DropConnection)
        }
        Some(Fault::DropAfterForward) => {
            record("drop_after_forward");
            let _ = forward(&shared, &info, parts, body, &protocol, &request_id).await;
            Err(DropConnection)
        }
        Some(Fault::Delay(d)) => {
            record("delay");
            tokio::time::sleep(d).await;
            forward(&shared, &info, parts, body, &protocol, &request_id).await
        }
        Some(Fault::Error { status, code, message }) => {
            record("error");
            Ok(error_response(&protocol, status, &code, &message, &request_id))
        }
        Some(Fault::Respond { status, content_type, body }) => {
            record("recorded");
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                h.insert(hyper::header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert(HeaderName::from_static("x-amzn-requestid"), v);
            }
            Ok(resp)
        }
    }
}

/// Forced rules first, then one seeded draw against drop / throttle / 5xx rates.
fn decide(shared: &Shared, info: &RequestInfo) -> Option<Fault> {
    let mut active = shared.active.lock().unwrap();
    let haystack = format!(
        "{}\n{} {}\n{}\n{}",
        info.target.as_deref().unwrap_or(""),
        info.method,
        info.path,
        info.operation,
        info.body
    );
    for i in 0..active.config.forced.len() {
        if active.remaining[i] == Some(0) || !haystack.contains(&active.config.forced[i].needle) {
            continue;
        }
        if let Some(n) = active.remaining[i].as_mut() {
            *n -= 1;
        }
        return Some(active.config.forced[i].fault.clone());
    }
    let cfg = &active.config;
    let (drop_rate, throttle_rate, error_rate, after) =
        (cfg.drop_rate.max(0.0), cfg.throttle_rate.max(0.0), cfg.error_5xx_rate.max(0.0), cfg.drop_after_forward);
    if drop_rate + throttle_rate + error_rate <= 0.0 {
        return None;
    }
    let r = active.next_u64();
    let u = (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    if u < drop_rate {
        Some(if after { Fault::DropAfterForward } else { Fault::Drop })
    } else if u < drop_rate + throttle_rate {
        Some(Fault::Throttle)
    } else if u < drop_rate + throttle_rate + error_rate {
        Some(Fault::ServerError(if r & 1 == 0 { 500 } else { 503 }))
    } else {
        None
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(
    shared: &Shared,
    info: &RequestInfo,
    parts: hyper::http::request::Parts,
    body: Bytes,
    protocol: &Protocol,
    request_id: &str,
) -> Result<ProxyResponse, DropConnection> {
    match forward_inner(&shared.upstream, parts, body).await {
        Ok(resp) => {
            let mut stats = shared.stats.lock().unwrap();
            bump(&mut stats.forwarded, "total");
            bump(&mut stats.forwarded, &info.operation);
            Ok(resp)
        }
        Err(e) => {
            bump(&mut shared.stats.lock().unwrap().faults, "upstream_error");
            let message = format!("fault proxy: upstream {} failed: {e}", shared.upstream);
            Ok(error_response(protocol, 502, "BadGateway", &message, request_id))
        }
    }
}

async fn forward_inner(
    upstream: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<ProxyResponse, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let mut builder = Request::builder().method(parts.method).uri(path);
    let headers = builder.headers_mut().expect("fresh request builder");
    for (name, value) in parts.headers.iter() {
        let n = name.as_str();
        // The body is already collected: hyper sets Content-Length from it.
        if HOP_BY_HOP.contains(&n) || n == "content-length" || n == "expect" {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if !headers.contains_key(hyper::header::HOST) {
        headers.insert(hyper::header::HOST, HeaderValue::from_str(upstream)?);
    }
    let resp = sender.send_request(builder.body(Full::new(body))?).await?;
    let (mut resp_parts, resp_body) = resp.into_parts();
    let bytes = resp_body.collect().await?.to_bytes();
    for name in HOP_BY_HOP {
        resp_parts.headers.remove(*name);
    }
    Ok(Response::from_parts(resp_parts, Full::new(bytes)))
}

fn request_info(method: &hyper::Method, uri: &hyper::Uri, headers: &HeaderMap, body: &Bytes) -> RequestInfo {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let target = header("x-amz-target");
    let content_type = header("content-type");
    let service = header("authorization").and_then(|a| credential_scope_part(&a, 3));
    let region = header("authorization").and_then(|a| credential_scope_part(&a, 2));
    let body_text = String::from_utf8_lossy(body).into_owned();
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".to_string());
    let query = uri.query().unwrap_or("");
    let is_form = content_type.as_deref().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));

    let operation = if let Some(t) = &target {
        t.rsplit('.').next().unwrap_or(t).to_string()
    } else if let Some(a) =
        form_value(query, "Action").or_else(|| is_form.then(|| form_value(&body_text, "Action")).flatten())
    {
        a
    } else if let Some(x) = form_value(query, "x-id") {
        x
    } else {
        let keys: Vec<&str> =
            query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split('=').next().unwrap_or(kv)).collect();
        if keys.is_empty() {
            format!("{method} {}", uri.path())
        } else {
            format!("{method} {}?{}", uri.path(), keys.join("&"))
        }
    };
    // the SDK names the app in both user-agent headers: `... app/drconsole-cross-sell`
    let app = header("x-amz-user-agent")
        .or_else(|| header("user-agent"))
        .and_then(|ua| ua.split(' ').find_map(|p| p.strip_prefix("app/drconsole-")).map(str::to_string));
    RequestInfo {
        method: method.to_string(),
        path,
        service,
        region,
        operation,
        target,
        content_type,
        body: body_text,
        app,
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...` -> part 2 (REGION) or 3 (SERVICE).
fn credential_scope_part(authorization: &str, part: usize) -> Option<String> {
    let cred = authorization.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() >= 5).then(|| parts[part].to_string())
}

/// Whether an operation (a [`RequestInfo::operation`] key) changes something: anything but
/// Describe*/List*/Get*/Head*/Lookup* calls, IAM's Simulate* (a policy evaluation) and REST GET/HEAD requests.
pub fn is_mutating(operation: &str) -> bool {
    let read = ["Describe", "List", "Get", "Head", "Lookup", "Simulate", "GET ", "HEAD "];
    operation != "total" && !read.iter().any(|p| operation.starts_with(p))
}

/// Value of `key` in an `a=b&c=d` string (only `%XX` and `+` decoding).
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Services spoken in restXml; other signed REST calls without a content type are restJson.
const REST_XML_SERVICES: &[&str] = &["s3", "s3-control", "route53", "cloudfront"];

enum Protocol {
    /// awsJson 1.0/1.1, with the request's content type.
    AwsJson(String),
    RestJson,
    Query,
    Ec2Query,
    RestXml {
        s3: bool,
    },
}

impl Protocol {
    fn detect(info: &RequestInfo) -> Protocol {
        let ct = info.content_type.as_deref().unwrap_or("").to_ascii_lowercase();
        let service = info.service.as_deref();
        let is_query = ct.starts_with("application/x-www-form-urlencoded") || info.path.contains("Action=");
        if info.target.is_some() || ct.starts_with("application/x-amz-json") {
            let ct = if ct.is_empty() { "application/x-amz-json-1.1".to_string() } else { ct };
            Protocol::AwsJson(ct)
        } else if is_query {
            if service == Some("ec2") || info.body.contains("Version=2016-11-15") {
                Protocol::Ec2Query
            } else {
                Protocol::Query
            }
        } else if ct.starts_with("application/json") {
            Protocol::RestJson
        } else {
            match service {
                // moto treats unsigned requests as S3 too.
                None | Some("s3") | Some("s3-control") => Protocol::RestXml { s3: true },
                Some(s) if REST_XML_SERVICES.contains(&s) => Protocol::RestXml { s3: false },
                Some(_) if ct.contains("xml") => Protocol::RestXml { s3: false },
                Some(_) => Protocol::RestJson,
            }
        }
    }

    fn is_json(&self) -> bool {
        matches!(self, Protocol::AwsJson(_) | Protocol::RestJson)
    }
}

fn throttle_response(protocol: &Protocol, request_id: &str) -> ProxyResponse {
    match protocol {
        Protocol::AwsJson(_) | Protocol::RestJson => {
            error_response(protocol, 400, "ThrottlingException", "Rate exceeded", request_id)
        }
        Protocol::Ec2Query => {
            error_response(protocol, 400, "RequestLimitExceeded", "Request limit exceeded.", request_id)
        }
        Protocol::Query | Protocol::RestXml { s3: false } => {
            error_response(protocol, 400, "Throttling", "Rate exceeded", request_id)
        }
        Protocol::RestXml { s3: true } => {
            error_response(protocol, 503, "SlowDown", "Please reduce your request rate.", request_id)
        }
    }
}

/// An AWS-style error answer in the request's protocol.
fn error_response(protocol: &Protocol, status: u16, code: &str, message: &str, request_id: &str) -> ProxyResponse {
    let (content_type, body) = match protocol {
        Protocol::AwsJson(ct) => {
            (ct.clone(), format!(r#"{{"__type":"{}","message":"{}"}}"#, json_escape(code), json_escape(message)))
        }
        Protocol::RestJson => (
            "application/json".to_string(),
            format!(
                r#"{{"__type":"{}","message":"{}","Message":"{}"}}"#,
                json_escape(code),
                json_escape(message),
                json_escape(message)
            ),
        ),
        Protocol::Ec2Query => (
            "text/xml;charset=UTF-8".to_string(),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>"#,
                xml_escape(code),
                xml_escape(message),
                request_id
            ),
        ),
        Protocol::RestXml { s3: true } => (
            "application/xml".to_string(),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>"#,
                xml_escape(code),
                xml_escape(message),
                request_id
            ),
        ),
        Protocol::Query | Protocol::RestXml { s3: false } => (
            "text/xml".to_string(),
            format!(
                r#"<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
                if status >= 500 { "Receiver" } else { "Sender" },
                xml_escape(code),
                xml_escape(message),
                request_id
            ),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = resp.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set("content-type", &content_type);
    set("x-amzn-requestid", request_id);
    set("x-amz-request-id", request_id);
    if protocol.is_json() {
        set("x-amzn-errortype", code);
    }
    resp
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
