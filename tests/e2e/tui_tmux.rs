#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end: the real binary in tmux (`new-session`, `send-keys`, `capture-pane`). The console opens on a
//! simulator runbook, the operator approves a confirmation, the run recovers, the screen says so, and the exit code
//! follows the outcome. tmux is required: these tests fail, not skip, without it (scripts/test.sh installs it).
//!
//! `a_failover_on_the_simulator_with_the_picker_and_a_typed_cut_over` runs the Cross-sell regional failover: the
//! operator chooses a recovery point in the picker and types the DNS name to approve the traffic-moving cut-over.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Generous timeouts for a slow CI machine; `DRCONSOLE_TEST_TIMEOUT_SCALE=3` triples them.
fn timeout(secs: u64) -> Duration {
    let scale: f64 = std::env::var("DRCONSOLE_TEST_TIMEOUT_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    Duration::from_secs(secs).mul_f64(scale.max(1.0))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_tmux() {
    let ok = Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "tmux is required for the console's end-to-end tests: install it (apt-get install tmux) or run scripts/test.sh"
    );
}

/// One tmux server of our own (`-L`), one session running drconsole; killed on drop.
struct Session {
    socket: String,
    exit_file: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Session {
    /// Starts `drconsole ARGS` in a 120x40 tmux window; its exit code is written to a file when it ends.
    fn start(name: &str, args: &[&str]) -> Session {
        Self::start_with(name, args, &[])
    }

    /// Starts a new run in the console and starts it from the opening screen with Enter, as a person does.
    fn run(name: &str, args: &[&str]) -> Session {
        Self::run_with(name, args, &[])
    }

    /// Starts a new incident in the console and starts it from its opening screen with Enter.
    fn incident(name: &str, args: &[&str]) -> Session {
        let s = Self::start(name, args);
        s.wait_for("Enter start the incident", timeout(30));
        s.keys(&["Enter"]);
        s
    }

    fn run_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        let s = Self::start_with(name, args, env);
        s.wait_for("Enter start the run", timeout(30));
        s.keys(&["Enter"]);
        s
    }

    fn start_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        require_tmux();
        let dir = std::env::temp_dir().join(format!("drconsole-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exit_file = dir.join("exit");
        let socket = format!("drconsole-e2e-{name}-{}", std::process::id());
        let bin = env!("CARGO_BIN_EXE_drconsole");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        // the shell writes the exit code; `sleep` keeps the pane readable after the console ends
        let cmd = format!(
            "cd '{}' && '{bin}' {}; echo $? > '{}'; sleep 60",
            repo().display(),
            quoted.join(" "),
            exit_file.display()
        );
        let mut tmux = Command::new("tmux");
        tmux.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-s", "e2e"]);
        // the session starts with a known environment: no NO_COLOR unless the test sets it
        tmux.args(["-e", &format!("NO_COLOR={}", env.iter().find(|(k, _)| *k == "NO_COLOR").map_or("", |(_, v)| *v))]);
        for (k, v) in env.iter().filter(|(k, _)| *k != "NO_COLOR") {
            tmux.args(["-e", &format!("{k}={v}")]);
        }
        // each session journals into its own state dir, so parallel tests never share a run lock
        if !env.iter().any(|(k, _)| *k == "DRCONSOLE_STATE_DIR") {
            tmux.args(["-e", &format!("DRCONSOLE_STATE_DIR={}", dir.join("state").display())]);
        }
        let status = tmux.arg(cmd).env_remove("NO_COLOR").env("TERM", "xterm-256color").status().unwrap();
        assert!(status.success(), "tmux new-session failed");
        Session { socket, exit_file, _dir: TempDir(dir) }
    }

    /// The screen with its SGR escape sequences (`capture-pane -e`).
    fn screen_with_styles(&self) -> String {
        let out =
            Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-e", "-t", "e2e"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-t", "e2e"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; fails with the last screen.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        self.wait_until(&format!("show {text:?}"), |s| s.contains(text), within)
    }

    /// Waits for a popup titled `text` that opened by itself, and for its key guard to end (for 750 ms it ignores
    /// keys already on their way, and its key line says so).
    fn wait_popup(&self, text: &str, within: Duration) -> String {
        self.wait_for(text, within);
        self.wait_gone("just opened", timeout(10))
    }

    /// Waits until the screen no longer shows `text`.
    fn wait_gone(&self, text: &str, within: Duration) -> String {
        self.wait_until(&format!("stop showing {text:?}"), |s| !s.contains(text), within)
    }

    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > within {
                panic!("the screen did not {what} within {within:?}; it shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends keys as tmux names them (`y`, `Enter`, `C-c`, `Escape`).
    fn keys(&self, keys: &[&str]) {
        let status =
            Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "e2e"]).args(keys).status().unwrap();
        assert!(status.success());
    }

    fn resize(&self, w: u16, h: u16) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "resize-window", "-t", "e2e", "-x", &w.to_string(), "-y", &h.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "tmux resize-window failed");
    }

    /// The session's state directory (`DRCONSOLE_STATE_DIR`).
    fn state_dir(&self) -> PathBuf {
        self.exit_file.parent().unwrap().join("state")
    }

    /// The console's exit code, once it has ended.
    fn exit_code(&self, within: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&self.exit_file)
                && let Ok(code) = s.trim().parse()
            {
                return code;
            }
            if start.elapsed() > within {
                panic!("drconsole did not exit within {within:?}; the screen shows:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn demo() -> &'static str {
    "runbooks/examples/engine-demo.toml"
}

#[test]
fn approve_a_confirmation_and_recover() {
    assert!(Path::new(&repo().join(demo())).exists());
    let s = Session::run("approve", &[demo()]);
    let screen = s.wait_popup("Confirm step cutover", timeout(90));
    assert!(screen.contains("SIMULATOR"), "{screen}");
    assert!(screen.contains("Engine demo"), "{screen}");
    assert!(screen.contains("WAITING FOR YOU"), "{screen}");
    // the probe's output reaches the command as a variable, never as command text (issue 16)
    assert!(screen.contains("It will: run `test ''\"${DRC_STEPS_PROBE_STDOUT}\"''"), "{screen}");
    assert!(screen.contains("DRC_STEPS_PROBE_STDOUT=\"recovered in us-west-2\""), "{screen}");
    assert!(screen.contains("RTO 10m00s"), "{screen}");
    // the parallel branches ran first
    assert!(screen.contains("✓ ┌  drain_a"), "{screen}");
    assert!(screen.contains("✓ └  drain_b"), "{screen}");

    s.keys(&["y"]);
    let screen = s.wait_for("RECOVERED", timeout(60));
    assert!(screen.contains("4 ok 0 failed 0 skipped 0 cancelled"), "{screen}");
    assert!(screen.contains("✓ ─  cutover"), "{screen}");
    assert!(screen.contains("approved") && screen.contains("cutover"), "{screen}");
    assert!(screen.contains("met achieved"), "{screen}");

    // resize to 80x24: the panes collapse (the header gives the RPO a line of its own, the steps pane keeps ids)
    s.resize(80, 24);
    let small = s.wait_for("RPO 1h00m: no recovery point chosen yet", timeout(30));
    assert!(small.lines().count() <= 24, "{small}");
    assert!(small.lines().any(|l| l.starts_with("RPO 1h00m")), "{small}");
    assert!(small.contains("cutover"), "{small}");

    // the run is over: q quits without asking
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 0);
    let after = s.screen();
    assert!(
        after.contains("recovered — every step succeeded"),
        "the outcome is printed after the console closes:\n{after}"
    );
}

