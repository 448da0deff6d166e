//! The generic actions: `wait`, `manual`, `shell`, `check.http`, `check.tcp`, `check.dns`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::run::Prompt;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Wait), Arc::new(Manual), Arc::new(Shell), Arc::new(CheckHttp), Arc::new(CheckTcp), Arc::new(CheckDns)]
}

/// Attempts are bounded by the step `timeout`; a single probe gets this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

struct Wait;
static WAIT: ActionSpec = ActionSpec {
    name: "wait",
    summary: "Wait for a fixed time (let DNS caches expire, let a replica catch up)",
    params: &[P::req("duration", K::Duration, "how long to wait")],
    outputs: &[],
    iam: &[],
    expected_secs: 60,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Wait {
    fn spec(&self) -> &'static ActionSpec {
        &WAIT
    }
    fn plan(&self, p: &Params) -> String {
        format!("wait {}", p.str("duration").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        ctx.sleep(p.duration("duration")?).await?;
        Ok(Outputs::new())
    }
}

struct Manual;
static MANUAL: ActionSpec = ActionSpec {
    name: "manual",
    summary: "A task done by hand: shows the instructions and waits until the operator confirms it is done",
    params: &[P::req("instructions", K::Str, "what the operator must do")],
    outputs: &[out("done_by", "who confirmed the task was done")],
    iam: &[],
    expected_secs: 300,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Manual {
    fn spec(&self) -> &'static ActionSpec {
        &MANUAL
    }
    fn plan(&self, p: &Params) -> String {
        format!("operator: {}", p.str("instructions").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let by = ctx.ask(Prompt::Done { instructions: p.str("instructions")?.to_string() }).await?;
        let mut o = Outputs::new();
        o.insert("done_by".into(), Value::String(by));
        Ok(o)
    }
}

struct Shell;
static SHELL: ActionSpec = ActionSpec {
    name: "shell",
    summary: "Run a command with `sh -c`; a non-zero exit fails the attempt (retried when the step has `retries`)",
    params: &[
        P::req("command", K::Str, "the command line, run by sh -c"),
        P::opt("timeout", K::Duration, "kill the command after this long (default: the step timeout)"),
    ],
    outputs: &[out("stdout", "standard output without its final newline"), out("exit_code", "the exit status")],
    iam: &[],
    expected_secs: 10,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for Shell {
    fn spec(&self) -> &'static ActionSpec {
        &SHELL
    }
    fn plan(&self, p: &Params) -> String {
        format!("run `{}`", p.str("command").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let command = p.str("command")?;
        let limit = p.opt_duration("timeout")?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env("DRCONSOLE_RUN_ID", &ctx.run_id)
            .env("DRCONSOLE_STEP_ID", &ctx.step_id)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ActionError::fatal(format!("cannot start sh: {e}")))?;
        let mut stdout = child.stdout.take().ok_or_else(|| ActionError::fatal("no stdout pipe"))?;
        let mut stderr = child.stderr.take().ok_or_else(|| ActionError::fatal("no stderr pipe"))?;
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            a.and(b).map_err(|e| ActionError::fatal(format!("reading command output: {e}")))?;
            let status = child.wait().await.map_err(|e| ActionError::fatal(format!("waiting for command: {e}")))?;
            Ok::<_, ActionError>((status, out, err))
        };
        let limited = async {
            match limit {
                Some(l) => tokio::time::timeout(ctx.clock.real(l), collect).await.map_err(|_| {
                    ActionError::transient(format!("command timed out after {}", crate::util::fmt_duration(l)))
                })?,
                None => collect.await,
            }
        };
        let (status, out, err) = tokio::select! {
            r = limited => r?,
            () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
        };
        let stdout = String::from_utf8_lossy(&out);
        let stdout = stdout.strip_suffix('\n').unwrap_or(&stdout);
        let code = status.code().unwrap_or(-1);
        if !status.success() {
            let err = String::from_utf8_lossy(&err);
            let tail: Vec<&str> = err.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            let detail = if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) };
            let how =
                status.code().map_or_else(|| "was killed by a signal".to_string(), |c| format!("exited with {c}"));
            // the engine cannot know whether another run of the command may succeed: the step's `retries` decides
            return Err(ActionError::transient(format!("command {how}{detail}")));
        }
        let mut o = Outputs::new();
        o.insert("stdout".into(), Value::String(stdout.to_string()));
        o.insert("exit_code".into(), Value::from(code));
        Ok(o)
    }
}

