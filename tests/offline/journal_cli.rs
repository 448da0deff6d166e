#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The journal through the binary: resume refusing a changed runbook (and `--force`), the run lock between two
//! processes and a stale lock taken over, a damaged journal reported with its line, `runs`, the default state
//! directory, and watchers following a live run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("drconsole")
}

fn drc(state: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("DRCONSOLE_STATE_DIR", state).env_remove(drconsole::journal::KILL_AFTER_ENV).stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn runbook(dir: &Path, name: &str, steps: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let body = format!(
        "[runbook]\nname = \"{name}\"\ntitle = \"Test {name}\"\napp = \"test\"\nrto = \"10m\"\nrpo = \"1h\"\n\n\
         [target]\nbackend = \"sim\"\naccount = \"123456789012\"\nprimary = \"us-east-1\"\nsecondary = \"us-west-2\"\n\n{steps}"
    );
    std::fs::write(&p, body).unwrap();
    p
}

const CONFIRM_STEPS: &str = r#"
[[step]]
id = "prepare"
title = "Prepare"
action = "shell"
[step.with]
command = "echo prepared"

[[step]]
id = "cutover"
title = "Cut over"
action = "shell"
needs = ["prepare"]
confirm = true
[step.with]
command = "echo '${steps.prepare.stdout} and cut over'"
"#;

fn only_run(state: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn run_id(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn journal_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("journal.jsonl")).unwrap()
}

#[test]
fn resume_refuses_a_runbook_changed_since_the_run_started_unless_forced_and_records_the_force() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let rb = runbook(d.path(), "confirm-me", CONFIRM_STEPS);

    // a headless run without --yes stops at the confirmation (exit 3): resumable
    let out = run({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let dir = only_run(&state);
    let id = run_id(&dir);

    // the runbook changes
    let original = std::fs::read_to_string(&rb).unwrap();
    std::fs::write(&rb, original.replace("and cut over", "and cut over now")).unwrap();
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", &id, "--headless", "--yes"]);
        c
    });
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for part in ["changed since run", "sha256 was", "--force", &id] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    assert!(!journal_text(&dir).contains("\"forced\""));

    // --force resumes with the new text, and says so in the journal and the report
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", &id, "--headless", "--yes", "--force"]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("stdout=prepared and cut over now"), "{stdout}");
    // `prepare` succeeded in the first session: not run again
    assert!(!stdout.contains("start    prepare"), "{stdout}");
    let j = journal_text(&dir);
    assert!(j.contains("\"kind\":\"forced\""), "{j}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("| forced |"), "{report}");
    assert!(report.contains("resumed with a changed runbook"), "{report}");
    // every journal line still checks out
    drconsole::journal::read_journal(&dir).unwrap();

    // a recovered run has nothing left to resume
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", &id, "--headless"]);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already recovered"), "{}", text(&out.stderr));
}

