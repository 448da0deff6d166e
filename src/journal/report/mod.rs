//! Evidence reports built from a run's journal: `report.md` for people, `report.json` for machines, `junit.xml`
//! for CI (one testsuite, one testcase per step). Written when a run ends and by `drconsole report RUN`.
//!
//! Everything comes from the journal and meta.json, which hold no secret values (the engine redacts them before
//! the journal sees an event), so the reports hold none either.

use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

mod json;
mod junit;
mod markdown;
pub(crate) use markdown::notifications as notifications_section;

pub use json::json;
pub use junit::junit;
pub use markdown::markdown;

use super::base::{JournalError, Note, write_atomic};
use super::meta::Meta;
use super::read::{ApplyRecord, Record, read_journal_prefix};
use crate::run::view::{DecisionView, ErrorView, Phase, PointView, RunView, SessionOpened, StepView};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `drconsole-report/1`: fields are added within a version, never renamed or removed.
    pub format: &'static str,
    pub run_id: String,
    pub runbook: RunbookInfo,
    pub operator: Operator,
    pub backend: String,
    pub account: Option<String>,
    /// The caller identity seen at run time (AWS), if recorded.
    pub identity: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub incident_start: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub ended: Option<Timestamp>,
    /// Times are simulated (the simulator); decisions carry their real time beside.
    pub simulated: bool,
    /// recovered, failed, aborted, blocked, refused, interrupted; `null` if the run has not ended (running or
    /// crashed).
    pub outcome: Option<String>,
    /// The outcome as every output says it: `recovered-late` when the run recovered but missed its RTO or RPO
    /// (`outcome` stays `recovered`); `null` while it has not ended.
    pub verdict: Option<String>,
    pub message: String,
    pub rto: Rto,
    pub rpo: Rpo,
    pub steps: Vec<StepReport>,
    pub decisions: Vec<Decision>,
    pub verification: Vec<Check>,
    pub errors: Vec<ErrorEntry>,
    /// Things a step found worth saying that did not fail it (a recovery set wider than its tolerance...).
    pub warnings: Vec<Warning>,
    pub sessions: Vec<SessionOpened>,
    pub journal: JournalHealth,
    /// Regions (or global control planes) that were unreachable during the run, and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionDown>,
    /// A drill's evidence (REL 9: recovery tested against RTO and RPO); absent for a real failover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_test: Option<RecoveryTest>,
    /// What `drconsole cleanup --force` did to a run that was not a drill (a drill's is in `recovery_test`); absent
    /// when it was never cleaned up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupResult>,
    /// Notifications to the bridge, one per message and webhook (`notify.jsonl`; URLs redacted); absent when the
    /// run had no webhook.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::log::Delivery>,
}

/// A region's unreachable periods during the run (`region_unreachable` / `region_reachable` events).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RegionDown {
    pub region: String,
    /// When its circuit opened.
    pub since: Timestamp,
    /// When a probe was answered (or, `session_ended`, when its session ended); `None`: still unreachable when the
    /// run ended.
    pub until: Option<Timestamp>,
    /// The session it was seen in (1 for the first).
    pub session: u32,
    /// Its session ended with the region still unreachable (a resumed session's circuits start closed): `until` is
    /// that session's end, not the region's recovery.
    pub session_ended: bool,
    /// What opened it (the last time).
    pub evidence: String,
}

