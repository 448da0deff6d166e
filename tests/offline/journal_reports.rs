#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden tests of the three reports (Markdown, JSON, JUnit) from a fixed synthetic journal, and a structural check
//! of the JUnit file: parsed back, testsuite/testcase/failure elements, counts consistent.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use quick_xml::events::Event as Xml;
use serde_json::{Map, Value, json};

use drconsole::engine::{Candidate, Event, EventKind, EventSink, Outcome, Prompt, StepInfo};
use drconsole::journal::{Journal, LockInfo, Meta, Note, RunSettings, SessionInfo, report};
use drconsole::runbook::OnFailure;

const T0: i64 = 1_790_000_000;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap()
}

fn step(id: &str, title: &str, action: &str, confirm: bool) -> StepInfo {
    StepInfo {
        id: id.into(),
        title: title.into(),
        action: action.into(),
        needs: Vec::new(),
        expected_secs: 600,
        confirm,
        on_failure: OnFailure::Pause,
        p50_secs: None,
        p90_secs: None,
    }
}

fn outputs(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else { panic!() };
    m
}

fn started(s: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted { step: s.into(), attempt, plan: String::new(), params: Map::new() }
}

fn ok(s: &str, attempt: u32, ms: u64, out: Value) -> EventKind {
    EventKind::StepSucceeded { step: s.into(), attempt, duration_ms: ms, outputs: outputs(out) }
}

fn resource(s: &str, phase: &str, kind: &str, id: &str, state: &str) -> EventKind {
    EventKind::Resource {
        step: s.into(),
        phase: phase.into(),
        kind: kind.into(),
        id: id.into(),
        region: "us-west-2".into(),
        state: state.into(),
    }
}

fn run_started(steps: Vec<StepInfo>) -> EventKind {
    EventKind::RunStarted {
        run_id: "20260922-021500-ab12".into(),
        runbook: "cross-sell-failover".into(),
        title: "Cross-sell: fail over to us-west-2".into(),
        app: "cross-sell".into(),
        path: "runbooks/cross-sell.toml".into(),
        sha256: "3f1c0e5b9a7d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6".into(),
        backend: "sim".into(),
        account: Some("123456789012".into()),
        primary: "us-east-1".into(),
        secondary: "us-west-2".into(),
        incident_start: ts(-900),
        rto_secs: 7200,
        rpo_secs: 3600,
        deadline: ts(6300),
        speed: 1.0,
        steps,
        drill: false,
    }
}

fn meta() -> Meta {
    Meta {
        run_id: "20260922-021500-ab12".into(),
        runbook: "cross-sell-failover".into(),
        title: "Cross-sell: fail over to us-west-2".into(),
        runbook_path: "/srv/dr/runbooks/cross-sell.toml".into(),
        sha256: "3f1c0e5b9a7d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6".into(),
        files: vec!["runbook/0-cross-sell.toml".into()],
        user: "alice".into(),
        host: "bastion-1".into(),
        backend: "sim".into(),
        account: Some("123456789012".into()),
        primary: "us-east-1".into(),
        secondary: "us-west-2".into(),
        pid: 4242,
        started: ts(0),
        lock_key: "cross-sell-failover--123456789012--us-east-1--us-west-2".into(),
        drill_record: None,
        settings: RunSettings { speed: 1.0, max_parallel: 16, ..RunSettings::default() },
        sessions: vec![SessionInfo {
            number: 1,
            user: "alice".into(),
            host: "bastion-1".into(),
            pid: 4242,
            started: ts(0),
            resumed: false,
            forced: false,
        }],
    }
}

enum Rec {
    E(i64, EventKind),
    N(Note),
}

fn write_run(dir: &Path, records: Vec<Rec>) {
    std::fs::write(dir.join("meta.json"), serde_json::to_string_pretty(&meta()).unwrap()).unwrap();
    let mut j = Journal::open(dir).unwrap();
    j.set_reports(false);
    let mut seq = 0;
    for r in records {
        match r {
            Rec::E(at, kind) => {
                seq += 1;
                j.event(&Event::new(seq, ts(at), kind));
            }
            Rec::N(n) => j.note(n).unwrap(),
        }
    }
}

