//! The `shell` action, and how values reach a shell command without becoming code.
//!
//! Rules:
//! - A `${...}` reference in `command` is never spliced into the text `sh -c` parses. Each one is passed as an
//!   environment variable (`${vars.name}` → `DRC_VARS_NAME`) and the command refers to it by a parameter expansion,
//!   quoted for where the reference stands (`"${DRC_VARS_NAME}"` outside quotes, `${DRC_VARS_NAME}` inside double
//!   quotes, `'"${DRC_VARS_NAME}"'` inside single quotes). The shell never parses an expansion's result as code, so
//!   `;`, `$( )`, backticks, quotes and newlines in a value (a `--var`, an AWS tag read by an earlier step) stay data.
//! - The command runs in its own process group; the group is killed (SIGKILL) when the attempt times out or is
//!   cancelled, and on Linux `sh` gets a parent-death signal, so it does not outlive drconsole.
//! - An attempt does not start while a process of an earlier attempt of the same step of the same run still runs
//!   (found by the `DRCONSOLE_RUN_ID` and `DRCONSOLE_STEP_ID` in its environment, Linux): it waits for it to end,
//!   for at most the step's `timeout` (else [`EARLIER_ATTEMPT_GRACE`]), then fails saying which process is left.
//! - At most [`MAX_KEPT`] bytes of stdout are kept (outputs, journal, report); the whole output then goes to
//!   `output/<step>.<attempt>.stdout|stderr` in the run directory.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::runbook::interp::{self, ResolveError, Scope, Segment};

/// How many bytes of a command's stdout (and of the end of its stderr) are kept in memory, outputs and the journal.
pub const MAX_KEPT: usize = 64 * 1024;

/// The parameter that carries the values of a shell command's references (set by [`render_params`], not by
/// runbooks: `check` refuses unknown parameters).
pub const ENV_PARAM: &str = "$env";

pub struct Shell;

static SHELL: ActionSpec = ActionSpec {
    name: "shell",
    summary: "Run a command with `sh -c`; a non-zero exit fails the attempt (retried when the step has `retries`). \
              ${...} values reach it as environment variables, never as command text",
    params: &[
        P::req("command", K::Str, "the command line, run by sh -c; each ${...} is passed as a quoted variable"),
        P::opt("timeout", K::Duration, "kill the command (its whole process group) after this long"),
    ],
    outputs: &[
        out("stdout", "standard output without its final newline (at most 64 KiB; the rest is in the run directory)"),
        out("exit_code", "the exit status"),
    ],
    iam: &[],
    expected_secs: 10,
    effect: Effect::Mutating,
};

/// Renders a step's parameters against the run's values. Every action's strings are interpolated, except a
/// `shell` command's references, which become environment variables (see the module rules).
pub fn render_params(action: &str, with: &Map<String, Value>, scope: &dyn Scope) -> Result<Params, ResolveError> {
    let mut out = Map::new();
    for (k, v) in with {
        if action == "shell"
            && k == "command"
            && let Value::String(template) = v
        {
            let (command, env) = shell_command(template, scope)?;
            out.insert(k.clone(), Value::String(command));
            if !env.is_empty() {
                out.insert(ENV_PARAM.into(), Value::Object(env));
            }
            continue;
        }
        out.insert(k.clone(), interp::render_value(v, scope)?);
    }
    Ok(Params(out))
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
    Double,
}