#[test]
fn a_failover_on_the_simulator_with_the_picker_and_a_typed_cut_over() {
    let s = Session::run("failover", &["--sim", "--speed", "300", "runbooks/cross-sell.toml"]);
    let screen = s.wait_popup("Choose a recovery point", timeout(120));
    assert!(screen.contains("SIMULATOR"), "{screen}");
    assert!(screen.contains("RPO 1h00m: no recovery point chosen yet"), "{screen}");
    assert!(
        screen.contains("✓ met") && screen.contains("✗ missed"),
        "candidates show whether they meet the RPO:\n{screen}"
    );
    // the newest point is selected first (sorted by time, newest on top): choose it
    s.keys(&["Enter"]);
    // the EBS set consistent with that point misses the RPO the point meets (issue 22): the console asks, with the
    // alternatives, before anything is restored; the newest on top is each volume's newest point: choose it
    let screen = s.wait_popup("ebs=newest", timeout(60));
    assert!(screen.contains("ebs=consistent"), "{screen}");
    s.keys(&["Enter"]);
    s.wait_gone("Choose a recovery point", timeout(30));
    let screen = s.wait_popup("Confirm step dns", timeout(180));
    // the run's RPO is its oldest data across the database point and the EBS set: met with the newest points
    assert!(screen.contains("RPO 1h00m met"), "{screen}");
    assert!(s.journalled("operator_answered").iter().any(|a| a["answer"] == "ebs=newest"), "{screen}");
    assert!(screen.contains("Type cross-sell.example-fin.com (the record whose traffic moves)"), "{screen}");
    // a wrong name does not approve
    s.keys(&["-l", "cross-sell.example.com"]);
    s.keys(&["Enter"]);
    let screen = s.wait_for("does not match", timeout(10));
    assert!(screen.contains("Confirm step dns") && !screen.contains("RECOVERED"), "{screen}");
    s.keys(&["C-u"]);
    for _ in 0.."cross-sell.example.com".len() {
        s.keys(&["BSpace"]);
    }
    // a fully qualified name (trailing dot) is the same name
    s.keys(&["-l", "cross-sell.example-fin.com."]);
    s.keys(&["Enter"]);
    let screen = s.wait_for("RECOVERED", timeout(120));
    assert!(screen.contains("14 ok 0 failed"), "{screen}");
    assert!(screen.contains("met"), "{screen}");
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 0);
}

