#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The DR actions on the simulator, driven by the engine on tokio's paused clock (simulated time, deterministic):
//! happy paths, idempotency (a second run creates nothing), faults, the states the waits observe.

use std::path::Path;
use std::sync::Arc;

use drconsole::actions::Registry;
use drconsole::cloud::sim::{Fault, Sim, WorldFile};
use drconsole::cloud::{Cloud, Rds};
use drconsole::engine::{Clock, Command, Engine, Event, EventKind, Outcome, Prompt, RunConfig};
use drconsole::runbook::{self, Runbook};

fn start() -> jiff::Timestamp {
    "2026-11-21T12:00:00Z".parse().unwrap()
}

fn load(path: &str) -> Runbook {
    runbook::load(Path::new(path), &Registry::builtin()).unwrap_or_else(|d| panic!("{d}"))
}

fn load_text(text: &str) -> Runbook {
    runbook::load_str(Path::new("test.toml"), text, &Registry::builtin()).unwrap_or_else(|d| panic!("{d}"))
}

fn world(rb: &Runbook) -> Arc<Sim> {
    Arc::new(Sim::for_runbook(Clock::starting_at(start(), 1.0), 7, rb, None))
}

struct Run {
    outcome: Outcome,
    events: Vec<Event>,
}

impl Run {
    fn kinds(&self) -> impl Iterator<Item = &EventKind> {
        self.events.iter().map(|e| &e.kind)
    }
    fn resources(&self, phase: &str) -> Vec<(String, String, String)> {
        self.kinds()
            .filter_map(|k| match k {
                EventKind::Resource { phase: p, kind, id, state, .. } if p == phase => {
                    Some((kind.clone(), id.clone(), state.clone()))
                }
                _ => None,
            })
            .collect()
    }
    /// The states a wait observed for one kind of resource, in order, without repeats.
    fn states(&self, kind: &str) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (k, _, s) in self.resources("state") {
            if k == kind && !v.contains(&s) {
                v.push(s);
            }
        }
        v
    }
    fn failed(&self, step: &str) -> Option<String> {
        self.kinds().find_map(|k| match k {
            EventKind::StepFailed { step: s, error, .. } if s == step => Some(error.clone()),
            _ => None,
        })
    }
    fn outputs(&self, step: &str) -> serde_json::Map<String, serde_json::Value> {
        self.kinds()
            .find_map(|k| match k {
                EventKind::StepSucceeded { step: s, outputs, .. } if s == step => Some(outputs.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("step {step} did not succeed"))
    }
    fn json(&self) -> String {
        self.events.iter().map(|e| serde_json::to_string(e).unwrap()).collect::<Vec<_>>().join("\n")
    }
}

/// Runs a runbook on a world: approves confirmations, answers choices with `answer` (or the newest candidate),
/// aborts when the run pauses on a failure (as headless does).
async fn run_on(rb: &Runbook, sim: &Arc<Sim>, recovery_point: Option<&str>) -> Run {
    run_as(rb, sim, recovery_point, "test-run").await
}

/// As [`run_on`], with a run id of its own (the applications of one world each have theirs).
async fn run_as(rb: &Runbook, sim: &Arc<Sim>, recovery_point: Option<&str>, run_id: &str) -> Run {
    let cloud = Cloud::from_all("sim", sim.clone());
    let cfg = RunConfig {
        run_id: run_id.into(),
        seed: 7,
        recovery_point: recovery_point.map(str::to_string),
        cloud: Some(Arc::new(cloud)),
        ..RunConfig::default()
    };
    run_cfg(rb, sim, cfg).await
}

/// As [`run_on`], with a configuration of its own.
async fn run_cfg(rb: &Runbook, sim: &Arc<Sim>, cfg: RunConfig) -> Run {
    let mut h = Engine::spawn(Arc::new(rb.clone()), Registry::builtin(), cfg, sim.clock().clone());
    let mut events = Vec::new();
    while let Some(ev) = h.events.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "test".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Choice { candidates, .. } } => {
                Some(Command::Answer { step: step.clone(), value: candidates[0].id.clone(), by: "test".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Done { .. } } => {
                Some(Command::Approve { step: step.clone(), by: "test".into() })
            }
            EventKind::RunPaused { reason } => Some(Command::Abort { reason: reason.clone(), by: "test".into() }),
            _ => None,
        };
        let done = matches!(ev.kind, EventKind::RunFinished { .. });
        events.push(ev);
        if let Some(c) = cmd {
            let _ = h.commands.send(c);
        }
        if done {
            break;
        }
    }
    let result = h.join.await.unwrap();
    Run { outcome: result.outcome, events }
}

fn count(sim: &Sim, op: &str) -> u64 {
    sim.calls().get(op).copied().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn failover_recovers_and_its_waits_observe_every_state() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    assert_eq!(r.states("rds-instance"), ["creating", "backing-up", "available", "modifying"]);
    assert_eq!(r.states("rds-snapshot"), ["pending", "available"]);
    assert_eq!(r.states("nat-gateway"), ["pending", "available"]);
    assert_eq!(r.states("load-balancer"), ["provisioning", "active"]);
    assert_eq!(r.states("route53-change"), ["PENDING", "INSYNC"]);
    assert_eq!(r.states("ami"), ["pending", "available"]);
    assert!(r.states("ec2-instance").starts_with(&["Pending".to_string()]));
    assert!(r.states("ec2-instance").contains(&"InService".to_string()));
    // snapshot copy progress is reported in percent, increasing
    let pcts: Vec<f64> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepProgress { step, percent: Some(p), .. } if step == "copy_db" => Some(*p),
            _ => None,
        })
        .collect();
    assert!(pcts.len() >= 3 && pcts.windows(2).all(|w| w[0] < w[1]), "{pcts:?}");
    // instances in service n/m
    assert!(
        r.kinds()
            .any(|k| matches!(k, EventKind::StepProgress { message, .. } if message == "instances in service 2/2"))
    );
    // the database is restored in the secondary region, from the copy, with an endpoint
    let db = r.outputs("restore_db");
    assert_eq!(db["instance"], "crosssell-prod-dr");
    assert_eq!(db["port"], 5432);
    let w = sim.snapshot();
    let dr = &w.regions["us-west-2"];
    assert!(dr.dbs.contains_key("crosssell-prod-dr"));
    assert!(
        dr.route_tables
            .values()
            .filter(|t| t.tags.get("tier").is_some_and(|t| t == "private"))
            .all(|t| t.routes.iter().any(|r| r.destination == "0.0.0.0/0" && r.nat_gateway_id.is_some()))
    );
    // everything created carries the drconsole tags
    let tags = &dr.dbs["crosssell-prod-dr"].item.tags;
    assert_eq!(tags["drconsole:run-id"], "test-run");
    assert_eq!(tags["drconsole:step"], "restore_db");
    assert_eq!(tags["drconsole:runbook"], "cross-sell-failover");
    // the RTO is met in simulated time
    let Some(EventKind::RunFinished { rto_met, duration_secs, .. }) = r.kinds().last() else { panic!() };
    assert!(*rto_met && *duration_secs > 15 * 60 && *duration_secs < 2 * 3600, "{duration_secs}");
}

