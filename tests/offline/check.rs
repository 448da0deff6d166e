//! `drconsole check` on the fixtures in `tests/fixtures`: every valid runbook passes, every invalid runbook fails
//! with exactly the errors its header declares (`# expect: LINE:COL CLASS`, or `# expect: FILE:LINE:COL CLASS` for
//! an error in another file, one line per error), and the rendered messages are snapshotted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Every error class `check` can report (`DiagKind::as_str`); each must be exercised by at least one fixture.
const CLASSES: &[&str] = &[
    "syntax",
    "unknown-field",
    "missing-field",
    "wrong-type",
    "bad-value",
    "bad-name",
    "duplicate-step",
    "unknown-action",
    "unknown-param",
    "missing-param",
    "unknown-need",
    "cycle",
    "bad-reference",
    "bad-duration",
    "bad-region",
    "bad-include",
];

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(kind)
}

/// The `*.toml` files of a fixture directory, sorted (sub-directories are not fixtures).
fn fixtures(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir(kind))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

/// One reported or expected error: file as printed, line, column, class.
type Located = (String, usize, usize, String);

fn parse_location(file: &str, loc: &str) -> Option<(String, usize, usize)> {
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let path = parts.next().map_or_else(|| file.to_string(), str::to_string);
    Some((path, line, col))
}

/// The `# expect:` lines of a fixture's header.
fn expected(name: &str) -> Vec<Located> {
    let text = String::from_utf8_lossy(&std::fs::read(fixture_dir("invalid").join(name)).unwrap()).into_owned();
    let mut out = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let Some(rest) = line.strip_prefix("# expect:") else { continue };
        let mut words = rest.split_whitespace();
        let (Some(loc), Some(class), None) = (words.next(), words.next(), words.next()) else {
            panic!("{name}: malformed expect line `{line}`: write `# expect: LINE:COL CLASS`");
        };
        let (path, l, c) =
            parse_location(name, loc).unwrap_or_else(|| panic!("{name}: malformed location in `{line}`"));
        assert!(CLASSES.contains(&class), "{name}: unknown class `{class}` in `{line}`");
        out.push((path, l, c, class.to_string()));
    }
    out.sort();
    out
}

/// The `error[class]` + `--> file:line:col` pairs of rendered diagnostics.
fn reported(stderr: &str) -> Vec<Located> {
    let mut out = Vec::new();
    let mut class: Option<&str> = None;
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("error[") {
            class = rest.split(']').next();
        } else if let Some(loc) = line.trim_start().strip_prefix("--> ") {
            let c = class.take().unwrap_or_else(|| panic!("a location without an error line: {line}\n{stderr}"));
            let (path, l, col) = parse_location("", loc).unwrap_or_else(|| panic!("bad location line `{line}`"));
            out.push((path, l, col, c.to_string()));
        }
    }
    out.sort();
    out
}

