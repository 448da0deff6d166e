//! Region health on the simulator (issue 23): a regional outage and a brownout open us-east-1's circuit, said in
//! the NDJSON, the headless text and the report; the run carries on from the secondary's copies; `plan` names the
//! control-plane dependency; the data-plane procedure keeps in step with the shipped one.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn run_sim(runbook: &Path, state: &Path, extra: &[&str], json: bool) -> (i32, String) {
    let mut args = vec!["--headless", "--sim", "--speed", "3000", "--yes", "--recovery-point", "latest"];
    if json {
        args.push("--json");
    }
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", state)
        .args(args)
        .args(extra)
        .arg(runbook)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn events(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not NDJSON: {e}: {l}"))).collect()
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

fn world(dir: &Path, body: &str) -> String {
    let p = dir.join("world.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

const OUTAGE_RUNBOOK: &str = "runbooks/tabletop/region-outage.toml";

/// The run's duration (run time) and when us-east-1's circuit opened, after the first call to it (the run's start).
fn outage(mode: &str) -> (u64, i64, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(
        tmp.path(),
        &format!(
            "[world]\n{mode} = [\"us-east-1\"]\n[[resource]]\nkind = \"image\"\nname = \"cross-sell-web\"\nregion = \"us-west-2\"\n"
        ),
    );
    let (code, out) = run_sim(Path::new(OUTAGE_RUNBOOK), tmp.path(), &["--world", &w], true);
    let ev = events(&out);
    assert_eq!(code, 0, "{mode}: {:?}", of_type(&ev, "run_finished"));
    let start = ts(&of_type(&ev, "run_started")[0]["ts"]);
    let down = of_type(&ev, "region_unreachable");
    assert_eq!(down.len(), 1, "{mode}: one opening for the run: {down:?}");
    assert_eq!(down[0]["region"], "us-east-1");
    let after = ts(&down[0]["since"]).duration_since(start).as_secs();
    let dur = of_type(&ev, "run_finished")[0]["duration_secs"].as_u64().unwrap();
    (dur, after, ev)
}

#[test]
fn a_brownout_on_the_simulator_is_known_within_60_s_and_costs_little_more_than_an_outage() {
    let (down_dur, down_after, down_ev) = outage("unavailable_regions");
    let (brown_dur, brown_after, brown_ev) = outage("brownout_regions");
    eprintln!(
        "figure: simulator, us-east-1 failing: recovered in {down_dur} s (run time), unreachable {down_after} s after \
         the start; in a brownout: {brown_dur} s, unreachable {brown_after} s after the start"
    );
    assert!(down_after <= 5, "an outage is known after a few failed calls: {down_after} s");
    assert!(brown_after <= 60 + 1, "a brownout is known within the 60 s window: {brown_after} s");
    assert!(brown_dur <= down_dur + 90, "{brown_dur} s vs {down_dur} s");
    let e = of_type(&down_ev, "region_unreachable")[0]["evidence"].as_str().unwrap().to_string();
    assert!(e.contains("5 failures in a row") && e.contains("simulated regional outage"), "{e}");
    let e = of_type(&brown_ev, "region_unreachable")[0]["evidence"].as_str().unwrap().to_string();
    assert!(e.contains("no answer to") && e.contains("for 60s"), "{e}");
    // the recovery point step knew us-east-1 was not listed, from the refusal
    for ev in [&down_ev, &brown_ev] {
        let pick = of_type(ev, "step_succeeded").into_iter().find(|e| e["step"] == "pick_db").unwrap().clone();
        assert_eq!(pick["outputs"]["unreachable"], "us-east-1", "{pick}");
    }
}

#[test]
fn the_headless_text_and_the_report_say_when_the_region_was_down() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(
        tmp.path(),
        "[world]\nbrownout_regions = [\"us-east-1\"]\n[[resource]]\nkind = \"image\"\nname = \"cross-sell-web\"\nregion = \"us-west-2\"\n",
    );
    let (code, out) = run_sim(Path::new(OUTAGE_RUNBOOK), tmp.path(), &["--world", &w], false);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.contains("REGION")).unwrap_or_else(|| panic!("no REGION line:\n{out}"));
    assert!(line.contains("us-east-1 is unreachable since") && line.contains("refused at once"), "{line}");
    let summary = out.lines().find(|l| l.starts_with("region:")).unwrap_or_else(|| panic!("no region summary:\n{out}"));
    assert!(summary.contains("us-east-1 unreachable since") && summary.contains("still unreachable"), "{summary}");
    let reports = out.lines().find_map(|l| l.strip_prefix("reports:  ")).unwrap_or_else(|| panic!("{out}"));
    let md = std::fs::read_to_string(Path::new(reports.trim()).join("report.md")).unwrap();
    let section = md.split("## Region health").nth(1).unwrap_or_else(|| panic!("no Region health section:\n{md}"));
    assert!(section.contains("| us-east-1 |") && section.contains("still unreachable at the end"), "{section}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(reports.trim()).join("report.json")).unwrap()).unwrap();
    assert_eq!(json["regions"][0]["region"], "us-east-1", "{}", json["regions"]);
    assert!(json["regions"][0]["until"].is_null());
}

#[test]
fn plan_names_the_control_plane_in_the_primary_region_and_the_data_plane_cut_over_needs_none() {
    let plan = |rb: &str| {
        let out = Command::cargo_bin("drconsole").unwrap().args(["plan", rb]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shipped = plan("runbooks/cross-sell.toml");
    assert!(
        shipped.contains(
            "! needs Route 53's control plane (ChangeResourceRecordSets), served from us-east-1, the primary region"
        ),
        "{shipped}"
    );
    assert!(
        shipped.contains("control planes in the primary region us-east-1: health_check (Route 53), dns (Route 53)"),
        "{shipped}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dataplane = std::fs::read_to_string("runbooks/cross-sell.toml").unwrap().replace(
        "extends = \"procedures/regional-failover.toml\"",
        "extends = \"procedures/regional-failover-dataplane.toml\"",
    );
    std::fs::create_dir_all(tmp.path().join("procedures")).unwrap();
    std::fs::copy(
        "runbooks/procedures/regional-failover-dataplane.toml",
        tmp.path().join("procedures/regional-failover-dataplane.toml"),
    )
    .unwrap();
    let rb = tmp.path().join("cross-sell.toml");
    std::fs::write(&rb, dataplane).unwrap();
    let p = plan(rb.to_str().unwrap());
    assert!(!p.contains("control plane"), "{p}");
    assert!(p.contains("route53.failover"), "{p}");
}

#[test]
fn the_data_plane_procedure_keeps_in_step_with_the_shipped_one() {
    let steps = |f: &str| -> Vec<toml::Value> {
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        doc["step"].as_array().unwrap().clone()
    };
    let shipped = steps("runbooks/procedures/regional-failover.toml");
    let dataplane = steps("runbooks/procedures/regional-failover-dataplane.toml");
    let cut = ["health_check", "dns", "verify_dns"];
    let before: Vec<&toml::Value> = shipped.iter().filter(|s| !cut.contains(&s["id"].as_str().unwrap())).collect();
    assert_eq!(before.len() + 1, dataplane.len());
    for (a, b) in before.iter().zip(&dataplane) {
        assert_eq!(*a, b, "the data-plane procedure's step {} differs from the shipped one's", b["id"]);
    }
    let last = dataplane.last().unwrap();
    assert_eq!(last["action"].as_str(), Some("route53.failover"));
    let shipped_vars: toml::Table =
        toml::from_str(&std::fs::read_to_string("runbooks/procedures/regional-failover.toml").unwrap()).unwrap();
    let dp_vars: toml::Table =
        toml::from_str(&std::fs::read_to_string("runbooks/procedures/regional-failover-dataplane.toml").unwrap())
            .unwrap();
    assert_eq!(shipped_vars["vars"], dp_vars["vars"]);
    assert_eq!(shipped_vars["target"], dp_vars["target"]);
}

#[test]
fn a_step_that_needs_the_unreachable_region_fails_at_once_naming_it_and_its_on_failure_applies() {
    // no copy of the AMI in us-west-2: copy_ami needs us-east-1, which is down
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path(), "[world]\nunavailable_regions = [\"us-east-1\"]\n");
    let (code, out) = run_sim(Path::new(OUTAGE_RUNBOOK), tmp.path(), &["--world", &w], true);
    let ev = events(&out);
    assert_eq!(code, 1, "{:?}", of_type(&ev, "run_finished"));
    let failed: Vec<&Value> = of_type(&ev, "step_failed").into_iter().filter(|e| e["step"] == "copy_ami").collect();
    assert_eq!(failed.len(), 1, "{:?}", of_type(&ev, "step_failed"));
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("us-east-1") && error.contains("unreachable"), "{error}");
    assert_eq!(failed[0]["attempt"], 1, "not retried: the refusal would repeat ({error})");
    assert!(
        of_type(&ev, "step_retrying").iter().all(|e| e["step"] != "copy_ami"),
        "{:?}",
        of_type(&ev, "step_retrying")
    );
    // on_failure applies (the default, pause: a headless run cannot wait, it aborts), a second of run time in; the
    // recovery point was chosen from us-west-2 meanwhile
    assert!(of_type(&ev, "step_succeeded").iter().any(|e| e["step"] == "pick_db"));
    let fin = of_type(&ev, "run_finished")[0];
    assert_eq!(fin["outcome"], "aborted", "{fin}");
    assert!(fin["message"].as_str().unwrap().contains("step `copy_ami` failed"), "{fin}");
    assert!(fin["duration_secs"].as_u64().unwrap() < 60, "failed at once: {fin}");
}

#[test]
fn the_console_header_shows_the_run_s_region_health_from_its_view() {
    use drconsole::run::EventKind;
    use drconsole::tui::Theme;
    use drconsole::tui::fixtures;
    let theme = Theme::preset("dark").unwrap();
    let mut e = fixtures::until_picker();
    e.push(
        3,
        EventKind::RegionUnreachable {
            region: "us-east-1".into(),
            evidence: "3 failures in a row, the last: HTTP 503 to rds DescribeDBSnapshots".into(),
            since: fixtures::at(2),
        },
    );
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let s = fixtures::state(&e, true, (w, h));
        let text = fixtures::text(&fixtures::render(&s, &theme, w, h));
        let row = text.lines().nth(1).unwrap();
        let since = fixtures::at(2).strftime("since %H:%M:%S").to_string();
        assert!(row.contains(&format!("us-east-1 unreachable {since}")), "{w}x{h}:\n{text}");
        assert_eq!(s.view.regions.len(), 1);
        assert!(s.view.regions[0].is_unreachable());
    }
    // a probe answered: the badge goes, the view keeps the period
    e.push(
        9,
        EventKind::RegionReachable {
            region: "us-east-1".into(),
            since: fixtures::at(2),
            evidence: "a probe was answered".into(),
        },
    );
    let s = fixtures::state(&e, true, (160, 48));
    let text = fixtures::text(&fixtures::render(&s, &theme, 160, 48));
    assert!(!text.lines().nth(1).unwrap().contains("unreachable"), "{text}");
    assert_eq!(s.view.regions[0].down.len(), 1);
    assert_eq!(
        (s.view.regions[0].down[0].since, s.view.regions[0].down[0].until),
        (fixtures::at(2), Some(fixtures::at(9)))
    );
    assert!(!s.view.regions[0].down[0].session_ended);
}

/// The tabletop ARC cut-over: us-east-1 down, its cluster endpoint listed first; the routing controls are set at
/// the next endpoint (us-west-2), and the step says where it went and why.
#[test]
fn routing_controls_are_set_at_another_endpoint_while_us_east_1_is_down_on_the_simulator() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = tmp.path().join("arc.toml");
    let arn =
        |cell: &str| format!("arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/{cell}");
    std::fs::write(
        &rb,
        format!(
            r#"[runbook]
name = "arc-tabletop"
title = "Tabletop: the ARC cut-over while us-east-1 is down"
app = "cross-sell"
rto = "2h"
rpo = "1h"

[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"

[[step]]
id = "cut_over"
title = "Turn us-west-2's cell on, us-east-1's off"
action = "route53.routing_control"
[step.with]
cluster_endpoints = ["https://host-e.route53-recovery-cluster.us-east-1.amazonaws.com/v1", "https://host-w.route53-recovery-cluster.us-west-2.amazonaws.com/v1"]
on = ["{}"]
off = ["{}"]
"#,
            arn("west"),
            arn("east")
        ),
    )
    .unwrap();
    let w = world(tmp.path(), "[world]\nunavailable_regions = [\"us-east-1\"]\n");
    let (code, out) = run_sim(&rb, tmp.path(), &["--world", &w], true);
    let ev = events(&out);
    assert_eq!(code, 0, "{:?}", of_type(&ev, "run_finished"));
    let done = of_type(&ev, "step_succeeded").into_iter().find(|e| e["step"] == "cut_over").unwrap().clone();
    assert_eq!(done["outputs"]["endpoint"], "us-west-2", "{done}");
    assert_eq!(done["outputs"]["states"], "west=On, east=Off", "{done}");
    assert_eq!(done["outputs"]["changed"], "true", "{done}");
    // one call's attempts failed there (too few to open its circuit): the step moved on and said so
    assert!(
        of_type(&ev, "step_progress").iter().any(|e| {
            let m = e["message"].as_str().unwrap();
            m.contains("cluster endpoint us-east-1") && m.contains("unavailable") && m.contains("trying the next")
        }),
        "{:?}",
        of_type(&ev, "step_progress")
    );
    // plan: a data plane, no control plane dependency
    let plan = Command::cargo_bin("drconsole").unwrap().args(["plan", rb.to_str().unwrap()]).output().unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("route53-recovery-cluster:UpdateRoutingControlStates") && !plan.contains("control plane ("),
        "{plan}"
    );
}

