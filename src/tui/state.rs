//! The console's state machine: `State::handle(input) -> Vec<Effect>`. Pure: no terminal, no channels, no clock
//! (time arrives as `Input::Tick`). Engine events update the run's picture; keys move the selection, open popups
//! and produce commands for the engine, which the driver sends.

use std::collections::HashMap;

use jiff::Timestamp;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::{Map, Value};

use super::StepNotes;
use super::keymap::{self, Action};
use crate::engine::{Candidate, Command, Event, EventKind, Outcome, Prompt, StepInfo};
use crate::util::fmt_duration;

/// What the state machine is given.
#[derive(Debug, Clone)]
pub enum Input {
    Event(Box<Event>),
    Key(KeyEvent),
    /// The current run time (scaled like the engine's clock); drives countdowns and spinners.
    Tick(Timestamp),
    /// The terminal's size changed.
    Resize(u16, u16),
    /// The event stream ended (engine gone, or the journal fully read in watch mode).
    EventsClosed,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    /// `confirm = true`: waiting for the operator's approval.
    Awaiting,
    /// An action asked the operator something (manual task, recovery point).
    Asking,
    Running,
    /// Failed an attempt; another is coming.
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn icon(self) -> &'static str {
        match self {
            StepStatus::Pending => "·",
            StepStatus::Awaiting => "?",
            StepStatus::Asking => "?",
            StepStatus::Running => "▶",
            StepStatus::Retrying => "↻",
            StepStatus::Succeeded => "✓",
            StepStatus::Failed => "✗",
            StepStatus::Skipped => "»",
            StepStatus::Cancelled => "-",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Awaiting => "awaiting approval",
            StepStatus::Asking => "waiting for you",
            StepStatus::Running => "running",
            StepStatus::Retrying => "retrying",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
    pub fn role(self) -> &'static str {
        match self {
            StepStatus::Pending => "step.pending",
            StepStatus::Awaiting | StepStatus::Asking => "step.awaiting",
            StepStatus::Running | StepStatus::Retrying => "step.running",
            StepStatus::Succeeded => "step.succeeded",
            StepStatus::Failed => "step.failed",
            StepStatus::Skipped => "step.skipped",
            StepStatus::Cancelled => "step.cancelled",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled)
    }
    fn needs_operator(self) -> bool {
        matches!(self, StepStatus::Awaiting | StepStatus::Asking)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceView {
    pub phase: String,
    pub kind: String,
    pub id: String,
    pub region: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub info: StepInfo,
    /// Stage in the dependency graph (longest path from a root): steps of one stage may run in parallel.
    pub stage: usize,
    pub status: StepStatus,
    pub attempt: u32,
    pub started: Option<Timestamp>,
    pub ended: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    pub plan: Option<String>,
    pub params: Map<String, Value>,
    pub progress: Option<(String, Option<f64>)>,
    pub resources: Vec<ResourceView>,
    pub outputs: Map<String, Value>,
    pub error: Option<String>,
    /// Errors of earlier attempts (retried).
    pub attempt_errors: Vec<String>,
    pub note: Option<String>,
    pub prompt: Option<Prompt>,
}

#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub app: String,
    pub backend: String,
    pub account: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub incident_start: Timestamp,
    pub rto_secs: u64,
    pub rpo_secs: u64,
    pub deadline: Timestamp,
    pub speed: f64,
    pub started: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ProjectionView {
    pub projected_finish: Timestamp,
    pub margin_secs: i64,
    pub critical_path: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ChosenPoint {
    pub step: String,
    pub id: String,
    pub kind: String,
    pub region: String,
    pub time: Timestamp,
    pub rpo_secs: i64,
    pub rpo_met: bool,
}

#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: Outcome,
    pub message: String,
    pub duration_secs: u64,
    pub rto_secs: u64,
    pub rto_achieved_secs: u64,
    pub rto_met: bool,
    pub counts: [u32; 4],
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Good,
    Warn,
    Bad,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    pub ts: Timestamp,
    pub tag: &'static str,
    pub step: String,
    pub text: String,
    pub level: LogLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Steps,
    /// The detail pane: j/k scroll it (long errors, many parameters).
    Detail,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Time,
    Kind,
    Region,
    Size,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Time => "time",
            SortKey::Kind => "kind",
            SortKey::Region => "region",
            SortKey::Size => "size",
        }
    }
    fn next(self) -> Self {
        match self {
            SortKey::Time => SortKey::Kind,
            SortKey::Kind => SortKey::Region,
            SortKey::Region => SortKey::Size,
            SortKey::Size => SortKey::Time,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Picker {
    pub step: String,
    pub message: String,
    pub candidates: Vec<Candidate>,
    pub sort: SortKey,
    /// Newest (or largest) first when true.
    pub descending: bool,
    pub filter: String,
    pub filtering: bool,
    /// Index into `visible()`.
    pub selected: usize,
}

impl Picker {
    /// The candidates shown, filtered and sorted.
    pub fn visible(&self) -> Vec<&Candidate> {
        let f = self.filter.to_lowercase();
        let mut v: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| {
                f.is_empty()
                    || [c.id.as_str(), c.kind.as_str(), c.region.as_str(), c.source.as_str()]
                        .iter()
                        .any(|s| s.to_lowercase().contains(&f))
            })
            .collect();
        v.sort_by(|a, b| {
            let o = match self.sort {
                SortKey::Time => a.time.cmp(&b.time),
                SortKey::Kind => a.kind.cmp(&b.kind).then(a.time.cmp(&b.time)),
                SortKey::Region => a.region.cmp(&b.region).then(a.time.cmp(&b.time)),
                SortKey::Size => a.size_gib.cmp(&b.size_gib).then(a.time.cmp(&b.time)),
            };
            if self.descending { o.reverse() } else { o }
        });
        v
    }
}

/// A popup; it takes every key while open.
#[derive(Debug, Clone)]
pub enum Modal {
    Help,
    /// A `confirm = true` step: its plan line; destructive steps require typing `name`.
    Confirm {
        step: String,
        plan: String,
        destructive: Option<String>,
        input: String,
    },
    /// A manual task: confirm when done.
    Manual {
        step: String,
        instructions: String,
    },
    Picker(Picker),
    /// Skip a step: a reason is required.
    Skip {
        step: String,
        reason: String,
    },
    Abort,
    Quit,
}

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: String,
    pub editing: bool,
    /// The matched log line the view is on.
    pub current: Option<usize>,
}

/// Everything the console shows. Views render from `&State`.
#[derive(Debug, Clone)]
pub struct State {
    pub notes: StepNotes,
    pub operator: String,
    /// `false` in watch mode: navigation only, nothing is sent to the engine.
    pub control: bool,
    pub run: Option<RunInfo>,
    pub identity: Option<(String, String)>,
    /// In dependency order (stage, then runbook order).
    pub steps: Vec<StepView>,
    index: HashMap<String, usize>,
    pub projection: Option<ProjectionView>,
    pub paused: Option<String>,
    pub finished: Option<Finished>,
    pub chosen: Option<ChosenPoint>,
    pub log: Vec<LogLine>,
    pub now: Option<Timestamp>,
    pub events_closed: bool,
    pub size: (u16, u16),
    // ui
    pub selected: usize,
    /// The selection follows the action until the operator moves it; `f` resumes following.
    pub follow: bool,
    pub focus: Focus,
    /// Index of the last log line shown; `None` follows the end.
    pub log_bottom: Option<usize>,
    /// Lines the detail pane is scrolled by, and for which step (another step starts at the top).
    pub detail_scroll: (String, u16),
    pub search: Option<Search>,
    pub modal: Option<Modal>,
    /// Prompts the operator dismissed with `q`: they stay pending and are reopened with Enter.
    dismissed: Vec<String>,
    /// A one-line message in the footer (the last key's result).
    pub flash: Option<String>,
    /// Animation frame counter (spinner).
    pub frame: u64,
}

impl State {
    pub fn new(notes: StepNotes, operator: String, control: bool) -> Self {
        Self {
            notes,
            operator,
            control,
            run: None,
            identity: None,
            steps: Vec::new(),
            index: HashMap::new(),
            projection: None,
            paused: None,
            finished: None,
            chosen: None,
            log: Vec::new(),
            now: None,
            events_closed: false,
            size: (80, 24),
            selected: 0,
            follow: true,
            focus: Focus::Steps,
            log_bottom: None,
            detail_scroll: (String::new(), 0),
            search: None,
            modal: None,
            dismissed: Vec::new(),
            flash: None,
            frame: 0,
        }
    }