#[tokio::test(start_paused = true)]
async fn running_a_finished_failover_again_creates_nothing() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let first = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(first.outcome, Outcome::Recovered);
    assert!(!first.resources("created").is_empty());
    let before = sim.snapshot();
    let creates = |s: &Sim| -> u64 {
        s.calls()
            .iter()
            .filter(|(k, _)| {
                ["Create", "Copy", "Restore", "Allocate", "Import", "StartRestore"]
                    .iter()
                    .any(|p| k.contains(&format!(":{p}")))
            })
            .map(|(_, v)| v)
            .sum()
    };
    let n = creates(&sim);
    // the chosen point must be the same one: answer with it explicitly
    let id = first.outputs("pick_db")["id"].as_str().unwrap().to_string();
    let second = run_on(&rb, &sim, Some(&id)).await;
    assert_eq!(second.outcome, Outcome::Recovered, "{}", second.json());
    assert_eq!(second.resources("creating"), Vec::<(String, String, String)>::new());
    assert!(second.resources("found").len() >= 10);
    assert_eq!(creates(&sim), n, "no create/copy/restore call on the second run");
    let after = sim.snapshot();
    for r in ["us-east-1", "us-west-2"] {
        let (a, b) = (&before.regions[r], &after.regions[r]);
        assert_eq!(a.dbs.len(), b.dbs.len());
        assert_eq!(a.db_snapshots.len(), b.db_snapshots.len());
        assert_eq!(a.volumes.len(), b.volumes.len());
        assert_eq!(a.snapshots.len(), b.snapshots.len());
        assert_eq!(a.nats.len(), b.nats.len());
        assert_eq!(a.addresses.len(), b.addresses.len());
        assert_eq!(a.lbs.len(), b.lbs.len());
        assert_eq!(a.asgs.len(), b.asgs.len());
        assert_eq!(a.images.len(), b.images.len());
    }
    assert_eq!(before.changes.len(), after.changes.len(), "the DNS record was already right");
    // the EBS data is as old as the chosen point, on both runs: the copies made by the first run carry their
    // source's time (a copy's own start time is when it was copied)
    let point: jiff::Timestamp = first.outputs("pick_db")["time"].as_str().unwrap().parse().unwrap();
    for run in [&first, &second] {
        let taken: jiff::Timestamp = run.outputs("restore_data")["snapshot_time"].as_str().unwrap().parse().unwrap();
        assert!(taken <= point, "EBS data at {taken} is newer than the recovery point {point}");
    }
    assert_eq!(first.outputs("restore_data")["snapshot_time"], second.outputs("restore_data")["snapshot_time"]);
}

#[tokio::test(start_paused = true)]
async fn capacity_error_on_restore_is_retried_and_restores_once() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    sim.inject(Fault::nth("rds:RestoreDBInstanceFromDBSnapshot", 1, "InsufficientDBInstanceCapacity"));
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered);
    assert!(r.kinds().any(|k| matches!(k, EventKind::StepRetrying { step, error, .. }
        if step == "restore_db" && error.contains("InsufficientDBInstanceCapacity") && error.contains("request id"))));
    assert_eq!(count(&sim, "rds:RestoreDBInstanceFromDBSnapshot"), 2);
    assert_eq!(sim.snapshot().regions["us-west-2"].dbs.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_fails_the_step_with_service_operation_and_code() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    sim.inject(Fault::nth("rds:CopyDBSnapshot", 1, "AccessDenied"));
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Aborted);
    let e = r.failed("copy_db").unwrap();
    assert!(e.contains("rds CopyDBSnapshot in us-west-2 failed: AccessDenied"), "{e}");
    assert_eq!(count(&sim, "rds:CopyDBSnapshot"), 1, "not retried");
    assert_eq!(count(&sim, "rds:RestoreDBInstanceFromDBSnapshot"), 0);
}

#[tokio::test(start_paused = true)]
async fn with_the_primary_region_down_the_failover_uses_the_copies_in_the_secondary() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    // the AMI is kept in the secondary region (ami-copy runbook)
    sim.provision(&drconsole::cloud::sim::Seed {
        kind: "image".into(),
        name: Some("cross-sell-web".into()),
        region: Some("us-west-2".into()),
        ..Default::default()
    });
    sim.set_region_available("us-east-1", false);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let chosen = r.kinds().find_map(|k| match k {
        EventKind::RecoveryPointChosen { region, .. } => Some(region.clone()),
        _ => None,
    });
    assert_eq!(chosen.as_deref(), Some("us-west-2"));
    assert_eq!(count(&sim, "rds:CopyDBSnapshot"), 0);
    assert_eq!(count(&sim, "ec2:CopySnapshot"), 0);
    assert!(r.kinds().any(|k| matches!(k, EventKind::StepProgress { message, .. }
        if message.contains("us-east-1 is unavailable (simulated regional outage)"))));
}

#[tokio::test(start_paused = true)]
async fn point_in_time_restore_refuses_a_time_outside_the_window() {
    let text = r#"
[runbook]
name = "pitr"
title = "t"
app = "a"
rto = "2h"
rpo = "1h"
[target]
primary = "us-east-1"
secondary = "us-west-2"
[[step]]
id = "restore"
title = "t"
action = "rds.restore_pitr"
[step.with]
source = "db1"
instance = "db1-pitr"
time = "2026-10-01T00:00:00Z"
"#;
    let rb = load_text(text);
    let sim = world(&rb);
    let r = run_on(&rb, &sim, None).await;
    let e = r.failed("restore").unwrap();
    assert!(e.contains("outside its restorable window"), "{e}");
    assert_eq!(count(&sim, "rds:RestoreDBInstanceToPointInTime"), 0);

    // the latest restorable time works, and the window is what the port reports
    let rb = load_text(&text.replace("time = \"2026-10-01T00:00:00Z\"", ""));
    let sim = world(&rb);
    let r = run_on(&rb, &sim, None).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let w = sim.restore_window("us-east-1", "db1").await.unwrap();
    assert!(w.latest > w.earliest);
}

#[tokio::test(start_paused = true)]
async fn throttled_polls_are_waited_out() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let mut f = Fault::nth("ec2:DescribeNatGateways", 2, "Throttling");
    f.times = Some(3);
    sim.inject(f);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered);
    assert!(r.kinds().any(|k| matches!(k, EventKind::StepProgress { step, message, .. }
        if step == "nat" && message.contains("Throttling"))));
}

