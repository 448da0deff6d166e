//! The console's state machine: `State::handle(input) -> Vec<Effect>`. Pure: no terminal, no channels, no clock
//! (run time arrives as `Input::Tick`, real time as `Input::Instant`). The run's facts come from the one fold of
//! the event stream, [`RunView`] (shared with the watcher, the reports and resume); this module keeps UI state only:
//! the log, selection, focus, search, popups ([`super::popup`]) and the commands keys produce, which the driver
//! sends.

use std::collections::HashMap;

use jiff::Timestamp;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;

use super::StepNotes;
use super::keymap::{self, Action};
use crate::run::describe::{Level, describe_in};
use crate::run::verdict::outcome_line;
use crate::run::{Command, Event, EventKind, Outcome, Phase, Prompt, RunView, StepInfo};
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
    /// Real milliseconds since the console started (not scaled): guards popups that open by themselves against
    /// keys already on their way, and expires messages. The driver sends it before every key and event.
    Instant(u64),
    /// The event stream ended (engine gone, or the journal fully read in watch mode).
    EventsClosed,
}

/// The cleanup of a drill, as asked in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupChoice {
    #[default]
    NotAsked,
    /// The operator typed the run id: cleanup runs when the console closes.
    Confirmed,
    /// The operator declined: nothing is deleted; `drconsole cleanup RUN` later.
    Declined,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    Quit,
}

/// How the console draws a step's phase (the phase itself is the run view's fact).
pub trait Look {
    fn icon(self) -> &'static str;
    /// The console's word for it.
    fn label(self) -> &'static str;
    /// The theme role it is drawn with.
    fn role(self) -> &'static str;
}

impl Look for Phase {
    fn icon(self) -> &'static str {
        match self {
            Phase::Pending => "·",
            Phase::AwaitingApproval | Phase::WaitingOperator => "?",
            Phase::Running => "▶",
            Phase::Retrying => "↻",
            Phase::Succeeded => "✓",
            Phase::Failed => "✗",
            Phase::Skipped => "»",
            Phase::Cancelled => "-",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::AwaitingApproval => "awaiting approval",
            Phase::WaitingOperator => "waiting for you",
            Phase::Running => "running",
            Phase::Retrying => "retrying",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "FAILED",
            Phase::Skipped => "skipped",
            Phase::Cancelled => "cancelled",
        }
    }
    fn role(self) -> &'static str {
        match self {
            Phase::Pending => "step.pending",
            Phase::AwaitingApproval | Phase::WaitingOperator => "step.awaiting",
            Phase::Running | Phase::Retrying => "step.running",
            Phase::Succeeded => "step.succeeded",
            Phase::Failed => "step.failed",
            Phase::Skipped => "step.skipped",
            Phase::Cancelled => "step.cancelled",
        }
    }
}

/// The run-view facts the console shows as they are (one model: [`crate::run::view`]).
pub use crate::run::view::{
    FinishedView as Finished, PointView as ChosenPoint, ResourceView, RunHeader as RunInfo, StepView,
};

/// A row of the steps pane: a step of the view, and its stage in the dependency graph (longest path from a root:
/// steps of one stage may run in parallel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    step: usize,
    stage: usize,
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

pub use super::popup::{
    Act, ActPopup, CleanupPopup, ConfirmPopup, ManualPopup, Modal, Picker, Purpose, QuitPopup, ReasonPopup, Reply,
    SortKey, Typed,
};

/// Which screen the body shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Steps, detail and log.
    Main,
    /// One bar per step on the run's time axis.
    Timeline,
}

/// Keys within this long after a popup opened by itself are ignored (they were meant for the screen before).
pub const GUARD_MS: u64 = 750;
/// A footer message disappears after this long.
pub const FLASH_MS: u64 = 8000;

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
    /// Where the run's state is shared (`s3://...`), if it is: the header says so.
    pub shared_state: Option<String>,
    /// The steps pane's rows: the view's steps in dependency order (stage, then runbook order).
    rows: Vec<Row>,
    /// The fold of every event (this session's and, after a resume, the earlier ones): the run's facts.
    pub view: RunView,
    /// Earlier sessions are being replayed: no popup opens.
    replaying: bool,
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
    /// A one-line message in the footer (the last key's result); it expires after [`FLASH_MS`].
    pub flash: Option<String>,
    flash_at: Option<u64>,
    /// Real time (ms since the console started), from [`Input::Instant`].
    pub wall: u64,
    /// Keys are ignored until this real time: a popup opened by itself.
    pub guard_until: Option<u64>,
    pub screen: Screen,
    /// Animation frame counter (spinner).
    pub frame: u64,
    /// In an incident: the application this console is; every popup's title names it.
    pub app: Option<String>,
    /// `--cleanup-after` on a drill: the cleanup popup opens by itself when the run ends.
    pub cleanup_after: bool,
    /// What the operator said to the drill's cleanup.
    pub cleanup: CleanupChoice,
}

impl State {
    pub fn new(notes: StepNotes, operator: String, control: bool) -> Self {
        Self {
            notes,
            operator,
            control,
            shared_state: None,
            rows: Vec::new(),
            view: RunView::new(),
            replaying: false,
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
            flash_at: None,
            wall: 0,
            guard_until: None,
            screen: Screen::Main,
            frame: 0,
            app: None,
            cleanup_after: false,
            cleanup: CleanupChoice::NotAsked,
        }
    }

    /// Whether the run is still going (a quit must interrupt it).
    pub fn active(&self) -> bool {
        self.run().is_some() && self.finished().is_none() && !self.events_closed
    }