/// The command text with each reference replaced by a quoted parameter expansion, and the variables to set.
pub fn shell_command(template: &str, scope: &dyn Scope) -> Result<(String, Map<String, Value>), ResolveError> {
    let segs = interp::parse(template).map_err(|e| ResolveError { reference: template.into(), why: e.message })?;
    let mut text = String::new();
    let mut env = Map::new();
    let mut names: Vec<(String, String)> = Vec::new(); // reference path -> variable name
    let mut state = Quote::None;
    let mut escaped = false;
    for seg in segs {
        match seg {
            Segment::Lit(l) => {
                for c in l.chars() {
                    if escaped {
                        escaped = false;
                    } else {
                        state = match (state, c) {
                            (Quote::None | Quote::Double, '\\') => {
                                escaped = true;
                                state
                            }
                            (Quote::None, '\'') => Quote::Single,
                            (Quote::None, '"') => Quote::Double,
                            (Quote::Single, '\'') | (Quote::Double, '"') => Quote::None,
                            (s, _) => s,
                        };
                    }
                    text.push(c);
                }
            }
            Segment::Ref(path, _) => {
                let reference = path.join(".");
                let value = interp::render(&format!("${{{reference}}}"), scope)?;
                let value = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let name = match names.iter().find(|(p, _)| *p == reference) {
                    Some((_, n)) => n.clone(),
                    None => {
                        let base = env_name(&path);
                        let mut name = base.clone();
                        let mut n = 2;
                        while env.contains_key(&name) {
                            name = format!("{base}_{n}");
                            n += 1;
                        }
                        names.push((reference, name.clone()));
                        env.insert(name.clone(), Value::String(value));
                        name
                    }
                };
                if escaped {
                    // `\${...}`: the backslash escaped the reference; keep the value literal after it
                    text.push('\\');
                    escaped = false;
                }
                match state {
                    Quote::None => text.push_str(&format!("\"${{{name}}}\"")),
                    Quote::Double => text.push_str(&format!("${{{name}}}")),
                    Quote::Single => text.push_str(&format!("'\"${{{name}}}\"'")),
                }
            }
        }
    }
    Ok((text, env))
}

/// `vars.db-name` → `DRC_VARS_DB_NAME`.
fn env_name(path: &[String]) -> String {
    let mut s = String::from("DRC");
    for p in path {
        s.push('_');
        s.extend(p.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    }
    s
}

fn env_of(p: &Params) -> Vec<(String, String)> {
    match p.get(ENV_PARAM) {
        Some(Value::Object(m)) => {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
        }
        _ => Vec::new(),
    }
}

#[async_trait]
impl Action for Shell {
    fn spec(&self) -> &'static ActionSpec {
        &SHELL
    }
    fn plan(&self, p: &Params) -> String {
        let env = env_of(p);
        let with = if env.is_empty() {
            String::new()
        } else {
            let vals: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!(" with {}", vals.join(" "))
        };
        format!("run `{}`{with}", p.str("command").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let command = p.str("command")?;
        let limit = p.opt_duration("timeout")?;
        wait_for_earlier_attempt(ctx, limit.unwrap_or(EARLIER_ATTEMPT_GRACE)).await?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env("DRCONSOLE_RUN_ID", &ctx.run_id)
            .env("DRCONSOLE_STEP_ID", &ctx.step_id)
            .envs(env_of(p))
            .kill_on_drop(true);
        own_group(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| ActionError::fatal(format!("cannot start sh: {e}")))?;
        // from here on, a timeout or a cancel (this future dropped) kills the whole process group
        let mut group = GroupKill(child.id());
        let mut stdout = child.stdout.take().ok_or_else(|| ActionError::fatal("no stdout pipe"))?;
        let mut stderr = child.stderr.take().ok_or_else(|| ActionError::fatal("no stderr pipe"))?;
        let spill = |stream: &str| {
            ctx.run_dir.as_ref().map(|d| d.join("output").join(format!("{}.{}.{stream}", ctx.step_id, ctx.attempt)))
        };
        let collect = async {
            let mut out = Capture::new(spill("stdout"), true);
            let mut err = Capture::new(spill("stderr"), false);
            let (a, b) = tokio::join!(out.read_all(&mut stdout), err.read_all(&mut stderr));
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
        // the command ended by itself: what it left running in the background is its own business
        group.0 = None;
        let stdout = out.text();
        let stdout = stdout.strip_suffix('\n').unwrap_or(&stdout).to_string();
        let code = status.code().unwrap_or(-1);
        if !status.success() {
            let err = err.text();
            let tail: Vec<&str> = err.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            let detail = if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) };
            let how =
                status.code().map_or_else(|| "was killed by a signal".to_string(), |c| format!("exited with {c}"));
            // the engine cannot know whether another run of the command may succeed: the step's `retries` decides
            return Err(ActionError::transient(format!("command {how}{detail}")));
        }
        let mut o = Outputs::new();
        o.insert("stdout".into(), Value::String(stdout));
        o.insert("exit_code".into(), Value::from(code));
        Ok(o)
    }
}

