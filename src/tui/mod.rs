//! The interactive console (ratatui). [`state`] is a pure state machine fed with engine events, keys and ticks;
//! [`view`] renders it; [`theme`] resolves semantic roles into styles; this module is the driver: it owns the
//! terminal, selects over input, engine events and a tick (only while something animates), draws only when
//! something changed (at most 60 frames a second, each in a synchronized update) and restores the terminal on
//! every exit path.

#[doc(hidden)]
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
pub mod incident;
pub mod incident_opening;
pub mod keymap;
pub mod opening;
pub mod overview;
pub mod popup;
pub mod state;
pub mod theme;
pub mod timeline;
pub mod view;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use ratatui::crossterm::{cursor, execute, terminal};
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub use state::{Effect, Input, State};
pub use theme::Theme;

use crate::actions::{Effect as ActionEffect, Registry};
use crate::engine::{Command, Event, Outcome};
use crate::runbook::Runbook;
use crate::runbook::interp::{self, Scope};

/// What the console knows about a step beyond the event stream (from the runbook and the action catalogue).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepNote {
    pub doc: Option<String>,
    /// The action moves traffic or replaces something in use: approving requires typing `confirm_name`.
    pub destructive: bool,
    /// The resource name to type (the step id when no resource name is obvious).
    pub confirm_name: String,
    /// What `confirm_name` is, said in the popup ("the instance that will be stopped").
    pub confirm_what: String,
    /// Steps whose parameters use this step's outputs (`${steps.ID.OUTPUT}`), with the references they use:
    /// skipping this step makes them fail.
    pub needed_by: Vec<(String, Vec<String>)>,
}

pub type StepNotes = HashMap<String, StepNote>;

/// Parameters that name the resource a destructive step acts on, in order of preference.
const RESOURCE_PARAMS: &[&str] = &[
    "record",
    "record_name",
    "name",
    "volume",
    "volume_id",
    "instance",
    "instance_id",
    "load_balancer",
    "target_group",
    "zone",
    "hosted_zone",
    "resource",
];

/// Destructive actions whose confirmation names a particular parameter: the thing the operator must know is hit.
const CONFIRM_TARGETS: &[(&str, &str, &str)] = &[
    ("ebs.swap_volume", "instance", "the instance that will be stopped"),
    ("route53.upsert", "record", "the record whose traffic moves"),
    ("route53.upsert", "name", "the record whose traffic moves"),
];

/// Step notes from a runbook: docs, and for destructive actions the name the operator must type.
pub fn notes_from_runbook(rb: &Runbook, registry: &Registry) -> StepNotes {
    /// What is known before the run: variables, target and runbook fields (not step outputs or the run id).
    struct Static<'a>(&'a Runbook, bool);
    impl Scope for Static<'_> {
        fn lookup(&self, path: &[String]) -> Option<Value> {
            let (rb, with_vars) = (self.0, self.1);
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let s = |x: &str| Some(Value::String(x.to_string()));
            match p.as_slice() {
                // variables may refer to the target and runbook (not to other variables)
                ["vars", name] if with_vars => interp::render_value(rb.vars.get(*name)?, &Static(rb, false)).ok(),
                ["target", "primary"] => s(&rb.target.primary),
                ["target", "secondary"] => s(&rb.target.secondary),
                ["target", "account"] => rb.target.account.as_deref().and_then(s),
                ["runbook", "name"] => s(&rb.meta.name),
                ["runbook", "app"] => s(&rb.meta.app),
                _ => None,
            }
        }
    }
    rb.steps
        .iter()
        .map(|st| {
            let destructive = registry.get(&st.action).is_some_and(|a| a.spec().effect == ActionEffect::Destructive);
            let known = |k: &str| match interp::render_value(st.with.get(k)?, &Static(rb, true)) {
                Ok(Value::String(s)) if !s.is_empty() && !s.contains(char::is_whitespace) => Some(s),
                _ => None,
            };
            let target = CONFIRM_TARGETS
                .iter()
                .filter(|(action, _, _)| *action == st.action)
                .find_map(|(_, k, what)| Some((known(k)?, (*what).to_string())));
            let (confirm_name, confirm_what) = target
                .or_else(|| RESOURCE_PARAMS.iter().find_map(|k| Some((known(k)?, format!("its `{k}`")))))
                .unwrap_or_else(|| (st.id.clone(), "the step id".to_string()));
            let needed_by = rb
                .steps
                .iter()
                .filter_map(|other| {
                    let refs: Vec<String> = other
                        .with
                        .values()
                        .flat_map(interp::references)
                        .filter_map(Result::ok)
                        .filter(|p| p.len() >= 2 && p[0] == "steps" && p[1] == st.id)
                        .map(|p| format!("${{{}}}", p.join(".")))
                        .collect();
                    (!refs.is_empty()).then(|| (other.id.clone(), dedup(refs)))
                })
                .collect();
            (st.id.clone(), StepNote { doc: st.doc.clone(), destructive, confirm_name, confirm_what, needed_by })
        })
        .collect()
}

