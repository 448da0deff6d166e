//! Shared resources are shared (issue 22), on moto: the five applications of the customer's world recover into its
//! one DR VPC — as one incident in one process, and as five `drconsole --headless` processes started together (five
//! engineers, one application each) — and the VPC gets one NAT gateway per zone, every application's private routes
//! through it, and a rerun sends no mutating call. The processes race for real: the fault proxy holds the winner's
//! CreateNatGateway long enough that every process finds no NAT gateway and tries the claim (CreateSecurityGroup of
//! the zone's claim name, which moto, as AWS, lets one caller create); the test asserts the five claims, not timing.
//! The claim stays in the VPC (a rule-less security group tagged with its run) until that run's cleanup.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::aws_world::{self, APPS, SECONDARY};
use crate::customer_world::{self, CustomerWorld};
use crate::support::fault_proxy::{Fault, FaultConfig, FaultProxy, RequestInfo, is_mutating};
use crate::support::moto::MotoServer;
use drconsole::cloud::aws::{Aws, AwsOptions, Clients};

/// How long the proxy holds the first CreateNatGateway: the other processes look for a NAT gateway, find none and
/// try the claim meanwhile (their first look after losing it comes 5 s later).
const NAT_HOLD: Duration = Duration::from_secs(12);

/// One headless run's output.
struct Run {
    code: i32,
    events: Vec<serde_json::Value>,
    stderr: String,
}

impl Run {
    fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
        self.events.iter().filter(move |e| e["type"] == t)
    }
    fn resources(&self, phase: &str, kind: &str) -> Vec<String> {
        self.of_type("resource")
            .filter(|e| e["phase"] == phase && e["kind"] == kind)
            .map(|e| e["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    fn dump(&self) -> String {
        let lines: Vec<String> =
            self.events.iter().filter(|e| e["type"] != "projection").map(|e| e.to_string()).collect();
        format!("exit {}\nstderr: {}\n{}", self.code, self.stderr, lines.join("\n"))
    }
}

fn command(state: &Path, endpoint: &str, runbook: &Path) -> std::process::Command {
    let mut c = aws_world::drconsole_cmd();
    c.env("DRCONSOLE_STATE_DIR", state)
        .args(["--headless", "--json", "--yes", "--recovery-point", "latest", "--endpoint-url", endpoint])
        .arg(runbook);
    c
}

fn finish(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        events: String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts one process per runbook at once, each with its own state dir (its own host), and waits for all.
fn run_processes(endpoint: &str, runbooks: &[PathBuf]) -> Vec<Run> {
    let states: Vec<tempfile::TempDir> = runbooks.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<std::process::Child> = runbooks
        .iter()
        .zip(&states)
        .map(|(rb, st)| {
            command(st.path(), endpoint, rb).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn")
        })
        .collect();
    children.into_iter().map(|c| finish(c.wait_with_output().expect("wait"))).collect()
}

/// The customer's runbooks with their `[vars]` in the files (an incident takes no per-application `--var`).
fn runbooks(dir: &Path, w: &CustomerWorld) -> Vec<PathBuf> {
    APPS.iter()
        .map(|app| {
            let path = dir.join(app.runbook);
            let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let vars = doc.entry("vars").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let vars = vars.as_table_mut().unwrap();
            for pair in customer_world::vars(w, app.name).iter().filter(|v| *v != "--var") {
                let (k, v) = pair.split_once('=').unwrap();
                vars.insert(k.into(), toml::Value::String(v.into()));
            }
            std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
            path
        })
        .collect()
}

/// AWS Backup's recovery points of the customer world (moto has none), and the first CreateNatGateway held
/// [`NAT_HOLD`] when `hold_nat`.
fn faults(w: &CustomerWorld, hold_nat: bool) -> FaultConfig {
    let body = w.recovery_points_body.clone();
    let held = std::sync::atomic::AtomicBool::new(false);
    FaultConfig::passthrough()
        .with_hook(move |r: &RequestInfo| {
            if hold_nat && r.operation == "CreateNatGateway" && !held.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Some(Fault::Delay(NAT_HOLD));
            }
            (r.region.as_deref() == Some(SECONDARY) && r.method == "GET" && r.path.contains("/recovery-points"))
                .then(|| Fault::Respond { status: 200, content_type: "application/json".into(), body: body.clone() })
        })
        // moto 5.2.5 lacks it, and its 500 made the SDK and the cleanup retry for 3.5 minutes per cleanup
        // (drill_moto.rs): answered as AWS answers an operation it does not support
        .force_error(
            "DeleteLaunchTemplateVersions",
            400,
            "UnsupportedOperation",
            "DeleteLaunchTemplateVersions is not emulated by moto 5.2.5 (answered by the test's proxy)",
        )
}

/// The shared VPC as independent clients see it: its NAT gateways (id → subnet), the private route tables' routes,
/// and the claims left in it.
async fn shared_vpc(
    endpoint: &str,
    w: &CustomerWorld,
) -> (BTreeMap<String, String>, aws_world::Inventory, Vec<String>) {
    let s = aws_world::Sdk::new(endpoint, SECONDARY).await;
    let nats = s
        .ec2
        .describe_nat_gateways()
        .send()
        .await
        .unwrap()
        .nat_gateways()
        .iter()
        .filter(|n| n.vpc_id() == Some(w.vpc.as_str()))
        .map(|n| (n.nat_gateway_id().unwrap().to_string(), n.subnet_id().unwrap().to_string()))
        .collect();
    let claims = s
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&w.vpc).build())
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .filter(|g| g.group_name().is_some_and(|n| n.starts_with("drconsole-nat-claim-")))
        .map(|g| g.group_id().unwrap().to_string())
        .collect();
    (nats, aws_world::inventory(endpoint, SECONDARY).await, claims)
}