#[tokio::test(start_paused = true)]
async fn volume_swap_replaces_the_device_and_is_idempotent() {
    let rb = load("runbooks/ebs-swap.toml");
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let out = r.outputs("swap");
    let (new, old) =
        (out["volume_id"].as_str().unwrap().to_string(), out["old_volume_id"].as_str().unwrap().to_string());
    assert_eq!(old, "vol-0123456789abcdef0");
    let w = sim.snapshot();
    let east = &w.regions["us-east-1"];
    let inst = &east.instances["i-0a1b2c3d4e5f60718"];
    assert_eq!(inst.item.block_devices["/dev/sdf"], new);
    assert_eq!(inst.tl.state(sim.clock().now()), "running");
    assert_eq!(east.volumes[&old].tl.state(sim.clock().now()), "available");
    assert_eq!(r.states("ec2-instance"), ["stopping", "stopped", "pending", "running"]);
    let again = run_on(&rb, &sim, Some(r.outputs("pick_snapshot")["id"].as_str().unwrap())).await;
    assert_eq!(again.outcome, Outcome::Recovered);
    assert!(again.resources("creating").is_empty());
    assert_eq!(again.outputs("swap")["old_volume_id"], old.as_str());
    assert_eq!(count(&sim, "ec2:StopInstances"), 1);
}

#[tokio::test(start_paused = true)]
async fn s3_export_is_imported_into_dynamodb_once() {
    let rb = load("runbooks/mysql-to-dynamodb.toml");
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let prefix = r.outputs("pick_export")["id"].as_str().unwrap().to_string();
    assert!(prefix.starts_with("exports/tvshows/") && prefix.ends_with("Z/"), "{prefix}");
    assert!(r.outputs("import")["item_count"].as_u64().unwrap() > 0);
    assert_eq!(r.outputs("pick_backup")["kind"], "backup");
    assert_eq!(r.states("dynamodb-import"), ["IN_PROGRESS", "COMPLETED"]);
    let again = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(again.outcome, Outcome::Recovered);
    assert_eq!(count(&sim, "dynamodb:ImportTable"), 1);
}

#[tokio::test(start_paused = true)]
async fn recovery_point_policies_and_the_operator_choice() {
    let base = r#"
[runbook]
name = "rp"
title = "t"
app = "a"
rto = "2h"
rpo = "1h"
[target]
primary = "us-east-1"
secondary = "us-west-2"
[[step]]
id = "pick"
title = "t"
action = "recovery_point.select"
[step.with]
source = "rds"
resource = "db1"
"#;
    // ask, headless without --recovery-point: the operator gets the candidates, newest first
    let rb = load_text(base);
    let sim = world(&rb);
    let r = run_on(&rb, &sim, None).await;
    let cands = r
        .kinds()
        .find_map(|k| match k {
            EventKind::OperatorRequest { prompt: Prompt::Choice { candidates, .. }, .. } => Some(candidates.clone()),
            _ => None,
        })
        .unwrap();
    assert!(cands.len() >= 20, "12 hourly snapshots + copies");
    assert!(cands.windows(2).all(|w| w[0].time >= w[1].time));
    assert!(cands.iter().any(|c| c.region == "us-west-2") && cands.iter().any(|c| c.region == "us-east-1"));
    assert!(cands[0].rpo_met && !cands.last().unwrap().rpo_met);
    assert!(cands.iter().all(|c| c.encrypted && c.size_gib == Some(500)));
    assert_eq!(r.outputs("pick")["id"], cands[0].id.as_str());

    // latest_before: the newest at or before the time
    let before = "2026-11-21T08:00:00Z";
    let rb = load_text(&format!("{base}policy = \"latest_before\"\nbefore = \"{before}\"\n"));
    let r = run_on(&rb, &world(&rb), None).await;
    let t: jiff::Timestamp = r.outputs("pick")["time"].as_str().unwrap().parse().unwrap();
    let b: jiff::Timestamp = before.parse().unwrap();
    assert!(t <= b && b.duration_since(t).as_secs() < 3600);

    // an explicit id that does not exist: refused, naming the newest
    let rb = load_text(&format!("{base}policy = \"id\"\nid = \"nope\"\n"));
    let r = run_on(&rb, &world(&rb), None).await;
    assert!(r.failed("pick").unwrap().contains("recovery point `nope` not found; the newest are"));
}

#[tokio::test(start_paused = true)]
async fn stale_backups_miss_the_rpo_and_require_rpo_stops_the_run() {
    let rb = load("runbooks/tabletop/stale-backups.toml");
    let wf = WorldFile::load(Path::new("runbooks/tabletop/worlds/stale-backups.toml")).unwrap();
    let sim = Arc::new(Sim::for_runbook(Clock::starting_at(start(), 1.0), 7, &rb, Some(&wf)));
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Aborted);
    assert!(r.failed("pick_db").unwrap().contains("does not meet the RPO of 30m00s"));
    assert!(
        r.kinds().any(
            |k| matches!(k, EventKind::RecoveryPointChosen { rpo_met: false, rpo_secs, .. } if *rpo_secs > 3 * 3600)
        )
    );
}

#[tokio::test(start_paused = true)]
async fn secrets_read_during_a_restore_never_reach_an_event() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let secret = sim.snapshot().regions["us-west-2"].secrets["prod/cross-sell/db-master"].value.clone();
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered);
    assert!(secret.len() > 8 && !r.json().contains(&secret));
}

#[tokio::test(start_paused = true)]
async fn the_world_saves_and_loads_with_its_timelines() {
    let rb = load("runbooks/rds-pitr.toml");
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered);
    let json = sim.save().unwrap();
    let back = Sim::load(&json, sim.clock().clone()).unwrap();
    let mut a = sim.describe_db_instance("us-east-1", "agentpay-prod-pitr").await.unwrap().unwrap();
    let mut b = back.describe_db_instance("us-east-1", "agentpay-prod-pitr").await.unwrap().unwrap();
    // the latest restorable time moves with the clock (each call takes simulated time)
    a.latest_restorable_time = None;
    b.latest_restorable_time = None;
    assert_eq!(a, b);
    assert_eq!(b.status, "available");
    assert!(back.calls()["rds:RestoreDBInstanceToPointInTime"] == 1);
}

#[test]
fn world_files_reject_unknown_fields_with_line_and_column() {
    let e = WorldFile::parse("[world]\nbackups_stoped = \"3h\"\n", "w.toml").unwrap_err().to_string();
    assert!(e.starts_with("w.toml:2:1: unknown field `backups_stoped`"), "{e}");
    let e = WorldFile::parse("[[fault]]\noperation = \"rds:X\"\n", "w.toml").unwrap_err().to_string();
    assert!(e.contains("does nothing"), "{e}");
    let ok = WorldFile::load(Path::new("runbooks/tabletop/worlds/region-outage.toml")).unwrap();
    assert_eq!(ok.faults.len(), 1);
    assert_eq!(ok.settings.unavailable_regions, ["us-east-1"]);
}