/// A recovery with a chosen recovery point, a retry, a reused resource, a crash and a resume (lock taken over),
/// an approval, a failed check (on_failure = continue), a skipped step, and the RTO met.
fn recovered_run(dir: &Path) {
    use Rec::{E, N};
    let steps = vec![
        step("pick_point", "Choose the recovery point", "rds.pick_recovery_point", false),
        step("restore_db", "Restore the database in us-west-2", "rds.restore_snapshot", false),
        step("nat", "Ensure the NAT gateway", "nat.ensure_gateway", false),
        step("dns", "Fail DNS over to us-west-2", "route53.failover", true),
        step("check_http", "The site answers", "check.http", false),
        step("check_tcp", "The database port answers", "check.tcp", false),
        step("notify", "Announce in #incidents", "shell", false),
    ];
    let candidate = Candidate {
        id: "rds:crosssell-prod-2026-09-22-01-40".into(),
        kind: "rds-snapshot".into(),
        region: "us-west-2".into(),
        time: ts(-2100),
        age_secs: 2100,
        encrypted: true,
        size_gib: Some(500),
        rpo_met: true,
        arn: None,
        source: String::new(),
    };
    write_run(
        dir,
        vec![
            N(Note::Session {
                number: 1,
                resumed: false,
                user: "alice".into(),
                host: "bastion-1".into(),
                pid: 4242,
                at: ts(0),
            }),
            E(0, run_started(steps.clone())),
            E(
                1,
                EventKind::Identity {
                    account: "123456789012".into(),
                    arn: "arn:aws:sts::123456789012:assumed-role/DR/alice".into(),
                },
            ),
            E(2, started("pick_point", 1)),
            E(
                3,
                EventKind::OperatorRequest {
                    step: "pick_point".into(),
                    prompt: Prompt::Choice {
                        message: "Choose a recovery point".into(),
                        candidates: vec![candidate.clone()],
                    },
                },
            ),
            E(
                60,
                EventKind::OperatorAnswered {
                    step: "pick_point".into(),
                    answer: candidate.id.clone(),
                    by: "alice@bastion-1".into(),
                },
            ),
            E(
                61,
                EventKind::RecoveryPointChosen {
                    step: "pick_point".into(),
                    id: candidate.id.clone(),
                    kind: "rds-snapshot".into(),
                    region: "us-west-2".into(),
                    time: ts(-2100),
                    rpo_secs: 1200,
                    rpo_met: true,
                    verdict: None,
                    bound: false,
                },
            ),
            E(62, ok("pick_point", 1, 60_000, json!({"id": candidate.id}))),
            E(63, started("restore_db", 1)),
            E(63, started("nat", 1)),
            E(64, resource("nat", "found", "nat-gateway", "nat-0abc1234", "available")),
            E(65, ok("nat", 1, 2_000, json!({"id": "nat-0abc1234"}))),
            E(64, resource("restore_db", "creating", "db-instance", "crosssell-prod-dr", "")),
            E(
                70,
                EventKind::StepRetrying {
                    step: "restore_db".into(),
                    attempt: 1,
                    error: "RestoreDBInstanceFromDBSnapshot: ThrottlingException: Rate exceeded".into(),
                    delay_ms: 4_000,
                    cause: None,
                },
            ),
            E(74, started("restore_db", 2)),
            E(75, resource("restore_db", "created", "db-instance", "crosssell-prod-dr", "creating")),
            // the SSH session dropped here; bob resumed the run from another bastion
            N(Note::Session {
                number: 2,
                resumed: true,
                user: "bob".into(),
                host: "bastion-2".into(),
                pid: 5151,
                at: ts(900),
            }),
            N(Note::LockTakenOver {
                by: "bob@bastion-2".into(),
                previous: LockInfo {
                    user: "alice".into(),
                    host: "bastion-1".into(),
                    pid: 4242,
                    since: ts(0),
                    run_id: "20260922-021500-ab12".into(),
                    runbook: "cross-sell-failover".into(),
                },
                reason: "--take-over-lock: the holder was on another host (bastion-1)".into(),
                at: ts(900),
            }),
            E(900, run_started(steps)),
            E(901, started("restore_db", 3)),
            E(902, resource("restore_db", "found", "db-instance", "crosssell-prod-dr", "creating")),
            E(
                2700,
                ok(
                    "restore_db",
                    3,
                    1_799_000,
                    json!({"endpoint": "crosssell-prod-dr.abc.us-west-2.rds.amazonaws.com"}),
                ),
            ),
            E(
                2701,
                EventKind::StepAwaitingApproval {
                    step: "dns".into(),
                    plan: "point app.example.com at the us-west-2 ALB".into(),
                },
            ),
            E(2760, EventKind::StepApproved { step: "dns".into(), by: "bob@bastion-2".into() }),
            E(2761, started("dns", 1)),
            E(2762, resource("dns", "creating", "route53-change", "", "")),
            E(2763, resource("dns", "created", "route53-change", "C0123456789ABC", "PENDING")),
            E(2820, ok("dns", 1, 59_000, json!({"change": "C0123456789ABC"}))),
            E(2821, started("check_http", 1)),
            E(2821, started("check_tcp", 1)),
            E(2823, ok("check_http", 1, 2_000, json!({"status": 200}))),
            E(
                2831,
                EventKind::StepFailed {
                    step: "check_tcp".into(),
                    attempt: 1,
                    error: "connect to crosssell-prod-dr:5432: connection refused".into(),
                    policy: OnFailure::Continue,
                    cause: None,
                },
            ),
            E(
                2840,
                EventKind::StepSkipped {
                    step: "notify".into(),
                    reason: "Slack is down; announced on the bridge".into(),
                    by: "bob@bastion-2".into(),
                },
            ),
            E(
                2841,
                EventKind::RunFinished {
                    outcome: Outcome::Recovered,
                    duration_secs: 1841,
                    rto_secs: 7200,
                    rto_achieved_secs: 3741,
                    rto_met: true,
                    succeeded: 5,
                    failed: 1,
                    skipped: 1,
                    cancelled: 0,
                    message: "every step succeeded or was skipped".into(),
                },
            ),
        ],
    );
}

