//! The one fold of a run's events: [`RunView::apply`] turns the event stream (live, or read back from a journal)
//! into facts — per step its phase, attempts, waits for people, start and end, outputs, resources and errors; the
//! prompts and answers, decisions, recovery points and sessions of the run. The console, the watcher, the reports
//! and resume all read a `RunView`; each converts from it (`impl From<&StepView> for StepReport`) and none folds
//! the raw stream itself, so they cannot disagree.
//!
//! Rules: facts only, no presentation; pure (no I/O, no clock: "now" is an argument, see [`RunView::clock_at`]);
//! a resumed session (a second `run_started` of the same run) keeps everything earlier sessions recorded.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use super::clock::secs_between;
use super::event::{Candidate, ErrorCause, Event, EventKind, Outcome, Prompt, RpoVerdict, StepInfo};

/// Where a step is in its lifecycle, as the events tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    /// Waiting for the operator to confirm it may start (`confirm = true`).
    AwaitingApproval,
    Running,
    /// Running, and waiting for the operator (a manual task, a recovery point to choose).
    WaitingOperator,
    /// An attempt failed; the next starts after a backoff.
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Skipped | Phase::Cancelled)
    }
    /// The step cannot go on without a person.
    pub fn needs_operator(self) -> bool {
        matches!(self, Phase::AwaitingApproval | Phase::WaitingOperator)
    }
    pub fn word(self) -> &'static str {
        match self {
            Phase::Pending => "not started",
            Phase::AwaitingApproval => "awaiting approval",
            Phase::Running => "running",
            Phase::WaitingOperator => "waiting for the operator",
            Phase::Retrying => "retrying",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Skipped => "skipped",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// Why a step waited for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// For the confirmation that lets it start.
    Approval,
    /// For a manual task to be confirmed done.
    Manual,
    /// For a choice (recovery point).
    Choice,
}

impl WaitKind {
    pub fn word(self) -> &'static str {
        match self {
            WaitKind::Approval => "approval",
            WaitKind::Manual => "manual task",
            WaitKind::Choice => "choice",
        }
    }
}

/// A span of run time a step spent waiting for a person; `to` is `None` while it still waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub kind: WaitKind,
    pub from: Timestamp,
    pub to: Option<Timestamp>,
    /// Who ended the wait (approved, answered).
    pub by: Option<String>,
}

impl Wait {
    /// How long it waited, up to `now` if it still waits.
    pub fn secs(&self, now: Timestamp) -> u64 {
        u64::try_from(secs_between(self.from, self.to.unwrap_or(now))).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub number: u32,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceView {
    pub phase: String,
    pub kind: String,
    pub id: String,
    pub region: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub info: StepInfo,
    pub phase: Phase,
    /// The latest attempt number.
    pub attempt: u32,
    pub attempts: Vec<Attempt>,
    /// The step became eligible and asked for approval, or started: the first either happened.
    pub first_seen: Option<Timestamp>,
    /// The first attempt's start.
    pub started: Option<Timestamp>,
    /// When it reached its terminal phase.
    pub ended: Option<Timestamp>,
    /// As the engine measured it (succeeded steps).
    pub duration_ms: Option<u64>,
    pub waits: Vec<Wait>,
    pub plan: Option<String>,
    pub params: Map<String, Value>,
    pub progress: Option<(String, Option<f64>)>,
    pub resources: Vec<ResourceView>,
    pub outputs: Map<String, Value>,
    /// The last error (failed), or the skip/cancel reason.
    pub error: Option<String>,
    /// Errors of earlier attempts that were retried.
    pub attempt_errors: Vec<String>,
    /// Warnings the step gave (it did not fail for them).
    pub warnings: Vec<String>,
    /// A skip or cancel reason.
    pub note: Option<String>,
    /// The question the step asks now, if any.
    pub prompt: Option<Prompt>,
    /// The last answer given to it.
    pub answer: Option<(String, String)>,
    /// The event number of that answer, and whether it confirmed a manual task (rather than made a choice).
    pub answer_seq: Option<(u64, bool)>,
    /// The event number of its last failure (`step_failed`): an answer given before it no longer stands.
    pub failed_seq: Option<u64>,
    /// Approved by (confirm = true).
    pub approved_by: Option<String>,
    /// Ended in an earlier session of the run (a resume did not run it again).
    pub from_earlier_session: bool,
    /// The run time the step spent, one span per session it was active in: from the moment it was ready (asked
    /// for approval, or started) to its end, or to the end of that session (a killed or interrupted session).
    /// Its duration is their sum ([`StepView::duration_secs`]), the same in every output.
    pub spans: Vec<Span>,
    /// It ran past its P90 from the history (`step_overdue`) in this session.
    pub overdue: bool,
}

/// A part of a step's life within one session of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub session: u32,
    pub from: Timestamp,
    pub to: Option<Timestamp>,
}

impl StepView {
    fn new(info: StepInfo) -> Self {
        Self {
            info,
            phase: Phase::Pending,
            attempt: 0,
            attempts: Vec::new(),
            first_seen: None,
            started: None,
            ended: None,
            duration_ms: None,
            waits: Vec::new(),
            plan: None,
            params: Map::new(),
            progress: None,
            resources: Vec::new(),
            outputs: Map::new(),
            error: None,
            attempt_errors: Vec::new(),
            warnings: Vec::new(),
            note: None,
            prompt: None,
            answer: None,
            answer_seq: None,
            failed_seq: None,
            approved_by: None,
            from_earlier_session: false,
            spans: Vec::new(),
            overdue: false,
        }
    }

    /// The step's duration: the run time it spent across every session it was active in (a step killed and
    /// resumed counts both sessions, not the time the run was down in between), up to `now` while it is active.
    /// `None` if it never became ready.
    pub fn duration_secs(&self, now: Timestamp) -> Option<u64> {
        if self.spans.is_empty() {
            return None;
        }
        Some(self.spans.iter().map(|s| u64::try_from(secs_between(s.from, s.to.unwrap_or(now))).unwrap_or(0)).sum())
    }

    /// Of its duration, the run time it did not wait for a person (machine time).
    pub fn machine_secs(&self, now: Timestamp) -> Option<u64> {
        Some(self.duration_secs(now)?.saturating_sub(self.wait_secs(now)))
    }