#[test]
fn ctrl_c_asks_then_interrupts_the_run() {
    let s = Session::run("interrupt", &[demo()]);
    s.wait_popup("Confirm step cutover", timeout(90));
    s.keys(&["q"]); // put the confirmation aside
    s.wait_gone("Confirm step cutover", timeout(30));
    s.keys(&["C-c"]);
    let screen = s.wait_for("Quit?", timeout(30));
    assert!(screen.contains("Quitting interrupts it"), "{screen}");
    assert!(screen.contains("exits with code 130"), "{screen}");
    // n keeps going
    s.keys(&["n"]);
    let screen = s.wait_gone("Quit?", timeout(30));
    assert!(screen.contains("WAITING FOR YOU"), "{screen}");
    s.keys(&["C-c"]);
    s.wait_for("Quit?", timeout(30));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
    let after = s.screen();
    assert!(after.contains("interrupted"), "{after}");
}

#[test]
fn the_console_needs_a_terminal() {
    // no tmux here: stdout is a pipe
    let out = Command::new(env!("CARGO_BIN_EXE_drconsole")).current_dir(repo()).arg(demo()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdout is not a terminal") && err.contains("--headless"), "{err}");
}

#[test]
fn a_theme_file_with_an_unknown_key_is_located() {
    let dir = std::env::temp_dir().join(format!("drconsole-theme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mine.toml");
    std::fs::write(&path, "extends = \"dark\"\n[roles]\n\"step.runing\" = { fg = \"red\" }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drconsole"))
        .current_dir(repo())
        .args(["--theme", path.to_str().unwrap(), demo()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mine.toml:3:1: unknown role `step.runing`; did you mean `step.running`?"), "{err}");
}

#[test]
fn an_unknown_theme_is_a_usage_error() {
    require_tmux();
    let s = Session::start("theme", &["--theme", "solarized", demo()]);
    assert_eq!(s.exit_code(timeout(30)), 2);
    let screen = s.screen();
    assert!(screen.contains("unknown theme `solarized`"), "{screen}");
}

#[test]
fn a_panic_in_any_task_restores_the_terminal() {
    let s = Session::run_with("panic", &[demo()], &[("DRCONSOLE_TEST_PANIC_IN_TASK", "1"), ("RUST_BACKTRACE", "0")]);
    assert_eq!(s.exit_code(timeout(60)), 101);
    let screen = s.screen();
    // back on the main screen (the alternate screen was left), with the panic message readable
    assert!(screen.contains("test panic in a tokio task"), "{screen}");
    assert!(!screen.contains("╭ Steps"), "{screen}");
}

/// The SGR parameters on a screen captured with escapes.
fn sgr_params(screen: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for seq in screen.split("\x1b[").skip(1) {
        if let Some(end) = seq.find('m') {
            let body = &seq[..end];
            if body.chars().all(|c| c.is_ascii_digit() || c == ';') {
                out.extend(body.split(';').filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

fn is_colour(p: u32) -> bool {
    matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107)
}

#[test]
fn no_color_means_monochrome_with_emphasis() {
    let s = Session::run_with("nocolor", &[demo()], &[("NO_COLOR", "1")]);
    s.wait_for("Confirm step cutover", timeout(90));
    let params = sgr_params(&s.screen_with_styles());
    assert!(!params.iter().any(|p| is_colour(*p)), "colours under NO_COLOR: {params:?}");
    assert!(params.contains(&1) && params.contains(&7), "bold and reverse are kept: {params:?}");

    // without NO_COLOR the default theme has colours
    let c = Session::run("colour", &[demo()]);
    c.wait_for("Confirm step cutover", timeout(90));
    let params = sgr_params(&c.screen_with_styles());
    assert!(params.iter().any(|p| is_colour(*p)), "no colours in the default theme: {params:?}");
}

// ---- keys that act by accident: the stray keys change nothing in the journal --------------------------------------

impl Session {
    /// Every event type the run journalled (`runs/<id>/journal.jsonl` under the session's state dir), in order.
    fn journal(&self) -> Vec<serde_json::Value> {
        let runs = self._dir.0.join("state").join("runs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("journal.jsonl")) else { continue };
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                    && let Some(ev) = v.get("event")
                {
                    out.push(ev.clone());
                }
            }
        }
        out
    }

    fn journalled(&self, kind: &str) -> Vec<serde_json::Value> {
        self.journal().into_iter().filter(|e| e["type"] == kind).collect()
    }

    /// Sends `key` every 100 ms until the screen shows `text` (the operator was already pressing it).
    fn keep_pressing_until(&self, key: &str, text: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            self.keys(&[key]);
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            if start.elapsed() > within {
                panic!("the screen did not show {text:?} within {within:?}; it shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Nothing that changes the run was journalled.
fn assert_no_decision(s: &Session, what: &str) {
    for kind in
        ["step_skipped", "run_paused", "step_approved", "operator_answered", "run_finished", "step_retry_requested"]
    {
        let found = s.journalled(kind);
        assert!(found.is_empty(), "{what}: a stray key journalled {kind}: {found:?}\n{}", s.screen());
    }
}

#[test]
fn a_key_pressed_as_a_confirmation_opens_by_itself_does_not_answer_it() {
    let s = Session::run("guard-confirm", &[demo()]);
    // the operator keeps pressing y (meant for something else) while the confirmation arrives
    s.keep_pressing_until("y", "Confirm step cutover", timeout(90));
    std::thread::sleep(Duration::from_millis(1500));
    let screen = s.screen();
    assert!(screen.contains("Confirm step cutover"), "the popup stays open:\n{screen}");
    assert_no_decision(&s, "y pressed as the popup opened");
    // once it has been seen, y approves
    s.keys(&["y"]);
    s.wait_for("RECOVERED", timeout(60));
    assert_eq!(s.journalled("step_approved").len(), 1);
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 0);
}

#[test]
fn typing_a_name_while_the_confirmation_is_closed_fires_nothing() {
    let s = Session::run("typed-closed", &[demo()]);
    s.wait_popup("Confirm step cutover", timeout(90));
    s.keys(&["C-g"]); // put it aside
    s.wait_gone("Confirm step cutover", timeout(30));
    // the name meant for the popup lands on the main screen: s, p, f, a, r... and Enter
    s.keys(&["-l", "cross-sell.example-fin.com"]);
    s.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(1500));
    let screen = s.screen();
    assert!(screen.contains("WAITING FOR YOU"), "{screen}");
    assert_no_decision(&s, "a name typed on the main screen");
    // p asks first; other keys do nothing; n keeps going
    s.keys(&["C-g"]);
    s.keys(&["p"]);
    s.wait_for("Pause the run?", timeout(10));
    s.keys(&["x", "Enter", "n"]);
    s.wait_gone("Pause the run?", timeout(10));
    assert_no_decision(&s, "p then n");
    s.keys(&["C-c"]);
    s.wait_for("drconsole resume", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

#[test]
fn a_stray_enter_does_not_choose_a_recovery_point_and_a_missed_rpo_asks() {
    let s = Session::run("picker-enter", &["--sim", "--speed", "300", "runbooks/cross-sell.toml"]);
    // Enter held down while the picker comes up
    s.keep_pressing_until("Enter", "Choose a recovery point", timeout(120));
    std::thread::sleep(Duration::from_millis(1500));
    let screen = s.screen();
    assert!(screen.contains("Choose a recovery point"), "the picker stays open:\n{screen}");
    assert!(s.journalled("operator_answered").is_empty(), "a stray Enter chose a point:\n{screen}");
    // re-sorting keeps the highlighted point
    // the highlighted row's id (the table's last column, inside the popup's border)
    let highlighted = |screen: &str| {
        let row = screen.lines().find_map(|l| l.split("› ").nth(1)).unwrap_or_default();
        row.split('║').next().unwrap_or_default().to_string()
    };
    s.keys(&["j"]);
    std::thread::sleep(Duration::from_millis(300));
    let before = highlighted(&s.screen());
    let id = before.split_whitespace().last().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "{before}");
    for k in ["o", "o", "O"] {
        s.keys(&[k]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(highlighted(&s.screen()).contains(&id), "after {k} the cursor left {id}:\n{}", s.screen());
    }
    // back to time, oldest first: the oldest point misses the RPO; Enter asks, n goes back, nothing is answered
    s.keys(&["o", "o", "g"]);
    std::thread::sleep(Duration::from_millis(300));
    s.keys(&["Enter"]);
    let screen = s.wait_for("Accept the RPO loss?", timeout(10));
    assert!(screen.contains("the RPO: n goes back"), "a point that meets the RPO exists:\n{screen}");
    s.keys(&["n"]);
    s.wait_for("Choose a recovery point", timeout(10));
    assert!(s.journalled("operator_answered").is_empty());
    s.keys(&["C-c"]);
    s.wait_for("Quit?", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

#[test]
fn with_stale_backups_the_rpo_loss_is_accepted_in_the_console() {
    let s = Session::run(
        "rpo-loss",
        &[
            "--sim",
            "--world",
            "runbooks/tabletop/worlds/stale-backups.toml",
            "--speed",
            "300",
            "runbooks/tabletop/stale-backups.toml",
        ],
    );
    let screen = s.wait_popup("Choose a recovery point", timeout(120));
    assert!(s.screen().contains("NO POINT MEETS THE RPO"), "{screen}");
    s.keys(&["Enter"]);
    s.wait_for("Accept the RPO loss?", timeout(10));
    s.keys(&["y"]);
    // require_rpo = true, yet the step succeeds: the operator accepted the loss, and the journal says so
    let start = Instant::now();
    while s.journalled("step_succeeded").iter().all(|e| e["step"] != "pick_db") {
        assert!(start.elapsed() < timeout(60), "pick_db did not succeed:\n{}", s.screen());
        assert!(s.journalled("step_failed").is_empty(), "{:?}", s.journalled("step_failed"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let answers = s.journalled("operator_answered");
    assert!(answers[0]["answer"].as_str().unwrap().starts_with("accept-rpo-loss:"), "{answers:?}");
    s.keys(&["C-c"]);
    s.wait_for("Quit?", timeout(20));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

/// The events of an application's journal in an incident of the session's state directory.
fn app_journal(s: &Session, app: &str) -> Vec<serde_json::Value> {
    let state = s.state_dir();
    let inc = std::fs::read_dir(state.join("incidents")).unwrap().next().unwrap().unwrap().path();
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(inc.join("incident.json")).unwrap()).unwrap();
    let run = rec["apps"].as_array().unwrap().iter().find(|a| a["app"] == app).unwrap()["run_id"].clone();
    let text = std::fs::read_to_string(state.join("runs").join(run.as_str().unwrap()).join("journal.jsonl")).unwrap();
    // each line is a record with the event under `event`
    text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone()).collect()
}

fn approved(events: &[serde_json::Value], step: &str) -> bool {
    events.iter().any(|e| e["type"] == "step_approved" && e["step"] == step)
}

#[test]
fn the_incident_console_queues_every_application_s_question_and_an_answer_reaches_its_application() {
    let s = Session::incident("incident", &["tests/fixtures/incident/two-waiting.toml"]);
    s.resize(80, 24);
    let screen = s.wait_until(
        "show both applications' questions",
        |x| x.contains("[alpha] approve cutover") && x.contains("[bravo] approve cutover"),
        timeout(90),
    );
    assert!(screen.contains("questions (2)"), "{screen}");
    assert!(screen.contains("SIMULATOR · Two applications waiting"), "{screen}");
    assert!(screen.lines().count() <= 24, "{screen}");
    // both wait; alpha's RTO is shorter (thinner margin): first
    let row = |name: &str| screen.lines().position(|l| l.starts_with(name) && l.contains("approve cutover"));
    let (a, b) = (row("alpha").expect(&screen), row("bravo").expect(&screen));
    assert!(a < b, "{screen}");

    // Enter opens alpha's console with its question; the popup names alpha, the bar names bravo's question
    s.keys(&["Enter"]);
    let screen = s.wait_popup("alpha · Confirm step cutover", timeout(30));
    assert!(screen.contains("also waiting: [bravo] approve cutover"), "{screen}");
    assert!(!screen.contains("bravo · Confirm"), "{screen}");
    // not now (n), then Esc back to the overview: both still wait
    s.keys(&["n"]);
    s.wait_gone("Confirm step cutover", timeout(10));
    s.keys(&["Escape"]);
    let screen = s.wait_for("questions (2)", timeout(10));
    assert!(screen.contains("[alpha] approve cutover") && screen.contains("[bravo] approve cutover"), "{screen}");

    // Down, Enter: bravo's console and question; y approves bravo's cut-over, and only bravo's
    s.keys(&["Down"]);
    s.keys(&["Enter"]);
    let screen = s.wait_popup("bravo · Confirm step cutover", timeout(30));
    assert!(screen.contains("also waiting: [alpha] approve cutover"), "{screen}");
    s.keys(&["y"]);
    s.wait_for("RECOVERED", timeout(60));
    s.keys(&["q"]);
    let screen = s.wait_for("questions (1)", timeout(10));
    assert!(screen.contains("[alpha] approve cutover") && !screen.contains("[bravo]"), "{screen}");
    assert!(screen.lines().any(|l| l.starts_with("bravo") && l.contains("recovered")), "{screen}");
    assert!(approved(&app_journal(&s, "bravo"), "cutover"), "bravo's journal records the approval");
    assert!(!approved(&app_journal(&s, "alpha"), "cutover"), "alpha's journal has no approval");

    // q on the overview asks; y interrupts alpha: the worst exit code is alpha's 130
    s.keys(&["q"]);
    s.wait_for("Quit the incident?", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
    // the terminal is back; the summary says how to continue, in the console as it ran
    let after = s.screen();
    assert!(after.contains("continue: drconsole resume inc-"), "{after}");
    assert!(!after.contains("--headless"), "{after}");
    let alpha = app_journal(&s, "alpha");
    assert!(alpha.iter().any(|e| e["type"] == "run_finished" && e["outcome"] == "interrupted"), "{alpha:?}");
}

#[test]
fn a_drill_with_cleanup_after_asks_for_the_typed_run_id_and_then_cleans_up() {
    let s = Session::run(
        "drill-cleanup",
        &[
            "--sim",
            "--speed",
            "2000",
            "--drill",
            "--cleanup-after",
            "--recovery-point",
            "latest+ebs=newest",
            "runbooks/cross-sell.toml",
        ],
    );
    let screen = s.wait_popup("Confirm step dns", timeout(180));
    assert!(screen.contains("SIMULATOR") && screen.contains("DRILL"), "{screen}");
    // the cut-over of a drill writes the drill record: that is the name typed
    let run = screen
        .split_whitespace()
        .find(|w| w.len() == 20 && w.chars().filter(|c| *c == '-').count() == 2 && w.starts_with("20"))
        .unwrap_or_else(|| panic!("no run id on the screen:\n{screen}"))
        .to_string();
    let record = format!("drill-{}.cross-sell.example-fin.com", &run[run.len() - 4..]);
    assert!(screen.contains(&format!("Type {record} (the drill record")), "{screen}");
    s.keys(&["-l", &record]);
    s.keys(&["Enter"]);
    // the drill ends: the cleanup popup opens by itself
    let screen = s.wait_popup("Clean up the drill?", timeout(180));
    assert!(screen.contains("RECOVERED") && screen.contains(&run), "{screen}");
    let short = &run[run.len() - 4..];
    // a wrong id does not confirm
    s.keys(&["-l", "zz99"]);
    s.keys(&["Enter"]);
    let screen = s.wait_for("does not match", timeout(10));
    assert!(screen.contains("Clean up the drill?"), "{screen}");
    s.keys(&["C-u"]);
    s.keys(&["-l", short]);
    s.keys(&["Enter"]);
    // the console closes and the cleanup runs: nothing left with the run's tag
    assert_eq!(s.exit_code(timeout(180)), 0, "{}", s.screen());
    let after = s.screen();
    assert!(after.contains("cleanup confirmed in the console"), "{after}");
    assert!(after.contains(&format!("left tagged drconsole:run-id={run}: nothing")), "{after}");
}

/// The run directories in a session's state dir.
fn runs_in(s: &Session) -> Vec<PathBuf> {
    std::fs::read_dir(s.state_dir().join("runs")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

#[test]
fn the_opening_screen_runs_the_preflight_and_asks_before_starting_a_run_it_found_not_ready() {
    // someone disabled the DR key in the secondary region: the preflight on the opening screen finds it
    let s = Session::start(
        "opening-broken",
        &["--sim", "--world", "tests/fixtures/preflight/kms-disabled.toml", "runbooks/cross-sell.toml"],
    );
    let screen = s.wait_for("Enter start the run", timeout(30));
    assert!(screen.contains("NOT STARTED") && screen.contains("pick_db"), "{screen}");
    s.keys(&["p"]);
    let screen = s.wait_for("NOT READY", timeout(60));
    assert!(screen.contains("fail copy_db KMS key alias/drconsole-dr enabled in us-west-2"), "{screen}");
    assert!(screen.contains("1 fail"), "{screen}");
    // Enter asks before a run the preflight found not ready; any key but y goes back and starts nothing
    s.keys(&["Enter"]);
    s.wait_for("Start anyway?", timeout(10));
    s.keys(&["n"]);
    s.wait_gone("Start anyway?", timeout(10));
    assert!(runs_in(&s).is_empty(), "nothing is recorded before the run starts: {:?}", runs_in(&s));
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 130);
    assert!(runs_in(&s).is_empty(), "q on the opening screen records no run: {:?}", runs_in(&s));
    let reports: Vec<_> = std::fs::read_dir(s.state_dir().join("preflight")).unwrap().flatten().collect();
    assert!(
        reports.iter().any(|e| e.file_name().to_string_lossy().ends_with(".md")),
        "the preflight leaves its report as evidence: {reports:?}"
    );

    // the world in good order: READY, and Enter starts the run at once
    let s = Session::start(
        "opening-good",
        &["--sim", "--world", "tests/fixtures/preflight/good-order.toml", "runbooks/cross-sell.toml"],
    );
    s.wait_for("Enter start the run", timeout(30));
    s.keys(&["p"]);
    let screen = s.wait_for(" READY ", timeout(60));
    assert!(screen.contains("0 fail"), "{screen}");
    s.keys(&["Enter"]);
    s.wait_popup("Choose a recovery point", timeout(30));
    assert_eq!(runs_in(&s).len(), 1, "the run started: {:?}", runs_in(&s));
    s.keys(&["C-c"]);
    s.wait_for("Quit?", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

/// A drill that recovers after its RTO fails its verdict, and the end screen says so (the report's recovery test
/// says the same).
#[test]
fn a_drill_that_misses_its_rto_says_drill_failed_on_the_end_screen() {
    let s = Session::run("drill-late", &["--sim", "--speed", "200", "--drill", "tests/fixtures/run/late.toml"]);
    let screen = s.wait_for("DRILL FAILED", timeout(120));
    assert!(screen.contains("RECOVERED LATE · DRILL FAILED"), "{screen}");
    assert!(screen.contains("MISSED achieved"), "{screen}");
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 0, "recovered (late) is still exit 0:\n{}", s.screen());
    let run = runs_in(&s).pop().unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "recovered-late");
    assert_eq!(report["recovery_test"]["verdict"], "failed");
}

/// The RTO left of a console line `RTO 4h00m  3:49:47 left …`, in seconds.
fn rto_left(screen: &str) -> Option<i64> {
    let line = screen.lines().find(|l| l.starts_with("RTO ") && l.contains(" left"))?;
    let clock = line.split_whitespace().nth(2)?;
    let parts: Vec<i64> = clock.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = parts.as_slice() else { return None };
    Some(h * 3600 + m * 60 + s)
}

/// `drconsole watch` and the console driving the run show the same RTO left: to the second at `--speed 1`, within
/// 1% of the elapsed time at `--speed 100` (both turn real "now" into run time the same way, from the run view).
#[test]
fn watch_and_the_console_agree_on_the_rto_left() {
    for (speed, name) in [("1", "agree-1"), ("100", "agree-100")] {
        let s = Session::run(name, &["--sim", "--speed", speed, "tests/fixtures/run/two_hours.toml"]);
        s.wait_for(" left", timeout(60));
        std::thread::sleep(Duration::from_secs(3));
        let state = s.state_dir();
        let run = runs_in(&s).pop().unwrap();
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        let w = Session::start_with(
            &format!("{name}-watch"),
            &["watch", &id],
            &[("DRCONSOLE_STATE_DIR", state.to_str().unwrap())],
        );
        w.wait_for(" left", timeout(60));
        std::thread::sleep(Duration::from_secs(2));
        // the console, the watcher, the console again: the watcher's reading lies between the two
        let a = rto_left(&s.screen()).unwrap();
        let b = rto_left(&w.screen()).unwrap();
        let c = rto_left(&s.screen()).unwrap();
        let elapsed = 4 * 3600 - c;
        let slack = if speed == "1" { 1 } else { (elapsed / 100).max(1) + 2 };
        assert!(b <= a + slack && b >= c - slack, "speed {speed}: console {a} then {c}, watch {b} (slack {slack})");
    }
}

/// After a resume, too: a run at `--speed 100` interrupted (^c, y) and resumed in a new console, watched from a
/// third; the watcher's RTO left lies between two readings of the resumed console, within 1% of the elapsed time.
#[test]
fn watch_and_the_console_agree_on_the_rto_left_after_a_resume() {
    let s = Session::run("agree-resume", &["--sim", "--speed", "100", "tests/fixtures/run/two_hours.toml"]);
    s.wait_for(" left", timeout(60));
    std::thread::sleep(Duration::from_secs(2));
    s.keys(&["C-c"]);
    s.wait_for("drconsole resume", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
    let state = s.state_dir();
    let run = runs_in(&s).pop().unwrap();
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let env = [("DRCONSOLE_STATE_DIR", state.to_str().unwrap())];
    let r = Session::start_with("agree-resumed", &["resume", &id], &env);
    r.wait_for(" left", timeout(60));
    std::thread::sleep(Duration::from_secs(2));
    let w = Session::start_with("agree-resumed-watch", &["watch", &id], &env);
    w.wait_for(" left", timeout(60));
    std::thread::sleep(Duration::from_secs(2));
    let a = rto_left(&r.screen()).unwrap();
    let b = rto_left(&w.screen()).unwrap();
    let c = rto_left(&r.screen()).unwrap();
    let elapsed = 4 * 3600 - c;
    let slack = (elapsed / 100).max(1) + 2;
    assert!(b <= a + slack && b >= c - slack, "after a resume: console {a} then {c}, watch {b} (slack {slack})");
}

/// The incident board at 80x24 with one application made late by the simulator (its world makes every simulated
/// operation eight times slower: the database restore runs far past its estimate): that application's row says
/// LATE in colour (red under the default theme), and the board's line shows the overall finish past the deadline.
#[test]
fn the_board_shows_a_late_application_in_colour_and_the_overall_finish_past_the_deadline() {
    let s = Session::incident(
        "board-late",
        &[
            "--sim",
            "--speed",
            "100",
            "--world",
            "tests/fixtures/incident/late/slow-restore.world.toml",
            "tests/fixtures/incident/late/late-app.toml",
        ],
    );
    s.resize(80, 24);
    let row = |screen: &str, app: &str| screen.lines().find(|l| l.starts_with(app)).map(str::to_string);
    let board = |screen: &str| screen.lines().find(|l| l.contains("since incident")).map(str::to_string);
    // HH:MM after a label on the board's line
    let time = |board: &str, label: &str| {
        let at = board.find(label).map(|i| i + label.len())?;
        board.get(at..at + 5).map(str::to_string)
    };
    // late by a minute at least (the finish shown to the minute differs from the deadline)
    let screen = s.wait_until(
        "show slow late, a minute past the deadline",
        |x| {
            row(x, "slow ").is_some_and(|l| l.contains("LATE"))
                && row(x, "steady").is_some_and(|l| l.contains("recovered"))
                && board(x).is_some_and(|b| time(&b, "finish ") != time(&b, "deadline "))
        },
        timeout(120),
    );
    assert!(screen.lines().count() <= 24, "{screen}");
    let board = board(&screen).unwrap();
    // the overall finish (slow's) is past the deadline: a negative margin, LATE
    assert!(board.contains("margin -") && board.trim_end().ends_with("LATE"), "{board}");
    let (finish, deadline) = (time(&board, "finish ").unwrap(), time(&board, "deadline ").unwrap());
    // HH:MM compare as text (the test does not run across midnight UTC: the incident lasts minutes)
    assert!(finish > deadline || deadline.starts_with("23"), "{board}");
    assert!(row(&screen, "steady").unwrap().contains("met"), "{screen}");
    // in colour: the late row's LATE has a red background under the default theme (SGR 41, 101, or 256-colour 1
    // or 9: tmux reports the theme's `red` as 48;5;1)
    let red_bg = |line: &str| {
        line.split("\x1b[").skip(1).any(|seq| {
            let body = seq.split('m').next().unwrap_or("");
            matches!(body, "41" | "101" | "48;5;1" | "48;5;9")
        })
    };
    let styled = s.screen_with_styles();
    let late_line =
        styled.lines().find(|l| l.contains("slow") && l.contains("LATE")).unwrap_or_else(|| panic!("{styled}"));
    assert!(red_bg(late_line), "no red on the late row: {late_line:?}");
    let board_line = styled.lines().find(|l| l.contains("since incident")).unwrap();
    assert!(red_bg(board_line), "no red on the board's line: {board_line:?}");
    s.keys(&["q"]);
    s.wait_for("Quit the incident?", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

/// `drconsole watch INCIDENT` in a second window, while the incident runs in the first: the same board (the same
/// overall finish and deadline), read-only: a key that approves in the driver's console changes nothing there.
#[test]
fn watch_of_a_live_incident_shows_the_driver_s_board_and_acts_on_nothing() {
    let s = Session::incident("board-driver", &["--sim", "tests/fixtures/incident/two-waiting.toml"]);
    s.resize(80, 24);
    s.wait_until(
        "show both questions",
        |x| x.contains("[alpha] approve cutover") && x.contains("[bravo] approve cutover"),
        timeout(90),
    );
    let state = s.state_dir();
    let inc = std::fs::read_dir(state.join("incidents")).unwrap().next().unwrap().unwrap().file_name();
    let inc = inc.to_string_lossy().into_owned();
    let w = Session::start_with("board-watch", &["watch", &inc], &[("DRCONSOLE_STATE_DIR", state.to_str().unwrap())]);
    w.resize(80, 24);
    let screen = w.wait_until(
        "show the board read-only",
        |x| x.contains("WATCH (read-only)") && x.contains("[alpha] approve cutover") && x.contains("since incident"),
        timeout(60),
    );
    assert!(screen.contains("SIMULATOR · Two applications waiting"), "{screen}");
    // the board's line, from "finish" on: the same overall finish and deadline on both screens (read again if a
    // minute turned between the two captures)
    let tail = |screen: &str| {
        let line = screen.lines().find(|l| l.contains("since incident")).unwrap_or_default();
        line.find("finish").map(|i| line[i..].trim_end().to_string()).unwrap_or_default()
    };
    let mut same = false;
    for _ in 0..3 {
        let (a, b) = (tail(&s.screen()), tail(&w.screen()));
        assert!(a.contains("deadline") && b.contains("deadline"), "driver {a:?}, watch {b:?}");
        if a == b {
            same = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(same, "driver and watch disagree:\n{}\n{}", s.screen(), w.screen());
    // the driver's keys in watch: open alpha's screen (a on the board), then approve (a), Enter and y: nothing is
    // sent; it says read-only
    w.keys(&["a"]);
    w.wait_for("Esc/q overview · alpha", timeout(10));
    std::thread::sleep(Duration::from_millis(900));
    w.keys(&["y"]);
    w.keys(&["Enter"]);
    w.keys(&["y"]);
    w.keys(&["a"]);
    w.wait_for("watch mode is read-only: cannot approve", timeout(10));
    w.keys(&["q"]);
    w.wait_for("questions (2)", timeout(10));
    w.keys(&["L"]);
    w.wait_for("read-only: cannot choose", timeout(10));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!approved(&app_journal(&s, "alpha"), "cutover"), "watch approved alpha's cut-over");
    assert!(!approved(&app_journal(&s, "bravo"), "cutover"), "watch approved bravo's cut-over");
    let driver = s.screen();
    assert!(driver.contains("questions (2)"), "the driver still has both questions:\n{driver}");
    // q leaves the watcher at once (exit 0); the driver goes on
    w.keys(&["q"]);
    assert_eq!(w.exit_code(timeout(30)), 0);
    s.keys(&["q"]);
    s.wait_for("Quit the incident?", timeout(10));
    s.keys(&["y"]);
    assert_eq!(s.exit_code(timeout(60)), 130);
}

/// A new incident opens on its opening screen: its applications, one row each; `p` runs every application's
/// preflight (read-only) and shows each verdict; `q` leaves with nothing started and no run recorded (exit 130).
/// With the world in good order, Enter starts the incident (the board opens).
#[test]
fn the_incident_opening_screen_runs_every_preflight_and_q_starts_nothing() {
    let s = Session::start(
        "incident-opening",
        &["--sim", "--world", "tests/fixtures/preflight/kms-disabled.toml", "runbooks/incidents/us-east-1-outage.toml"],
    );
    s.resize(80, 24);
    let screen = s.wait_for("Enter start the incident", timeout(30));
    assert!(screen.contains("NOT STARTED") && screen.contains("5 applications"), "{screen}");
    for app in ["cross-sell", "inventory-management", "agent-payment", "customer-assistance", "vendor-assistance"] {
        assert!(screen.lines().any(|l| l.starts_with(app) && l.contains("not run")), "{app}:\n{screen}");
    }
    s.keys(&["p"]);
    let screen = s.wait_until(
        "show every application's verdict",
        |x| !x.contains("checking") && x.matches("NOT READY").count() + x.matches(" READY ").count() >= 5,
        timeout(120),
    );
    // the DR key is disabled: the applications that copy with it are not ready, and the first failure is named
    assert!(screen.contains("NOT READY"), "{screen}");
    assert!(screen.contains("fail"), "{screen}");
    s.keys(&["Enter"]);
    s.wait_for("Start anyway?", timeout(10));
    s.keys(&["n"]);
    s.wait_gone("Start anyway?", timeout(10));
    s.keys(&["q"]);
    assert_eq!(s.exit_code(timeout(30)), 130);
    assert!(runs_in(&s).is_empty(), "q on the opening screen records no run: {:?}", runs_in(&s));
    assert!(!s.state_dir().join("incidents").exists(), "no incident recorded");
    let reports = std::fs::read_dir(s.state_dir().join("preflight")).unwrap().flatten().count();
    assert!(reports >= 5, "every application's preflight leaves its report: {reports}");
}