/// A resumed run: circuits are per process, so a region that was unreachable when session 1 stopped is history
/// there ("until session 1 ended, not known since"), not a current outage; session 2's own calls find it down
/// again and open a new period. The headless summary, report.md and report.json say the same.
#[test]
fn a_resumed_run_shows_an_earlier_session_s_outage_as_history_and_its_own_as_current() {
    // no copy of the AMI in us-west-2: copy_ami needs us-east-1, which is down; session 1 aborts there
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path(), "[world]\nunavailable_regions = [\"us-east-1\"]\n");
    let (code, out) = run_sim(Path::new(OUTAGE_RUNBOOK), tmp.path(), &["--world", &w], true);
    assert_eq!(code, 1, "{out}");
    let first = events(&out);
    assert_eq!(of_type(&first, "region_unreachable").len(), 1);
    // session 2: the same outage (the saved world), seen again by the new process
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", tmp.path())
        .args(["resume", "last", "--headless", "--yes", "--recovery-point", "latest"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let summary = text.lines().find(|l| l.starts_with("region:")).unwrap_or_else(|| panic!("no region line:\n{text}"));
    assert!(summary.contains("until session 1 ended at") && summary.contains("(not known since)"), "{summary}");
    assert!(summary.contains("(still unreachable)"), "session 2 saw it again: {summary}");
    let reports = text.lines().find_map(|l| l.strip_prefix("reports:  ")).unwrap_or_else(|| panic!("{text}"));
    let md = std::fs::read_to_string(Path::new(reports.trim()).join("report.md")).unwrap();
    let section = md.split("## Region health").nth(1).unwrap_or_else(|| panic!("no Region health section:\n{md}"));
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| us-east-1 |")).collect();
    assert_eq!(rows.len(), 2, "{section}");
    assert!(rows[0].contains("(session 1 ended; not known since)"), "{}", rows[0]);
    assert!(rows[1].contains("still unreachable at the end"), "{}", rows[1]);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(reports.trim()).join("report.json")).unwrap()).unwrap();
    let r = json["regions"].as_array().unwrap();
    assert_eq!((r[0]["session"].as_u64(), r[0]["session_ended"].as_bool()), (Some(1), Some(true)), "{r:?}");
    assert!(r[0]["until"].is_string(), "{r:?}");
    assert_eq!((r[1]["session"].as_u64(), r[1]["session_ended"].as_bool()), (Some(2), Some(false)), "{r:?}");
    assert!(r[1]["until"].is_null(), "{r:?}");
}

