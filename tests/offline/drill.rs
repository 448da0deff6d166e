//! Drills on the simulator (`--drill`, `mode = "drill"`): drill names and tags, the drill DNS record instead of the
//! production one, the primary region never written; `drconsole cleanup RUN` (journal + tag sweep, reverse order,
//! waits, idempotent and resumable, refusals); `--cleanup-after`; the report's "Recovery test" section.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use drconsole::cloud::sim::World;
use drconsole::cloud::{TAG_DRILL, TAG_RUN_ID};
use serde_json::Value;

const CROSS_SELL: &str = "runbooks/cross-sell.toml";
const RECORD: &str = "cross-sell.example-fin.com.";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
    fn events(&self) -> Vec<Value> {
        self.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

fn drconsole(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::cargo_bin("drconsole").unwrap();
    cmd.env("DRCONSOLE_STATE_DIR", state).args(args).timeout(Duration::from_secs(180));
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

const SIM: &[&str] = &[
    "--headless",
    "--json",
    "--sim",
    "--speed",
    "5000",
    "--yes",
    "--manual-done",
    "all",
    "--recovery-point",
    "latest+ebs=newest",
];

fn sim_run(state: &Path, runbook: &str, extra: &[&str]) -> Out {
    let mut args: Vec<&str> = SIM.to_vec();
    args.extend_from_slice(extra);
    args.push(runbook);
    drconsole(state, &args, &[])
}

fn run_dir(state: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn world(dir: &Path) -> World {
    serde_json::from_str(&std::fs::read_to_string(dir.join("world.json")).unwrap()).unwrap()
}

fn run_id_of(events: &[Value]) -> String {
    events.iter().find(|e| e["type"] == "run_started").unwrap()["run_id"].as_str().unwrap().to_string()
}

/// Every resource of a region with its tags, as (kind, id, tags).
fn tagged(w: &World, region: &str) -> Vec<(String, String, std::collections::BTreeMap<String, String>)> {
    let r = &w.regions[region];
    let mut v = Vec::new();
    let mut add = |k: &str, id: &String, t: &std::collections::BTreeMap<String, String>| {
        v.push((k.to_string(), id.clone(), t.clone()));
    };
    for (id, x) in &r.dbs {
        if x.tl.state(jiff::Timestamp::MAX) != "deleted" {
            add("db", id, &x.item.tags);
        }
    }
    for (id, x) in &r.db_snapshots {
        add("db-snapshot", id, &x.item.tags);
    }
    for (id, x) in &r.volumes {
        add("volume", id, &x.item.tags);
    }
    for (id, x) in &r.snapshots {
        add("snapshot", id, &x.item.tags);
    }
    for (id, x) in &r.images {
        add("ami", id, &x.item.tags);
    }
    for (id, x) in &r.nats {
        if x.tl.state(jiff::Timestamp::MAX) != "deleted" {
            add("nat", id, &x.item.tags);
        }
    }
    for (id, x) in &r.addresses {
        add("eip", id, &x.tags);
    }
    for (id, x) in &r.lbs {
        add("lb", id, &x.item.tags);
    }
    for (id, x) in &r.tgs {
        add("tg", id, &x.tags);
    }
    for (id, x) in &r.asgs {
        if x.deleted_at.is_none() {
            add("asg", id, &x.group.tags);
        }
    }
    v
}

fn of_run<'a>(
    all: &'a [(String, String, std::collections::BTreeMap<String, String>)],
    run: &str,
) -> Vec<&'a (String, String, std::collections::BTreeMap<String, String>)> {
    all.iter().filter(|(_, _, t)| t.get(TAG_RUN_ID).is_some_and(|v| v == run)).collect()
}

fn record<'a>(w: &'a World, name: &str) -> Option<&'a drconsole::cloud::RecordSet> {
    w.records.values().flatten().find(|r| r.name == name)
}

