//! Evidence reports built from a run's journal: `report.md` for people, `report.json` for machines, `junit.xml`
//! for CI (one testsuite, one testcase per step). Written when a run ends and by `drconsole report RUN`.
//!
//! Everything comes from the journal and meta.json, which hold no secret values (the engine redacts them before
//! the journal sees an event), so the reports hold none either.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::read::{Record, read_journal_prefix};
use super::session::Meta;
use super::{JournalError, Note, write_atomic};
use crate::engine::{EventKind, Prompt};
use crate::util::fmt_duration;

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
    /// recovered, failed, aborted, blocked, refused, interrupted; `null` if the run has not ended (running or
    /// crashed).
    pub outcome: Option<String>,
    pub message: String,
    pub rto: Rto,
    pub rpo: Rpo,
    pub steps: Vec<StepReport>,
    pub decisions: Vec<Decision>,
    pub verification: Vec<Check>,
    pub errors: Vec<ErrorEntry>,
    pub sessions: Vec<Session>,
    pub journal: JournalHealth,
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
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rpo {
    pub target_secs: u64,
    /// The data loss window of the recovery point chosen (the oldest, if several were chosen).
    pub achieved_secs: Option<i64>,
    pub met: Option<bool>,
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
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub action: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub duration_secs: Option<u64>,
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
    pub at: Timestamp,
    /// approved, answered, skipped, retried, aborted, paused, resumed, run resumed, forced, lock taken over
    pub what: String,
    pub step: Option<String>,
    pub by: String,
    pub detail: String,
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
pub struct Session {
    pub number: u32,
    pub resumed: bool,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JournalHealth {
    pub records: usize,
    /// The last line was incomplete (the process was killed while writing it) and was left out.
    pub torn_tail: bool,
    /// A damaged line: the report covers the records before it.
    pub problem: Option<String>,
}

/// Builds the report of a run directory.
pub fn build(run_dir: &Path) -> Result<Report, JournalError> {
    let meta = Meta::read(run_dir)?;
    let (read, problem) = read_journal_prefix(run_dir)?;
    let mut r = Report {
        format: "drconsole-report/1",
        run_id: meta.run_id.clone(),
        runbook: RunbookInfo {
            name: meta.runbook.clone(),
            title: meta.title.clone(),
            path: meta.runbook_path.clone(),
            sha256: meta.sha256.clone(),
        },
        operator: Operator { user: meta.user.clone(), host: meta.host.clone() },
        backend: meta.backend.clone(),
        account: meta.account.clone(),
        identity: None,
        primary: meta.primary.clone(),
        secondary: meta.secondary.clone(),
        incident_start: None,
        started: None,
        ended: None,
        outcome: None,
        message: String::new(),
        rto: Rto { target_secs: 0, achieved_secs: None, met: None },
        rpo: Rpo { target_secs: 0, achieved_secs: None, met: None, recovery_points: Vec::new() },
        steps: Vec::new(),
        decisions: Vec::new(),
        verification: Vec::new(),
        errors: Vec::new(),
        sessions: Vec::new(),
        journal: JournalHealth {
            records: read.records.len(),
            torn_tail: read.torn_tail,
            problem: problem.map(|e| e.to_string()),
        },
    };
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut done_prompt: BTreeMap<String, bool> = BTreeMap::new();
    for (_, rec) in &read.records {
        let ev = match rec {
            Record::Note(n) => {
                note(&mut r, n);
                continue;
            }
            Record::Event(ev) => ev,
        };
        let at = ev.ts;
        let step_ix = |r: &mut Report, index: &BTreeMap<String, usize>, id: &str| -> usize {
            match index.get(id) {
                Some(&i) => i,
                None => {
                    r.steps.push(blank_step(id, id, "?"));
                    r.steps.len() - 1
                }
            }
        };
        match &ev.kind {
            EventKind::RunStarted {
                runbook,
                title,
                sha256,
                backend,
                account,
                primary,
                secondary,
                incident_start,
                rto_secs,
                rpo_secs,
                steps,
                ..
            } => {
                r.started.get_or_insert(at);
                r.incident_start.get_or_insert(*incident_start);
                r.runbook.name = runbook.clone();
                r.runbook.title = title.clone();
                r.runbook.sha256 = sha256.clone();
                r.backend = backend.clone();
                r.account = account.clone();
                r.primary = primary.clone();
                r.secondary = secondary.clone();
                r.rto.target_secs = *rto_secs;
                r.rpo.target_secs = *rpo_secs;
                // a resumed session announces the steps again: keep what earlier sessions recorded
                for s in steps {
                    if !index.contains_key(&s.id) {
                        index.insert(s.id.clone(), r.steps.len());
                        r.steps.push(blank_step(&s.id, &s.title, &s.action));
                    }
                }
                r.ended = None;
                r.outcome = None;
            }
            EventKind::Identity { account, arn } => {
                r.identity = Some(arn.clone());
                r.account.get_or_insert(account.clone());
            }
            EventKind::StepAwaitingApproval { step, .. } => {
                let i = step_ix(&mut r, &index, step);
                if r.steps[i].start.is_none() {
                    r.steps[i].outcome = "awaiting approval".into();
                }
            }
            EventKind::StepApproved { step, by } => r.decisions.push(Decision {
                at,
                what: "approved".into(),
                step: Some(step.clone()),
                by: by.clone(),
                detail: String::new(),
            }),
            EventKind::StepStarted { step, attempt, .. } => {
                let i = step_ix(&mut r, &index, step);
                let s = &mut r.steps[i];
                s.start.get_or_insert(at);
                s.end = None;
                s.attempts = s.attempts.max(*attempt);
                s.outcome = "running".into();
            }
            EventKind::Resource { step, phase, kind, id, region, state } => {
                let i = step_ix(&mut r, &index, step);
                let res = &mut r.steps[i].resources;
                let new = Resource {
                    phase: phase.clone(),
                    kind: kind.clone(),
                    id: id.clone(),
                    region: region.clone(),
                    state: state.clone(),
                };
                // one line per resource: the latest phase wins ("creating" becomes "created"), except that a
                // resource this run created and a later attempt found again stays "created"
                match res
                    .iter_mut()
                    .find(|x| x.kind == *kind && x.region == *region && (x.id == *id || x.id.is_empty()))
                {
                    Some(x) if x.phase == "created" && phase == "found" => x.state = new.state,
                    Some(x) => *x = new,
                    None => res.push(new),
                }
            }
            EventKind::OperatorRequest { step, prompt } => {
                done_prompt.insert(step.clone(), matches!(prompt, Prompt::Done { .. }));
            }
            EventKind::OperatorAnswered { step, answer, by } => {
                let manual = done_prompt.get(step).copied().unwrap_or(false);
                r.decisions.push(Decision {
                    at,
                    what: if manual { "confirmed done".into() } else { "answered".into() },
                    step: Some(step.clone()),
                    by: by.clone(),
                    detail: if manual { String::new() } else { answer.clone() },
                });
            }
            EventKind::RecoveryPointChosen { step, id, kind, region, time, rpo_secs, rpo_met } => {
                r.rpo.recovery_points.push(RecoveryPoint {
                    step: step.clone(),
                    id: id.clone(),
                    kind: kind.clone(),
                    region: region.clone(),
                    time: *time,
                    rpo_secs: *rpo_secs,
                    rpo_met: *rpo_met,
                });
            }
            EventKind::StepRetrying { step, attempt, error, .. } => r.errors.push(ErrorEntry {
                at,
                step: Some(step.clone()),
                attempt: Some(*attempt),
                error: format!("{error} (retried)"),
            }),
            EventKind::StepSucceeded { step, attempt, .. } => {
                let i = step_ix(&mut r, &index, step);
                let s = &mut r.steps[i];
                s.attempts = s.attempts.max(*attempt);
                finish_step(s, at, "succeeded", None);
            }
            EventKind::StepFailed { step, attempt, error, .. } => {
                r.errors.push(ErrorEntry {
                    at,
                    step: Some(step.clone()),
                    attempt: Some(*attempt),
                    error: error.clone(),
                });
                let i = step_ix(&mut r, &index, step);
                let s = &mut r.steps[i];
                s.attempts = s.attempts.max(*attempt);
                finish_step(s, at, "failed", Some(error.clone()));
            }
            EventKind::StepSkipped { step, reason, by } => {
                r.decisions.push(Decision {
                    at,
                    what: "skipped".into(),
                    step: Some(step.clone()),
                    by: by.clone(),
                    detail: reason.clone(),
                });
                let i = step_ix(&mut r, &index, step);
                finish_step(&mut r.steps[i], at, "skipped", Some(reason.clone()));
            }
            EventKind::StepCancelled { step, reason } => {
                let i = step_ix(&mut r, &index, step);
                let s = &mut r.steps[i];
                if s.start.is_some() {
                    finish_step(s, at, "cancelled", Some(reason.clone()));
                } else {
                    s.outcome = "not started".into();
                    s.detail = Some(reason.clone());
                }
            }
            EventKind::RunPaused { reason } => r.decisions.push(Decision {
                at,
                what: "paused".into(),
                step: None,
                by: String::new(),
                detail: reason.clone(),
            }),
            EventKind::RunResumed { by } => r.decisions.push(Decision {
                at,
                what: "resumed".into(),
                step: None,
                by: by.clone(),
                detail: String::new(),
            }),
            EventKind::RunFinished { outcome, rto_secs, rto_achieved_secs, rto_met, message, .. } => {
                r.ended = Some(at);
                r.outcome = Some(outcome.as_str().to_string());
                r.message = message.clone();
                r.rto.target_secs = *rto_secs;
                r.rto.achieved_secs = Some(*rto_achieved_secs);
                r.rto.met = Some(*rto_met);
                if *outcome == crate::engine::Outcome::Aborted {
                    r.decisions.push(Decision {
                        at,
                        what: "aborted".into(),
                        step: None,
                        by: message
                            .strip_prefix("aborted by ")
                            .and_then(|m| m.split_once(": "))
                            .map(|(by, _)| by.to_string())
                            .unwrap_or_default(),
                        detail: message.clone(),
                    });
                }
            }
            EventKind::StepProgress { .. } | EventKind::Projection { .. } | EventKind::StepRetryRequested { .. } => {}
        }
    }
    if let Some(worst) = r.rpo.recovery_points.iter().max_by_key(|p| p.rpo_secs) {
        r.rpo.achieved_secs = Some(worst.rpo_secs);
        r.rpo.met = Some(r.rpo.recovery_points.iter().all(|p| p.rpo_met));
    }
    r.verification = r
        .steps
        .iter()
        .filter(|s| s.action.starts_with("check."))
        .map(|s| Check {
            step: s.id.clone(),
            action: s.action.clone(),
            outcome: s.outcome.clone(),
            detail: s.detail.clone().unwrap_or_default(),
        })
        .collect();
    Ok(r)
}

fn blank_step(id: &str, title: &str, action: &str) -> StepReport {
    StepReport {
        id: id.to_string(),
        title: title.to_string(),
        action: action.to_string(),
        start: None,
        end: None,
        duration_secs: None,
        attempts: 0,
        outcome: "not started".into(),
        resources: Vec::new(),
        detail: None,
    }
}

fn finish_step(s: &mut StepReport, at: Timestamp, outcome: &str, detail: Option<String>) {
    s.end = Some(at);
    s.duration_secs = s.start.map(|st| u64::try_from(at.duration_since(st).as_secs()).unwrap_or(0));
    s.outcome = outcome.to_string();
    s.detail = detail;
}

fn note(r: &mut Report, n: &Note) {
    match n {
        Note::Session { number, resumed, user, host, pid, at } => {
            r.sessions.push(Session {
                number: *number,
                resumed: *resumed,
                user: user.clone(),
                host: host.clone(),
                pid: *pid,
                at: *at,
            });
            if *resumed {
                r.decisions.push(Decision {
                    at: *at,
                    what: "run resumed".into(),
                    step: None,
                    by: format!("{user}@{host}"),
                    detail: format!("session {number}, pid {pid}"),
                });
            }
        }
        Note::Forced { by, old_sha256, new_sha256, at } => r.decisions.push(Decision {
            at: *at,
            what: "forced".into(),
            step: None,
            by: by.clone(),
            detail: format!("resumed with a changed runbook: sha256 {old_sha256} -> {new_sha256}"),
        }),
        Note::LockTakenOver { by, previous, reason, at } => r.decisions.push(Decision {
            at: *at,
            what: "lock taken over".into(),
            step: None,
            by: by.clone(),
            detail: format!(
                "{reason} (held by {}@{}, pid {}, since {}, run {})",
                previous.user, previous.host, previous.pid, previous.since, previous.run_id
            ),
        }),
    }
}

fn secs(s: u64) -> String {
    fmt_duration(Duration::from_secs(s))
}

fn ts(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

fn hms(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), |t| t.strftime("%H:%M:%SZ").to_string())
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**MISSED**",
        None => "not known",
    }
}

