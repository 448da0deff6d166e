#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The crash test: a headless run killed with SIGKILL at 20 different points, each resumed to success with
//! `drconsole resume RUN --headless --yes`; the final estate equals an uninterrupted run's, steps that had
//! succeeded are never run again, approvals stand, and every journal reads valid.

use crate::crash;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crash::{KillPoint, Scenario, final_outcome};
use drconsole::engine::EventKind;
use drconsole::journal::Record;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal").join(name)
}

fn scenario(work: &Path) -> Scenario {
    let ensure = fixture("ensure.sh").display().to_string();
    Scenario {
        bin: assert_cmd::cargo::cargo_bin("drconsole"),
        runbook: fixture("crash.toml"),
        run_args: ["--headless", "--yes", "--speed", "10", "--var"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("work={}", work.display()), "--var".into(), format!("ensure={ensure}")])
            .collect(),
        resume_args: vec!["--headless".into(), "--yes".into()],
        env: Vec::new(),
        timeout: Duration::from_secs(120),
    }
}

/// The estate a run built: each resource kind, and the kind of the resource its content names.
fn estate(work: &Path) -> BTreeMap<String, String> {
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut names = Vec::new();
    for e in std::fs::read_dir(work).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        // dot files are half-created temporaries of a killed `ensure`, never seen as resources
        if name.starts_with('.') || name == "exec.log" {
            continue;
        }
        names.push(name.clone());
        let kind = name.split('-').next().unwrap().to_string();
        let content = std::fs::read_to_string(work.join(&name)).unwrap();
        let points_to = content.split('-').next().unwrap_or("").to_string();
        assert!(
            kinds.insert(kind.clone(), points_to).is_none(),
            "two `{kind}` resources in {}: {names:?}",
            work.display()
        );
    }
    kinds
}

fn step_kind(step: &str) -> Option<&'static str> {
    match step {
        "network" => Some("net"),
        "db" => Some("db"),
        "cache" => Some("cache"),
        "app" => Some("app"),
        "cutover" => Some("dns"),
        _ => None,
    }
}

#[test]
fn killed_at_twenty_points_every_run_resumes_to_the_estate_of_an_uninterrupted_run() {
    let base = tempfile::tempdir().unwrap();

    // the reference: an uninterrupted run
    let work0 = base.path().join("ref-work");
    let reference = scenario(&work0).run_uninterrupted(&base.path().join("ref-state"));
    assert_eq!(reference.exit_code, 0, "reference run: {}\n{}", reference.stdout, reference.stderr);
    let want = estate(&work0);
    let expected: BTreeMap<String, String> = [("app", "db"), ("cache", ""), ("db", ""), ("dns", "app"), ("net", "")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(want, expected);
    let total = reference.journal.last_record_seq();

    // kill points: right after every step outcome and every step start (including right after each mutating step
    // succeeded), after the approval, then spread over the rest; plus two kills from outside in the window where a
    // resource exists but the journal does not know it yet
    let mut records: Vec<u64> = Vec::new();
    for (seq, r) in &reference.journal.records {
        if let Record::Event(e) = r
            && matches!(
                e.kind,
                EventKind::StepSucceeded { .. } | EventKind::StepStarted { .. } | EventKind::StepApproved { .. }
            )
            && *seq < total
        {
            records.push(*seq);
        }
    }
    let mut n = 1;
    while records.len() < 18 && n < total {
        if !records.contains(&n) {
            records.push(n);
        }
        n += 3;
    }
    records.sort_unstable();
    records.truncate(18);
    let mut points: Vec<(usize, KillPoint)> = records.into_iter().map(KillPoint::AfterRecord).enumerate().collect();
    for prefix in ["db-", "app-"] {
        let i = points.len();
        points.push((
            i,
            KillPoint::WhenEntryAppears { dir: base.path().join(format!("work-{i}")), prefix: prefix.into() },
        ));
    }
    assert_eq!(points.len(), 20);

    // four at a time: the runs mostly wait on their shell steps
    let queue = Arc::new(Mutex::new(points));
    let base_path = base.path().to_path_buf();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            let base = base_path.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                loop {
                    let Some((i, point)) = queue.lock().unwrap().pop() else { break };
                    let work = base.join(format!("work-{i}"));
                    let state = base.join(format!("state-{i}"));
                    let t = scenario(&work).crash_and_resume(&state, &point);
                    let ctx = format!("kill point {point:?} (run {}):\n{}\n{}", t.run_id, t.stdout, t.stderr);
                    assert!(t.killed, "the run ended before {ctx}");
                    assert_eq!(t.exit_code, 0, "resume did not recover: {ctx}");
                    assert_eq!(final_outcome(&t.journal).as_deref(), Some("recovered"), "{ctx}");
                    assert_eq!(estate(&work), want, "{ctx}");

                    // a step that had succeeded is never started again, nor its command run again
                    let log = std::fs::read_to_string(work.join("exec.log")).unwrap_or_default();
                    for step in &t.succeeded_before_kill {
                        let restarted = t.journal.records.iter().any(|(seq, r)| {
                            *seq > t.records_at_kill
                                && matches!(r, Record::Event(e) if matches!(&e.kind, EventKind::StepStarted { step: s, .. } if s == step))
                        });
                        assert!(!restarted, "step `{step}` succeeded before the kill and was started again: {ctx}");
                        if let Some(kind) = step_kind(step) {
                            assert_eq!(log.lines().filter(|l| *l == kind).count(), 1, "`{step}` ran twice: {ctx}");
                        }
                    }
                    // an approval given before the kill stands: not asked again
                    let approved_before = t.journal.records.iter().any(|(seq, r)| {
                        *seq <= t.records_at_kill && matches!(r, Record::Event(e) if matches!(e.kind, EventKind::StepApproved { .. }))
                    });
                    if approved_before {
                        let asked_again = t.journal.records.iter().any(|(seq, r)| {
                            *seq > t.records_at_kill
                                && matches!(r, Record::Event(e) if matches!(e.kind, EventKind::StepAwaitingApproval { .. }))
                        });
                        assert!(!asked_again, "the approval was asked for again: {ctx}");
                    }
                    // the run id and incident start are kept across the resume
                    let starts: Vec<_> = t
                        .journal
                        .events()
                        .filter_map(|e| match &e.kind {
                            EventKind::RunStarted { run_id, incident_start, .. } => Some((run_id.clone(), *incident_start)),
                            _ => None,
                        })
                        .collect();
                    assert!(starts.windows(2).all(|w| w[0] == w[1]), "run id or incident start changed: {starts:?}");
                    // the reports of the resumed run exist
                    for f in ["report.md", "report.json", "junit.xml"] {
                        assert!(t.run_dir.join(f).is_file(), "{f} missing: {ctx}");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}