/// In a drill, a traffic step writes the drill record, not the production one: its typed confirmation names
/// the drill record (`crate::drill::record_for`), known once the run has its id.
pub fn drill_notes(notes: &mut StepNotes, rb: &Runbook, run_id: &str) {
    if !rb.meta.drill {
        return;
    }
    let short = crate::drill::short_id(run_id);
    for st in &rb.steps {
        if let Some(n) = notes.get_mut(&st.id)
            && n.destructive
            && CONFIRM_TARGETS.iter().any(|(a, _, what)| *a == st.action && *what == n.confirm_what)
            && st.action == "route53.upsert"
        {
            n.confirm_name = crate::drill::record_for(rb.meta.drill_record.as_deref(), &n.confirm_name, &short);
            n.confirm_what = "the drill record; production is untouched".into();
        }
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// How the console is set up.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    pub theme: Theme,
    /// Who answers, recorded in approvals: `user@host`.
    pub operator: String,
    pub notes: StepNotes,
    /// Events of the run's earlier sessions (a resume): shown as they were before the live stream starts.
    pub history: Vec<Event>,
    /// Where the run's state is kept when it is shared (`s3://...`): shown in the header.
    pub shared_state: Option<String>,
    /// `--cleanup-after` on a drill: when the run ends the console asks for the typed run id to clean up.
    pub cleanup_after: bool,
}

impl TuiOptions {
    /// Options with no step notes (watch mode without the runbook: no docs, no destructive names needed).
    pub fn new(theme: Theme, operator: String) -> Self {
        Self { theme, operator, notes: StepNotes::new(), history: Vec::new(), shared_state: None, cleanup_after: false }
    }
}

/// How the console ended.
#[derive(Debug, Clone)]
pub struct TuiExit {
    /// The run's outcome if the console saw it finish.
    pub outcome: Option<Outcome>,
    /// The operator quit while the run was active: the run was interrupted.
    pub interrupted: bool,
    /// The operator confirmed a drill's cleanup by typing its run id: the caller runs it (`crate::cleanup`).
    pub cleanup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("the terminal failed: {0}")]
    Io(#[from] std::io::Error),
}

/// At most 60 frames a second.
const FRAME: Duration = Duration::from_millis(16);

/// Whether the console owns the terminal (the panic hook restores it only then).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();
/// Held while a frame is drawn; the panic hook takes it so no frame lands after the terminal is restored.
static DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(out, terminal::EndSynchronizedUpdate, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
}

/// Owns raw mode and the alternate screen; dropping it restores the terminal (every return path, `?`, unwinding).
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // a panic anywhere (the driver or any tokio task) must not leave a live UI over a dead engine:
                // restore the terminal, report, and exit
                if ACTIVE.swap(false, Ordering::SeqCst) {
                    // wait for a frame being drawn on another thread (not for long: it may be this thread's)
                    let mut held = None;
                    for _ in 0..50 {
                        if let Ok(g) = DRAW.try_lock() {
                            held = Some(g);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    restore_terminal();
                    previous(info);
                    drop(held);
                    std::process::exit(101);
                }
                previous(info);
            }));
        });
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = TerminalGuard;
        // cleared here rather than by `Terminal::clear`, which asks the terminal where its cursor is: an answer a
        // console started after another (the opening screen, then the run) may wait for in vain
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            terminal::Clear(terminal::ClearType::All),
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if ACTIVE.swap(false, Ordering::SeqCst) {
            restore_terminal();
        }
    }
}

