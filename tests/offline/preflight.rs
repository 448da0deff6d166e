//! `drconsole preflight` on the simulator: the five failovers are ready in a world in good order; a tabletop world
//! with one broken precondition (tests/fixtures/preflight/*.toml) fails exactly the findings it breaks; a wrong
//! account exits 4, an invalid runbook 2; the reports are written; and no mutating call reaches the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drconsole::actions::Registry;
use drconsole::cloud::Cloud;
use drconsole::cloud::sim::{Sim, WorldFile};
use drconsole::preflight::{self, ReadOnlyCloud, Status, Verdict};
use drconsole::run::Clock;
use serde_json::Value;

const FIVE: &[&str] =
    &["cross-sell", "inventory-management", "agent-payment", "customer-assistance", "vendor-assistance"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runbook(name: &str) -> PathBuf {
    root().join("runbooks").join(format!("{name}.toml"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/preflight").join(name)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Vec<Value> {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

fn preflight(args: &[&str], runbooks: &[PathBuf], reports: &Path) -> Out {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drconsole"))
        .arg("preflight")
        .args(args)
        .arg("--report-dir")
        .arg(reports)
        .args(runbooks)
        .env("DRCONSOLE_STATE_DIR", reports.join("state"))
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `(check, status)` of a report's findings, keyed by step and check.
fn statuses(report: &Value) -> BTreeMap<(String, String), String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let step = f["step"].as_str().unwrap().to_string();
            // the found text holds times and ages; the check is what identifies a finding
            let check = f["check"].as_str().unwrap().to_string();
            ((step, check), f["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The findings whose status differs between two reports (both must have the same checks).
fn changed(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    let (a, b) = (statuses(before), statuses(after));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same checks ran");
    a.iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|((step, check), _)| (step.clone(), check.clone(), b[&(step.clone(), check.clone())].clone()))
        .collect()
}

#[test]
fn the_five_failovers_are_ready_on_the_simulator_and_their_reports_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let rbs: Vec<PathBuf> = FIVE.iter().map(|a| runbook(a)).collect();
    let good = fixture("good-order.toml");
    let out = preflight(&["--json", "--world", good.to_str().unwrap()], &rbs, tmp.path());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let reports = out.json();
    assert_eq!(reports.len(), 5);
    for (r, app) in reports.iter().zip(FIVE) {
        assert_eq!(r["app"], *app);
        assert_eq!(r["verdict"], "ready", "{app}: {r:#}");
        assert_eq!(r["backend"], "sim");
        // the warnings: the simulated world keeps the AMI in us-east-1 only, so the failover needs it to answer; the
        // health check and the DNS change need Route 53's control plane, served from us-east-1, the primary region
        let warns: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "warn")
            .map(|f| f["check"].as_str().unwrap())
            .collect();
        assert_eq!(warns.len(), 3, "{app}: {warns:#?}");
        assert!(warns[0].starts_with("AMI "), "{warns:#?}");
        assert_eq!(
            warns[1..],
            [
                "control-plane dependency of health_check (route53.health_check)",
                "control-plane dependency of dns (route53.upsert)"
            ],
            "{warns:#?}"
        );
        assert_eq!(r["refused_calls"], serde_json::json!({}), "{app}: no mutating call was even attempted");
        let findings = r["findings"].as_array().unwrap();
        assert!(findings.iter().all(|f| f["status"] != "fail"), "{app}: {r:#}");
        let checks: Vec<&str> = findings.iter().map(|f| f["check"].as_str().unwrap()).collect();
        for want in [
            "the credentials are for the runbook's account 123456789012",
            "newest in us-west-2 alone against the RPO",
            "newest in either region against the RPO",
            "secret prod/",
            "EBS volumes tagged app=",
            "AMI ",
            &format!("VPC {app}-dr-vpc in us-west-2"),
            "public subnets of",
            "private subnets of",
            "route tables of",
            &format!("launch template {app}-web-dr in us-west-2"),
            &format!("WAF web ACL {app}-dr-acl (REGIONAL) in us-west-2"),
            "hosted zone example-fin.com",
            &format!("record {app}.example-fin.com. in example-fin.com"),
            "ACM certificate arn:aws:acm:us-west-2:",
            "projected duration against the RTO of 2h",
            "KMS key alias/drconsole-dr enabled in us-west-2",
            "an Elastic IP can be allocated in us-west-2",
            &format!("exists in us-west-2, is issued and covers {app}.example-fin.com"),
            "NAT gateways per AZ in us-west-2 (Service Quotas L-FE5A380F)",
            "application load balancers in us-west-2 (DescribeAccountLimits)",
            "on-demand standard vCPUs in us-west-2 (Service Quotas L-1216C47A)",
            "may make every call of the runbook",
        ] {
            assert!(checks.iter().any(|c| c.contains(want)), "{app}: no check `{want}` in {checks:#?}");
        }
        // each check once, even when several steps need it (the VPC is named by nat, alb and asg)
        let mut seen = std::collections::BTreeSet::new();
        assert!(checks.iter().all(|c| seen.insert(*c)), "{app}: a check repeated: {checks:#?}");
        // what cannot be checked is said, not reported ok
        let unchecked: Vec<&str> =
            r["unchecked"].as_array().unwrap().iter().map(|u| u["what"].as_str().unwrap()).collect();
        // the simulator answers every check of a failover: the certificate, the quotas and the permissions too
        assert!(unchecked.is_empty(), "{app}: {unchecked:?}");
        let rto = findings.iter().find(|f| f["check"].as_str().unwrap().starts_with("projected duration")).unwrap();
        let found = rto["found"].as_str().unwrap();
        assert!(found.contains("sized by what the checks found: ") && found.contains(" GiB"), "{app}: {found}");
    }
    let files: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .collect();
    assert_eq!(files.len(), 5, "{files:?}");
    let md =
        std::fs::read_to_string(tmp.path().join(files.iter().find(|f| f.starts_with("cross-sell")).unwrap())).unwrap();
    assert!(md.starts_with("# Preflight report: Cross-sell"), "{md}");
    assert!(md.contains("| Verdict | **ready**"), "{md}");
    assert!(md.contains("| Checked at | 20"), "{md}");
    assert!(md.contains("| Read-only | no mutating call was attempted |"), "{md}");
}

#[test]
fn copies_that_stopped_fail_the_secondary_only_rpo_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = [runbook("cross-sell")];
    let good = preflight(&["--json", "--world", fixture("good-order.toml").to_str().unwrap()], &rb, tmp.path());
    assert_eq!(good.code, 0, "{}", good.stdout);
    let bad = preflight(&["--json", "--world", fixture("copies-stopped.toml").to_str().unwrap()], &rb, tmp.path());
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    let (g, b) = (&good.json()[0], &bad.json()[0]);
    assert_eq!(b["verdict"], "not-ready");
    let diff = changed(g, b);
    // the database's newest copy in us-west-2 is 4 h old; the primary's backups still meet the RPO
    assert!(
        diff.iter().any(|(s, c, st)| s == "pick_db" && c.contains("newest in us-west-2 alone") && st == "fail"),
        "{diff:#?}"
    );
    assert!(diff.iter().all(|(_, c, st)| st == "fail" && (c.contains("alone") || c.starts_with("EBS volumes"))));
    let overall =
        statuses(b).into_iter().find(|((s, c), _)| s == "pick_db" && c.contains("newest in either region")).unwrap();
    assert_eq!(overall.1, "ok", "the primary's snapshots are fresh");
    // the EBS set: each volume's copy in us-west-2 is as old
    let ebs: Vec<_> = diff.iter().filter(|(_, c, _)| c.starts_with("EBS volumes")).collect();
    assert_eq!(ebs.len(), 2, "two data volumes: {diff:#?}");
    let text = preflight(&["--world", fixture("copies-stopped.toml").to_str().unwrap()], &rb, tmp.path());
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("verdict: NOT READY"), "{}", text.stdout);
    assert!(text.stdout.contains("\nfail  pick_db"), "{}", text.stdout);
    assert!(text.stdout.contains("→ the cross-region copies stopped or lag"), "{}", text.stdout);
}

#[test]
fn a_disabled_kms_key_fails_its_check_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = [runbook("agent-payment")];
    let good = preflight(&["--json", "--world", fixture("good-order.toml").to_str().unwrap()], &rb, tmp.path());
    let bad = preflight(&["--json", "--world", fixture("kms-disabled.toml").to_str().unwrap()], &rb, tmp.path());
    assert_eq!((good.code, bad.code), (0, 1), "{}", bad.stdout);
    let diff = changed(&good.json()[0], &bad.json()[0]);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!(diff[0].1, "KMS key alias/drconsole-dr enabled in us-west-2");
    assert_eq!(diff[0].2, "fail");
}

#[test]
fn a_used_up_elastic_ip_quota_fails_the_nat_gateways_check_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = [runbook("customer-assistance")];
    let good = preflight(&["--json", "--world", fixture("good-order.toml").to_str().unwrap()], &rb, tmp.path());
    let bad = preflight(&["--json", "--world", fixture("eip-quota-used.toml").to_str().unwrap()], &rb, tmp.path());
    assert_eq!((good.code, bad.code), (0, 1), "{}", bad.stdout);
    let diff = changed(&good.json()[0], &bad.json()[0]);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!(diff[0].1, "an Elastic IP can be allocated in us-west-2 (for the NAT gateway)");
    let f = bad.json()[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["step"] == "nat" && f["status"] == "fail")
        .cloned();
    assert_eq!(f.unwrap()["found"], "5 of 5 in use");
}