/// What is kept of one of a command's streams: the first (stdout) or last (stderr) [`MAX_KEPT`] bytes; past that,
/// everything goes to a file.
struct Capture {
    kept: Vec<u8>,
    head: bool,
    total: usize,
    spill: Option<PathBuf>,
    file: Option<std::fs::File>,
    spill_error: Option<String>,
}

impl Capture {
    fn new(spill: Option<PathBuf>, head: bool) -> Self {
        Self { kept: Vec::new(), head, total: 0, spill, file: None, spill_error: None }
    }

    async fn read_all(&mut self, r: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.push(&buf[..n]);
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let before = self.total;
        self.total += chunk.len();
        if self.total > MAX_KEPT && self.file.is_none() && self.spill_error.is_none() {
            self.open_spill();
        }
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.write_all(chunk)
        {
            self.spill_error = Some(e.to_string());
            self.file = None;
        }
        if self.head {
            let room = MAX_KEPT.saturating_sub(before.min(MAX_KEPT));
            self.kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
        } else {
            self.kept.extend_from_slice(chunk);
            if self.kept.len() > 2 * MAX_KEPT {
                let cut = self.kept.len() - MAX_KEPT;
                self.kept.drain(..cut);
            }
        }
    }

    /// Starts the file with what was kept so far (the whole stream up to now).
    fn open_spill(&mut self) {
        let Some(path) = &self.spill else { return };
        let opened = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path)
        });
        match opened.and_then(|mut f| f.write_all(&self.kept).map(|()| f)) {
            Ok(f) => self.file = Some(f),
            Err(e) => self.spill_error = Some(e.to_string()),
        }
    }

    fn text(&self) -> String {
        let mut kept: &[u8] = &self.kept;
        if !self.head && kept.len() > MAX_KEPT {
            kept = &kept[kept.len() - MAX_KEPT..];
        }
        let mut s = String::from_utf8_lossy(kept).into_owned();
        if self.total > MAX_KEPT {
            let whole = match (&self.spill, &self.file, &self.spill_error) {
                (Some(p), Some(_), _) => format!("the whole output is in {}", p.display()),
                (_, _, Some(e)) => format!("the rest could not be saved: {e}"),
                _ => "the rest was not kept".to_string(),
            };
            let note = format!("[{} of {} bytes kept; {whole}]", MAX_KEPT, self.total);
            if self.head {
                s.push_str(&format!("\n{note}"));
            } else {
                s = format!("{note}\n{s}");
            }
        }
        s
    }
}

/// Kills a process group (SIGKILL) when dropped, unless disarmed (`.0 = None`).
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0
            && let Ok(pgid) = libc::pid_t::try_from(pid)
            && pgid > 0
        {
            // SAFETY: a plain signal to the process group this action created (the child is its leader)
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// The child leads a process group of its own, and (Linux) is killed when drconsole dies.
fn own_group(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only calls async-signal-safe functions
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // the parent may have died between fork and prctl: then nobody would ever kill this child
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::_exit(137);
                }
                Ok(())
            });
        }
    }
}

/// How long an attempt waits for a process of an earlier attempt (a session killed a moment ago) when the step has
/// no `timeout` of its own.
pub const EARLIER_ATTEMPT_GRACE: Duration = Duration::from_secs(60);

