#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The journal as a library: records and their checks, torn and damaged lines, permissions, secrets, the run lock,
//! and the prior state a resumed run starts from.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use drconsole::actions::{
    Action, ActionCtx, ActionError, ActionSpec, Effect, OutputSpec, Outputs, ParamKind, ParamSpec, Params, Registry,
};
use drconsole::engine::{Event, EventKind, EventSink, Outcome, Prompt, RunConfig, Status};
use drconsole::journal::{
    self, Journal, JournalError, LockInfo, Note, RunLock, RunSettings, StateDir, prior_state, read_journal,
};
use drconsole::{headless, runbook};

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

fn ev(seq: u64, secs: i64, kind: EventKind) -> Event {
    Event::new(seq, ts(secs), kind)
}

fn started(step: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted { step: step.into(), attempt, plan: String::new(), params: Map::new() }
}

fn succeeded(step: &str, outputs: Value) -> EventKind {
    let Value::Object(outputs) = outputs else { panic!("outputs must be an object") };
    EventKind::StepSucceeded { step: step.into(), attempt: 1, duration_ms: 1000, outputs }
}

/// A journal with `n` events.
fn journal_with(dir: &Path, n: u64) -> PathBuf {
    let mut j = Journal::open(dir).unwrap();
    j.set_reports(false);
    for i in 1..=n {
        j.event(&ev(i, i64::try_from(i).unwrap(), started(&format!("s{i}"), 1)));
    }
    dir.join("journal.jsonl")
}

#[test]
fn records_carry_a_sequence_number_and_a_checksum_and_read_back() {
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 3);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["seq"], json!(i + 1));
        assert_eq!(v["crc"].as_str().unwrap().len(), 16);
        assert_eq!(v["event"]["type"], "step_started");
    }
    let read = read_journal(d.path()).unwrap();
    assert_eq!(read.records.len(), 3);
    assert!(!read.torn_tail);
    assert_eq!(read.last_event_seq(), 3);
}

#[test]
fn a_torn_last_line_is_tolerated_and_cut_before_the_next_record() {
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 3);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":4,\"event\":{\"seq\":4,\"ts\":\"2026-");
    std::fs::write(&path, &text).unwrap();

    let read = read_journal(&path).unwrap();
    assert_eq!(read.records.len(), 3);
    assert!(read.torn_tail);

    // reopening (as a resume does) cuts the torn line off, so the next record starts on its own line
    let mut j = Journal::open(d.path()).unwrap();
    assert_eq!(j.seq(), 3);
    j.note(Note::Forced { by: "me@here".into(), old_sha256: "a".into(), new_sha256: "b".into(), at: ts(9) }).unwrap();
    let read = read_journal(&path).unwrap();
    assert_eq!(read.records.len(), 4);
    assert!(!read.torn_tail);
    assert!(matches!(read.records[3].1, journal::Record::Note(Note::Forced { .. })));
}

fn corrupt_line(path: &Path, line: usize, f: impl FnOnce(&str) -> Option<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match f(&lines[line - 1]) {
        Some(new) => lines[line - 1] = new,
        None => {
            lines.remove(line - 1);
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn corrupt_at(err: JournalError) -> (usize, String) {
    match err {
        JournalError::Corrupt { line, reason, .. } => (line, reason),
        other => panic!("expected a corruption error, got {other}"),
    }
}

#[test]
fn a_damaged_middle_line_is_reported_with_its_line_number() {
    // a byte changed inside a record
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 5);
    corrupt_line(&path, 3, |l| Some(l.replace("\"s3\"", "\"s9\"")));
    let (line, reason) = corrupt_at(read_journal(&path).unwrap_err());
    assert_eq!(line, 3);
    assert!(reason.contains("checksum mismatch"), "{reason}");
    let msg = read_journal(&path).unwrap_err().to_string();
    assert!(msg.contains("journal.jsonl:3:"), "{msg}");
    // a damaged journal is not appended to
    assert!(Journal::open(d.path()).is_err());
    // but a report can still show what came before the damage
    let (prefix, problem) = journal::read_journal_prefix(&path).unwrap();
    assert_eq!(prefix.records.len(), 2);
    assert!(problem.is_some());

    // a line missing
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 5);
    corrupt_line(&path, 2, |_| None);
    let (line, reason) = corrupt_at(read_journal(&path).unwrap_err());
    assert_eq!(line, 2);
    assert!(reason.contains("record number 3 where 2 was expected"), "{reason}");

    // garbage in the middle
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 5);
    corrupt_line(&path, 4, |_| Some("\u{0}\u{0}\u{0}garbage".into()));
    assert_eq!(corrupt_at(read_journal(&path).unwrap_err()).0, 4);

    // a complete last line (it has its newline) that is damaged is corruption too, not a torn write
    let d = tempfile::tempdir().unwrap();
    let path = journal_with(d.path(), 5);
    corrupt_line(&path, 5, |l| Some(l.replacen("step_started", "step_startet", 1)));
    assert_eq!(corrupt_at(read_journal(&path).unwrap_err()).0, 5);
}