#[test]
fn stale_backups_fail_both_rpo_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = preflight(
        &["--json", "--world", fixture("stale-backups.toml").to_str().unwrap()],
        &[runbook("vendor-assistance")],
        tmp.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = statuses(&out.json()[0]);
    let get = |needle: &str| s.iter().find(|((st, c), _)| st == "pick_db" && c.contains(needle)).unwrap().1.clone();
    assert_eq!(get("alone"), "fail");
    assert_eq!(get("either region"), "fail");
}

#[test]
fn the_wrong_account_exits_4_and_checks_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let out = preflight(
        &["--json", "--world", fixture("wrong-account.toml").to_str().unwrap()],
        &[runbook("cross-sell")],
        tmp.path(),
    );
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    let r = &out.json()[0];
    assert_eq!(r["verdict"], "wrong-account");
    let f = r["findings"].as_array().unwrap();
    assert_eq!(f[0]["status"], "fail");
    assert!(f[0]["found"].as_str().unwrap().contains("999999999999"), "{f:?}");
    assert!(f.iter().all(|x| !x["check"].as_str().unwrap().contains("VPC")), "nothing else is checked: {f:?}");
}

#[test]
fn an_invalid_runbook_exits_2_and_the_others_are_still_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = root().join("tests/fixtures/invalid/unknown_action.toml");
    assert!(bad.exists(), "{}", bad.display());
    let out = preflight(&["--sim", "--json"], &[bad, runbook("cross-sell")], tmp.path());
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("unknown_action.toml"), "{}", out.stderr);
    assert_eq!(out.json().len(), 1, "cross-sell was checked");
}