/// Run time "now" for a console: from the real time now, as the run view computes it ([`RunView::run_time_at`]:
/// real time itself at speed 1; on a simulated run, the last event's run time plus the real time since it was
/// emitted, scaled). Not from when this process read the event: a watcher reading a journal sees the same "now" as
/// the console driving the run.
///
/// The clock moves on whole real seconds: every console ticks just after each second of real time and shows the
/// run time of that second, so two consoles (the driver and a watcher) show the same RTO left at any `--speed`,
/// not values a tick's phase apart (a second of real time is 100 s of run time at `--speed 100`).
fn run_now(view: &crate::run::RunView) -> Option<Timestamp> {
    view.run.as_ref()?;
    let now = Timestamp::now();
    Some(view.run_time_at(Timestamp::from_second(now.as_second()).unwrap_or(now)))
}

/// How long until just after the next whole second of real time (when the consoles' clocks move).
fn until_next_second() -> Duration {
    let into = Timestamp::now().subsec_nanosecond();
    let left = u64::try_from(1_000_000_000 - i64::from(into)).unwrap_or(0);
    Duration::from_nanos(left) + Duration::from_millis(5)
}

async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What the console's driver loop needs of a console's state: the single run's [`State`] and the incident's
/// [`incident::IncidentState`] are driven by the one loop ([`drive`]); they differ in how they take input, draw and
/// say what to send, which this trait names. Events are tagged with their application's index (0 for a single run).
trait Console {
    fn resize(&mut self, w: u16, h: u16);
    /// Real milliseconds since the console started (popup guards, message expiry).
    fn instant(&mut self, ms: u64);
    fn key(&mut self, k: ratatui::crossterm::event::KeyEvent) -> Vec<Out>;
    fn event(&mut self, app: usize, ev: Event);
    /// The event stream of that application ended.
    fn events_closed(&mut self, app: usize);
    /// The run time of this real second, from the run views (the latest of the applications').
    fn tick(&mut self);
    fn animating(&self) -> bool;
    fn wakeup(&self) -> Option<u64>;
    /// Whether that application's run is still going (a signal interrupts it).
    fn active(&self, app: usize) -> bool;
    fn draw(&self, theme: &Theme, frame: &mut ratatui::Frame);
}

/// What a key asks the driver to do.
enum Out {
    Send(usize, Command),
    Quit,
}

impl Console for State {
    fn resize(&mut self, w: u16, h: u16) {
        self.handle(Input::Resize(w, h));
    }
    fn instant(&mut self, ms: u64) {
        self.handle(Input::Instant(ms));
    }
    fn key(&mut self, k: ratatui::crossterm::event::KeyEvent) -> Vec<Out> {
        self.handle(Input::Key(k))
            .into_iter()
            .map(|e| match e {
                Effect::Send(cmd) => Out::Send(0, cmd),
                Effect::Quit => Out::Quit,
            })
            .collect()
    }
    fn event(&mut self, _: usize, ev: Event) {
        self.handle(Input::Event(Box::new(ev)));
    }
    fn events_closed(&mut self, _: usize) {
        self.handle(Input::EventsClosed);
    }
    fn tick(&mut self) {
        if let Some(now) = run_now(&self.view) {
            self.handle(Input::Tick(now));
        }
    }
    fn animating(&self) -> bool {
        State::animating(self)
    }
    fn wakeup(&self) -> Option<u64> {
        State::wakeup(self)
    }
    fn active(&self, _: usize) -> bool {
        State::active(self)
    }
    fn draw(&self, theme: &Theme, frame: &mut ratatui::Frame) {
        frame.render_widget(view::Screen { state: self, theme }, frame.area());
    }
}

impl Console for incident::IncidentState {
    fn resize(&mut self, w: u16, h: u16) {
        self.handle(incident::IncidentInput::Resize(w, h));
    }
    fn instant(&mut self, ms: u64) {
        self.handle(incident::IncidentInput::Instant(ms));
    }
    fn key(&mut self, k: ratatui::crossterm::event::KeyEvent) -> Vec<Out> {
        self.handle(incident::IncidentInput::Key(k))
            .into_iter()
            .map(|e| match e {
                incident::IncidentEffect::Send(i, cmd) => Out::Send(i, cmd),
                incident::IncidentEffect::Quit => Out::Quit,
            })
            .collect()
    }
    fn event(&mut self, app: usize, ev: Event) {
        self.handle(incident::IncidentInput::Event(app, Box::new(ev)));
    }
    fn events_closed(&mut self, app: usize) {
        self.handle(incident::IncidentInput::EventsClosed(app));
    }
    fn tick(&mut self) {
        // one simulated world (or the real clock) for every application: the latest "now" of them
        if let Some(now) = self.apps.iter().filter_map(|a| run_now(&a.state.view)).max() {
            self.handle(incident::IncidentInput::Tick(now));
        }
    }
    fn animating(&self) -> bool {
        incident::IncidentState::animating(self)
    }
    fn wakeup(&self) -> Option<u64> {
        incident::IncidentState::wakeup(self)
    }
    fn active(&self, app: usize) -> bool {
        self.apps.get(app).is_some_and(|a| a.state.active())
    }
    fn draw(&self, theme: &Theme, frame: &mut ratatui::Frame) {
        frame.render_widget(incident::IncidentScreen { state: self, theme }, frame.area());
    }
}