struct CheckHttp;
static CHECK_HTTP: ActionSpec = ActionSpec {
    name: "check.http",
    summary: "GET a URL and check its status (and optionally that the body contains a string)",
    params: &[
        P::req("url", K::Str, "http:// or https:// URL"),
        P::opt("expect_status", K::Int, "expected status code (default 200)"),
        P::opt("expect_body", K::Str, "a substring the body must contain"),
    ],
    outputs: &[out("status", "the HTTP status code")],
    iam: &[],
    expected_secs: 5,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for CheckHttp {
    fn spec(&self) -> &'static ActionSpec {
        &CHECK_HTTP
    }
    fn plan(&self, p: &Params) -> String {
        let status = p.opt_int("expect_status").ok().flatten().unwrap_or(200);
        let body = p.opt_str("expect_body").ok().flatten().map(|b| format!(" containing \"{b}\"")).unwrap_or_default();
        format!("GET {} expecting {status}{body}", p.str("url").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let url = p.str("url")?;
        let want = p.opt_int("expect_status")?.unwrap_or(200);
        let client = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("drconsole/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ActionError::fatal(format!("http client: {e}")))?;
        let resp = tokio::select! {
            r = client.get(url).send() => r.map_err(|e| ActionError::transient(format!("GET {url}: {}", error_chain(&e))))?,
            () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
        };
        let status = i64::from(resp.status().as_u16());
        let body = resp.text().await.map_err(|e| ActionError::transient(format!("GET {url}: reading body: {e}")))?;
        if status != want {
            return Err(ActionError::transient(format!("GET {url} answered {status}, expected {want}")));
        }
        if let Some(needle) = p.opt_str("expect_body")?
            && !body.contains(needle)
        {
            return Err(ActionError::transient(format!(
                "GET {url} answered {status} but the body does not contain \"{needle}\""
            )));
        }
        let mut o = Outputs::new();
        o.insert("status".into(), Value::from(status));
        Ok(o)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

struct CheckTcp;
static CHECK_TCP: ActionSpec = ActionSpec {
    name: "check.tcp",
    summary: "Open a TCP connection to host:port (a database endpoint accepts connections)",
    params: &[P::req("host", K::Str, "host name or address"), P::req("port", K::Int, "TCP port")],
    outputs: &[out("address", "the address that accepted the connection")],
    iam: &[],
    expected_secs: 5,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for CheckTcp {
    fn spec(&self) -> &'static ActionSpec {
        &CHECK_TCP
    }
    fn plan(&self, p: &Params) -> String {
        format!("connect to {}:{}", p.text("host").unwrap_or_default(), p.text("port").unwrap_or_default())
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let host = p.text("host")?;
        let port = u16::try_from(p.int("port")?).map_err(|_| ActionError::fatal("parameter `port` must be 1-65535"))?;
        let connect = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port)));
        let stream = tokio::select! {
            r = connect => r.map_err(|_| ActionError::transient(format!("connect to {host}:{port} timed out")))?
                .map_err(|e| ActionError::transient(format!("connect to {host}:{port}: {e}")))?,
            () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
        };
        let mut o = Outputs::new();
        let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        o.insert("address".into(), Value::String(addr));
        Ok(o)
    }
}

struct CheckDns;
static CHECK_DNS: ActionSpec = ActionSpec {
    name: "check.dns",
    summary: "Resolve a name with the system resolver and check that an answer contains a value",
    params: &[
        P::req("name", K::Str, "the DNS name"),
        P::opt("expect", K::Str, "a value one of the answers must contain"),
    ],
    outputs: &[out("addresses", "the addresses resolved, comma-separated")],
    iam: &[],
    expected_secs: 5,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for CheckDns {
    fn spec(&self) -> &'static ActionSpec {
        &CHECK_DNS
    }
    fn plan(&self, p: &Params) -> String {
        let expect = p.opt_str("expect").ok().flatten().map(|e| format!(" expecting \"{e}\"")).unwrap_or_default();
        format!("resolve {}{expect}", p.str("name").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let name = p.str("name")?;
        let lookup = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::lookup_host((name, 0)));
        let addrs: Vec<String> = tokio::select! {
            r = lookup => r.map_err(|_| ActionError::transient(format!("resolving {name} timed out")))?
                .map_err(|e| ActionError::transient(format!("resolving {name}: {e}")))?
                .map(|a| a.ip().to_string()).collect(),
            () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
        };
        let mut unique = addrs.clone();
        unique.sort();
        unique.dedup();
        if let Some(want) = p.opt_str("expect")?
            && !unique.iter().any(|a| a.contains(want))
        {
            return Err(ActionError::transient(format!(
                "{name} resolves to {}, none contains \"{want}\"",
                unique.join(", ")
            )));
        }
        let mut o = Outputs::new();
        o.insert("addresses".into(), Value::String(unique.join(",")));
        Ok(o)
    }
}