/// The report for people.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let title = if r.runbook.title.is_empty() { r.runbook.name.as_str() } else { r.runbook.title.as_str() };
    let _ = writeln!(o, "# Recovery report: {title}\n");
    let outcome = r.outcome.as_deref().unwrap_or("not finished (running, or the process stopped: resume it)");
    let _ = writeln!(o, "| | |\n|---|---|");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    };
    row(
        "Outcome",
        format!("**{outcome}**{}", if r.message.is_empty() { String::new() } else { format!(" — {}", r.message) }),
    );
    row("Run", format!("`{}`", r.run_id));
    row("Runbook", format!("`{}` ({})", r.runbook.name, r.runbook.path));
    row("Runbook sha256", format!("`{}`", r.runbook.sha256));
    row("Operator", format!("{}@{}", r.operator.user, r.operator.host));
    row("Backend", r.backend.clone());
    row("Account", r.account.clone().unwrap_or_else(|| "not set".into()));
    if let Some(i) = &r.identity {
        row("Identity", i.clone());
    }
    row("Regions", format!("{} (primary) → {} (secondary)", r.primary, r.secondary));
    row("Incident start", ts(r.incident_start));
    row("Run started", ts(r.started));
    row("Run ended", ts(r.ended));
    let rto = match r.rto.achieved_secs {
        Some(a) => format!("target {}, achieved {} — {}", secs(r.rto.target_secs), secs(a), verdict(r.rto.met)),
        None => format!("target {}, not finished", secs(r.rto.target_secs)),
    };
    row("RTO", rto);
    let rpo = match r.rpo.achieved_secs {
        Some(a) => format!(
            "target {}, achieved {} — {}",
            secs(r.rpo.target_secs),
            secs(u64::try_from(a).unwrap_or(0)),
            verdict(r.rpo.met)
        ),
        None => format!("target {}, no recovery point chosen in this run", secs(r.rpo.target_secs)),
    };
    row("RPO", rpo);
    let _ = writeln!(o);

    if !r.rpo.recovery_points.is_empty() {
        let _ = writeln!(o, "## Recovery points\n");
        let _ = writeln!(o, "| Step | Recovery point | Kind | Region | Taken at | Data loss window | RPO |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for p in &r.rpo.recovery_points {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                cell(&p.step),
                cell(&p.id),
                cell(&p.kind),
                cell(&p.region),
                ts(Some(p.time)),
                secs(u64::try_from(p.rpo_secs).unwrap_or(0)),
                if p.rpo_met { "met" } else { "MISSED" }
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Timeline\n");
    let _ = writeln!(o, "| Step | Action | Start | End | Duration | Attempts | Outcome | Resources |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let res: Vec<String> = s
            .resources
            .iter()
            .map(|x| {
                format!(
                    "{} `{}` in {} ({}{})",
                    x.kind,
                    x.id,
                    x.region,
                    x.phase,
                    if x.state.is_empty() { String::new() } else { format!(", {}", x.state) }
                )
            })
            .collect();
        let outcome = match &s.detail {
            Some(d) if s.outcome != "succeeded" => format!("{}: {d}", s.outcome),
            _ => s.outcome.clone(),
        };
        let _ = writeln!(
            o,
            "| `{}` {} | {} | {} | {} | {} | {} | {} | {} |",
            s.id,
            cell(&s.title),
            cell(&s.action),
            hms(s.start),
            hms(s.end),
            s.duration_secs.map_or_else(|| "—".to_string(), secs),
            s.attempts,
            cell(&outcome),
            cell(&res.join("; "))
        );
    }
    let _ = writeln!(o);

    let _ = writeln!(o, "## Decisions\n");
    if r.decisions.is_empty() {
        let _ = writeln!(o, "None: no approval, answer, skip, abort or resume was recorded.\n");
    } else {
        let _ = writeln!(o, "| Time | Who | What | Step | Why / detail |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for d in &r.decisions {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                ts(Some(d.at)),
                cell(&d.by),
                cell(&d.what),
                d.step.as_deref().map_or_else(String::new, |s| format!("`{s}`")),
                cell(&d.detail)
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Verification\n");
    if r.verification.is_empty() {
        let _ = writeln!(o, "No verification step (`check.*`) in this runbook.\n");
    } else {
        let _ = writeln!(o, "| Step | Check | Result | Detail |");
        let _ = writeln!(o, "|---|---|---|---|");
        for c in &r.verification {
            let _ = writeln!(o, "| `{}` | {} | {} | {} |", c.step, cell(&c.action), cell(&c.outcome), cell(&c.detail));
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Errors\n");
    if r.errors.is_empty() && r.journal.problem.is_none() {
        let _ = writeln!(o, "None.\n");
    } else {
        for e in &r.errors {
            let step = e.step.as_deref().map_or_else(String::new, |s| format!(" `{s}`"));
            let attempt = e.attempt.map_or_else(String::new, |a| format!(" attempt {a}"));
            let _ = writeln!(o, "- {}{step}{attempt}: {}", ts(Some(e.at)), e.error.replace('\n', " "));
        }
        if let Some(p) = &r.journal.problem {
            let _ = writeln!(o, "- the journal is damaged: {p}; this report covers the records before that line");
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Sessions\n");
    for s in &r.sessions {
        let how = if s.resumed { "resumed" } else { "started" };
        let _ = writeln!(o, "- {} session {} {how} by {}@{} (pid {})", ts(Some(s.at)), s.number, s.user, s.host, s.pid);
    }
    let torn = if r.journal.torn_tail { "; its last line was torn by a crash and left out" } else { "" };
    let _ = writeln!(o, "\nJournal: {} records{torn}.", r.journal.records);
    o
}

/// The report for machines.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

/// The report for CI: one testsuite (the runbook), one testcase per step. A failed step is a `<failure>`; a
/// step the operator skipped is `<skipped>`; a step that did not complete in a run that did not recover is a
/// `<failure>` too, so CI goes red whenever the recovery did not happen.
pub fn junit(r: &Report) -> String {
    let recovered = r.outcome.as_deref() == Some("recovered");
    let mut failures = 0;
    let mut skipped = 0;
    let mut cases = String::new();
    for s in &r.steps {
        let time = s.duration_secs.unwrap_or(0);
        let _ = write!(
            cases,
            "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{time}\"",
            xml(&s.id),
            xml(&r.runbook.name),
            xml(&s.action)
        );
        let detail = s.detail.clone().unwrap_or_default();
        match s.outcome.as_str() {
            "succeeded" => cases.push_str("/>\n"),
            "skipped" => {
                skipped += 1;
                let _ = write!(cases, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(&detail));
            }
            "failed" => {
                failures += 1;
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"step_failed\">step `{}` failed after {} attempt(s): {}</failure>\n    </testcase>\n",
                    xml(&detail),
                    xml(&s.id),
                    s.attempts,
                    xml(&detail)
                );
            }
            other if !recovered => {
                failures += 1;
                let msg = if detail.is_empty() {
                    format!("{other}: the run did not recover")
                } else {
                    format!("{other}: {detail}")
                };
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"not_completed\">{}</failure>\n    </testcase>\n",
                    xml(&msg),
                    xml(&msg)
                );
            }
            other => {
                skipped += 1;
                let _ = write!(cases, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(other));
            }
        }
    }
    let tests = r.steps.len();
    let time = match (r.started, r.ended) {
        (Some(a), Some(b)) => u64::try_from(b.duration_since(a).as_secs()).unwrap_or(0),
        _ => 0,
    };
    let stamp = r.started.map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"drconsole\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">"
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{stamp}\" hostname=\"{}\">",
        xml(&r.runbook.name),
        xml(&r.operator.host)
    );
    let _ = writeln!(o, "    <properties>");
    let mut prop = |k: &str, v: &str| {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
    };
    prop("run_id", &r.run_id);
    prop("runbook_sha256", &r.runbook.sha256);
    prop("operator", &format!("{}@{}", r.operator.user, r.operator.host));
    prop("backend", &r.backend);
    prop("account", r.account.as_deref().unwrap_or(""));
    prop("regions", &format!("{} -> {}", r.primary, r.secondary));
    prop("outcome", r.outcome.as_deref().unwrap_or("not finished"));
    prop("rto_target_secs", &r.rto.target_secs.to_string());
    prop("rto_achieved_secs", &r.rto.achieved_secs.map(|s| s.to_string()).unwrap_or_default());
    prop("rto_met", &r.rto.met.map(|m| m.to_string()).unwrap_or_default());
    prop("rpo_target_secs", &r.rpo.target_secs.to_string());
    prop("rpo_achieved_secs", &r.rpo.achieved_secs.map(|s| s.to_string()).unwrap_or_default());
    prop("rpo_met", &r.rpo.met.map(|m| m.to_string()).unwrap_or_default());
    let _ = writeln!(o, "    </properties>");
    o.push_str(&cases);
    let summary = format!(
        "{}: {}",
        r.outcome.as_deref().unwrap_or("not finished"),
        if r.message.is_empty() { "-" } else { r.message.as_str() }
    );
    let _ = writeln!(o, "    <system-out>{}</system-out>", xml(&summary));
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

/// Writes report.md, report.json and junit.xml into the run directory (owner-only, atomically).
pub fn write_all(run_dir: &Path) -> Result<Report, JournalError> {
    let r = build(run_dir)?;
    write_atomic(&run_dir.join("report.md"), markdown(&r).as_bytes())?;
    write_atomic(&run_dir.join("report.json"), json(&r).as_bytes())?;
    write_atomic(&run_dir.join("junit.xml"), junit(&r).as_bytes())?;
    Ok(r)
}