/// The console's driver loop, for a single run and an incident alike: owns the terminal, selects over input, every
/// application's engine events, a tick on each real second (only while something animates), a wake-up (a popup's
/// guard ends, a message expires) and SIGTERM/Ctrl-C; draws only when something changed (at most 60 frames a
/// second, each in a synchronized update); sends each command to its application's engine (`None`: read-only).
/// `replay` shows what a resumed run's earlier sessions did, after the first resize. Returns whether the
/// operator's quit (or a signal) interrupted a run.
async fn drive<C: Console>(
    state: &mut C,
    theme: &Theme,
    apps: Vec<(UnboundedReceiver<Event>, Option<UnboundedSender<Command>>)>,
    replay: impl FnOnce(&mut C),
) -> Result<bool, TuiError> {
    let guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = term.size()?;
    state.resize(size.width, size.height);
    replay(state);
    // one channel for every application's events, each tagged with its application's index
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<Event>)>();
    let mut commands = Vec::new();
    for (i, (mut rx, cmd)) in apps.into_iter().enumerate() {
        commands.push(cmd);
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if tx.send((i, Some(ev))).is_err() {
                    return;
                }
            }
            let _ = tx.send((i, None));
        });
    }
    drop(tx);
    let mut input = EventStream::new();
    let mut events_open = true;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut interrupted = false;
    // real time for the state machine: popup guards and message expiry
    let started = Instant::now();
    let wall = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let signal = terminate_signal();
    tokio::pin!(signal);

    'main: loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            let lock = DRAW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !ACTIVE.load(Ordering::SeqCst) {
                // the panic hook restored the terminal and is exiting
                break 'main;
            }
            execute!(std::io::stdout(), terminal::BeginSynchronizedUpdate)?;
            let drawn = term.draw(|f| state.draw(theme, f));
            execute!(std::io::stdout(), terminal::EndSynchronizedUpdate)?;
            drop(lock);
            drawn?;
            dirty = false;
            if cfg!(debug_assertions)
                && last_draw.is_none()
                && std::env::var_os("DRCONSOLE_TEST_PANIC_IN_TASK").is_some()
            {
                // for the end-to-end test of the panic hook (debug builds only): a task panics while the console is up
                tokio::spawn(async { panic!("test panic in a tokio task (DRCONSOLE_TEST_PANIC_IN_TASK)") });
            }
            last_draw = Some(Instant::now());
        }
        // the countdown and elapsed times move once a second while a run is active; nothing moves otherwise
        let animating = state.animating();
        let redraw = if dirty { last_draw.map(|t| FRAME.saturating_sub(t.elapsed())) } else { None };
        // something on screen changes by itself at that real time (a popup's guard ends, a message expires)
        let wake = state.wakeup().map(|t| Duration::from_millis(t.saturating_sub(wall())));
        let mut effects = Vec::new();
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    state.instant(wall());
                    effects = state.key(k);
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    state.resize(w, h);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break 'main,
            },
            ev = events.recv(), if events_open => match ev {
                Some(first) => {
                    state.instant(wall());
                    let mut next = Some(first);
                    // take whatever else is queued before drawing (a fast simulator emits bursts)
                    for _ in 0..4096 {
                        let Some((i, ev)) = next.take() else { break };
                        match ev {
                            Some(ev) => state.event(i, ev),
                            None => state.events_closed(i),
                        }
                        next = events.try_recv().ok();
                    }
                    dirty = true;
                }
                None => {
                    events_open = false;
                    dirty = true;
                }
            },
            () = tokio::time::sleep(until_next_second()), if animating => {
                state.tick();
                dirty = true;
            }
            () = tokio::time::sleep(redraw.unwrap_or(Duration::ZERO)), if redraw.is_some() => {}
            () = tokio::time::sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => {
                state.instant(wall());
                dirty = true;
            }
            () = &mut signal => {
                for (i, tx) in commands.iter().enumerate() {
                    if let Some(tx) = tx
                        && state.active(i)
                    {
                        let _ = tx.send(Command::Interrupt);
                        interrupted = true;
                    }
                }
                break 'main;
            }
        }
        for e in effects {
            match e {
                Out::Send(i, cmd) => {
                    if cmd == Command::Interrupt {
                        interrupted = true;
                    }
                    if let Some(Some(tx)) = commands.get(i) {
                        let _ = tx.send(cmd);
                    }
                }
                Out::Quit => break 'main,
            }
        }
    }
    drop(guard);
    Ok(interrupted)
}

