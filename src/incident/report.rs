//! The incident report (`incidents/<id>/report.md|json`, `junit.xml`): every application's run report
//! (`journal::report`, the one fold of its journal) combined: per application RTO and RPO achieved against
//! target, the incident's verdict, one timeline of every application's steps, every decision with its application.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use super::record::IncidentRecord;
use crate::journal::report::{Decision, Report};
use crate::journal::{JournalError, StateDir};
use crate::util::fmt_duration;

#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    pub format: &'static str,
    pub incident_id: String,
    pub name: String,
    pub title: String,
    pub operator: String,
    pub incident_start: Timestamp,
    /// `recovered` (every application recovered within its RTO and RPO), `recovered-late` (recovered, a target
    /// missed), `not-recovered`.
    pub verdict: String,
    pub apps: Vec<AppReport>,
    pub timeline: Vec<TimelineEntry>,
    pub decisions: Vec<AppDecision>,
    /// The incident's own messages to the bridge (`incident_started`, `incident_finished`) and how each delivery
    /// went: the incident directory's `notify.jsonl` (each application's are in its own report).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::log::Delivery>,
    /// API calls and throttled responses of the last session (simulator).
    pub api_calls: u64,
    pub throttled: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    pub app: String,
    pub run_id: String,
    pub runbook: String,
    pub outcome: String,
    pub rto_target_secs: u64,
    pub rto_achieved_secs: Option<u64>,
    pub rto_met: Option<bool>,
    pub rpo_target_secs: u64,
    pub rpo_achieved_secs: Option<i64>,
    pub rpo_met: Option<bool>,
    pub steps: usize,
    pub steps_succeeded: usize,
    /// A problem building this application's report (its run directory or journal is unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    pub app: String,
    pub step: String,
    /// `started`, or the step's outcome when it ended.
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppDecision {
    pub app: String,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Builds the incident report from its record and each application's journal (each run's own reports are
/// written again on the way).
pub fn build(state: &StateDir, record: &IncidentRecord) -> IncidentReport {
    let mut apps = Vec::new();
    let mut timeline = Vec::new();
    let mut decisions = Vec::new();
    for a in &record.apps {
        let built: Result<Report, JournalError> =
            state.find_run(&a.run_id).and_then(|d| crate::journal::report::write_all(&d));
        match built {
            Ok(r) => {
                for s in &r.steps {
                    if let Some(t) = s.start {
                        timeline.push(TimelineEntry {
                            at: t,
                            app: a.app.clone(),
                            step: s.id.clone(),
                            what: "started".into(),
                        });
                    }
                    if let Some(t) = s.end {
                        timeline.push(TimelineEntry {
                            at: t,
                            app: a.app.clone(),
                            step: s.id.clone(),
                            what: s.outcome.clone(),
                        });
                    }
                }
                decisions.extend(r.decisions.iter().map(|d| AppDecision { app: a.app.clone(), decision: d.clone() }));
                apps.push(AppReport {
                    app: a.app.clone(),
                    run_id: a.run_id.clone(),
                    runbook: a.runbook.clone(),
                    outcome: r.outcome.clone().unwrap_or_else(|| "not finished".into()),
                    rto_target_secs: r.rto.target_secs,
                    rto_achieved_secs: r.rto.achieved_secs,
                    rto_met: r.rto.met,
                    rpo_target_secs: r.rpo.target_secs,
                    rpo_achieved_secs: r.rpo.achieved_secs,
                    rpo_met: r.rpo.met,
                    steps: r.steps.len(),
                    steps_succeeded: r.steps.iter().filter(|s| s.outcome == "succeeded").count(),
                    problem: r.journal.problem.clone(),
                });
            }
            Err(e) => apps.push(AppReport {
                app: a.app.clone(),
                run_id: a.run_id.clone(),
                runbook: a.runbook.clone(),
                outcome: "unreadable".into(),
                rto_target_secs: 0,
                rto_achieved_secs: None,
                rto_met: None,
                rpo_target_secs: 0,
                rpo_achieved_secs: None,
                rpo_met: None,
                steps: 0,
                steps_succeeded: 0,
                problem: Some(e.to_string()),
            }),
        }
    }
    timeline.sort_by(|x, y| x.at.cmp(&y.at).then_with(|| x.app.cmp(&y.app)));
    decisions.sort_by_key(|x| x.decision.at);
    let all_recovered = apps.iter().all(|a| a.outcome == "recovered");
    let all_met = apps.iter().all(|a| a.rto_met == Some(true) && a.rpo_met != Some(false));
    let verdict = match (all_recovered, all_met) {
        (true, true) => "recovered",
        (true, false) => "recovered-late",
        _ => "not-recovered",
    };
    let last = record.sessions.last();
    IncidentReport {
        format: "drconsole-incident-report/1",
        incident_id: record.incident_id.clone(),
        name: record.name.clone(),
        title: record.title.clone(),
        operator: record.operator.clone(),
        incident_start: record.incident_start,
        verdict: verdict.into(),
        apps,
        timeline,
        decisions,
        notifications: crate::notify::log::read_log(&record.dir(state)),
        api_calls: last.map(|s| s.calls.values().sum()).unwrap_or(0),
        throttled: last.and_then(|s| s.limits.as_ref()).map(|l| l.throttled.values().sum()).unwrap_or(0),
    }
}

fn secs(s: Option<u64>) -> String {
    s.map_or_else(|| "-".into(), |s| fmt_duration(std::time::Duration::from_secs(s)))
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "-",
    }
}