    /// Whether the run is still going (a quit must interrupt it).
    pub fn active(&self) -> bool {
        self.run.is_some() && self.finished.is_none() && !self.events_closed
    }

    /// Whether the screen changes on its own (countdown, spinner): the driver ticks only then.
    pub fn animating(&self) -> bool {
        self.active()
    }

    /// Whether anything is running now (the spinner needs a faster tick than the countdown).
    pub fn spinning(&self) -> bool {
        self.active() && self.steps.iter().any(|s| matches!(s.status, StepStatus::Running | StepStatus::Retrying))
    }

    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.index.get(id).map(|&i| &self.steps[i])
    }

    pub fn selected_step(&self) -> Option<&StepView> {
        self.steps.get(self.selected)
    }

    /// How far the detail pane of the selected step is scrolled.
    pub fn detail_offset(&self) -> u16 {
        match self.selected_step() {
            Some(st) if st.info.id == self.detail_scroll.0 => self.detail_scroll.1,
            _ => 0,
        }
    }

    /// Run time "now": the latest tick or event.
    pub fn now(&self) -> Timestamp {
        self.now.or(self.run.as_ref().map(|r| r.started)).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Event(ev) => {
                self.event(*ev);
                Vec::new()
            }
            Input::Key(k) => {
                let effects = self.key(k);
                // closing a popup (help, quit) brings back a question the operator has not put aside
                if self.modal.is_none() {
                    self.open_attention();
                }
                effects
            }
            Input::Tick(now) => {
                self.now = Some(self.now.map_or(now, |n| n.max(now)));
                self.frame = self.frame.wrapping_add(1);
                Vec::new()
            }
            Input::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Input::EventsClosed => {
                self.events_closed = true;
                Vec::new()
            }
        }
    }

    // ---- events -------------------------------------------------------------------------------------------

    fn push_log(&mut self, ts: Timestamp, tag: &'static str, step: &str, text: String, level: LogLevel) {
        self.log.push(LogLine { ts, tag, step: step.to_string(), text, level });
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepView> {
        let i = *self.index.get(id)?;
        self.steps.get_mut(i)
    }

    fn event(&mut self, ev: Event) {
        let ts = ev.ts;
        self.now = Some(self.now.map_or(ts, |n| n.max(ts)));
        match ev.kind {
            EventKind::RunStarted {
                run_id,
                runbook,
                title,
                app,
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
                ..
            } => {
                let text = format!(
                    "{title} ({runbook}) run {run_id} on {backend}, {primary} -> {secondary}; {} steps; RTO {} RPO {}",
                    steps.len(),
                    fmt_duration(std::time::Duration::from_secs(rto_secs)),
                    fmt_duration(std::time::Duration::from_secs(rpo_secs))
                );
                self.run = Some(RunInfo {
                    run_id,
                    runbook,
                    title,
                    app,
                    backend,
                    account,
                    primary,
                    secondary,
                    incident_start,
                    rto_secs,
                    rpo_secs,
                    deadline,
                    speed,
                    started: ts,
                });
                self.set_steps(steps);
                self.push_log(ts, "run", "", text, LogLevel::Info);
            }
            EventKind::Identity { account, arn } => {
                self.push_log(ts, "identity", "", format!("account {account} as {arn}"), LogLevel::Info);
                self.identity = Some((account, arn));
            }
            EventKind::StepAwaitingApproval { step, plan } => {
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Awaiting;
                    s.plan = Some(plan.clone());
                }
                self.push_log(ts, "confirm", &step, format!("needs approval: {plan}"), LogLevel::Warn);
                self.dismissed.retain(|d| *d != step);
            }
            EventKind::StepApproved { step, by } => {
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Pending;
                }
                self.close_modal_for(&step);
                self.push_log(ts, "approved", &step, format!("by {by}"), LogLevel::Info);
            }
            EventKind::StepStarted { step, attempt, plan, params } => {
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Running;
                    s.attempt = attempt;
                    if s.started.is_none() || attempt == 1 {
                        s.started = Some(ts);
                    }
                    s.ended = None;
                    s.plan = Some(plan.clone());
                    s.params = params;
                    s.progress = None;
                    s.error = None;
                }
                self.push_log(ts, "start", &step, format!("attempt {attempt}: {plan}"), LogLevel::Info);
            }
            EventKind::StepProgress { step, message, percent } => {
                let pct = percent.map(|p| format!(" ({p:.0}%)")).unwrap_or_default();
                self.push_log(ts, "progress", &step, format!("{message}{pct}"), LogLevel::Info);
                if let Some(s) = self.step_mut(&step) {
                    s.progress = Some((message, percent));
                }
            }
            EventKind::Resource { step, phase, kind, id, region, state } => {
                self.push_log(
                    ts,
                    "resource",
                    &step,
                    format!("{phase} {kind} {id} in {region}: {state}"),
                    LogLevel::Info,
                );
                if let Some(s) = self.step_mut(&step) {
                    let r = ResourceView { phase, kind, id, region, state };
                    match s.resources.iter_mut().find(|x| x.kind == r.kind && x.id == r.id && x.region == r.region) {
                        Some(x) => *x = r,
                        None => s.resources.push(r),
                    }
                }
            }
            EventKind::OperatorRequest { step, prompt } => {
                let text = match &prompt {
                    Prompt::Done { instructions } => format!("operator task: {instructions}"),
                    Prompt::Choice { message, candidates } => format!("{message} ({} candidates)", candidates.len()),
                };
                self.push_log(ts, "ask", &step, text, LogLevel::Warn);
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Asking;
                    s.prompt = Some(prompt);
                }
                self.dismissed.retain(|d| *d != step);
            }
            EventKind::OperatorAnswered { step, answer, by } => {
                if let Some(s) = self.step_mut(&step) {
                    if s.status == StepStatus::Asking {
                        s.status = StepStatus::Running;
                    }
                    s.prompt = None;
                }
                self.close_modal_for(&step);
                self.push_log(ts, "answered", &step, format!("{answer} (by {by})"), LogLevel::Info);
            }
            EventKind::RecoveryPointChosen { step, id, kind, region, time, rpo_secs, rpo_met } => {
                let met = if rpo_met { "RPO met" } else { "RPO MISSED" };
                let window = fmt_duration(std::time::Duration::from_secs(u64::try_from(rpo_secs).unwrap_or(0)));
                self.push_log(
                    ts,
                    "point",
                    &step,
                    format!("{kind} {id} in {region} at {time} (data loss window {window}, {met})"),
                    if rpo_met { LogLevel::Good } else { LogLevel::Bad },
                );
                self.chosen = Some(ChosenPoint { step, id, kind, region, time, rpo_secs, rpo_met });
            }
            EventKind::StepRetrying { step, attempt, error, delay_ms } => {
                let d = delay_ms as f64 / 1000.0;
                self.push_log(
                    ts,
                    "retry",
                    &step,
                    format!("attempt {attempt} failed: {error}; next attempt in {d:.1}s"),
                    LogLevel::Warn,
                );
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Retrying;
                    s.attempt_errors.push(format!("attempt {attempt}: {error}"));
                }
            }
            EventKind::StepSucceeded { step, attempt, duration_ms, outputs } => {
                let outs: Vec<String> = outputs.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect();
                let outs = if outs.is_empty() { String::new() } else { format!("; {}", outs.join(" ")) };
                let d = fmt_duration(std::time::Duration::from_millis(duration_ms));
                self.push_log(ts, "ok", &step, format!("in {d}{outs}"), LogLevel::Good);
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Succeeded;
                    s.attempt = attempt;
                    s.ended = Some(ts);
                    s.duration_ms = Some(duration_ms);
                    s.outputs = outputs;
                    s.prompt = None;
                }
            }
            EventKind::StepFailed { step, attempt, error, policy } => {
                self.push_log(
                    ts,
                    "FAILED",
                    &step,
                    format!("attempt {attempt}: {error} (on_failure = {})", policy.as_str()),
                    LogLevel::Bad,
                );
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Failed;
                    s.attempt = attempt;
                    s.ended = Some(ts);
                    s.error = Some(error);
                    s.prompt = None;
                }
                self.close_modal_for(&step);
            }
            EventKind::StepSkipped { step, reason, by } => {
                self.push_log(ts, "skipped", &step, format!("{reason} (by {by})"), LogLevel::Warn);
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Skipped;
                    s.ended = Some(ts);
                    s.note = Some(format!("skipped by {by}: {reason}"));
                    s.prompt = None;
                }
                self.close_modal_for(&step);
            }
            EventKind::StepCancelled { step, reason } => {
                self.push_log(ts, "cancel", &step, reason.clone(), LogLevel::Warn);
                if let Some(s) = self.step_mut(&step) {
                    s.status = StepStatus::Cancelled;
                    s.ended = Some(ts);
                    s.note = Some(reason);
                    s.prompt = None;
                }
                self.close_modal_for(&step);
            }
            EventKind::Projection { projected_finish, margin_secs, critical_path, .. } => {
                self.projection = Some(ProjectionView { projected_finish, margin_secs, critical_path });
            }
            EventKind::RunPaused { reason } => {
                self.push_log(ts, "paused", "", reason.clone(), LogLevel::Warn);
                self.paused = Some(reason);
            }
            EventKind::RunResumed { by } => {
                self.push_log(ts, "resumed", "", format!("by {by}"), LogLevel::Info);
                self.paused = None;
            }
            EventKind::StepRetryRequested { step, by } => {
                self.push_log(ts, "retry", &step, format!("run again (by {by})"), LogLevel::Info);
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
                let level = if outcome == Outcome::Recovered { LogLevel::Good } else { LogLevel::Bad };
                self.push_log(ts, "finished", "", format!("{}: {message}", outcome.as_str()), level);
                self.finished = Some(Finished {
                    outcome,
                    message,
                    duration_secs,
                    rto_secs,
                    rto_achieved_secs,
                    rto_met,
                    counts: [succeeded, failed, skipped, cancelled],
                    at: ts,
                });
                // a quit confirmation is moot once the run is over; prompts are gone
                if matches!(self.modal, Some(Modal::Quit | Modal::Abort)) {
                    self.modal = None;
                }
            }
        }
        if self.follow {
            self.selected = self.focus_step();
        }
        self.open_attention();
    }

    fn set_steps(&mut self, steps: Vec<StepInfo>) {
        // stage = longest path from a root; order by stage, then runbook order
        let pos: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut stage = vec![0usize; steps.len()];
        // runbooks are acyclic (checked on load); relax at most n times
        for _ in 0..steps.len() {
            let mut changed = false;
            for (i, s) in steps.iter().enumerate() {
                for n in &s.needs {
                    if let Some(&j) = pos.get(n.as_str())
                        && stage[i] < stage[j] + 1
                    {
                        stage[i] = stage[j] + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_by_key(|&i| (stage[i], i));
        self.steps = order
            .into_iter()
            .map(|i| StepView {
                info: steps[i].clone(),
                stage: stage[i],
                status: StepStatus::Pending,
                attempt: 0,
                started: None,
                ended: None,
                duration_ms: None,
                plan: None,
                params: Map::new(),
                progress: None,
                resources: Vec::new(),
                outputs: Map::new(),
                error: None,
                attempt_errors: Vec::new(),
                note: None,
                prompt: None,
            })
            .collect();
        self.index = self.steps.iter().enumerate().map(|(i, s)| (s.info.id.clone(), i)).collect();
        self.selected = 0;
    }

    /// The step "in action": one that needs the operator, else a failed one, else the latest started running one,
    /// else the last that ended.
    fn focus_step(&self) -> usize {
        let find = |p: &dyn Fn(&StepView) -> bool| self.steps.iter().position(p);
        if let Some(i) = find(&|s| s.status.needs_operator()) {
            return i;
        }
        if let Some(i) = find(&|s| s.status == StepStatus::Failed) {
            return i;
        }
        let running = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.status, StepStatus::Running | StepStatus::Retrying))
            .max_by_key(|(i, s)| (s.started, std::cmp::Reverse(*i)));
        if let Some((i, _)) = running {
            return i;
        }
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ended.is_some())
            .max_by_key(|(i, s)| (s.ended, *i))
            .map_or(self.selected.min(self.steps.len().saturating_sub(1)), |(i, _)| i)
    }

    fn close_modal_for(&mut self, step: &str) {
        let hit = match &self.modal {
            Some(Modal::Confirm { step: s, .. } | Modal::Manual { step: s, .. } | Modal::Skip { step: s, .. }) => {
                s == step
            }
            Some(Modal::Picker(p)) => p.step == step,
            _ => false,
        };
        if hit {
            self.modal = None;
        }
        self.dismissed.retain(|d| d != step);
    }

    /// Opens the popup for the first step that waits for the operator, unless a popup is open or it was dismissed.
    fn open_attention(&mut self) {
        if !self.control || self.modal.is_some() || self.finished.is_some() {
            return;
        }
        let next = self
            .steps
            .iter()
            .find(|s| s.status.needs_operator() && !self.dismissed.contains(&s.info.id))
            .map(|s| s.info.id.clone());
        if let Some(id) = next {
            self.modal = self.prompt_modal(&id);
        }
    }

    /// The popup answering what a step waits for, if it waits.
    fn prompt_modal(&self, id: &str) -> Option<Modal> {
        let s = self.step(id)?;
        match s.status {
            StepStatus::Awaiting => {
                let destructive = self.notes.get(id).filter(|n| n.destructive).map(|n| n.confirm_name.clone());
                Some(Modal::Confirm {
                    step: id.to_string(),
                    plan: s.plan.clone().unwrap_or_default(),
                    destructive,
                    input: String::new(),
                })
            }
            StepStatus::Asking => match s.prompt.as_ref()? {
                Prompt::Done { instructions } => {
                    Some(Modal::Manual { step: id.to_string(), instructions: instructions.clone() })
                }
                Prompt::Choice { message, candidates } => Some(Modal::Picker(Picker {
                    step: id.to_string(),
                    message: message.clone(),
                    candidates: candidates.clone(),
                    sort: SortKey::Time,
                    descending: true,
                    filter: String::new(),
                    filtering: false,
                    selected: 0,
                })),
            },
            _ => None,
        }
    }

    // ---- keys ---------------------------------------------------------------------------------------------

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.flash = None;
        // Ctrl-C always asks to quit (and interrupts the run when confirmed)
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            if matches!(self.modal, Some(Modal::Quit)) {
                return self.quit();
            }
            return self.ask_quit();
        }
        if let Some(modal) = self.modal.take() {
            return self.modal_key(modal, k);
        }
        if let Some(search) = self.search.as_mut()
            && search.editing
        {
            match k.code {
                KeyCode::Enter => {
                    search.editing = false;
                    self.search_step(false, true);
                }
                KeyCode::Esc => self.search = None,
                KeyCode::Char('g') if k.modifiers.contains(KeyModifiers::CONTROL) => self.search = None,
                KeyCode::Backspace => {
                    search.query.pop();
                }
                KeyCode::Char(c) => search.query.push(c),
                _ => {}
            }
            return Vec::new();
        }
        let Some(action) = keymap::main_action(&k) else { return Vec::new() };
        self.main_action(action)
    }

    fn main_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(usize::MAX),
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Steps => Focus::Detail,
                    Focus::Detail => Focus::Log,
                    Focus::Log => Focus::Steps,
                };
            }
            Action::FocusPrev => {
                self.focus = match self.focus {
                    Focus::Steps => Focus::Log,
                    Focus::Detail => Focus::Steps,
                    Focus::Log => Focus::Detail,
                };
            }
            Action::Follow => {
                match self.focus {
                    Focus::Steps | Focus::Detail => {
                        self.follow = true;
                        self.selected = self.focus_step();
                    }
                    Focus::Log => self.log_bottom = None,
                }
                self.flash = Some("following the run".into());
            }
            Action::Help => self.modal = Some(Modal::Help),
            Action::Search => {
                self.focus = Focus::Log;
                self.search = Some(Search { query: String::new(), editing: true, current: None });
            }
            Action::SearchNext => self.search_step(false, false),
            Action::SearchPrev => self.search_step(true, false),
            Action::Quit => {
                if self.search.is_some() {
                    self.search = None;
                    return Vec::new();
                }
                return self.ask_quit();
            }
            Action::Escape => self.search = None,
            Action::Open => return self.open_selected(),
            Action::Approve => return self.approve_selected(),
            Action::Skip => self.skip_selected(),
            Action::Retry => return self.retry_selected(),
            Action::PauseResume => return self.pause_resume(),
            Action::Abort => {
                if self.check_control("abort") && self.active() {
                    self.modal = Some(Modal::Abort);
                } else if self.control {
                    self.flash = Some("the run is not active".into());
                }
            }
        }
        Vec::new()
    }

    fn check_control(&mut self, what: &str) -> bool {
        if !self.control {
            self.flash = Some(format!("watch mode is read-only: cannot {what}"));
        }
        self.control
    }

    fn move_by(&mut self, d: i64) {
        match self.focus {
            Focus::Steps => {
                self.follow = false;
                let n = self.steps.len();
                if n > 0 {
                    let i = (self.selected as i64 + d).clamp(0, n as i64 - 1);
                    self.selected = usize::try_from(i).unwrap_or(0);
                }
            }
            Focus::Detail => {
                let id = self.selected_id().unwrap_or_default();
                let cur = if self.detail_scroll.0 == id { i64::from(self.detail_scroll.1) } else { 0 };
                let v = u16::try_from((cur + d).clamp(0, 10_000)).unwrap_or(0);
                self.detail_scroll = (id, v);
            }
            Focus::Log => {
                let n = self.log.len();
                if n == 0 {
                    return;
                }
                let cur = self.log_bottom.unwrap_or(n - 1) as i64;
                let i = usize::try_from((cur + d).clamp(0, n as i64 - 1)).unwrap_or(0);
                self.log_bottom = if i + 1 >= n { None } else { Some(i) };
            }
        }
    }

    fn move_to(&mut self, i: usize) {
        match self.focus {
            Focus::Steps => {
                self.follow = false;
                self.selected = i.min(self.steps.len().saturating_sub(1));
            }
            Focus::Detail => {
                // the bottom is not known here (it depends on the pane's width); Home returns to the top
                let id = self.selected_id().unwrap_or_default();
                self.detail_scroll = (id, if i == 0 { 0 } else { self.detail_scroll.1.saturating_add(20) });
            }
            Focus::Log => {
                self.log_bottom = if i >= self.log.len().saturating_sub(1) { None } else { Some(i) };
            }
        }
    }

    /// Moves to the next (or previous) log line matching the search; `here` starts at the current bottom line.
    fn search_step(&mut self, backwards: bool, here: bool) {
        let Some(search) = &self.search else {
            self.flash = Some("no search: press / to search the log".into());
            return;
        };
        let q = search.query.to_lowercase();
        if q.is_empty() {
            self.search = None;
            return;
        }
        let n = self.log.len();
        let start = search.current.or(self.log_bottom).unwrap_or(n.saturating_sub(1));
        let matches = |i: usize| {
            let l = &self.log[i];
            l.text.to_lowercase().contains(&q) || l.step.contains(&q) || l.tag.to_lowercase().contains(&q)
        };
        let found = if backwards || here {
            // search upwards from the current line (inclusive when starting a new search)
            let top = if here { start.min(n.saturating_sub(1)) + 1 } else { start };
            (0..top.min(n)).rev().find(|&i| matches(i))
        } else {
            (start + 1..n).find(|&i| matches(i))
        };
        match found {
            Some(i) => {
                if let Some(s) = self.search.as_mut() {
                    s.current = Some(i);
                }
                self.log_bottom = if i + 1 >= n { None } else { Some(i) };
            }
            None => self.flash = Some(format!("no more matches for \"{}\"", search.query)),
        }
    }

    fn ask_quit(&mut self) -> Vec<Effect> {
        if self.control && self.active() {
            self.modal = Some(Modal::Quit);
            Vec::new()
        } else {
            vec![Effect::Quit]
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.modal = None;
        if self.control && self.active() {
            vec![Effect::Send(Command::Interrupt), Effect::Quit]
        } else {
            vec![Effect::Quit]
        }
    }

    fn selected_id(&self) -> Option<String> {
        self.selected_step().map(|s| s.info.id.clone())
    }

    fn open_selected(&mut self) -> Vec<Effect> {
        let Some(id) = self.selected_id() else { return Vec::new() };
        if self.control
            && let Some(m) = self.prompt_modal(&id)
        {
            self.dismissed.retain(|d| *d != id);
            self.modal = Some(m);
        } else if self.focus != Focus::Steps {
            self.focus = Focus::Steps;
        }
        Vec::new()
    }

    fn approve_selected(&mut self) -> Vec<Effect> {
        if !self.check_control("approve") {
            return Vec::new();
        }
        let Some(s) = self.selected_step() else { return Vec::new() };
        let id = s.info.id.clone();
        if !s.status.needs_operator() {
            // the operator may be on another step: go to the one that waits
            if let Some(w) = self.steps.iter().position(|s| s.status.needs_operator()) {
                self.selected = w;
                return self.open_selected();
            }
            self.flash = Some(format!("`{id}` is not waiting for approval"));
            return Vec::new();
        }
        self.open_selected()
    }

    fn skip_selected(&mut self) {
        if !self.check_control("skip") {
            return;
        }
        let Some(s) = self.selected_step() else { return };
        if matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped) || self.finished.is_some() {
            self.flash = Some(format!("`{}` cannot be skipped now ({})", s.info.id, s.status.word()));
            return;
        }
        self.modal = Some(Modal::Skip { step: s.info.id.clone(), reason: String::new() });
    }

    fn retry_selected(&mut self) -> Vec<Effect> {
        if !self.check_control("retry") {
            return Vec::new();
        }
        let Some(s) = self.selected_step() else { return Vec::new() };
        if s.status != StepStatus::Failed || self.finished.is_some() {
            self.flash = Some(format!(
                "only a failed step of an active run can be retried; `{}` is {}",
                s.info.id,
                s.status.word()
            ));
            return Vec::new();
        }
        let step = s.info.id.clone();
        self.flash = Some(format!("retrying `{step}`"));
        vec![Effect::Send(Command::Retry { step, by: self.operator.clone() })]
    }

    fn pause_resume(&mut self) -> Vec<Effect> {
        if !self.check_control("pause") {
            return Vec::new();
        }
        if !self.active() {
            self.flash = Some("the run is not active".into());
            return Vec::new();
        }
        let by = self.operator.clone();
        if self.paused.is_some() {
            if self
                .steps
                .iter()
                .any(|s| s.status == StepStatus::Failed && s.info.on_failure == crate::runbook::OnFailure::Pause)
            {
                self.flash = Some("a failed step holds the run: retry (r) or skip (s) it".into());
                return Vec::new();
            }
            vec![Effect::Send(Command::Resume { by })]
        } else {
            self.flash = Some("pausing: running steps finish, nothing new starts".into());
            vec![Effect::Send(Command::Pause { by })]
        }
    }

    fn modal_key(&mut self, modal: Modal, k: KeyEvent) -> Vec<Effect> {
        let effects = self.modal_key_inner(modal, k);
        // an answer is on its way: do not reopen the step's popup before the engine's event arrives
        for e in &effects {
            if let Effect::Send(
                Command::Approve { step, .. } | Command::Answer { step, .. } | Command::Skip { step, .. },
            ) = e
                && !self.dismissed.contains(step)
            {
                self.dismissed.push(step.clone());
            }
        }
        effects
    }

    fn modal_key_inner(&mut self, modal: Modal, k: KeyEvent) -> Vec<Effect> {
        let by = self.operator.clone();
        let close = keymap::closes_popup(&k);
        match modal {
            Modal::Help => {
                if !(close || k.code == KeyCode::Char('?')) {
                    self.modal = Some(Modal::Help);
                }
                Vec::new()
            }
            Modal::Quit => match k.code {
                KeyCode::Char('y' | 'Y') => self.quit(),
                _ => Vec::new(),
            },
            Modal::Abort => match k.code {
                KeyCode::Char('y' | 'Y') => {
                    self.flash = Some("aborting: running steps are cancelled".into());
                    vec![Effect::Send(Command::Abort { reason: "aborted from the console".into(), by })]
                }
                _ => Vec::new(),
            },
            Modal::Confirm { step, plan, destructive, mut input } => {
                match destructive {
                    None => match k.code {
                        KeyCode::Char('y' | 'Y') => {
                            return vec![Effect::Send(Command::Approve { step, by })];
                        }
                        KeyCode::Char('s') => {
                            self.modal = Some(Modal::Skip { step, reason: String::new() });
                        }
                        _ if close => self.dismiss(&step),
                        _ => self.modal = Some(Modal::Confirm { step, plan, destructive: None, input }),
                    },
                    Some(name) => {
                        // a text field: letters are typed, so only Esc / Ctrl-G close it
                        match k.code {
                            KeyCode::Enter if input == name => {
                                return vec![Effect::Send(Command::Approve { step, by })];
                            }
                            KeyCode::Enter => {
                                self.flash = Some(format!("type `{name}` exactly to approve"));
                                self.modal = Some(Modal::Confirm { step, plan, destructive: Some(name), input });
                            }
                            _ if keymap::cancels_input(&k) => self.dismiss(&step),
                            KeyCode::Backspace => {
                                input.pop();
                                self.modal = Some(Modal::Confirm { step, plan, destructive: Some(name), input });
                            }
                            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                                input.push(c);
                                self.modal = Some(Modal::Confirm { step, plan, destructive: Some(name), input });
                            }
                            _ => self.modal = Some(Modal::Confirm { step, plan, destructive: Some(name), input }),
                        }
                    }
                }
                Vec::new()
            }
            Modal::Manual { step, instructions } => match k.code {
                KeyCode::Char('y' | 'Y') => vec![Effect::Send(Command::Approve { step, by })],
                KeyCode::Char('s') => {
                    self.modal = Some(Modal::Skip { step, reason: String::new() });
                    Vec::new()
                }
                _ if close => {
                    self.dismiss(&step);
                    Vec::new()
                }
                _ => {
                    self.modal = Some(Modal::Manual { step, instructions });
                    Vec::new()
                }
            },
            Modal::Skip { step, mut reason } => {
                match k.code {
                    KeyCode::Enter if !reason.trim().is_empty() => {
                        self.flash = Some(format!("skipping `{step}`"));
                        return vec![Effect::Send(Command::Skip { step, reason: reason.trim().to_string(), by })];
                    }
                    KeyCode::Enter => {
                        self.flash = Some("a reason is required to skip a step".into());
                        self.modal = Some(Modal::Skip { step, reason });
                    }
                    _ if keymap::cancels_input(&k) => self.dismiss(&step),
                    KeyCode::Backspace => {
                        reason.pop();
                        self.modal = Some(Modal::Skip { step, reason });
                    }
                    KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                        reason.push(c);
                        self.modal = Some(Modal::Skip { step, reason });
                    }
                    _ => self.modal = Some(Modal::Skip { step, reason }),
                }
                Vec::new()
            }
            Modal::Picker(p) => self.picker_key(p, k),
        }
    }

    fn dismiss(&mut self, step: &str) {
        if !self.dismissed.iter().any(|d| d == step) {
            self.dismissed.push(step.to_string());
        }
        if self.step(step).is_some_and(|s| s.status.needs_operator()) {
            self.flash = Some(format!("`{step}` still waits for you: select it and press Enter"));
        }
    }

    fn picker_key(&mut self, mut p: Picker, k: KeyEvent) -> Vec<Effect> {
        if p.filtering {
            match k.code {
                KeyCode::Enter => p.filtering = false,
                _ if keymap::cancels_input(&k) => {
                    p.filtering = false;
                    p.filter.clear();
                }
                KeyCode::Backspace => {
                    p.filter.pop();
                }
                KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => p.filter.push(c),
                _ => {}
            }
            p.selected = p.selected.min(p.visible().len().saturating_sub(1));
            self.modal = Some(Modal::Picker(p));
            return Vec::new();
        }
        let n = p.visible().len();
        match keymap::main_action(&k) {
            _ if k.code == KeyCode::Enter => {
                let chosen = p.visible().get(p.selected).map(|c| c.id.clone());
                match chosen {
                    Some(value) => {
                        self.flash = Some(format!("recovery point {value} chosen"));
                        return vec![Effect::Send(Command::Answer { step: p.step, value, by: self.operator.clone() })];
                    }
                    None => self.flash = Some("no candidate matches the filter".into()),
                }
            }
            _ if k.code == KeyCode::Char('/') => p.filtering = true,
            _ if k.code == KeyCode::Char('o') => {
                p.sort = p.sort.next();
                p.selected = 0;
            }
            _ if k.code == KeyCode::Char('O') => {
                p.descending = !p.descending;
                p.selected = 0;
            }
            _ if keymap::closes_popup(&k) => {
                self.dismiss(&p.step);
                return Vec::new();
            }
            Some(Action::Up) => p.selected = p.selected.saturating_sub(1),
            Some(Action::Down) => p.selected = (p.selected + 1).min(n.saturating_sub(1)),
            Some(Action::Top) => p.selected = 0,
            Some(Action::Bottom) => p.selected = n.saturating_sub(1),
            Some(Action::PageUp) => p.selected = p.selected.saturating_sub(10),
            Some(Action::PageDown) => p.selected = (p.selected + 10).min(n.saturating_sub(1)),
            _ => {}
        }
        self.modal = Some(Modal::Picker(p));
        Vec::new()
    }

    // ---- derived values for the views --------------------------------------------------------------------

    /// Time left before the RTO deadline (negative when past it).
    pub fn rto_left(&self) -> Option<i64> {
        let run = self.run.as_ref()?;
        let now = self.finished.as_ref().map_or(self.now(), |f| f.at);
        Some(crate::engine::clock::secs_between(now, run.deadline))
    }

    /// The step's elapsed time (running) or duration (ended), in seconds.
    pub fn step_elapsed(&self, s: &StepView) -> Option<i64> {
        let start = s.started?;
        let end = s.ended.unwrap_or_else(|| self.now());
        Some(crate::engine::clock::secs_between(start, end).max(0))
    }

    pub fn fmt_step_time(&self, s: &StepView) -> String {
        match (s.duration_ms, self.step_elapsed(s)) {
            (Some(ms), _) => fmt_duration(std::time::Duration::from_millis(ms)),
            (None, Some(e)) => fmt_duration(std::time::Duration::from_secs(e.unsigned_abs())),
            (None, None) => String::new(),
        }
    }
}

