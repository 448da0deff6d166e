//! `drconsole preflight` against moto server, through the fault proxy: the customer's world as their tooling built
//! it (tests/support/customer_world.rs, plus the records customers use today) in good order → every check `ok`
//! for the five applications; then one broken precondition at a time → exactly that finding fails, nothing else
//! changes, and no mutating call reached the emulator (counted at the proxy).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::aws_world;
use crate::customer_world;
use crate::support;

use std::collections::BTreeMap;

use aws_world::{APPS, PRIMARY, SECONDARY, Sdk};
use serde_json::Value;
use support::fault_proxy::{Fault, FaultConfig, FaultProxy, RequestInfo, is_mutating};
use support::moto::MotoServer;

/// AWS Backup's recovery points in us-west-2 (moto has vaults, not recovery points), as aws_moto.rs serves them.
fn backup_points(body: String) -> FaultConfig {
    FaultConfig::passthrough().with_hook(move |r: &RequestInfo| {
        (r.region.as_deref() == Some(SECONDARY) && r.method == "GET" && r.path.contains("/recovery-points"))
            .then(|| Fault::Respond { status: 200, content_type: "application/json".into(), body: body.clone() })
    })
}

struct Preflight {
    code: i32,
    report: Value,
    stderr: String,
}

impl Preflight {
    /// `(step, check) -> status`.
    fn statuses(&self) -> BTreeMap<(String, String), String> {
        self.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    (f["step"].as_str().unwrap().into(), f["check"].as_str().unwrap().into()),
                    f["status"].as_str().unwrap().into(),
                )
            })
            .collect()
    }
    fn dump(&self) -> String {
        format!("exit {}\n{:#}\n{}", self.code, self.report, self.stderr)
    }
}

fn preflight(endpoint: &str, w: &customer_world::CustomerWorld, app: &str) -> Preflight {
    let runbook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks").join(format!("{app}.toml"));
    let reports = tempfile::tempdir().unwrap();
    let out = aws_world::drconsole_cmd()
        .env("DRCONSOLE_STATE_DIR", reports.path().join("state"))
        .args(["preflight", "--json", "--endpoint-url", endpoint, "--report-dir"])
        .arg(reports.path())
        .args(customer_world::vars(w, app))
        .arg(&runbook)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{app}: {e}\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    Preflight { code: out.status.code().unwrap_or(-1), report: reports.into_iter().next().unwrap(), stderr }
}

/// Preflight of `app` after a change: the checks whose status changed, and the checks that no longer ran (a
/// check of something that is gone, such as the AMI of a missing launch template); nothing new may appear.
fn compare(before: &Preflight, after: &Preflight) -> (Vec<(String, String)>, Vec<String>) {
    let (a, b) = (before.statuses(), after.statuses());
    let added: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(added.is_empty(), "new checks appeared: {added:?}\n{}", after.dump());
    let changed =
        a.iter().filter_map(|(k, v)| b.get(k).filter(|n| *n != v).map(|n| (k.1.clone(), n.clone()))).collect();
    let gone = a.keys().filter(|k| !b.contains_key(*k)).map(|k| k.1.clone()).collect();
    (changed, gone)
}

fn no_mutating_call(proxy: &FaultProxy, what: &str) {
    let counts = proxy.forwarded_counts();
    let mutating: Vec<(&String, &u64)> = counts.iter().filter(|(op, _)| is_mutating(op)).collect();
    assert!(mutating.is_empty(), "{what}: mutating calls reached moto: {mutating:?}");
    assert!(proxy.count("total") > 10, "{what}: the preflight made its reads through the proxy: {counts:?}");
}

