#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The crash test on the simulator: `runbooks/cross-sell.toml` run headless on the sim, SIGKILLed at 20 points
//! (including right after `creating`/`created` resource records, i.e. right after a mutating call), each resumed
//! with `drconsole resume RUN --headless --yes` to success; the saved world (`world.json`) ends with exactly the
//! resources of an uninterrupted run, none twice, and every journal reads valid. Also: a secret placed in the
//! simulator's Secrets Manager appears nowhere under the run directory nor on the terminal, killed or not.

use crate::crash;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crash::{KillPoint, Scenario, final_outcome};
use drconsole::cloud::sim::World;
use drconsole::engine::EventKind;
use drconsole::journal::Record;

fn runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/cross-sell.toml")
}

fn scenario(extra: &[String]) -> Scenario {
    let common: Vec<String> =
        ["--headless", "--yes", "--recovery-point", "latest+ebs=newest"].iter().map(|s| s.to_string()).collect();
    let mut run_args = common.clone();
    run_args.extend(["--sim", "--speed", "2000", "--seed", "1"].iter().map(|s| s.to_string()));
    run_args.extend(extra.iter().cloned());
    Scenario {
        bin: assert_cmd::cargo::cargo_bin("drconsole"),
        runbook: runbook(),
        run_args,
        resume_args: common,
        env: Vec::new(),
        timeout: Duration::from_secs(120),
    }
}

/// What the run built in the secondary region (and Route 53): per collection, a sorted list of names (an entry's
/// `name`/`identifier`/`id` when it is not a random id, else `#`), so a duplicate shows as a second entry.
fn estate(run_dir: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(run_dir.join("world.json")).unwrap();
    let world: World = serde_json::from_str(&text).unwrap();
    let region = serde_json::to_value(&world.regions[&world.secondary]).unwrap();
    let mut out = Vec::new();
    let mut collect = |kind: String, v: &serde_json::Value| {
        let names = |entry: &serde_json::Value, key: &str| -> String {
            let obj = entry.get("value").filter(|x| x.is_object()).unwrap_or(entry);
            for f in ["name", "identifier"] {
                if let Some(s) = obj.get(f).and_then(|x| x.as_str()) {
                    return s.to_string();
                }
            }
            // keys made of a prefix and a random hex id (vol-0a1b..) are not compared, only counted
            if key.rsplit_once('-').is_some_and(|(_, t)| t.len() >= 8 && t.chars().all(|c| c.is_ascii_hexdigit())) {
                "#".into()
            } else {
                key.to_string()
            }
        };
        let mut list: Vec<String> = match v {
            serde_json::Value::Object(m) => m.iter().map(|(k, e)| names(e, k)).collect(),
            serde_json::Value::Array(a) => a.iter().map(|e| names(e, "")).collect(),
            _ => return,
        };
        // provisioned (pre-existing) backups are named after the wall-clock time the world was made: not compared
        for n in &mut list {
            if let Some(i) = n.find("-xr-") {
                n.replace_range(i + 4.., "<time>");
            }
        }
        list.sort();
        out.push((kind, list));
    };
    for (kind, v) in region.as_object().unwrap() {
        if kind.ends_with("_tokens") {
            // client tokens carry the run id: count them only
            let n = v.as_object().map_or(0, |m| m.len());
            collect(kind.clone(), &serde_json::json!(vec![serde_json::json!({"name": "#"}); n]));
            continue;
        }
        collect(kind.clone(), v);
    }
    let records: Vec<String> = world
        .records
        .values()
        .flatten()
        .map(|r| serde_json::to_value(r).unwrap()["name"].as_str().unwrap_or("?").to_string())
        .collect();
    collect(
        "route53_records".into(),
        &serde_json::json!(records.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>()),
    );
    out
}