    /// Opens a span in `session` at `at` (a step that becomes ready or starts), unless one is open there; a span of
    /// the same session that ended (a failed step run again) is reopened.
    fn open_span(&mut self, session: u32, at: Timestamp) {
        match self.spans.last_mut() {
            Some(s) if s.session == session => s.to = None,
            _ => self.spans.push(Span { session, from: at, to: None }),
        }
    }

    fn close_span(&mut self, at: Timestamp) {
        if let Some(s) = self.spans.last_mut()
            && s.to.is_none()
        {
            s.to = Some(at.max(s.from));
        }
    }

    /// Seconds spent waiting for people, up to `now` for a wait still open.
    pub fn wait_secs(&self, now: Timestamp) -> u64 {
        self.waits.iter().map(|w| w.secs(now)).sum()
    }

    /// The open wait, if the step waits for a person now.
    pub fn open_wait(&self) -> Option<&Wait> {
        self.waits.iter().rev().find(|w| w.to.is_none())
    }

    /// Seconds from its start to its end (or `now`), if it started.
    pub fn elapsed_secs(&self, now: Timestamp) -> Option<u64> {
        let start = self.started?;
        Some(u64::try_from(secs_between(start, self.ended.unwrap_or(now))).unwrap_or(0))
    }

    fn open_wait_mut(&mut self) -> Option<&mut Wait> {
        self.waits.iter_mut().rev().find(|w| w.to.is_none())
    }

    fn close_wait(&mut self, at: Timestamp, by: Option<&str>) {
        if let Some(w) = self.open_wait_mut() {
            w.to = Some(at);
            w.by = by.map(str::to_string);
        }
    }
}

/// What the run is, from its first `run_started`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHeader {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub app: String,
    pub path: String,
    pub sha256: String,
    pub backend: String,
    pub account: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub incident_start: Timestamp,
    pub rto_secs: u64,
    pub rpo_secs: u64,
    pub deadline: Timestamp,
    pub speed: f64,
    /// The first session's start.
    pub started: Timestamp,
    /// A drill (`--drill`): a recovery test.
    pub drill: bool,
}

/// A recovery point the run used (chosen for a step).
#[derive(Debug, Clone, PartialEq)]
pub struct PointView {
    pub step: String,
    pub id: String,
    pub kind: String,
    pub region: String,
    pub time: Timestamp,
    pub rpo_secs: i64,
    pub rpo_met: bool,
    pub verdict: RpoVerdict,
    /// `time` is an upper bound: the data loss is at least `rpo_secs`.
    pub bound: bool,
}

/// Something a person (or a headless flag) decided, or the run did on their behalf.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionView {
    /// Run time (simulated time on the simulator).
    pub at: Timestamp,
    /// Real time, when it differs from `at` (simulated runs).
    pub wall: Option<Timestamp>,
    /// approved, answered, confirmed done, skipped, retried, paused, resumed, aborted, interrupted, blocked
    pub what: &'static str,
    pub step: Option<String>,
    pub by: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorView {
    pub at: Timestamp,
    pub step: Option<String>,
    pub attempt: Option<u32>,
    pub error: String,
    pub retried: bool,
    /// The failed cloud call, as the port classified it.
    pub cause: Option<ErrorCause>,
}

/// Calls to a region that failed, from the causes the events carry (never from their text).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionCalls {
    pub failures: u32,
    /// The last error code.
    pub code: String,
    /// The last failure says the region did not answer (unavailable, timeouts, connection errors), not that a
    /// request was wrong.
    pub unreachable: bool,
    pub last: Timestamp,
}

/// One session of the run: its `run_started` (the first, or a resume).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub number: u32,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    /// The session's last event (an interrupted session has no `ended`).
    pub last_event: Timestamp,
}

impl SessionView {
    /// Run time the session spent: from its start to its last event.
    pub fn spent(&self) -> Duration {
        Duration::try_from(self.last_event.duration_since(self.started)).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinishedView {
    pub outcome: Outcome,
    pub message: String,
    pub duration_secs: u64,
    pub rto_secs: u64,
    pub rto_achieved_secs: u64,
    pub rto_met: bool,
    pub counts: [u32; 4],
    pub at: Timestamp,
}

/// A region that was unreachable during the run (or a global service's control plane: `route53`, `iam`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    pub region: String,
    /// Each period it was unreachable, in order.
    pub down: Vec<DownPeriod>,
    /// What opened its circuit the last time.
    pub evidence: String,
}

/// One period a region was unreachable.
///
/// Circuits live in the process that ran a session: a resumed session starts with every circuit closed and knows
/// nothing of an earlier session's outage until its own calls fail again. So a period still open when its session
/// ended is closed there, marked [`DownPeriod::session_ended`]: history ("unreachable in session 1, until it
/// ended"), not a current outage; the console's badge goes, and the new session's own `region_unreachable` (if the
/// region still fails) opens a new period.
#[derive(Debug, Clone, PartialEq)]
pub struct DownPeriod {
    /// When its circuit opened.
    pub since: Timestamp,
    /// When a probe was answered, or (`session_ended`) the last event of the session it was open in; `None` while
    /// it still is unreachable.
    pub until: Option<Timestamp>,
    /// The session it was seen in (1 for the first).
    pub session: u32,
    /// Its session ended with it still unreachable: `until` is that session's end, not the region's recovery.
    pub session_ended: bool,
}

impl RegionView {
    /// Unreachable now (its last period has not ended).
    pub fn is_unreachable(&self) -> bool {
        self.down.last().is_some_and(|d| d.until.is_none())
    }
}

/// The engine's last word on the critical path (the view computes its own projection, see [`RunView::clock_at`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineProjection {
    pub projected_finish: Timestamp,
    pub margin_secs: i64,
    pub critical_path: Vec<String>,
    /// The finish on every remaining step's P50 and P90 (`crate::forecast`); `None` in journals written before.
    pub p50_finish: Option<Timestamp>,
    pub p90_finish: Option<Timestamp>,
    /// Past runs the forecast learnt from.
    pub history_runs: Option<u32>,
    /// The critical path on P90 durations, when it differs from the P50 one.
    pub p90_critical_path: Vec<String>,
    /// The run's first projection (the forecast at its start).
    pub first: Option<Box<EngineProjection>>,
}