    // ---- the run's facts, read from the view -----------------------------------------------------------------

    pub fn run(&self) -> Option<&RunInfo> {
        self.view.run.as_ref()
    }

    pub fn identity(&self) -> Option<&(String, String)> {
        self.view.identity.as_ref()
    }

    pub fn paused(&self) -> Option<&String> {
        self.view.paused.as_ref()
    }

    pub fn finished(&self) -> Option<&Finished> {
        self.view.finished.as_ref()
    }

    /// The recovery point the run's RPO verdict rests on: the one with the oldest data of all used.
    pub fn chosen(&self) -> Option<ChosenPoint> {
        self.view.rpo().worst
    }

    /// The operator answered a recovery point question accepting the RPO loss.
    pub fn rpo_loss_accepted(&self) -> bool {
        self.view
            .steps
            .iter()
            .any(|s| s.answer.as_ref().is_some_and(|(a, _)| a.starts_with(super::popup::ACCEPT_RPO_LOSS)))
    }

    /// The steps in the pane's order (dependency stage, then runbook order).
    pub fn steps(&self) -> impl Iterator<Item = &StepView> + Clone {
        self.rows.iter().filter_map(|r| self.view.steps.get(r.step))
    }

    /// The first row whose step waits for a person.
    fn first_waiting(&self) -> Option<usize> {
        self.steps().position(|s| s.phase.needs_operator())
    }

    /// How many rows the steps pane has.
    pub fn step_count(&self) -> usize {
        self.rows.len()
    }

    /// The step on row `i`.
    pub fn step_at(&self, i: usize) -> Option<&StepView> {
        self.view.steps.get(self.rows.get(i)?.step)
    }

    /// The dependency stage of row `i`.
    pub fn stage(&self, i: usize) -> Option<usize> {
        self.rows.get(i).map(|r| r.stage)
    }

    /// Whether the screen changes on its own (countdown, spinner): the driver ticks only then.
    pub fn animating(&self) -> bool {
        self.active()
    }

    /// The real time (ms, as [`Input::Instant`]) at which the screen changes by itself (a popup's guard ends, a
    /// message expires): the driver wakes up then, and not before, so an idle console does nothing.
    pub fn wakeup(&self) -> Option<u64> {
        let flash = self.flash_at.map(|t| t + FLASH_MS);
        [self.guard_until, flash].into_iter().flatten().min()
    }

    /// A popup opened by itself a moment ago: keys are ignored.
    pub fn guarded(&self) -> bool {
        self.modal.is_some() && self.guard_until.is_some_and(|g| self.wall < g)
    }