// --- a real run in-process, with a test-only action that fetches a secret ---

const SECRET: &str = "hunter2-Zq9xVb7-correct-horse";

struct FetchSecret;
static FETCH: ActionSpec = ActionSpec {
    name: "test.fetch_secret",
    summary: "test only: returns a secret, as a Secrets Manager read would",
    params: &[],
    outputs: &[OutputSpec { name: "password", doc: "the secret" }],
    iam: &[],
    expected_secs: 1,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for FetchSecret {
    fn spec(&self) -> &'static ActionSpec {
        &FETCH
    }
    fn plan(&self, _: &Params) -> String {
        "fetch the database password".into()
    }
    async fn run(&self, ctx: &ActionCtx, _: &Params) -> Result<Outputs, ActionError> {
        ctx.register_secret(SECRET);
        ctx.progress(format!("fetched {SECRET}"), None);
        let mut o = Outputs::new();
        o.insert("password".into(), Value::String(SECRET.into()));
        Ok(o)
    }
}

struct UseSecret;
static USE: ActionSpec = ActionSpec {
    name: "test.use_secret",
    summary: "test only: takes a parameter marked secret and fails quoting it",
    params: &[ParamSpec { name: "token", kind: ParamKind::Str, required: true, secret: true, doc: "a secret" }],
    outputs: &[],
    iam: &[],
    expected_secs: 1,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for UseSecret {
    fn spec(&self) -> &'static ActionSpec {
        &USE
    }
    fn plan(&self, p: &Params) -> String {
        format!("log in with {}", p.str("token").unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let t = p.str("token")?;
        ctx.resource("creating", "test.session", t, "us-west-2", "pending");
        Err(ActionError::fatal(format!("login refused for token {t}")))
    }
}

fn registry() -> Registry {
    let mut actions: Vec<Arc<dyn Action>> = Registry::builtin().iter().cloned().collect();
    actions.push(Arc::new(FetchSecret));
    actions.push(Arc::new(UseSecret));
    Registry::new(actions)
}

const SECRET_RUNBOOK: &str = r#"
[runbook]
name = "secret-test"
title = "Secrets stay secret"
app = "test"
rto = "10m"
rpo = "1h"

[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"

[[step]]
id = "fetch"
title = "Step fetch"
action = "test.fetch_secret"

[[step]]
id = "echo"
title = "Step echo"
action = "shell"
needs = ["fetch"]
[step.with]
command = "echo 'password is ${steps.fetch.password}'; echo '${steps.fetch.password}' >&2"

[[step]]
id = "login"
title = "Step login"
action = "test.use_secret"
needs = ["echo"]
on_failure = "continue"
[step.with]
token = "${steps.fetch.password}"

[[step]]
id = "fail_loudly"
title = "Step fail_loudly"
action = "shell"
needs = ["login"]
on_failure = "continue"
[step.with]
command = "echo 'cannot connect with ${steps.fetch.password}' >&2; exit 3"
"#;

/// Runs a runbook in-process with the journal; returns (run dir, outcome, what the headless frontend printed).
fn run_in_process(state: &Path, text: &str, registry: Registry) -> (PathBuf, Outcome, String) {
    run_with_world(state, text, registry, None)
}

fn run_with_world(
    state: &Path,
    text: &str,
    registry: Registry,
    world: Option<Box<dyn journal::WorldStore>>,
) -> (PathBuf, Outcome, String) {
    let rb_path = state.join("rb.toml");
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(&rb_path, text).unwrap();
    let rb = runbook::load_str(&rb_path, text, &registry).unwrap_or_else(|d| panic!("{d}"));
    let cfg = RunConfig { backend: "sim".into(), ..RunConfig::default() };
    let settings = RunSettings { speed: 1.0, max_parallel: 4, ..RunSettings::default() };
    let mut prepared = journal::prepare_new(&StateDir { root: state.to_path_buf() }, rb, cfg, settings, false).unwrap();
    if let Some(w) = world {
        prepared.set_world_store(w);
    }
    let dir = prepared.dir.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (outcome, out) = rt.block_on(async move {
        let clock = prepared.clock();
        let (handle, guard) = prepared.start(registry, clock);
        let mut out = Vec::new();
        let opts = headless::Options { approve_all: true, operator: "tester@test".into(), ..Default::default() };
        let r = headless::run(handle, &opts, &mut out).await;
        drop(guard);
        (r.outcome, String::from_utf8(out).unwrap())
    });
    (dir, outcome, out)
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            all_files(&p, out);
        }
    }
}