pub fn markdown(r: &IncidentReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Incident report: {}\n", r.title);
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Incident | {} ({}) |", r.incident_id, r.name);
    let _ = writeln!(o, "| Verdict | **{}** |", r.verdict);
    let _ = writeln!(o, "| Incident start | {} |", r.incident_start.strftime("%Y-%m-%d %H:%M:%SZ"));
    let _ = writeln!(o, "| Operator | {} |", r.operator);
    let _ = writeln!(o, "| API calls | {} ({} throttled) |\n", r.api_calls, r.throttled);
    let _ = writeln!(o, "## Applications\n");
    let _ = writeln!(o, "| Application | Outcome | RTO achieved / target | RPO achieved / target | Steps | Run |");
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for a in &r.apps {
        let rpo = a.rpo_achieved_secs.map(|s| s.unsigned_abs());
        let _ = writeln!(
            o,
            "| {} | {} | {} / {} ({}) | {} / {} ({}) | {}/{} | {} |",
            a.app,
            a.outcome,
            secs(a.rto_achieved_secs),
            secs(Some(a.rto_target_secs)),
            met(a.rto_met),
            secs(rpo),
            secs(Some(a.rpo_target_secs)),
            met(a.rpo_met),
            a.steps_succeeded,
            a.steps,
            a.run_id
        );
    }
    let _ = writeln!(o, "\n## Timeline\n\n| Time | Application | Step | |\n|---|---|---|---|");
    for t in &r.timeline {
        let _ = writeln!(o, "| {} | {} | {} | {} |", t.at.strftime("%H:%M:%SZ"), t.app, t.step, t.what);
    }
    let _ = writeln!(
        o,
        "\n## Decisions\n\n| Time | Application | Decision | Step | By | Detail |\n|---|---|---|---|---|---|"
    );
    for d in &r.decisions {
        let x = &d.decision;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            x.at.strftime("%H:%M:%SZ"),
            d.app,
            x.what,
            x.step.as_deref().unwrap_or(""),
            x.by.replace('|', "\\|"),
            x.detail.replace('|', "\\|")
        );
    }
    if !r.notifications.is_empty() {
        o.push('\n'); // after the decisions table
    }
    crate::journal::report::notifications_section(&mut o, &r.notifications, "the incident");
    o
}

pub fn json(r: &IncidentReport) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One test suite per application, with three cases: recovered, RTO, RPO.
pub fn junit(r: &IncidentReport) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures: usize = r
        .apps
        .iter()
        .map(|a| {
            usize::from(a.outcome != "recovered")
                + usize::from(a.rto_met != Some(true))
                + usize::from(a.rpo_met == Some(false))
        })
        .sum();
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
        xml(&r.incident_id),
        r.apps.len() * 3
    );
    for a in &r.apps {
        let _ = writeln!(o, "  <testsuite name=\"{}\" tests=\"3\">", xml(&a.app));
        let mut case = |name: &str, ok: bool, msg: String| {
            if ok {
                let _ = writeln!(o, "    <testcase classname=\"{}\" name=\"{name}\"/>", xml(&a.app));
            } else {
                let _ = writeln!(
                    o,
                    "    <testcase classname=\"{}\" name=\"{name}\"><failure message=\"{}\"/></testcase>",
                    xml(&a.app),
                    xml(&msg)
                );
            }
        };
        case("recovered", a.outcome == "recovered", format!("outcome: {}", a.outcome));
        case(
            "rto",
            a.rto_met == Some(true),
            format!("RTO achieved {} against {}", secs(a.rto_achieved_secs), secs(Some(a.rto_target_secs))),
        );
        case(
            "rpo",
            a.rpo_met != Some(false),
            format!(
                "RPO achieved {} against {}",
                secs(a.rpo_achieved_secs.map(|s| s.unsigned_abs())),
                secs(Some(a.rpo_target_secs))
            ),
        );
        let _ = writeln!(o, "  </testsuite>");
    }
    o.push_str("</testsuites>\n");
    o
}

/// Builds the incident report and writes its three files into the incident's directory.
pub fn write_all(state: &StateDir, dir: &Path) -> Result<IncidentReport, JournalError> {
    let record = IncidentRecord::read(dir)?;
    let r = build(state, &record);
    crate::journal::write_atomic(&dir.join("report.md"), markdown(&r).as_bytes())?;
    crate::journal::write_atomic(&dir.join("report.json"), json(&r).as_bytes())?;
    crate::journal::write_atomic(&dir.join("junit.xml"), junit(&r).as_bytes())?;
    Ok(r)
}