// AMI names change every build (`app-web-2026-12-01T21-00`): `image` takes an exact id or name, or a pattern whose
// newest match (in either region) is copied
#[tokio::test(start_paused = true)]
async fn copy_image_takes_an_exact_name_the_newest_match_of_a_pattern_or_of_a_tag() {
    let text = |image: &str| {
        format!(
            r#"
[runbook]
name = "ami-pattern"
title = "Copy the newest build of the web AMI"
app = "test"
rto = "1h"
rpo = "1h"

[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"

[[step]]
id = "copy_ami"
title = "Copy the AMI"
action = "ec2.copy_image"
[step.with]
image = "{image}"
"#
        )
    };
    let rb = load_text(&text("app-web-*"));
    let sim = world(&rb);
    let r = run_on(&rb, &sim, None).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let out = r.outputs("copy_ami");
    // the simulator builds the family daily: the newest is yesterday's
    let newest = format!("app-web-{}", (start() - jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%d"));
    assert_eq!(out["name"], newest.as_str(), "{out:?}");
    assert_ne!(out["image_id"], out["source_image_id"], "copied into us-west-2: {out:?}");
    assert_eq!(count(&sim, "ec2:CopyImage"), 1);

    // an exact name of an older build takes that one, not the newest
    let older = format!("app-web-{}", (start() - jiff::SignedDuration::from_hours(72)).strftime("%Y-%m-%d"));
    let rb2 = load_text(&text(&older));
    let r = run_on(&rb2, &sim, None).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    assert_eq!(r.outputs("copy_ami")["name"], older.as_str());

    // `image = "*"` with `image_tag`: the newest AMI the pipeline tagged, though newer untagged builds exist
    sim.provision(&drconsole::cloud::sim::Seed {
        kind: "image".into(),
        name: Some("web-golden".into()),
        tag: Some("role=web".into()),
        ..Default::default()
    });
    let rb3 = load_text(&text("*").replace("image = \"*\"", "image = \"*\"\nimage_tag = \"role=web\""));
    let r = run_on(&rb3, &sim, None).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    assert_eq!(r.outputs("copy_ami")["name"], "web-golden");
}

/// The five applications of the incident at once on one simulated world: their waits' polls of one kind share
/// describes (one simulated call per batch), so the incident makes fewer DescribeDBInstances, DescribeNatGateways,
/// DescribeImages and EC2 DescribeSnapshots calls than the same five applications each alone on its own world,
/// where a batch can only ever hold the one application's resources.
#[tokio::test(start_paused = true)]
async fn the_incident_s_waits_share_describes_so_it_makes_fewer_calls_than_its_applications_alone() {
    let paths = [
        "runbooks/cross-sell.toml",
        "runbooks/inventory-management.toml",
        "runbooks/agent-payment.toml",
        "runbooks/customer-assistance.toml",
        "runbooks/vendor-assistance.toml",
    ];
    let rbs: Vec<Runbook> = paths.iter().map(|p| load(p)).collect();
    let add = |into: &mut std::collections::BTreeMap<String, u64>, sim: &Sim| {
        for (k, v) in sim.calls() {
            *into.entry(k).or_insert(0) += v;
        }
    };
    let mut alone = std::collections::BTreeMap::new();
    for (i, rb) in rbs.iter().enumerate() {
        let sim = world(rb);
        let r = run_as(rb, &sim, Some("latest"), &format!("run-{i}")).await;
        assert_eq!(r.outcome, Outcome::Recovered, "{} alone: {}", rb.meta.name, r.json());
        add(&mut alone, &sim);
    }
    let sim = world(&rbs[0]);
    for rb in &rbs[1..] {
        for s in drconsole::cloud::sim::provision::seeds_from_runbook(rb) {
            sim.provision(&s);
        }
    }
    let tasks: Vec<_> = rbs
        .iter()
        .enumerate()
        .map(|(i, rb)| {
            let (rb, sim) = (rb.clone(), sim.clone());
            tokio::spawn(async move { run_as(&rb, &sim, Some("latest"), &format!("run-{i}")).await })
        })
        .collect();
    for (t, rb) in tasks.into_iter().zip(&rbs) {
        let r = t.await.unwrap();
        assert_eq!(r.outcome, Outcome::Recovered, "{} in the incident: {}", rb.meta.name, r.json());
    }
    let mut together = std::collections::BTreeMap::new();
    add(&mut together, &sim);
    let figures: Vec<String> = together
        .iter()
        .filter(|(k, _)| k.contains(":Describe"))
        .map(|(k, v)| format!("{k}: {v} together, {} alone", alone.get(k).copied().unwrap_or(0)))
        .collect();
    eprintln!("{}", figures.join("\n"));
    for op in [
        "rds:DescribeDBInstances",
        "ec2:DescribeNatGateways",
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
        "elbv2:DescribeLoadBalancers",
    ] {
        let (t, a) = (together.get(op).copied().unwrap_or(0), alone.get(op).copied().unwrap_or(0));
        assert!(t < a, "{op}: {t} calls in the incident, {a} for the applications alone\n{}", figures.join("\n"));
    }
    let (t, a): (u64, u64) = (together.values().sum(), alone.values().sum());
    assert!(t < a, "{t} calls in the incident, {a} for the applications alone");
}

// ------------------------------------------------------------------------------------------------------------------
// Shared resources are shared (issue 22): the applications recovering into one DR VPC make one NAT gateway per
// zone, whoever comes first; the others wait for it and route through it.

const SHARED_VPC: &str = "dr-shared-vpc";
const APP_RUNBOOKS: [&str; 5] = [
    "runbooks/cross-sell.toml",
    "runbooks/inventory-management.toml",
    "runbooks/agent-payment.toml",
    "runbooks/customer-assistance.toml",
    "runbooks/vendor-assistance.toml",
];

/// The five applications' runbooks pointed at one DR VPC (as the customer's `[vars]` do), with `per_az` set on
/// their NAT step, and one world provisioned for all of them.
fn shared_vpc_incident(per_az: bool) -> (Vec<Runbook>, Arc<Sim>) {
    let rbs: Vec<Runbook> = APP_RUNBOOKS
        .iter()
        .map(|p| {
            let mut rb = load(p);
            rb.vars.insert("vpc".into(), SHARED_VPC.into());
            let nat = rb.steps.iter_mut().find(|s| s.action == "nat.ensure").unwrap();
            nat.with.insert("per_az".into(), per_az.into());
            rb
        })
        .collect();
    let sim = world(&rbs[0]);
    for rb in &rbs[1..] {
        for s in drconsole::cloud::sim::provision::seeds_from_runbook(rb) {
            sim.provision(&s);
        }
    }
    (rbs, sim)
}

/// Runs the applications at once on one world (one incident), with these run ids.
async fn run_together(rbs: &[Runbook], sim: &Arc<Sim>, ids: &[String]) -> Vec<Run> {
    let tasks: Vec<_> = rbs
        .iter()
        .zip(ids)
        .map(|(rb, id)| {
            let (rb, sim, id) = (rb.clone(), sim.clone(), id.clone());
            tokio::spawn(async move { run_as(&rb, &sim, Some("latest"), &id).await })
        })
        .collect();
    let mut out = Vec::new();
    for (t, rb) in tasks.into_iter().zip(rbs) {
        let r = t.await.unwrap();
        assert_eq!(r.outcome, Outcome::Recovered, "{}: {}", rb.meta.name, r.json());
        out.push(r);
    }
    out
}

/// Calls that change something, by operation.
fn mutating_calls(sim: &Sim) -> std::collections::BTreeMap<String, u64> {
    sim.calls()
        .into_iter()
        .filter(|(op, _)| {
            let op = op.split_once(':').map_or(op.as_str(), |(_, o)| o);
            !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
        })
        .collect()
}

/// The shared VPC's NAT gateways (id → zone) and its private route tables' default routes (table → target).
fn shared_vpc_network(
    sim: &Sim,
) -> (std::collections::BTreeMap<String, String>, std::collections::BTreeMap<String, Option<String>>) {
    let w = sim.snapshot();
    let dr = &w.regions["us-west-2"];
    let vpc = dr.vpcs.values().find(|v| v.tags.get("Name").is_some_and(|n| n == SHARED_VPC)).unwrap().id.clone();
    let az = |subnet: &str| dr.subnets[subnet].az.clone();
    let nats = dr
        .nats
        .values()
        .filter(|n| dr.subnets.get(&n.item.subnet_id).is_some_and(|s| s.vpc_id == vpc))
        .map(|n| (n.item.id.clone(), az(&n.item.subnet_id)))
        .collect();
    let routes = dr
        .route_tables
        .values()
        .filter(|t| t.vpc_id == vpc && t.tags.get("tier").is_some_and(|t| t == "private"))
        .map(|t| {
            let default = t.routes.iter().find(|r| r.destination == "0.0.0.0/0");
            (t.id.clone(), default.and_then(|r| r.nat_gateway_id.clone()))
        })
        .collect();
    (nats, routes)
}

#[tokio::test(start_paused = true)]
async fn the_incident_s_applications_share_one_nat_gateway_per_zone_of_a_shared_vpc_and_a_rerun_changes_nothing() {
    for per_az in [false, true] {
        let (rbs, sim) = shared_vpc_incident(per_az);
        let ids: Vec<String> = (0..rbs.len()).map(|i| format!("run-{i}")).collect();
        let runs = run_together(&rbs, &sim, &ids).await;
        let (nats, routes) = shared_vpc_network(&sim);
        let zones: std::collections::BTreeSet<&String> = nats.values().collect();
        assert_eq!(nats.len(), if per_az { 2 } else { 1 }, "per_az {per_az}: {nats:?}");
        assert_eq!(zones.len(), nats.len(), "one NAT gateway per zone: {nats:?}");
        assert_eq!(count(&sim, "ec2:CreateNatGateway"), nats.len() as u64);
        assert_eq!(count(&sim, "ec2:AllocateAddress"), nats.len() as u64, "one Elastic IP per NAT gateway");
        // each zone was claimed once, by one application; every application routes through the zone's gateway
        let claims: Vec<(String, String, String)> =
            runs.iter().flat_map(|r| r.resources("created")).filter(|(k, _, _)| k == "nat-claim").collect();
        assert_eq!(claims.len(), nats.len(), "per_az {per_az}: {claims:?}");
        assert_eq!(count(&sim, "ec2:CreateSecurityGroup"), nats.len() as u64, "no claim raced in one process");
        // the claims stay, one per zone, each its claimant's (its cleanup removes it)
        let kept: Vec<String> = sim.snapshot().regions["us-west-2"]
            .security_groups
            .values()
            .map(|g| format!("{} {}", g.name, g.tags["drconsole:run-id"]))
            .collect();
        assert_eq!(kept.len(), nats.len(), "{kept:?}");
        assert!(kept.iter().all(|k| k.starts_with("drconsole-nat-claim-us-west-2")), "{kept:?}");
        for (rb, r) in rbs.iter().zip(&runs) {
            let out = r.outputs("nat");
            let mine: std::collections::BTreeSet<&str> = out["nat_gateway_ids"].as_str().unwrap().split(',').collect();
            let all: std::collections::BTreeSet<&str> = nats.keys().map(String::as_str).collect();
            assert_eq!(mine, all, "{}: {out:?}", rb.meta.name);
        }
        assert_eq!(routes.len(), 2, "{routes:?}");
        for (table, target) in &routes {
            let target = target.as_ref().unwrap_or_else(|| panic!("{table} has no default route: {routes:?}"));
            assert!(nats.contains_key(target), "{table} → {target}, not the shared NAT gateway: {nats:?}");
        }
        if per_az {
            // each zone's private table through its own zone's gateway
            let w = sim.snapshot();
            let dr = &w.regions["us-west-2"];
            for (table, target) in &routes {
                let t = &dr.route_tables[table];
                let zone = &dr.subnets[&t.subnet_ids[0]].az;
                assert_eq!(&nats[target.as_ref().unwrap()], zone, "{table}");
            }
        }
        // the same incident again (new runs): nothing is created or changed, routes stay as they are
        let before = mutating_calls(&sim);
        let ids: Vec<String> = (0..rbs.len()).map(|i| format!("rerun-{i}")).collect();
        let again = run_together(&rbs, &sim, &ids).await;
        assert_eq!(mutating_calls(&sim), before, "per_az {per_az}: a rerun changed something");
        assert_eq!(shared_vpc_network(&sim), (nats, routes));
        for r in &again {
            assert!(r.resources("created").is_empty(), "{:?}", r.resources("created"));
        }
    }
}

/// `per_az = false` is one NAT gateway for the VPC, even when the applications name public subnets in different
/// zones (`subnet`) and run at the same moment: they all claim one zone and wait on one lock, one gateway is made,
/// and the private route tables of every zone go through it. A rerun changes nothing.
#[tokio::test(start_paused = true)]
async fn per_az_false_is_one_nat_gateway_for_the_vpc_whatever_zone_each_application_names() {
    let (mut rbs, sim) = shared_vpc_incident(false);
    let w = sim.snapshot();
    let dr = &w.regions["us-west-2"];
    let vpc = dr.vpcs.values().find(|v| v.tags.get("Name").is_some_and(|n| n == SHARED_VPC)).unwrap().id.clone();
    let mut public: Vec<(String, String)> =
        dr.subnets.values().filter(|s| s.vpc_id == vpc && s.public).map(|s| (s.az.clone(), s.id.clone())).collect();
    public.sort();
    let zones: std::collections::BTreeSet<&String> = public.iter().map(|(az, _)| az).collect();
    assert!(zones.len() >= 2, "public subnets in two zones: {public:?}");
    // the applications name public subnets of different zones, the last zone first
    for (k, rb) in rbs.iter_mut().enumerate() {
        let nat = rb.steps.iter_mut().find(|s| s.action == "nat.ensure").unwrap();
        let (_, id) = &public[public.len() - 1 - k % public.len()];
        nat.with.insert("subnet".into(), id.clone().into());
    }
    let ids: Vec<String> = (0..rbs.len()).map(|i| format!("run-{i}")).collect();
    let runs = run_together(&rbs, &sim, &ids).await;
    let (nats, routes) = shared_vpc_network(&sim);
    assert_eq!(nats.len(), 1, "one NAT gateway for the VPC: {nats:?}");
    assert_eq!(count(&sim, "ec2:CreateNatGateway"), 1);
    assert_eq!(count(&sim, "ec2:CreateSecurityGroup"), 1, "one claim");
    let nat = nats.keys().next().unwrap().clone();
    assert_eq!(routes.len(), 2, "{routes:?}");
    for (table, target) in &routes {
        assert_eq!(target.as_deref(), Some(nat.as_str()), "{table}: every zone's private table through it");
    }
    for (rb, r) in rbs.iter().zip(&runs) {
        assert_eq!(r.outputs("nat")["nat_gateway_ids"], nat.as_str(), "{}", rb.meta.name);
    }
    let before = mutating_calls(&sim);
    let ids: Vec<String> = (0..rbs.len()).map(|i| format!("rerun-{i}")).collect();
    run_together(&rbs, &sim, &ids).await;
    assert_eq!(mutating_calls(&sim), before, "a rerun changed something");
}

/// The cleanup (`drconsole cleanup --force`) of the run that made the shared VPC's NAT gateway, while another
/// application's group lives behind the private route tables: the gateway, its Elastic IP and the routes stay,
/// recorded as kept in use; the claimant's own group goes.
#[tokio::test(start_paused = true)]
async fn the_claimant_s_cleanup_keeps_the_shared_nat_gateway_on_the_simulator() {
    use drconsole::cleanup::{Entry, Log, Plan, Summary, created_by_run, read_log, routes_changed_by_run};
    let (rbs, sim) = shared_vpc_incident(false);
    let ids: Vec<String> = vec!["run-a".into(), "run-b".into()];
    let runs = run_together(&rbs[..2], &sim, &ids).await;
    let (nats, routes) = shared_vpc_network(&sim);
    assert_eq!(nats.len(), 1, "{nats:?}");
    let nat = nats.keys().next().unwrap().clone();
    let k = runs.iter().position(|r| r.resources("created").iter().any(|(kind, _, _)| kind == "nat-gateway")).unwrap();
    let claimant = &runs[k];
    let cloud = Cloud::from_all("sim", sim.clone());
    let plan = Plan {
        run_id: ids[k].clone(),
        drill: false,
        drill_record: None,
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        journalled: created_by_run(&drconsole::run::RunView::from_events(&claimant.events)),
        routes: routes_changed_by_run(&drconsole::run::RunView::from_events(&claimant.events)),
    };
    assert!(!plan.routes.is_empty(), "the claimant set the routes");
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), sim.clock().clone()).unwrap();
    log.write(Entry::Started { by: "test".into(), drill: false, forced: true }).unwrap();
    let left = drconsole::cleanup::run(&cloud, &plan, sim.clock(), &mut log, &mut || {}).await.unwrap();
    let summary = Summary::from_lines(&read_log(dir.path()));
    assert!(left.is_empty(), "nothing left but what is in use: {left:?} {summary:?}");
    let in_use: Vec<String> = summary.in_use.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
    assert!(in_use.contains(&format!("nat-gateway {nat}")), "{summary:?}");
    assert!(in_use.iter().any(|r| r.starts_with("elastic-ip ")), "{summary:?}");
    let kept: Vec<&String> = summary.kept.iter().map(|(_, why)| why).collect();
    assert!(kept.iter().any(|w| w.contains("still in use")), "{kept:?}");
    assert!(kept.iter().any(|w| w.contains("auto scaling group") && w.contains(&ids[1 - k])), "{kept:?}");
    assert_eq!(shared_vpc_network(&sim), (nats, routes), "the gateway and every route stay");
    let groups: Vec<String> = sim.snapshot().regions["us-west-2"]
        .asgs
        .values()
        .filter(|a| a.deleted_at.is_none())
        .map(|a| a.group.tags.get("drconsole:run-id").cloned().unwrap_or_default())
        .collect();
    assert!(!groups.contains(&ids[k]) && groups.contains(&ids[1 - k]), "the claimant's group went: {groups:?}");
}

/// Another console (another host) holds the zone's claim: this run makes no NAT gateway, waits for the claimant's
/// and routes through it once it is there.
#[tokio::test(start_paused = true)]
async fn a_run_waits_for_the_nat_gateway_another_host_claimed_and_reuses_it() {
    use drconsole::cloud::{CreateNatGateway, CreateSecurityGroup};
    let (rbs, sim) = shared_vpc_incident(false);
    let cloud = Cloud::from_all("sim", sim.clone());
    let r = "us-west-2";
    let vpc = cloud.ec2.describe_vpcs(r, &drconsole::cloud::Filter::tag("Name", SHARED_VPC)).await.unwrap();
    let vpc = vpc[0].id.clone();
    let subnets = cloud.ec2.describe_subnets(r, &drconsole::cloud::Filter::default()).await.unwrap();
    // the zone every run into the VPC claims with per_az = false: the first (by name) with a public subnet
    let public = subnets
        .iter()
        .filter(|s| s.vpc_id == vpc && s.public)
        .min_by_key(|s| (s.az.clone(), s.id.clone()))
        .unwrap()
        .clone();
    let mut tags = drconsole::cloud::drconsole_tags("other-host-run", "nat", "agent-payment-failover");
    tags.insert("drconsole:claimed-at".into(), sim.clock().now().to_string());
    let claim = cloud
        .ec2
        .create_security_group(
            r,
            &CreateSecurityGroup {
                vpc_id: vpc.clone(),
                name: format!("drconsole-nat-claim-{}", public.az),
                description: "claimed by another host".into(),
                tags: tags.clone(),
            },
        )
        .await
        .unwrap();
    // the other host makes its gateway three minutes later
    let other = {
        let (cloud, sim, public) = (cloud.clone(), sim.clone(), public.clone());
        tokio::spawn(async move {
            sim.clock().sleep(std::time::Duration::from_secs(180)).await;
            let eip = cloud.ec2.allocate_address(r, &tags).await.unwrap();
            let req = CreateNatGateway {
                subnet_id: public.id.clone(),
                allocation_id: eip.allocation_id,
                client_token: "other-host".into(),
                tags,
            };
            cloud.ec2.create_nat_gateway(r, &req).await.unwrap().id
        })
    };
    let run = run_as(&rbs[0], &sim, Some("latest"), "this-run").await;
    let theirs = other.await.unwrap();
    assert_eq!(run.outcome, Outcome::Recovered, "{}", run.json());
    assert_eq!(count(&sim, "ec2:CreateNatGateway"), 1, "only the claimant made one");
    assert_eq!(count(&sim, "ec2:CreateSecurityGroup"), 2, "this run's claim was refused: {:?}", sim.calls());
    let kept: Vec<_> = sim.snapshot().regions[r].security_groups.values().map(|g| g.id.clone()).collect();
    assert_eq!(kept, vec![claim.id], "the other host's claim stands");
    assert!(
        run.kinds().any(|k| matches!(k, EventKind::StepProgress { step, message, .. }
            if step == "nat" && message.starts_with("waiting for run other-host-run's NAT gateway"))),
        "{}",
        run.json()
    );
    assert_eq!(run.outputs("nat")["nat_gateway_id"], theirs.as_str());
    let (_, routes) = shared_vpc_network(&sim);
    assert!(routes.values().all(|t| t.as_deref() == Some(theirs.as_str())), "{routes:?}");
}

/// A claim whose claimant died (older than the stale limit, no gateway) is taken over, with a warning; a group of
/// the claim's name without the claim's tags is not drconsole's: the step refuses to guess whose it is.
#[tokio::test(start_paused = true)]
async fn an_abandoned_claim_is_taken_over_and_a_foreign_group_of_its_name_stops_the_step() {
    use drconsole::cloud::CreateSecurityGroup;
    for foreign in [false, true] {
        let (rbs, sim) = shared_vpc_incident(false);
        let cloud = Cloud::from_all("sim", sim.clone());
        let r = "us-west-2";
        let vpc = cloud.ec2.describe_vpcs(r, &drconsole::cloud::Filter::tag("Name", SHARED_VPC)).await.unwrap();
        let subnets = cloud.ec2.describe_subnets(r, &drconsole::cloud::Filter::default()).await.unwrap();
        // the zone a per_az = false run claims: the first (by name) with a public subnet
        let az = subnets
            .iter()
            .filter(|s| s.vpc_id == vpc[0].id && s.public)
            .min_by_key(|s| (s.az.clone(), s.id.clone()))
            .unwrap()
            .az
            .clone();
        let mut tags = drconsole::cloud::drconsole_tags("crashed-run", "nat", "agent-payment-failover");
        let an_hour_ago = sim.clock().now() - jiff::SignedDuration::from_hours(1);
        tags.insert("drconsole:claimed-at".into(), an_hour_ago.to_string());
        let req = CreateSecurityGroup {
            vpc_id: vpc[0].id.clone(),
            name: format!("drconsole-nat-claim-{az}"),
            description: "x".into(),
            tags: if foreign { drconsole::cloud::Tags::new() } else { tags },
        };
        let stale = cloud.ec2.create_security_group(r, &req).await.unwrap();
        let run = run_as(&rbs[0], &sim, Some("latest"), "this-run").await;
        if foreign {
            // the step fails (headless: the run pauses and is aborted)
            assert_eq!(run.outcome, Outcome::Aborted, "{}", run.json());
            let err = run.failed("nat").unwrap();
            assert!(err.contains(&stale.id) && err.contains("lacks the claim's tags"), "{err}");
            assert_eq!(count(&sim, "ec2:CreateNatGateway"), 0);
            continue;
        }
        assert_eq!(run.outcome, Outcome::Recovered, "{}", run.json());
        assert!(
            run.kinds().any(|k| matches!(k, EventKind::StepWarning { step, message }
                if step == "nat" && message.contains("crashed-run") && message.contains("taking its claim"))),
            "{}",
            run.json()
        );
        assert_eq!(count(&sim, "ec2:CreateNatGateway"), 1);
        let kept: Vec<_> = sim.snapshot().regions[r].security_groups.values().cloned().collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].id != stale.id && kept[0].tags["drconsole:run-id"] == "this-run", "{kept:?}");
    }
}

