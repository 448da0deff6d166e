//! The incident overview's model (the incident commander's board): one row per application, read from that
//! application's [`RunView`] (the one fold of its events), sorted by urgency: waiting for a person, then failed or
//! paused, then the thinnest margin, then finished; and the incident's line on top ([`Board`]): the time since the
//! incident, the overall projected finish (the latest application's), the deadline and the margin. Pure: no
//! terminal, no I/O; the console draws it (`tui::overview`).

use jiff::Timestamp;

use crate::run::view::Phase;
use crate::run::{Outcome, RpoVerdict, RunView, Schedule};
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
    /// The finish if every remaining step takes its P90 from the runbook's history (`None`: no history, or the run
    /// ended).
    pub p90_finish: Option<Timestamp>,
    /// Deadline minus projected finish (negative: late).
    pub margin_secs: i64,
    /// The application's RTO deadline and its RTO.
    pub deadline: Option<Timestamp>,
    pub rto_secs: u64,
    /// When the incident started (every application of an incident shares it).
    pub incident_start: Option<Timestamp>,
    /// The projected finish against the deadline (`None` before the run started). A finished run: `Late` when
    /// it missed its RTO, else `OnTrack`.
    pub schedule: Option<Schedule>,
    /// The run has ended: its finish is a fact, not a projection.
    pub finished: bool,
    /// The RPO verdict of every recovery point used (`None`: no point chosen yet).
    pub rpo_verdict: Option<RpoVerdict>,
    /// The worst data loss (`17m`, `≥ 1h06m` when only a bound is known), and the target.
    pub rpo_loss: Option<String>,
    pub rpo_target_secs: u64,
    /// What it waits for: `approve STEP`, `done STEP`, `choose STEP`, the pause's reason, or empty.
    pub waits_for: String,
    /// 0 waiting for a person, 1 failed or paused, 2 running, 3 finished.
    pub rank: u8,
}

fn short(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let s = match (a / 3600, a % 3600 / 60) {
        (0, 0) => format!("{}s", a % 60),
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
        let run = view.run.as_ref();
        let rto_secs = run.map_or(0, |r| r.rto_secs);
        let schedule = match (&view.finished, &clock) {
            (Some(f), _) => Some(if f.rto_met { Schedule::OnTrack } else { Schedule::Late }),
            (None, Some(c)) => Some(Schedule::of(c.margin_secs, rto_secs)),
            (None, None) => None,
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
            p90_finish: clock.as_ref().filter(|c| c.from_history && !c.finished).map(|c| c.p90_finish),
            margin_secs: clock.as_ref().map_or(0, |c| c.margin_secs),
            deadline: run.map(|r| r.deadline),
            rto_secs,
            incident_start: run.map(|r| r.incident_start),
            schedule,
            finished: view.finished.is_some(),
            rpo_verdict: rpo.verdict,
            rpo_loss: rpo.achieved_secs.map(|a| if rpo.bound { format!("≥ {}", short(a)) } else { short(a) }),
            rpo_target_secs: rpo.target_secs,
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
        signed(self.margin_secs)
    }

    /// The standing in words: `on track`, `AT RISK`, `LATE`; once finished, `met` or `LATE` (the RTO); `-` before
    /// the run started.
    pub fn schedule_word(&self) -> &'static str {
        Schedule::word(self.schedule, self.finished)
    }

    /// The RPO verdict as a word with the worst loss: `met 17m`, `MISSED 1h10m`, `UNKNOWN ≥ 1h06m`, `-` (no
    /// point chosen yet); `with_target` adds ` / 1h`.
    pub fn rpo_text(&self, with_target: bool) -> String {
        let Some(v) = self.rpo_verdict else { return "-".into() };
        let mut t = v.shout().to_string();
        if let Some(l) = &self.rpo_loss {
            t.push(' ');
            t.push_str(l);
        }
        if with_target {
            t.push_str(&format!(" / {}", short(i64::try_from(self.rpo_target_secs).unwrap_or(i64::MAX))));
        }
        t
    }

    /// What the application is doing or waits for, in one cell: the question for a person (`approve cutover`),
    /// `running STEP`, `PAUSED: reason`, `FAILED STEP`, or how it ended.
    pub fn doing(&self) -> String {
        match self.rank {
            0 => self.waits_for.clone(),
            _ if self.state == "PAUSED" => format!("PAUSED: {}", self.waits_for),
            _ if self.state == "running" && !self.step.is_empty() => format!("running {}", self.step),
            _ if self.state == "FAILED" => format!("FAILED {}", self.step),
            _ => self.state.clone(),
        }
    }
}

fn signed(secs: i64) -> String {
    let s = short(secs);
    if secs >= 0 { format!("+{s}") } else { s }
}

/// The incident's line on top of the board, from its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// Since the incident started (`None` before any run started).
    pub elapsed_secs: Option<i64>,
    /// The overall projected finish: the latest application's (its actual end once every application ended), and
    /// that application.
    pub finish: Option<(Timestamp, String)>,
    /// The overall P90 finish, when some unfinished application forecasts from its history: the latest of their
    /// P90 finishes and the others' projected finishes.
    pub p90_finish: Option<Timestamp>,
    /// The deadline the overall finish is held against: the one every application shares, else the deadline of
    /// the application with the thinnest margin (named in `deadline_app`).
    pub deadline: Option<Timestamp>,
    pub deadline_app: Option<String>,
    /// The thinnest margin of any application (negative: that application is late), and that application.
    pub margin: Option<(i64, String)>,
    /// The worst standing of any application.
    pub schedule: Option<Schedule>,
    /// Every application has ended.
    pub finished: bool,
}

impl Board {
    pub fn of(rows: &[OverviewRow], now: Timestamp) -> Board {
        let started: Vec<&OverviewRow> = rows.iter().filter(|r| r.schedule.is_some()).collect();
        let elapsed_secs =
            started.iter().filter_map(|r| r.incident_start).min().map(|t| now.duration_since(t).as_secs());
        let finish =
            started.iter().filter_map(|r| r.projected_finish.map(|f| (f, r.app.clone()))).max_by_key(|(f, _)| *f);
        let thinnest = started.iter().min_by_key(|r| r.margin_secs);
        let deadlines: Vec<Timestamp> = started.iter().filter_map(|r| r.deadline).collect();
        let shared = deadlines.first().copied().filter(|d| deadlines.iter().all(|x| x == d));
        let (deadline, deadline_app) = match shared {
            Some(d) => (Some(d), None),
            None => (thinnest.and_then(|r| r.deadline), thinnest.map(|r| r.app.clone())),
        };
        let p90_finish = started
            .iter()
            .any(|r| r.p90_finish.is_some())
            .then(|| started.iter().filter_map(|r| r.p90_finish.or(r.projected_finish)).max());
        Board {
            elapsed_secs,
            finish,
            p90_finish: p90_finish.flatten(),
            deadline,
            deadline_app,
            margin: thinnest.map(|r| (r.margin_secs, r.app.clone())),
            schedule: started.iter().filter_map(|r| r.schedule).max(),
            finished: !started.is_empty() && started.len() == rows.len() && started.iter().all(|r| r.finished),
        }
    }

    /// The standing in words (`on track`, `AT RISK`, `LATE`; `met` once every application ended in time).
    pub fn schedule_word(&self) -> &'static str {
        Schedule::word(self.schedule, self.finished)
    }

    /// The thinnest margin as `+42m` / `-5m`.
    pub fn margin_text(&self) -> Option<String> {
        self.margin.as_ref().map(|(m, _)| signed(*m))
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
