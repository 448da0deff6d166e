//! A drill of Cross-sell on moto server, on the customer's world as their tooling built it
//! (tests/support/customer_world.rs: no drconsole tag anywhere): it recovers in the secondary region, the production
//! record and the primary region are unchanged; a real failover started while the drill's stack is up recovers with
//! resources of its own and moves the production record; then `drconsole cleanup` of the drill leaves nothing tagged
//! with its run id in either region and leaves the failover's stack and routes alone; a pre-existing untagged volume
//! and Elastic IP in the secondary region survive. Killed after the ASG delete and after the NAT gateway delete, the
//! cleanup finishes when run again, keeps the customer's own ASG and NAT gateway, and puts the shared VPC's route
//! tables back as they were. Independent SDK clients check every claim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::aws_world;
use crate::customer_world;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_world::{APPS, PRIMARY, SECONDARY, Sdk};
use support::fault_proxy::{Fault, FaultConfig, FaultProxy, RequestInfo};
use support::moto::MotoServer;

const RUN_TAG: &str = "drconsole:run-id";

/// AWS Backup's recovery-point listing answered from the customer world's recorded shape (moto has none), and
/// DeleteLaunchTemplateVersions, which moto 5.2.5 lacks, answered as AWS answers an operation it does not support
/// (400 `UnsupportedOperation`, not retried). moto's own answer, a 500 with no XML, made the SDK retry it 8 times
/// and the cleanup 5 times more: four minutes of each cleanup test, to reach the same FAILED line.
fn faults(body: String) -> FaultConfig {
    FaultConfig::passthrough()
        .with_hook(move |r: &RequestInfo| {
            (r.region.as_deref() == Some(SECONDARY) && r.method == "GET" && r.path.contains("/recovery-points"))
                .then(|| Fault::Respond { status: 200, content_type: "application/json".into(), body: body.clone() })
        })
        .force_error(
            "DeleteLaunchTemplateVersions",
            400,
            "UnsupportedOperation",
            "DeleteLaunchTemplateVersions is not emulated by moto 5.2.5 (answered by the test's proxy)",
        )
}

fn drconsole(state: &Path, args: &[String]) -> (i32, String, String) {
    drconsole_env(state, args, &[])
}