#[test]
fn a_drill_recovers_in_the_secondary_with_drill_names_tags_and_record_and_never_writes_the_primary() {
    let state = tempfile::tempdir().unwrap();
    // the world a failover starts from: what the production record looked like before
    let before = sim_run(state.path(), CROSS_SELL, &["--drill"]);
    before.expect(0);
    let events = before.events();
    let run = run_id_of(&events);
    let short = drconsole::drill::short_id(&run);
    assert_eq!(events[0]["drill"], true, "the run says it is a drill");
    let dir = run_dir(state.path());
    let w = world(&dir);

    // everything the run created in the secondary carries the drill tag and a drill name
    let secondary = tagged(&w, "us-west-2");
    let mine = of_run(&secondary, &run);
    assert!(mine.len() >= 8, "{mine:?}");
    for (kind, id, tags) in &mine {
        assert_eq!(tags.get(TAG_DRILL), Some(&run), "{kind} {id} lacks {TAG_DRILL}");
    }
    let names: Vec<&str> = mine.iter().map(|(_, id, _)| id.as_str()).collect();
    for want in ["crosssell-prod-dr", "cross-sell-dr-alb", "cross-sell-dr-alb-tg", "cross-sell-dr-asg"] {
        let drilled = format!("{want}-drill-{short}");
        assert!(names.contains(&drilled.as_str()), "{drilled} not in {names:?}");
        assert!(!names.contains(&want), "the production name {want} was used");
    }
    // the primary region: nothing created or tagged by the run
    let primary = tagged(&w, "us-east-1");
    assert!(of_run(&primary, &run).is_empty(), "{:?}", of_run(&primary, &run));
    let creates_in_primary: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "resource" && e["region"] == "us-east-1" && e["phase"] == "created")
        .collect();
    assert!(creates_in_primary.is_empty(), "{creates_in_primary:?}");

    // the drill record points to the drill's load balancer; the production record does not
    let alb = w.regions["us-west-2"].lbs[&format!("cross-sell-dr-alb-drill-{short}")].item.dns_name.clone();
    let drill = record(&w, &format!("drill-{short}.{RECORD}")).expect("the drill record");
    assert_eq!(drill.alias.as_ref().unwrap().dns_name.trim_end_matches('.'), alb.trim_end_matches('.'));
    if let Some(prod) = record(&w, RECORD) {
        assert!(
            prod.alias.as_ref().is_none_or(|a| a.dns_name.trim_end_matches('.') != alb.trim_end_matches('.')),
            "the production record was moved: {prod:?}"
        );
    }
    // the record check verified the drill record
    let verify =
        events.iter().find(|e| e["type"] == "step_started" && e["step"] == "verify_dns").expect("verify_dns started");
    assert_eq!(verify["params"]["record"], format!("drill-{short}.cross-sell.example-fin.com"));
}

/// Cross-sell with `mode = "drill"` and a `drill_record` template, in a directory of its own (with the procedure it
/// extends).
fn cross_sell_with_drill_record(dir: &Path, template: &str) -> PathBuf {
    let rb = dir.join("cross-sell-drill.toml");
    let text = std::fs::read_to_string(CROSS_SELL).unwrap().replacen(
        "[runbook]\n",
        &format!("[runbook]\nmode = \"drill\"\ndrill_record = \"{template}\"\n"),
        1,
    );
    std::fs::write(&rb, text.replace("extends = \"procedures/", "extends = \"")).unwrap();
    std::fs::copy("runbooks/procedures/regional-failover.toml", dir.join("regional-failover.toml")).unwrap();
    rb
}

