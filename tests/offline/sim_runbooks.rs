#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every runbook in runbooks/ passes `check` and recovers headless on the simulator; the tabletop scenarios end
//! as their documentation says.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn runbooks(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // world files are not runbooks
            if p.file_name().is_some_and(|n| n != "worlds") {
                runbooks(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

fn all_runbooks() -> Vec<PathBuf> {
    let mut v = Vec::new();
    runbooks(Path::new("runbooks"), &mut v);
    v.sort();
    v
}

/// Runs headless on the simulator with NDJSON output; returns the exit code and the events.
fn run_sim(runbook: &Path, extra: &[&str]) -> (i32, Vec<Value>) {
    // each run journals into its own state dir, so parallel tests never share a run lock
    let state = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", state.path())
        .args([
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
        ])
        .args(extra)
        .arg(runbook)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not NDJSON: {e}: {l}", runbook.display())))
        .collect();
    (out.status.code().unwrap_or(-1), events)
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

#[test]
fn every_runbook_passes_check() {
    let files = all_runbooks();
    assert!(files.len() >= 13, "{files:?}");
    Command::cargo_bin("drconsole").unwrap().arg("check").args(&files).assert().success();
}

#[test]
fn every_runbook_recovers_headless_on_the_simulator() {
    for f in all_runbooks() {
        let (code, events) = run_sim(&f, &[]);
        let fin = of_type(&events, "run_finished");
        assert_eq!(code, 0, "{}: {:?}", f.display(), fin);
        assert_eq!(fin[0]["outcome"], "recovered", "{}", f.display());
        assert_eq!(fin[0]["rto_met"], true, "{}", f.display());
    }
}

#[test]
fn tabletop_region_outage_recovers_from_the_secondary_copies() {
    let (code, events) = run_sim(
        Path::new("runbooks/tabletop/region-outage.toml"),
        &["--world", "runbooks/tabletop/worlds/region-outage.toml"],
    );
    assert_eq!(code, 0, "{:?}", of_type(&events, "run_finished"));
    let chosen = of_type(&events, "recovery_point_chosen");
    assert_eq!(chosen[0]["region"], "us-west-2");
    let retries = of_type(&events, "step_retrying");
    assert!(
        retries
            .iter()
            .any(|r| r["step"] == "restore_db"
                && r["error"].as_str().unwrap().contains("InsufficientDBInstanceCapacity"))
    );
    // nothing copied across regions: the copies were already there
    let resources = of_type(&events, "resource");
    let created: Vec<&&Value> = resources.iter().filter(|r| r["phase"] == "creating").collect();
    assert!(!created.iter().any(|r| r["kind"] == "rds-snapshot" || r["kind"] == "ebs-snapshot" || r["kind"] == "ami"));
    assert!(
        of_type(&events, "step_progress").iter().any(|p| p["message"].as_str().unwrap().contains("regional outage"))
    );
    // errors keep their classified kind from the action to the event: the capacity retry says so, and the calls to
    // the primary that got no answer say the region is unreachable (no one re-reads the message for it)
    let capacity = retries.iter().find(|r| r["step"] == "restore_db").unwrap();
    assert_eq!(capacity["cause"]["kind"], "capacity", "{capacity}");
    assert_eq!(capacity["cause"]["code"], "InsufficientDBInstanceCapacity", "{capacity}");
    assert_eq!(capacity["cause"]["unreachable"], false, "{capacity}");
    let unanswered: Vec<&Value> =
        of_type(&events, "step_progress").into_iter().filter(|p| p["cause"]["unreachable"] == true).collect();
    assert!(!unanswered.is_empty(), "no progress says a region did not answer");
    assert!(unanswered.iter().all(|p| p["cause"]["region"] == "us-east-1"), "{unanswered:?}");
}

#[test]
fn tabletop_stale_backups_stops_at_the_rpo_and_completes_when_the_loss_is_accepted() {
    let rb = Path::new("runbooks/tabletop/stale-backups.toml");
    let world = ["--world", "runbooks/tabletop/worlds/stale-backups.toml"];
    let (code, events) = run_sim(rb, &world);
    assert_eq!(code, 1);
    let failed = of_type(&events, "step_failed");
    assert_eq!(failed[0]["step"], "pick_db");
    assert!(failed[0]["error"].as_str().unwrap().contains("does not meet the RPO"));

    let (code, events) = run_sim(rb, &[world[0], world[1], "--var", "require_rpo=false"]);
    assert_eq!(code, 0, "{:?}", of_type(&events, "run_finished"));
    assert_eq!(of_type(&events, "recovery_point_chosen")[0]["rpo_met"], false);
}

#[test]
fn a_bad_world_file_is_a_usage_error_with_its_location() {
    let dir = std::env::temp_dir().join(format!("drconsole-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let w = dir.join("bad.toml");
    std::fs::write(&w, "[world]\nunavailable_region = [\"us-east-1\"]\n").unwrap();
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .args(["--headless", "--world"])
        .arg(&w)
        .arg("runbooks/cross-sell.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:1: unknown field `unavailable_region`"), "{err}");
}
#[test]
fn plan_and_iam_policy_come_from_the_catalogue() {
    let out = Command::cargo_bin("drconsole").unwrap().args(["plan", "runbooks/cross-sell.toml"]).output().unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{plan}");
    assert!(plan.contains("rds:RestoreDBInstanceFromDBSnapshot crosssell-prod-dr"), "{plan}");
    assert!(plan.contains("critical path (*): pick_db → copy_db → restore_db"), "{plan}");
    assert!(plan.contains("meets the RTO of 2h00m"), "{plan}");
    assert!(plan.contains("DESTRUCTIVE"), "{plan}");

    let out =
        Command::cargo_bin("drconsole").unwrap().args(["iam-policy", "runbooks/cross-sell.toml"]).output().unwrap();
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = policy["Statement"].as_array().unwrap();
    // least privilege (tests/offline/iam_policy.rs has the golden files): reads limited to the two regions, every change
    // scoped to ARNs
    let granting = |action: &str| -> Vec<&Value> {
        st.iter().filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action)).collect()
    };
    assert_eq!(granting("rds:CopyDBSnapshot").len(), 1);
    let restore = granting("rds:RestoreDBInstanceFromDBSnapshot");
    assert!(
        restore[0]["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "arn:aws:rds:us-west-2:123456789012:db:crosssell-prod-dr")
    );
    assert!(granting("rds:RestoreDBInstanceToPointInTime").is_empty(), "only what the runbook uses");
    assert_eq!(
        granting("ec2:DescribeVolumes")[0]["Condition"]["StringEquals"]["aws:RequestedRegion"],
        serde_json::json!(["us-east-1", "us-west-2"])
    );
    assert!(granting("route53:ListHostedZonesByName")[0].get("Condition").is_none(), "Route 53 is global");
    assert_eq!(granting("sts:GetCallerIdentity").len(), 1);
}

#[test]
fn a_copy_inside_one_region_is_planned_as_such() {
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .args(["plan", "tests/fixtures/run/copy-within.toml"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{plan}");
    assert!(plan.contains("rds:CopyDBSnapshot crosssell-prod-2026-12-01-21-00 within us-west-2"), "{plan}");
    assert!(plan.contains("ec2:CopySnapshot snap-0123456789abcdef0 from us-east-1 to us-west-2"), "{plan}");
    assert!(!plan.contains("from us-west-2 to us-west-2"), "{plan}");
}

/// Simulated time depends on the simulation only: at --speed 50 and --speed 2000 every step takes exactly its
/// simulated time (with a clock scaled from real time, the real cost of journalling each record is multiplied
/// by the speed and the faster run's steps come out longer).
#[test]
fn simulated_durations_do_not_depend_on_the_speed() {
    let rb = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/waits.toml");
    let durations = |speed: &str| -> Vec<(String, u64)> {
        let state = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("drconsole")
            .unwrap()
            .env("DRCONSOLE_STATE_DIR", state.path())
            .args(["--headless", "--json", "--sim", "--speed", speed, "--seed", "7"])
            .arg(&rb)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "speed {speed}: {}", String::from_utf8_lossy(&out.stderr));
        let events: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut d: Vec<(String, u64)> = of_type(&events, "step_succeeded")
            .iter()
            .map(|e| (e["step"].as_str().unwrap().to_string(), e["duration_ms"].as_u64().unwrap()))
            .collect();
        d.sort();
        d
    };
    let slow = durations("50");
    let fast = durations("2000");
    assert_eq!(slow, fast);
    let want: Vec<(String, u64)> = [("a", 600_000), ("b", 420_000), ("c", 180_000), ("d", 45_000)]
        .iter()
        .map(|(s, ms)| (s.to_string(), *ms))
        .collect();
    assert_eq!(slow, want);
}