/// The run's clock at a given instant, computed from the view: identical in the console, the watcher and
/// headless output for the same `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockView {
    pub now: Timestamp,
    /// Since the incident started.
    pub elapsed_secs: i64,
    /// Until the RTO deadline (negative past it); at the end, frozen at the finish.
    pub rto_left_secs: i64,
    /// When the run will finish if every step takes its expected time (waits for people included: a step
    /// waiting for a person keeps consuming the RTO).
    pub projected_finish: Timestamp,
    /// Deadline minus projected finish (negative: late).
    pub margin_secs: i64,
    /// The steps on the critical path that have not ended.
    pub critical_path: Vec<String>,
    pub finished: bool,
    /// The finish if every remaining step takes its P90 from the history (its expected duration without one);
    /// `projected_finish` is the P50 finish.
    pub p90_finish: Timestamp,
    /// Deadline minus the P90 finish.
    pub p90_margin_secs: i64,
    /// The critical path on P90 durations, when it differs from the P50 one.
    pub p90_critical_path: Vec<String>,
    /// Past runs the forecast learnt from (`None`: no forecast recorded, an older journal).
    pub history_runs: Option<u32>,
    /// Some step's P50/P90 come from the history (else every step is at its expected duration).
    pub from_history: bool,
}

/// A recovery point's data-loss verdict for the whole run: the oldest data restored across every point used.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRpo {
    pub target_secs: u64,
    /// The worst (largest) data-loss window among the points used.
    pub achieved_secs: Option<i64>,
    /// `Some(true)` met, `Some(false)` missed, `None` when no point was used or the verdict is `unknown` (a window
    /// known only as a bound within the RPO is neither met nor missed: the outcome does not call it late, and a
    /// drill, which must prove its RPO, fails on it).
    pub met: Option<bool>,
    /// The point with the worst window.
    pub worst: Option<PointView>,
    /// `missed` if any point missed, else `unknown` if any is only bounded within the RPO, else `met`.
    pub verdict: Option<RpoVerdict>,
    /// The worst window is only a lower bound (`≥ …`).
    pub bound: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunView {
    pub run: Option<RunHeader>,
    /// Account and caller identity ARN (AWS).
    pub identity: Option<(String, String)>,
    /// In the order the runbook declares them.
    pub steps: Vec<StepView>,
    index: HashMap<String, usize>,
    pub paused: Option<String>,
    pub finished: Option<FinishedView>,
    pub points: Vec<PointView>,
    pub decisions: Vec<DecisionView>,
    pub errors: Vec<ErrorView>,
    /// (step, message), in order.
    pub warnings: Vec<(String, String)>,
    pub sessions: Vec<SessionView>,
    /// Regions whose calls failed, by region.
    pub region_calls: BTreeMap<String, RegionCalls>,
    pub projection: Option<EngineProjection>,
    /// Region health, in the order regions first became unreachable: each region's down periods
    /// (`region_unreachable` / `region_reachable` events).
    pub regions: Vec<RegionView>,
    /// The last event applied.
    pub last_seq: u64,
    pub last_ts: Option<Timestamp>,
    /// Run time and real time of the last event that carried its real time (simulated runs).
    pub last_wall: Option<(Timestamp, Timestamp)>,
    /// What the run created and changed, every record of it kept ([`Footprint`]): what a cleanup removes.
    pub footprint: Footprint,
    /// Who opened each session of the run ([`RunView::open_session`], from the journal's session notes).
    pub opened: Vec<SessionOpened>,
}

/// What a run created and changed in the cloud, from its `resource` events, across every session and step (the
/// steps' [`ResourceView`]s keep one line per resource and its latest phase; this keeps what a cleanup needs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Footprint {
    /// Every resource recorded with phase `created`, once each, sorted by (kind, id, region); a global
    /// resource's region is `global`, as recorded.
    pub created: Vec<ResourceRef>,
    /// Every resource recorded with phase `changed`, in the order first changed, with each recorded state in order
    /// (a route's: `<new target> (was <previous>)`).
    pub changed: Vec<Changed>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceRef {
    pub kind: String,
    pub id: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub res: ResourceRef,
    pub states: Vec<String>,
}

/// A session of the run as its journal note says it opened: its number, whether it resumed the run, who and where
/// (as `report.json` lists the sessions).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionOpened {
    pub number: u32,
    pub resumed: bool,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub at: Timestamp,
    /// The number of the last event before it (set by [`RunView::open_session`]).
    #[serde(skip)]
    pub after_seq: u64,
}

impl RunView {
    pub fn new() -> Self {
        Self::default()
    }