/// Through the library: every call the preflight made reached the simulator as a read, and the read-only view
/// refused nothing (nothing was even attempted).
#[tokio::test(start_paused = true)]
async fn a_preflight_makes_only_read_calls() {
    let registry = Registry::builtin();
    for app in FIVE.iter().chain(["primary-restore", "rds-pitr", "ebs-swap", "ami-copy", "mysql-to-dynamodb"].iter()) {
        let mut rb = drconsole::runbook::load(&runbook(app), &registry).unwrap_or_else(|d| panic!("{d}"));
        rb.target.backend = drconsole::runbook::Backend::Sim;
        let now: jiff::Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
        let world = WorldFile::load(&fixture("copies-stopped.toml")).unwrap();
        let sim = Arc::new(Sim::for_runbook(Clock::starting_at(now, 1.0), 3, &rb, Some(&world)));
        let ro = ReadOnlyCloud::new(Cloud::from_all("sim", sim.clone()));
        let r = preflight::run(&rb, &registry, &ro, now).await;
        assert!(r.refused_calls.is_empty(), "{app}: {:?}", r.refused_calls);
        let calls = sim.calls();
        assert!(!calls.is_empty(), "{app}: the preflight looked at something");
        let reads = ["Describe", "List", "Get", "Simulate"];
        let writes: Vec<&String> =
            calls.keys().filter(|k| !reads.iter().any(|p| k.split(':').nth(1).unwrap().starts_with(p))).collect();
        assert!(writes.is_empty(), "{app}: mutating calls reached the simulator: {writes:?}");
        assert_ne!(r.verdict, Verdict::WrongAccount);
        assert!(r.findings.iter().any(|f| f.check.starts_with("projected duration")), "{app}");
        if FIVE.contains(app) {
            assert!(r.findings.iter().any(|f| f.status == Status::Fail), "{app}: copies stopped 4 h ago");
        }
    }
}

/// The five failovers' findings in good order and in `fixture`: the `(step, check, status)` that changed.
fn diff_against_good(app: &str, fixture_name: &str) -> (Vec<(String, String, String)>, Value, i32) {
    let tmp = tempfile::tempdir().unwrap();
    let rb = [runbook(app)];
    let good = preflight(&["--json", "--world", fixture("good-order.toml").to_str().unwrap()], &rb, tmp.path());
    let bad = preflight(&["--json", "--world", fixture(fixture_name).to_str().unwrap()], &rb, tmp.path());
    assert_eq!(good.code, 0, "{}", good.stdout);
    let (g, b) = (good.json().remove(0), bad.json().remove(0));
    (changed(&g, &b), b, bad.code)
}