/// An aborted run: one step succeeded, one failed and paused the run, the operator aborted, the rest never ran.
fn aborted_run(dir: &Path) {
    use Rec::{E, N};
    let steps = vec![
        step("a", "A & <b>", "shell", false),
        step("b", "B \"quoted\"", "rds.restore_snapshot", false),
        step("c", "C", "check.http", false),
    ];
    write_run(
        dir,
        vec![
            N(Note::Session {
                number: 1,
                resumed: false,
                user: "alice".into(),
                host: "bastion-1".into(),
                pid: 4242,
                at: ts(0),
            }),
            E(0, run_started(steps)),
            E(1, started("a", 1)),
            E(2, ok("a", 1, 1000, json!({}))),
            E(3, started("b", 1)),
            E(
                9,
                EventKind::StepFailed {
                    step: "b".into(),
                    attempt: 1,
                    error: "snapshot <x> & \"y\" not found".into(),
                    policy: OnFailure::Pause,
                    cause: None,
                },
            ),
            E(9, EventKind::RunPaused { reason: "step `b` failed".into() }),
            E(30, EventKind::StepCancelled { step: "c".into(), reason: "not started: the run ended (aborted)".into() }),
            E(
                30,
                EventKind::RunFinished {
                    outcome: Outcome::Aborted,
                    duration_secs: 30,
                    rto_secs: 7200,
                    rto_achieved_secs: 930,
                    rto_met: false,
                    succeeded: 1,
                    failed: 1,
                    skipped: 0,
                    cancelled: 1,
                    message: "aborted by alice@bastion-1: wrong snapshot".into(),
                },
            ),
        ],
    );
}

#[test]
fn golden_markdown_json_and_junit_reports() {
    let d = tempfile::tempdir().unwrap();
    recovered_run(d.path());
    let r = report::write_all(d.path()).unwrap();
    insta::assert_snapshot!("report_md", report::markdown(&r));
    insta::assert_snapshot!("report_json", report::json(&r));
    insta::assert_snapshot!("junit_xml", report::junit(&r));
    // the files written are the same texts
    assert_eq!(std::fs::read_to_string(d.path().join("report.md")).unwrap(), report::markdown(&r));
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(parsed["outcome"], "recovered");
    assert_eq!(parsed["rto"]["met"], true);
    assert_eq!(parsed["rpo"]["achieved_secs"], 1200);
}