/// Opens a gate file when dropped, so a run waiting on it ends even when a test fails half-way.
struct OpenOnDrop(PathBuf);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// Kills a child process (that the test started) when dropped, so a failing test leaves nothing running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_child(mut child: Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > LONG {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gate_steps(gate: &Path) -> String {
    format!(
        r#"
[[step]]
id = "first"
title = "First"
action = "wait"
[step.with]
duration = "1s"

[[step]]
id = "gate"
title = "Wait for the gate"
action = "shell"
needs = ["first"]
[step.with]
command = "while [ ! -e {} ]; do sleep 0.05; done; echo opened"

[[step]]
id = "last"
title = "Last"
action = "shell"
needs = ["gate"]
[step.with]
command = "echo done"
"#,
        gate.display()
    )
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock_and_a_stale_lock_is_taken_over_explicitly() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let gate = d.path().join("gate");
    let rb = runbook(d.path(), "locked", &gate_steps(&gate));
    let _open = OpenOnDrop(gate.clone());

    let first = {
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb).stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let lock = state.join("locks/locked--123456789012--us-east-1--us-west-2.lock");
    wait_for("the first run at its gate", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("run_id"))
            && std::fs::read_dir(state.join("runs")).is_ok_and(|mut rd| {
                rd.next().is_some_and(|e| {
                    std::fs::read_to_string(e.unwrap().path().join("journal.jsonl"))
                        .is_ok_and(|j| j.contains("\"step\":\"gate\""))
                })
            })
    });

    let out = run({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    let host = drconsole::journal::hostname();
    for part in ["already running".to_string(), format!("pid {}", first.id()), format!("host {host}"), "since".into()] {
        assert!(err.contains(&part), "`{part}` missing from: {err}");
    }
    // only the first run's directory exists, and it is listed as running
    assert_eq!(std::fs::read_dir(state.join("runs")).unwrap().count(), 1);
    let out = run({
        let mut c = drc(&state);
        c.args(["runs", "--json"]);
        c
    });
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "running", "{runs}");

    std::fs::write(&gate, "").unwrap();
    assert!(wait_child(first, "the first run").success());
    assert!(!lock.exists(), "the lock was not released");

    // a lock left by a process that died (SIGKILL leaves it behind)
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = serde_json::json!({
        "user": "mallory", "host": host, "pid": dead_pid, "since": "2026-11-21T03:00:00Z",
        "run_id": "20261121-030000-dead", "runbook": "locked"
    });
    std::fs::write(&lock, stale.to_string()).unwrap();
    let out = run({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    for part in ["no longer running", "user mallory", &format!("pid {dead_pid}"), "--take-over-lock"] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    let out = run({
        let mut c = drc(&state);
        c.args(["--headless", "--take-over-lock"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let newest = std::fs::read_dir(state.join("runs")).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    let j = journal_text(&newest);
    assert!(j.contains("\"kind\":\"lock_taken_over\""), "{j}");
    assert!(j.contains("20261121-030000-dead"), "{j}");
    assert!(std::fs::read_to_string(newest.join("report.md")).unwrap().contains("lock taken over"));
    assert!(!lock.exists());
}

#[test]
fn a_damaged_journal_is_reported_with_its_line_number() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let rb = runbook(d.path(), "damaged", CONFIRM_STEPS);
    let out = run({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(3));
    let dir = only_run(&state);
    let id = run_id(&dir);
    let path = dir.join("journal.jsonl");
    let t = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
    lines[3] = lines[3].replacen("\"seq\":", "\"seq\": ", 1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    for args in [vec!["report", id.as_str()], vec!["resume", id.as_str(), "--headless", "--yes"]] {
        let out = run({
            let mut c = drc(&state);
            c.args(&args);
            c
        });
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("journal.jsonl:4:"), "{args:?}: {err}");
        assert!(err.contains("checksum"), "{args:?}: {err}");
    }
    // `runs` still lists it, with the problem
    let out = run({
        let mut c = drc(&state);
        c.args(["runs", "--json"]);
        c
    });
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(runs[0]["problem"].as_str().unwrap().contains("journal.jsonl:4:"), "{runs}");
}

#[test]
fn runs_lists_each_run_with_its_status_and_outcome_under_the_xdg_state_dir() {
    let d = tempfile::tempdir().unwrap();
    let xdg = d.path().join("xdg");
    let rb = runbook(d.path(), "listed", CONFIRM_STEPS);
    let cmd = || {
        let mut c = Command::new(bin());
        c.env_remove("DRCONSOLE_STATE_DIR").env("XDG_STATE_HOME", &xdg).stdin(Stdio::null());
        c
    };
    let out = run({
        let mut c = cmd();
        c.args(["--headless", "--yes"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run({
        let mut c = cmd();
        c.args(["--headless"]).arg(&rb);
        c
    });
    assert_eq!(out.status.code(), Some(3));
    let out = run({
        let mut c = cmd();
        c.args(["runs", "--json"]);
        c
    });
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert!(r["dir"].as_str().unwrap().starts_with(xdg.join("drconsole/runs").to_str().unwrap()), "{r}");
        assert_eq!(r["runbook"], "listed");
        assert_eq!(r["status"], "ended");
    }
    let mut outcomes: Vec<&str> = runs.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["blocked", "recovered"]);
    let out = run({
        let mut c = cmd();
        c.arg("runs");
        c
    });
    let table = text(&out.stdout);
    assert!(table.starts_with("RUN "), "{table}");
    assert!(table.contains("listed") && table.contains("blocked") && table.contains("recovered"), "{table}");
}

/// Collects a child's stdout lines as they come.
fn collect_lines(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let l = lines.clone();
    let t = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            l.lock().unwrap().push(line.unwrap());
        }
    });
    (lines, t)
}

#[test]
fn several_watchers_follow_a_live_headless_run_and_print_what_it_prints() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let gate = d.path().join("gate");
    let rb = runbook(d.path(), "watched", &gate_steps(&gate));
    let _open = OpenOnDrop(gate.clone());

    let mut runner = {
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb).stdout(Stdio::piped()).stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let (runner_lines, runner_reader) = collect_lines(&mut runner);
    wait_for("the run to reach the gate", || {
        std::fs::read_dir(state.join("runs")).is_ok_and(|mut rd| {
            rd.next().is_some_and(|e| {
                std::fs::read_to_string(e.unwrap().path().join("journal.jsonl"))
                    .is_ok_and(|j| j.contains("\"type\":\"step_started\",\"step\":\"gate\""))
            })
        })
    });
    let dir = only_run(&state);
    let id = run_id(&dir);

    let mut watchers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = drc(&state);
            c.args(["watch", &id]).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let (lines, reader) = collect_lines(&mut child);
            (child, lines, reader)
        })
        .collect();
    // each watcher shows the live run up to where it is: the gate step running, the run not finished
    for (_, lines, _) in &watchers {
        wait_for("a watcher to show the running gate step", || {
            lines.lock().unwrap().iter().any(|l| l.contains("start    gate"))
        });
    }
    assert!(!journal_text(&dir).contains("run_finished"), "the run finished before the watchers caught up");
    for (_, lines, _) in &watchers {
        assert!(!lines.lock().unwrap().iter().any(|l| l.contains("outcome:")));
    }

    // open the gate: the run goes on, and the watchers follow it to the end by themselves
    std::fs::write(&gate, "").unwrap();
    assert!(wait_child(runner, "the run").success());
    runner_reader.join().unwrap();
    let want = runner_lines.lock().unwrap().clone();
    assert!(want.iter().any(|l| l.contains("ok       last")), "{want:#?}");
    assert!(want.iter().any(|l| l.starts_with("outcome:  recovered")), "{want:#?}");
    for (child, lines, reader) in watchers.drain(..) {
        assert!(wait_child(child, "a watcher").success());
        reader.join().unwrap();
        assert_eq!(*lines.lock().unwrap(), want, "a watcher's output differs from the run's");
    }
}

#[test]
fn every_file_of_a_runbook_that_extends_a_procedure_is_stored_and_a_change_to_the_procedure_blocks_resume() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let base = d.path().join("procedure.toml");
    let base_text = format!(
        "[runbook]\nname = \"procedure\"\ntitle = \"A shared procedure\"\napp = \"any\"\nrto = \"10m\"\nrpo = \"1h\"\n\n\
         [target]\nbackend = \"sim\"\nprimary = \"us-east-1\"\nsecondary = \"us-west-2\"\n{CONFIRM_STEPS}"
    );
    std::fs::write(&base, &base_text).unwrap();
    let app = d.path().join("app.toml");
    let app_text = "[runbook]\nname = \"app-failover\"\ntitle = \"App\"\napp = \"app\"\nextends = \"procedure.toml\"\n";
    std::fs::write(&app, app_text).unwrap();

    let out = run({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&app);
        c
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let dir = only_run(&state);
    assert_eq!(std::fs::read_to_string(dir.join("runbook/0-app.toml")).unwrap(), app_text);
    assert_eq!(std::fs::read_to_string(dir.join("runbook/1-procedure.toml")).unwrap(), base_text);
    let sums = std::fs::read_to_string(dir.join("runbook.sha256")).unwrap();
    assert_eq!(sums.lines().count(), 3, "{sums}");
    assert!(sums.contains("procedure.toml") && sums.contains("app.toml"), "{sums}");

    // the procedure, not the runbook itself, changes: still a different runbook
    std::fs::write(&base, base_text.replace("echo prepared", "echo prepared twice")).unwrap();
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", "last", "--headless", "--yes"]);
        c
    });
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("changed since run"));
}