/// `-1` for the exit code when a signal ended it.
fn drconsole_env(state: &Path, args: &[String], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = aws_world::drconsole_cmd();
    cmd.env("DRCONSOLE_STATE_DIR", state).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run drconsole");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Everything in a region carrying `drconsole:run-id = run`, by independent describes: (kind, id).
async fn tagged(endpoint: &str, region: &str, run: &str) -> BTreeSet<(String, String)> {
    tagged_with(endpoint, region, RUN_TAG, run).await
}

/// Everything in a region carrying the tag `key = run`, by independent describes: (kind, id).
async fn tagged_with(endpoint: &str, region: &str, key: &str, run: &str) -> BTreeSet<(String, String)> {
    let s = Sdk::new(endpoint, region).await;
    let f = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{key}")).values(run).build();
    let mut out = BTreeSet::new();
    for v in s.ec2.describe_volumes().filters(f.clone()).send().await.unwrap().volumes() {
        out.insert(("volume".into(), v.volume_id().unwrap().to_string()));
    }
    for x in s.ec2.describe_snapshots().owner_ids("self").filters(f.clone()).send().await.unwrap().snapshots() {
        out.insert(("snapshot".into(), x.snapshot_id().unwrap().to_string()));
    }
    for x in s.ec2.describe_images().owners("self").filters(f.clone()).send().await.unwrap().images() {
        out.insert(("ami".into(), x.image_id().unwrap().to_string()));
    }
    // moto 5.2.5 ignores a tag filter on DescribeNatGateways: the tags are checked here
    for x in s.ec2.describe_nat_gateways().filter(f.clone()).send().await.unwrap().nat_gateways() {
        let has = x.tags().iter().any(|t| t.key() == Some(key) && t.value() == Some(run));
        if has && x.state().map(|s| s.as_str()) != Some("deleted") {
            out.insert(("nat".into(), x.nat_gateway_id().unwrap().to_string()));
        }
    }
    for x in s.ec2.describe_addresses().filters(f.clone()).send().await.unwrap().addresses() {
        out.insert(("eip".into(), x.allocation_id().unwrap().to_string()));
    }
    for r in s.ec2.describe_instances().filters(f.clone()).send().await.unwrap().reservations() {
        for i in r.instances() {
            let st = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
            if st != "terminated" && st != "shutting-down" {
                out.insert(("instance".into(), i.instance_id().unwrap().to_string()));
            }
        }
    }
    for d in s.rds.describe_db_instances().send().await.unwrap().db_instances() {
        if d.tag_list().iter().any(|t| t.key() == Some(key) && t.value() == Some(run)) {
            out.insert(("db".into(), d.db_instance_identifier().unwrap().to_string()));
        }
    }
    for d in s.rds.describe_db_snapshots().send().await.unwrap().db_snapshots() {
        if d.tag_list().iter().any(|t| t.key() == Some(key) && t.value() == Some(run)) {
            out.insert(("db-snapshot".into(), d.db_snapshot_identifier().unwrap().to_string()));
        }
    }
    let lbs = s.elb.describe_load_balancers().send().await.unwrap();
    let tgs = s.elb.describe_target_groups().send().await.unwrap();
    let arns: Vec<(String, String)> = lbs
        .load_balancers()
        .iter()
        .map(|l| ("lb".to_string(), l.load_balancer_arn().unwrap().to_string()))
        .chain(tgs.target_groups().iter().map(|t| ("tg".to_string(), t.target_group_arn().unwrap().to_string())))
        .collect();
    for (kind, arn) in arns {
        let t = s.elb.describe_tags().resource_arns(&arn).send().await.unwrap();
        if t.tag_descriptions().iter().flat_map(|d| d.tags()).any(|t| t.key() == Some(key) && t.value() == Some(run)) {
            out.insert((kind, arn));
        }
    }
    for g in s.asg.describe_auto_scaling_groups().send().await.unwrap().auto_scaling_groups() {
        if g.tags().iter().any(|t| t.key() == Some(key) && t.value() == Some(run)) {
            out.insert(("asg".into(), g.auto_scaling_group_name().unwrap().to_string()));
        }
    }
    out
}

/// The zone's records as (name, type, alias target or values), for before/after comparisons.
async fn records(endpoint: &str, zone: &str) -> Vec<(String, String, String)> {
    let s = Sdk::new(endpoint, PRIMARY).await;
    let out = s.r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .map(|r| {
            let to = r.alias_target().map(|a| a.dns_name().to_string()).unwrap_or_else(|| {
                r.resource_records().iter().map(|v| v.value().to_string()).collect::<Vec<_>>().join(",")
            });
            (r.name().to_string(), r.r#type().as_str().to_string(), to)
        })
        .collect()
}

/// A VPC's route tables: id → its routes as `destination → target (state)`, sorted.
async fn route_tables(endpoint: &str, vpc: &str) -> BTreeMap<String, Vec<String>> {
    let s = Sdk::new(endpoint, SECONDARY).await;
    let f = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
    let out = s.ec2.describe_route_tables().filters(f).send().await.unwrap();
    out.route_tables()
        .iter()
        .map(|t| {
            let mut routes: Vec<String> = t
                .routes()
                .iter()
                .map(|r| {
                    let to = r
                        .nat_gateway_id()
                        .or(r.gateway_id())
                        .or(r.transit_gateway_id())
                        .or(r.instance_id())
                        .unwrap_or("?");
                    let dest = r.destination_cidr_block().unwrap_or_default();
                    format!("{dest} → {to} ({:?})", r.state())
                })
                .collect();
            routes.sort();
            (t.route_table_id().unwrap().to_string(), routes)
        })
        .collect()
}

/// The primary region's shape: volumes, snapshots, AMIs, instances, DB instances and snapshots (ids).
async fn primary_shape(endpoint: &str) -> BTreeSet<String> {
    let s = Sdk::new(endpoint, PRIMARY).await;
    let mut out = BTreeSet::new();
    for v in s.ec2.describe_volumes().send().await.unwrap().volumes() {
        out.insert(format!("vol {} {:?}", v.volume_id().unwrap(), v.state()));
    }
    for x in s.ec2.describe_snapshots().owner_ids("self").send().await.unwrap().snapshots() {
        out.insert(format!("snap {}", x.snapshot_id().unwrap()));
    }
    for x in s.ec2.describe_images().owners("self").send().await.unwrap().images() {
        out.insert(format!("ami {}", x.image_id().unwrap()));
    }
    for d in s.rds.describe_db_instances().send().await.unwrap().db_instances() {
        out.insert(format!("db {} {:?}", d.db_instance_identifier().unwrap(), d.db_instance_status()));
    }
    for d in s.rds.describe_db_snapshots().send().await.unwrap().db_snapshots() {
        out.insert(format!("dbsnap {}", d.db_snapshot_identifier().unwrap()));
    }
    for x in s.ec2.describe_nat_gateways().send().await.unwrap().nat_gateways() {
        out.insert(format!("nat {}", x.nat_gateway_id().unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_cross_sell_on_moto_touches_no_production_a_real_failover_during_it_has_its_own_and_cleanup_leaves_nothing()
 {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let proxy = FaultProxy::start(moto.endpoint(), faults(w.recovery_points_body.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let runbook = aws_world::runbooks_for_moto(tmp.path(), None).join(APPS[0].runbook);
    let state = tempfile::tempdir().unwrap();

    // pre-existing, untagged resources of kinds the drill creates: they must survive the cleanup
    let west = Sdk::new(moto.endpoint(), SECONDARY).await;
    let keep_vol = west
        .ec2
        .create_volume()
        .availability_zone(format!("{SECONDARY}a"))
        .size(1)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    let keep_eip =
        west.ec2.allocate_address().domain("vpc".into()).send().await.unwrap().allocation_id().unwrap().to_string();
    let records_before = records(moto.endpoint(), &w.zone_id).await;
    let primary_before = primary_shape(moto.endpoint()).await;

    let mut args: Vec<String> = ["--headless", "--json", "--yes", "--recovery-point", "latest", "--drill"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--endpoint-url".to_string(), proxy.endpoint().to_string()]);
    args.extend(customer_world::vars(&w, APPS[0].name));
    args.push(runbook.display().to_string());
    let (code, stdout, stderr) = drconsole(state.path(), &args);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let start = events.iter().find(|e| e["type"] == "run_started").unwrap();
    assert_eq!(start["drill"], true);
    let run = start["run_id"].as_str().unwrap().to_string();
    let short = drconsole::drill::short_id(&run);

    // recovered in the secondary: the drill's database and load balancer, by independent describes
    let db = west
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("crosssell-prod-dr-drill-{short}"))
        .send()
        .await
        .unwrap();
    let tags = db.db_instances()[0].tag_list();
    assert!(tags.iter().any(|t| t.key() == Some("drconsole:drill") && t.value() == Some(run.as_str())), "{tags:?}");
    let made = tagged(moto.endpoint(), SECONDARY, &run).await;
    assert!(made.iter().any(|(k, _)| k == "lb") && made.iter().any(|(k, _)| k == "asg"), "{made:?}");
    assert!(made.iter().any(|(k, _)| k == "nat"), "{made:?}");
    // production untouched: the zone changed only by the drill record; the primary region as it was
    let records_after = records(moto.endpoint(), &w.zone_id).await;
    let added: Vec<_> = records_after.iter().filter(|r| !records_before.contains(r)).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(added[0].0.starts_with(&format!("drill-{short}.cross-sell.")), "{added:?}");
    assert!(records_before.iter().all(|r| records_after.contains(r)), "a production record changed");
    assert_eq!(primary_shape(moto.endpoint()).await, primary_before, "the primary region changed");
    assert!(tagged(moto.endpoint(), PRIMARY, &run).await.is_empty());

    // a real failover started while the drill's stack is still up: it recovers with resources of its own and
    // moves the production record; nothing of the drill's is found, tagged or used as its own
    let drill_events = events;
    let mut drill_ids: BTreeSet<String> = made.iter().map(|(_, id)| id.clone()).collect();
    drill_ids.extend(
        drill_events
            .iter()
            .filter(|e| e["type"] == "resource" && e["phase"] == "created")
            .filter_map(|e| e["id"].as_str().map(str::to_string)),
    );
    let is_drills = |id: &str| drill_ids.iter().any(|d| d == id || d.contains(&format!("/{id}/")));
    let mut real: Vec<String> =
        ["--headless", "--json", "--yes", "--recovery-point", "latest"].iter().map(|s| s.to_string()).collect();
    real.extend(["--endpoint-url".to_string(), proxy.endpoint().to_string()]);
    real.extend(customer_world::vars(&w, APPS[0].name));
    real.push(runbook.display().to_string());
    let (code, stdout, stderr) = drconsole(state.path(), &real);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let fo_events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let fo_start = fo_events.iter().find(|e| e["type"] == "run_started").unwrap();
    assert_ne!(fo_start["drill"], true, "the failover is no drill");
    let fo = fo_start["run_id"].as_str().unwrap().to_string();
    assert_ne!(fo, run);
    let theirs = tagged(moto.endpoint(), SECONDARY, &fo).await;
    for kind in ["db", "lb", "tg", "asg", "nat", "eip"] {
        assert!(theirs.iter().any(|(k, _)| k == kind), "the failover made no {kind} of its own: {theirs:?}");
    }
    let shared: Vec<_> = theirs.iter().filter(|(_, id)| is_drills(id)).collect();
    assert!(shared.is_empty(), "the failover tagged the drill's resources as its own: {shared:?}");
    assert!(tagged_with(moto.endpoint(), SECONDARY, "drconsole:drill", &fo).await.is_empty());
    // nor a launch template version the drill added to the shared template (its description names the drill)
    let lt_reused: Vec<String> = fo_events
        .iter()
        .filter(|e| e["type"] == "resource" && e["phase"] == "found" && e["kind"] == "launch-template-version")
        .filter_map(|e| e["id"].as_str().filter(|id| is_drills(id)).map(str::to_string))
        .collect();
    assert!(lt_reused.is_empty(), "the failover reused the drill's launch template versions {lt_reused:?}");
    let used: Vec<String> = fo_events
        .iter()
        .filter(|e| e["type"] == "resource" && (e["phase"] == "found" || e["phase"] == "state"))
        .filter(|e| e["id"].as_str().is_some_and(&is_drills))
        .map(|e| e.to_string())
        .collect();
    assert!(used.is_empty(), "the failover used the drill's resources: {used:#?}");
    assert_eq!(tagged(moto.endpoint(), SECONDARY, &run).await, made, "the drill's resources changed hands");
    // its database and load balancer carry the production names; the production record points at its load balancer
    west.rds.describe_db_instances().db_instance_identifier("crosssell-prod-dr").send().await.unwrap();
    let fo_lb = west.elb.describe_load_balancers().names("cross-sell-dr-alb").send().await.unwrap();
    let fo_dns = fo_lb.load_balancers()[0].dns_name().unwrap().trim_end_matches('.').to_ascii_lowercase();
    let records_failover = records(moto.endpoint(), &w.zone_id).await;
    let prod = records_failover
        .iter()
        .find(|r| r.0.trim_end_matches('.') == "cross-sell.example-fin.com" && r.1 == "A")
        .unwrap_or_else(|| panic!("no production record: {records_failover:?}"));
    assert_eq!(prod.2.trim_end_matches('.').to_ascii_lowercase(), fo_dns, "{prod:?}");
    let routes_failover = route_tables(moto.endpoint(), &w.vpc).await;

    // the drill's cleanup: nothing left tagged with its run id in either region; the failover's stack untouched
    let (code, out, err) = drconsole(state.path(), &["cleanup".to_string(), run.clone(), "--yes".to_string()]);
    // moto 5.2.5 does not implement DeleteLaunchTemplateVersions (the proxy answers UnsupportedOperation): that one
    // delete fails and the cleanup says so (exit 1); everything else is gone
    let failed: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("FAILED")).collect();
    assert!(failed.iter().all(|l| l.contains("launch-template-version")), "{err}\n{out}");
    assert_eq!(code, if failed.is_empty() { 0 } else { 1 }, "{err}\n{out}");
    assert!(out.contains(&format!("left tagged drconsole:run-id={run}: nothing")), "{out}");
    assert!(out.contains("removed  rds-instance crosssell-prod-dr-drill-"), "{out}");
    assert!(out.contains("removed  nat-gateway"), "{out}");
    for region in [PRIMARY, SECONDARY] {
        let left = tagged(moto.endpoint(), region, &run).await;
        assert!(left.is_empty(), "{region}: {left:?}\n{out}");
    }
    assert_eq!(tagged(moto.endpoint(), SECONDARY, &fo).await, theirs, "the drill's cleanup touched the failover's");
    let drill_record = format!("drill-{short}.cross-sell.");
    let without_drill: Vec<_> = records_failover.iter().filter(|r| !r.0.starts_with(&drill_record)).cloned().collect();
    assert_eq!(records(moto.endpoint(), &w.zone_id).await, without_drill, "the drill record is gone, nothing else");
    assert_eq!(route_tables(moto.endpoint(), &w.vpc).await, routes_failover, "the failover's routes were changed");
    assert_eq!(primary_shape(moto.endpoint()).await, primary_before);
    // the untagged resources survived
    let v = west.ec2.describe_volumes().volume_ids(&keep_vol).send().await.unwrap();
    assert_eq!(v.volumes().len(), 1);
    let a = west.ec2.describe_addresses().allocation_ids(&keep_eip).send().await.unwrap();
    assert_eq!(a.addresses().len(), 1);
}

/// The drill's command line on the customer world (`--drill` and the runbook's variables).
fn drill_args(w: &customer_world::CustomerWorld, proxy: &FaultProxy, runbook: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["--headless", "--json", "--yes", "--recovery-point", "latest", "--drill"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--endpoint-url".to_string(), proxy.endpoint().to_string()]);
    args.extend(customer_world::vars(w, APPS[0].name));
    args.push(runbook.display().to_string());
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_on_moto_killed_after_the_asg_and_the_nat_delete_finishes_keeps_the_customers_and_restores_routes() {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let proxy = FaultProxy::start(moto.endpoint(), faults(w.recovery_points_body.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let runbook = aws_world::runbooks_for_moto(tmp.path(), None).join(APPS[0].runbook);
    let state = tempfile::tempdir().unwrap();

    // the customer's own ASG (their launch template, the shared VPC's private subnets) and a NAT gateway of
    // theirs in another VPC, made as their tooling makes them: untagged by drconsole; both must survive the cleanup
    let west = Sdk::new(moto.endpoint(), SECONDARY).await;
    let lt = aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
        .launch_template_name("cross-sell-web-dr")
        .version("$Default")
        .build();
    west.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("cross-sell-batch")
        .launch_template(lt)
        .min_size(1)
        .max_size(1)
        .desired_capacity(1)
        .vpc_zone_identifier(w.private.join(","))
        .send()
        .await
        .unwrap();
    let tools = aws_world::network(&west.ec2, SECONDARY, "10.220", "tools-vpc").await;
    let eip =
        west.ec2.allocate_address().domain("vpc".into()).send().await.unwrap().allocation_id().unwrap().to_string();
    let keep_nat = west
        .ec2
        .create_nat_gateway()
        .subnet_id(&tools.public[0])
        .allocation_id(&eip)
        .send()
        .await
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string();
    let routes_before = route_tables(moto.endpoint(), &w.vpc).await;

    let (code, stdout, stderr) = drconsole(state.path(), &drill_args(&w, &proxy, &runbook));
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let run = events.iter().find(|e| e["type"] == "run_started").unwrap()["run_id"].as_str().unwrap().to_string();
    let made = tagged(moto.endpoint(), SECONDARY, &run).await;
    assert!(made.iter().any(|(k, _)| k == "asg") && made.iter().any(|(k, _)| k == "nat"), "{made:?}");
    // the drill routed the shared VPC's private subnets through its NAT gateway
    assert_ne!(route_tables(moto.endpoint(), &w.vpc).await, routes_before, "the drill changed no route");

    // killed right after the ASG delete, then (resumed) right after the NAT gateway delete
    let cleanup = ["cleanup".to_string(), run.clone(), "--yes".to_string()];
    for kind in ["auto-scaling-group", "nat-gateway"] {
        let (code, out, err) = drconsole_env(state.path(), &cleanup, &[(drconsole::cleanup::KILL_AFTER_ENV, kind)]);
        assert_eq!(code, -1, "{kind}: killed by a signal\n{out}\n{err}");
        let left = tagged(moto.endpoint(), SECONDARY, &run).await;
        assert!(!left.is_empty(), "{kind}: something was left to do");
        assert!(left.iter().all(|(k, _)| k != "asg"), "{kind}: the ASG delete was recorded before the kill: {left:?}");
    }
    let (code, out, err) = drconsole(state.path(), &cleanup);
    // moto 5.2.5 lacks DeleteLaunchTemplateVersions: that delete fails (exit 1), nothing else
    let failed: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("FAILED")).collect();
    assert!(failed.iter().all(|l| l.contains("launch-template-version")), "{err}\n{out}");
    assert_eq!(code, if failed.is_empty() { 0 } else { 1 }, "{err}\n{out}");
    assert!(out.contains(&format!("left tagged drconsole:run-id={run}: nothing")), "{out}");
    for region in [PRIMARY, SECONDARY] {
        let left = tagged(moto.endpoint(), region, &run).await;
        assert!(left.is_empty(), "{region}: {left:?}\n{out}");
    }
    // the customer's survive: their ASG, their NAT gateway and its address
    let g = west.asg.describe_auto_scaling_groups().auto_scaling_group_names("cross-sell-batch").send().await.unwrap();
    assert_eq!(g.auto_scaling_groups().len(), 1, "the customer's ASG was deleted");
    let n = west.ec2.describe_nat_gateways().nat_gateway_ids(&keep_nat).send().await.unwrap();
    assert_eq!(n.nat_gateways()[0].state().map(|s| s.as_str()), Some("available"), "{n:?}");
    assert_eq!(west.ec2.describe_addresses().allocation_ids(&eip).send().await.unwrap().addresses().len(), 1);
    // the shared VPC's route tables are as they were before the drill: no route left to the deleted NAT gateway
    assert_eq!(route_tables(moto.endpoint(), &w.vpc).await, routes_before, "{out}");
}