/// What a JUnit file says, read back with an XML parser.
#[derive(Debug, Default)]
struct Junit {
    suites: usize,
    attrs: BTreeMap<String, String>,
    cases: Vec<(String, Option<(String, String)>)>, // name, (failure|skipped, message)
    failure_elements: usize,
}

fn parse_junit(xml: &str) -> Junit {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut j = Junit::default();
    let mut stack: Vec<String> = Vec::new();
    let attrs = |e: &quick_xml::events::BytesStart| -> BTreeMap<String, String> {
        e.attributes()
            .map(|a| {
                let a = a.unwrap();
                (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), a.unescape_value().unwrap().into_owned())
            })
            .collect()
    };
    loop {
        let ev = reader.read_event().unwrap_or_else(|e| panic!("invalid XML at {}: {e}", reader.buffer_position()));
        let (start, empty) = match &ev {
            Xml::Start(e) => (Some(e.clone()), false),
            Xml::Empty(e) => (Some(e.clone()), true),
            Xml::End(_) => {
                stack.pop();
                (None, false)
            }
            Xml::Eof => break,
            _ => (None, false),
        };
        let Some(e) = start else { continue };
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        let parent = stack.last().cloned().unwrap_or_default();
        let a = attrs(&e);
        match name.as_str() {
            "testsuites" => assert!(parent.is_empty(), "testsuites must be the root"),
            "testsuite" => {
                assert_eq!(parent, "testsuites");
                j.suites += 1;
                j.attrs = a;
            }
            "testcase" => {
                assert_eq!(parent, "testsuite");
                assert!(a.contains_key("classname") && a.contains_key("time"), "{a:?}");
                j.cases.push((a["name"].clone(), None));
            }
            "failure" | "skipped" => {
                assert_eq!(parent, "testcase", "<{name}> outside a testcase");
                assert!(a.contains_key("message"), "<{name}> without a message");
                if name == "failure" {
                    j.failure_elements += 1;
                }
                let last = j.cases.last_mut().unwrap();
                assert!(last.1.is_none(), "two results in testcase {}", last.0);
                last.1 = Some((name.clone(), a["message"].clone()));
            }
            "properties" | "property" | "system-out" => {}
            other => panic!("unexpected element <{other}>"),
        }
        if !empty {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    j
}

fn count(j: &Junit, what: &str) -> usize {
    j.cases.iter().filter(|(_, r)| r.as_ref().is_some_and(|(k, _)| k == what)).count()
}

#[test]
fn the_junit_file_parses_back_with_one_testsuite_one_testcase_per_step_and_consistent_counts() {
    for (name, build, want_failures, want_skipped) in
        [("recovered", recovered_run as fn(&Path), 1, 1), ("aborted", aborted_run as fn(&Path), 2, 0)]
    {
        let d = tempfile::tempdir().unwrap();
        build(d.path());
        let r = report::write_all(d.path()).unwrap();
        let xml = std::fs::read_to_string(d.path().join("junit.xml")).unwrap();
        let j = parse_junit(&xml);
        assert_eq!(j.suites, 1, "{name}");
        let ids: Vec<&str> = r.steps.iter().map(|s| s.id.as_str()).collect();
        let cases: Vec<&str> = j.cases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(cases, ids, "{name}: one testcase per step, in order");
        assert_eq!(j.attrs["tests"], ids.len().to_string(), "{name}");
        assert_eq!(j.attrs["failures"], count(&j, "failure").to_string(), "{name}");
        assert_eq!(j.attrs["skipped"], count(&j, "skipped").to_string(), "{name}");
        assert_eq!(j.attrs["errors"], "0");
        assert_eq!(count(&j, "failure"), want_failures, "{name}: {xml}");
        assert_eq!(count(&j, "skipped"), want_skipped, "{name}: {xml}");
        assert_eq!(j.failure_elements, want_failures);
        if name == "aborted" {
            // failure messages survive escaping; a step that never ran in a run that did not recover is a failure
            let b = j.cases.iter().find(|(n, _)| n == "b").unwrap();
            assert_eq!(b.1.as_ref().unwrap().1, "snapshot <x> & \"y\" not found");
            let c = j.cases.iter().find(|(n, _)| n == "c").unwrap();
            assert!(c.1.as_ref().unwrap().1.starts_with("not started"), "{:?}", c.1);
            assert_eq!(r.decisions.iter().filter(|d| d.what == "aborted").count(), 1);
            assert_eq!(r.decisions[r.decisions.len() - 1].by, "alice@bastion-1");
        }
    }
}

/// A step that waited 30 minutes for its approval: the wait is its own column, counted in the step's duration and
/// in the RTO row, and the step's row starts when it began waiting.
#[test]
fn an_approval_wait_is_shown_and_counted() {
    use Rec::E;
    let d = tempfile::tempdir().unwrap();
    let steps = vec![step("dns", "Fail DNS over to us-west-2", "route53.upsert", true)];
    write_run(
        d.path(),
        vec![
            E(0, run_started(steps)),
            E(100, EventKind::StepAwaitingApproval { step: "dns".into(), plan: "UPSERT".into() }),
            E(1900, EventKind::StepApproved { step: "dns".into(), by: "alice@bastion-1".into() }),
            E(1900, started("dns", 1)),
            E(1960, ok("dns", 1, 60_000, json!({}))),
            E(
                1960,
                EventKind::RunFinished {
                    outcome: Outcome::Recovered,
                    duration_secs: 1960,
                    rto_secs: 7200,
                    rto_achieved_secs: 2860,
                    rto_met: true,
                    succeeded: 1,
                    failed: 0,
                    skipped: 0,
                    cancelled: 0,
                    message: "every step succeeded or was skipped".into(),
                },
            ),
        ],
    );
    let r = report::build(d.path()).unwrap();
    let dns = &r.steps[0];
    assert_eq!(dns.wait_secs, 1800);
    assert_eq!(dns.start, Some(ts(100)), "the row starts when the step began waiting");
    assert_eq!(dns.duration_secs, Some(1860));
    assert_eq!(r.rto.waited_secs, 1800);
    let md = report::markdown(&r);
    assert!(md.contains("| Waited |"), "{md}");
    // the RTO's breakdown: waiting for a person apart from machine time, which make up the RTO achieved
    let machine = r.rto.machine_secs.unwrap();
    assert_eq!(machine + 1800, r.rto.achieved_secs.unwrap());
    let machine = drconsole::util::fmt_duration(std::time::Duration::from_secs(machine));
    assert!(md.contains(&format!("(30m00s waiting for people, {machine} machine time)")), "{md}");
    let row = md.lines().find(|l| l.starts_with("| `dns`")).unwrap();
    assert!(row.contains("| 30m"), "{row}");
}

/// The run's RPO is the oldest data restored across every recovery point used: an EBS set older than the RPO
/// misses it even when the database point met it, and the report names the set.
#[test]
fn an_ebs_set_older_than_the_rpo_misses_the_run_rpo() {
    use Rec::E;
    let d = tempfile::tempdir().unwrap();
    let steps = vec![
        step("pick_db", "Choose the recovery point", "recovery_point.select", false),
        step("restore_data", "Restore the data volumes", "ebs.restore_set", false),
    ];
    let point = |s: &str, id: &str, kind: &str, age: i64| EventKind::RecoveryPointChosen {
        step: s.into(),
        id: id.into(),
        kind: kind.into(),
        region: "us-west-2".into(),
        time: ts(-900 - age),
        rpo_secs: age,
        rpo_met: age <= 3600,
        verdict: None,
        bound: false,
    };
    write_run(
        d.path(),
        vec![
            E(0, run_started(steps)),
            E(1, point("pick_db", "rds:crosssell-2026", "rds-snapshot", 445)),
            E(2, point("restore_data", "EBS set app=cross-sell", "ebs-set", 3960)),
            E(
                2,
                EventKind::StepWarning {
                    step: "restore_data".into(),
                    message:
                        "EBS set app=cross-sell: its 3 members are 49m apart (tolerance 15m): the set is not consistent"
                            .into(),
                },
            ),
        ],
    );
    let r = report::build(d.path()).unwrap();
    assert_eq!(r.rpo.achieved_secs, Some(3960));
    assert_eq!(r.rpo.met, Some(false));
    assert_eq!(r.rpo.recovery_points.len(), 2);
    assert_eq!(r.warnings.len(), 1);
    let md = report::markdown(&r);
    assert!(md.contains("EBS set app=cross-sell"), "{md}");
    assert!(md.contains("**MISSED**"), "{md}");
    assert!(md.contains("## Warnings"), "{md}");
}