#[test]
fn sim_run_killed_at_twenty_points_resumes_to_the_world_of_an_uninterrupted_run() {
    let base = tempfile::tempdir().unwrap();
    let reference = scenario(&[]).run_uninterrupted(&base.path().join("ref"));
    assert_eq!(reference.exit_code, 0, "reference run: {}\n{}", reference.stdout, reference.stderr);
    let want = estate(&reference.run_dir);
    let created: usize = want.iter().map(|(_, l)| l.len()).sum();
    assert!(created > 5, "the reference run built almost nothing: {want:?}");
    let total = reference.journal.last_record_seq();

    // right after every `creating`/`created` resource record first (the window after a mutating call), then spread
    let mut mutating: Vec<u64> = Vec::new();
    for (seq, r) in &reference.journal.records {
        if let Record::Event(e) = r
            && let EventKind::Resource { phase, .. } = &e.kind
            && matches!(phase.as_str(), "creating" | "created")
            && *seq < total
        {
            mutating.push(*seq);
        }
    }
    assert!(!mutating.is_empty(), "no mutating call in the reference journal");
    let mut points: Vec<u64> = mutating.iter().copied().step_by(mutating.len().div_ceil(10).max(1)).take(10).collect();
    let mut k = 1;
    while points.len() < 20 {
        let n = 1 + (total - 2) * k / 21;
        if !points.contains(&n) {
            points.push(n);
        }
        k += 1;
        assert!(k < 200, "could not find 20 kill points in {total} records");
    }
    points.sort_unstable();
    assert!(points.iter().any(|p| mutating.contains(p)));

    let queue = Arc::new(Mutex::new(points.into_iter().enumerate().collect::<Vec<_>>()));
    let base_path = base.path().to_path_buf();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            let base = base_path.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                loop {
                    let Some((i, n)) = queue.lock().unwrap().pop() else { break };
                    let point = KillPoint::AfterRecord(n);
                    let t = scenario(&[]).crash_and_resume(&base.join(format!("s{i}")), &point);
                    let ctx = format!("kill after record {n} (run {}):\n{}\n{}", t.run_id, t.stdout, t.stderr);
                    assert!(t.killed, "the run ended before {ctx}");
                    assert_eq!(t.exit_code, 0, "resume did not recover: {ctx}");
                    assert_eq!(final_outcome(&t.journal).as_deref(), Some("recovered"), "{ctx}");
                    let got = estate(&t.run_dir);
                    let diff: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
                    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
                    assert!(diff.is_empty() && missing.is_empty(), "got {diff:?}, want {missing:?}: {ctx}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// The window the record-numbered kills cannot reach: a create call returned (the cloud has the resource) and the
/// process died before its `created` record. The resumed run must find the resource, not make a second one.
#[test]
fn killed_between_a_create_call_and_its_record_the_resume_finds_the_resource_instead_of_making_another() {
    let base = tempfile::tempdir().unwrap();
    let reference = scenario(&[]).run_uninterrupted(&base.path().join("ref"));
    assert_eq!(reference.exit_code, 0, "reference run: {}\n{}", reference.stdout, reference.stderr);
    let want = estate(&reference.run_dir);
    // every kind of resource the reference run created
    let mut kinds: Vec<String> = Vec::new();
    for (_, r) in &reference.journal.records {
        if let Record::Event(e) = r
            && let EventKind::Resource { phase, kind, .. } = &e.kind
            && phase == "created"
            && !kinds.contains(kind)
        {
            kinds.push(kind.clone());
        }
    }
    for k in ["elastic-ip", "nat-gateway", "load-balancer", "rds-instance", "auto-scaling-group"] {
        assert!(kinds.iter().any(|x| x == k), "the reference run created no {k}: {kinds:?}");
    }
    let queue = Arc::new(Mutex::new(kinds.into_iter().enumerate().collect::<Vec<_>>()));
    let base_path = base.path().to_path_buf();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (queue, base, want) = (queue.clone(), base_path.clone(), want.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((i, kind)) = queue.lock().unwrap().pop() else { break };
                    let point = KillPoint::BeforeCreated(kind.clone());
                    let t = scenario(&[]).crash_and_resume(&base.join(format!("w{i}")), &point);
                    let ctx =
                        format!("killed before `created` of a {kind} (run {}):\n{}\n{}", t.run_id, t.stdout, t.stderr);
                    assert!(t.killed, "the run ended before {ctx}");
                    assert_eq!(t.exit_code, 0, "resume did not recover: {ctx}");
                    let got = estate(&t.run_dir);
                    let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
                    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
                    assert!(extra.is_empty() && missing.is_empty(), "got {extra:?}, want {missing:?}: {ctx}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

const CANARY: &str = "Canary-Pw-7f3a91c2e8d4";

fn world_with_secret(dir: &Path) -> PathBuf {
    let p = dir.join("world.toml");
    std::fs::write(
        &p,
        format!("[[resource]]\nkind = \"secret\"\nid = \"prod/cross-sell/db-master\"\nvalue = \"{CANARY}\"\n"),
    )
    .unwrap();
    p
}

fn assert_nowhere(run_dir: &Path, also: &[&str]) {
    for e in walk(run_dir) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(CANARY), "the secret is in {}", e.display());
    }
    for s in also {
        assert!(!s.contains(CANARY), "the secret is on the terminal: {s}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_sim_secret_appears_nowhere_under_the_run_directory_even_when_killed_before_it_is_read() {
    let base = tempfile::tempdir().unwrap();
    let world = world_with_secret(base.path());
    let extra = vec!["--world".to_string(), world.display().to_string()];

    let t = scenario(&extra).run_uninterrupted(&base.path().join("whole"));
    assert_eq!(t.exit_code, 0, "{}\n{}", t.stdout, t.stderr);
    // the restore read the secret (it was used as the master password)
    assert!(
        t.journal.events().any(|e| matches!(&e.kind, EventKind::StepSucceeded { step, .. } if step == "restore_db")),
        "restore_db did not succeed"
    );
    assert_nowhere(&t.run_dir, &[&t.stdout, &t.stderr]);
    assert!(t.run_dir.join("world.json").is_file());

    // killed right after the first mutating call (copy_db), before restore_db read the secret: the saved world
    // must not hold it (nothing has registered it for redaction yet); the resumed run gets it back from the world
    // file and recovers
    let at = t
        .journal
        .records
        .iter()
        .find_map(|(seq, r)| match r {
            Record::Event(e) if matches!(&e.kind, EventKind::Resource { step, phase, .. } if step == "copy_db" && phase == "creating") => Some(*seq),
            _ => None,
        })
        .expect("copy_db created nothing");
    let state = base.path().join("killed");
    let sc = scenario(&extra);
    let out = std::process::Command::new(&sc.bin)
        .env("DRCONSOLE_STATE_DIR", &state)
        .env(drconsole::journal::KILL_AFTER_ENV, at.to_string())
        .args(&sc.run_args)
        .arg(&sc.runbook)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(9), "not killed: {out:?}");
    let run_dir = crash::only_run(&state);
    let at_kill = drconsole::journal::read_journal(&run_dir).unwrap();
    assert!(
        !at_kill.events().any(|e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == "restore_db")),
        "restore_db had started before the kill"
    );
    assert!(run_dir.join("world.json").is_file(), "no world saved before the kill");
    assert_nowhere(&run_dir, &[&String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr)]);
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = std::process::Command::new(&sc.bin)
        .env("DRCONSOLE_STATE_DIR", &state)
        .arg("resume")
        .arg(&run_id)
        .args(&sc.resume_args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "resume failed:\n{so}\n{se}");
    assert_nowhere(&run_dir, &[&so, &se]);
}

/// A run killed after 8 of its 14 steps succeeded, then opened again in the console (`drconsole resume RUN`
/// replays the journal before the live stream): the screen shows those 8 steps succeeded, with their durations,
/// and the recovery point chosen — not "Steps 0/14" and every step pending.
#[test]
fn a_run_killed_after_8_of_14_steps_resumes_in_the_console_showing_what_was_done() {
    use drconsole::tui::state::State;
    use drconsole::tui::{Theme, fixtures};
    let base = tempfile::tempdir().unwrap();
    let reference = scenario(&[]).run_uninterrupted(&base.path().join("ref"));
    assert_eq!(reference.exit_code, 0, "reference run: {}\n{}", reference.stdout, reference.stderr);
    let succeeded: Vec<u64> = reference
        .journal
        .records
        .iter()
        .filter_map(|(seq, r)| match r {
            Record::Event(e) if matches!(e.kind, EventKind::StepSucceeded { .. }) => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(succeeded.len(), 14, "cross-sell has 14 steps");
    // midway between the 8th and the 9th success: parallel steps interleave their records a little differently
    // from run to run (the recovery point step's searches overlap the network steps), so the 8th success's own
    // record number is not exact
    let kill = (succeeded[7] + succeeded[8]) / 2;
    let t = scenario(&[]).crash_and_resume(&base.path().join("kill"), &KillPoint::AfterRecord(kill));
    assert!(t.killed && t.exit_code == 0, "{}\n{}", t.stdout, t.stderr);
    // what the console replays when it opens the resumed run: the journal as the killed session left it
    let history: Vec<_> = t
        .journal
        .records
        .iter()
        .take_while(|(seq, _)| *seq <= t.records_at_kill)
        .filter_map(|(_, r)| match r {
            Record::Event(e) => Some(e.clone()),
            Record::Note(_) => None,
        })
        .collect();
    let mut s = State::new(Default::default(), "oncall@bridge".into(), true);
    s.replay(&history);
    let text = fixtures::text(&fixtures::render(&s, &Theme::preset("dark").unwrap(), 160, 48));
    assert!(text.contains("Steps 8/14"), "{text}");
    // the steps pane (the left column below the header) and the RPO line
    let steps: Vec<String> = text.lines().skip(4).take(16).map(|l| l.chars().take(64).collect::<String>()).collect();
    let done = steps.iter().filter(|l| l.starts_with("│✓")).count();
    assert_eq!(done, 8, "{text}");
    assert!(!text.contains("no recovery point chosen yet"), "{text}");
    let rpo = text.lines().nth(3).unwrap();
    assert!(rpo.contains("point") && rpo.contains("old"), "the chosen point's age: {rpo}");
    let mut settings = insta::Settings::clone_current();
    // a step's duration (and a step still running at the kill: its elapsed time, which varies with the machine's
    // load, seconds or minutes), aligned differently by its width
    settings.add_filter(r" +(\d+m\d\ds|\d{1,2}s)│", " [t]│");
    settings.add_filter(r"\b\d+m\d\ds\b", "[duration]");
    settings.add_filter(r"\b\d+h\d\dm\b", "[age]");
    // the simulator names its snapshots by the hour they were taken (rds:crosssell-prod-2026-12-07-13-18)
    settings.add_filter(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}", "[stamp]");
    settings.bind(|| insta::assert_snapshot!("resumed_after_8_of_14_steps", format!("{rpo}\n{}", steps.join("\n"))));
}
