//! The forecast that learns (docs/forecast.md), as a binary: six simulated runs of Cross-sell with different seeds
//! make a history; `plan` then prints P50 and P90 "from 6 past runs", `history` lists the runs, a seventh run's
//! NDJSON projections carry the band and the console header shows it; a step past its P90 is marked;
//! `--no-history` leaves a run out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use drconsole::run::{Event, EventKind};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn drconsole(state: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::cargo_bin("drconsole").unwrap();
    cmd.current_dir(root()).args(args).arg("--state-dir").arg(state).timeout(Duration::from_secs(180));
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn cross_sell(state: &Path, seed: u64, extra: &[&str]) -> Out {
    let seed = seed.to_string();
    let mut args = vec![
        "--headless",
        "--sim",
        "--speed",
        "100000",
        "--seed",
        &seed,
        "--yes",
        "--recovery-point",
        "latest+ebs=newest",
    ];
    args.extend_from_slice(extra);
    args.push("runbooks/cross-sell.toml");
    let out = drconsole(state, &args);
    assert_eq!(out.code, Some(0), "seed {seed}\n--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr);
    out
}

fn history_runs(state: &Path) -> usize {
    let out = drconsole(state, &["history", "runbooks/cross-sell.toml", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["runs"].as_array().unwrap().len()
}

#[test]
fn six_runs_teach_plan_the_console_and_the_projection_a_p50_p90_band() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();

    // before any run: expected durations, and said so
    let plan = drconsole(state, &["plan", "runbooks/cross-sell.toml"]);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    assert!(plan.stdout.contains("no history: from expected durations"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("P90"), "{}", plan.stdout);

    // --no-history leaves a run out
    cross_sell(state, 100, &["--no-history"]);
    assert_eq!(history_runs(state), 0);

    for seed in 1..=6 {
        cross_sell(state, seed, &[]);
    }
    assert_eq!(history_runs(state), 6);

    let plan = drconsole(state, &["plan", "runbooks/cross-sell.toml"]);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let line = plan.stdout.lines().find(|l| l.starts_with("projected duration:")).unwrap();
    assert!(line.contains("P50 ") && line.contains(" · P90 "), "{line}");
    assert!(line.contains("from 6 past runs"), "{line}");
    assert!(plan.stdout.contains("[rds.restore_snapshot]  P50 "), "{}", plan.stdout);

    let history = drconsole(state, &["history", "runbooks/cross-sell.toml"]);
    assert!(history.stdout.contains("forecast on simulator: from 6 past runs"), "{}", history.stdout);
    let json: Value =
        serde_json::from_str(&drconsole(state, &["history", "runbooks/cross-sell.toml", "--json"]).stdout).unwrap();
    let sim = json["forecasts"].as_array().unwrap().iter().find(|f| f["backend"] == "sim").unwrap();
    assert_eq!(sim["runs"], 6);
    let restore = sim["steps"].as_array().unwrap().iter().find(|s| s["id"] == "restore_db").unwrap();
    assert_eq!(restore["samples"], 6);
    assert!(restore["p90_secs"].as_u64().unwrap() >= restore["p50_secs"].as_u64().unwrap());
    assert_ne!(restore["p50_secs"], restore["expected_secs"], "the P50 is learnt, not the expected duration");

    // the opening screen says the forecast before the run starts
    {
        use drconsole::tui::opening::{Opening, OpeningState, OpeningView};
        let registry = drconsole::actions::Registry::builtin();
        let mut rb = drconsole::runbook::load(&root().join("runbooks/cross-sell.toml"), &registry).unwrap();
        rb.target.backend = drconsole::runbook::Backend::Sim;
        let f = drconsole::forecast::store::forecast(state, &rb, &registry, "sim");
        let s = OpeningState::new(Opening::from_runbook(&rb).with_forecast(&rb, &registry, &f));
        let theme = drconsole::tui::Theme::preset("dark").unwrap();
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        term.draw(|fr| fr.render_widget(OpeningView { state: &s, theme: &theme }, fr.area())).unwrap();
        let text = drconsole::tui::fixtures::text(term.backend().buffer());
        let l3 = text.lines().nth(2).unwrap();
        assert!(l3.contains("forecast P50 ") && l3.contains(" · P90 ") && l3.contains("from 6 past runs"), "{text}");
    }

    // a seventh run: its projections carry the band, from 6 past runs
    let seventh = cross_sell(state, 7, &["--json"]);
    let events: Vec<Event> = seventh.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let projections: Vec<&Event> = events.iter().filter(|e| matches!(e.kind, EventKind::Projection { .. })).collect();
    assert!(!projections.is_empty());
    for p in &projections {
        let EventKind::Projection { projected_finish, p50_finish, p90_finish, history_runs, .. } = &p.kind else {
            unreachable!()
        };
        assert_eq!(*history_runs, Some(6));
        assert_eq!(*p50_finish, Some(*projected_finish));
        assert!(p90_finish.unwrap() >= *projected_finish);
    }
    let first = projections[0];
    let EventKind::Projection { p50_finish, p90_finish, .. } = &first.kind else { unreachable!() };
    assert!(p90_finish.unwrap() > p50_finish.unwrap(), "a band, not a point, at the start");

    // the console header during the seventh run: both, at 80 columns, and the basis at 160
    let mid = events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == "restore_db"))
        .unwrap();
    let upto = drconsole::tui::fixtures::Events { events: events[..=mid].to_vec() };
    let theme = drconsole::tui::Theme::preset("dark").unwrap();
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let s = drconsole::tui::fixtures::state(&upto, true, (w, h));
        let text = drconsole::tui::fixtures::text(&drconsole::tui::fixtures::render(&s, &theme, w, h));
        let header = text.lines().nth(2).unwrap();
        assert!(header.contains("finish P50 ") && header.contains(" · P90 ") && header.contains("deadline"), "{text}");
        assert!(header.chars().count() <= usize::from(w), "{header}");
        if w >= 120 {
            assert!(header.contains("(from 6 past runs)"), "{header}");
        }
        // the timeline draws a band between each unfinished step's P50 and P90 end, and both finishes
        let mut s = s;
        s.handle(drconsole::tui::state::Input::Key(ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('t'),
            ratatui::crossterm::event::KeyModifiers::NONE,
        )));
        let text = drconsole::tui::fixtures::text(&drconsole::tui::fixtures::render(&s, &theme, w, h));
        assert!(text.contains('┄'), "{text}");
        let legend = text.lines().rev().find(|l| l.contains("deadline")).unwrap();
        assert!(legend.contains("finish P50 ") && legend.contains(" · P90 "), "{text}");
    }
    // the closing summary of a text run says the forecast at the start against the finish
    let eighth = cross_sell(state, 8, &[]);
    let forecast = eighth.stdout.lines().find(|l| l.starts_with("forecast:")).unwrap();
    assert!(forecast.contains("(from 7 past runs)") && forecast.contains("finished"), "{forecast}");
}