    /// The view of a whole event sequence.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut v = Self::new();
        for ev in events {
            v.apply(ev);
        }
        v
    }

    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.index.get(id).map(|&i| &self.steps[i])
    }

    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepView> {
        let i = *self.index.get(id)?;
        self.steps.get_mut(i)
    }

    /// The number of the session events are applied to now (1 for the first).
    fn session_number(&self) -> u32 {
        u32::try_from(self.sessions.len()).unwrap_or(u32::MAX).max(1)
    }

    /// The run has ended (its last session finished and no later session started).
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Steps that succeeded, of all.
    pub fn done(&self) -> (usize, usize) {
        (self.steps.iter().filter(|s| s.phase == Phase::Succeeded).count(), self.steps.len())
    }

    fn decide(&mut self, ev: &Event, what: &'static str, step: Option<&str>, by: &str, detail: String) {
        self.decisions.push(DecisionView {
            at: ev.ts,
            wall: ev.wall,
            what,
            step: step.map(str::to_string),
            by: by.to_string(),
            detail,
        });
    }

    /// Counts a failed call against its region.
    fn note_cause(&mut self, cause: Option<&ErrorCause>, at: Timestamp) {
        let Some(c) = cause.filter(|c| !c.region.is_empty()) else { return };
        let r = self.region_calls.entry(c.region.clone()).or_insert(RegionCalls {
            failures: 0,
            code: String::new(),
            unreachable: false,
            last: at,
        });
        r.failures += 1;
        r.code.clone_from(&c.code);
        r.unreachable = c.unreachable;
        r.last = at;
    }

    /// Records a session opening (a journal's session note; notes are not events). A process that opened the run
    /// and stopped before its first event still counts.
    pub fn open_session(&mut self, mut s: SessionOpened) {
        s.after_seq = self.last_seq;
        self.opened.push(s);
    }

    /// A session opened after the run's last event: a resume began (it may not have recorded anything yet), so
    /// an end seen before it is not the run's end.
    pub fn reopened(&self) -> bool {
        self.opened.last().is_some_and(|s| s.after_seq == self.last_seq)
    }

    /// Keeps a `resource` event's record in the [`Footprint`].
    fn note_footprint(&mut self, ev: &Event) {
        let EventKind::Resource { phase, kind, id, region, state, .. } = &ev.kind else { return };
        let res = ResourceRef { kind: kind.clone(), id: id.clone(), region: region.clone() };
        match phase.as_str() {
            "created" => {
                if let Err(i) = self.footprint.created.binary_search(&res) {
                    self.footprint.created.insert(i, res);
                }
            }
            "changed" => match self.footprint.changed.iter_mut().find(|c| c.res == res) {
                Some(c) => c.states.push(state.clone()),
                None => self.footprint.changed.push(Changed { res, states: vec![state.clone()] }),
            },
            _ => {}
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, ev: &Event) {
        self.note_footprint(ev);
        self.last_seq = self.last_seq.max(ev.seq);
        self.last_ts = Some(self.last_ts.map_or(ev.ts, |t| t.max(ev.ts)));
        if let Some(w) = ev.wall {
            self.last_wall = Some((ev.ts, w));
        }
        let at = ev.ts;
        match &ev.kind {
            EventKind::RunStarted {
                run_id,
                runbook,
                title,
                app,
                path,
                sha256,
                backend,
                account,
                primary,
                secondary,
                incident_start,
                rto_secs,
                rpo_secs,
                deadline,
                speed,
                steps,
                drill,
            } => {
                let resumed = self.run.as_ref().is_some_and(|r| r.run_id == *run_id);
                let started = if resumed { self.run.as_ref().map_or(at, |r| r.started) } else { at };
                if !resumed {
                    *self = Self {
                        last_seq: self.last_seq,
                        last_ts: self.last_ts,
                        last_wall: self.last_wall,
                        // the first session's note comes before the run's first event (a journal holds one run)
                        opened: std::mem::take(&mut self.opened),
                        ..Self::default()
                    };
                }
                self.run = Some(RunHeader {
                    run_id: run_id.clone(),
                    runbook: runbook.clone(),
                    title: title.clone(),
                    app: app.clone(),
                    path: path.clone(),
                    sha256: sha256.clone(),
                    backend: backend.clone(),
                    account: account.clone(),
                    primary: primary.clone(),
                    secondary: secondary.clone(),
                    incident_start: *incident_start,
                    rto_secs: *rto_secs,
                    rpo_secs: *rpo_secs,
                    deadline: *deadline,
                    speed: *speed,
                    started,
                    drill: *drill,
                });
                if let Some(last) = self.sessions.last_mut() {
                    last.ended.get_or_insert(self.finished.as_ref().map_or(at, |f| f.at));
                    // what was active when that session stopped counts up to its last event, not the time down
                    let end = last.last_event;
                    for s in &mut self.steps {
                        s.close_span(end);
                    }
                    // a region unreachable when that session stopped is history: this session's circuits start
                    // closed (see `DownPeriod`)
                    for r in &mut self.regions {
                        if let Some(d) = r.down.last_mut()
                            && d.until.is_none()
                        {
                            d.until = Some(end);
                            d.session_ended = true;
                        }
                    }
                }
                let number = u32::try_from(self.sessions.len()).unwrap_or(u32::MAX).saturating_add(1);
                self.sessions.push(SessionView { number, started: at, ended: None, last_event: at });
                self.finished = None;
                self.paused = None;
                self.set_steps(steps);
            }
            EventKind::Identity { account, arn } => self.identity = Some((account.clone(), arn.clone())),
            EventKind::StepAwaitingApproval { step, plan } => {
                let session = self.session_number();
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::AwaitingApproval;
                    s.first_seen.get_or_insert(at);
                    s.open_span(session, at);
                    s.plan = Some(plan.clone());
                    if s.open_wait().is_none() {
                        s.waits.push(Wait { kind: WaitKind::Approval, from: at, to: None, by: None });
                    }
                }
            }
            EventKind::StepApproved { step, by } => {
                if let Some(s) = self.step_mut(step) {
                    s.approved_by = Some(by.clone());
                    s.close_wait(at, Some(by));
                    if s.phase == Phase::AwaitingApproval {
                        s.phase = Phase::Pending;
                    }
                }
                self.decide(ev, "approved", Some(step), by, String::new());
            }
            EventKind::StepStarted { step, attempt, plan, params } => {
                let session = self.session_number();
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::Running;
                    s.attempt = *attempt;
                    s.first_seen.get_or_insert(at);
                    s.open_span(session, at);
                    s.started.get_or_insert(at);
                    s.ended = None;
                    s.duration_ms = None;
                    s.error = None;
                    s.note = None;
                    s.from_earlier_session = false;
                    s.plan = Some(plan.clone());
                    s.params = params.clone();
                    s.progress = None;
                    s.attempts.push(Attempt { number: *attempt, started: at, ended: None, error: None });
                }
            }
            EventKind::StepProgress { step, message, percent, cause } => {
                if let Some(s) = self.step_mut(step) {
                    s.progress = Some((message.clone(), *percent));
                }
                self.note_cause(cause.as_ref(), at);
            }
            EventKind::Resource { step, phase, kind, id, region, state } => {
                if let Some(s) = self.step_mut(step) {
                    let new = ResourceView {
                        phase: phase.clone(),
                        kind: kind.clone(),
                        id: id.clone(),
                        region: region.clone(),
                        state: state.clone(),
                    };
                    // one entry per resource: the latest phase wins ("creating" becomes "created"), except that a
                    // resource this run created and a later attempt found again stays "created"
                    match s
                        .resources
                        .iter_mut()
                        .find(|x| x.kind == *kind && x.region == *region && (x.id == *id || x.id.is_empty()))
                    {
                        Some(x) if x.phase == "created" && phase == "found" => x.state = new.state,
                        Some(x) => *x = new,
                        None => s.resources.push(new),
                    }
                }
            }
            EventKind::OperatorRequest { step, prompt } => {
                if let Some(s) = self.step_mut(step) {
                    let kind = match prompt {
                        Prompt::Done { .. } => WaitKind::Manual,
                        Prompt::Choice { .. } => WaitKind::Choice,
                    };
                    s.prompt = Some(prompt.clone());
                    if !s.phase.is_terminal() {
                        s.phase = Phase::WaitingOperator;
                    }
                    if s.open_wait().is_none() {
                        s.waits.push(Wait { kind, from: at, to: None, by: None });
                    }
                }
            }
            EventKind::OperatorAnswered { step, answer, by } => {
                let manual = self.step(step).is_some_and(|s| {
                    matches!(s.prompt, Some(Prompt::Done { .. }))
                        || s.waits.last().is_some_and(|w| w.kind == WaitKind::Manual)
                });
                if let Some(s) = self.step_mut(step) {
                    s.prompt = None;
                    s.answer = Some((answer.clone(), by.clone()));
                    s.answer_seq = Some((ev.seq, manual));
                    s.close_wait(at, Some(by));
                    if s.phase == Phase::WaitingOperator {
                        s.phase = Phase::Running;
                    }
                }
                if manual {
                    self.decide(ev, "confirmed done", Some(step), by, String::new());
                } else {
                    self.decide(ev, "answered", Some(step), by, answer.clone());
                }
            }
            EventKind::RecoveryPointChosen { step, id, kind, region, time, rpo_secs, rpo_met, verdict, bound } => {
                let p = PointView {
                    step: step.clone(),
                    id: id.clone(),
                    kind: kind.clone(),
                    region: region.clone(),
                    time: *time,
                    rpo_secs: *rpo_secs,
                    rpo_met: *rpo_met,
                    verdict: RpoVerdict::of(*verdict, *rpo_met),
                    bound: *bound,
                };
                // a step that runs again (resume, retry) may choose again: its latest choice counts
                match self.points.iter_mut().find(|x| x.step == *step && x.kind == *kind) {
                    Some(x) => *x = p,
                    None => self.points.push(p),
                }
            }
            EventKind::StepRetrying { step, attempt, error, cause, .. } => {
                self.note_cause(cause.as_ref(), at);
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::Retrying;
                    s.attempt_errors.push(error.clone());
                    if let Some(a) = s.attempts.iter_mut().rev().find(|a| a.number == *attempt) {
                        a.ended = Some(at);
                        a.error = Some(error.clone());
                    }
                }
                self.errors.push(ErrorView {
                    at,
                    step: Some(step.clone()),
                    attempt: Some(*attempt),
                    error: error.clone(),
                    retried: true,
                    cause: cause.clone(),
                });
            }
            EventKind::StepSucceeded { step, attempt, duration_ms, outputs } => {
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::Succeeded;
                    s.attempt = s.attempt.max(*attempt);
                    s.ended = Some(at);
                    s.close_span(at);
                    s.duration_ms = Some(*duration_ms);
                    s.outputs = outputs.clone();
                    s.progress = None;
                    s.prompt = None;
                    s.close_wait(at, None);
                    if let Some(a) = s.attempts.last_mut() {
                        a.ended = Some(at);
                    }
                }
            }
            EventKind::StepFailed { step, attempt, error, cause, .. } => {
                self.note_cause(cause.as_ref(), at);
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::Failed;
                    s.attempt = s.attempt.max(*attempt);
                    s.ended = Some(at);
                    s.close_span(at);
                    s.failed_seq = Some(ev.seq);
                    s.error = Some(error.clone());
                    s.prompt = None;
                    s.close_wait(at, None);
                    if let Some(a) = s.attempts.last_mut() {
                        a.ended = Some(at);
                        a.error = Some(error.clone());
                    }
                }
                self.errors.push(ErrorView {
                    at,
                    step: Some(step.clone()),
                    attempt: Some(*attempt),
                    error: error.clone(),
                    retried: false,
                    cause: cause.clone(),
                });
            }
            EventKind::StepSkipped { step, reason, by } => {
                if let Some(s) = self.step_mut(step) {
                    s.phase = Phase::Skipped;
                    s.ended = Some(at);
                    s.close_span(at);
                    s.note = Some(reason.clone());
                    s.prompt = None;
                    s.close_wait(at, Some(by));
                }
                self.decide(ev, "skipped", Some(step), by, reason.clone());
            }
            EventKind::StepCancelled { step, reason } => {
                if let Some(s) = self.step_mut(step) {
                    // a step cancelled before it started keeps "not started" as its outcome (with the reason)
                    if s.started.is_some() || s.phase != Phase::Pending {
                        s.phase = Phase::Cancelled;
                        s.ended = Some(at);
                    }
                    s.close_span(at);
                    s.note = Some(reason.clone());
                    s.prompt = None;
                    s.close_wait(at, None);
                    if let Some(a) = s.attempts.last_mut() {
                        a.ended.get_or_insert(at);
                    }
                }
            }
            EventKind::StepWarning { step, message } => {
                if let Some(s) = self.step_mut(step) {
                    s.warnings.push(message.clone());
                }
                self.warnings.push((step.clone(), message.clone()));
            }
            EventKind::StepOverdue { step, .. } => {
                if let Some(s) = self.step_mut(step) {
                    s.overdue = true;
                }
            }
            EventKind::StepForecast { step, p50_secs, p90_secs, .. } => {
                if let Some(s) = self.step_mut(step) {
                    s.info.p50_secs = Some(*p50_secs);
                    s.info.p90_secs = Some(*p90_secs);
                }
            }
            EventKind::StepRetryRequested { step, by } => {
                self.decide(ev, "retried", Some(step), by, String::new());
            }
            EventKind::Projection {
                projected_finish,
                margin_secs,
                critical_path,
                p50_finish,
                p90_finish,
                history_runs,
                p90_critical_path,
                ..
            } => {
                let first = self.projection.as_ref().and_then(|p| p.first.clone());
                let mut p = EngineProjection {
                    projected_finish: *projected_finish,
                    margin_secs: *margin_secs,
                    critical_path: critical_path.clone(),
                    p50_finish: *p50_finish,
                    p90_finish: *p90_finish,
                    history_runs: *history_runs,
                    p90_critical_path: p90_critical_path.clone(),
                    first: None,
                };
                // the forecast at the start, kept for the report (forecast at start vs actual)
                p.first = Some(first.unwrap_or_else(|| Box::new(p.clone())));
                self.projection = Some(p);
            }
            EventKind::RegionUnreachable { region, evidence, since } => {
                let session = self.session_number();
                let r = match self.regions.iter().position(|r| &r.region == region) {
                    Some(i) => &mut self.regions[i],
                    None => {
                        self.regions.push(RegionView {
                            region: region.clone(),
                            down: Vec::new(),
                            evidence: String::new(),
                        });
                        let n = self.regions.len() - 1;
                        &mut self.regions[n]
                    }
                };
                if !r.is_unreachable() {
                    r.down.push(DownPeriod { since: *since, until: None, session, session_ended: false });
                }
                r.evidence.clone_from(evidence);
            }
            EventKind::RegionReachable { region, .. } => {
                if let Some(r) = self.regions.iter_mut().find(|r| &r.region == region)
                    && let Some(last) = r.down.last_mut()
                    && last.until.is_none()
                {
                    last.until = Some(at);
                }
            }
            EventKind::RunPaused { reason } => {
                self.paused = Some(reason.clone());
                self.decide(ev, "paused", None, "", reason.clone());
            }
            EventKind::RunResumed { by } => {
                self.paused = None;
                self.decide(ev, "resumed", None, by, String::new());
            }
            EventKind::RunFinished {
                outcome,
                duration_secs,
                rto_secs,
                rto_achieved_secs,
                rto_met,
                succeeded,
                failed,
                skipped,
                cancelled,
                message,
            } => {
                self.finished = Some(FinishedView {
                    outcome: *outcome,
                    message: message.clone(),
                    duration_secs: *duration_secs,
                    rto_secs: *rto_secs,
                    rto_achieved_secs: *rto_achieved_secs,
                    rto_met: *rto_met,
                    counts: [*succeeded, *failed, *skipped, *cancelled],
                    at,
                });
                if let Some(s) = self.sessions.last_mut() {
                    s.ended = Some(at);
                }
                self.paused = None;
                for s in &mut self.steps {
                    if let Some(w) = s.open_wait_mut() {
                        w.to = Some(at);
                    }
                    s.close_span(at);
                }
                match outcome {
                    Outcome::Aborted => {
                        let by = message
                            .strip_prefix("aborted by ")
                            .and_then(|m| m.split_once(": "))
                            .map(|(by, _)| by.to_string())
                            .unwrap_or_default();
                        self.decide(ev, "aborted", None, &by, message.clone());
                    }
                    Outcome::Interrupted => self.decide(ev, "interrupted", None, "", message.clone()),
                    Outcome::Blocked => self.decide(ev, "blocked", None, "", message.clone()),
                    _ => {}
                }
            }
        }
        if let Some(s) = self.sessions.last_mut() {
            s.last_event = s.last_event.max(at);
        }
    }

    /// A resumed session announces the steps again: steps already known keep what earlier sessions recorded
    /// (a step that ended then is marked as such); new steps are added.
    fn set_steps(&mut self, steps: &[StepInfo]) {
        for s in &mut self.steps {
            if s.phase.is_terminal() {
                s.from_earlier_session = true;
            } else {
                // what was running or waiting when the session stopped starts again (or is restored as done)
                s.phase = Phase::Pending;
                s.prompt = None;
                s.progress = None;
            }
        }
        for info in steps {
            match self.index.get(&info.id) {
                Some(&i) => self.steps[i].info = info.clone(),
                None => {
                    self.index.insert(info.id.clone(), self.steps.len());
                    self.steps.push(StepView::new(info.clone()));
                }
            }
        }
    }

    /// Run time "now" from a real instant: the last event's run time plus the real time since it, times the
    /// run's speed (simulated runs, whose events carry their real time); real time itself otherwise.
    pub fn run_time_at(&self, wall_now: Timestamp) -> Timestamp {
        let Some(run) = &self.run else { return wall_now };
        if let Some((ts, wall)) = self.last_wall {
            let real = wall_now.duration_since(wall).max(SignedDuration::ZERO);
            let scaled = SignedDuration::try_from(Duration::try_from(real).unwrap_or_default().mul_f64(run.speed))
                .unwrap_or_default();
            return ts.saturating_add(scaled).unwrap_or(ts);
        }
        if (run.speed - 1.0).abs() < f64::EPSILON {
            return wall_now;
        }
        self.last_ts.unwrap_or(wall_now)
    }

    /// The run's clock at `now` (run time): elapsed since the incident, RTO left, and the projected finish
    /// computed from every step's phase and expected duration. Steps waiting for a person count their full
    /// expected time from `now`, so the projection moves on while they wait.
    pub fn clock_at(&self, now: Timestamp) -> Option<ClockView> {
        let run = self.run.as_ref()?;
        if let Some(f) = &self.finished {
            return Some(ClockView {
                now: f.at,
                elapsed_secs: secs_between(run.incident_start, f.at),
                rto_left_secs: secs_between(f.at, run.deadline),
                projected_finish: f.at,
                margin_secs: secs_between(f.at, run.deadline),
                critical_path: Vec::new(),
                finished: true,
                p90_finish: f.at,
                p90_margin_secs: secs_between(f.at, run.deadline),
                p90_critical_path: Vec::new(),
                history_runs: self.projection.as_ref().and_then(|p| p.history_runs),
                from_history: self.from_history(),
            });
        }
        let now = self.last_ts.map_or(now, |t| now.max(t));
        let remaining = |p90: bool| -> Vec<u64> {
            self.steps
                .iter()
                .map(|s| {
                    let expected = if p90 { s.info.p90_secs } else { s.info.p50_secs }.unwrap_or(s.info.expected_secs);
                    match s.phase {
                        Phase::Pending | Phase::AwaitingApproval => expected,
                        Phase::Running | Phase::Retrying | Phase::WaitingOperator => {
                            let since = s.attempts.last().map_or(now, |a| a.started);
                            expected.saturating_sub(u64::try_from(secs_between(since, now)).unwrap_or(0))
                        }
                        _ => 0,
                    }
                })
                .collect()
        };
        let at = |total: u64| {
            now.saturating_add(SignedDuration::from_secs(i64::try_from(total).unwrap_or(i64::MAX))).unwrap_or(now)
        };
        let ids = |path: Vec<usize>| -> Vec<String> {
            path.into_iter()
                .filter(|&i| !self.steps[i].phase.is_terminal())
                .map(|i| self.steps[i].info.id.clone())
                .collect()
        };
        let (total, path) = self.longest_path(&remaining(false));
        let (total90, path90) = self.longest_path(&remaining(true));
        let projected = at(total);
        let p90 = at(total90).max(projected);
        let critical_path = ids(path);
        let p90_path = ids(path90);
        Some(ClockView {
            now,
            elapsed_secs: secs_between(run.incident_start, now),
            rto_left_secs: secs_between(now, run.deadline),
            projected_finish: projected,
            margin_secs: secs_between(projected, run.deadline),
            p90_finish: p90,
            p90_margin_secs: secs_between(p90, run.deadline),
            p90_critical_path: if p90_path == critical_path { Vec::new() } else { p90_path },
            critical_path,
            finished: false,
            history_runs: self.projection.as_ref().and_then(|p| p.history_runs),
            from_history: self.from_history(),
        })
    }

    /// Some step's forecast comes from the runbook's history (its P50/P90 are known).
    pub fn from_history(&self) -> bool {
        self.steps.iter().any(|s| s.info.p50_secs.is_some())
    }

    /// A step that runs past its P90 from the history: overdue, with its P90 and P50 (what is typical for it).
    /// `None` for a step without history or not past it.
    pub fn overdue(&self, s: &StepView, now: Timestamp) -> Option<(u64, u64)> {
        let (p50, p90) = (s.info.p50_secs?, s.info.p90_secs?);
        if !matches!(s.phase, Phase::Running | Phase::Retrying | Phase::WaitingOperator) {
            return None;
        }
        let ran = s.duration_secs(now)?;
        (ran > p90).then_some((p90, p50))
    }

    /// Whether the projection moves with time alone at `now`: while the run is paused, a step waits for its
    /// confirmation, or a step runs past its expected time. Not in the moment between one step's end and the next
    /// one's start, when nothing runs and the events about to come (the projection, the next start) move it.
    pub fn moves_with_time(&self, now: Timestamp) -> bool {
        if self.finished.is_some() {
            return false;
        }
        self.paused.is_some()
            || self.steps.iter().any(|s| match s.phase {
                Phase::AwaitingApproval => true,
                Phase::Running | Phase::Retrying | Phase::WaitingOperator => s.attempts.last().is_some_and(|a| {
                    u64::try_from(secs_between(a.started, now)).unwrap_or(0)
                        > s.info.p50_secs.unwrap_or(s.info.expected_secs)
                }),
                _ => false,
            })
    }

    /// The longest chain of remaining durations through the `needs` graph, and its steps in order (the same
    /// computation as the engine's critical path, [`crate::runbook::dag::critical_path_of`]).
    fn longest_path(&self, remaining: &[u64]) -> (u64, Vec<usize>) {
        let deps: Vec<Vec<usize>> = self
            .steps
            .iter()
            .map(|s| s.info.needs.iter().filter_map(|d| self.index.get(d).copied()).collect())
            .collect();
        crate::runbook::dag::critical_path_of(&deps, |i| remaining[i])
    }

    /// The run's RPO: the oldest data restored across every recovery point the run used.
    pub fn rpo(&self) -> RunRpo {
        let target_secs = self.run.as_ref().map_or(0, |r| r.rpo_secs);
        let worst = self.points.iter().max_by_key(|p| (p.rpo_secs, p.bound)).cloned();
        let verdict = self.points.iter().map(|p| p.verdict).max();
        RunRpo {
            target_secs,
            achieved_secs: worst.as_ref().map(|p| p.rpo_secs),
            met: match verdict {
                Some(RpoVerdict::Met) => Some(true),
                Some(RpoVerdict::Missed) => Some(false),
                Some(RpoVerdict::Unknown) | None => None,
            },
            bound: worst.as_ref().is_some_and(|p| p.bound),
            worst,
            verdict,
        }
    }

    /// Steps that wait for a person now.
    pub fn waiting(&self) -> impl Iterator<Item = &StepView> {
        self.steps.iter().filter(|s| s.phase.needs_operator())
    }

    /// The candidates of a step's open choice.
    pub fn candidates(&self, step: &str) -> Option<&[Candidate]> {
        match &self.step(step)?.prompt {
            Some(Prompt::Choice { candidates, .. }) => Some(candidates),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::OnFailure;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn ev(seq: u64, at: i64, wall: Option<i64>, kind: EventKind) -> Event {
        Event { seq, ts: ts(at), wall: wall.map(ts), kind }
    }

    fn started_run(speed: f64) -> EventKind {
        EventKind::RunStarted {
            run_id: "r1".into(),
            runbook: "rb".into(),
            title: "t".into(),
            app: "a".into(),
            path: "p".into(),
            sha256: String::new(),
            backend: "sim".into(),
            account: None,
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            incident_start: ts(0),
            rto_secs: 3600,
            rpo_secs: 3600,
            deadline: ts(3600),
            speed,
            steps: vec![StepInfo {
                id: "copy".into(),
                title: "copy".into(),
                action: "wait".into(),
                needs: Vec::new(),
                expected_secs: 600,
                confirm: false,
                on_failure: OnFailure::Pause,
                p50_secs: None,
                p90_secs: None,
            }],
            drill: false,
        }
    }

    fn start(attempt: u32) -> EventKind {
        EventKind::StepStarted { step: "copy".into(), attempt, plan: String::new(), params: Map::new() }
    }

    /// A step killed after 316 s and run again for 316 s after a resume an hour later took 10m32s: each session's
    /// time, not the outage between them.
    #[test]
    fn a_resumed_step_s_duration_is_the_sum_of_its_sessions() {
        let events = [
            ev(1, 0, None, started_run(1.0)),
            ev(2, 100, None, start(1)),
            ev(
                3,
                416,
                None,
                EventKind::StepProgress { step: "copy".into(), message: "copying".into(), percent: None, cause: None },
            ),
            // killed here; resumed an hour later
            ev(4, 4016, None, started_run(1.0)),
            ev(5, 4016, None, start(2)),
            ev(
                6,
                4332,
                None,
                EventKind::StepSucceeded { step: "copy".into(), attempt: 2, duration_ms: 316_000, outputs: Map::new() },
            ),
        ];
        let v = RunView::from_events(&events);
        let s = v.step("copy").unwrap();
        assert_eq!(s.duration_secs(ts(5000)), Some(632));
        assert_eq!(s.spans.len(), 2);
        assert_eq!(s.attempt, 2);
    }

    /// After a resume, "now" comes from the resumed session's events and their real time, at the run's speed: the
    /// driver and a watcher compute the same instant.
    #[test]
    fn run_time_after_a_resume_counts_from_the_resumed_session() {
        let events = [
            ev(1, 0, Some(0), started_run(100.0)),
            ev(2, 600, Some(6), start(1)),
            // killed; resumed 50 real seconds later, its run time continuing from the saved world
            ev(3, 600, Some(56), started_run(100.0)),
            ev(4, 700, Some(57), start(2)),
        ];
        let v = RunView::from_events(&events);
        // 3 real seconds after the last event: 300 s of run time later
        assert_eq!(v.run_time_at(ts(60)), ts(1000));
        let c = v.clock_at(v.run_time_at(ts(60))).unwrap();
        assert_eq!(c.rto_left_secs, 3600 - 1000);
    }

    /// A region unreachable when its session was killed is history after a resume (the new process's circuits
    /// start closed): its period ends at that session's last event, marked so; the new session's own sighting opens
    /// a new period.
    #[test]
    fn a_region_down_in_an_earlier_session_is_history_after_a_resume_until_seen_again() {
        let down = |seq, at| {
            ev(
                seq,
                at,
                None,
                EventKind::RegionUnreachable {
                    region: "us-east-1".into(),
                    evidence: "5 failures in a row".into(),
                    since: ts(at),
                },
            )
        };
        let mut events = vec![ev(1, 0, None, started_run(1.0)), ev(2, 10, None, start(1)), down(3, 20)];
        events.push(ev(
            4,
            30,
            None,
            EventKind::StepProgress { step: "copy".into(), message: "copying".into(), percent: None, cause: None },
        ));
        let v = RunView::from_events(&events);
        assert!(v.regions[0].is_unreachable());
        // killed; resumed later
        events.push(ev(5, 500, None, started_run(1.0)));
        let v = RunView::from_events(&events);
        assert!(!v.regions[0].is_unreachable(), "not a current outage: {:?}", v.regions);
        assert_eq!(
            v.regions[0].down,
            vec![DownPeriod { since: ts(20), until: Some(ts(30)), session: 1, session_ended: true }]
        );
        // the new session sees it fail again
        events.push(down(6, 520));
        let v = RunView::from_events(&events);
        assert!(v.regions[0].is_unreachable());
        assert_eq!(v.regions[0].down.len(), 2);
        assert_eq!(v.regions[0].down[1], DownPeriod { since: ts(520), until: None, session: 2, session_ended: false });
    }

    fn res(phase: &str, kind: &str, id: &str, region: &str, state: &str) -> EventKind {
        EventKind::Resource {
            step: "copy".into(),
            phase: phase.into(),
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
            state: state.into(),
        }
    }

    fn opened(number: u32) -> SessionOpened {
        SessionOpened {
            number,
            resumed: number > 1,
            user: "u".into(),
            host: "h".into(),
            pid: number,
            at: ts(0),
            after_seq: 99,
        }
    }

    /// What a cleanup reads: every resource ever created (once, even when a later attempt found it again or it was
    /// deleted), and every state of a changed resource in order, across sessions.
    #[test]
    fn the_footprint_keeps_every_creation_and_every_change_across_sessions() {
        let mut v = RunView::new();
        v.open_session(opened(1));
        for (i, k) in [
            started_run(1.0),
            res("creating", "nat-gateway", "", "us-west-2", ""),
            res("created", "nat-gateway", "nat-1", "us-west-2", "available"),
            res("changed", "route", "rtb-1 0.0.0.0/0", "us-west-2", "nat-1 (was igw-1)"),
            res("created", "dns-record", "drill.example.com", "global", ""),
        ]
        .into_iter()
        .enumerate()
        {
            v.apply(&ev(i as u64 + 1, 0, None, k));
        }
        assert!(!v.reopened(), "events came after the first session opened");
        v.open_session(opened(2));
        assert!(v.reopened(), "a session opened after the last event: a resume began");
        for (i, k) in [
            started_run(1.0),
            res("found", "nat-gateway", "nat-1", "us-west-2", "available"),
            res("created", "nat-gateway", "nat-1", "us-west-2", "available"),
            res("changed", "route", "rtb-1 0.0.0.0/0", "us-west-2", "nat-2 (was nat-1)"),
            res("deleting", "dns-record", "drill.example.com", "global", ""),
        ]
        .into_iter()
        .enumerate()
        {
            v.apply(&ev(i as u64 + 10, 60, None, k));
        }
        assert!(!v.reopened());
        let r = |kind: &str, id: &str, region: &str| ResourceRef {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
        };
        assert_eq!(
            v.footprint.created,
            [r("dns-record", "drill.example.com", "global"), r("nat-gateway", "nat-1", "us-west-2")]
        );
        assert_eq!(
            v.footprint.changed,
            [Changed {
                res: r("route", "rtb-1 0.0.0.0/0", "us-west-2"),
                states: vec!["nat-1 (was igw-1)".into(), "nat-2 (was nat-1)".into()]
            }]
        );
        assert_eq!(v.opened.iter().map(|s| (s.number, s.after_seq)).collect::<Vec<_>>(), [(1, 0), (2, 5)]);
    }
}
