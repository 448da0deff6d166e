//! A reusable crash harness: runs the real binary headless, SIGKILLs it (the whole process group, as a lost machine
//! or SSH session would) at a chosen point, resumes the run with `drconsole resume RUN --headless ...` until it
//! ends, and checks every journal reads valid. Point it at any runbook: the generic-action crash test uses files
//! as resources; a simulator runbook compares the saved world instead (see `Scenario::state`).
//!
//! Include it with `#[path = "support/crash.rs"] mod crash;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drconsole::engine::EventKind;
use drconsole::journal::{self, JournalRead};

/// Where to kill the run.
#[derive(Debug, Clone)]
pub enum KillPoint {
    /// Right after journal record N is on disk (exact: the binary kills itself, debug builds only).
    AfterRecord(u64),
    /// In the window between a create call of this resource kind returning and its `created` record: the cloud
    /// holds the resource (the simulator's world is saved with it), the journal never learns its id.
    BeforeCreated(String),
    /// From outside, as soon as this path exists: `kill -9` of the process group.
    WhenPathExists(PathBuf),
    /// From outside, as soon as an entry named `prefix*` appears in `dir` (e.g. a resource created by a step whose
    /// success the journal does not know yet): `kill -9` of the process group.
    WhenEntryAppears { dir: PathBuf, prefix: String },
}

impl KillPoint {
    fn reached(&self) -> bool {
        match self {
            KillPoint::AfterRecord(_) | KillPoint::BeforeCreated(_) => false,
            KillPoint::WhenPathExists(p) => p.exists(),
            KillPoint::WhenEntryAppears { dir, prefix } => std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with(prefix.as_str()))
                })
                .unwrap_or(false),
        }
    }
}

/// How to run one scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub bin: PathBuf,
    pub runbook: PathBuf,
    /// Arguments of the first run besides the runbook (e.g. `--headless --yes --speed 10`).
    pub run_args: Vec<String>,
    /// Arguments of each resume besides the run id (e.g. `--headless --yes`).
    pub resume_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Longest a single process may take before the harness calls it hung (scale up for slow CI).
    pub timeout: Duration,
}

/// What happened to one run, from start to its final session.
#[derive(Debug, Clone)]
pub struct RunTrace {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// Whether the kill landed (the run had not ended before the kill point).
    pub killed: bool,
    /// Journal records present when the process died.
    pub records_at_kill: u64,
    /// Steps whose success the journal held when the process died: they must never run again.
    pub succeeded_before_kill: Vec<String>,
    /// Exit code of the last process (0 = recovered).
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The final journal, read and checked.
    pub journal: JournalRead,
}

impl Scenario {
    fn command(&self, state: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        // `--state-dir` would have to follow the subcommand; the environment works for runs and resumes alike
        c.env("DRCONSOLE_STATE_DIR", state);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env_remove(journal::KILL_AFTER_ENV);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // its own process group, so a kill takes its `sh -c` children too
        c.process_group(0);
        c
    }

    /// A run to its end, no kill.
    pub fn run_uninterrupted(&self, state: &Path) -> RunTrace {
        let mut c = self.command(state);
        c.args(&self.run_args).arg(&self.runbook);
        let (code, out, err) = wait(c, None, self.timeout);
        self.trace(state, false, 0, Vec::new(), code, out, err)
    }

    /// A run killed at `point`, then resumed until it ends.
    pub fn crash_and_resume(&self, state: &Path, point: &KillPoint) -> RunTrace {
        let mut c = self.command(state);
        c.args(&self.run_args).arg(&self.runbook);
        match point {
            KillPoint::AfterRecord(n) => {
                c.env(journal::KILL_AFTER_ENV, n.to_string());
            }
            KillPoint::BeforeCreated(kind) => {
                c.env(journal::KILL_AFTER_ENV, format!("created:{kind}"));
            }
            _ => {}
        }
        let (code, out, err) = wait(c, Some(point), self.timeout);
        let run_dir = only_run(state);
        let killed = code == -9;
        let at_kill =
            journal::read_journal(&run_dir).unwrap_or_else(|e| panic!("journal after the kill at {point:?}: {e}"));
        let records_at_kill = at_kill.last_record_seq();
        let succeeded = succeeded_steps(&at_kill);
        if !killed {
            return self.trace(state, false, records_at_kill, succeeded, code, out, err);
        }
        let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
        // as an operator would: wait for what the killed run had started to end (resume refuses to start a step
        // whose earlier attempt may still be running)
        wait_for_children_of(&run_id, std::time::Duration::from_secs(15));
        let mut c = self.command(state);
        c.arg("resume").arg(&run_id).args(&self.resume_args);
        let (code, out, err) = wait(c, None, self.timeout);
        self.trace(state, true, records_at_kill, succeeded, code, out, err)
    }

    #[allow(clippy::too_many_arguments)]
    fn trace(
        &self,
        state: &Path,
        killed: bool,
        records_at_kill: u64,
        succeeded_before_kill: Vec<String>,
        exit_code: i32,
        stdout: String,
        stderr: String,
    ) -> RunTrace {
        let run_dir = only_run(state);
        let journal = journal::read_journal(&run_dir)
            .unwrap_or_else(|e| panic!("the final journal of {} is not valid: {e}", run_dir.display()));
        RunTrace {
            run_id: run_dir.file_name().unwrap().to_string_lossy().into_owned(),
            run_dir,
            killed,
            records_at_kill,
            succeeded_before_kill,
            exit_code,
            stdout,
            stderr,
            journal,
        }
    }
}

/// The single run directory under a state directory.
pub fn only_run(state: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .unwrap_or_else(|e| panic!("no runs under {}: {e}", state.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "expected one run under {}: {runs:?}", state.display());
    runs.into_iter().next().unwrap()
}

/// Steps that succeeded (last word), per the journal.
pub fn succeeded_steps(j: &JournalRead) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for ev in j.events() {
        match &ev.kind {
            EventKind::StepSucceeded { step, .. } if !out.contains(step) => out.push(step.clone()),
            EventKind::StepStarted { step, .. } => out.retain(|s| s != step),
            _ => {}
        }
    }
    out
}

/// The outcome of the last `run_finished` in a journal.
pub fn final_outcome(j: &JournalRead) -> Option<String> {
    j.events()
        .filter_map(|e| match &e.kind {
            EventKind::RunFinished { outcome, .. } => Some(outcome.as_str().to_string()),
            _ => None,
        })
        .last()
}

/// Runs a command to its end (or kills its process group once `kill_when` exists); returns (exit code, or -signal;
/// stdout; stderr).
fn wait(mut c: Command, kill_when: Option<&KillPoint>, timeout: Duration) -> (i32, String, String) {
    let mut child = c.spawn().expect("start drconsole");
    let pgid = i32::try_from(child.id()).unwrap();
    // drain the pipes in threads so a chatty run never blocks on a full pipe
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).ok();
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if kill_when.is_some_and(KillPoint::reached) {
            // SAFETY: a signal to the process group we created
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        if start.elapsed() > timeout {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            panic!("drconsole did not finish within {timeout:?}; stderr: {}", te.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = to.join().unwrap_or_default();
    let err = te.join().unwrap_or_default();
    let code = status.code().unwrap_or_else(|| -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    (code, out, err)
}

/// Waits until no process carries `DRCONSOLE_RUN_ID=<run_id>` in its environment (a killed run's shell steps), at
/// most `limit`.
pub fn wait_for_children_of(run_id: &str, limit: std::time::Duration) {
    let needle = format!("DRCONSOLE_RUN_ID={run_id}");
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let alive = std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        });
        if !alive {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