#[test]
fn a_missing_certificate_fails_its_check_and_nothing_else() {
    let (diff, bad, code) = diff_against_good("cross-sell", "certificate-missing.toml");
    assert_eq!(code, 1);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!(diff[0].0, "alb");
    assert!(diff[0].1.starts_with("ACM certificate arn:aws:acm:us-west-2:123456789012:certificate/cross-sell exists in us-west-2, is issued and covers cross-sell.example-fin.com"), "{diff:?}");
    assert_eq!(diff[0].2, "fail");
    let f = bad["findings"].as_array().unwrap().iter().find(|f| f["status"] == "fail").cloned().unwrap();
    assert_eq!(f["found"], "no such certificate");
}

#[test]
fn a_permission_the_caller_lacks_fails_the_policy_simulation_naming_the_action() {
    let (diff, bad, code) = diff_against_good("agent-payment", "permission-denied.toml");
    assert_eq!(code, 1);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert!(diff[0].1.contains("may make every call of the runbook"), "{diff:?}");
    let f = bad["findings"].as_array().unwrap().iter().find(|f| f["status"] == "fail").cloned().unwrap();
    assert_eq!(f["found"], "denied: ec2:CreateNatGateway (implicitDeny)");
    assert!(f["todo"].as_str().unwrap().contains("drconsole iam-policy"), "{f}");
}

#[test]
fn a_low_vcpu_quota_fails_its_check_and_nothing_else() {
    let (diff, bad, code) = diff_against_good("vendor-assistance", "vcpu-quota-low.toml");
    assert_eq!(code, 1);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!(diff[0].1, "on-demand standard vCPUs in us-west-2 (Service Quotas L-1216C47A)");
    let f = bad["findings"].as_array().unwrap().iter().find(|f| f["status"] == "fail").cloned().unwrap();
    assert!(f["found"].as_str().unwrap().ends_with("+ 12 for the group (max 6 × 2 of m5.large) against 8"), "{f}");
}

/// A runbook that restores into a named DB subnet group behind a named security group: both are checked (the
/// group's AZs, the security group's VPC), and each missing one fails its own finding only.
#[test]
fn a_missing_db_subnet_group_or_security_group_fails_its_own_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = [fixture("db-in-subnet-group.toml")];
    let run = |world: &str| preflight(&["--json", "--world", fixture(world).to_str().unwrap()], &rb, tmp.path());
    let good = run("db-network-good.toml");
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    let g = good.json().remove(0);
    let s = statuses(&g);
    let get = |needle: &str| s.iter().find(|((_, c), _)| c.contains(needle)).map(|(k, v)| (k.0.clone(), v.clone()));
    assert_eq!(
        get("DB subnet group dr-db-subnets in us-west-2 (at least two AZs)"),
        Some(("restore_db".into(), "ok".into()))
    );
    assert_eq!(
        get("security groups dr-db-sg in us-west-2 in the VPC of DB subnet group dr-db-subnets"),
        Some(("restore_db".into(), "ok".into()))
    );
    let found = g["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"].as_str().unwrap().starts_with("DB subnet group"))
        .unwrap()["found"]
        .clone();
    assert!(found.as_str().unwrap().contains("in 2 AZ(s): us-west-2a, us-west-2b"), "{found}");
    for (world, needle, found) in [
        ("db-subnet-group-missing.toml", "DB subnet group dr-db-subnets", "not found"),
        ("security-group-missing.toml", "security groups dr-db-sg", "not found: dr-db-sg"),
    ] {
        let bad = run(world);
        assert_eq!(bad.code, 1, "{world}: {}", bad.stdout);
        let b = bad.json().remove(0);
        let diff = changed(&g, &b);
        assert_eq!(diff.len(), 1, "{world}: {diff:#?}");
        assert!(diff[0].1.starts_with(needle) && diff[0].2 == "fail", "{world}: {diff:?}");
        let f = b["findings"].as_array().unwrap().iter().find(|f| f["status"] == "fail").cloned().unwrap();
        assert_eq!(f["found"], found, "{world}");
    }
}

/// The projected RTO is sized by what the checks found: the same runbook in a world whose database has grown to
/// 6000 GiB projects a restore of 2h10m, over the 2h RTO; only that finding changes.
#[test]
fn a_database_too_big_to_restore_in_time_fails_the_projected_rto() {
    let (diff, bad, code) = diff_against_good("cross-sell", "big-database.toml");
    assert_eq!(code, 1, "{bad:#}");
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!((diff[0].1.as_str(), diff[0].2.as_str()), ("projected duration against the RTO of 2h00m", "fail"));
    let f = bad["findings"].as_array().unwrap().iter().find(|f| f["status"] == "fail").cloned().unwrap();
    let found = f["found"].as_str().unwrap();
    assert!(found.contains("restore_db 2h10m (6000 GiB)"), "{found}");
    assert!(found.contains("critical path pick_db → copy_db → restore_db"), "{found}");
}