#[test]
fn a_secret_appears_nowhere_under_the_run_directory_nor_on_screen() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let (dir, outcome, screen) = run_in_process(&state, SECRET_RUNBOOK, registry());
    assert_eq!(outcome, Outcome::Recovered, "{screen}");

    let mut files = Vec::new();
    all_files(&state, &mut files);
    let mut checked = 0;
    for f in files.iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(SECRET), "the secret is in {}", f.display());
        checked += 1;
    }
    // the journal, meta.json, the stored runbook, its sha256 and the three reports
    assert!(checked >= 8, "only {checked} files were written");
    assert!(!screen.contains(SECRET), "the secret was printed:\n{screen}");

    // it was redacted, not absent: every place it would have been shows ***
    let journal_text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(journal_text.contains("password is ***"), "the shell output is not in the journal");
    assert!(journal_text.contains("cannot connect with ***"), "the failure message is not in the journal");
    assert!(journal_text.contains("login refused for token ***"));
    assert!(journal_text.contains("fetched ***"));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("cannot connect with ***"), "{report}");
}

#[test]
fn the_run_directory_and_its_files_are_readable_by_the_owner_only_and_the_lock_is_released() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let (dir, outcome, _) = run_in_process(&state, SECRET_RUNBOOK, registry());
    assert_eq!(outcome, Outcome::Recovered);
    let mut files = Vec::new();
    all_files(&state, &mut files);
    files.push(dir.clone());
    for f in files.iter().filter(|p| *p != &state.join("rb.toml")) {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        let want = if f.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} has mode {mode:o}", f.display());
    }
    for f in
        ["journal.jsonl", "meta.json", "runbook.sha256", "runbook/0-rb.toml", "report.md", "report.json", "junit.xml"]
    {
        assert!(dir.join(f).is_file(), "{f} is missing");
    }
    let sums = std::fs::read_to_string(dir.join("runbook.sha256")).unwrap();
    let rb = runbook::load_str(&state.join("rb.toml"), SECRET_RUNBOOK, &registry()).unwrap();
    assert!(sums.contains(&rb.sha256()), "{sums}");
    let meta = journal::Meta::read(&dir).unwrap();
    assert_eq!(meta.sha256, rb.sha256());
    assert_eq!(meta.backend, "sim");
    assert_eq!(meta.pid, std::process::id());
    // the run ended: its lock is gone
    assert_eq!(std::fs::read_dir(state.join("locks")).unwrap().count(), 0);
}

// --- the run lock ---

fn info(pid: u32, host: &str, run_id: &str) -> LockInfo {
    LockInfo {
        user: "alice".into(),
        host: host.into(),
        pid,
        since: ts(0),
        run_id: run_id.into(),
        runbook: "failover".into(),
    }
}

/// A pid that is certainly not running: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn a_second_run_is_refused_and_told_who_holds_the_lock() {
    let d = tempfile::tempdir().unwrap();
    let key = journal::lock_key("failover", Some("123456789012"), "us-east-1", "us-west-2");
    let me = journal::hostname();
    let (held, taken) = RunLock::acquire(d.path(), &key, info(std::process::id(), &me, "run-1"), false, None).unwrap();
    assert!(taken.is_none());
    let err = RunLock::acquire(d.path(), &key, info(1, &me, "run-2"), true, None).unwrap_err();
    assert_eq!(err.exit_code(), 4);
    let msg = err.to_string();
    for part in [
        "already running",
        "user alice",
        &format!("host {me}"),
        &format!("pid {}", std::process::id()),
        "since",
        "run-1",
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    // another account or region set is another lock
    let other = journal::lock_key("failover", Some("123456789012"), "us-east-1", "eu-west-1");
    assert!(RunLock::acquire(d.path(), &other, info(1, &me, "run-3"), false, None).is_ok());
    drop(held);
    assert!(RunLock::acquire(d.path(), &key, info(1, &me, "run-4"), false, None).is_ok());
}