/// Writes the history of `runbook` on the simulator: one past run per duration, in which its `wait` step `step` took
/// that many seconds.
fn past_waits(state: &Path, runbook: &str, step: &str, secs: &[u64]) {
    let dir = state.join("history");
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = String::new();
    for (i, secs) in secs.iter().enumerate() {
        let rec = serde_json::json!({
            "run_id": format!("past-{i}"), "runbook": runbook, "backend": "sim", "outcome": "recovered",
            "started": "2026-11-21T03:00:00Z", "finished": "2026-11-21T03:02:00Z", "rto_achieved_secs": secs + 1,
            "steps": [
                {"id": step, "action": "wait", "outcome": "succeeded", "secs": secs, "machine_secs": secs,
                 "wait_secs": 0, "attempts": 1},
            ],
        });
        lines.push_str(&format!("{rec}\n"));
    }
    std::fs::write(dir.join(format!("{runbook}.jsonl")), lines).unwrap();
}

/// A step that runs past its P90 is marked: a `step_overdue` event with what is typical for it, a headless line,
/// and the console's step list; a step without history is not.
#[test]
fn a_step_past_its_p90_is_marked_overdue() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    // three past runs where `long` (a 10-minute wait today) took 50, 60 and 70 seconds: P50 60 s, P90 70 s
    past_waits(state, "long-wait", "long", &[50, 60, 70]);
    let fixture = root().join("tests/fixtures/run/long_wait.toml");
    let f = fixture.to_str().unwrap();

    // left out of the history, so the second run below has the same P90
    let out = drconsole(state, &["--headless", "--json", "--speed", "2000", "--no-history", f]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events: Vec<Event> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let overdue: Vec<&Event> = events.iter().filter(|e| matches!(e.kind, EventKind::StepOverdue { .. })).collect();
    assert_eq!(overdue.len(), 1, "once, for `long` only (`after` has no history)");
    let EventKind::StepOverdue { step, running_secs, p50_secs, p90_secs, samples } = &overdue[0].kind else {
        unreachable!()
    };
    assert_eq!((step.as_str(), *p50_secs, *p90_secs, *samples), ("long", 60, 70, 3));
    assert!(*running_secs > 70 && *running_secs < 600, "{running_secs}");

    // the console marks it while it runs
    let at = events.iter().position(|e| matches!(e.kind, EventKind::StepOverdue { .. })).unwrap();
    let upto = drconsole::tui::fixtures::Events { events: events[..=at].to_vec() };
    let s = drconsole::tui::fixtures::state(&upto, true, (80, 24));
    let theme = drconsole::tui::Theme::preset("dark").unwrap();
    let text = drconsole::tui::fixtures::text(&drconsole::tui::fixtures::render(&s, &theme, 80, 24));
    assert!(text.lines().any(|l| l.contains("long") && l.contains("P90!")), "{text}");

    // the text line says what is typical
    let out = drconsole(state, &["--headless", "--speed", "2000", f]);
    let line = out.stdout.lines().find(|l| l.contains("OVERDUE")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(line.contains("long") && line.contains("past its P90 of 1m10s") && line.contains("typically"), "{line}");
}

/// A run's end adds it to its runbook's history once; the `no-history` marker `resume --no-history` writes leaves
/// it out (as `--no-history` on the run itself does, tested above).
#[test]
fn a_finished_run_is_recorded_unless_left_out() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let fixture = root().join("tests/fixtures/run/ok.toml");
    let out = drconsole(state, &["--headless", "--speed", "1000", fixture.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let loaded = drconsole::forecast::store::load(state, "ok").unwrap();
    assert_eq!(loaded.runs.len(), 1);
    let rec = &loaded.runs[0];
    assert_eq!((rec.backend.as_str(), rec.outcome.as_str(), rec.steps.len()), ("sim", "recovered", 4));
    assert!(rec.steps.iter().all(|s| s.outcome == "succeeded" && s.attempts == 1 && s.wait_secs == 0));
    let dir = state.join("runs").join(&rec.run_id);
    // recorded again (a resumed run finishing again): still one run in the history
    assert!(drconsole::forecast::store::record_run(&dir).unwrap().is_some());
    assert_eq!(drconsole::forecast::store::load(state, "ok").unwrap().runs.len(), 1);
    drconsole::forecast::store::leave_out(&dir).unwrap();
    assert!(drconsole::forecast::store::record_run(&dir).unwrap().is_none(), "left out");
}

/// The console header says which critical path applies: the `*` steps are the P50 path; when another chain is the
/// longest on P90, a wide header names it. Here `fast` usually takes 10 s but took 100 s once in three (P50 10 s,
/// P90 100 s) beside `steady` (no history: 50 s either way): `steady` is the P50 path, `fast` the P90 one.
#[test]
fn the_header_names_the_p90_critical_path_when_it_differs() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    past_waits(state, "two-chains", "fast", &[10, 10, 100]);
    let rb = state.join("two-chains.toml");
    std::fs::write(
        &rb,
        "[runbook]\nname = \"two-chains\"\ntitle = \"Two chains\"\napp = \"test\"\nrto = \"1h\"\nrpo = \"1h\"\n\n\
         [target]\nbackend = \"sim\"\nprimary = \"us-east-1\"\nsecondary = \"us-west-2\"\n\n\
         [[step]]\nid = \"fast\"\ntitle = \"Fast\"\naction = \"wait\"\nwith = { duration = \"20s\" }\n\n\
         [[step]]\nid = \"steady\"\ntitle = \"Steady\"\naction = \"wait\"\nexpected = \"50s\"\n\
         with = { duration = \"20s\" }\n",
    )
    .unwrap();
    let out = drconsole(state, &["--headless", "--json", "--speed", "2000", "--no-history", rb.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let events: Vec<Event> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // the engine's projection says so too
    let p = events.iter().find_map(|e| match &e.kind {
        EventKind::Projection { critical_path, p90_critical_path, .. } => Some((critical_path, p90_critical_path)),
        _ => None,
    });
    assert_eq!(p, Some((&vec!["steady".to_string()], &vec!["fast".to_string()])), "{}", out.stdout);
    let header = |w: u16, h: u16| {
        let at = events.iter().position(|e| matches!(e.kind, EventKind::Projection { .. })).unwrap();
        let upto = drconsole::tui::fixtures::Events { events: events[..=at].to_vec() };
        let s = drconsole::tui::fixtures::state(&upto, true, (w, h));
        let theme = drconsole::tui::Theme::preset("dark").unwrap();
        let text = drconsole::tui::fixtures::text(&drconsole::tui::fixtures::render(&s, &theme, w, h));
        text.lines().find(|l| l.contains("P90 ")).unwrap_or_else(|| panic!("{text}")).to_string()
    };
    let wide = header(160, 48);
    assert!(wide.contains("P90 path: fast"), "{wide}");
    let narrow = header(80, 24);
    assert!(!narrow.contains("P90 path"), "80 columns keep the band only: {narrow}");
}
