//! `drconsole --headless` as a binary: every exit code (DESIGN.md), the flags that answer confirmations, the NDJSON
//! stream and Ctrl-C. The runbooks are in `tests/fixtures/run`. Exit code 4 (a guard refused: wrong account or
//! region) needs the AWS guard and is tested with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run").join(name)
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn drconsole(args: &[&str]) -> Out {
    drconsole_env(args, &[])
}

fn drconsole_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    // each run journals into its own state dir, so parallel tests never share a run lock
    let state = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("drconsole").unwrap();
    cmd.args(args).timeout(Duration::from_secs(120)).env("XDG_STATE_HOME", state.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn headless(name: &str, extra: &[&str]) -> Out {
    let path = fixture(name);
    let mut args = vec!["--headless", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    drconsole(&args)
}

impl Out {
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
    /// Whether a text line shows `tag` (start, ok, FAILED, cancel...) for `step`.
    fn has(&self, tag: &str, step: &str) -> bool {
        self.stdout.lines().any(|l| tag_and_step(l) == (Some(tag), Some(step)))
    }
    fn outcome_line(&self) -> &str {
        self.stdout.lines().find(|l| l.starts_with("outcome:")).unwrap_or_else(|| panic!("no summary\n{}", self.stdout))
    }
}

/// The tag and step of a text line: `[+0:00:02 RTO 0:59:57] ok       wait_a           in 0s`.
fn tag_and_step(line: &str) -> (Option<&str>, Option<&str>) {
    let mut words = line.split_once("] ").map_or("", |x| x.1).split_whitespace();
    (words.next(), words.next())
}

// ---------------------------------------------------------------------------------------------------------------
// exit 0

#[test]
fn recovered_run_exits_0_with_a_summary() {
    let out = headless("ok.toml", &[]);
    out.expect(0);
    assert!(out.outcome_line().starts_with("outcome:  recovered"), "{}", out.stdout);
    assert!(out.stdout.contains("RTO:      target 1h00m"), "{}", out.stdout);
    assert!(out.stdout.contains("steps:    4 succeeded, 0 failed, 0 skipped, 0 cancelled"), "{}", out.stdout);
    // one line per event: the output of a step reaches the next one
    assert!(out.stdout.contains("stdout=hello-us-west-2"), "{}", out.stdout);
    for step in ["wait_a", "wait_b", "echo", "use"] {
        assert!(out.has("start", step) && out.has("ok", step), "{step}\n{}", out.stdout);
    }
}

#[test]
fn failure_with_continue_still_recovers() {
    let out = headless("fail_continue.toml", &[]);
    out.expect(0);
    assert!(out.stdout.contains("steps:    1 succeeded, 1 failed, 0 skipped, 0 cancelled"), "{}", out.stdout);
}

#[test]
fn shell_step_is_retried_then_succeeds() {
    let dir = tempdir("retry");
    let counter = dir.join("counter");
    let path = fixture("retry.toml");
    let out =
        drconsole_env(&["--headless", path.to_str().unwrap()], &[("DRCONSOLE_COUNTER", counter.to_str().unwrap())]);
    out.expect(0);
    assert!(out.has("retry", "flaky"), "{}", out.stdout);
    assert!(out.stdout.contains("attempt 1 failed: command exited with 1; next attempt in"), "{}", out.stdout);
    assert!(out.has("ok", "flaky"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "2");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------------------------
// exit 1

#[test]
fn failed_step_with_abort_exits_1() {
    let out = headless("fail_abort.toml", &[]);
    out.expect(1);
    assert!(out.outcome_line().contains("failed"), "{}", out.stdout);
    assert!(out.stdout.contains("command exited with 3: boom"), "{}", out.stdout);
    assert!(out.has("FAILED", "broken"), "{}", out.stdout);
    assert!(!out.has("start", "after") && out.has("cancel", "after"), "{}", out.stdout);
}

#[test]
fn failed_step_with_pause_aborts_a_headless_run_exit_1() {
    let out = headless("fail_pause.toml", &[]);
    out.expect(1);
    assert!(out.outcome_line().starts_with("outcome:  aborted"), "{}", out.stdout);
    assert!(out.stdout.contains("a headless run cannot wait for an operator"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------------------------
// exit 2

#[test]
fn invalid_runbook_exits_2() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/cycle.toml");
    let out = drconsole(&["--headless", path.to_str().unwrap()]);
    out.expect(2);
    assert!(out.stderr.contains("error[cycle]"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing runs: {}", out.stdout);
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    let ok = fixture("ok.toml");
    let ok = ok.to_str().unwrap();
    let missing = fixture("no_such.toml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![ok, "--json"], "--json needs --headless"),
        (vec!["--headless", ok, "--approve", "nope"], "--approve nope: the runbook has no step `nope`"),
        (vec!["--headless", ok, "--var", "nope=1"], "--var nope: the runbook has no variable `nope`"),
        (vec!["--headless", ok, "--var", "novalue"], "\"novalue\": write NAME=VALUE"),
        (vec!["--headless", ok, "--speed", "0"], "'--speed <N>': 0 must be a number above 0"),
        (vec!["--headless", ok, "--incident-start", "yesterday"], "'--incident-start <TIME|AGO>': \"yesterday\""),
        (vec!["--headless", ok, "--no-such-flag"], "unexpected argument '--no-such-flag'"),
        (vec!["--headless"], "no runbook given"),
        (vec!["--headless", missing.to_str().unwrap()], "cannot read runbook"),
    ];
    for (args, want) in cases {
        let out = drconsole(&args);
        assert_eq!(out.code, Some(2), "{args:?}\n{}{}", out.stdout, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}\n{}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: stderr should say `{want}`:\n{}", out.stderr);
        assert!(!out.stdout.contains("outcome:"), "{args:?} must not run:\n{}", out.stdout);
    }
}

/// Each bad option value is refused by the command line (exit 2, the option and why), before anything runs.
#[test]
fn bad_option_values_exit_2_naming_the_option() {
    let ok = fixture("ok.toml");
    let ok = ok.to_str().unwrap();
    let future = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(72)).unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--max-parallel", "0"], "'--max-parallel <N>': 0 steps at once would never start a step"),
        (vec!["--max-parallel=-1"], "'--max-parallel <N>': \"-1\" is not a whole number"),
        (vec!["--max-parallel", "100000"], "100000 is more than 1024"),
        (vec!["--speed", "1e308"], "'--speed <N>': 1e308 is faster than the simulator can keep time"),
        (vec!["--speed", "inf"], "'--speed <N>': inf must be a number above 0"),
        (vec!["--speed", "NaN"], "'--speed <N>': NaN must be a number above 0"),
        (vec!["--speed=-3"], "'--speed <N>': -3 must be a number above 0"),
        (vec!["--speed", "fast"], "\"fast\" is not a number"),
        (vec!["--incident-start", &future], "is in the future"),
        (vec!["--incident-start=-45m"], "is neither an RFC 3339 time nor a duration ago"),
        (vec!["--incident-start", "99999999999h"], "'--incident-start <TIME|AGO>'"),
        (vec!["--var", "=x"], "write NAME=VALUE"),
    ];
    for (opts, want) in cases {
        let mut args = vec!["--headless", "--sim", ok];
        args.extend_from_slice(&opts);
        let out = drconsole(&args);
        assert_eq!(out.code, Some(2), "{opts:?}\n{}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(want), "{opts:?}: stderr should say `{want}`:\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{opts:?}\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "{opts:?} must not run:\n{}", out.stdout);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// exit 3 and the flags that avoid it

#[test]
fn confirmation_without_approve_exits_3_naming_the_flag() {
    let out = headless("confirm.toml", &[]);
    out.expect(3);
    assert!(out.stderr.contains("--approve cutover"), "{}", out.stderr);
    assert!(out.outcome_line().starts_with("outcome:  blocked"), "{}", out.stdout);
    // the step before it ran; the confirmed one did not
    assert!(out.has("ok", "prepare"), "{}", out.stdout);
    assert!(out.has("confirm", "cutover") && !out.has("start", "cutover"), "{}", out.stdout);
}

#[test]
fn confirmation_is_answered_by_approve_all_id_or_yes() {
    for flags in [&["--approve", "cutover"][..], &["--approve", "prepare,cutover"], &["--approve", "all"], &["--yes"]] {
        let out = headless("confirm.toml", flags);
        out.expect(0);
        assert!(out.has("approved", "cutover") && out.has("ok", "cutover"), "{flags:?}\n{}", out.stdout);
    }
}

#[test]
fn approving_another_step_does_not_approve_this_one() {
    headless("confirm.toml", &["--approve", "prepare"]).expect(3);
}

#[test]
fn manual_step_without_manual_done_exits_3_naming_the_flag() {
    let out = headless("manual.toml", &[]);
    out.expect(3);
    assert!(out.stderr.contains("--manual-done call_bank"), "{}", out.stderr);
    // --yes answers confirmations only: nobody said the task was done
    let out = headless("manual.toml", &["--yes"]);
    out.expect(3);
    for flags in [&["--manual-done", "call_bank"][..], &["--manual-done", "all"]] {
        let out = headless("manual.toml", flags);
        out.expect(0);
        assert!(out.stdout.contains("Phone the bank"), "{}", out.stdout);
        // the journal and the report say a flag answered, not a person
        assert!(out.stdout.contains("done_by=--manual-done flag ("), "{}", out.stdout);
        assert!(out.stdout.contains("no person confirmed it"), "{}", out.stdout);
    }
    let out = headless("manual.toml", &["--manual-done", "nope"]);
    out.expect(2);
    assert!(out.stderr.contains("--manual-done nope: the runbook has no manual step `nope`"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------------------------
// exit 130

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drconsole-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a long run, waits until its step is running, sends `signal`, and returns the exit code and output.
fn interrupt_with(signal: &str) -> (Option<i32>, String, String) {
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("drconsole"))
        .args(["--headless", fixture("long_wait.toml").to_str().unwrap()])
        .env("XDG_STATE_HOME", state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the run ended before its step started:\n{seen}");
        seen.push_str(&line);
        if tag_and_step(&line) == (Some("start"), Some("long")) {
            break;
        }
    }
    let kill = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    // a hung process must fail the test, not hang it
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("drconsole did not stop after {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stdout.read_to_string(&mut seen).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code(), seen, stderr)
}

#[test]
fn sigint_interrupts_gracefully_with_exit_130() {
    let (code, stdout, stderr) = interrupt_with("-INT");
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("interrupted: no new steps will start"), "{stderr}");
    assert!(stdout.contains("outcome:  interrupted"), "{stdout}");
    assert!(stdout.lines().any(|l| tag_and_step(l) == (Some("cancel"), Some("after"))), "{stdout}");
    assert!(stdout.contains("0 succeeded, 0 failed, 0 skipped, 2 cancelled"), "{stdout}");
}

#[test]
fn sigterm_interrupts_gracefully_with_exit_130() {
    let (code, stdout, stderr) = interrupt_with("-TERM");
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("outcome:  interrupted"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------------------------
// --json

/// The event types documented in docs/events.md's NDJSON table, each with the names its fields cell mentions.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md")).unwrap();
    let section = page.split("# NDJSON events").nth(1).expect("docs/events.md has an NDJSON section");
    let section = section.split("\n# ").next().unwrap();
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`').skip(1).step_by(2).map(|w| w.trim_end_matches("[]").to_string()).collect()
    };
    let mut types = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').collect();
        let fields: BTreeSet<String> = ticked(cells[2]).into_iter().collect();
        for ty in ticked(cells[1]) {
            types.insert(ty, fields.clone());
        }
    }
    types
}

/// Parses the NDJSON stream, checking every line against docs/events.md: seq 1, 2, 3..., an RFC 3339 ts, a documented
/// type with only documented fields. Returns the events and the set of their types.
fn ndjson(out: &Out) -> (Vec<Value>, BTreeSet<String>) {
    let documented = documented();
    assert!(documented.len() >= 15, "{documented:?}");
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", out.stdout)))
        .collect();
    let mut types = BTreeSet::new();
    for (n, ev) in events.iter().enumerate() {
        assert_eq!(ev["seq"].as_u64(), Some(n as u64 + 1), "{ev}");
        let ts = ev["ts"].as_str().unwrap_or_else(|| panic!("no ts: {ev}"));
        ts.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("ts {ts} is not RFC 3339: {e}"));
        let ty = ev["type"].as_str().unwrap_or_else(|| panic!("no type: {ev}"));
        let fields =
            documented.get(ty).unwrap_or_else(|| panic!("event type `{ty}` is not documented in docs/events.md"));
        for key in ev.as_object().unwrap().keys().filter(|k| !["seq", "ts", "wall", "type"].contains(&k.as_str())) {
            assert!(fields.contains(key), "field `{key}` of `{ty}` is not documented in docs/events.md: {ev}");
        }
        types.insert(ty.to_string());
    }
    (events, types)
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let out = headless("confirm.toml", &["--json", "--approve", "cutover"]);
    out.expect(0);
    let (events, types) = ndjson(&out);
    for ty in [
        "run_started",
        "projection",
        "step_started",
        "step_succeeded",
        "step_awaiting_approval",
        "step_approved",
        "run_finished",
    ] {
        assert!(types.contains(ty), "no {ty} event in\n{}", out.stdout);
    }
    let first = &events[0];
    assert_eq!(first["type"], "run_started");
    assert_eq!(first["runbook"], "confirm");
    assert_eq!(first["steps"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["steps"][1]["confirm"], true);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run_finished");
    assert_eq!(last["outcome"], "recovered");
    assert_eq!(last["succeeded"], 2);
    let started: Vec<&Value> = events.iter().filter(|e| e["type"] == "step_started").collect();
    assert_eq!(started[1]["params"]["command"], "echo cut");
    // no text lines mixed into the stream
    assert!(!out.stdout.contains("outcome:"));
}

#[test]
fn json_reports_failures_and_blocks() {
    let out = headless("fail_abort.toml", &["--json"]);
    out.expect(1);
    let (events, types) = ndjson(&out);
    assert!(types.contains("step_failed") && types.contains("step_cancelled"), "{types:?}");
    let failed = events.iter().find(|e| e["type"] == "step_failed").expect("a step_failed event");
    assert_eq!(failed["step"], "broken");
    assert_eq!(failed["policy"], "abort");
    assert_eq!(events.last().unwrap()["outcome"], "failed");

    let out = headless("fail_pause.toml", &["--json"]);
    out.expect(1);
    let (events, types) = ndjson(&out);
    assert!(types.contains("run_paused"), "{types:?}");
    assert_eq!(events.last().unwrap()["outcome"], "aborted");

    let dir = tempdir("json-retry");
    let counter = dir.join("counter");
    let path = fixture("retry.toml");
    let out = drconsole_env(
        &["--headless", "--json", path.to_str().unwrap()],
        &[("DRCONSOLE_COUNTER", counter.to_str().unwrap())],
    );
    out.expect(0);
    let (events, _) = ndjson(&out);
    let retry = events.iter().find(|e| e["type"] == "step_retrying").expect("a step_retrying event");
    assert_eq!(retry["attempt"], 1);
    assert!(retry["delay_ms"].as_u64().is_some_and(|d| (1000..=2000).contains(&d)), "{retry}");
    let _ = std::fs::remove_dir_all(&dir);

    let out = headless("manual.toml", &["--json"]);
    out.expect(3);
    let (events, _) = ndjson(&out);
    let req = events.iter().find(|e| e["type"] == "operator_request").expect("an operator_request event");
    assert_eq!(req["prompt"]["kind"], "done");
    assert_eq!(events.last().unwrap()["outcome"], "blocked");
}

/// The simulator's EBS-set question (the newest database point meets the RPO, the set consistent with it does not)
/// stops a headless run without `+ebs=` with exit 3, and nothing was created before: the steps that need no recovery
/// point (AMI copy, NAT gateway, load balancer) wait for the pick in a headless run (`engine::gate`). With the
/// decision given, the same run recovers, those steps starting once the pick has ended.
#[test]
fn a_headless_run_stopped_by_the_ebs_set_question_created_nothing() {
    let args = ["--headless", "--json", "--sim", "--speed", "1000", "--yes", "--recovery-point"];
    let mut stop = args.to_vec();
    stop.extend(["latest", "runbooks/cross-sell.toml"]);
    let out = drconsole(&stop);
    out.expect(3);
    let (events, _) = ndjson(&out);
    let asked = events.iter().find(|e| e["type"] == "operator_request").expect("the EBS set question");
    assert_eq!(asked["step"], "pick_db");
    assert!(out.stderr.contains("+ebs="), "{}", out.stderr);
    let started: Vec<&str> =
        events.iter().filter(|e| e["type"] == "step_started").filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(started, ["pick_db"], "only the pick started");
    let resources: Vec<&Value> = events.iter().filter(|e| e["type"] == "resource").collect();
    assert!(resources.is_empty(), "nothing created, found or changed: {resources:?}");
    for step in ["copy_ami", "nat", "alb"] {
        let c = events.iter().find(|e| e["type"] == "step_cancelled" && e["step"] == step).expect("cancelled");
        assert!(c["reason"].as_str().unwrap().contains("creates nothing before `pick_db`"), "{c}");
    }
    let mut go = args.to_vec();
    go.extend(["latest+ebs=newest", "runbooks/cross-sell.toml"]);
    let out = drconsole(&go);
    out.expect(0);
    let (events, _) = ndjson(&out);
    let at = |t: &str, step: &str| events.iter().position(|e| e["type"] == t && e["step"] == step);
    let picked = at("step_succeeded", "pick_db").expect("pick_db succeeded");
    for step in ["copy_ami", "nat", "alb"] {
        assert!(at("step_started", step).is_some_and(|s| s > picked), "{step} started after the pick");
    }
}