/// The console asks before its opening screen: a live holder is refused with the same message as the run would
/// get; no lock, a dead holder's or a released one passes (the run's acquire decides those), and nothing is taken.
#[test]
fn probing_the_lock_refuses_only_a_live_holder_and_takes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let key = journal::lock_key("failover", Some("123456789012"), "us-east-1", "us-west-2");
    let me = journal::hostname();
    assert!(RunLock::probe(d.path(), &key).is_ok(), "no lock");
    let (held, _) = RunLock::acquire(d.path(), &key, info(std::process::id(), &me, "run-1"), false, None).unwrap();
    let err = RunLock::probe(d.path(), &key).unwrap_err();
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains("already running") && err.to_string().contains("run-1"), "{err}");
    assert_eq!(
        std::fs::read_to_string(held.path()).unwrap(),
        serde_json::to_string_pretty(&info(std::process::id(), &me, "run-1")).unwrap(),
        "the probe leaves the lock as it was"
    );
    drop(held);
    assert!(RunLock::probe(d.path(), &key).is_ok(), "released");
    let stale = info(dead_pid(), &me, "run-dead");
    std::fs::write(d.path().join(format!("{key}.lock")), serde_json::to_string(&stale).unwrap()).unwrap();
    assert!(RunLock::probe(d.path(), &key).is_ok(), "a dead holder is the run's acquire to judge");
}

#[test]
fn a_lock_left_by_a_dead_process_is_reported_and_taken_over_only_explicitly() {
    let d = tempfile::tempdir().unwrap();
    let key = "failover--any-account--us-east-1--us-west-2";
    let me = journal::hostname();
    let stale = info(dead_pid(), &me, "run-dead");
    std::fs::write(d.path().join(format!("{key}.lock")), serde_json::to_string(&stale).unwrap()).unwrap();

    let err = RunLock::acquire(d.path(), key, info(std::process::id(), &me, "run-new"), false, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no longer running"), "{msg}");
    assert!(msg.contains("--take-over-lock"), "{msg}");
    assert!(msg.contains(&format!("pid {}", stale.pid)), "{msg}");
    assert_eq!(err.exit_code(), 4);

    let (lock, taken) = RunLock::acquire(d.path(), key, info(std::process::id(), &me, "run-new"), true, None).unwrap();
    let taken = taken.expect("the take-over is reported");
    assert_eq!(taken.previous, stale);
    assert!(taken.reason.contains("--take-over-lock"), "{}", taken.reason);
    let now: LockInfo = serde_json::from_str(&std::fs::read_to_string(lock.path()).unwrap()).unwrap();
    assert_eq!(now.run_id, "run-new");
}

#[test]
fn resuming_a_run_takes_over_the_lock_its_own_dead_session_left() {
    let d = tempfile::tempdir().unwrap();
    let key = "failover--any-account--us-east-1--us-west-2";
    let me = journal::hostname();
    let stale = info(dead_pid(), &me, "run-7");
    std::fs::write(d.path().join(format!("{key}.lock")), serde_json::to_string(&stale).unwrap()).unwrap();
    // another run may not
    assert!(RunLock::acquire(d.path(), key, info(std::process::id(), &me, "run-8"), false, Some("run-8")).is_err());
    let (_lock, taken) =
        RunLock::acquire(d.path(), key, info(std::process::id(), &me, "run-7"), false, Some("run-7")).unwrap();
    assert!(taken.unwrap().reason.contains("resuming run run-7"));
    // but never a lock whose holder is alive, even the same run
    let key2 = "other--any-account--us-east-1--us-west-2";
    let _live = RunLock::acquire(d.path(), key2, info(std::process::id(), &me, "run-9"), false, None).unwrap();
    assert!(RunLock::acquire(d.path(), key2, info(1, &me, "run-9"), true, Some("run-9")).is_err());
}

// --- the prior state of a resumed run ---

#[test]
fn prior_state_keeps_successes_outputs_approvals_and_answers() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    j.set_reports(false);
    let incident = ts(-600);
    let events = vec![
        EventKind::RunStarted {
            run_id: "r1".into(),
            runbook: "rb".into(),
            title: "t".into(),
            app: "a".into(),
            path: "rb.toml".into(),
            sha256: "00".into(),
            backend: "sim".into(),
            account: None,
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            incident_start: incident,
            rto_secs: 3600,
            rpo_secs: 3600,
            deadline: ts(3000),
            speed: 1.0,
            // as the engine announces them: the run's view (which resume reads) knows these steps
            steps: ["a", "b", "pick", "task", "secret", "c", "f"]
                .map(|id| drconsole::run::StepInfo {
                    id: id.into(),
                    title: id.into(),
                    action: "builtin.wait".into(),
                    needs: Vec::new(),
                    expected_secs: 60,
                    confirm: false,
                    on_failure: drconsole::runbook::OnFailure::Pause,
                    p50_secs: None,
                    p90_secs: None,
                })
                .to_vec(),
            drill: false,
        },
        started("a", 1),
        succeeded("a", json!({"id": "vol-1"})),
        EventKind::StepApproved { step: "b".into(), by: "alice".into() },
        started("b", 1),
        started("b", 2),
        started("pick", 1),
        EventKind::OperatorRequest {
            step: "pick".into(),
            prompt: Prompt::Choice { message: "which?".into(), candidates: Vec::new() },
        },
        EventKind::OperatorAnswered { step: "pick".into(), answer: "snap-42".into(), by: "bob".into() },
        started("task", 1),
        EventKind::OperatorRequest { step: "task".into(), prompt: Prompt::Done { instructions: "do it".into() } },
        EventKind::OperatorAnswered { step: "task".into(), answer: "done".into(), by: "carol".into() },
        started("secret", 1),
        succeeded("secret", json!({"password": "***"})),
        EventKind::StepSkipped { step: "c".into(), reason: "not needed".into(), by: "dave".into() },
        started("f", 1),
        EventKind::StepFailed {
            step: "f".into(),
            attempt: 1,
            error: "boom".into(),
            policy: drconsole::runbook::OnFailure::Pause,
            cause: None,
        },
    ];
    for (i, k) in events.into_iter().enumerate() {
        let n = u64::try_from(i).unwrap() + 1;
        j.event(&ev(n, i64::try_from(i).unwrap() * 10, k));
    }
    let read = read_journal(d.path()).unwrap();
    let (p, info) = prior_state(&read);
    assert_eq!(info.incident_start, Some(incident));
    assert_eq!(p.last_seq, 17);
    assert_eq!(p.elapsed, std::time::Duration::from_secs(160));

    let a = &p.steps["a"];
    assert_eq!(a.status, Status::Succeeded);
    assert_eq!(a.outputs["id"], json!("vol-1"));
    let b = &p.steps["b"];
    assert_eq!((b.status, b.attempts, b.approved), (Status::Running, 2, true));
    assert_eq!(p.steps["c"].status, Status::Skipped);
    assert_eq!(p.steps["f"].status, Status::Failed);
    // outputs that held a secret were redacted: the step runs again to get them back
    assert_eq!(p.steps["secret"].status, Status::Pending);
    // a choice replays the answer; a manual task replays who confirmed it
    assert_eq!(p.answers["pick"].reply, "snap-42");
    assert_eq!(p.answers["task"].reply, "carol");
    assert_eq!(p.answers["task"].answer, "done");
}