/// Runs the console until the operator quits. `commands == None` is read-only watch mode: navigation only (feed
/// it a journal's events; when `events` closes the header says the stream ended). With `commands`, popups answer
/// what the run waits for and quitting an active run sends [`Command::Interrupt`]; after `run` returns, dropping the
/// sender makes an engine still running stop as interrupted.
pub async fn run(
    events: UnboundedReceiver<Event>,
    commands: Option<UnboundedSender<Command>>,
    opts: TuiOptions,
) -> Result<TuiExit, TuiError> {
    let mut state = State::new(opts.notes, opts.operator, commands.is_some());
    state.shared_state = opts.shared_state;
    state.cleanup_after = opts.cleanup_after;
    let history = opts.history;
    // a resumed run: what earlier sessions did (steps done, the recovery point chosen) before the live stream
    let interrupted = drive(&mut state, &opts.theme, vec![(events, commands)], |s| s.replay(&history)).await?;
    Ok(TuiExit {
        outcome: state.finished().map(|f| f.outcome),
        interrupted,
        cleanup: state.cleanup == state::CleanupChoice::Confirmed,
    })
}

/// One application of an incident, as the incident console sees it.
pub struct AppLink {
    pub app: String,
    pub events: UnboundedReceiver<Event>,
    /// `None`: read-only (`drconsole watch INCIDENT`); the console is read-only when any application's is.
    pub commands: Option<UnboundedSender<Command>>,
    pub notes: StepNotes,
    /// Events of the run's earlier sessions (a resumed incident).
    pub history: Vec<Event>,
}

/// How the incident console is set up.
#[derive(Debug, Clone)]
pub struct IncidentOptions {
    pub theme: Theme,
    pub operator: String,
    /// The overview's first line.
    pub title: String,
    pub incident_id: String,
}

/// How the incident console ended.
#[derive(Debug, Clone, Copy)]
pub struct IncidentExit {
    /// The operator quit while applications were running: they were interrupted.
    pub interrupted: bool,
}