/// Exactly one check changed, to fail, and it is the one named by `needle`.
fn exactly_failed(changed: &[(String, String)], needle: &str, after: &Preflight) {
    assert_eq!(changed.len(), 1, "exactly one finding changed: {changed:#?}\n{}", after.dump());
    assert!(changed[0].0.contains(needle) && changed[0].1 == "fail", "{changed:?} (wanted `{needle}` failing)");
    assert_eq!(after.code, 1, "{}", after.dump());
    assert_eq!(after.report["verdict"], "not-ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_world_is_ready_and_each_broken_precondition_fails_exactly_its_finding() {
    let moto = MotoServer::start();
    let w = customer_world::build(moto.endpoint()).await;
    let p = Sdk::new(moto.endpoint(), PRIMARY).await;
    let s = Sdk::new(moto.endpoint(), SECONDARY).await;
    // the names customers use today, pointing at the primary region
    for app in APPS {
        let name = format!("{}.example-fin.com", app.name);
        aws_world::upsert_alias(&p.r53, &w.zone_id, &name, "prod-alb.us-east-1.elb.amazonaws.com", "Z35SXDOTRQ7X7K")
            .await;
    }
    let proxy = FaultProxy::start(moto.endpoint(), backup_points(w.recovery_points_body.clone()));

    // in good order: every check ok, for the five applications
    let mut base: BTreeMap<&str, Preflight> = BTreeMap::new();
    for app in APPS {
        proxy.reset_counts();
        let r = preflight(proxy.endpoint(), &w, app.name);
        assert_eq!(r.code, 0, "{}: {}", app.name, r.dump());
        // every check ok but the warnings naming the cut-over's control plane (Route 53's, served from us-east-1,
        // the primary region: issue 23)
        let (control, not_ok): (Vec<_>, Vec<_>) = r
            .statuses()
            .into_iter()
            .filter(|(_, v)| v != "ok")
            .partition(|((_, check), v)| check.starts_with("control-plane dependency of") && v == "warn");
        assert!(not_ok.is_empty(), "{}: {not_ok:#?}\n{}", app.name, r.dump());
        let steps: Vec<&str> = control.iter().map(|((_, c), _)| c.as_str()).collect();
        assert_eq!(
            steps,
            [
                "control-plane dependency of dns (route53.upsert)",
                "control-plane dependency of health_check (route53.health_check)"
            ],
            "{}: {}",
            app.name,
            r.dump()
        );
        assert!(r.statuses().len() >= 17, "{}: {}", app.name, r.dump());
        assert_eq!(r.report["backend"], "aws");
        // what moto cannot answer is said plainly, never `ok`: the policy simulation (moto has no
        // SimulatePrincipalPolicy) and EC2's vCPU quota (its Service Quotas knows only VPC's)
        let unchecked: Vec<(String, String)> = r.report["unchecked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["what"].as_str().unwrap().to_string(), u["why"].as_str().unwrap().to_string()))
            .collect();
        let why = |needle: &str| unchecked.iter().find(|(w, _)| w.contains(needle)).map(|(_, y)| y.clone());
        assert!(
            why("may make every call of the runbook")
                .is_some_and(|y| y.starts_with("not checked: the API is not available")),
            "{}: {unchecked:#?}",
            app.name
        );
        assert!(
            why("on-demand standard vCPUs").is_some_and(|y| y.starts_with("not checked: Service Quotas does not know")),
            "{}: {unchecked:#?}",
            app.name
        );
        let checks: Vec<String> = r.statuses().into_keys().map(|(_, c)| c).collect();
        for want in
            ["is issued and covers", "NAT gateways per AZ in us-west-2", "application load balancers in us-west-2"]
        {
            assert!(checks.iter().any(|c| c.contains(want)), "{}: no `{want}` in {checks:#?}", app.name);
        }
        no_mutating_call(&proxy, app.name);
        eprintln!("figure: preflight {}: {} calls, {:?}", app.name, proxy.count("total"), proxy.counts());
        base.insert(app.name, r);
    }

    // 1. the launch template is gone (cross-sell): its check fails; the checks of its AMI and of its security
    //    groups (in the DR VPC) cannot run
    s.ec2.delete_launch_template().launch_template_name("cross-sell-web-dr").send().await.unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "cross-sell");
    let (changed, gone) = compare(&base["cross-sell"], &after);
    exactly_failed(&changed, "launch template cross-sell-web-dr in us-west-2", &after);
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(gone.iter().any(|g| g.contains("of launch template cross-sell-web-dr")), "{gone:?}");
    assert!(
        gone.iter().any(|g| g.starts_with("security groups sg-") && g.ends_with("in VPC dr-shared-vpc")),
        "{gone:?}"
    );
    no_mutating_call(&proxy, "launch template missing");

    // 2. the WAF web ACL was never created (inventory-management)
    let acls = s.waf.list_web_acls().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    let acl = acls.web_acls().iter().find(|a| a.name() == Some("inventory-management-dr-acl")).unwrap();
    s.waf
        .delete_web_acl()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .name(acl.name().unwrap())
        .id(acl.id().unwrap())
        .lock_token(acl.lock_token().unwrap())
        .send()
        .await
        .unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "inventory-management");
    let (changed, gone) = compare(&base["inventory-management"], &after);
    exactly_failed(&changed, "WAF web ACL inventory-management-dr-acl", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "WAF ACL missing");

    // 3. the record is missing (agent-payment): the cut-over would create a name nobody uses
    {
        use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
        let set = ResourceRecordSet::builder()
            .name("agent-payment.example-fin.com")
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .dns_name("prod-alb.us-east-1.elb.amazonaws.com")
                    .hosted_zone_id("Z35SXDOTRQ7X7K")
                    .evaluate_target_health(true)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let change = Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().unwrap();
        p.r53
            .change_resource_record_sets()
            .hosted_zone_id(&w.zone_id)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .unwrap();
    }
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "agent-payment");
    let (changed, gone) = compare(&base["agent-payment"], &after);
    exactly_failed(&changed, "record agent-payment.example-fin.com.", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "record missing");

    // 4. the secret is not replicated to us-west-2 (customer-assistance)
    p.sm.remove_regions_from_replication()
        .secret_id("prod/customer-assistance/db-master")
        .remove_replica_regions(SECONDARY)
        .send()
        .await
        .unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "customer-assistance");
    let (changed, gone) = compare(&base["customer-assistance"], &after);
    exactly_failed(&changed, "secret prod/customer-assistance/db-master readable in us-west-2", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "secret not replicated");

    // 5. the AMI is missing in both regions (vendor-assistance): every build deregistered
    for sdk in [&p, &s] {
        let imgs = sdk.ec2.describe_images().owners("self").send().await.unwrap();
        for i in imgs.images().iter().filter(|i| i.name().is_some_and(|n| n.starts_with("vendor-assistance-web-"))) {
            sdk.ec2.deregister_image().image_id(i.image_id().unwrap()).send().await.unwrap();
        }
    }
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "vendor-assistance");
    let (changed, gone) = compare(&base["vendor-assistance"], &after);
    exactly_failed(&changed, "AMI vendor-assistance-web-* (or its copy) in us-west-2", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "AMI missing");

    // 6. the database snapshot copies stopped (inventory-management): the secondary-only RPO fails, the primary's
    //    backups still meet it
    let before = preflight(proxy.endpoint(), &w, "inventory-management");
    s.rds.delete_db_snapshot().db_snapshot_identifier(&w.apps["inventory-management"].db_copy).send().await.unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "inventory-management");
    let (changed, gone) = compare(&before, &after);
    exactly_failed(&changed, "RDS snapshots of inventory-prod: newest in us-west-2 alone", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "copies stopped");

    // 7. the DR key in us-west-2 was disabled (vendor-assistance, whose AMI check already fails)
    let before = preflight(proxy.endpoint(), &w, "vendor-assistance");
    let kms = aws_sdk_kms::Client::new(&aws_world::sdk_config(moto.endpoint(), SECONDARY).await);
    let key = kms.describe_key().key_id(customer_world::KMS_ALIAS).send().await.unwrap();
    kms.disable_key().key_id(key.key_metadata().unwrap().key_id()).send().await.unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "vendor-assistance");
    let (changed, gone) = compare(&before, &after);
    exactly_failed(&changed, "KMS key alias/dr-backup enabled in us-west-2", &after);
    assert!(
        after.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["found"].as_str().unwrap().ends_with("is Disabled"))
    );
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "KMS key disabled");

    // 8. other workloads hold every Elastic IP the account may have in us-west-2 (moto says 5, and does not
    //    enforce it): the NAT gateway the failover creates could not get one
    let before = preflight(proxy.endpoint(), &w, "customer-assistance");
    for _ in 0..5 {
        s.ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.unwrap();
    }
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "customer-assistance");
    let (changed, gone) = compare(&before, &after);
    exactly_failed(&changed, "an Elastic IP can be allocated in us-west-2", &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "EIP quota used");

    // 10. the listener's certificate was deleted (cross-sell): its check fails, and only it
    let before = preflight(proxy.endpoint(), &w, "cross-sell");
    let acm = aws_sdk_acm::Client::new(&aws_world::sdk_config(moto.endpoint(), SECONDARY).await);
    acm.delete_certificate().certificate_arn(&w.certificate["cross-sell"]).send().await.unwrap();
    proxy.reset_counts();
    let after = preflight(proxy.endpoint(), &w, "cross-sell");
    let (changed, gone) = compare(&before, &after);
    exactly_failed(&changed, &format!("ACM certificate {} exists in us-west-2", w.certificate["cross-sell"]), &after);
    assert!(gone.is_empty(), "{gone:?}");
    no_mutating_call(&proxy, "certificate missing");

    // 9. the shared DR VPC has no private subnets any more (last: it breaks the five applications)
    for id in &w.private {
        s.ec2.delete_subnet().subnet_id(id).send().await.unwrap();
    }
    proxy.reset_counts();
    let before = &base["agent-payment"];
    let after = preflight(proxy.endpoint(), &w, "agent-payment");
    let (changed, gone) = compare(before, &after);
    let changed: Vec<_> = changed
        .into_iter()
        .filter(|(c, _)| !c.starts_with("record ") && !c.starts_with("KMS key") && !c.starts_with("an Elastic IP"))
        .collect();
    exactly_failed(&changed, "private subnets of dr-shared-vpc", &after);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(gone[0].starts_with("route tables of"), "{gone:?}");
    no_mutating_call(&proxy, "VPC without private subnets");
}