/// Waits, for at most `bound` of run time, until no process of an earlier attempt of this step runs (a resume right
/// after a crash: the killed session's command may still be finishing); then fails naming the process left, which
/// it never kills (it may be doing what the step exists for).
async fn wait_for_earlier_attempt(ctx: &ActionCtx, bound: Duration) -> Result<(), ActionError> {
    let Some(first) = earlier_attempt_running(&ctx.run_id, &ctx.step_id) else { return Ok(()) };
    ctx.progress(
        format!(
            "an earlier attempt of step `{}` is still running (pid {first}): waiting up to {} for it to end",
            ctx.step_id,
            crate::util::fmt_duration(bound)
        ),
        None,
    );
    let deadline = std::time::Instant::now() + ctx.clock.real(bound);
    loop {
        let Some(pid) = earlier_attempt_running(&ctx.run_id, &ctx.step_id) else {
            ctx.progress(format!("the earlier attempt (pid {first}) ended: starting step `{}`", ctx.step_id), None);
            return Ok(());
        };
        if std::time::Instant::now() >= deadline {
            return Err(ActionError::fatal(format!(
                "an earlier attempt of step `{}` may still be running (pid {pid}, with DRCONSOLE_RUN_ID={} in its \
                 environment; waited {}): stop it, or wait for it to end, then retry",
                ctx.step_id,
                ctx.run_id,
                crate::util::fmt_duration(bound)
            )));
        }
        ctx.sleep(Duration::from_millis(250)).await?;
    }
}

/// A live process (not a zombie) started by an earlier attempt of this step of this run, if any (Linux: from
/// `/proc/*/environ`; elsewhere none is found).
fn earlier_attempt_running(run_id: &str, step_id: &str) -> Option<u32> {
    let run = format!("DRCONSOLE_RUN_ID={run_id}");
    let step = format!("DRCONSOLE_STEP_ID={step_id}");
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").ok()?;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(e.path().join("environ")) else { continue };
        let mut has_run = false;
        let mut has_step = false;
        for var in environ.split(|b| *b == 0) {
            has_run |= var == run.as_bytes();
            has_step |= var == step.as_bytes();
        }
        let alive = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|st| st.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
            .unwrap_or(false);
        if has_run && has_step && alive {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct S;
    impl Scope for S {
        fn lookup(&self, path: &[String]) -> Option<Value> {
            match path.join(".").as_str() {
                "vars.name" => Some(json!("x; touch pwned")),
                "vars.db-name" => Some(json!("a'b")),
                "steps.a.port" => Some(json!(5432)),
                _ => None,
            }
        }
    }

    #[test]
    fn references_become_quoted_expansions_for_their_context() {
        let (c, env) = shell_command("echo ${vars.name} \"in ${vars.name}\" 'lit ${vars.db-name}'", &S).unwrap();
        assert_eq!(c, "echo \"${DRC_VARS_NAME}\" \"in ${DRC_VARS_NAME}\" 'lit '\"${DRC_VARS_DB_NAME}\"''");
        assert_eq!(env.get("DRC_VARS_NAME"), Some(&json!("x; touch pwned")));
        assert_eq!(env.get("DRC_VARS_DB_NAME"), Some(&json!("a'b")));
        let (c, env) = shell_command("nc -z db ${steps.a.port}", &S).unwrap();
        assert_eq!(c, "nc -z db \"${DRC_STEPS_A_PORT}\"");
        assert_eq!(env.get("DRC_STEPS_A_PORT"), Some(&json!("5432")));
        assert!(shell_command("echo ${vars.nope}", &S).is_err());
    }

    #[test]
    fn stdout_is_capped_at_its_head_and_stderr_at_its_tail() {
        let mut c = Capture::new(None, true);
        c.push(&vec![b'a'; MAX_KEPT]);
        c.push(b"zzzz");
        let t = c.text();
        assert!(t.starts_with("aaa") && !t.contains('z'), "{}", &t[t.len() - 80..]);
        assert!(t.ends_with(&format!("[{MAX_KEPT} of {} bytes kept; the rest was not kept]", MAX_KEPT + 4)));
        let mut c = Capture::new(None, false);
        c.push(&vec![b'a'; 3 * MAX_KEPT]);
        c.push(b"end");
        let t = c.text();
        assert!(t.ends_with("aend"), "{}", &t[t.len() - 10..]);
    }
}