/// The five shipped application runbooks: `plan` names the cut-over's dependency on Route 53's control plane in
/// the primary region (both steps, and the summary line offering the data-plane ways around it); their data-plane
/// variant (`extends` the data-plane procedure, as each runbook's comment says) has none, and `preflight` on it
/// reports the failover record pair ready (the simulator provisions the pair as an account prepared for it has).
#[test]
fn the_shipped_failovers_name_the_control_plane_and_their_data_plane_variants_are_ready() {
    const FIVE: [&str; 5] =
        ["cross-sell", "inventory-management", "agent-payment", "customer-assistance", "vendor-assistance"];
    let plan = |rb: &Path| {
        let out = Command::cargo_bin("drconsole").unwrap().args(["plan", rb.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("procedures")).unwrap();
    std::fs::copy(
        "runbooks/procedures/regional-failover-dataplane.toml",
        tmp.path().join("procedures/regional-failover-dataplane.toml"),
    )
    .unwrap();
    let mut variants = Vec::new();
    for app in FIVE {
        let shipped = format!("runbooks/{app}.toml");
        let p = plan(Path::new(&shipped));
        for (step, call) in [("health_check", "CreateHealthCheck"), ("dns", "ChangeResourceRecordSets")] {
            let line = p
                .lines()
                .skip_while(|l| !l.contains(&format!(". {step}  [")))
                .find(|l| l.contains("! needs"))
                .unwrap_or_else(|| panic!("{app}: no control-plane line for {step}:\n{p}"));
            assert!(
                line.contains(&format!(
                    "needs Route 53's control plane ({call}), served from us-east-1, the primary region"
                )),
                "{app} {step}: {line}"
            );
        }
        assert!(
            p.contains("control planes in the primary region us-east-1: health_check (Route 53), dns (Route 53)")
                && p.contains("route53.routing_control"),
            "{app}:\n{p}"
        );
        let text = std::fs::read_to_string(&shipped).unwrap();
        assert!(text.contains("procedures/regional-failover-dataplane.toml"), "{app}'s runbook names the variant");
        let dataplane = text.replace(
            "extends = \"procedures/regional-failover.toml\"",
            "extends = \"procedures/regional-failover-dataplane.toml\"",
        );
        assert_ne!(dataplane, text, "{app} extends the shipped procedure");
        let rb = tmp.path().join(format!("{app}.toml"));
        std::fs::write(&rb, dataplane).unwrap();
        let p = plan(&rb);
        assert!(!p.contains("control plane"), "{app} data plane:\n{p}");
        variants.push(rb);
    }
    let state = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("drconsole")
        .unwrap()
        .env("DRCONSOLE_STATE_DIR", state.path())
        .args(["preflight", "--sim", "--json"])
        .args(&variants)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let reports = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    assert_eq!(reports.len(), 5, "{stdout}");
    for (r, app) in reports.iter().zip(FIVE) {
        let findings = r["findings"].as_array().unwrap();
        let pair = findings
            .iter()
            .find(|f| f["check"].as_str().unwrap().starts_with("failover record pair"))
            .unwrap_or_else(|| panic!("{app}: no failover record finding: {r:#}"));
        assert_eq!(pair["status"], "ok", "{app}: {pair}");
        let found = pair["found"].as_str().unwrap();
        assert!(found.starts_with(&format!("ready: SECONDARY → {app}-dr-alb")), "{app}: {found}");
        assert!(
            findings.iter().all(|f| !f["check"].as_str().unwrap().starts_with("control-plane dependency")),
            "{app}: {r:#}"
        );
    }
}