/// Runs the incident console until the operator quits: the overview, each application's console, the questions
/// of all. Every application's events go to its own console state; a command goes to the engine of the
/// application that produced it. Quitting while applications run sends each of them [`Command::Interrupt`]; after
/// it returns, dropping the senders makes engines still running stop as interrupted. Read-only (`watch`) when an
/// application has no command sender.
pub async fn run_incident(apps: Vec<AppLink>, opts: IncidentOptions) -> Result<IncidentExit, TuiError> {
    let named: Vec<(String, StepNotes)> = apps.iter().map(|a| (a.app.clone(), a.notes.clone())).collect();
    let mut state = if apps.iter().all(|a| a.commands.is_some()) {
        incident::IncidentState::new(opts.title, opts.incident_id, named, &opts.operator)
    } else {
        incident::IncidentState::watching(opts.title, opts.incident_id, named, &opts.operator)
    };
    let mut histories = Vec::new();
    let mut links = Vec::new();
    for a in apps {
        histories.push(a.history);
        links.push((a.events, a.commands));
    }
    let replay = |s: &mut incident::IncidentState| {
        for (c, h) in s.apps.iter_mut().zip(&histories) {
            c.state.replay(h);
        }
    };
    let interrupted = drive(&mut state, &opts.theme, links, replay).await?;
    Ok(IncidentExit { interrupted })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::actions::{Action, ActionCtx, ActionError, ActionSpec, Outputs, ParamKind, ParamSpec, Params};

    struct Cutover;
    static CUTOVER: ActionSpec = ActionSpec {
        name: "test.cutover",
        summary: "moves traffic",
        params: &[
            ParamSpec::req("record", ParamKind::Str, "the record"),
            ParamSpec::opt("region", ParamKind::Region, "where"),
        ],
        outputs: &[],
        iam: &[],
        expected_secs: 60,
        effect: ActionEffect::Destructive,
    };
    #[async_trait]
    impl Action for Cutover {
        fn spec(&self) -> &'static ActionSpec {
            &CUTOVER
        }
        fn plan(&self, _: &Params) -> String {
            String::new()
        }
        async fn run(&self, _: &ActionCtx, _: &Params) -> Result<Outputs, ActionError> {
            Ok(Outputs::new())
        }
    }

    #[test]
    fn a_drills_cut_over_asks_for_the_drill_record() {
        let registry = Registry::builtin();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/cross-sell.toml");
        let mut rb = crate::runbook::load(&path, &registry).unwrap();
        let mut notes = notes_from_runbook(&rb, &registry);
        drill_notes(&mut notes, &rb, "20261121-030000-a1b2");
        assert_eq!(notes["dns"].confirm_name, "cross-sell.example-fin.com", "not a drill: the production record");
        rb.meta.drill = true;
        drill_notes(&mut notes, &rb, "20261121-030000-a1b2");
        assert_eq!(notes["dns"].confirm_name, "drill-a1b2.cross-sell.example-fin.com");
        assert!(notes["dns"].confirm_what.contains("drill record"));
        let mut notes = notes_from_runbook(&rb, &registry);
        rb.meta.drill_record = Some("recovery-{id}-{record}".into());
        drill_notes(&mut notes, &rb, "20261121-030000-a1b2");
        assert_eq!(notes["dns"].confirm_name, "recovery-a1b2-cross-sell.example-fin.com");
    }

    #[test]
    fn an_ebs_swap_asks_for_the_instance_that_will_be_stopped() {
        let registry = Registry::builtin();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/ebs-swap.toml");
        let rb = crate::runbook::load(&path, &registry).unwrap();
        let notes = notes_from_runbook(&rb, &registry);
        assert!(notes["swap"].destructive);
        assert_eq!(notes["swap"].confirm_name, "i-0a1b2c3d4e5f60718");
        assert_eq!(notes["swap"].confirm_what, "the instance that will be stopped");
        assert_eq!(
            notes["pick_snapshot"].needed_by,
            [("swap".to_string(), vec!["${steps.pick_snapshot.id}".to_string()])]
        );
    }

    #[test]
    fn destructive_steps_ask_for_the_resource_name() {
        let mut actions = Registry::builtin().iter().cloned().collect::<Vec<_>>();
        actions.push(Arc::new(Cutover));
        let registry = Registry::new(actions);
        let text = r#"
[runbook]
name = "n"
title = "t"
app = "a"
rto = "1h"
rpo = "1h"
[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"
[vars]
host = "app-${target.secondary}.example.com"
[[step]]
id = "probe"
title = "p"
action = "shell"
doc = "Look first."
[step.with]
command = "true"
[[step]]
id = "flip"
title = "f"
action = "test.cutover"
confirm = true
[step.with]
record = "${vars.host}"
[[step]]
id = "flip2"
title = "f2"
action = "test.cutover"
needs = ["probe"]
[step.with]
record = "${steps.probe.stdout}"
"#;
        let rb = crate::runbook::load_str(std::path::Path::new("t.toml"), text, &registry).unwrap();
        let notes = notes_from_runbook(&rb, &registry);
        assert_eq!(
            notes["probe"],
            StepNote {
                doc: Some("Look first.".into()),
                destructive: false,
                confirm_name: "probe".into(),
                confirm_what: "the step id".into(),
                // flip2 needs probe's stdout: skipping probe makes it fail
                needed_by: vec![("flip2".into(), vec!["${steps.probe.stdout}".into()])],
            }
        );
        assert_eq!(notes["flip"].confirm_name, "app-us-west-2.example.com");
        assert_eq!(notes["flip"].confirm_what, "its `record`");
        assert!(notes["flip"].destructive);
        // a name known only at run time: the step id is typed instead
        assert_eq!(notes["flip2"].confirm_name, "flip2");
        assert!(notes["flip"].needed_by.is_empty());
    }
}