#[test]
fn a_killed_run_is_listed_as_crashed_and_a_watcher_says_it_can_be_resumed() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let rb = runbook(d.path(), "killed", CONFIRM_STEPS);
    let out = run({
        let mut c = drc(&state);
        c.args(["--headless", "--yes"]).arg(&rb).env(drconsole::journal::KILL_AFTER_ENV, "4");
        c
    });
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(9));
    let dir = only_run(&state);
    let id = run_id(&dir);
    let out = run({
        let mut c = drc(&state);
        c.args(["runs", "--json"]);
        c
    });
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "crashed", "{runs}");
    assert_eq!(runs[0]["outcome"], "");
    // its lock is left behind, held by a dead process
    assert_eq!(std::fs::read_dir(state.join("locks")).unwrap().count(), 1);

    let mut watcher = KillOnDrop({
        let mut c = drc(&state);
        c.args(["watch", &id]).stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().unwrap()
    });
    let err = watcher.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let notice = rx.recv_timeout(LONG).unwrap();
    assert!(notice.contains("no longer running") && notice.contains("resume"), "{notice}");
    drop(watcher);

    // the runbook moved: resume says so, and takes its new path (same text, same sha256)
    let moved = d.path().join("moved.toml");
    std::fs::rename(&rb, &moved).unwrap();
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", &id, "--headless", "--yes"]);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--runbook PATH"), "{}", text(&out.stderr));

    // resumed, it finishes, and `runs` says so
    let out = run({
        let mut c = drc(&state);
        c.args(["resume", &id, "--headless", "--yes", "--runbook"]).arg(&moved);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run({
        let mut c = drc(&state);
        c.args(["runs", "--json"]);
        c
    });
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((runs[0]["status"].as_str(), runs[0]["outcome"].as_str()), (Some("ended"), Some("recovered")));
    assert_eq!(runs[0]["sessions"], 2);
    assert_eq!(std::fs::read_dir(state.join("locks")).unwrap().count(), 0);
}

/// A tmux server of its own, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0, "-f", "/dev/null"]);
        c
    }
    fn capture(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-J", "-t", "watch"]).output().unwrap();
        text(&out.stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

#[test]
fn a_watcher_in_tmux_shows_the_live_run_on_its_screen() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()),
        "tmux is needed for this test (scripts/test.sh installs it)"
    );
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let gate = d.path().join("gate");
    let rb = runbook(d.path(), "on-screen", &gate_steps(&gate));
    let _open = OpenOnDrop(gate.clone());
    let runner = KillOnDrop({
        let mut c = drc(&state);
        c.args(["--headless"]).arg(&rb).stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    });
    wait_for("the run to reach the gate", || {
        std::fs::read_dir(state.join("runs")).is_ok_and(|mut rd| {
            rd.next().is_some_and(|e| {
                std::fs::read_to_string(e.unwrap().path().join("journal.jsonl"))
                    .is_ok_and(|j| j.contains("\"type\":\"step_started\",\"step\":\"gate\""))
            })
        })
    });
    let id = run_id(&only_run(&state));

    let tmux = Tmux(format!("drconsole-journal-{}", std::process::id()));
    let watch = format!(
        "DRCONSOLE_STATE_DIR='{}' '{}' watch {id}; echo WATCH-ENDED; sleep 600",
        state.display(),
        bin().display()
    );
    let st = tmux.cmd().args(["new-session", "-d", "-s", "watch", "-x", "200", "-y", "50", &watch]).status().unwrap();
    assert!(st.success());
    // the watcher is the read-only console: a WATCH badge, the steps, and no controls
    wait_for("the watcher's console to show the run", || {
        let screen = tmux.capture();
        screen.contains("WATCH (read-only)") && screen.contains("gate") && screen.contains("first")
    });
    let screen = tmux.capture();
    assert!(!screen.contains("RECOVERED"), "the run is still at its gate:\n{screen}");
    assert!(!screen.contains("WATCH-ENDED"), "{screen}");

    std::fs::write(&gate, "").unwrap();
    wait_for("the watcher's console to show the end of the run", || tmux.capture().contains("RECOVERED"));
    let screen = tmux.capture();
    assert!(screen.contains("last"), "{screen}");
    // `q` leaves the watcher; the run it followed is not affected
    assert!(tmux.cmd().args(["send-keys", "-t", "watch", "q"]).status().unwrap().success());
    wait_for("the watcher to quit", || tmux.capture().contains("WATCH-ENDED"));
    drop(runner);
}