/// One NAT gateway for the VPC (the runbooks' default: not per zone), in a public subnet, every private route table
/// through it, the main table untouched, the zone's one claim kept (the claimant's cleanup removes it).
async fn check_one_nat(endpoint: &str, w: &CustomerWorld) -> String {
    let (nats, inv, claims) = shared_vpc(endpoint, w).await;
    assert_eq!(nats.len(), 1, "one NAT gateway for the five applications: {nats:?}");
    let (nat, subnet) = nats.iter().next().unwrap();
    assert!(w.public.contains(subnet), "{nat} in a public subnet: {subnet}");
    for rt in &w.private_rts {
        let routes = inv.routes.get(rt).cloned().unwrap_or_default();
        assert!(routes.contains(&format!("0.0.0.0/0->{nat}")), "{rt}: {routes:?}");
    }
    let main = inv.routes.get(&w.main_rt).cloned().unwrap_or_default();
    assert!(!main.iter().any(|r| r.starts_with("0.0.0.0/0")), "the main table is untouched: {main:?}");
    assert_eq!(claims.len(), 1, "one claim for the zone: {claims:?}");
    nat.clone()
}

/// Each application's run routed through `nat` (its step's output), and no mutating call forwarded.
fn mutating(proxy: &FaultProxy) -> Vec<(String, u64)> {
    proxy.forwarded_counts().into_iter().filter(|(op, _)| is_mutating(op)).collect()
}

fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("drconsole-nat-{name}-")).tempdir().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_applications_as_one_incident_share_one_nat_gateway_of_the_shared_vpc_and_a_rerun_changes_nothing() {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let proxy = FaultProxy::start(moto.endpoint(), faults(&w, false));
    let tmp = tempdir("incident");
    let dir = aws_world::runbooks_for_moto(tmp.path(), None);
    let list: Vec<String> = runbooks(&dir, &w).iter().map(|p| format!("{:?}", p.file_name().unwrap())).collect();
    let incident = dir.join("outage.toml");
    std::fs::write(
        &incident,
        format!("[incident]\nname = \"outage\"\ntitle = \"us-east-1 is down\"\nrunbooks = [{}]\n", list.join(", ")),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = finish(command(state.path(), proxy.endpoint(), &incident).output().unwrap());
    assert_eq!(run.code, 0, "{}", run.dump());
    eprintln!(
        "figure: the incident into one shared VPC: {:.1} s, {} API calls, NAT-related {:?}",
        started.elapsed().as_secs_f64(),
        proxy.count("total"),
        proxy
            .counts()
            .into_iter()
            .filter(|(op, _)| op.contains("Nat") || op.contains("SecurityGroup"))
            .collect::<Vec<_>>()
    );
    let nat = check_one_nat(moto.endpoint(), &w).await;
    // the applications waited for each other inside the process: one claim, one gateway, no claim raced
    assert_eq!(proxy.count("CreateNatGateway"), 1, "{:?}", proxy.counts());
    assert_eq!(proxy.count("CreateSecurityGroup"), 1, "one claim: {:?}", proxy.counts());
    assert_eq!(proxy.count("DeleteSecurityGroup"), 0, "the claim stays: {:?}", proxy.counts());
    assert_eq!(run.resources("created", "nat-claim").len(), 1, "{}", run.dump());
    for app in APPS {
        let out = run
            .of_type("step_succeeded")
            .find(|e| e["app"] == app.name && e["step"] == "nat")
            .unwrap_or_else(|| panic!("{}'s nat step:\n{}", app.name, run.dump()));
        assert_eq!(out["outputs"]["nat_gateway_id"], nat.as_str(), "{}", app.name);
    }
    // the incident again (same state dir): nothing changes
    let (before_nats, before_inv, _) = shared_vpc(moto.endpoint(), &w).await;
    proxy.reset_counts();
    let again = finish(command(state.path(), proxy.endpoint(), &incident).output().unwrap());
    assert_eq!(again.code, 0, "{}", again.dump());
    assert_eq!(mutating(&proxy), vec![], "the incident again changed something");
    let (nats, inv, _) = shared_vpc(moto.endpoint(), &w).await;
    assert_eq!((nats, inv), (before_nats, before_inv), "routes and resources unchanged");

    // what the claimant's cleanup sees and does (the adapter's side of `drconsole cleanup`): the claim is among
    // what carries its run id, described by kind, deleted, then gone
    let claimant = run
        .of_type("resource")
        .find(|e| e["phase"] == "created" && e["kind"] == "nat-claim")
        .and_then(|e| e["run_id"].as_str())
        .unwrap()
        .to_string();
    // SAFETY: the same values every test of this binary sets, before the adapter reads them
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let opts = AwsOptions { endpoint_url: Some(moto.endpoint().to_string()), ..AwsOptions::default() };
    let cloud = Aws::new(Clients::load(&opts).await, SECONDARY, None).into_cloud();
    let swept = cloud.cleanup.tagged(SECONDARY, drconsole::cloud::TAG_RUN_ID, &claimant).await.unwrap();
    let claim: Vec<&drconsole::cloud::cleanup::Found> = swept.iter().filter(|f| f.kind == "nat-claim").collect();
    assert_eq!(claim.len(), 1, "{swept:?}");
    let id = claim[0].id.clone();
    assert!(cloud.cleanup.describe(SECONDARY, "nat-claim", &id).await.unwrap().is_some());
    cloud.cleanup.delete(SECONDARY, "nat-claim", &id).await.unwrap();
    cloud.cleanup.delete(SECONDARY, "nat-claim", &id).await.expect("a second delete of a gone claim is Ok");
    assert_eq!(cloud.cleanup.describe(SECONDARY, "nat-claim", &id).await.unwrap(), None);
    let (_, _, claims) = shared_vpc(moto.endpoint(), &w).await;
    assert!(claims.is_empty(), "the claim is gone: {claims:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_consoles_started_together_claim_the_zone_once_and_share_its_nat_gateway() {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let proxy = FaultProxy::start(moto.endpoint(), faults(&w, true));
    let tmp = tempdir("processes");
    let dir = aws_world::runbooks_for_moto(tmp.path(), None);
    let rbs = runbooks(&dir, &w);
    let started = Instant::now();
    let runs = run_processes(proxy.endpoint(), &rbs);
    for (app, r) in APPS.iter().zip(&runs) {
        assert_eq!(r.code, 0, "{}:\n{}", app.name, r.dump());
    }
    eprintln!(
        "figure: five processes into one shared VPC: {:.1} s, {} API calls, NAT-related {:?}",
        started.elapsed().as_secs_f64(),
        proxy.count("total"),
        proxy
            .counts()
            .into_iter()
            .filter(|(op, _)| op.contains("Nat") || op.contains("SecurityGroup"))
            .collect::<Vec<_>>()
    );
    // every process found no NAT gateway and tried the claim (the race was real); one won and made the gateway
    assert_eq!(proxy.count("CreateSecurityGroup"), 5, "all five claimed: {:?}", proxy.counts());
    assert_eq!(proxy.count("CreateNatGateway"), 1, "{:?}", proxy.counts());
    assert_eq!(proxy.count("AllocateAddress"), 1, "{:?}", proxy.counts());
    let winners: Vec<&str> = APPS
        .iter()
        .zip(&runs)
        .filter(|(_, r)| !r.resources("created", "nat-claim").is_empty())
        .map(|(a, _)| a.name)
        .collect();
    assert_eq!(winners.len(), 1, "one claimant: {winners:?}");
    let nat = check_one_nat(moto.endpoint(), &w).await;
    for (app, r) in APPS.iter().zip(&runs) {
        let out = r.of_type("step_succeeded").find(|e| e["step"] == "nat").unwrap();
        assert_eq!(out["outputs"]["nat_gateway_id"], nat.as_str(), "{}", app.name);
        if winners[0] != app.name {
            // the losers waited for the claimant's gateway, and made none
            assert!(
                r.of_type("step_progress")
                    .any(|e| e["step"] == "nat"
                        && e["message"].as_str().is_some_and(|m| m.starts_with("waiting for run "))),
                "{} did not wait on the claim:\n{}",
                app.name,
                r.dump()
            );
            assert!(r.resources("created", "nat-gateway").is_empty(), "{}", app.name);
        }
    }
    // five consoles again, together: nothing changes
    let (before_nats, before_inv, _) = shared_vpc(moto.endpoint(), &w).await;
    proxy.set_config(faults(&w, false));
    proxy.reset_counts();
    let again = run_processes(proxy.endpoint(), &rbs);
    for (app, r) in APPS.iter().zip(&again) {
        assert_eq!(r.code, 0, "rerun of {}:\n{}", app.name, r.dump());
    }
    assert_eq!(mutating(&proxy), vec![], "a rerun changed something");
    let (nats, inv, _) = shared_vpc(moto.endpoint(), &w).await;
    assert_eq!(nats.into_iter().collect::<BTreeSet<_>>(), before_nats.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(inv, before_inv, "routes and resources unchanged");
}

/// `drconsole cleanup --force` of the run that claimed the shared VPC's NAT gateway, while another application
/// recovered into the same VPC routes through it (its instances live behind the private route tables): the
/// gateway, its Elastic IP and the routes stay, and the cleanup says why; the claimant's own load balancer, group
/// and claim go. Once the other application is gone too, the next cleanup of the claimant removes the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claimant_s_cleanup_keeps_the_nat_gateway_another_application_routes_through() {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let proxy = FaultProxy::start(moto.endpoint(), faults(&w, false));
    let tmp = tempdir("cleanup-shared");
    let dir = aws_world::runbooks_for_moto(tmp.path(), None);
    let rbs = runbooks(&dir, &w);
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = finish(command(state_a.path(), proxy.endpoint(), &rbs[0]).output().unwrap());
    assert_eq!(a.code, 0, "{}", a.dump());
    assert_eq!(a.resources("created", "nat-gateway").len(), 1, "A claims and makes it:\n{}", a.dump());
    let b = finish(command(state_b.path(), proxy.endpoint(), &rbs[1]).output().unwrap());
    assert_eq!(b.code, 0, "{}", b.dump());
    assert!(b.resources("created", "nat-gateway").is_empty(), "B reuses it:\n{}", b.dump());
    let nat = check_one_nat(moto.endpoint(), &w).await;
    let (_, routes_before, _) = shared_vpc(moto.endpoint(), &w).await;
    let run_id = |r: &Run| r.of_type("run_started").next().unwrap()["run_id"].as_str().unwrap().to_string();
    let cleanup = |state: &Path, run: &str| {
        let started = Instant::now();
        let out = aws_world::drconsole_cmd()
            .env("DRCONSOLE_STATE_DIR", state)
            .args(["cleanup", run, "--force", "--yes"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("figure: cleanup of {run}: {:.1} s", started.elapsed().as_secs_f64());
        // moto 5.2.5 lacks DeleteLaunchTemplateVersions (drill_moto.rs): that delete fails (exit 1), nothing else
        let failed: Vec<&str> = text.lines().filter(|l| l.contains("FAILED")).collect();
        assert!(failed.iter().all(|l| l.contains("launch-template-version")), "{text}");
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || (code == 1 && !failed.is_empty()), "{text}");
        assert!(text.lines().any(|l| l.starts_with("left tagged ") && l.ends_with(": nothing")), "{text}");
        text
    };
    let text = cleanup(state_a.path(), &run_id(&a));
    assert!(text.contains(&format!("kept     nat-gateway {nat}")) && text.contains("still in use"), "{text}");
    assert!(text.contains("kept     elastic-ip") && text.contains("in use   nat-gateway"), "{text}");
    assert!(text.contains("kept     route") && text.contains("not this run's"), "{text}");
    let (nats, routes_after, _) = shared_vpc(moto.endpoint(), &w).await;
    assert!(nats.contains_key(&nat), "the NAT gateway stays: {nats:?}");
    let s = aws_world::Sdk::new(moto.endpoint(), SECONDARY).await;
    let live = s.ec2.describe_nat_gateways().nat_gateway_ids(&nat).send().await.unwrap();
    assert_eq!(live.nat_gateways()[0].state().map(|s| s.as_str()), Some("available"));
    for rt in &w.private_rts {
        assert_eq!(routes_after.routes.get(rt), routes_before.routes.get(rt), "{rt}: B's route stays");
    }
    // A's own resources are gone: its load balancer, its claim
    let lbs = s.elb.describe_load_balancers().send().await.unwrap();
    let names: Vec<&str> = lbs.load_balancers().iter().filter_map(|l| l.load_balancer_name()).collect();
    assert!(!names.iter().any(|n| n.starts_with(APPS[0].name)), "A's load balancer removed: {names:?}");
    assert!(names.iter().any(|n| n.starts_with(APPS[1].name)), "B's stays: {names:?}");
    let run_dir = std::fs::read_dir(state_a.path().join("runs")).unwrap().next().unwrap().unwrap().path();
    let log = std::fs::read_to_string(run_dir.join("cleanup.jsonl")).unwrap();
    assert!(log.contains("\"in_use\"") && log.contains(&nat), "recorded: {log}");
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    let said = report.lines().any(|l| l.contains("in use by others") && l.contains(&nat));
    assert!(report.contains("## Cleanup") && said, "the report says it: {report}");
    // B cleaned up too: nothing lives behind the routes any more; A's cleanup again removes the gateway
    cleanup(state_b.path(), &run_id(&b));
    let text = cleanup(state_a.path(), &run_id(&a));
    assert!(text.contains(&format!("removed  nat-gateway {nat}")), "{text}");
    let (_, routes_last, _) = shared_vpc(moto.endpoint(), &w).await;
    let gone = s.ec2.describe_nat_gateways().nat_gateway_ids(&nat).send().await.unwrap();
    let state = gone.nat_gateways().first().and_then(|n| n.state()).map(|s| s.as_str().to_string());
    assert!(matches!(state.as_deref(), None | Some("deleted" | "deleting")), "{nat}: {state:?}");
    for rt in &w.private_rts {
        let r = routes_last.routes.get(rt).cloned().unwrap_or_default();
        assert!(!r.iter().any(|r| r.starts_with("0.0.0.0/0")), "{rt} as A found it: {r:?}");
    }
}