const MANUAL_RUNBOOK: &str = r#"
[runbook]
name = "manual-resume"
title = "A manual task answered before a crash"
app = "test"
rto = "10m"
rpo = "1h"

[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"

[[step]]
id = "first"
title = "Step first"
action = "shell"
[step.with]
command = "echo one"

[[step]]
id = "task"
title = "Step task"
action = "manual"
needs = ["first"]
[step.with]
instructions = "Flip the switch"

[[step]]
id = "after"
title = "Step after"
action = "shell"
needs = ["task"]
[step.with]
command = "echo '${steps.first.stdout} after the task'"
"#;

#[test]
fn a_resumed_engine_keeps_outputs_and_does_not_ask_again_what_was_answered() {
    use drconsole::engine::{Clock, Emitter, Engine, PriorAnswer, PriorState, PriorStep};
    let reg = Registry::builtin();
    let rb = runbook::load_str(Path::new("manual.toml"), MANUAL_RUNBOOK, &reg).unwrap();
    let mut prior = PriorState { last_seq: 40, ..PriorState::default() };
    // `first` succeeded with an output the shell would not give now: it must not run again
    let mut outputs = Map::new();
    outputs.insert("stdout".into(), json!("kept"));
    prior.steps.insert("first".into(), PriorStep { status: Status::Succeeded, attempts: 1, outputs, approved: false });
    prior.steps.insert(
        "task".into(),
        PriorStep { status: Status::Running, attempts: 1, outputs: Map::new(), approved: false },
    );
    prior
        .answers
        .insert("task".into(), PriorAnswer { answer: "done".into(), by: "carol".into(), reply: "carol".into() });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (result, out) = rt.block_on(async move {
        let clock = Clock::new(1.0);
        let emitter = Emitter::new(clock.clone());
        let engine = Engine::resume(Arc::new(rb), reg, RunConfig::default(), clock, emitter, prior);
        let handle = engine.launch();
        let mut out = Vec::new();
        // no approvals: a question would block the run (exit 3)
        let opts = headless::Options { json: true, ..Default::default() };
        let r = headless::run(handle, &opts, &mut out).await;
        (r, String::from_utf8(out).unwrap())
    });
    assert_eq!(result.outcome, Outcome::Recovered, "{out}");
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // numbering continues after the journal's last event
    assert_eq!(events[0]["seq"], json!(41));
    let of = |t: &str, step: &str| events.iter().filter(|e| e["type"] == t && e["step"] == step).count();
    assert_eq!(of("step_started", "first"), 0, "{out}");
    assert_eq!(of("operator_request", "task"), 0, "{out}");
    assert_eq!(of("operator_answered", "task"), 1, "{out}");
    let after = events.iter().find(|e| e["type"] == "step_succeeded" && e["step"] == "after").unwrap();
    assert_eq!(after["outputs"]["stdout"], json!("kept after the task"));
    let answered = events.iter().find(|e| e["type"] == "operator_answered").unwrap();
    assert_eq!(answered["by"], json!("carol"));
    // the task's attempt numbering continues
    let task = events.iter().find(|e| e["type"] == "step_started" && e["step"] == "task").unwrap();
    assert_eq!(task["attempt"], json!(2));
}

/// A stand-in for the simulator's world: counts its saves, and holds the secret (as a careless implementation
/// might).
struct FakeWorld {
    saves: Arc<std::sync::atomic::AtomicUsize>,
}

impl journal::WorldStore for FakeWorld {
    fn save(&mut self) -> Result<Vec<u8>, String> {
        let n = self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(serde_json::to_vec(&json!({"saves": n, "secrets": {"db": SECRET}})).unwrap())
    }
}

#[test]
fn the_world_store_is_saved_beside_the_journal_at_each_checkpoint_without_secrets() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let saves = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let world = FakeWorld { saves: saves.clone() };
    let (dir, outcome, _) = run_with_world(&state, SECRET_RUNBOOK, registry(), Some(Box::new(world)));
    assert_eq!(outcome, Outcome::Recovered);
    let saved = journal::load_world(&dir).unwrap().expect("world.json was written");
    let v: Value = serde_json::from_slice(&saved).unwrap();
    // the last save is the one on disk: at the run's end
    let n = saves.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(v["saves"], json!(n));
    // one save per checkpoint: run start, the four step outcomes, the resource, run end at least
    assert!(n >= 7, "only {n} saves");
    // the secret registered during the run is redacted from the saved world
    assert_eq!(v["secrets"]["db"], json!("***"));
    let mode = std::fs::metadata(dir.join("world.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // a run without a world store has none
    let d2 = tempfile::tempdir().unwrap();
    let (dir2, _, _) = run_in_process(&d2.path().join("state"), SECRET_RUNBOOK, registry());
    assert!(journal::load_world(&dir2).unwrap().is_none());
}

#[test]
fn follow_replays_every_session_of_a_resumed_run_and_ends_with_the_last() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    j.set_reports(false);
    let finished = |outcome: Outcome| EventKind::RunFinished {
        outcome,
        duration_secs: 1,
        rto_secs: 60,
        rto_achieved_secs: 1,
        rto_met: false,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        cancelled: 0,
        message: String::new(),
    };
    j.event(&ev(1, 1, started("a", 1)));
    j.event(&ev(2, 2, finished(Outcome::Interrupted)));
    j.note(Note::Session { number: 2, resumed: true, user: "u".into(), host: "h".into(), pid: 1, at: ts(3) }).unwrap();
    j.event(&ev(3, 4, started("a", 2)));
    j.event(&ev(4, 5, finished(Outcome::Recovered)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seqs = rt.block_on(async {
        let mut rx = journal::follow(d.path());
        let mut seqs = Vec::new();
        // the stream closes by itself after the last end
        while let Some(e) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await.unwrap() {
            seqs.push(e.seq);
        }
        seqs
    });
    assert_eq!(seqs, [1, 2, 3, 4]);
}