    /// Whether anything is running now (the spinner needs a faster tick than the countdown).
    pub fn spinning(&self) -> bool {
        self.active() && self.steps().any(|s| matches!(s.phase, Phase::Running | Phase::Retrying))
    }

    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.view.step(id)
    }

    pub fn selected_step(&self) -> Option<&StepView> {
        self.step_at(self.selected)
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
        self.now.or(self.run().map(|r| r.started)).unwrap_or(Timestamp::UNIX_EPOCH)
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
                    self.open_attention(false);
                }
                if self.flash.is_some() && self.flash_at.is_none() {
                    self.flash_at = Some(self.wall);
                }
                effects
            }
            Input::Instant(ms) => {
                self.wall = self.wall.max(ms);
                if self.guard_until.is_some_and(|g| self.wall >= g) {
                    self.guard_until = None;
                }
                if self.flash_at.is_some_and(|t| self.wall >= t + FLASH_MS) {
                    self.flash = None;
                    self.flash_at = None;
                }
                Vec::new()
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

    /// An engine event: the run's facts are folded by the [`RunView`], its log line written by the shared
    /// describer ([`crate::run::describe`]); here the console only logs it, moves the selection and opens or closes
    /// popups.
    fn event(&mut self, ev: Event) {
        let ts = ev.ts;
        self.now = Some(self.now.map_or(ts, |n| n.max(ts)));
        self.view.apply(&ev);
        if let Some(l) = describe_in(&ev.kind, &self.view, ts) {
            let level = match l.level {
                Level::Info => LogLevel::Info,
                Level::Good => LogLevel::Good,
                Level::Warn | Level::Attention => LogLevel::Warn,
                Level::Bad => LogLevel::Bad,
            };
            self.log.push(LogLine { ts, tag: l.tag, step: l.step, text: l.text, level });
        }
        match &ev.kind {
            EventKind::RunStarted { .. } => self.set_rows(),
            EventKind::StepAwaitingApproval { step, .. } | EventKind::OperatorRequest { step, .. } => {
                self.dismissed.retain(|d| d != step);
            }
            EventKind::StepApproved { step, .. }
            | EventKind::OperatorAnswered { step, .. }
            | EventKind::StepFailed { step, .. }
            | EventKind::StepSkipped { step, .. }
            | EventKind::StepCancelled { step, .. } => self.close_modal_for(step),
            EventKind::RunFinished { message, .. } => {
                let ok = self.view.outcome_word() == Some("recovered");
                let word = self.view.outcome_word().unwrap_or("finished");
                let text = outcome_line(word, message);
                self.push_log(ts, "finished", "", text, if ok { LogLevel::Good } else { LogLevel::Bad });
                // a quit confirmation is moot once the run is over; prompts are gone
                if matches!(
                    self.modal,
                    Some(Modal::Quit(_) | Modal::Act(_) | Modal::Reason(ReasonPopup { purpose: Purpose::Abort, .. }))
                ) {
                    self.modal = None;
                }
                // --cleanup-after on a drill: the typed confirmation, whatever the outcome
                if self.cleanup_after && self.control && !self.replaying && self.cleanup == CleanupChoice::NotAsked {
                    self.open_cleanup(true);
                }
            }
            _ => {}
        }
        if self.follow {
            self.selected = self.focus_step();
        }
        if !self.replaying {
            self.open_attention(true);
        }
    }

    /// The steps pane's rows from the view (after a `run_started`): ordered by stage, then runbook order.
    fn set_rows(&mut self) {
        let infos: Vec<&StepInfo> = self.view.steps.iter().map(|s| &s.info).collect();
        // stage = longest path from a root
        let pos: HashMap<&str, usize> = infos.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut stage = vec![0usize; infos.len()];
        // runbooks are acyclic (checked on load); relax at most n times
        for _ in 0..infos.len() {
            let mut changed = false;
            for (i, s) in infos.iter().enumerate() {
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
        let mut order: Vec<usize> = (0..infos.len()).collect();
        order.sort_by_key(|&i| (stage[i], i));
        self.rows = order.into_iter().map(|i| Row { step: i, stage: stage[i] }).collect();
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Events of earlier sessions (a resumed run, from its journal): folded and logged, no popup opens (the live
    /// stream asks again for what is still open).
    pub fn replay<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        self.replaying = true;
        for ev in events {
            self.event(ev.clone());
        }
        self.replaying = false;
    }

    /// The step "in action": one that needs the operator, else a failed one, else the latest started running one,
    /// else the last that ended.
    fn focus_step(&self) -> usize {
        let find = |p: &dyn Fn(&StepView) -> bool| self.steps().position(p);
        if let Some(i) = find(&|s| s.phase.needs_operator()) {
            return i;
        }
        if let Some(i) = find(&|s| s.phase == Phase::Failed) {
            return i;
        }
        let running = self
            .steps()
            .enumerate()
            .filter(|(_, s)| matches!(s.phase, Phase::Running | Phase::Retrying))
            .max_by_key(|(i, s)| (s.started, std::cmp::Reverse(*i)));
        if let Some((i, _)) = running {
            return i;
        }
        self.steps()
            .enumerate()
            .filter(|(_, s)| s.ended.is_some())
            .max_by_key(|(i, s)| (s.ended, *i))
            .map_or(self.selected.min(self.step_count().saturating_sub(1)), |(i, _)| i)
    }

    fn close_modal_for(&mut self, step: &str) {
        if self.modal.as_ref().and_then(Modal::step) == Some(step) {
            self.modal = None;
        }
        self.dismissed.retain(|d| d != step);
    }

    /// Opens the popup for the first step that waits for the operator, unless a popup is open or it was dismissed.
    /// `by_itself`: an engine event opened it, so keys already on their way are ignored for a moment.
    fn open_attention(&mut self, by_itself: bool) {
        if !self.control || self.modal.is_some() || self.finished().is_some() {
            return;
        }
        let next = self
            .steps()
            .find(|s| s.phase.needs_operator() && !self.dismissed.contains(&s.info.id))
            .map(|s| s.info.id.clone());
        if let Some(id) = next {
            self.modal = self.prompt_modal(&id);
            if by_itself && self.modal.is_some() {
                self.guard_until = Some(self.wall + GUARD_MS);
            }
        }
    }

    /// The popup answering what a step waits for, if it waits.
    fn prompt_modal(&self, id: &str) -> Option<Modal> {
        let s = self.step(id)?;
        match s.phase {
            Phase::AwaitingApproval => {
                let typed = self.notes.get(id).filter(|n| n.destructive).map(|n| Typed {
                    name: n.confirm_name.clone(),
                    what: n.confirm_what.clone(),
                    input: String::new(),
                    mismatch: false,
                });
                Some(Modal::Confirm(ConfirmPopup {
                    step: id.to_string(),
                    title: s.info.title.clone(),
                    plan: s.plan.clone().unwrap_or_default(),
                    typed,
                }))
            }
            Phase::WaitingOperator => match s.prompt.as_ref()? {
                Prompt::Done { instructions } => {
                    Some(Modal::Manual(ManualPopup { step: id.to_string(), instructions: instructions.clone() }))
                }
                Prompt::Choice { message, candidates } => Some(Modal::Picker(Picker::new(
                    id.to_string(),
                    message.clone(),
                    candidates.clone(),
                    self.run().map_or(0, |r| r.rpo_secs),
                ))),
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
        self.flash_at = None;
        // Ctrl-C always asks to quit (and interrupts the run when confirmed)
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            if matches!(self.modal, Some(Modal::Quit(_))) {
                return self.quit();
            }
            return self.ask_quit();
        }
        if self.guarded() {
            // the popup opened by itself a moment ago: this key was meant for what was there before
            return Vec::new();
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
                // q first clears a search the operator can see (the log has focus on the main screen); a search
                // left behind out of sight does not swallow the quit
                if self.search.is_some() && self.focus == Focus::Log && self.screen == Screen::Main {
                    self.search = None;
                    return Vec::new();
                }
                self.search = None;
                return self.ask_quit();
            }
            Action::Escape => self.search = None,
            Action::Open if self.focus == Focus::Log && self.screen == Screen::Main => {
                let n = self.log.len();
                if n > 0 {
                    self.modal = Some(Modal::LogLine(self.log_bottom.unwrap_or(n - 1).min(n - 1)));
                }
            }
            Action::Open => self.open_selected(),
            Action::Approve => self.approve_selected(),
            Action::Skip => {
                if let Some(id) = self.selected_id() {
                    self.open_skip(&id);
                }
            }
            Action::Retry => self.retry_selected(),
            Action::PauseResume => self.pause_resume(),
            Action::Abort => {
                if self.check_control("abort") && self.active() {
                    self.modal = Some(Modal::Reason(ReasonPopup::new(Purpose::Abort)));
                } else if self.control {
                    self.flash = Some("the run is not active".into());
                }
            }
            Action::Timeline => {
                self.screen = match self.screen {
                    Screen::Main => Screen::Timeline,
                    Screen::Timeline => Screen::Main,
                };
            }
            Action::Cleanup => self.ask_cleanup(),
        }
        Vec::new()
    }

    /// `c`: the typed confirmation of a finished drill's cleanup, or why not.
    fn ask_cleanup(&mut self) {
        if !self.check_control("clean up") {
            return;
        }
        let Some(run) = self.run() else { return };
        if !run.drill {
            self.flash = Some(format!(
                "not a drill: its resources may serve customers; from a shell: drconsole cleanup {} --force",
                run.run_id
            ));
        } else if self.finished().is_none() {
            self.flash = Some("the drill has not ended: clean up when it has (c)".into());
        } else if self.cleanup == CleanupChoice::Confirmed {
            self.flash = Some("cleanup confirmed: it runs when the console closes (q)".into());
        } else {
            self.open_cleanup(false);
        }
    }

    /// Opens the cleanup popup; `by_itself` (the run just ended): keys on their way are ignored for a moment.
    fn open_cleanup(&mut self, by_itself: bool) {
        let Some(run) = self.run().filter(|r| r.drill) else { return };
        self.modal = Some(Modal::Cleanup(CleanupPopup::new(&run.run_id)));
        if by_itself {
            self.guard_until = Some(self.wall + GUARD_MS);
        }
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
                let n = self.step_count();
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
                self.selected = i.min(self.step_count().saturating_sub(1));
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
            let run_id = self.run().map(|r| r.run_id.clone()).unwrap_or_default();
            self.modal = Some(Modal::Quit(QuitPopup { run_id }));
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

    fn open_selected(&mut self) {
        let Some(id) = self.selected_id() else { return };
        if self.control
            && let Some(m) = self.prompt_modal(&id)
        {
            self.dismissed.retain(|d| *d != id);
            self.modal = Some(m);
        } else if self.focus != Focus::Steps {
            self.focus = Focus::Steps;
        }
    }

    fn approve_selected(&mut self) {
        if !self.check_control("approve") {
            return;
        }
        let Some(s) = self.selected_step() else { return };
        let id = s.info.id.clone();
        if !s.phase.needs_operator() {
            // the operator may be on another step: go to the one that waits
            let waiting = self.steps().position(|s| s.phase.needs_operator());
            if let Some(w) = waiting {
                self.selected = w;
                self.open_selected();
                return;
            }
            self.flash = Some(format!("`{id}` is not waiting for approval"));
            return;
        }
        self.open_selected();
    }

    /// Opens the skip prompt for a step: a reason, then `y`; it warns when later steps use the step's outputs.
    fn open_skip(&mut self, id: &str) {
        if !self.check_control("skip") {
            return;
        }
        let Some(s) = self.step(id) else { return };
        if matches!(s.phase, Phase::Succeeded | Phase::Skipped) || !self.active() {
            self.flash = Some(format!("`{}` cannot be skipped now ({})", s.info.id, s.phase.label()));
            return;
        }
        // only steps that have yet to run still need the outputs
        let needed_by = self
            .notes
            .get(id)
            .map(|n| {
                n.needed_by
                    .iter()
                    .filter(|(other, _)| self.step(other).is_none_or(|o| !o.phase.is_terminal()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.modal = Some(Modal::Reason(ReasonPopup::new(Purpose::Skip { step: id.to_string(), needed_by })));
    }

    fn retry_selected(&mut self) {
        if !self.check_control("retry") {
            return;
        }
        let Some(s) = self.selected_step() else { return };
        if s.phase != Phase::Failed || !self.active() {
            self.flash = Some(format!(
                "only a failed step of an active run can be retried; `{}` is {}",
                s.info.id,
                s.phase.label()
            ));
            return;
        }
        self.modal = Some(Modal::Act(ActPopup { act: Act::Retry { step: s.info.id.clone() } }));
    }

    fn pause_resume(&mut self) {
        if !self.check_control("pause") {
            return;
        }
        if !self.active() {
            self.flash = Some("the run is not active".into());
            return;
        }
        if self.paused().is_some() {
            if self.steps().any(|s| s.phase == Phase::Failed && s.info.on_failure == crate::runbook::OnFailure::Pause) {
                self.flash = Some("a failed step holds the run: retry (r) or skip (s) it".into());
                return;
            }
            self.modal = Some(Modal::Act(ActPopup { act: Act::Resume }));
        } else {
            self.modal = Some(Modal::Act(ActPopup { act: Act::Pause }));
        }
    }

    fn modal_key(&mut self, mut modal: Modal, k: KeyEvent) -> Vec<Effect> {
        let prompt = modal.prompt_step().map(str::to_string);
        match modal.key(&k, &self.operator) {
            Reply::Keep => self.modal = Some(modal),
            Reply::Close => {
                if let Some(step) = prompt {
                    self.dismiss(&step);
                }
            }
            Reply::Open(next) => self.modal = Some(*next),
            Reply::Skip(step) => {
                self.open_skip(&step);
                if self.modal.is_none() {
                    // the step cannot be skipped now: back to the question
                    self.modal = Some(modal);
                }
            }
            Reply::Quit => return self.quit(),
            Reply::Cleanup(true) => {
                self.cleanup = CleanupChoice::Confirmed;
                let ts = self.now();
                self.push_log(ts, "cleanup", "", "confirmed: it runs when the console closes".into(), LogLevel::Warn);
                // the run has ended: the console closes and the cleanup starts
                return vec![Effect::Quit];
            }
            Reply::Cleanup(false) => {
                self.cleanup = CleanupChoice::Declined;
                let id = self.run().map(|r| r.run_id.clone()).unwrap_or_default();
                let text = format!("not started: nothing was deleted; to clean up later: drconsole cleanup {id}");
                let ts = self.now();
                self.push_log(ts, "cleanup", "", text.clone(), LogLevel::Warn);
                self.flash = Some(format!("cleanup {text}"));
            }
            Reply::Send(cmd, flash) => {
                if !flash.is_empty() {
                    self.flash = Some(flash);
                }
                // an answer is on its way: do not reopen the step's popup before the engine's event arrives
                if let Command::Approve { step, .. } | Command::Answer { step, .. } | Command::Skip { step, .. } = &cmd
                    && !self.dismissed.contains(step)
                {
                    self.dismissed.push(step.clone());
                }
                return vec![Effect::Send(cmd)];
            }
        }
        Vec::new()
    }

    /// The incident console shows this application's screen to answer it: opens the question of the first step
    /// that waits for the operator (even one put aside) unless a popup is open. The popup shown is new to the
    /// operator, so keys already on their way are ignored for a moment, as for a popup that opened by itself.
    /// Whether a popup is open afterwards.
    pub fn attend(&mut self) -> bool {
        if !self.control {
            return false;
        }
        if self.modal.is_none()
            && self.finished().is_none()
            && let Some(i) = self.first_waiting()
        {
            self.selected = i;
            self.focus = Focus::Steps;
            self.open_selected();
        }
        if self.modal.is_some() {
            self.guard_until = Some(self.wall + GUARD_MS);
        }
        self.modal.is_some()
    }

    fn dismiss(&mut self, step: &str) {
        if !self.dismissed.iter().any(|d| d == step) {
            self.dismissed.push(step.to_string());
        }
        if self.step(step).is_some_and(|s| s.phase.needs_operator()) {
            self.flash = Some(format!("`{step}` still waits for you: select it and press Enter"));
        }
    }

    // ---- derived values for the views --------------------------------------------------------------------

    /// Time left before the RTO deadline (negative when past it).
    pub fn rto_left(&self) -> Option<i64> {
        self.view.clock_at(self.now()).map(|c| c.rto_left_secs)
    }

    /// The run's clock (RTO left, elapsed, projected finish, margin) at "now", from the view: it moves on every
    /// tick, also while the run waits for a person.
    pub fn clock(&self) -> Option<crate::run::ClockView> {
        self.view.clock_at(self.now())
    }

    /// Time since the incident started, in seconds (to the end, once the run finished).
    pub fn since_incident(&self) -> Option<i64> {
        self.clock().map(|c| c.elapsed_secs)
    }

    /// The projected finish and its margin to the deadline, computed at "now" (so it moves while the run waits).
    pub fn projected(&self) -> Option<(Timestamp, i64)> {
        if self.rows.is_empty() {
            return None;
        }
        self.clock().filter(|c| !c.finished).map(|c| (c.projected_finish, c.margin_secs))
    }

    /// How to continue a run that did not recover: after the end, when the stream stopped, or in watch mode.
    pub fn resume_hint(&self) -> Option<String> {
        let run = self.run()?;
        let stopped = match self.finished() {
            Some(f) => f.outcome != Outcome::Recovered,
            None => self.events_closed,
        };
        stopped.then(|| format!("continue: drconsole resume {}", run.run_id))
    }

    /// The step's duration so far: the view's (every session it was active in, waits for people included), the
    /// same number the reports and watch show.
    pub fn step_secs(&self, s: &StepView) -> Option<u64> {
        s.duration_secs(self.now())
    }

    /// How long the current attempt of a running step has run (against its expected time, as the projection
    /// counts it).
    pub fn attempt_secs(&self, s: &StepView) -> Option<i64> {
        let since = s.attempts.last()?.started;
        Some(crate::run::clock::secs_between(since, s.ended.unwrap_or_else(|| self.now())).max(0))
    }

    pub fn fmt_step_time(&self, s: &StepView) -> String {
        self.step_secs(s).map(|t| fmt_duration(std::time::Duration::from_secs(t))).unwrap_or_default()
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
    /// Feeds the last event of `e`, then lets real time pass beyond a popup's guard.
    fn feed(s: &mut State, e: &Events) {
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        s.handle(Input::Instant(s.wall + GUARD_MS));
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
        let ids: Vec<(&str, usize)> =
            s.steps().enumerate().map(|(i, x)| (x.info.id.as_str(), s.stage(i).unwrap())).collect();
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
        assert_eq!(s.step("restore_ebs").map(|x| (x.phase, x.attempt)), Some((Phase::Running, 2)));
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
                cause: None,
            },
        );
        feed(&mut s, &e);
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_ebs"));
        // f follows again: the failed step is where the action is
        press(&mut s, KeyCode::Char('f'));
        assert!(s.follow);
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("alb"));
        // arrows and vim keys alike; bounds hold
        press(&mut s, KeyCode::Char('G'));
        assert_eq!(s.selected, s.step_count() - 1);
        press(&mut s, KeyCode::Down);
        assert_eq!(s.selected, s.step_count() - 1);
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
        assert!(matches!(&s.modal, Some(Modal::Confirm(ConfirmPopup { step, typed: None, .. })) if step == "asg"));
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("asg"));
        // Enter does not approve a plain confirmation by accident: only y does
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Approve { step: "asg".into(), by: by() }]);
    }

    #[test]
    fn closing_help_brings_back_a_pending_confirmation() {
        let mut s = st(&fixtures::at_cutover());
        assert!(matches!(s.modal, Some(Modal::Confirm(_))));
        ctrl(&mut s, 'c');
        assert!(matches!(s.modal, Some(Modal::Quit(_))));
        press(&mut s, KeyCode::Char('n'));
        assert!(matches!(s.modal, Some(Modal::Confirm(_))), "{:?}", s.modal);
    }

    #[test]
    fn an_answered_popup_stays_closed_until_the_engine_replies() {
        let mut e = fixtures::running();
        e.push(700, EventKind::StepAwaitingApproval { step: "asg".into(), plan: "set capacity to 3".into() });
        let mut s = st(&e);
        press(&mut s, KeyCode::Char('y'));
        e.push(
            700,
            EventKind::StepProgress {
                step: "restore_db".into(),
                message: "50%".into(),
                percent: Some(50.0),
                cause: None,
            },
        );
        feed(&mut s, &e);
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
        e.push(
            701,
            EventKind::StepProgress {
                step: "restore_db".into(),
                message: "50%".into(),
                percent: Some(50.0),
                cause: None,
            },
        );
        feed(&mut s, &e);
        assert!(s.modal.is_none());
        press(&mut s, KeyCode::Enter);
        assert!(matches!(&s.modal, Some(Modal::Confirm(p)) if p.step == "asg"));
        // Esc closes popups as well as q
        press(&mut s, KeyCode::Esc);
        assert!(s.modal.is_none());
        // `a` from anywhere goes to the waiting step
        press(&mut s, KeyCode::Char('g'));
        press(&mut s, KeyCode::Char('a'));
        assert!(matches!(&s.modal, Some(Modal::Confirm(p)) if p.step == "asg"));
    }

    #[test]
    fn a_destructive_step_needs_its_name_typed() {
        let mut s = st(&fixtures::at_cutover());
        let typed_now = |s: &State| match &s.modal {
            Some(Modal::Confirm(ConfirmPopup { typed: Some(t), .. })) => {
                Some((t.name.clone(), t.input.clone(), t.mismatch))
            }
            _ => None,
        };
        assert_eq!(typed_now(&s).map(|t| t.0), Some("app.example.com".to_string()), "{:?}", s.modal);
        // y and q are just letters here
        typed(&mut s, "yq");
        assert_eq!(typed_now(&s).map(|t| t.1), Some("yq".to_string()));
        // Ctrl-U clears the field
        ctrl(&mut s, 'u');
        assert_eq!(typed_now(&s).map(|t| t.1), Some(String::new()));
        typed(&mut s, "app.example");
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "a partial name does not approve");
        assert_eq!(typed_now(&s).map(|t| t.2), Some(true), "the popup says it does not match");
        // a trailing dot (a fully qualified DNS name) is the same name
        typed(&mut s, ".com.");
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
        feed(&mut s, &e);
        assert!(s.modal.is_none());
        assert_eq!(s.step("dns_cutover").map(|x| x.phase), Some(Phase::Pending));
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
        assert_eq!(s.step("pick_point").map(|x| x.phase), Some(Phase::WaitingOperator));
    }

    #[test]
    fn skip_needs_a_reason() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Char('s'));
        let Some(Modal::Reason(ReasonPopup { purpose: Purpose::Skip { step, .. }, .. })) = &s.modal else {
            panic!("{:?}", s.modal)
        };
        assert_eq!(step, "alb");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        typed(&mut s, "  ");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        typed(&mut s, "LB exists already");
        // Enter only asks; y skips
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Skip { step: "alb".into(), reason: "LB exists already".into(), by: by() }]);
        assert!(s.modal.is_none());
    }

    #[test]
    fn retry_only_a_failed_step() {
        let mut s = st(&fixtures::failed());
        assert_eq!(s.selected_step().map(|x| x.info.id.as_str()), Some("restore_db"));
        assert!(press(&mut s, KeyCode::Char('r')).is_empty(), "r asks first");
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Retry { step: "restore_db".into(), by: by() }]);
        press(&mut s, KeyCode::Char('j'));
        assert!(press(&mut s, KeyCode::Char('r')).is_empty());
        assert!(s.flash.is_some());
    }

    #[test]
    fn pause_and_resume() {
        let mut e = fixtures::running();
        let mut s = st(&e);
        assert!(press(&mut s, KeyCode::Char('p')).is_empty(), "p asks first");
        assert!(press(&mut s, KeyCode::Char('x')).is_empty(), "other keys do nothing");
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Pause { by: by() }]);
        e.push(700, EventKind::RunPaused { reason: "paused by alice@bastion".into() });
        feed(&mut s, &e);
        press(&mut s, KeyCode::Char('p'));
        let fx = press(&mut s, KeyCode::Char('y'));
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
        assert!(matches!(s.modal, Some(Modal::Reason(ReasonPopup { purpose: Purpose::Abort, .. }))));
        // a reason is text: n and y are letters
        typed(&mut s, "wrong region");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Abort { reason: "wrong region".into(), by: by() }]);
    }

    #[test]
    fn quitting_an_active_run_asks_and_interrupts() {
        let mut s = st(&fixtures::running());
        assert!(press(&mut s, KeyCode::Char('q')).is_empty());
        assert!(matches!(s.modal, Some(Modal::Quit(_))));
        assert!(press(&mut s, KeyCode::Char('q')).is_empty(), "q closes the question");
        assert!(s.modal.is_none());
        assert!(ctrl(&mut s, 'c').is_empty());
        assert!(matches!(s.modal, Some(Modal::Quit(_))));
        assert_eq!(press(&mut s, KeyCode::Char('y')), [Effect::Send(Command::Interrupt), Effect::Quit]);
        // Ctrl-C twice also quits
        let mut s = st(&fixtures::running());
        ctrl(&mut s, 'c');
        assert_eq!(ctrl(&mut s, 'c'), [Effect::Send(Command::Interrupt), Effect::Quit]);
    }

    #[test]
    fn the_first_q_quits_a_finished_run_even_with_a_search_left_out_of_sight() {
        let mut s = st(&fixtures::finished());
        press(&mut s, KeyCode::Char('/'));
        typed(&mut s, "restore");
        press(&mut s, KeyCode::Enter);
        assert!(s.search.is_some());
        // the search is shown while the log has focus: q clears it first
        assert!(press(&mut s, KeyCode::Char('q')).is_empty());
        assert!(s.search.is_none());
        // a search left behind when the focus moved away is not visible: q quits at once
        press(&mut s, KeyCode::Char('/'));
        typed(&mut s, "restore");
        press(&mut s, KeyCode::Enter);
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.focus, Focus::Steps);
        assert_eq!(press(&mut s, KeyCode::Char('q')), [Effect::Quit]);
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
        assert_eq!(s.finished().map(|f| f.outcome), Some(Outcome::Recovered));
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

    #[test]
    fn a_popup_that_opens_by_itself_ignores_keys_for_a_moment() {
        let mut e = fixtures::running();
        let mut s = st(&e);
        let t0 = s.wall;
        e.push(700, EventKind::StepAwaitingApproval { step: "asg".into(), plan: "set capacity to 3".into() });
        s.handle(Input::Event(Box::new(e.events.last().cloned().unwrap())));
        assert!(matches!(s.modal, Some(Modal::Confirm(_))));
        assert!(s.guarded());
        // the operator was pressing y (or ?) for something else: nothing happens, the popup stays
        assert!(press(&mut s, KeyCode::Char('y')).is_empty());
        assert!(press(&mut s, KeyCode::Char('?')).is_empty());
        assert!(matches!(s.modal, Some(Modal::Confirm(_))), "{:?}", s.modal);
        s.handle(Input::Instant(t0 + GUARD_MS - 1));
        assert!(press(&mut s, KeyCode::Char('y')).is_empty());
        assert_eq!(s.wakeup(), Some(t0 + GUARD_MS), "the driver wakes up when the guard ends");
        s.handle(Input::Instant(t0 + GUARD_MS));
        assert!(!s.guarded());
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(sent(&fx), [Command::Approve { step: "asg".into(), by: by() }]);
    }

    #[test]
    fn a_stray_enter_does_not_choose_in_a_picker_that_just_opened() {
        let mut s = State::new(fixtures::notes(), by(), true);
        let e = fixtures::until_picker();
        for ev in &e.events {
            s.handle(Input::Event(Box::new(ev.clone())));
        }
        assert!(matches!(s.modal, Some(Modal::Picker(_))));
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert!(matches!(s.modal, Some(Modal::Picker(_))));
    }

    #[test]
    fn typing_a_name_on_the_main_screen_fires_nothing() {
        // the DNS confirmation was put aside; the operator types its name anyway, then Enter
        for fixture in [fixtures::at_cutover(), fixtures::failed(), fixtures::running()] {
            let mut s = st(&fixture);
            s.modal = None;
            let mut fx = Vec::new();
            for c in "cross-sell.example-fin.com".chars() {
                fx.extend(press(&mut s, KeyCode::Char(c)));
            }
            fx.extend(press(&mut s, KeyCode::Enter));
            assert!(sent(&fx).is_empty(), "{:?}", sent(&fx));
        }
    }

    #[test]
    fn re_sorting_the_picker_keeps_the_cursor_on_the_same_point() {
        let mut s = st(&fixtures::until_picker());
        press(&mut s, KeyCode::Char('j'));
        press(&mut s, KeyCode::Char('j'));
        let chosen = |s: &State| match &s.modal {
            Some(Modal::Picker(p)) => p.selected_candidate().map(|c| c.id.clone()),
            _ => None,
        };
        let before = chosen(&s);
        assert_eq!(before.as_deref(), Some("rds:crosssell-prod-2026-11-21-02-00"));
        for k in ['o', 'o', 'O', 'o'] {
            press(&mut s, KeyCode::Char(k));
            assert_eq!(chosen(&s), before, "after {k}");
        }
    }

    #[test]
    fn a_point_missing_the_rpo_asks_before_it_is_chosen() {
        let mut s = st(&fixtures::until_picker());
        press(&mut s, KeyCode::Char('G')); // the oldest: 11 h, misses the RPO
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let Some(Modal::RpoLoss(p)) = &s.modal else { panic!("{:?}", s.modal) };
        assert_eq!(p.meeting, 4);
        // n goes back to the list, on the same row
        press(&mut s, KeyCode::Char('n'));
        let Some(Modal::Picker(p)) = &s.modal else { panic!("{:?}", s.modal) };
        assert_eq!(p.selected_candidate().map(|c| c.id.as_str()), Some("snap-unencrypted-legacy"));
        press(&mut s, KeyCode::Enter);
        let fx = press(&mut s, KeyCode::Char('y'));
        assert_eq!(
            sent(&fx),
            [Command::Answer {
                step: "pick_point".into(),
                value: format!("{}snap-unencrypted-legacy", super::super::popup::ACCEPT_RPO_LOSS),
                by: by()
            }]
        );
    }

    #[test]
    fn with_no_point_meeting_the_rpo_the_loss_can_be_accepted() {
        let mut s = st(&fixtures::stale_picker());
        let Some(Modal::Picker(p)) = &s.modal else { panic!("{:?}", s.modal) };
        assert_eq!(p.meeting(), 0);
        press(&mut s, KeyCode::Enter);
        let Some(Modal::RpoLoss(p)) = &s.modal else { panic!("{:?}", s.modal) };
        assert_eq!(p.meeting, 0);
        let fx = press(&mut s, KeyCode::Char('y'));
        let cmds = sent(&fx);
        let [Command::Answer { value, .. }] = cmds.as_slice() else { panic!("{fx:?}") };
        assert_eq!(value, "accept-rpo-loss:rds:crosssell-prod-2026-11-21-01-00");
        let mut e = fixtures::stale_picker();
        e.push(20, EventKind::OperatorAnswered { step: "pick_point".into(), answer: value.clone(), by: by() });
        feed(&mut s, &e);
        assert!(s.rpo_loss_accepted());
    }

    #[test]
    fn the_skip_prompt_names_the_steps_that_need_the_outputs() {
        let mut s = st(&fixtures::until_picker());
        // the picker is open: s in it asks to skip its step
        press(&mut s, KeyCode::Char('q'));
        press(&mut s, KeyCode::Char('g'));
        press(&mut s, KeyCode::Char('s'));
        let Some(Modal::Reason(ReasonPopup { purpose: Purpose::Skip { step, needed_by }, .. })) = &s.modal else {
            panic!("{:?}", s.modal)
        };
        assert_eq!(step, "pick_point");
        let ids: Vec<&str> = needed_by.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["restore_db", "restore_ebs"]);
    }

    #[test]
    fn failing_calls_to_a_region_are_counted() {
        // from the cause the event carries (the port's classifier), not from the message's text
        let s = st(&fixtures::region_outage());
        let h = s.view.region_calls.get("us-east-1").expect("us-east-1 is noted");
        assert!(h.unreachable);
        assert_eq!((h.failures, h.code.as_str()), (1, "ServiceUnavailable"));
        assert!(!s.view.region_calls.contains_key("us-west-2"));
        // an error whose text names a region but that carries no cause counts nothing
        let mut e = fixtures::running();
        e.push(
            700,
            EventKind::StepRetrying {
                step: "restore_db".into(),
                attempt: 1,
                error: "rds RestoreDBInstanceFromDBSnapshot in us-west-2 failed: ServiceUnavailable: x".into(),
                delay_ms: 1000,
                cause: None,
            },
        );
        assert!(st(&e).view.region_calls.is_empty());
    }

    #[test]
    fn a_message_expires() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Char('f'));
        assert!(s.flash.is_some());
        let at = s.wall;
        assert_eq!(s.wakeup(), Some(at + FLASH_MS));
        s.handle(Input::Instant(at + FLASH_MS - 1));
        assert!(s.flash.is_some());
        s.handle(Input::Instant(at + FLASH_MS));
        assert!(s.flash.is_none());
        assert_eq!(s.wakeup(), None, "nothing left to wake up for");
    }

    #[test]
    fn the_projection_moves_while_the_run_waits_for_a_person() {
        let s0 = st(&fixtures::at_cutover());
        let (finish, margin) = s0.projected().unwrap();
        let mut s = st(&fixtures::at_cutover());
        s.handle(Input::Tick(at(1803 + 60)));
        let (f2, m2) = s.projected().unwrap();
        assert_eq!(crate::engine::clock::secs_between(finish, f2), 60);
        assert_eq!(m2, margin - 60);
        assert_eq!(s.rto_left(), s0.rto_left().map(|l| l - 60));
    }

    #[test]
    fn t_shows_the_timeline_and_back() {
        let mut s = st(&fixtures::running());
        press(&mut s, KeyCode::Char('t'));
        assert_eq!(s.screen, Screen::Timeline);
        press(&mut s, KeyCode::Char('t'));
        assert_eq!(s.screen, Screen::Main);
    }

    #[test]
    fn quitting_and_unrecovered_ends_say_how_to_continue() {
        let s = st(&fixtures::finished());
        assert_eq!(s.resume_hint(), None);
        let mut e = fixtures::failed();
        e.push(
            950,
            EventKind::RunFinished {
                outcome: Outcome::Aborted,
                duration_secs: 950,
                rto_secs: 7200,
                rto_achieved_secs: 0,
                rto_met: false,
                succeeded: 2,
                failed: 1,
                skipped: 0,
                cancelled: 3,
                message: "aborted".into(),
            },
        );
        let s = st(&e);
        assert_eq!(s.resume_hint().as_deref(), Some("continue: drconsole resume 20261121-030000-a1b2"));
    }
}