/// The console's opening screen: cross-sell before it starts, with the preflight not run, then its verdict on the
/// world with the DR key disabled (failures first), then Enter asking before a run known not to be ready.
#[tokio::test(start_paused = true)]
async fn the_opening_screen_shows_the_run_then_the_preflight_verdict_and_asks_before_a_not_ready_start() {
    use drconsole::tui::opening::{Opening, OpeningReply, OpeningState, OpeningView};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let registry = Registry::builtin();
    let mut rb = drconsole::runbook::load(&runbook("cross-sell"), &registry).unwrap_or_else(|d| panic!("{d}"));
    rb.target.backend = drconsole::runbook::Backend::Sim;
    let mut opening = Opening::from_runbook(&rb);
    // the snapshot does not depend on where the repository is
    opening.file = "runbooks/cross-sell.toml".into();
    let theme = drconsole::tui::Theme::preset("dark").unwrap();
    let draw = |s: &OpeningState, w: u16, h: u16| {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        term.draw(|f| f.render_widget(OpeningView { state: s, theme: &theme }, f.area())).unwrap();
        drconsole::tui::fixtures::text(term.backend().buffer())
    };
    let key = |s: &mut OpeningState, c: KeyCode| s.key(&KeyEvent::new(c, KeyModifiers::NONE));

    let mut s = OpeningState::new(opening);
    let text = draw(&s, 80, 24);
    assert!(text.contains("NOT STARTED") && text.contains("not run: p checks"), "{text}");
    insta::assert_snapshot!("opening_80x24", text);

    assert_eq!(key(&mut s, KeyCode::Char('p')), OpeningReply::Preflight);
    assert_eq!(key(&mut s, KeyCode::Enter), OpeningReply::None, "no start while the preflight runs");
    assert!(draw(&s, 80, 24).contains("its verdict first"));

    let now: jiff::Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
    let world = WorldFile::load(&fixture("kms-disabled.toml")).unwrap();
    let sim = Arc::new(Sim::for_runbook(Clock::starting_at(now, 1.0), 0, &rb, Some(&world)));
    let report = preflight::run(&rb, &registry, &ReadOnlyCloud::new(Cloud::from_all("sim", sim)), now).await;
    assert_eq!(report.verdict, Verdict::NotReady);
    s.checked(Ok((report, Ok("state/preflight/cross-sell-failover-20261121T120000Z.md".into()))));
    let text = draw(&s, 80, 24);
    // the one failure is the first finding shown
    let first = text.lines().find(|l| l.contains("│ fail") || l.contains("│ warn") || l.contains("│ ok")).unwrap();
    assert!(first.contains("fail copy_db KMS key alias/drconsole-dr"), "{text}");
    // it is wrapped, not cut mid-sentence: all of it is on the screen, at 80 and at 160 columns
    let f = &s.findings()[0];
    let whole: String = format!("{} — {}", f.check, f.found).chars().filter(|c| !c.is_whitespace()).collect();
    for text in [text.clone(), draw(&s, 160, 48)] {
        let flat: String = text.chars().filter(|c| !c.is_whitespace() && *c != '│').collect();
        assert!(flat.contains(&whole), "{whole}\n{text}");
    }
    insta::assert_snapshot!("opening_verdict_80x24", text);
    insta::assert_snapshot!("opening_verdict_160x48", draw(&s, 160, 48));

    assert_eq!(key(&mut s, KeyCode::Enter), OpeningReply::None, "a not-ready run asks first");
    let text = draw(&s, 80, 24);
    assert!(text.contains("Start anyway?") && text.contains("1 failed check"), "{text}");
    insta::assert_snapshot!("opening_start_anyway_80x24", text);
    assert_eq!(key(&mut s, KeyCode::Char('n')), OpeningReply::None, "any key but y goes back");
    assert!(!draw(&s, 80, 24).contains("Start anyway?"));
    assert_eq!(key(&mut s, KeyCode::Down), OpeningReply::None);
    assert_eq!(s.scroll, 1);
    assert_eq!(key(&mut s, KeyCode::Enter), OpeningReply::None);
    assert_eq!(key(&mut s, KeyCode::Char('y')), OpeningReply::Start);
}
