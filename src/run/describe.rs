//! One line per event, in words: shared by headless text output, `drconsole watch` without a terminal and the
//! console's log, so an event reads the same everywhere.
//!
//! Rules: plain text, no colour; every value that came from outside (step output, AWS names, command output) is
//! passed through [`crate::util::sanitize`] so control characters never reach a terminal; empty parts are left
//! out rather than printed as `arn=` or `in us-west-2: `.

use std::time::Duration;

use super::event::{EventKind, Prompt};
use super::view::RunView;
use crate::util::{fmt_duration, sanitize};

/// How an event reads: a short tag, the step it is about (or empty), the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub tag: &'static str,
    pub step: String,
    pub text: String,
    pub level: Level,
}

/// How much a line matters (the console colours by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Bad,
    /// Waits for a person.
    Attention,
}

fn line(tag: &'static str, step: &str, text: String, level: Level) -> Option<Line> {
    Some(Line { tag, step: step.to_string(), text, level })
}

/// A JSON value as text: strings without quotes.
pub fn value_text(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The line for an event, with the facts the run's view holds once the event is applied (`view`: a step's
/// duration across sessions and waits, the same number every output shows). Every frontend calls this.
pub fn describe_in(kind: &EventKind, view: &RunView, at: jiff::Timestamp) -> Option<Line> {
    let mut l = describe(kind)?;
    if let EventKind::StepSucceeded { step, duration_ms, .. } = kind
        && let Some(secs) = view.step(step).and_then(|s| s.duration_secs(at))
    {
        let engine = fmt_duration(Duration::from_millis(*duration_ms));
        let whole = fmt_duration(Duration::from_secs(secs));
        if engine != whole {
            l.text = l.text.replacen(&format!("in {engine}"), &format!("in {whole}"), 1);
        }
    }
    Some(l)
}

/// The line for an event; `None` for events that are not shown as lines (projections, the run's end: the
/// frontends show those their own way). Frontends use [`describe_in`], which says the view's durations.
pub fn describe(kind: &EventKind) -> Option<Line> {
    match kind {
        EventKind::RunStarted {
            run_id,
            runbook,
            title,
            backend,
            account,
            primary,
            secondary,
            rto_secs,
            rpo_secs,
            steps,
            drill,
            ..
        } => {
            let acct = account.as_deref().map(|a| format!(" account {a}")).unwrap_or_default();
            let mode = if *drill {
                format!("DRILL (a recovery test: nothing in {primary} is written, production DNS untouched) ")
            } else {
                String::new()
            };
            line(
                "run",
                "",
                format!(
                    "{mode}{} ({runbook}) run {run_id} on {backend}{acct} {primary} -> {secondary}; {} steps; RTO {} RPO {}",
                    sanitize(title),
                    steps.len(),
                    fmt_duration(Duration::from_secs(*rto_secs)),
                    fmt_duration(Duration::from_secs(*rpo_secs)),
                ),
                Level::Info,
            )
        }
        EventKind::Identity { account, arn } => {
            line("identity", "", format!("account {account} as {}", sanitize(arn)), Level::Info)
        }
        EventKind::StepAwaitingApproval { step, plan } => {
            line("confirm", step, format!("needs approval: {}", sanitize(plan)), Level::Attention)
        }
        EventKind::StepApproved { step, by } => line("approved", step, format!("by {by}"), Level::Info),
        EventKind::StepStarted { step, attempt, plan, .. } => {
            line("start", step, format!("attempt {attempt}: {}", sanitize(plan)), Level::Info)
        }
        EventKind::StepProgress { step, message, percent, .. } => {
            let message = sanitize(message);
            // say the percentage once: many progress messages carry it already ("pending 22%")
            let pct = match percent {
                Some(p) if !message.contains(&format!("{p:.0}%")) => format!(" ({p:.0}%)"),
                _ => String::new(),
            };
            line("progress", step, format!("{message}{pct}"), Level::Info)
        }
        EventKind::Resource { step, phase, kind, id, region, state } => {
            let state = sanitize(state);
            let state = if state.is_empty() { String::new() } else { format!(": {state}") };
            let id = if id.is_empty() { String::new() } else { format!(" {}", sanitize(id)) };
            line("resource", step, format!("{phase} {kind}{id} in {region}{state}"), Level::Info)
        }
        EventKind::OperatorRequest { step, prompt } => match prompt {
            Prompt::Done { instructions } => {
                line("manual", step, format!("operator task: {}", sanitize(instructions)), Level::Attention)
            }
            Prompt::Choice { message, candidates } => line(
                "choose",
                step,
                format!("{} ({} candidates)", sanitize(message), candidates.len()),
                Level::Attention,
            ),
        },
        EventKind::OperatorAnswered { step, answer, by } => {
            line("answered", step, format!("{} (by {by})", sanitize(answer)), Level::Info)
        }
        EventKind::RecoveryPointChosen { step, id, kind, region, time, rpo_secs, rpo_met, verdict, bound } => {
            let v = crate::run::RpoVerdict::of(*verdict, *rpo_met);
            let met = match v {
                crate::run::RpoVerdict::Met => "RPO met",
                crate::run::RpoVerdict::Missed => "RPO MISSED",
                crate::run::RpoVerdict::Unknown => "RPO UNKNOWN",
            };
            let age = crate::run::fmt_loss(*rpo_secs, *bound);
            let at = if *bound { "its data taken before" } else { "at" };
            line(
                "point",
                step,
                format!(
                    "{kind} {} in {region} {at} {} (data loss window {age}, {met})",
                    sanitize(id),
                    time.strftime("%Y-%m-%d %H:%M:%SZ")
                ),
                if v == crate::run::RpoVerdict::Met { Level::Good } else { Level::Warn },
            )
        }
        EventKind::StepRetrying { step, attempt, error, delay_ms, .. } => {
            let d = *delay_ms as f64 / 1000.0;
            line(
                "retry",
                step,
                format!("attempt {attempt} failed: {}; next attempt in {d:.1}s", sanitize(error)),
                Level::Warn,
            )
        }
        EventKind::StepSucceeded { step, duration_ms, outputs, .. } => {
            let outs: Vec<String> = outputs
                .iter()
                .map(|(k, v)| (k, sanitize(&value_text(v)).into_owned()))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let outs = if outs.is_empty() { String::new() } else { format!("; {}", outs.join(" ")) };
            let d = fmt_duration(Duration::from_millis(*duration_ms));
            line("ok", step, format!("in {d}{outs}"), Level::Good)
        }
        EventKind::StepFailed { step, attempt, error, policy, .. } => line(
            "FAILED",
            step,
            format!("attempt {attempt}: {} (on_failure = {})", sanitize(error), policy.as_str()),
            Level::Bad,
        ),
        EventKind::StepSkipped { step, reason, by } => {
            line("skipped", step, format!("{} (by {by})", sanitize(reason)), Level::Warn)
        }
        EventKind::StepCancelled { step, reason } => line("cancel", step, sanitize(reason).into_owned(), Level::Warn),
        EventKind::StepWarning { step, message } => line("WARNING", step, sanitize(message).into_owned(), Level::Warn),
        EventKind::StepOverdue { step, running_secs, p50_secs, p90_secs, samples } => line(
            "OVERDUE",
            step,
            format!(
                "running {} — past its P90 of {}; typically {} (P50 of {samples} past runs)",
                fmt_duration(Duration::from_secs(*running_secs)),
                fmt_duration(Duration::from_secs(*p90_secs)),
                fmt_duration(Duration::from_secs(*p50_secs)),
            ),
            Level::Warn,
        ),
        EventKind::StepForecast { step, p50_secs, p90_secs, size_gib } => line(
            "forecast",
            step,
            format!(
                "for {size_gib:.0} GiB: P50 {}, P90 {}",
                fmt_duration(Duration::from_secs(*p50_secs)),
                fmt_duration(Duration::from_secs(*p90_secs)),
            ),
            Level::Info,
        ),
        EventKind::StepRetryRequested { step, by } => line("retry", step, format!("run again (by {by})"), Level::Info),
        EventKind::RegionUnreachable { region, evidence, since } => line(
            "REGION",
            "",
            format!(
                "{} is unreachable since {}: {}; calls to it are refused at once until a probe is answered",
                sanitize(region),
                since.strftime("%H:%M:%S UTC"),
                sanitize(evidence)
            ),
            Level::Bad,
        ),
        EventKind::RegionReachable { region, since, evidence } => line(
            "region",
            "",
            format!(
                "{} is reachable again ({}; unreachable since {})",
                sanitize(region),
                sanitize(evidence),
                since.strftime("%H:%M:%S UTC")
            ),
            Level::Good,
        ),
        EventKind::RunPaused { reason } => line("paused", "", sanitize(reason).into_owned(), Level::Attention),
        EventKind::RunResumed { by } => line("resumed", "", format!("by {by}"), Level::Info),
        EventKind::Projection { .. } | EventKind::RunFinished { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_are_left_out() {
        let l = describe(&EventKind::Resource {
            step: "nat".into(),
            phase: "created".into(),
            kind: "nat-gateway".into(),
            id: "nat-1".into(),
            region: "us-west-2".into(),
            state: String::new(),
        })
        .unwrap();
        assert_eq!(l.text, "created nat-gateway nat-1 in us-west-2");
        let l = describe(&EventKind::StepProgress {
            step: "db".into(),
            message: "pending 22%".into(),
            percent: Some(22.0),
            cause: None,
        })
        .unwrap();
        assert_eq!(l.text, "pending 22%");
        let l = describe(&EventKind::StepProgress {
            step: "db".into(),
            message: "creating".into(),
            percent: Some(40.0),
            cause: None,
        })
        .unwrap();
        assert_eq!(l.text, "creating (40%)");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut outputs = serde_json::Map::new();
        outputs.insert("stdout".into(), "ok\u{1b}]0;pwned\u{7}\u{1b}[2J".into());
        outputs.insert("arn".into(), "".into());
        let l =
            describe(&EventKind::StepSucceeded { step: "s".into(), attempt: 1, duration_ms: 1000, outputs }).unwrap();
        assert!(!l.text.contains('\u{1b}'), "{:?}", l.text);
        assert!(!l.text.contains("arn="), "{:?}", l.text);
    }
}
