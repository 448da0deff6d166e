#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The regional incident: the five applications' incident file run headless on the simulator as one incident
//! (all recovered, one run per application, the incident record, `app`/`run_id` on every event, no throttling
//! with the limiter on); the rate limits measured (tight limits throttle without the limiter, never with it);
//! the exit code by precedence; `check` of an incident file; a killed incident resumed by its id with no
//! duplicate resource; `runs`, `report` of an incident.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

const INCIDENT: &str = "runbooks/incidents/us-east-1-outage.toml";
const APPS: [&str; 5] =
    ["agent-payment", "vendor-assistance", "cross-sell", "inventory-management", "customer-assistance"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sim_args() -> Vec<&'static str> {
    vec![
        "--headless",
        "--json",
        "--sim",
        "--speed",
        "3000",
        "--yes",
        "--manual-done",
        "all",
        "--recovery-point",
        "latest+ebs=newest",
    ]
}

struct Out {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

fn drconsole(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::cargo_bin("drconsole").unwrap();
    c.env("DRCONSOLE_STATE_DIR", state).args(args).timeout(Duration::from_secs(300));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not NDJSON: {e}: {l}")))
        .collect();
    Out { code: out.status.code().unwrap_or(-1), lines, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|e| e["type"] == t).collect()
}

fn record(state: &Path) -> Value {
    let dir = std::fs::read_dir(state.join("incidents")).unwrap().next().unwrap().unwrap().path();
    serde_json::from_str(&std::fs::read_to_string(dir.join("incident.json")).unwrap()).unwrap()
}

/// An incident file in `dir` naming `runbooks` (absolute paths), with an optional `[limits]` table.
fn incident_file(dir: &Path, runbooks: &[PathBuf], limits: &str) -> PathBuf {
    let list: Vec<String> = runbooks.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    let text = format!("[incident]\nname = \"t\"\ntitle = \"T\"\nrunbooks = [{}]\n{limits}", list.join(", "));
    let p = dir.join("incident.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_five_applications_recover_as_one_incident_on_the_simulator() {
    let state = tempfile::tempdir().unwrap();
    let mut args = sim_args();
    args.push(INCIDENT);
    let out = drconsole(state.path(), &args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // every line names its application and run; the last one is the incident's end
    let (last, events) = out.lines.split_last().unwrap();
    assert_eq!(last["type"], "incident_finished");
    for e in events {
        assert!(APPS.contains(&e["app"].as_str().unwrap_or("")), "{e}");
        assert!(e["run_id"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    }
    let finished = of_type(events, "run_finished");
    assert_eq!(finished.len(), 5);
    for f in &finished {
        assert_eq!(f["outcome"], "recovered", "{f}");
        assert_eq!(f["rto_met"], true, "{f}");
    }
    // one incident start for every application
    let starts: Vec<&Value> = of_type(events, "run_started").iter().map(|e| &e["incident_start"]).collect();
    assert_eq!(starts.len(), 5);
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}");
    // with the limiter on, AWS's default limits throttle nothing
    assert_eq!(last["throttled"], 0, "{last}");
    assert!(last["api_calls"].as_u64().unwrap() > 100, "{last}");
    // the incident record lists each application's run, and each run has its own journal and reports
    let rec = record(state.path());
    let apps = rec["apps"].as_array().unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a["app"].as_str().unwrap()).collect();
    assert_eq!(names, APPS, "priority first, then the file's order");
    for a in apps {
        assert_eq!(a["outcome"], "recovered");
        let run = a["run_id"].as_str().unwrap();
        let dir = state.path().join("runs").join(run);
        assert!(dir.join("journal.jsonl").is_file(), "{}", dir.display());
        let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["outcome"], "recovered");
        assert!(events.iter().any(|e| e["run_id"] == run && e["app"] == a["app"]));
    }
    assert_eq!(rec["sessions"][0]["exit_code"], 0);
    // the incident report: every application, the verdict, one timeline
    let inc = state.path().join("incidents").join(rec["incident_id"].as_str().unwrap());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(inc.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["apps"].as_array().unwrap().len(), 5);
    assert!(report["timeline"].as_array().unwrap().len() >= 5 * 2 * 10);
    let md = std::fs::read_to_string(inc.join("report.md")).unwrap();
    for a in APPS {
        assert!(md.contains(&format!("| {a} | recovered |")), "{md}");
    }
    assert!(std::fs::read_to_string(inc.join("junit.xml")).unwrap().contains("<testsuite name=\"cross-sell\""));
    // `watch INCIDENT` follows every application (here: replays them, they ended) with their names
    let id = rec["incident_id"].as_str().unwrap();
    let watched = drconsole(state.path(), &["watch", id, "--json"], &[]);
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    let ends = of_type(&watched.lines, "run_finished");
    let mut apps_seen: Vec<&str> = ends.iter().map(|e| e["app"].as_str().unwrap()).collect();
    apps_seen.sort();
    let mut want = APPS.to_vec();
    want.sort();
    assert_eq!(apps_seen, want);
    // `report INCIDENT` prints the report again
    let junit = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", state.path())
        .args(["report", id, "--format", "junit"])
        .output()
        .unwrap();
    assert!(junit.status.success());
    // one failure per target missed (the simulator's agent-payment EBS set is older than its RPO)
    let missed = report["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| usize::from(a["rto_met"] != true) + usize::from(a["rpo_met"] == false))
        .sum::<usize>();
    let verdict = if missed == 0 { "recovered" } else { "recovered-late" };
    assert_eq!(report["verdict"], verdict);
    let junit = String::from_utf8_lossy(&junit.stdout);
    assert!(junit.contains(&format!("failures=\"{missed}\"")), "{junit}");
    // `runs` shows the incident with its applications
    let runs =
        Command::cargo_bin("drconsole").unwrap().env("DRCONSOLE_STATE_DIR", state.path()).arg("runs").output().unwrap();
    let text = String::from_utf8_lossy(&runs.stdout);
    assert!(text.contains(rec["incident_id"].as_str().unwrap()), "{text}");
    assert!(text.lines().filter(|l| APPS.iter().any(|a| l.trim_start().starts_with(a))).count() == 5, "{text}");
}

#[test]
fn tight_limits_throttle_without_the_limiter_and_never_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let rbs = [root().join("runbooks/cross-sell.toml"), root().join("runbooks/agent-payment.toml")];
    let tight = "\"ec2.non-mutating\" = { burst = 5, rate = 0.3 }\n\"rds\" = { burst = 5, rate = 0.1 }\n";
    let mut figures = Vec::new();
    for on in [false, true] {
        let f = incident_file(dir.path(), &rbs, &format!("[limits]\nlimiter = {on}\n{tight}"));
        let state = tempfile::tempdir().unwrap();
        let mut args = sim_args();
        let f = f.display().to_string();
        args.push(&f);
        let out = drconsole(state.path(), &args, &[]);
        let last = out.lines.last().unwrap().clone();
        figures.push((
            out.code,
            last["throttled"].as_u64().unwrap(),
            last["limits"]["limiter_waits"].as_u64().unwrap(),
        ));
    }
    let (_, off_throttled, off_waits) = figures[0];
    let (on_code, on_throttled, on_waits) = figures[1];
    assert!(off_throttled > 0 && off_waits == 0, "{figures:?}");
    assert_eq!((on_code, on_throttled), (0, 0), "{figures:?}");
    assert!(on_waits > 0, "{figures:?}");
}

/// Copies of the run fixtures with an application each (they all say `app = "test"`).
fn fixture_apps(dir: &Path, names: &[(&str, &str)]) -> Vec<String> {
    names
        .iter()
        .map(|(file, app)| {
            let text = std::fs::read_to_string(root().join("tests/fixtures/run").join(file)).unwrap();
            let p = dir.join(format!("{app}.toml"));
            std::fs::write(&p, text.replace("app = \"test\"", &format!("app = \"{app}\""))).unwrap();
            p.display().to_string()
        })
        .collect()
}

#[test]
fn the_exit_code_of_an_incident_is_the_worst_by_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let run = |files: &[String], extra: &[&str]| {
        let state = tempfile::tempdir().unwrap();
        let mut args = vec!["--headless", "--json"];
        args.extend_from_slice(extra);
        args.extend(files.iter().map(String::as_str));
        drconsole(state.path(), &args, &[])
    };
    // recovered + blocked (a confirmation nobody gave) + failed: 1 beats 3
    let three = fixture_apps(dir.path(), &[("ok.toml", "a"), ("confirm.toml", "b"), ("fail_abort.toml", "c")]);
    let out = run(&three, &[]);
    let by_app = |out: &Out| -> Vec<(String, String)> {
        of_type(&out.lines, "run_finished")
            .iter()
            .map(|e| (e["app"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
            .collect()
    };
    let mut outcomes = by_app(&out);
    outcomes.sort();
    assert_eq!(
        outcomes,
        [("a".into(), "recovered".into()), ("b".into(), "blocked".into()), ("c".into(), "failed".into())],
        "{}",
        out.stderr
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    // recovered + blocked: 3
    let out = run(&three[..2], &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    // everything approved: 0
    let out = run(&three[..2], &["--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines.last().unwrap()["exit_code"], 0);
}

#[test]
fn a_recovery_point_id_must_name_its_application_and_nothing_starts_otherwise() {
    let state = tempfile::tempdir().unwrap();
    let args = ["--headless", "--sim", "--yes", "--manual-done", "all", "--recovery-point", "snap-1", INCIDENT];
    let out = drconsole(state.path(), &args, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("APP=snap-1"), "{}", out.stderr);
    // one application given a point, the others none: refused before anything is created (exit 3)
    let args =
        ["--headless", "--sim", "--yes", "--manual-done", "all", "--recovery-point", "cross-sell=latest", INCIDENT];
    let out = drconsole(state.path(), &args, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("application `agent-payment`"), "{}", out.stderr);
    assert!(!state.path().join("runs").exists() || std::fs::read_dir(state.path().join("runs")).unwrap().count() == 0);
    assert!(!state.path().join("incidents").exists());
}

#[test]
fn check_validates_an_incident_file_and_every_runbook_it_names() {
    let ok = Command::cargo_bin("drconsole").unwrap().args(["check", INCIDENT]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("incident us-east-1-outage, 5 runbooks"));
    let dir = tempfile::tempdir().unwrap();
    let bad_rb = dir.path().join("bad.toml");
    std::fs::write(&bad_rb, "[runbook]\nname = \"bad\"\n").unwrap();
    let f = dir.path().join("i.toml");
    std::fs::write(
        &f,
        "[incident]\nname = \"i\"\ntitle = \"I\"\nrunbooks = [\"bad.toml\", \"gone.toml\"]\npriority = [\"x\"]\n",
    )
    .unwrap();
    let out = Command::cargo_bin("drconsole").unwrap().arg("check").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:25", f.display())), "the missing runbook's entry: {err}");
    assert!(err.contains("no runbook at"), "{err}");
    assert!(err.contains(&format!("{}:", bad_rb.display())), "the broken runbook's own errors: {err}");
    std::fs::write(&f, "[incident]\nname = \"i\"\ntitle = \"I\"\nrunbooks = [\"bad.toml\"]\nrunbok = 1\n").unwrap();
    let out = Command::cargo_bin("drconsole").unwrap().arg("check").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:5:1", f.display())) && err.contains("unknown field"), "{err}");
}

/// What the incident built in the secondary region: the DR database instances, NAT gateways and load balancers
/// by name, from the shared world saved in a run directory (a duplicate shows as a second entry).
fn estate(world: &Path) -> Vec<String> {
    let w: Value = serde_json::from_str(&std::fs::read_to_string(world).unwrap()).unwrap();
    let secondary = w["secondary"].as_str().unwrap();
    let region = &w["regions"][secondary];
    let mut out = Vec::new();
    for kind in ["dbs", "nats", "lbs", "tgs", "asgs", "web_acls", "listeners"] {
        if let Some(m) = region[kind].as_object() {
            for (k, v) in m {
                let item = v.get("item").unwrap_or(v);
                let name = ["name", "identifier", "id"]
                    .iter()
                    .find_map(|f| item.get(*f).and_then(|x| x.as_str()))
                    .unwrap_or(k);
                out.push(format!("{kind}:{name}"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_incident_resumes_every_application_by_its_id_with_no_duplicate_resource() {
    let state = tempfile::tempdir().unwrap();
    let mut args = sim_args();
    args.extend(["--seed", "3", INCIDENT]);
    // killed when the first application's journal reaches record 60: mid-run for all five
    let out = drconsole(state.path(), &args, &[("DRCONSOLE_TEST_KILL_AFTER_RECORD", "60")]);
    assert_ne!(out.code, 0, "the kill hook did not fire: {}", out.stderr);
    let rec = record(state.path());
    let id = rec["incident_id"].as_str().unwrap().to_string();
    let finished_before = of_type(&out.lines, "run_finished").len();
    assert!(finished_before < 5, "every application had finished before the kill");
    let out = drconsole(
        state.path(),
        &[
            "resume",
            &id,
            "--headless",
            "--json",
            "--yes",
            "--manual-done",
            "all",
            "--recovery-point",
            "latest+ebs=newest",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let finished = of_type(&out.lines, "run_finished");
    assert!(finished.iter().all(|f| f["outcome"] == "recovered"), "{finished:?}");
    let rec = record(state.path());
    assert!(rec["apps"].as_array().unwrap().iter().all(|a| a["outcome"] == "recovered"), "{rec}");
    assert_eq!(rec["sessions"].as_array().unwrap().len(), 2);
    // every application's run ended recovered; the shared world holds each application's stack once
    let newest = rec["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| state.path().join("runs").join(a["run_id"].as_str().unwrap()).join("world.json"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let built = estate(&newest);
    let mut unique = built.clone();
    unique.dedup();
    assert_eq!(built, unique, "a resource was created twice");
    // the same as an uninterrupted incident with the same seed
    let reference = tempfile::tempdir().unwrap();
    let out = drconsole(reference.path(), &args, &[]);
    assert_eq!(out.code, 0);
    let rec = record(reference.path());
    let world = state_world(reference.path(), &rec);
    let kinds = |v: &[String]| -> Vec<(String, usize)> {
        let mut m = std::collections::BTreeMap::new();
        for x in v {
            *m.entry(x.split(':').next().unwrap().to_string()).or_insert(0) += 1;
        }
        m.into_iter().collect()
    };
    assert_eq!(kinds(&built), kinds(&estate(&world)), "{built:?}");
    assert!(built.len() >= 5 * 3, "{built:?}");
    // a recovered incident has nothing to resume
    let out = drconsole(state.path(), &["resume", &id, "--headless"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

fn state_world(state: &Path, rec: &Value) -> PathBuf {
    rec["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| state.join("runs").join(a["run_id"].as_str().unwrap()).join("world.json"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap()
}

/// Events of one application (JSON, as the journal has them), from a fixed incident start.
fn app_events(app: &str, steps: &[(&str, bool)], tail: &[Value]) -> Vec<drconsole::run::Event> {
    let t0 = "2026-12-02T04:00:00Z";
    let infos: Vec<Value> = steps
        .iter()
        .map(|(id, confirm)| {
            serde_json::json!({"id": id, "title": id, "action": "wait", "needs": [], "expected_secs": 1200,
                "confirm": confirm, "on_failure": "pause"})
        })
        .collect();
    let mut evs = vec![serde_json::json!({"seq": 1, "ts": t0, "type": "run_started", "run_id": format!("run-{app}"),
        "runbook": app, "title": app, "app": app, "path": "x", "sha256": "x", "backend": "sim", "account": null,
        "primary": "us-east-1", "secondary": "us-west-2", "incident_start": t0, "rto_secs": 7200, "rpo_secs": 3600,
        "deadline": "2026-12-02T06:00:00Z", "speed": 1.0, "steps": infos})];
    evs.extend(tail.iter().cloned());
    evs.into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["seq"] = (i + 1).into();
            if e.get("ts").is_none() {
                e["ts"] = "2026-12-02T04:10:00Z".into();
            }
            serde_json::from_value(e).unwrap()
        })
        .collect()
}

#[test]
fn the_overview_sorts_by_urgency_and_names_each_question_s_application_at_80x24() {
    use drconsole::run::RunView;
    use serde_json::json;
    let started = |s: &str| json!({"type": "step_started", "step": s, "attempt": 1, "plan": "", "params": {}});
    let ok = |s: &str| json!({"type": "step_succeeded", "step": s, "attempt": 1, "duration_ms": 60000, "outputs": {}});
    let apps: Vec<(&str, Vec<drconsole::run::Event>)> = vec![
        ("cross-sell", app_events("cross-sell", &[("db", false), ("dns", false)], &[started("db")])),
        (
            "agent-payment",
            app_events(
                "agent-payment",
                &[("db", false), ("cutover", true), ("verify", false)],
                &[started("db"), ok("db"), json!({"type": "step_awaiting_approval", "step": "cutover", "plan": ""})],
            ),
        ),
        (
            "vendor-assistance",
            app_events(
                "vendor-assistance",
                &[("restore", false), ("dns", false)],
                &[
                    started("restore"),
                    json!({"type": "step_failed", "step": "restore", "attempt": 1, "error": "AccessDenied", "policy": "pause"}),
                    json!({"type": "run_paused", "reason": "step restore failed"}),
                ],
            ),
        ),
        (
            "inventory-management",
            app_events(
                "inventory-management",
                &[("db", false)],
                &[
                    started("db"),
                    ok("db"),
                    json!({"type": "run_finished", "outcome": "recovered", "duration_secs": 600, "rto_secs": 7200,
                        "rto_achieved_secs": 600, "rto_met": true, "succeeded": 1, "failed": 0, "skipped": 0,
                        "cancelled": 0, "message": "every step succeeded or was skipped"}),
                ],
            ),
        ),
        (
            "customer-assistance",
            app_events(
                "customer-assistance",
                &[("pick", false), ("restore", false), ("a", false), ("b", false), ("c", false), ("d", false)],
                &[
                    started("pick"),
                    json!({"type": "recovery_point_chosen", "step": "pick", "id": "snap-1", "kind": "rds-snapshot",
                        "region": "us-west-2", "time": "2026-12-02T02:50:00Z", "rpo_secs": 4200, "rpo_met": false}),
                    ok("pick"),
                    started("restore"),
                ],
            ),
        ),
    ];
    let views: Vec<(&str, RunView)> = apps.iter().map(|(a, evs)| (*a, RunView::from_events(evs))).collect();
    let now: jiff::Timestamp = "2026-12-02T04:10:00Z".parse().unwrap();
    let rows = drconsole::incident::overview::rows(views.iter().map(|(a, v)| (*a, v)), now);
    let order: Vec<&str> = rows.iter().map(|r| r.app.as_str()).collect();
    // waiting for a person first, then failed/paused, then the thinnest margin, finished last
    assert_eq!(order[0], "agent-payment");
    assert_eq!(order[1], "vendor-assistance");
    assert_eq!(order[4], "inventory-management");
    assert_eq!(drconsole::incident::overview::questions(&rows), ["[agent-payment] approve cutover"]);
    let backend = ratatui::backend::TestBackend::new(80, 24);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    let theme = drconsole::tui::Theme::load("monochrome").unwrap();
    let o = drconsole::tui::overview::Overview {
        title: "us-east-1 outage (5 applications)",
        rows: &rows,
        selected: 0,
        now,
        theme: &theme,
        read_only: false,
    };
    term.draw(|f| f.render_widget(&o, f.area())).unwrap();
    let buf = term.backend().buffer().clone();
    let text: Vec<String> = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()
        })
        .collect();
    insta::assert_snapshot!("overview_80x24", text.join("\n"));
}

/// The incident console with two applications, both waiting at a confirmation of `cutover`: `alpha` with the
/// thinner margin (its step expected longer), then `bravo`.
fn two_waiting() -> drconsole::tui::incident::IncidentState {
    use serde_json::json;
    let started = |s: &str| json!({"type": "step_started", "step": s, "attempt": 1, "plan": "", "params": {}});
    let ok = |s: &str| json!({"type": "step_succeeded", "step": s, "attempt": 1, "duration_ms": 60000, "outputs": {}});
    let waits = json!({"type": "step_awaiting_approval", "step": "cutover", "plan": "run `echo cut`"});
    let alpha = app_events(
        "alpha",
        &[("db", false), ("cutover", true), ("verify", false), ("dns", false)],
        &[started("db"), ok("db"), waits.clone()],
    );
    let bravo = app_events("bravo", &[("db", false), ("cutover", true)], &[started("db"), ok("db"), waits]);
    incident_console("SIMULATOR · Two applications waiting · incident inc-1", "inc-1", [alpha, bravo])
}

/// The incident console of applications `alpha` and `bravo` at 80x24 after their events, past the key guard of
/// the popups that opened by themselves.
fn incident_console(
    title: &str,
    id: &str,
    events: [Vec<drconsole::run::Event>; 2],
) -> drconsole::tui::incident::IncidentState {
    use drconsole::tui::incident::{IncidentInput, IncidentState};
    let notes = drconsole::tui::StepNotes::new();
    let mut st = IncidentState::new(
        title.into(),
        id.into(),
        vec![("alpha".into(), notes.clone()), ("bravo".into(), notes)],
        "oncall@host",
    );
    st.handle(IncidentInput::Resize(80, 24));
    for (i, evs) in events.into_iter().enumerate() {
        for ev in evs {
            st.handle(IncidentInput::Event(i, Box::new(ev)));
        }
    }
    st.handle(IncidentInput::Instant(10_000));
    st
}

fn key(
    st: &mut drconsole::tui::incident::IncidentState,
    code: ratatui::crossterm::event::KeyCode,
) -> Vec<drconsole::tui::incident::IncidentEffect> {
    use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
    st.handle(drconsole::tui::incident::IncidentInput::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn screen_text(st: &drconsole::tui::incident::IncidentState) -> String {
    let theme = drconsole::tui::Theme::load("monochrome").unwrap();
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    term.draw(|f| f.render_widget(drconsole::tui::incident::IncidentScreen { state: st, theme: &theme }, f.area()))
        .unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_incident_console_opens_on_the_overview_with_both_questions_each_naming_its_application() {
    use drconsole::tui::incident::Shown;
    let st = two_waiting();
    assert_eq!(st.shown, Shown::Overview);
    assert_eq!(st.questions(), ["[alpha] approve cutover", "[bravo] approve cutover"]);
    let text = screen_text(&st);
    assert!(text.contains("questions (2)"), "{text}");
    insta::assert_snapshot!("incident_console_overview_two_waiting_80x24", text);
}

#[test]
fn an_application_s_popup_names_it_and_the_bar_names_the_other_s_question() {
    use drconsole::tui::incident::Shown;
    use ratatui::crossterm::event::KeyCode;
    let mut st = two_waiting();
    // Down, Enter: bravo's console with its question
    assert!(key(&mut st, KeyCode::Down).is_empty());
    assert!(key(&mut st, KeyCode::Enter).is_empty());
    assert_eq!(st.shown, Shown::App(1));
    st.handle(drconsole::tui::incident::IncidentInput::Instant(20_000));
    let text = screen_text(&st);
    assert!(text.contains("bravo · Confirm step cutover"), "{text}");
    assert!(text.contains("also waiting: [alpha] approve cutover"), "{text}");
    assert!(!text.contains("alpha · Confirm"), "{text}");
    insta::assert_snapshot!("incident_console_bravo_question_80x24", text);
}

#[test]
fn an_answer_given_in_the_incident_console_goes_to_its_application_s_engine() {
    use drconsole::run::Command;
    use drconsole::tui::incident::{IncidentEffect, IncidentInput, Shown};
    use ratatui::crossterm::event::KeyCode;
    let approve =
        |i: usize| IncidentEffect::Send(i, Command::Approve { step: "cutover".into(), by: "oncall@host".into() });
    let mut st = two_waiting();
    // bravo (the second row): y approves bravo's step, sent to bravo's engine (index 1) only
    key(&mut st, KeyCode::Down);
    key(&mut st, KeyCode::Enter);
    assert_eq!(st.shown, Shown::App(1));
    // a key right after the popup opened is ignored (it was meant for the overview)
    assert!(key(&mut st, KeyCode::Char('y')).is_empty());
    st.handle(IncidentInput::Instant(20_000));
    assert_eq!(key(&mut st, KeyCode::Char('y')), [approve(1)]);
    // with no popup, Esc goes back to the overview; `a` opens the first queued question: alpha's
    key(&mut st, KeyCode::Esc);
    assert_eq!(st.shown, Shown::Overview);
    key(&mut st, KeyCode::Char('a'));
    assert_eq!(st.shown, Shown::App(0));
    st.handle(IncidentInput::Instant(30_000));
    assert_eq!(key(&mut st, KeyCode::Char('y')), [approve(0)]);
    // q on an application's screen returns to the overview; q on the overview asks, y interrupts both, then quits
    key(&mut st, KeyCode::Char('q'));
    assert_eq!(st.shown, Shown::Overview);
    assert!(key(&mut st, KeyCode::Char('q')).is_empty());
    assert!(st.quitting);
    assert!(screen_text(&st).contains("Quit the incident?"));
    assert_eq!(
        key(&mut st, KeyCode::Char('y')),
        [
            IncidentEffect::Send(0, Command::Interrupt),
            IncidentEffect::Send(1, Command::Interrupt),
            IncidentEffect::Quit
        ]
    );
}

#[test]
fn runs_json_names_the_incident_and_application_of_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let files = fixture_apps(dir.path(), &[("ok.toml", "alpha"), ("ok.toml", "bravo")]);
    // one lock per runbook: the two copies need names of their own
    for (f, app) in files.iter().zip(["alpha", "bravo"]) {
        let text = std::fs::read_to_string(f).unwrap();
        std::fs::write(f, text.replacen("name = \"ok\"", &format!("name = \"ok-{app}\""), 1)).unwrap();
    }
    let mut args = vec!["--headless", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = drconsole(state.path(), &args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // and one run of no incident
    let single = root().join("tests/fixtures/run/ok.toml").display().to_string();
    let out = drconsole(state.path(), &["--headless", "--json", &single], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rec = record(state.path());
    let runs = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", state.path())
        .args(["runs", "--json"])
        .output()
        .unwrap();
    assert!(runs.status.success());
    let list: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    for a in rec["apps"].as_array().unwrap() {
        let run = list.iter().find(|r| r["run_id"] == a["run_id"]).unwrap();
        assert_eq!(run["incident"]["incident_id"], rec["incident_id"], "{run}");
        assert_eq!(run["incident"]["app"], a["app"], "{run}");
        assert_eq!(run["incident"]["name"], rec["name"], "{run}");
        assert_eq!(run["outcome"], "recovered", "{run}");
    }
    let mut apps: Vec<&str> = list.iter().filter_map(|r| r["incident"]["app"].as_str()).collect();
    apps.sort();
    assert_eq!(apps, ["alpha", "bravo"]);
    // the run of no incident has no `incident` field
    assert_eq!(list.iter().filter(|r| r.get("incident").is_none()).count(), 1, "{list:?}");
}

#[test]
fn an_application_s_help_says_q_goes_back_to_the_overview() {
    use drconsole::tui::incident::{IncidentInput, Shown};
    use ratatui::crossterm::event::KeyCode;
    let mut st = two_waiting();
    key(&mut st, KeyCode::Enter);
    assert_eq!(st.shown, Shown::App(0));
    st.handle(IncidentInput::Instant(20_000));
    // not now, then the help: q is the way back to the overview here, not a quit
    key(&mut st, KeyCode::Char('n'));
    key(&mut st, KeyCode::Char('?'));
    let text = screen_text(&st);
    assert!(text.contains("alpha · Keys"), "{text}");
    assert!(text.contains("back to the overview"), "{text}");
    assert!(!text.contains("quit (asks if active)"), "{text}");
}

// one recovery-point decision for many applications: `L` on the overview proposes, for every application asking,
// the newest point in its secondary region that meets its own RPO; `y` sends each answer to its application only,
// and an application with no such point is named and left to choose on its screen
#[test]
fn latest_points_for_every_application_are_proposed_then_sent_each_to_its_application() {
    use drconsole::run::Command;
    use drconsole::tui::incident::IncidentEffect;
    use ratatui::crossterm::event::KeyCode;
    use serde_json::json;
    let cand = |id: &str, region: &str, time: &str, met: bool| {
        json!({"id": id, "kind": "rds-snapshot", "region": region, "time": time, "age_secs": 0, "encrypted": true,
            "size_gib": 100, "rpo_met": met})
    };
    let ask = |cands: Vec<Value>| {
        vec![
            json!({"type": "step_started", "step": "pick_db", "attempt": 1, "plan": "", "params": {}}),
            json!({"type": "operator_request", "step": "pick_db",
                "prompt": {"kind": "choice", "message": "which point?", "candidates": cands}}),
        ]
    };
    let alpha = app_events(
        "alpha",
        &[("pick_db", false)],
        &ask(vec![
            cand("snap-old-west", "us-west-2", "2026-12-02T03:30:00Z", true),
            cand("snap-new-west", "us-west-2", "2026-12-02T03:50:00Z", true),
            // newer, but in the primary region (the one that is down)
            cand("snap-east", "us-east-1", "2026-12-02T03:58:00Z", true),
        ]),
    );
    // bravo's only secondary point misses its RPO
    let bravo = app_events(
        "bravo",
        &[("pick_db", false)],
        &ask(vec![cand("snap-stale", "us-west-2", "2026-12-01T20:00:00Z", false)]),
    );
    let mut st = incident_console("SIMULATOR · Two applications choosing · incident inc-2", "inc-2", [alpha, bravo]);
    // L proposes, in a popup: each application, its point, the point's age and RPO verdict; who has none;
    // nothing is sent before y
    assert!(key(&mut st, KeyCode::Char('L')).is_empty());
    let text = screen_text(&st);
    assert!(text.contains("Latest recovery points"), "{text}");
    assert!(text.contains("alpha  snap-new-west (rds-snapshot, us-west-2) age 20m00s RPO met"), "{text}");
    assert!(text.contains("bravo  none: no point in us-west-2 meets its RPO of 1h00m"), "{text}");
    assert!(text.contains("y send to 1 application"), "{text}");
    insta::assert_snapshot!("latest_points_proposal_80x24", text);
    let sent = key(&mut st, KeyCode::Char('y'));
    assert_eq!(
        sent,
        [IncidentEffect::Send(
            0,
            Command::Answer { step: "pick_db".into(), value: "snap-new-west".into(), by: "oncall@host".into() }
        )]
    );
    // n cancels: nothing is sent
    assert!(key(&mut st, KeyCode::Char('L')).is_empty());
    assert!(key(&mut st, KeyCode::Char('n')).is_empty());
    assert!(screen_text(&st).contains("nothing chosen"));
}

/// `plan INCIDENT`: every application's critical path and projected RTO, the shared rate limits' effect and the
/// incident's overall finish (it used to fail with `missing [runbook] section`).
#[test]
fn plan_of_the_shipped_incident_file() {
    let out = Command::cargo_bin("drconsole").unwrap().current_dir(root()).args(["plan", INCIDENT]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for app in APPS {
        assert!(text.contains(app), "{app} missing: {text}");
    }
    assert!(text.contains("overall finish:"), "{text}");
    insta::assert_snapshot!("plan_incident_us_east_1_outage", text);
}

/// Events of one application with each step's expected duration, from a fixed incident start (04:00, RTO 2 h,
/// deadline 06:00); events without a `ts` happen at `at`.
fn timed_events(app: &str, steps: &[(&str, bool, u64)], at: &str, tail: &[Value]) -> Vec<drconsole::run::Event> {
    let t0 = "2026-12-02T04:00:00Z";
    // each step needs the one before it
    let infos: Vec<Value> = steps
        .iter()
        .enumerate()
        .map(|(i, (id, confirm, secs))| {
            let needs: Vec<&str> = if i == 0 { vec![] } else { vec![steps[i - 1].0] };
            serde_json::json!({"id": id, "title": id, "action": "wait", "needs": needs, "expected_secs": secs,
                "confirm": confirm, "on_failure": "pause"})
        })
        .collect();
    let mut evs = vec![serde_json::json!({"seq": 1, "ts": t0, "type": "run_started", "run_id": format!("run-{app}"),
        "runbook": app, "title": app, "app": app, "path": "x", "sha256": "x", "backend": "sim", "account": null,
        "primary": "us-east-1", "secondary": "us-west-2", "incident_start": t0, "rto_secs": 7200, "rpo_secs": 3600,
        "deadline": "2026-12-02T06:00:00Z", "speed": 1.0, "steps": infos})];
    evs.extend(tail.iter().cloned());
    evs.into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["seq"] = (i + 1).into();
            if e.get("ts").is_none() {
                e["ts"] = at.into();
            }
            serde_json::from_value(e).unwrap()
        })
        .collect()
}

/// An incident at 05:30 (1:30:00 since it started, deadline 06:00): cross-sell late (its database restore ran
/// past its estimate, 40 min of DNS left), vendor-assistance at risk (5 min of margin, under 10% of the RTO),
/// agent-payment on track but waiting for a person, customer-assistance paused on a failure, inventory-management
/// recovered in time; RPO verdicts met, MISSED, UNKNOWN (a bound) and none.
fn board_apps() -> Vec<(&'static str, drconsole::run::RunView)> {
    use serde_json::json;
    let started = |s: &str, at: &str| json!({"type": "step_started", "step": s, "attempt": 1, "plan": "", "params": {}, "ts": at});
    let ok = |s: &str, at: &str| json!({"type": "step_succeeded", "step": s, "attempt": 1, "duration_ms": 60000, "outputs": {}, "ts": at});
    let point = |rpo_secs: i64, verdict: &str, bound: bool| {
        json!({"type": "recovery_point_chosen", "step": "db", "id": "snap-1", "kind": "rds-snapshot",
            "region": "us-west-2", "time": "2026-12-02T03:00:00Z", "rpo_secs": rpo_secs,
            "rpo_met": verdict == "met", "verdict": verdict, "bound": bound})
    };
    let at = "2026-12-02T05:29:00Z";
    let apps = vec![
        (
            "cross-sell",
            timed_events(
                "cross-sell",
                &[("db", false, 1200), ("dns", false, 2400)],
                at,
                &[started("db", "2026-12-02T04:10:00Z"), point(1500, "unknown", true)],
            ),
        ),
        (
            "agent-payment",
            timed_events(
                "agent-payment",
                &[("db", false, 1200), ("cutover", true, 600)],
                at,
                &[
                    started("db", "2026-12-02T04:10:00Z"),
                    point(1020, "met", false),
                    ok("db", "2026-12-02T04:30:00Z"),
                    json!({"type": "step_awaiting_approval", "step": "cutover", "plan": ""}),
                ],
            ),
        ),
        (
            "vendor-assistance",
            timed_events(
                "vendor-assistance",
                &[("db", false, 3000), ("dns", false, 900)],
                at,
                &[started("db", "2026-12-02T04:50:00Z"), point(4200, "missed", false)],
            ),
        ),
        (
            "customer-assistance",
            timed_events(
                "customer-assistance",
                &[("restore", false, 1200), ("dns", false, 600)],
                at,
                &[
                    started("restore", "2026-12-02T04:10:00Z"),
                    json!({"type": "step_failed", "step": "restore", "attempt": 1, "error": "AccessDenied",
                        "policy": "pause"}),
                    json!({"type": "run_paused", "reason": "step restore failed"}),
                ],
            ),
        ),
        (
            "inventory-management",
            timed_events(
                "inventory-management",
                &[("db", false, 1200)],
                at,
                &[
                    started("db", "2026-12-02T04:10:00Z"),
                    point(600, "met", false),
                    ok("db", "2026-12-02T04:50:00Z"),
                    json!({"type": "run_finished", "outcome": "recovered", "duration_secs": 3000, "rto_secs": 7200,
                        "rto_achieved_secs": 3000, "rto_met": true, "succeeded": 1, "failed": 0, "skipped": 0,
                        "cancelled": 0, "message": "every step succeeded or was skipped",
                        "ts": "2026-12-02T04:50:00Z"}),
                ],
            ),
        ),
    ];
    apps.into_iter().map(|(a, evs)| (a, drconsole::run::RunView::from_events(&evs))).collect()
}

/// The board rendered at a size with a theme: its buffer.
fn board_buffer(theme: &str, w: u16, h: u16, read_only: bool) -> ratatui::buffer::Buffer {
    let views = board_apps();
    let now: jiff::Timestamp = "2026-12-02T05:30:00Z".parse().unwrap();
    let rows = drconsole::incident::overview::rows(views.iter().map(|(a, v)| (*a, v)), now);
    let theme = drconsole::tui::Theme::load(theme).unwrap();
    let o = drconsole::tui::overview::Overview {
        title: "SIMULATOR · us-east-1 outage · incident inc-1",
        rows: &rows,
        selected: 0,
        now,
        theme: &theme,
        read_only,
    };
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| f.render_widget(&o, f.area())).unwrap();
    term.backend().buffer().clone()
}

fn buffer_text(buf: &ratatui::buffer::Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()
        })
        .collect()
}

/// The cells of the line containing `line` whose text is `word`: their styles.
fn style_of(buf: &ratatui::buffer::Buffer, line: &str, word: &str) -> ratatui::style::Style {
    let text = buffer_text(buf);
    let y = text.iter().position(|l| l.contains(line)).unwrap_or_else(|| panic!("no line with {line:?}:\n{text:?}"));
    let chars: Vec<char> = text[y].chars().collect();
    let w: Vec<char> = word.chars().collect();
    let x = (0..chars.len()).find(|&x| chars[x..].starts_with(&w)).unwrap_or_else(|| panic!("{word:?} in {line:?}"));
    buf[(u16::try_from(x).unwrap(), u16::try_from(y).unwrap())].style()
}

#[test]
fn the_board_names_each_application_s_standing_and_the_incident_s_finish_against_its_deadline() {
    use drconsole::incident::overview::Board;
    use drconsole::run::Schedule;
    let views = board_apps();
    let now: jiff::Timestamp = "2026-12-02T05:30:00Z".parse().unwrap();
    let rows = drconsole::incident::overview::rows(views.iter().map(|(a, v)| (*a, v)), now);
    let row = |a: &str| rows.iter().find(|r| r.app == a).unwrap();
    assert_eq!(row("cross-sell").schedule, Some(Schedule::Late));
    assert_eq!(row("cross-sell").margin(), "-10m");
    assert_eq!(row("cross-sell").rpo_text(false), "UNKNOWN ≥ 25m");
    assert_eq!(row("vendor-assistance").schedule, Some(Schedule::AtRisk));
    assert_eq!(row("vendor-assistance").rpo_text(true), "MISSED 1h10m / 1h");
    assert_eq!(row("agent-payment").schedule, Some(Schedule::OnTrack));
    assert_eq!(row("agent-payment").doing(), "approve cutover");
    assert_eq!(row("inventory-management").schedule_word(), "met");
    assert_eq!(row("customer-assistance").rpo_text(false), "-");
    assert_eq!(row("customer-assistance").doing(), "PAUSED: step restore failed");
    let b = Board::of(&rows, now);
    assert_eq!(b.elapsed_secs, Some(5400));
    // the overall finish is the latest application's: cross-sell's, 40 min of DNS from now, past the deadline
    let (finish, app) = b.finish.clone().unwrap();
    assert_eq!((finish.to_string().as_str(), app.as_str()), ("2026-12-02T06:10:00Z", "cross-sell"));
    assert_eq!(b.deadline.unwrap().to_string(), "2026-12-02T06:00:00Z");
    assert_eq!(b.deadline_app, None, "every application shares the deadline");
    assert_eq!(b.margin_text().as_deref(), Some("-10m"));
    assert_eq!(b.schedule_word(), "LATE");
}

#[test]
fn board_80x24() {
    let buf = board_buffer("dark", 80, 24, false);
    let text = buffer_text(&buf);
    assert!(text.iter().all(|l| l.chars().count() <= 80));
    assert!(text[1].contains("finish 06:10") && text[1].contains("deadline 06:00") && text[1].contains("LATE"));
    // late in colour: the late application's standing and the board's, red under the dark theme
    let late = style_of(&buf, "cross-sell", "LATE");
    assert_eq!(late.bg, Some(ratatui::style::Color::Red), "{late:?}");
    assert_eq!(style_of(&buf, "since incident", " LATE").bg, Some(ratatui::style::Color::Red));
    assert_eq!(style_of(&buf, "vendor-assistance", "AT RISK").fg, Some(ratatui::style::Color::LightYellow));
    assert_eq!(style_of(&buf, "agent-payment", "on track").fg, Some(ratatui::style::Color::LightGreen));
    assert_eq!(style_of(&buf, "vendor-assistance", "MISSED").fg, Some(ratatui::style::Color::LightRed));
    insta::assert_snapshot!("board_80x24", text.join("\n"));
}

#[test]
fn board_160x48() {
    let buf = board_buffer("dark", 160, 48, false);
    let text = buffer_text(&buf);
    let joined = text.join("\n");
    assert!(joined.contains("projected finish 06:10:00 UTC (cross-sell, the latest)"), "{joined}");
    assert!(joined.contains("AT RISK: the projected finish leaves less than 10% of the RTO"), "{joined}");
    assert!(joined.contains("DEADLINE") && joined.contains("RTO LEFT"), "{joined}");
    insta::assert_snapshot!("board_160x48", joined);
}

/// Under `NO_COLOR` (the monochrome theme) the board has no colour at all and still says everything in words;
/// the snapshot marks each cell's emphasis below its line (R reverse, B bold, D dim, U underline).
#[test]
fn board_no_color_80x24() {
    use ratatui::style::Modifier;
    let buf = board_buffer("monochrome", 80, 24, false);
    let mut out = Vec::new();
    for (y, line) in buffer_text(&buf).into_iter().enumerate() {
        let y = u16::try_from(y).unwrap();
        let marks: String = (0..buf.area.width)
            .map(|x| {
                let st = buf[(x, y)].style();
                assert!(
                    matches!(st.fg, None | Some(ratatui::style::Color::Reset))
                        && matches!(st.bg, None | Some(ratatui::style::Color::Reset)),
                    "a colour under NO_COLOR at ({x},{y}): {st:?}"
                );
                let m = st.add_modifier;
                if m.contains(Modifier::REVERSED) {
                    'R'
                } else if m.contains(Modifier::BOLD) {
                    'B'
                } else if m.contains(Modifier::DIM) {
                    'D'
                } else if m.contains(Modifier::UNDERLINED) {
                    'U'
                } else {
                    ' '
                }
            })
            .collect();
        out.push(line);
        out.push(marks.trim_end().to_string());
    }
    let late = style_of(&buf, "cross-sell", "LATE");
    assert!(late.add_modifier.contains(Modifier::REVERSED), "late stands out without colour: {late:?}");
    insta::assert_snapshot!("board_no_color_80x24", out.join("\n"));
}

/// `drconsole watch INCIDENT`: the same board, read-only. A key that acts in the driver's console sends nothing
/// and says so; `q` leaves without interrupting anything.
#[test]
fn the_watcher_s_board_is_read_only() {
    use drconsole::tui::incident::{IncidentEffect, IncidentInput, IncidentState, Shown};
    use ratatui::crossterm::event::KeyCode;
    use serde_json::json;
    let started = |s: &str| json!({"type": "step_started", "step": s, "attempt": 1, "plan": "", "params": {}});
    let ok = |s: &str| json!({"type": "step_succeeded", "step": s, "attempt": 1, "duration_ms": 60000, "outputs": {}});
    let waits = json!({"type": "step_awaiting_approval", "step": "cutover", "plan": "run `echo cut`"});
    let alpha = app_events("alpha", &[("db", false), ("cutover", true)], &[started("db"), ok("db"), waits]);
    let notes = drconsole::tui::StepNotes::new();
    let mut st = IncidentState::watching(
        "SIMULATOR · Two applications waiting · incident inc-1".into(),
        "inc-1".into(),
        vec![("alpha".into(), notes.clone()), ("bravo".into(), notes)],
        "bridge@host",
    );
    st.handle(IncidentInput::Resize(80, 24));
    for ev in alpha {
        st.handle(IncidentInput::Event(0, Box::new(ev)));
    }
    st.handle(IncidentInput::Instant(10_000));
    let text = screen_text(&st);
    assert!(text.contains("WATCH (read-only)") && text.contains("[alpha] approve cutover"), "{text}");
    assert!(!text.contains("L latest points"), "{text}");
    // L proposes nothing
    assert!(key(&mut st, KeyCode::Char('L')).is_empty());
    assert!(screen_text(&st).contains("read-only"), "{}", screen_text(&st));
    // alpha's screen: no popup opens by itself, and y approves nothing
    key(&mut st, KeyCode::Char('a'));
    assert_eq!(st.shown, Shown::App(0));
    st.handle(IncidentInput::Instant(20_000));
    assert!(key(&mut st, KeyCode::Char('y')).is_empty());
    assert!(key(&mut st, KeyCode::Enter).is_empty());
    assert!(key(&mut st, KeyCode::Char('y')).is_empty());
    assert!(screen_text(&st).contains("read-only"), "{}", screen_text(&st));
    // back to the board; q leaves at once, interrupting nothing
    key(&mut st, KeyCode::Char('q'));
    assert_eq!(st.shown, Shown::Overview);
    assert_eq!(key(&mut st, KeyCode::Char('q')), [IncidentEffect::Quit]);
}

/// The incident's opening screen: its applications, one row each, nothing started; `p` starts every
/// application's preflight, Enter waits for their verdicts, `q` leaves.
#[test]
fn the_incident_opening_screen_lists_every_application_and_its_preflight() {
    use drconsole::tui::incident_opening::{IncidentOpeningState, IncidentOpeningView};
    use drconsole::tui::opening::{Check, Opening, OpeningReply};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let registry = drconsole::actions::Registry::builtin();
    let set = drconsole::incident::load_file(&root().join(INCIDENT), &registry).unwrap();
    let openings = set.apps.iter().map(|(app, rb)| Opening { app: app.clone(), ..Opening::from_runbook(rb) }).collect();
    let mut st = IncidentOpeningState::new(set.title.clone(), "sim".into(), openings);
    let theme = drconsole::tui::Theme::load("monochrome").unwrap();
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    term.draw(|f| f.render_widget(IncidentOpeningView { state: &st, theme: &theme }, f.area())).unwrap();
    let text = buffer_text(term.backend().buffer()).join("\n");
    assert!(text.contains("NOT STARTED") && text.contains("5 applications"), "{text}");
    // file paths differ between machines: not in the 80-column screen
    insta::assert_snapshot!("incident_opening_80x24", text);
    let k = |c: KeyCode| KeyEvent::new(c, KeyModifiers::NONE);
    assert_eq!(st.key(&k(KeyCode::Char('p'))), OpeningReply::Preflight);
    assert!(st.apps.iter().all(|(_, c)| matches!(c, Check::Running)));
    // the verdicts first
    assert_eq!(st.key(&k(KeyCode::Enter)), OpeningReply::None);
    assert!(st.flash.as_deref().unwrap_or("").contains("preflights are running"));
    for i in 0..st.apps.len() {
        st.checked(i, Err("no credentials".into()));
    }
    // not ready: Enter asks first; n goes back
    assert_eq!(st.key(&k(KeyCode::Enter)), OpeningReply::None);
    assert!(st.confirm_start);
    assert_eq!(st.key(&k(KeyCode::Char('n'))), OpeningReply::None);
    assert!(!st.confirm_start);
    assert_eq!(st.key(&k(KeyCode::Char('q'))), OpeningReply::Quit);
}

/// An application that forecasts from its history puts its P90 on the board: the overall P90 finish is the latest of
/// the P90 finishes and the other applications' projected finishes, shown after the finish at both sizes (the
/// standing word still fits at 80 columns); without
/// any history the board shows no P90 (the snapshots above).
#[test]
fn the_board_shows_the_overall_p90_finish_when_an_application_forecasts_from_history() {
    use drconsole::incident::overview::Board;
    let views = board_apps();
    let now: jiff::Timestamp = "2026-12-02T05:30:00Z".parse().unwrap();
    let mut rows = drconsole::incident::overview::rows(views.iter().map(|(a, v)| (*a, v)), now);
    assert!(rows.iter().all(|r| r.p90_finish.is_none()), "no history in these runs");
    assert_eq!(Board::of(&rows, now).p90_finish, None);
    // agent-payment learnt from its history: its P90 finish 06:25, past cross-sell's 06:10 finish
    let p90: jiff::Timestamp = "2026-12-02T06:25:00Z".parse().unwrap();
    rows.iter_mut().find(|r| r.app == "agent-payment").unwrap().p90_finish = Some(p90);
    let b = Board::of(&rows, now);
    assert_eq!(b.p90_finish, Some(p90));
    assert_eq!(b.finish.as_ref().unwrap().1, "cross-sell", "the P50 finish is still the latest application's");
    let theme = drconsole::tui::Theme::load("dark").unwrap();
    for (w, h, want) in [
        (80u16, 24u16, "finish 06:10–06:25 · due 06:00"),
        (160, 48, "06:10:00 UTC (cross-sell, the latest) P90 06:25:00"),
    ] {
        let o = drconsole::tui::overview::Overview {
            title: "SIMULATOR · us-east-1 outage · incident inc-1",
            rows: &rows,
            selected: 0,
            now,
            theme: &theme,
            read_only: false,
        };
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        term.draw(|f| f.render_widget(&o, f.area())).unwrap();
        let text = buffer_text(term.backend().buffer());
        let line = text.iter().find(|l| l.contains("since incident")).unwrap();
        eprintln!("{w}x{h}: {line}");
        assert!(line.contains(want) && line.ends_with("LATE"), "{w}x{h}:\n{}", text.join("\n"));
    }
    // without it again, no P90
    rows.iter_mut().for_each(|r| r.p90_finish = None);
    assert_eq!(Board::of(&rows, now).p90_finish, None);
}