/// The "Recovery test" section of a drill's report: measured RTO and RPO against target, every check, the
/// cleanup's result and the runbook's sha256, so one scheduled job yields the audit record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecoveryTest {
    /// `passed` (recovered, RTO and RPO met, every check succeeded, cleanup left nothing), else `failed`; `pending`
    /// while the run or its cleanup has not ended.
    pub verdict: String,
    pub rto_target_secs: u64,
    pub rto_achieved_secs: Option<u64>,
    pub rto_met: Option<bool>,
    pub rpo_target_secs: u64,
    pub rpo_achieved_secs: Option<i64>,
    pub rpo_met: Option<bool>,
    pub checks: Vec<Check>,
    pub cleanup: Option<CleanupResult>,
    pub runbook_sha256: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CleanupResult {
    /// How many times cleanup ran on this run (a killed one is run again).
    pub sessions: usize,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
    pub failed: Vec<String>,
    /// Still tagged with the run id after the last cleanup (must be empty); `null` if no cleanup finished.
    pub left: Option<Vec<String>>,
    /// Still tagged with the run id, kept on purpose because others use it (a shared NAT gateway, its address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<String>,
    pub clean: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunbookInfo {
    pub name: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Operator {
    pub user: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rto {
    pub target_secs: u64,
    pub achieved_secs: Option<u64>,
    pub met: Option<bool>,
    /// Time steps spent waiting for people (approvals, manual tasks, choices), all steps together.
    pub waited_secs: u64,
    /// The rest of the RTO achieved: time not spent waiting for a person (the machine's, and the time before the
    /// run started); `null` until the run ended.
    pub machine_secs: Option<u64>,
    /// The forecast at the run's start (P50/P90 from the runbook's history) against its actual finish; absent
    /// without a forecast from history (`crate::forecast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rpo {
    pub target_secs: u64,
    /// The data loss window of the recovery point chosen (the oldest, if several were chosen).
    pub achieved_secs: Option<i64>,
    pub met: Option<bool>,
    /// `met`, `missed` or `unknown` (a time known only as a bound within the RPO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::run::RpoVerdict>,
    /// `achieved_secs` is a lower bound (`≥`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bound: bool,
    pub recovery_points: Vec<RecoveryPoint>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecoveryPoint {
    pub step: String,
    pub id: String,
    pub kind: String,
    pub region: String,
    pub time: Timestamp,
    pub rpo_secs: i64,
    pub rpo_met: bool,
    pub verdict: crate::run::RpoVerdict,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bound: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub action: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub duration_secs: Option<u64>,
    /// Of the duration, the time spent waiting for a person (approval, manual task, choice).
    pub wait_secs: u64,
    pub attempts: u32,
    /// succeeded, failed, skipped, cancelled, running, awaiting approval, not started
    pub outcome: String,
    pub resources: Vec<Resource>,
    /// The last error, or the skip/cancel reason.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resource {
    pub phase: String,
    pub kind: String,
    pub id: String,
    pub region: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    /// Run time (simulated time in simulated runs).
    pub at: Timestamp,
    /// Real time, beside `at` in simulated runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall: Option<Timestamp>,
    /// approved, answered, confirmed done, skipped, retried, paused, resumed, aborted, interrupted, blocked, run
    /// resumed, forced, lock taken over
    pub what: String,
    pub step: Option<String>,
    pub by: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Warning {
    pub step: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub step: String,
    pub action: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorEntry {
    pub at: Timestamp,
    pub step: Option<String>,
    pub attempt: Option<u32>,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JournalHealth {
    pub records: usize,
    /// The last line was incomplete (the process was killed while writing it) and was left out.
    pub torn_tail: bool,
    /// A damaged line: the report covers the records before it.
    pub problem: Option<String>,
}

/// Builds the report of a run directory: the journal folded into a [`RunView`], then converted.
pub fn build(run_dir: &Path) -> Result<Report, JournalError> {
    let meta = Meta::read(run_dir)?;
    let (read, problem) = read_journal_prefix(run_dir)?;
    let mut view = RunView::new();
    // decisions in journal order: the view's (from events) and the notes' (sessions, forced, lock taken over);
    // a note's run time is that of the next event (notes are stamped with real time)
    let mut decisions: Vec<Decision> = Vec::new();
    let mut waiting_notes: Vec<usize> = Vec::new();
    for (_, rec) in &read.records {
        match rec {
            Record::Note(n) => {
                view.apply_record(rec);
                if let Some(d) = note(n) {
                    waiting_notes.push(decisions.len());
                    decisions.push(d);
                }
            }
            Record::Event(ev) => {
                let before = view.decisions.len();
                view.apply_record(rec);
                let simulated = ev.wall.is_some();
                for i in waiting_notes.drain(..) {
                    if simulated {
                        let d = &mut decisions[i];
                        d.wall = Some(d.at);
                        d.at = ev.ts;
                    }
                }
                decisions.extend(view.decisions[before..].iter().map(Decision::from));
            }
        }
    }
    let end = view.finished.as_ref().map(|f| f.at).or(view.last_ts).unwrap_or_else(Timestamp::now);
    let run = view.run.clone();
    let finished = view.finished.clone();
    let rpo = view.rpo();
    let steps: Vec<StepReport> = view.steps.iter().map(|s| StepReport::from_view(s, end)).collect();
    let verification: Vec<Check> = steps
        .iter()
        .filter(|s| s.action.starts_with("check."))
        .map(|s| Check {
            step: s.id.clone(),
            action: s.action.clone(),
            outcome: s.outcome.clone(),
            detail: s.detail.clone().unwrap_or_default(),
        })
        .collect();
    let waited_secs = steps.iter().map(|s| s.wait_secs).sum();
    let recovery_test = run
        .as_ref()
        .filter(|r| r.drill)
        .map(|r| recovery_test(run_dir, &view, r.rto_secs, r.sha256.clone(), &rpo, &verification));
    let notifications = crate::notify::log::read_log(run_dir);
    let cleanup = if recovery_test.is_none() { cleanup_result(run_dir) } else { None };
    Ok(Report {
        notifications,
        cleanup,
        format: "drconsole-report/1",
        run_id: meta.run_id.clone(),
        runbook: RunbookInfo {
            name: run.as_ref().map_or_else(|| meta.runbook.clone(), |r| r.runbook.clone()),
            title: run.as_ref().map_or_else(|| meta.title.clone(), |r| r.title.clone()),
            path: meta.runbook_path.clone(),
            sha256: run.as_ref().map_or_else(|| meta.sha256.clone(), |r| r.sha256.clone()),
        },
        operator: Operator { user: meta.user.clone(), host: meta.host.clone() },
        backend: run.as_ref().map_or_else(|| meta.backend.clone(), |r| r.backend.clone()),
        account: run
            .as_ref()
            .and_then(|r| r.account.clone())
            .or_else(|| view.identity.as_ref().map(|(a, _)| a.clone()))
            .or_else(|| meta.account.clone()),
        identity: view.identity.as_ref().map(|(_, arn)| arn.clone()),
        primary: run.as_ref().map_or_else(|| meta.primary.clone(), |r| r.primary.clone()),
        secondary: run.as_ref().map_or_else(|| meta.secondary.clone(), |r| r.secondary.clone()),
        incident_start: run.as_ref().map(|r| r.incident_start),
        started: run.as_ref().map(|r| r.started),
        ended: finished.as_ref().map(|f| f.at),
        simulated: read.records.iter().any(|(_, r)| matches!(r, Record::Event(e) if e.wall.is_some())),
        outcome: finished.as_ref().map(|f| f.outcome.as_str().to_string()),
        verdict: view.outcome_word().map(str::to_string),
        message: finished.as_ref().map(|f| f.message.clone()).unwrap_or_default(),
        rto: Rto {
            target_secs: run.as_ref().map_or(0, |r| r.rto_secs),
            achieved_secs: finished.as_ref().map(|f| f.rto_achieved_secs),
            met: finished.as_ref().map(|f| f.rto_met),
            waited_secs,
            machine_secs: finished.as_ref().map(|f| f.rto_achieved_secs.saturating_sub(waited_secs)),
            forecast: crate::forecast::at_start_vs_actual(&view),
        },
        rpo: Rpo {
            target_secs: rpo.target_secs,
            achieved_secs: rpo.achieved_secs,
            met: rpo.met,
            verdict: rpo.verdict,
            bound: rpo.bound,
            recovery_points: view.points.iter().map(RecoveryPoint::from).collect(),
        },
        steps,
        decisions,
        verification,
        errors: view.errors.iter().map(ErrorEntry::from).collect(),
        warnings: view.warnings.iter().map(|(step, w)| Warning { step: step.clone(), message: w.clone() }).collect(),
        regions: view
            .regions
            .iter()
            .flat_map(|r| {
                r.down.iter().map(|d| RegionDown {
                    region: r.region.clone(),
                    since: d.since,
                    until: d.until,
                    session: d.session,
                    session_ended: d.session_ended,
                    evidence: r.evidence.clone(),
                })
            })
            .collect(),
        sessions: view.opened.clone(),
        journal: JournalHealth {
            records: read.records.len(),
            torn_tail: read.torn_tail,
            problem: problem.map(|e| e.to_string()),
        },
        recovery_test,
    })
}

/// What the cleanups of the run did (`cleanup.jsonl`); `None` when it was never cleaned up.
fn cleanup_result(run_dir: &Path) -> Option<CleanupResult> {
    let lines = crate::cleanup::read_log(run_dir);
    (!lines.is_empty()).then(|| {
        let s = crate::cleanup::Summary::from_lines(&lines);
        CleanupResult {
            sessions: s.sessions,
            removed: s.removed.iter().map(ToString::to_string).collect(),
            kept: s.kept.iter().map(|(r, why)| format!("{r}: {why}")).collect(),
            failed: s.failed.iter().map(|(r, e)| format!("{r}: {e}")).collect(),
            left: s.left.as_ref().map(|l| l.iter().map(ToString::to_string).collect()),
            in_use: s.in_use.iter().map(ToString::to_string).collect(),
            clean: s.clean(),
        }
    })
}

fn recovery_test(
    run_dir: &Path,
    view: &RunView,
    rto_target_secs: u64,
    runbook_sha256: String,
    rpo: &crate::run::view::RunRpo,
    checks: &[Check],
) -> RecoveryTest {
    let finished = view.finished.as_ref();
    let cleanup = cleanup_result(run_dir);
    // the cleanup is known once one finished (it listed what is left)
    let cleanup_clean = cleanup.as_ref().and_then(|c| c.left.as_ref().map(|_| c.clean));
    let verdict = view.drill_verdict(cleanup_clean).map_or("pending", crate::run::DrillVerdict::as_str);
    RecoveryTest {
        verdict: verdict.into(),
        rto_target_secs,
        rto_achieved_secs: finished.map(|f| f.rto_achieved_secs),
        rto_met: finished.map(|f| f.rto_met),
        rpo_target_secs: rpo.target_secs,
        rpo_achieved_secs: rpo.achieved_secs,
        rpo_met: rpo.met,
        checks: checks.to_vec(),
        cleanup,
        runbook_sha256,
    }
}

impl StepReport {
    /// A step as the report shows it; `end` closes a wait still open (the run stopped while it waited).
    fn from_view(s: &StepView, end: Timestamp) -> Self {
        let outcome = match s.phase {
            Phase::Pending => "not started",
            Phase::AwaitingApproval => "awaiting approval",
            Phase::Running | Phase::Retrying | Phase::WaitingOperator => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Skipped => "skipped",
            Phase::Cancelled => "cancelled",
        };
        // the row starts when the step was ready: waiting for its approval counts, in its own column too; a
        // step active in several sessions (killed, resumed) counts each session's time, as every output does
        let start = s.first_seen.or(s.started);
        let duration_secs = s.ended.and_then(|_| s.duration_secs(end));
        StepReport {
            id: s.info.id.clone(),
            title: s.info.title.clone(),
            action: s.info.action.clone(),
            start,
            end: s.ended,
            duration_secs,
            wait_secs: s.wait_secs(end),
            attempts: s.attempt,
            outcome: outcome.to_string(),
            resources: s
                .resources
                .iter()
                .map(|r| Resource {
                    phase: r.phase.clone(),
                    kind: r.kind.clone(),
                    id: r.id.clone(),
                    region: r.region.clone(),
                    state: r.state.clone(),
                })
                .collect(),
            detail: s.error.clone().or_else(|| s.note.clone()),
        }
    }
}

impl From<&PointView> for RecoveryPoint {
    fn from(p: &PointView) -> Self {
        RecoveryPoint {
            step: p.step.clone(),
            id: p.id.clone(),
            kind: p.kind.clone(),
            region: p.region.clone(),
            time: p.time,
            rpo_secs: p.rpo_secs,
            rpo_met: p.rpo_met,
            verdict: p.verdict,
            bound: p.bound,
        }
    }
}

impl From<&DecisionView> for Decision {
    fn from(d: &DecisionView) -> Self {
        Decision {
            at: d.at,
            wall: d.wall,
            what: d.what.to_string(),
            step: d.step.clone(),
            by: d.by.clone(),
            detail: d.detail.clone(),
        }
    }
}

impl From<&ErrorView> for ErrorEntry {
    fn from(e: &ErrorView) -> Self {
        ErrorEntry {
            at: e.at,
            step: e.step.clone(),
            attempt: e.attempt,
            error: if e.retried { format!("{} (retried)", e.error) } else { e.error.clone() },
        }
    }
}

/// A journal note as a decision, stamped with its real time.
fn note(n: &Note) -> Option<Decision> {
    match n {
        Note::Session { number, resumed, user, host, pid, at } => resumed.then(|| Decision {
            at: *at,
            wall: None,
            what: "run resumed".into(),
            step: None,
            by: format!("{user}@{host}"),
            detail: format!("session {number}, pid {pid}"),
        }),
        Note::Forced { by, old_sha256, new_sha256, at } => Some(Decision {
            at: *at,
            wall: None,
            what: "forced".into(),
            step: None,
            by: by.clone(),
            detail: format!("resumed with a changed runbook: sha256 {old_sha256} -> {new_sha256}"),
        }),
        Note::LockTakenOver { by, previous, reason, at } => Some(Decision {
            at: *at,
            wall: None,
            what: "lock taken over".into(),
            step: None,
            by: by.clone(),
            detail: format!(
                "{reason} (held by {}@{}, pid {}, since {}, run {})",
                previous.user, previous.host, previous.pid, previous.since, previous.run_id
            ),
        }),
        Note::SharedState { url, at } => Some(Decision {
            at: *at,
            wall: None,
            what: "shared state".into(),
            step: None,
            by: "drconsole".into(),
            detail: format!("journal, lock and reports kept on {url}"),
        }),
        Note::SharedStatePaused { url, since, until, reason } => Some(Decision {
            at: *since,
            wall: None,
            what: "paused".into(),
            step: None,
            by: "drconsole".into(),
            detail: format!(
                "{url} unreachable for {}: the run waited for it ({reason})",
                crate::util::fmt_duration(
                    std::time::Duration::try_from(until.duration_since(*since)).unwrap_or_default()
                )
            ),
        }),
    }
}

/// Writes report.md, report.json and junit.xml into the run directory (owner-only, atomically).
pub fn write_all(run_dir: &Path) -> Result<Report, JournalError> {
    let r = build(run_dir)?;
    write_atomic(&run_dir.join("report.md"), markdown(&r).as_bytes())?;
    write_atomic(&run_dir.join("report.json"), json(&r).as_bytes())?;
    write_atomic(&run_dir.join("junit.xml"), junit(&r).as_bytes())?;
    Ok(r)
}
