//! Runs a real moto server (AWS emulator, moto 5.2.5) for integration tests.
//!
//! `MotoServer::start()` installs moto once (via `scripts/moto-venv.sh`, cached per process),
//! starts `moto_server` on a free loopback port, waits until it answers and returns its endpoint.
//! It never skips: if moto cannot be installed or started, it panics with the reason and the
//! tail of the server log. The server is stopped when the `MotoServer` is dropped (and also when
//! the test process dies, through a watchdog on the child's stdin).
//!
//! moto routes a request to a service by the service name in the SigV4 `Authorization`
//! credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`); a request without it
//! is treated as S3. The AWS SDK always signs, so this only matters for hand-made requests: use
//! [`fake_sigv4_authorization`]. Signatures themselves are not checked.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moto version `scripts/moto-venv.sh` installs.
pub const MOTO_VERSION: &str = "5.2.5";
/// Account id moto uses unless told otherwise.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Readiness probe: moto's dashboard page, served by moto's own `moto-api` app (200 once up).
const READY_PATH: &str = "/moto-api/";

/// A running moto server on 127.0.0.1, stopped on drop.
pub struct MotoServer {
    /// `http://127.0.0.1:PORT`: use it as the AWS SDK `endpoint_url`.
    pub endpoint: String,
    port: u16,
    child: Child,
    /// Kept open: closing it makes the watchdog wrapper stop moto.
    stdin: Option<ChildStdin>,
    log_path: PathBuf,
}

impl MotoServer {
    /// Installs moto if needed, starts it on a free port and waits until it answers.
    ///
    /// Panics with "moto server could not start: ..." (and the log tail) on any failure.
    pub fn start() -> MotoServer {
        let bin = match moto_binary() {
            Ok(bin) => bin,
            Err(e) => panic!("moto server could not start: {e}"),
        };
        // A free port can be taken between our probe and moto's bind: retry a few times.
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Self::try_start(bin) {
                Ok(server) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("moto server could not start: {last_err}");
    }

    fn try_start(bin: &Path) -> Result<MotoServer, String> {
        let port = free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let log_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(log_dir).map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
        let log_path = log_dir.join(format!("moto-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path).map_err(|e| format!("cannot create log {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| format!("cannot clone log handle: {e}"))?;

        // Watchdog wrapper: moto runs in the background; a second background job blocks on the
        // wrapper's stdin (our pipe) and stops moto when it closes, i.e. when this MotoServer is
        // dropped or the test process dies without running Drop. The wrapper exits with moto's
        // status, so an early moto exit is visible through `try_wait`.
        const WRAPPER: &str = r#"exec 3<&0
"$0" "$@" </dev/null &
m=$!
{ read -r _ <&3; kill -TERM "$m" 2>/dev/null; } &
w=$!
wait "$m"
rc=$?
kill "$w" 2>/dev/null
exit "$rc""#;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            // ACM's DNS validation completes at once (a requested certificate is ISSUED on its next describe), as
            // for a customer whose validation records are in place; moto's default keeps it pending for 60 s
            .env("MOTO_ACM_VALIDATION_WAIT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let mut server = MotoServer { endpoint: format!("http://127.0.0.1:{port}"), port, child, stdin, log_path };

        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited early ({status}) on port {port}\n{}",
                    bin.display(),
                    server.log_tail(40)
                ));
            }
            match http_request(&server.endpoint, "GET", READY_PATH, &[], b"") {
                Ok(resp) if resp.status == 200 => return Ok(server),
                _ => {}
            }
            if started.elapsed() > READY_TIMEOUT {
                // `server` is dropped here, which stops the child.
                return Err(format!(
                    "no answer to GET {READY_PATH} on port {port} within {}s\n{}",
                    READY_TIMEOUT.as_secs(),
                    server.log_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path of the server's log file (under the cargo target tmpdir).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Wipes all emulated state (`POST /moto-api/reset`). Panics if moto does not answer 200.
    pub fn reset(&self) {
        match http_request(&self.endpoint, "POST", "/moto-api/reset", &[], b"") {
            Ok(resp) if resp.status == 200 => {}
            Ok(resp) => panic!("moto reset failed: HTTP {}: {}\n{}", resp.status, resp.body, self.log_tail(20)),
            Err(e) => panic!("moto reset failed: {e}\n{}", self.log_tail(20)),
        }
    }

    /// The last `n` lines of the server log, with a header naming the file.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n");
        format!("--- last {n} lines of {} ---\n{tail}", self.log_path.display())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper stop moto (SIGTERM) and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The moto_server binary, installed once per process by `scripts/moto-venv.sh`
/// (or taken from `DRCONSOLE_MOTO_SERVER` when set). The error is cached too.
pub fn moto_binary() -> Result<&'static Path, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(install_moto).as_ref().map(|p| p.as_path()).map_err(Clone::clone)
}

fn install_moto() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("DRCONSOLE_MOTO_SERVER") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("DRCONSOLE_MOTO_SERVER={} is not a file", bin.display()))
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{} failed ({}):\n{stderr}{stdout}", script.display(), out.status));
    }
    let bin = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .ok_or_else(|| format!("{} printed no binary path:\n{stderr}", script.display()))?;
    if !bin.is_file() {
        return Err(format!("{} printed {}, which is not a file:\n{stderr}", script.display(), bin.display()));
    }
    Ok(bin)
}

/// A free TCP port on 127.0.0.1 (bound with port 0, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A syntactically valid SigV4 `Authorization` header value for `service` in `region`, so that
/// moto routes a hand-made request to the right service (moto does not check signatures).
pub fn fake_sigv4_authorization(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{region}/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={}",
        "0".repeat(64)
    )
}

/// A response read by [`http_request`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A minimal blocking HTTP/1.1 request (`Connection: close`) to `endpoint`
/// (`http://host:port` or `host:port`), for loopback test tooling only.
/// `Host` and `Content-Length` are added; 10 s read/write timeouts.
pub fn http_request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<RawResponse> {
    let bad = |msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string());
    if raw.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed without a response"));
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("incomplete response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(RawResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
