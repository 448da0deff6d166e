//! The incident overview's model: one row per application, folded from that application's [`RunView`] (the one
//! fold of its events), sorted by urgency: waiting for a person, then failed or paused, then the thinnest margin,
//! then finished. Pure: no terminal, no I/O; the console draws it (`tui::overview`).

use jiff::Timestamp;

use crate::run::view::Phase;
use crate::run::{Outcome, RunView};
use crate::util::fmt_clock;

/// One application's line.
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewRow {
    pub app: String,
    pub run_id: String,
    /// `WAITING` (for a person), `FAILED`, `PAUSED`, `running`, or the outcome once finished.
    pub state: String,
    pub done: usize,
    pub total: usize,
    /// The step running or waiting (the one a person must act on first).
    pub step: String,
    pub rto_left_secs: i64,
    pub projected_finish: Option<Timestamp>,
    /// Deadline minus projected finish (negative: late).
    pub margin_secs: i64,
    /// RPO of the chosen points against the target: `17m/1h`, `1h06m/1h!` (missed), `-` (none chosen yet).
    pub rpo: String,
    /// What it waits for: `approve STEP`, `done STEP`, `choose STEP`, the pause's reason, or empty.
    pub waits_for: String,
    /// 0 waiting for a person, 1 failed or paused, 2 running, 3 finished.
    pub rank: u8,
}

fn short(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let s = match (a / 3600, a % 3600 / 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    };
    if secs < 0 { format!("-{s}") } else { s }
}

impl OverviewRow {
    pub fn from_view(app: &str, view: &RunView, now: Timestamp) -> OverviewRow {
        let clock = view.clock_at(now);
        let total = view.steps.len();
        let done = view.steps.iter().filter(|s| s.phase.is_terminal()).count();
        let asking = view.steps.iter().find(|s| s.phase.needs_operator());
        let failed = view.steps.iter().find(|s| s.phase == Phase::Failed);
        let running = view.steps.iter().find(|s| matches!(s.phase, Phase::Running | Phase::Retrying));
        let waits_for = match asking {
            Some(s) if s.phase == Phase::AwaitingApproval => format!("approve {}", s.info.id),
            Some(s) if s.info.action == "manual" => format!("done {}", s.info.id),
            Some(s) => format!("choose {}", s.info.id),
            None => view.paused.clone().unwrap_or_default(),
        };
        let (state, rank) = match (&view.finished, asking, &view.paused, failed) {
            // the view's word: `recovered-late` when the RTO or the RPO was missed
            (Some(f), _, _, _) => (
                view.outcome_word().unwrap_or(f.outcome.as_str()).to_string(),
                if f.outcome == Outcome::Recovered { 3 } else { 1 },
            ),
            (None, Some(_), _, _) => ("WAITING".to_string(), 0),
            (None, None, Some(_), _) => ("PAUSED".to_string(), 1),
            (None, None, None, Some(_)) => ("FAILED".to_string(), 1),
            _ => ("running".to_string(), 2),
        };
        let step = asking.or(failed).or(running).map(|s| s.info.id.clone()).unwrap_or_default();
        let rpo = view.rpo();
        let rpo = match rpo.achieved_secs {
            Some(a) => format!(
                "{}/{}{}",
                short(a),
                short(i64::try_from(rpo.target_secs).unwrap_or(i64::MAX)),
                if rpo.met == Some(false) { "!" } else { "" }
            ),
            None => "-".into(),
        };
        OverviewRow {
            app: app.to_string(),
            run_id: view.run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default(),
            state,
            done,
            total,
            step,
            rto_left_secs: clock.as_ref().map_or(0, |c| c.rto_left_secs),
            projected_finish: clock.as_ref().map(|c| c.projected_finish),
            margin_secs: clock.as_ref().map_or(0, |c| c.margin_secs),
            rpo,
            waits_for,
            rank,
        }
    }

    /// `1:23:45` left (negative past the deadline).
    pub fn rto_left(&self) -> String {
        fmt_clock(self.rto_left_secs)
    }

    /// Margin of the projected finish against the deadline: `+42m`, `-5m` (late).
    pub fn margin(&self) -> String {
        let s = short(self.margin_secs);
        if self.margin_secs >= 0 { format!("+{s}") } else { s }
    }
}

/// The rows of an incident's applications, most urgent first.
pub fn rows<'a>(apps: impl IntoIterator<Item = (&'a str, &'a RunView)>, now: Timestamp) -> Vec<OverviewRow> {
    let mut rows: Vec<OverviewRow> = apps.into_iter().map(|(a, v)| OverviewRow::from_view(a, v, now)).collect();
    rows.sort_by_key(|r| (r.rank, r.margin_secs));
    rows
}

/// The questions waiting for a person, each naming its application: `[agent-payment] approve cutover`.
pub fn questions(rows: &[OverviewRow]) -> Vec<String> {
    rows.iter().filter(|r| r.rank == 0).map(|r| format!("[{}] {}", r.app, r.waits_for)).collect()
}