// The default world's hourly EBS snapshots are taken minutes apart from the database's: the newest database point
// meets the RPO, the EBS set consistent with it does not. The operator is asked (with the alternatives) before
// anything is restored; `--recovery-point latest+ebs=newest` answers it in advance.
#[tokio::test(start_paused = true)]
async fn a_met_database_point_is_followed_by_a_question_before_the_ebs_set_loses_the_rpo() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let asked = r.events.iter().position(|e| {
        matches!(&e.kind, EventKind::OperatorRequest { prompt: Prompt::Choice { candidates, .. }, .. }
            if candidates.iter().any(|c| c.kind == "ebs-set"))
    });
    let asked = asked.unwrap_or_else(|| panic!("the EBS set question: {}", r.json()));
    let cands = match &r.events[asked].kind {
        EventKind::OperatorRequest { prompt: Prompt::Choice { candidates, message }, .. } => {
            assert!(message.contains("meets the RPO") && message.contains("does not"), "{message}");
            candidates.clone()
        }
        _ => unreachable!(),
    };
    let ids: Vec<&str> = cands.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids[..2], ["ebs=consistent", "ebs=newest"], "{cands:#?}");
    assert!(!cands[0].rpo_met && cands[1].rpo_met, "{cands:#?}");
    assert!(cands[1].source.contains("inconsistent with the database by up to"), "{}", cands[1].source);
    // asked before anything was created
    let first_created = r.events.iter().position(|e| {
        matches!(&e.kind, EventKind::Resource { phase, kind, .. }
        if phase == "creating" && (kind.starts_with("ebs") || kind.starts_with("rds")))
    });
    assert!(first_created.is_none_or(|c| c > asked), "asked at {asked}, created at {first_created:?}");
    // the answer (the harness takes the first: the consistent set) is journalled, and the set's loss shows as missed
    assert!(r.kinds().any(|k| matches!(k, EventKind::OperatorAnswered { answer, .. } if answer == "ebs=consistent")));
    let set = r.kinds().find_map(|k| match k {
        EventKind::RecoveryPointChosen { kind, verdict, .. } if kind == "ebs-set" => Some(*verdict),
        _ => None,
    });
    assert_eq!(set, Some(Some(drconsole::run::RpoVerdict::Missed)));

    // decided in advance: no question, the newest points, the RPO met
    let sim = world(&rb);
    let r = run_on(&rb, &sim, Some("latest+ebs=newest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    assert!(!r.kinds().any(|k| matches!(k, EventKind::OperatorRequest { .. })), "{}", r.json());
    let set = r.kinds().find_map(|k| match k {
        EventKind::RecoveryPointChosen { kind, verdict, .. } if kind == "ebs-set" => Some(*verdict),
        _ => None,
    });
    assert_eq!(set, Some(Some(drconsole::run::RpoVerdict::Met)));
    assert!(r.kinds().any(
        |k| matches!(k, EventKind::StepWarning { message, .. } if message.contains("EBS set decision: ebs=newest"))
    ));
}

// The region-outage tabletop: with the DR inventory a preflight wrote while us-east-1 answered, the copies' data
// times are known; without it, only their copies' start times are, and they show as bounds (`≥`), never as the
// data's time.
#[tokio::test(start_paused = true)]
async fn the_region_outage_tabletop_uses_the_inventory_and_shows_bounds_as_bounds_without_it() {
    let rb = load("runbooks/tabletop/region-outage.toml");
    let wf = WorldFile::load(Path::new("runbooks/tabletop/worlds/region-outage.toml")).unwrap();
    let ebs_set = |r: &Run| {
        r.kinds()
            .find_map(|k| match k {
                EventKind::RecoveryPointChosen { kind, bound, verdict, rpo_secs, .. } if kind == "ebs-set" => {
                    Some((*bound, *verdict, *rpo_secs))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("an EBS set point: {}", r.json()))
    };
    // without an inventory
    let sim = Arc::new(Sim::for_runbook(Clock::starting_at(start(), 1.0), 7, &rb, Some(&wf)));
    let r = run_on(&rb, &sim, Some("latest+ebs=newest")).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let (bound, verdict_bound, loss_bound) = ebs_set(&r);
    let shown = r.kinds().any(|k| {
        matches!(k, EventKind::StepProgress { message, .. }
        if message.starts_with("EBS set of") && message.contains("time ≤ ") && message.contains("upper bound"))
    });
    assert!(shown, "the picker's log shows the bound as a bound: {}", r.json());
    assert!(bound, "the copies' start times are upper bounds: {}", r.json());
    eprintln!("figure: region-outage EBS set without inventory: ≥ {loss_bound}s {verdict_bound:?}");
    // with the inventory a preflight wrote while us-east-1 answered (the same world, the primary up)
    let state = tempfile::tempdir().unwrap();
    let up = Arc::new(Sim::for_runbook(Clock::starting_at(start(), 1.0), 7, &rb, None));
    let ro = drconsole::preflight::ReadOnlyCloud::new(Cloud::from_all("sim", up));
    let report = drconsole::preflight::run(&rb, &Registry::builtin(), &ro, start()).await;
    let inv = report.inventory.clone().unwrap_or_else(|| panic!("an inventory: {:#?}", report.findings));
    assert_eq!(inv.volume_sets.len(), 1, "{inv:#?}");
    drconsole::inventory::save(&inv, state.path()).unwrap();
    let sim = Arc::new(Sim::for_runbook(Clock::starting_at(start(), 1.0), 7, &rb, Some(&wf)));
    let cloud = Cloud::from_all("sim", sim.clone());
    let run_dir = state.path().join("runs").join("with-inventory");
    let cfg = RunConfig {
        run_id: "with-inventory".into(),
        seed: 7,
        recovery_point: Some("latest+ebs=newest".into()),
        cloud: Some(Arc::new(cloud)),
        run_dir: Some(run_dir),
        ..RunConfig::default()
    };
    let r = run_cfg(&rb, &sim, cfg).await;
    assert_eq!(r.outcome, Outcome::Recovered, "{}", r.json());
    let (bound, verdict, loss) = ebs_set(&r);
    assert!(!bound, "the inventory knows the data's time: {}", r.json());
    eprintln!("figure: region-outage EBS set with the inventory: {loss}s {verdict:?}");
    assert!(
        r.kinds().any(
            |k| matches!(k, EventKind::StepWarning { message, .. } if message.contains("used the DR inventory of"))
        )
    );
}

/// A journal sink that cannot record one event (as the shared state's, fenced off by a takeover): it halts the run
/// there with the refusal's exit code.
struct HaltingSink {
    on: &'static str,
    halt: Option<drconsole::run::Halt>,
}

impl drconsole::engine::EventSink for HaltingSink {
    fn event(&mut self, ev: &Event) {
        if let EventKind::Resource { phase, kind, .. } = &ev.kind
            && phase == "creating"
            && kind == self.on
        {
            self.halt = Some(drconsole::run::Halt { message: format!("cannot record creating {kind}"), exit_code: 4 });
        }
    }

    fn halt(&mut self) -> Option<drconsole::run::Halt> {
        self.halt.take()
    }
}

/// The journal could not record that a snapshot copy is being created: the copy is never asked for, nothing after
/// that record reaches any other sink, the engine stops (no `run_finished`), and the run ends with the halt's exit
/// code instead of its outcome's.
#[tokio::test(start_paused = true)]
async fn a_record_the_journal_cannot_write_halts_the_run_before_the_cloud_call_it_announces() {
    let rb = load("runbooks/cross-sell.toml");
    let sim = world(&rb);
    let cfg = RunConfig {
        run_id: "halted".into(),
        seed: 7,
        recovery_point: Some("latest".into()),
        cloud: Some(Arc::new(Cloud::from_all("sim", sim.clone()))),
        ..RunConfig::default()
    };
    let emitter = drconsole::engine::Emitter::new(sim.clock().clone());
    emitter.add_sink(Box::new(HaltingSink { on: "rds-snapshot", halt: None }));
    let mut events = emitter.subscribe();
    let engine = Engine::new(Arc::new(rb), Registry::builtin(), cfg, sim.clock().clone(), emitter);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let join = tokio::spawn(engine.run(rx));
    let mut seen = Vec::new();
    while let Some(ev) = events.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "test".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Choice { candidates, .. } } => {
                Some(Command::Answer { step: step.clone(), value: candidates[0].id.clone(), by: "test".into() })
            }
            _ => None,
        };
        if let Some(c) = cmd {
            let _ = tx.send(c);
        }
        seen.push(ev.kind);
    }
    let r = join.await.unwrap();
    let halt = r.halt.clone().expect("the run was halted");
    assert_eq!((halt.exit_code, r.exit_code()), (4, 4), "{}", halt.message);
    assert_eq!(count(&sim, "rds:CopyDBSnapshot"), 0, "the copy the unrecorded event announced was never asked for");
    assert!(
        !seen.iter().any(
            |k| matches!(k, EventKind::Resource { phase, kind, .. } if phase == "creating" && kind == "rds-snapshot")
        ),
        "the screen never saw the event the journal could not record"
    );
    assert!(!seen.iter().any(|k| matches!(k, EventKind::RunFinished { .. })), "nothing recorded after the halt");
}