#[test]
fn a_drill_writes_the_runbooks_templated_drill_record_and_cleanup_removes_it() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rb = cross_sell_with_drill_record(dir.path(), "recovery-{id}-{record}");
    let rb = rb.to_str().unwrap();
    // the plan shows the templated record
    let plan = drconsole(state.path(), &["plan", rb], &[]);
    plan.expect(0);
    assert!(plan.stdout.contains("the drill record recovery-<id>-cross-sell.example-fin.com"), "{}", plan.stdout);

    let out = sim_run(state.path(), rb, &[]);
    out.expect(0);
    let events = out.events();
    let run = run_id_of(&events);
    let short = drconsole::drill::short_id(&run);
    assert_eq!(events[0]["drill"], true);
    let run_dir = run_dir(state.path());
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["drill_record"], "recovery-{id}-{record}", "the run keeps the template for cleanup");
    let before = world(&run_dir);
    let templated = format!("recovery-{short}-{RECORD}");
    let alb = before.regions["us-west-2"].lbs[&format!("cross-sell-dr-alb-drill-{short}")].item.dns_name.clone();
    let drill = record(&before, &templated).expect("the templated drill record");
    assert_eq!(drill.alias.as_ref().unwrap().dns_name.trim_end_matches('.'), alb.trim_end_matches('.'));
    // neither the default drill record nor the production record was written
    assert!(record(&before, &format!("drill-{short}.{RECORD}")).is_none(), "the default drill record was written");
    if let Some(prod) = record(&before, RECORD) {
        assert!(
            prod.alias.as_ref().is_none_or(|a| a.dns_name.trim_end_matches('.') != alb.trim_end_matches('.')),
            "the production record was moved: {prod:?}"
        );
    }
    // the checks verified the templated record
    let verify =
        events.iter().find(|e| e["type"] == "step_started" && e["step"] == "verify_dns").expect("verify_dns started");
    assert_eq!(verify["params"]["record"], format!("recovery-{short}-cross-sell.example-fin.com"));
    let upsert = events
        .iter()
        .find(|e| e["type"] == "resource" && e["kind"] == "dns-record" && e["phase"] == "created")
        .expect("the drill record was created");
    assert_eq!(upsert["id"], templated);

    // cleanup knows the templated record as the drill's: it goes, the production record stays as it was
    let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    out.expect(0);
    assert!(out.stdout.contains(&format!("removed  dns-record {templated}")), "{}", out.stdout);
    let after = world(&run_dir);
    assert!(record(&after, &templated).is_none(), "the drill record is still there");
    assert_eq!(record(&after, RECORD), record(&before, RECORD));
}