/// A JSON value as text: strings without quotes.
pub fn value_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixtures::{self, Events, at};
    use ratatui::crossterm::event::KeyEventState;

    fn press(s: &mut State, code: KeyCode) -> Vec<Effect> {
        s.handle(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }
    fn ctrl(s: &mut State, c: char) -> Vec<Effect> {
        s.handle(Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)))
    }
    fn typed(s: &mut State, text: &str) {
        for c in text.chars() {
            press(s, KeyCode::Char(c));
        }
    }
    fn st(events: &Events) -> State {
        fixtures::state(events, true, (120, 40))
    }
    fn sent(effects: &[Effect]) -> Vec<Command> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(c) => Some(c.clone()),
                Effect::Quit => None,
            })
            .collect()
    }
    fn by() -> String {
        "alice@bastion".into()
    }

    #[test]
    fn steps_are_in_dependency_order_with_parallel_stages() {
        let s = st(&fixtures::running());
        let ids: Vec<(&str, usize)> = s.steps.iter().map(|x| (x.info.id.as_str(), x.stage)).collect();
        assert_eq!(
            ids,
            [
                ("pick_point", 0),
                ("nat", 0),
                ("restore_db", 1),
                ("restore_ebs", 1),
                ("alb", 1),
                ("asg", 2),
                ("verify", 3),
                ("dns_cutover", 4),
                ("announce", 5)
            ]
        );
        assert_eq!(s.step("restore_ebs").map(|x| (x.status, x.attempt)), Some((StepStatus::Running, 2)));
        assert_eq!(s.step("restore_ebs").map(|x| x.attempt_errors.len()), Some(1));
        assert_eq!(s.step("restore_db").and_then(|x| x.progress.clone()).and_then(|p| p.1), Some(45.0));
    }

    #[test]
    fn key_release_events_are_ignored() {
        let mut s = st(&fixtures::running());
        let before = s.selected;
        let mut k = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
        k.kind = KeyEventKind::Release;
        k.state = KeyEventState::NONE;
        assert!(s.handle(Input::Key(k)).is_empty());
        assert_eq!(s.selected, before);
        assert!(s.follow);
    }

    #[test]
    fn selection_follows_the_action_until_the_operator_scrolls() {
        let mut e = fixtures::running();
        let mut s = st(&e);
        // following: the latest started running step
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("alb"));
        press(&mut s, KeyCode::Char('k'));
        assert!(!s.follow);
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_ebs"));
        // a new event does not move a scrolled selection
        e.push(
            700,
            EventKind::StepFailed {
                step: "alb".into(),
                attempt: 1,
                error: "boom".into(),
                policy: crate::runbook::OnFailure::Continue,
            },
        );
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_ebs"));
        // f follows again: the failed step is where the action is
        press(&mut s, KeyCode::Char('f'));
        assert!(s.follow);
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("alb"));
        // arrows and vim keys alike; bounds hold
        press(&mut s, KeyCode::Char('G'));
        assert_eq!(s.selected, s.steps.len() - 1);
        press(&mut s, KeyCode::Down);
        assert_eq!(s.selected, s.steps.len() - 1);
        press(&mut s, KeyCode::Home);
        assert_eq!(s.selected, 0);
        press(&mut s, KeyCode::Up);
        assert_eq!(s.selected, 0);
    }

    #[test]
    fn a_confirmation_opens_and_y_approves() {
        let mut e = fixtures::running();
        e.push(700, EventKind::StepAwaitingApproval { step: "asg".into(), plan: "set capacity to 3".into() });
        let mut s = st(&e);
        assert!(matches!(&s.modal, Some(Modal::Confirm { step, destructive: None, .. }) if step == "asg"));
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("asg"));
        // Enter does not approve a plain confirmation by accident: only y does
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Approve { step: "asg".into(), by: by() }]);
    }

    #[test]
    fn closing_help_brings_back_a_pending_confirmation() {
        let mut s = st(&fixtures::at_cutover());
        assert!(matches!(s.modal, Some(Modal::Confirm { .. })));
        ctrl(&mut s, 'c');
        assert!(matches!(s.modal, Some(Modal::Quit)));
        press(&mut s, KeyCode::Char('n'));
        assert!(matches!(s.modal, Some(Modal::Confirm { .. })), "{:?}", s.modal);
    }

    #[test]
    fn an_answered_popup_stays_closed_until_the_engine_replies() {
        let mut e = fixtures::running();
        e.push(700, EventKind::StepAwaitingApproval { step: "asg".into(), plan: "set capacity to 3".into() });
        let mut s = st(&e);
        press(&mut s, KeyCode::Char('y'));
        e.push(700, EventKind::StepProgress { step: "restore_db".into(), message: "50%".into(), percent: Some(50.0) });
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        assert!(s.modal.is_none(), "{:?}", s.modal);
    }

    #[test]
    fn q_puts_a_confirmation_aside_and_enter_brings_it_back() {
        let mut e = fixtures::running();
        e.push(700, EventKind::StepAwaitingApproval { step: "asg".into(), plan: "set capacity to 3".into() });
        let mut s = st(&e);
        assert!(press(&mut s, KeyCode::Char('q')).is_empty());
        assert!(s.modal.is_none());
        // another event does not reopen it
        e.push(701, EventKind::StepProgress { step: "restore_db".into(), message: "50%".into(), percent: Some(50.0) });
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        assert!(s.modal.is_none());
        press(&mut s, KeyCode::Enter);
        assert!(matches!(&s.modal, Some(Modal::Confirm { step, .. }) if step == "asg"));
        // Esc closes popups as well as q
        press(&mut s, KeyCode::Esc);
        assert!(s.modal.is_none());
        // `a` from anywhere goes to the waiting step
        press(&mut s, KeyCode::Char('g'));
        press(&mut s, KeyCode::Char('a'));
        assert!(matches!(&s.modal, Some(Modal::Confirm { step, .. }) if step == "asg"));
    }

    #[test]
    fn a_destructive_step_needs_its_name_typed() {
        let mut s = st(&fixtures::at_cutover());
        assert!(
            matches!(&s.modal, Some(Modal::Confirm { destructive: Some(n), .. }) if n == "app.example.com"),
            "{:?}",
            s.modal
        );
        // y and q are just letters here
        typed(&mut s, "yq");
        assert!(matches!(&s.modal, Some(Modal::Confirm { input, .. }) if input == "yq"));
        press(&mut s, KeyCode::Backspace);
        press(&mut s, KeyCode::Backspace);
        typed(&mut s, "app.example");
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "a partial name does not approve");
        assert!(s.flash.as_deref().unwrap_or("").contains("app.example.com"));
        typed(&mut s, ".com");
        let fx = press(&mut s, KeyCode::Enter);
        assert_eq!(sent(&fx), [Command::Approve { step: "dns_cutover".into(), by: by() }]);
    }

    #[test]
    fn destructive_confirmation_closes_with_ctrl_g() {
        let mut s = st(&fixtures::at_cutover());
        ctrl(&mut s, 'g');
        assert!(s.modal.is_none());
    }

    #[test]
    fn an_approval_from_elsewhere_closes_the_popup() {
        let mut e = fixtures::at_cutover();
        let mut s = st(&e);
        assert!(s.modal.is_some());
        e.push(1810, EventKind::StepApproved { step: "dns_cutover".into(), by: "bob@laptop".into() });
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        assert!(s.modal.is_none());
        assert_eq!(s.step("dns_cutover").map(|x| x.status), Some(StepStatus::Pending));
    }

    #[test]
    fn the_picker_sorts_filters_and_answers() {
        let mut s = st(&fixtures::until_picker());
        let Some(Modal::Picker(p)) = &s.modal else { panic!("no picker: {:?}", s.modal) };
        // newest first
        assert_eq!(p.visible()[0].id, "crosssell-pitr");
        press(&mut s, KeyCode::Char('j'));
        press(&mut s, KeyCode::Char('j'));
        let fx = press(&mut s, KeyCode::Enter);
        assert_eq!(
            sent(&fx),
            [Command::Answer {
                step: "pick_point".into(),
                value: "rds:crosssell-prod-2026-11-21-02-00".into(),
                by: by()
            }]
        );

        let mut s = st(&fixtures::until_picker());
        press(&mut s, KeyCode::Char('o')); // by kind
        press(&mut s, KeyCode::Char('O')); // ascending
        let Some(Modal::Picker(p)) = &s.modal else { panic!() };
        assert_eq!(p.sort, SortKey::Kind);
        let kinds: Vec<&str> = p.visible().iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["ebs-snapshot", "ebs-snapshot", "rds-pitr", "rds-snapshot", "rds-snapshot", "rds-snapshot"]);
        press(&mut s, KeyCode::Char('/'));
        typed(&mut s, "east"); // `q` and `j` would be text here too
        press(&mut s, KeyCode::Enter);
        let Some(Modal::Picker(p)) = &s.modal else { panic!() };
        let ids: Vec<&str> = p.visible().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["crosssell-pitr", "rds:crosssell-prod-2026-11-21-02-00"]);
        press(&mut s, KeyCode::Char('j'));
        let fx = press(&mut s, KeyCode::Enter);
        assert_eq!(
            sent(&fx),
            [Command::Answer {
                step: "pick_point".into(),
                value: "rds:crosssell-prod-2026-11-21-02-00".into(),
                by: by()
            }]
        );
    }

    #[test]
    fn the_picker_with_no_match_chooses_nothing_and_q_closes_it() {
        let mut s = st(&fixtures::until_picker());
        press(&mut s, KeyCode::Char('/'));
        typed(&mut s, "nothing-like-this");
        press(&mut s, KeyCode::Enter);
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        press(&mut s, KeyCode::Char('q'));
        assert!(s.modal.is_none());
        assert_eq!(s.step("pick_point").map(|x| x.status), Some(StepStatus::Asking));
    }

    #[test]
    fn skip_needs_a_reason() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Char('s'));
        let Some(Modal::Skip { step, .. }) = &s.modal else { panic!("{:?}", s.modal) };
        assert_eq!(step, "alb");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        typed(&mut s, "  ");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        typed(&mut s, "LB exists already");
        let fx = press(&mut s, KeyCode::Enter);
        assert_eq!(sent(&fx), [Command::Skip { step: "alb".into(), reason: "LB exists already".into(), by: by() }]);
        assert!(s.modal.is_none());
    }

    #[test]
    fn retry_only_a_failed_step() {
        let mut s = st(&fixtures::failed());
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_db"));
        let fx = press(&mut s, KeyCode::Char('r'));
        assert_eq!(sent(&fx), [Command::Retry { step: "restore_db".into(), by: by() }]);
        press(&mut s, KeyCode::Char('j'));
        assert!(press(&mut s, KeyCode::Char('r')).is_empty());
        assert!(s.flash.is_some());
    }

    #[test]
    fn pause_and_resume() {
        let mut e = fixtures::running();
        let mut s = st(&e);
        let fx = press(&mut s, KeyCode::Char('p'));
        assert_eq!(sent(&fx), [Command::Pause { by: by() }]);
        e.push(700, EventKind::RunPaused { reason: "paused by alice@bastion".into() });
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        let fx = press(&mut s, KeyCode::Char('p'));
        assert_eq!(sent(&fx), [Command::Resume { by: by() }]);
        // a run held by a failed step resumes by retry or skip, not by p
        let mut s = st(&fixtures::failed());
        assert!(press(&mut s, KeyCode::Char('p')).is_empty());
        assert!(s.flash.as_deref().unwrap_or("").contains("retry"));
    }

    #[test]
    fn abort_asks_first() {
        let mut s = st(&fixtures::running());
        assert!(press(&mut s, KeyCode::Char('X')).is_empty());
        assert!(matches!(s.modal, Some(Modal::Abort)));
        assert!(press(&mut s, KeyCode::Char('n')).is_empty());
        assert!(s.modal.is_none());
        press(&mut s, KeyCode::Char('X'));
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Abort { reason: "aborted from the console".into(), by: by() }]);
    }

    #[test]
    fn quitting_an_active_run_asks_and_interrupts() {
        let mut s = st(&fixtures::running());
        assert!(press(&mut s, KeyCode::Char('q')).is_empty());
        assert!(matches!(s.modal, Some(Modal::Quit)));
        assert!(press(&mut s, KeyCode::Char('q')).is_empty(), "q closes the question");
        assert!(s.modal.is_none());
        assert!(ctrl(&mut s, 'c').is_empty());
        assert!(matches!(s.modal, Some(Modal::Quit)));
        assert_eq!(press(&mut s, KeyCode::Char('y')), [Effect::Send(Command::Interrupt), Effect::Quit]);
        // Ctrl-C twice also quits
        let mut s = st(&fixtures::running());
        ctrl(&mut s, 'c');
        assert_eq!(ctrl(&mut s, 'c'), [Effect::Send(Command::Interrupt), Effect::Quit]);
    }

    #[test]
    fn esc_never_quits() {
        let mut s = st(&fixtures::finished());
        assert!(press(&mut s, KeyCode::Esc).is_empty());
    }

    #[test]
    fn a_finished_run_quits_without_asking() {
        let mut s = st(&fixtures::finished());
        assert!(!s.active());
        assert!(!s.animating(), "nothing moves after the end: no ticks");
        assert_eq!(press(&mut s, KeyCode::Char('q')), [Effect::Quit]);
        assert_eq!(s.finished.as_ref().map(|f| f.outcome), Some(Outcome::Recovered));
    }

    #[test]
    fn watch_mode_is_navigation_only() {
        let mut s = fixtures::state(&fixtures::at_cutover(), false, (120, 40));
        assert!(s.modal.is_none(), "watch mode opens no confirmation");
        for c in ['a', 's', 'r', 'p', 'X', 'y'] {
            assert!(press(&mut s, KeyCode::Char(c)).is_empty(), "{c}");
            assert!(s.modal.is_none(), "{c}");
        }
        press(&mut s, KeyCode::Enter);
        assert!(s.modal.is_none());
        press(&mut s, KeyCode::Char('j'));
        press(&mut s, KeyCode::Char('?'));
        assert!(matches!(s.modal, Some(Modal::Help)));
        press(&mut s, KeyCode::Char('q'));
        assert_eq!(press(&mut s, KeyCode::Char('q')), [Effect::Quit], "quitting a watch does not touch the run");
    }

    #[test]
    fn log_search_jumps_between_matches() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Char('/'));
        assert_eq!(s.focus, Focus::Log);
        typed(&mut s, "restore_ebs");
        press(&mut s, KeyCode::Enter);
        let last = s.search.as_ref().and_then(|x| x.current).unwrap();
        assert!(s.log[last].step == "restore_ebs" || s.log[last].text.contains("restore_ebs"));
        assert_eq!(s.log_bottom, Some(last));
        press(&mut s, KeyCode::Char('N'));
        let prev = s.search.as_ref().and_then(|x| x.current).unwrap();
        assert!(prev < last);
        press(&mut s, KeyCode::Char('n'));
        assert_eq!(s.search.as_ref().and_then(|x| x.current), Some(last));
        // f returns to following the end
        press(&mut s, KeyCode::Char('f'));
        assert_eq!(s.log_bottom, None);
        // Esc clears the search
        press(&mut s, KeyCode::Esc);
        assert!(s.search.is_none());
    }

    #[test]
    fn the_detail_pane_scrolls_per_step() {
        let mut s = st(&fixtures::failed());
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.focus, Focus::Detail);
        press(&mut s, KeyCode::Char('j'));
        press(&mut s, KeyCode::Char('j'));
        assert_eq!(s.detail_offset(), 2);
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_db"), "the selection stays");
        press(&mut s, KeyCode::Char('k'));
        assert_eq!(s.detail_offset(), 1);
        // another step starts at the top
        press(&mut s, KeyCode::BackTab);
        assert_eq!(s.focus, Focus::Steps);
        press(&mut s, KeyCode::Char('j'));
        assert_eq!(s.detail_offset(), 0);
    }

    #[test]
    fn log_scrolls_and_follows() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Tab);
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.focus, Focus::Log);
        let n = s.log.len();
        press(&mut s, KeyCode::Char('k'));
        assert_eq!(s.log_bottom, Some(n - 2));
        press(&mut s, KeyCode::Char('g'));
        assert_eq!(s.log_bottom, Some(0));
        press(&mut s, KeyCode::Char('G'));
        assert_eq!(s.log_bottom, None);
    }

    #[test]
    fn ticks_move_the_countdown() {
        let mut s = st(&fixtures::running());
        let left = s.rto_left().unwrap();
        s.handle(Input::Tick(at(660)));
        assert_eq!(s.rto_left(), Some(left - 60));
        // time does not run backwards on a late tick
        s.handle(Input::Tick(at(0)));
        assert_eq!(s.rto_left(), Some(left - 60));
    }

    #[test]
    fn the_stream_ending_stops_the_run_being_active() {
        let mut s = st(&fixtures::running());
        assert!(s.active());
        s.handle(Input::EventsClosed);
        assert!(!s.active());
        assert_eq!(press(&mut s, KeyCode::Char('q')), [Effect::Quit]);
    }
}