fn check_in(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("drconsole").unwrap().current_dir(dir).arg("check").args(args).assert()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn show(v: &[Located]) -> String {
    v.iter().map(|(f, l, c, k)| format!("  {f}:{l}:{c} {k}\n")).collect()
}

#[test]
fn valid_fixtures_pass() {
    let names = fixtures("valid");
    assert!(names.len() >= 7, "expected a valid fixture per feature, found {names:?}");
    for name in &names {
        let a = check_in(&fixture_dir("valid"), &[name]);
        let out = stdout_of(&a);
        assert_eq!(a.get_output().status.code(), Some(0), "{name} should pass check:\n{}", stderr_of(&a));
        assert!(out.starts_with(&format!("ok: {name} (")), "{name}: unexpected stdout {out:?}");
        assert!(stderr_of(&a).is_empty(), "{name}: unexpected stderr {}", stderr_of(&a));
    }
}

#[test]
fn invalid_fixtures_report_exactly_their_expected_errors() {
    let names = fixtures("invalid");
    assert!(names.len() >= 30, "expected at least 30 invalid fixtures, found {}", names.len());
    let mut problems = String::new();
    for name in &names {
        let want = expected(name);
        if want.is_empty() {
            problems.push_str(&format!("{name}: declares no `# expect:` line\n"));
            continue;
        }
        let a = check_in(&fixture_dir("invalid"), &[name]);
        let code = a.get_output().status.code();
        let stderr = stderr_of(&a);
        if code != Some(2) {
            problems.push_str(&format!("{name}: exit {code:?}, expected 2\n{stderr}\n"));
            continue;
        }
        let got = reported(&stderr);
        if got != want {
            problems.push_str(&format!(
                "{name}: expected\n{}but check reported\n{}{stderr}\n",
                show(&want),
                show(&got)
            ));
            continue;
        }
        let summary = format!("{name}: {} error{}", want.len(), if want.len() == 1 { "" } else { "s" });
        if !stderr.contains(&summary) {
            problems.push_str(&format!("{name}: no summary line `{summary}`\n{stderr}\n"));
        }
        // every error shows the offending line and a caret under it
        for (file, line, _, _) in &got {
            if !stderr.contains(&format!("\n{line} | ")) {
                problems.push_str(&format!("{name}: no source line shown for {file}:{line}\n{stderr}\n"));
            }
        }
        if !stderr.contains('^') {
            problems.push_str(&format!("{name}: no caret\n{stderr}\n"));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

#[test]
fn every_error_class_has_a_fixture() {
    let covered: BTreeSet<String> = fixtures("invalid").iter().flat_map(|n| expected(n)).map(|e| e.3).collect();
    let missing: Vec<&&str> = CLASSES.iter().filter(|c| !covered.contains(**c)).collect();
    assert!(missing.is_empty(), "no invalid fixture covers {missing:?}");
}

#[test]
fn several_errors_are_all_reported_in_one_run() {
    let a = check_in(&fixture_dir("invalid"), &["many_errors.toml"]);
    a.get_output().status.code().filter(|c| *c == 2).expect("exit 2");
    let got = reported(&stderr_of(&a));
    let classes: BTreeSet<&str> = got.iter().map(|e| e.3.as_str()).collect();
    assert!(got.len() >= 6, "expected every error of many_errors.toml, got\n{}", show(&got));
    assert!(classes.len() >= 5, "expected errors of several classes, got {classes:?}");
    assert!(stderr_of(&a).contains(&format!("many_errors.toml: {} errors", got.len())));
}

#[test]
fn several_files_are_checked_in_one_run() {
    let root = fixture_dir("");
    let a = check_in(&root, &["valid/parallel.toml", "invalid/unknown_action.toml", "invalid/duplicate_step.toml"]);
    assert_eq!(a.get_output().status.code(), Some(2));
    assert!(stdout_of(&a).contains("ok: valid/parallel.toml"), "{}", stdout_of(&a));
    let got = reported(&stderr_of(&a));
    let files: BTreeSet<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(files, BTreeSet::from(["invalid/duplicate_step.toml", "invalid/unknown_action.toml"]));
}

#[test]
fn check_json_lists_diagnostics() {
    let a = check_in(&fixture_dir("invalid"), &["--json", "cycle.toml"]);
    assert_eq!(a.get_output().status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&a)).expect("check --json prints JSON");
    let list = v.as_array().expect("a list of diagnostics");
    assert_eq!(list.len(), 1, "{v:#}");
    assert_eq!(list[0]["kind"], "cycle");
    assert_eq!(list[0]["path"], "cycle.toml");
    assert!(list[0]["line"].as_u64().is_some_and(|l| l > 1));
}

#[test]
fn unreadable_file_is_a_located_error() {
    let a = check_in(&fixture_dir("invalid"), &["no_such_runbook.toml"]);
    assert_eq!(a.get_output().status.code(), Some(2));
    let stderr = stderr_of(&a);
    assert!(stderr.contains("no_such_runbook.toml:1:1"), "{stderr}");
    assert!(stderr.contains("cannot read runbook"), "{stderr}");
}

#[test]
fn check_without_files_is_a_usage_error() {
    let a = Command::cargo_bin("drconsole").unwrap().arg("check").assert();
    assert_eq!(a.get_output().status.code(), Some(2));
}

#[test]
fn drill_record_templates_are_checked_where_they_are_written() {
    let cases = [
        ("drill_record_without_id.toml", "9:17", "`drill_record` must contain {id}"),
        ("drill_record_unknown_placeholder.toml", "10:28", "unknown placeholder `{recrod}` in `drill_record`"),
        ("drill_record_not_a_dns_name.toml", "9:17", "which is not a DNS name: ` ` in the label `drill abcdefgh`"),
    ];
    for (name, at, msg) in cases {
        let a = check_in(&fixture_dir("invalid"), &[name]);
        assert_eq!(a.get_output().status.code(), Some(2), "{name}");
        let stderr = stderr_of(&a);
        assert!(stderr.contains(&format!("{name}:{at}")), "{name}: not at {at}\n{stderr}");
        assert!(stderr.contains(msg), "{name}: no `{msg}`\n{stderr}");
    }
    let a = check_in(&fixture_dir("invalid"), &["drill_record_unknown_placeholder.toml"]);
    assert!(stderr_of(&a).contains("did you mean `{record}`?"), "{}", stderr_of(&a));
    // a template with {id} that makes a DNS name passes
    let a = check_in(&fixture_dir("valid"), &["drill_record.toml"]);
    assert_eq!(a.get_output().status.code(), Some(0), "{}", stderr_of(&a));
}

fn snapshot_check(name: &str) -> String {
    let a = check_in(&fixture_dir("invalid"), &[name]);
    assert_eq!(a.get_output().status.code(), Some(2));
    stderr_of(&a)
}

#[test]
fn snapshot_unknown_field_with_suggestion() {
    // `timout` in a step: did you mean `timeout`?
    insta::assert_snapshot!(snapshot_check("unknown_field_step.toml"));
}

#[test]
fn snapshot_cycle_names_every_step() {
    insta::assert_snapshot!(snapshot_check("cycle.toml"));
}

#[test]
fn snapshot_reference_caret_inside_string() {
    insta::assert_snapshot!(snapshot_check("ref_not_upstream.toml"));
}

#[test]
fn snapshot_many_errors() {
    insta::assert_snapshot!(snapshot_check("many_errors.toml"));
}

fn help(args: &[&str]) -> String {
    let a = Command::cargo_bin("drconsole").unwrap().args(args).env("COLUMNS", "100").env("NO_COLOR", "1").assert();
    assert_eq!(a.get_output().status.code(), Some(0));
    stdout_of(&a)
}

#[test]
fn snapshot_help() {
    insta::assert_snapshot!(help(&["--help"]));
}

#[test]
fn snapshot_check_help() {
    insta::assert_snapshot!(help(&["check", "--help"]));
}

#[test]
fn plan_resolves_everything_known_before_the_run() {
    let a = Command::cargo_bin("drconsole")
        .unwrap()
        .current_dir(fixture_dir("valid"))
        .args(["plan", "interpolation.toml"])
        .assert();
    assert_eq!(a.get_output().status.code(), Some(0), "{}", stderr_of(&a));
    let out = stdout_of(&a);
    let want = "echo runbook=interpolation,Every namespace,demo,1h30m,1h00m,sre-oncall,Shows every reference a parameter can hold.";
    assert!(out.contains(want), "{out}");
    assert!(out.contains("echo target=eu-central-1,eu-west-1,123456789012,sim"), "{out}");
    // what only the run knows stays a placeholder
    assert!(out.contains("echo steps=<steps.first.stdout>,<steps.first.exit_code>"), "{out}");
    assert!(out.contains("critical path (*): first → second → third"), "{out}");
}

#[test]
fn actions_lists_every_generic_action_with_its_parameters() {
    let a = Command::cargo_bin("drconsole").unwrap().args(["actions", "--json"]).assert();
    assert_eq!(a.get_output().status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&a)).expect("actions --json prints JSON");
    let names: BTreeSet<&str> = v.as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    for want in ["wait", "manual", "shell", "check.http", "check.tcp", "check.dns"] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    let shell = v.as_array().unwrap().iter().find(|a| a["name"] == "shell").unwrap();
    let params: Vec<&str> = shell["params"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(params, ["command", "timeout"]);
    let outputs: Vec<&str> = shell["outputs"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(outputs, ["stdout", "exit_code"]);
    let text = Command::cargo_bin("drconsole").unwrap().arg("actions").assert();
    assert!(stdout_of(&text).contains("outputs: done_by"), "{}", stdout_of(&text));
}