#[test]
fn a_drill_that_would_write_the_primary_region_is_refused_before_it_starts() {
    let state = tempfile::tempdir().unwrap();
    let out = sim_run(state.path(), "runbooks/ebs-swap.toml", &["--drill"]);
    out.expect(4);
    assert!(out.stderr.contains("never writes the primary region"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was created"), "{}", out.stderr);
    assert!(!state.path().join("runs").exists() || std::fs::read_dir(state.path().join("runs")).unwrap().count() == 0);

    // `mode = "drill"` in the runbook: check says so, with the step
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("swap-drill.toml");
    let text = std::fs::read_to_string("runbooks/ebs-swap.toml").unwrap();
    let text = text.replacen("[runbook]\n", "[runbook]\nmode = \"drill\"\n", 1);
    std::fs::write(&rb, text).unwrap();
    let out = drconsole(state.path(), &["check", rb.to_str().unwrap()], &[]);
    out.expect(2);
    assert!(out.stderr.contains("a drill never writes the primary region"), "{}", out.stderr);

    // a typo in the mode is a check error with its location (line 4: the file opens with its `#:schema` line)
    let typo = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(CROSS_SELL).unwrap().replacen("[runbook]\n", "[runbook]\nmode = \"dril\"\n", 1);
    std::fs::write(&typo, text.replace("extends = \"procedures/", "extends = \"")).unwrap();
    std::fs::copy("runbooks/procedures/regional-failover.toml", dir.path().join("regional-failover.toml")).unwrap();
    let out = drconsole(state.path(), &["check", typo.to_str().unwrap()], &[]);
    out.expect(2);
    assert!(out.stderr.contains("typo.toml:4:") && out.stderr.contains("`mode` must be"), "{}", out.stderr);
    assert!(out.stderr.contains("drill"), "{}", out.stderr);
}

#[test]
fn plan_and_headless_say_drill_loudly() {
    let state = tempfile::tempdir().unwrap();
    let out = drconsole(state.path(), &["plan", "--drill", CROSS_SELL], &[]);
    out.expect(0);
    assert!(out.stdout.starts_with("DRILL — a recovery test"), "{}", out.stdout);
    assert!(out.stdout.contains("drill-<id>.cross-sell.example-fin.com"), "{}", out.stdout);
    assert!(out.stdout.contains("crosssell-prod-dr-drill-<id>"), "{}", out.stdout);
    let plain = drconsole(state.path(), &["plan", CROSS_SELL], &[]);
    assert!(!plain.stdout.contains("DRILL"), "{}", plain.stdout);

    let out = drconsole(
        state.path(),
        &[
            "--headless",
            "--sim",
            "--speed",
            "5000",
            "--yes",
            "--recovery-point",
            "latest+ebs=newest",
            "--drill",
            CROSS_SELL,
        ],
        &[],
    );
    out.expect(0);
    let first = out.stdout.lines().find(|l| l.contains("run ")).unwrap_or_default();
    assert!(first.contains("DRILL"), "{}", out.stdout);
}

#[test]
fn cleanup_removes_everything_the_drill_created_and_nothing_else() {
    let state = tempfile::tempdir().unwrap();
    let out = sim_run(state.path(), CROSS_SELL, &["--drill"]);
    out.expect(0);
    let run = run_id_of(&out.events());
    let dir = run_dir(state.path());
    let before = world(&dir);
    let untouched: Vec<_> = tagged(&before, "us-west-2")
        .into_iter()
        .filter(|(_, _, t)| !t.contains_key(TAG_RUN_ID))
        .chain(tagged(&before, "us-east-1"))
        .collect();
    assert!(!of_run(&tagged(&before, "us-west-2"), &run).is_empty());

    // headless without --yes: not confirmed, nothing deleted
    let out = drconsole(state.path(), &["cleanup", &run], &[]);
    out.expect(3);
    assert_eq!(
        of_run(&tagged(&world(&dir), "us-west-2"), &run).len(),
        of_run(&tagged(&before, "us-west-2"), &run).len()
    );

    let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    out.expect(0);
    assert!(out.stdout.contains("left tagged drconsole:run-id="), "{}", out.stdout);
    assert!(out.stdout.contains(": nothing"), "{}", out.stdout);
    let after = world(&dir);
    assert!(of_run(&tagged(&after, "us-west-2"), &run).is_empty(), "{:?}", of_run(&tagged(&after, "us-west-2"), &run));
    // what the run did not create is all still there
    let now: Vec<_> = tagged(&after, "us-west-2").into_iter().chain(tagged(&after, "us-east-1")).collect();
    for r in &untouched {
        assert!(now.contains(r), "{r:?} was deleted");
    }
    // the drill record is gone, the production record is as it was
    let short = drconsole::drill::short_id(&run);
    assert!(record(&after, &format!("drill-{short}.{RECORD}")).is_none());
    assert_eq!(record(&after, RECORD), record(&before, RECORD));
    // the waits: the DB instance was deleting for minutes of simulated time, the NAT gateway about one
    let log: Vec<Value> = std::fs::read_to_string(dir.join("cleanup.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |t: &str, kind: &str| -> jiff::Timestamp {
        let e = log.iter().find(|e| e["type"] == t && e["res"]["kind"] == kind).unwrap_or_else(|| panic!("{t} {kind}"));
        e["ts"].as_str().unwrap().parse().unwrap()
    };
    let db = at("deleted", "rds-instance").duration_since(at("deleting", "rds-instance")).as_secs();
    assert!((5 * 60..=11 * 60).contains(&db), "db deleting {db}s");
    let nat = at("deleted", "nat-gateway").duration_since(at("deleting", "nat-gateway")).as_secs();
    assert!((40..=120).contains(&nat), "nat deleting {nat}s");
    // order: the ASG before the load balancer before the NAT gateway before its Elastic IP
    let pos = |kind: &str| log.iter().position(|e| e["type"] == "deleting" && e["res"]["kind"] == kind).unwrap();
    assert!(pos("auto-scaling-group") < pos("load-balancer"));
    assert!(pos("load-balancer") < pos("target-group"));
    assert!(pos("nat-gateway") < pos("elastic-ip"));

    // again: idempotent, nothing to do, still clean
    let again = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    again.expect(0);
    assert!(again.stdout.contains(": nothing"), "{}", again.stdout);
}

#[test]
fn cleanup_of_a_real_failover_is_refused_without_force_and_deletes_nothing() {
    let state = tempfile::tempdir().unwrap();
    let out = sim_run(state.path(), CROSS_SELL, &[]);
    out.expect(0);
    let run = run_id_of(&out.events());
    let dir = run_dir(state.path());
    let before = std::fs::read_to_string(dir.join("world.json")).unwrap();
    let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    out.expect(4);
    assert!(out.stderr.contains("was not a drill") && out.stderr.contains("Nothing was deleted"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.join("world.json")).unwrap(), before, "nothing deleted");
    let log = std::fs::read_to_string(dir.join("cleanup.jsonl")).unwrap();
    assert!(log.contains("\"type\":\"refused\""), "recorded: {log}");

    // the failover claimed its VPC's zone for the NAT gateway it made: the claim stays after the run
    let claims = |w: &World| -> Vec<String> {
        w.regions["us-west-2"].security_groups.values().map(|g| format!("{} {}", g.name, g.tags[TAG_RUN_ID])).collect()
    };
    assert_eq!(claims(&world(&dir)).len(), 1, "{:?}", claims(&world(&dir)));
    assert!(claims(&world(&dir))[0].starts_with("drconsole-nat-claim-") && claims(&world(&dir))[0].ends_with(&run));

    // with --force: what it created goes (its NAT claim too), the production record stays (it moved traffic)
    let out = drconsole(state.path(), &["cleanup", &run, "--yes", "--force"], &[]);
    out.expect(0);
    assert!(out.stdout.contains("a production DNS record"), "{}", out.stdout);
    let after = world(&dir);
    assert!(claims(&after).is_empty(), "{:?}", claims(&after));
    assert!(of_run(&tagged(&after, "us-west-2"), &run).is_empty());
    assert!(record(&after, RECORD).is_some());
}

#[test]
fn cleanup_killed_after_the_asg_and_after_the_nat_delete_finishes_when_run_again() {
    for kind in ["auto-scaling-group", "nat-gateway"] {
        let state = tempfile::tempdir().unwrap();
        let out = sim_run(state.path(), CROSS_SELL, &["--drill"]);
        out.expect(0);
        let run = run_id_of(&out.events());
        let dir = run_dir(state.path());
        let untouched: Vec<_> =
            tagged(&world(&dir), "us-west-2").into_iter().filter(|(_, _, t)| !t.contains_key(TAG_RUN_ID)).collect();
        let killed =
            drconsole(state.path(), &["cleanup", &run, "--yes"], &[(drconsole::cleanup::KILL_AFTER_ENV, kind)]);
        assert_eq!(killed.code, None, "{kind}: killed by a signal\n{}\n{}", killed.stdout, killed.stderr);
        assert!(!of_run(&tagged(&world(&dir), "us-west-2"), &run).is_empty(), "{kind}: something was left to do");
        let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
        out.expect(0);
        let after = world(&dir);
        assert!(
            of_run(&tagged(&after, "us-west-2"), &run).is_empty(),
            "{kind}: {:?}",
            of_run(&tagged(&after, "us-west-2"), &run)
        );
        let now = tagged(&after, "us-west-2");
        for r in &untouched {
            assert!(now.contains(r), "{kind}: {r:?} was deleted");
        }
    }
}

#[test]
fn cleanup_after_runs_at_the_end_of_a_drill_and_the_report_has_the_recovery_test() {
    let state = tempfile::tempdir().unwrap();
    // the tabletop drill: `mode = "drill"` in the runbook, backups every 10 minutes (the RPO is met)
    let out = sim_run(
        state.path(),
        "runbooks/tabletop/weekly-drill.toml",
        &["--world", "runbooks/tabletop/worlds/weekly-drill.toml", "--cleanup-after"],
    );
    out.expect(0);
    let run = run_id_of(&out.events());
    let dir = run_dir(state.path());
    assert!(of_run(&tagged(&world(&dir), "us-west-2"), &run).is_empty());
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let section = report.split("## Recovery test").nth(1).expect("a Recovery test section");
    let section = format!("## Recovery test{}", section.split("\n## ").next().unwrap());
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["recovery_test"]["verdict"], "passed", "{}", json["recovery_test"]);
    assert_eq!(json["recovery_test"]["cleanup"]["left"], serde_json::json!([]));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{64}\b", "<sha256>");
    settings.add_filter(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>");
    settings.add_filter(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b", "<run>");
    settings.add_filter(r"drill-[0-9a-z]{4}\b", "drill-<id>");
    settings.add_filter(r"\b(nat|vol|snap|ami|eipalloc|i|rds|db)-[0-9a-f]{8,17}\b", "$1-<id>");
    settings.add_filter(r"\d+h\d\dm|\d+m\d\ds|\d+s\b", "<dur>");
    settings.bind(|| insta::assert_snapshot!("recovery_test_section", section));

    // --cleanup-after without a drill is a usage error, before anything starts
    let out = sim_run(state.path(), CROSS_SELL, &["--cleanup-after"]);
    out.expect(2);
    assert!(out.stderr.contains("--cleanup-after only applies to a drill"), "{}", out.stderr);
}

#[test]
fn cleanup_puts_the_routes_the_drill_set_back_and_leaves_no_blackhole() {
    let state = tempfile::tempdir().unwrap();
    let out = sim_run(state.path(), CROSS_SELL, &["--drill"]);
    out.expect(0);
    let events = out.events();
    let run = run_id_of(&events);
    let dir = run_dir(state.path());
    let before = world(&dir);
    // the shared VPC's private route tables had no default route: the drill added one to its NAT gateway
    let changed: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "resource" && e["kind"] == "route" && e["phase"] == "changed")
        .map(|e| {
            assert!(e["state"].as_str().unwrap().ends_with(" (was none)"), "the journal says what was there: {e}");
            e["id"].as_str().unwrap().split(' ').next().unwrap().to_string()
        })
        .collect();
    assert!(!changed.is_empty(), "the drill routed nothing through its NAT gateway");
    let drill_nats: Vec<String> = of_run(&tagged(&before, "us-west-2"), &run)
        .into_iter()
        .filter(|(k, _, _)| k == "nat")
        .map(|(_, id, _)| id.clone())
        .collect();
    let tables = &before.regions["us-west-2"].route_tables;
    for t in &changed {
        let default = tables[t].routes.iter().find(|r| r.destination == "0.0.0.0/0").expect("a default route");
        assert!(drill_nats.contains(default.nat_gateway_id.as_ref().unwrap()), "{default:?} not via {drill_nats:?}");
    }

    let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    out.expect(0);
    assert!(out.stdout.contains("restored route rtb-"), "{}", out.stdout);
    assert!(out.stdout.contains("deleted the route the run added"), "{}", out.stdout);
    let after = world(&dir);
    let r = &after.regions["us-west-2"];
    for (id, t) in &r.route_tables {
        let mut want = tables[id].clone();
        if changed.contains(id) {
            want.routes.retain(|x| x.destination != "0.0.0.0/0");
            // as provisioned: the VPC's local route only
            assert_eq!(want.routes.len(), 1, "{want:?}");
        }
        assert_eq!(t, &want, "route table {id} is not as it was before the drill");
        // no route left to a NAT gateway that is gone (a blackhole)
        for route in &t.routes {
            if let Some(n) = &route.nat_gateway_id {
                assert!(r.nats.get(n).is_some_and(|x| x.tl.state(jiff::Timestamp::MAX) == "available"), "{id}: {n}");
            }
        }
    }
    // run again: already as it was, nothing restored twice
    let again = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    again.expect(0);
    assert!(!again.stdout.contains("restored"), "{}", again.stdout);
    assert_eq!(world(&dir).regions["us-west-2"].route_tables, r.route_tables);
}

#[test]
fn a_drill_leaves_the_shared_launch_templates_default_version_alone_and_cleanup_deletes_its_version() {
    const LT: &str = "cross-sell-web-dr";
    let state = tempfile::tempdir().unwrap();
    let out = sim_run(state.path(), CROSS_SELL, &["--drill"]);
    out.expect(0);
    let events = out.events();
    let run = run_id_of(&events);
    let short = drconsole::drill::short_id(&run);
    let resources = |kind: &str, phase: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "resource" && e["kind"] == kind && e["phase"] == phase)
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let added = resources("launch-template-version", "created");
    assert_eq!(added.len(), 1, "{added:?}");
    let version: u64 = added[0].strip_prefix(&format!("{LT}:")).unwrap().parse().unwrap();
    assert!(resources("launch-template", "changed").is_empty(), "the drill changed the launch template");
    let dir = run_dir(state.path());
    let w = world(&dir);
    let r = &w.regions["us-west-2"];
    let lt = &r.launch_templates[LT];
    assert!(lt.default_version < version, "the default moved to the drill's version: {lt:?}");
    // the drill's group launches the version it added, by number; its instances run it
    let asg = &r.asgs[&format!("cross-sell-dr-asg-drill-{short}")];
    assert_eq!(asg.group.launch_template_version, version.to_string());
    assert!(!asg.instances.is_empty() && asg.instances.iter().all(|i| i.version == version), "{:?}", asg.instances);
    let default_before = (lt.default_version, lt.image_id.clone());

    let out = drconsole(state.path(), &["cleanup", &run, "--yes"], &[]);
    out.expect(0);
    assert!(out.stdout.contains(&format!("removed  launch-template-version {LT}:{version}")), "{}", out.stdout);
    let w = world(&dir);
    let lt = &w.regions["us-west-2"].launch_templates[LT];
    assert_eq!((lt.default_version, lt.image_id.clone()), default_before, "cleanup moved the default");
    let idx = usize::try_from(version - 1).unwrap();
    assert!(lt.version_images[idx].is_empty(), "the drill's version is still there: {lt:?}");
}

/// Runs a runbook on a shared simulated world with the engine (as headless: confirmations approved, the newest
/// recovery point, manual tasks done), to its end.
async fn engine_run(
    rb: &drconsole::runbook::Runbook,
    sim: &std::sync::Arc<drconsole::cloud::sim::Sim>,
    run_id: &str,
) -> (drconsole::engine::Outcome, Vec<drconsole::engine::Event>) {
    use drconsole::engine::{Command, Engine, EventKind, Prompt, RunConfig};
    let cfg = RunConfig {
        run_id: run_id.into(),
        seed: 7,
        recovery_point: Some("latest+ebs=newest".into()),
        backend: "sim".into(),
        cloud: Some(std::sync::Arc::new(drconsole::cloud::Cloud::from_all("sim", sim.clone()))),
        ..RunConfig::default()
    };
    let mut h = Engine::spawn(
        std::sync::Arc::new(rb.clone()),
        drconsole::actions::Registry::builtin(),
        cfg,
        sim.clock().clone(),
    );
    let mut events = Vec::new();
    while let Some(ev) = h.events.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. }
            | EventKind::OperatorRequest { step, prompt: Prompt::Done { .. } } => {
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
    (h.join.await.unwrap().outcome, events)
}

/// (kind, id) of the resources a run's events say it `phase`d (created, found).
fn resources(events: &[drconsole::engine::Event], phase: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            drconsole::engine::EventKind::Resource { phase: p, kind, id, .. } if p == phase => {
                Some((kind.clone(), id.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_real_failover_after_a_drill_takes_none_of_the_drills_copies_as_its_own() {
    use drconsole::engine::{EventKind, Outcome};
    let registry = drconsole::actions::Registry::builtin();
    let real = drconsole::runbook::load(Path::new(CROSS_SELL), &registry).unwrap();
    let mut drill = real.clone();
    drill.meta.drill = true;
    let start: jiff::Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
    let sim = std::sync::Arc::new(drconsole::cloud::sim::Sim::for_runbook(
        drconsole::engine::Clock::starting_at(start, 1.0),
        7,
        &real,
        None,
    ));

    let (outcome, drill_events) = engine_run(&drill, &sim, "20261121-120000-dr01").await;
    assert_eq!(outcome, Outcome::Recovered);
    let drill_made = resources(&drill_events, "created");
    for kind in ["rds-snapshot", "ebs-snapshot", "ami", "launch-template-version"] {
        assert!(drill_made.iter().any(|(k, _)| k == kind), "the drill made no {kind}: {drill_made:?}");
    }

    let (outcome, real_events) = engine_run(&real, &sim, "20261121-130000-re01").await;
    assert_eq!(outcome, Outcome::Recovered);
    // nothing the real failover found (and used) is something the drill made
    let found = resources(&real_events, "found");
    let taken: Vec<&(String, String)> = found.iter().filter(|r| drill_made.contains(r)).collect();
    assert!(taken.is_empty(), "the real failover took the drill's {taken:?}");
    // the recovery point it chose is not the drill's copy
    let chosen = real_events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StepSucceeded { step, outputs, .. } if step == "pick_db" => {
                outputs["id"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .expect("pick_db chose a point");
    assert!(!drill_made.iter().any(|(_, id)| *id == chosen), "chose the drill's copy {chosen}");
    // it made its own copies and its own launch template version
    let made = resources(&real_events, "created");
    for kind in ["rds-snapshot", "ebs-snapshot", "ami", "launch-template-version"] {
        let mine: Vec<&(String, String)> = made.iter().filter(|(k, _)| k == kind).collect();
        assert!(!mine.is_empty(), "the real failover made no {kind} of its own: {made:?}");
        assert!(mine.iter().all(|r| !drill_made.contains(r)), "{kind}: {mine:?}");
    }
}
