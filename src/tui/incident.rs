//! The incident console's state machine: one single-run console [`State`] per application (fed by that
//! application's events only), the overview of them all ([`crate::incident::overview`]), and which screen is shown.
//! Pure, like [`super::state`]: keys, events and ticks in, effects out (a command for one application's engine, or
//! quit); the driver ([`super::run_incident`]) sends them.
//!
//! Rules: a key reaches one layer only (the incident's quit popup, else the shown application's console, else the
//! overview); a command goes only to the engine of the application whose console produced it; an application's
//! popup is drawn only over that application's screen, and its title names the application; the questions of
//! the other applications are named on a bar below it.

use jiff::Timestamp;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::state::{Effect, Input, State};
use super::{StepNotes, Theme, keymap};
use crate::incident::overview::{self, OverviewRow};
use crate::run::{Candidate, Command, Event, Prompt};

/// One application's console inside the incident.
#[derive(Debug, Clone)]
pub struct AppConsole {
    pub app: String,
    pub state: State,
}

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Overview,
    /// The console of the application at this index of [`IncidentState::apps`].
    App(usize),
}

/// What the incident console is given.
#[derive(Debug, Clone)]
pub enum IncidentInput {
    /// An engine event of the application at this index.
    Event(usize, Box<Event>),
    Key(KeyEvent),
    /// The current run time (every application of an incident runs on one clock).
    Tick(Timestamp),
    Resize(u16, u16),
    /// Real milliseconds since the console started (as [`Input::Instant`]).
    Instant(u64),
    /// The event stream of the application at this index ended.
    EventsClosed(usize),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEffect {
    /// Send a command to the engine of the application at this index.
    Send(usize, Command),
    Quit,
}

/// What `L` proposes: for each application asking for a recovery point, the point it would get (or none), and
/// the answers `y` sends (application index, command).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub rows: Vec<ProposalRow>,
    pub answers: Vec<(usize, Command)>,
}

/// One application's line of a [`Proposal`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalRow {
    pub app: String,
    pub step: String,
    /// The newest point in its secondary region meeting its RPO; `None`: it has none (it chooses on its screen).
    pub point: Option<Candidate>,
    pub secondary: String,
    pub rpo_secs: u64,
}

/// Everything the incident console shows.
#[derive(Debug, Clone)]
pub struct IncidentState {
    pub title: String,
    pub incident_id: String,
    /// In the incident's order (the record's); the overview sorts them by urgency.
    pub apps: Vec<AppConsole>,
    pub shown: Shown,
    /// The application selected on the overview (by name: the rows move as urgency changes).
    selected: Option<String>,
    /// The quit question is open (it covers whatever screen is shown).
    pub quitting: bool,
    /// A one-line message on the overview (the last key's result).
    pub flash: Option<String>,
    /// `L` on the overview: the whole proposal, shown in a popup, and the answers `y` sends.
    pub latest: Option<Proposal>,
    /// The console drives the applications' engines; `false` for `drconsole watch INCIDENT` (read-only: keys that
    /// act say so and do nothing, `q` leaves without interrupting anything).
    pub control: bool,
}

impl IncidentState {
    /// `apps`: (application, its step notes), in the incident's order.
    pub fn new(title: String, incident_id: String, apps: Vec<(String, StepNotes)>, operator: &str) -> Self {
        Self::with_control(title, incident_id, apps, operator, true)
    }

    /// The read-only board of `drconsole watch INCIDENT`: the same screens, nothing can be answered.
    pub fn watching(title: String, incident_id: String, apps: Vec<(String, StepNotes)>, operator: &str) -> Self {
        Self::with_control(title, incident_id, apps, operator, false)
    }

    fn with_control(
        title: String,
        incident_id: String,
        apps: Vec<(String, StepNotes)>,
        operator: &str,
        control: bool,
    ) -> Self {
        let apps = apps
            .into_iter()
            .map(|(app, notes)| {
                let mut state = State::new(notes, operator.to_string(), control);
                state.app = Some(app.clone());
                AppConsole { app, state }
            })
            .collect();
        Self {
            title,
            incident_id,
            apps,
            shown: Shown::Overview,
            selected: None,
            quitting: false,
            flash: None,
            latest: None,
            control,
        }
    }

    /// Run time "now": the latest any application has seen.
    pub fn now(&self) -> Timestamp {
        self.apps.iter().map(|a| a.state.now()).max().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The overview's rows, most urgent first.
    pub fn rows(&self) -> Vec<OverviewRow> {
        overview::rows(self.apps.iter().map(|a| (a.app.as_str(), &a.state.view)), self.now())
    }

    /// The row selected on the overview.
    pub fn selected_row(&self, rows: &[OverviewRow]) -> usize {
        self.selected.as_ref().and_then(|s| rows.iter().position(|r| &r.app == s)).unwrap_or(0)
    }

    fn index_of(&self, app: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.app == app)
    }

    /// Whether any application's run is still going (quitting must interrupt it).
    pub fn active(&self) -> bool {
        self.apps.iter().any(|a| a.state.active())
    }

    /// Whether anything on screen moves by itself (an RTO countdown): the driver ticks only then.
    pub fn animating(&self) -> bool {
        self.apps.iter().any(|a| a.state.animating())
    }

    /// The real time at which something changes by itself (a popup's key guard ends, a message expires).
    pub fn wakeup(&self) -> Option<u64> {
        self.apps.iter().filter_map(|a| a.state.wakeup()).min()
    }

    /// The questions waiting for a person, each naming its application, most urgent first.
    pub fn questions(&self) -> Vec<String> {
        overview::questions(&self.rows())
    }

    pub fn handle(&mut self, input: IncidentInput) -> Vec<IncidentEffect> {
        match input {
            IncidentInput::Event(i, ev) => {
                if let Some(a) = self.apps.get_mut(i) {
                    a.state.handle(Input::Event(ev));
                }
                if self.quitting && !self.active() {
                    // nothing left to interrupt: the question is moot
                    self.quitting = false;
                }
                Vec::new()
            }
            IncidentInput::Key(k) => self.key(k),
            IncidentInput::Tick(now) => {
                for a in &mut self.apps {
                    a.state.handle(Input::Tick(now));
                }
                Vec::new()
            }
            IncidentInput::Resize(w, h) => {
                for a in &mut self.apps {
                    // the application's screen has one row less: the incident's bar is below it
                    a.state.handle(Input::Resize(w, h.saturating_sub(1)));
                }
                Vec::new()
            }
            IncidentInput::Instant(ms) => {
                for a in &mut self.apps {
                    a.state.handle(Input::Instant(ms));
                }
                Vec::new()
            }
            IncidentInput::EventsClosed(i) => {
                if let Some(a) = self.apps.get_mut(i) {
                    a.state.handle(Input::EventsClosed);
                }
                Vec::new()
            }
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<IncidentEffect> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let ctrl_c = ctrl && k.code == KeyCode::Char('c');
        if self.quitting {
            match k.code {
                KeyCode::Char('y' | 'Y') => return self.quit(),
                _ if ctrl_c => return self.quit(),
                _ if keymap::closes_popup(&k) => self.quitting = false,
                _ => {}
            }
            return Vec::new();
        }
        if ctrl_c {
            // Ctrl-C is the incident's, on every screen: it asks, then interrupts every application
            return self.ask_quit();
        }
        if let Some(proposal) = self.latest.take() {
            // the question `L` asked: y sends every answer, anything else sends none
            self.flash = None;
            return if matches!(k.code, KeyCode::Char('y' | 'Y')) {
                proposal.answers.into_iter().map(|(i, cmd)| IncidentEffect::Send(i, cmd)).collect()
            } else {
                self.flash = Some("nothing chosen".into());
                Vec::new()
            };
        }
        self.flash = None;
        match self.shown {
            Shown::App(i) => {
                let Some(a) = self.apps.get_mut(i) else {
                    self.shown = Shown::Overview;
                    return Vec::new();
                };
                let st = &mut a.state;
                let leaves = !ctrl
                    && st.modal.is_none()
                    && st.search.is_none()
                    && matches!(k.code, KeyCode::Char('q') | KeyCode::Esc);
                if leaves {
                    self.shown = Shown::Overview;
                    return Vec::new();
                }
                let mut out = Vec::new();
                for e in st.handle(Input::Key(k)) {
                    match e {
                        Effect::Send(cmd) => out.push(IncidentEffect::Send(i, cmd)),
                        // the application's console never quits the incident: back to the overview
                        Effect::Quit => self.shown = Shown::Overview,
                    }
                }
                out
            }
            Shown::Overview => {
                let rows = self.rows();
                let cur = self.selected_row(&rows);
                let select = |s: &mut Self, i: usize| {
                    s.selected = rows.get(i.min(rows.len().saturating_sub(1))).map(|r| r.app.clone());
                };
                match k.code {
                    KeyCode::Up | KeyCode::Char('k') => select(self, cur.saturating_sub(1)),
                    KeyCode::Down | KeyCode::Char('j') => select(self, cur + 1),
                    KeyCode::Home | KeyCode::Char('g') => select(self, 0),
                    KeyCode::End | KeyCode::Char('G') => select(self, usize::MAX),
                    KeyCode::Enter => {
                        if let Some(r) = rows.get(cur) {
                            let app = r.app.clone();
                            self.open(&app);
                        }
                    }
                    KeyCode::Char('a') => match rows.iter().find(|r| r.rank == 0) {
                        Some(r) => {
                            let app = r.app.clone();
                            self.open(&app);
                        }
                        None => self.flash = Some("no question is waiting".into()),
                    },
                    KeyCode::Char('L') if !self.control => {
                        self.flash = Some("watch mode is read-only: cannot choose recovery points".into());
                    }
                    KeyCode::Char('L') => self.ask_latest(),
                    KeyCode::Char('q') => return self.ask_quit(),
                    _ => {}
                }
                Vec::new()
            }
        }
    }

    /// `L` on the overview: for every application asking for a recovery point, the newest candidate in its
    /// secondary region that meets its RPO (each application's own target), to be sent on `y`; an application
    /// with no such point is named and left to choose on its own screen.
    fn ask_latest(&mut self) {
        let mut answers = Vec::new();
        let mut rows = Vec::new();
        for (i, a) in self.apps.iter().enumerate() {
            if !a.state.control {
                continue;
            }
            let secondary = a.state.view.run.as_ref().map(|r| r.secondary.clone()).unwrap_or_default();
            let rpo_secs = a.state.view.run.as_ref().map_or(0, |r| r.rpo_secs);
            for st in &a.state.view.steps {
                let Some(Prompt::Choice { candidates, .. }) = &st.prompt else { continue };
                let best = candidates.iter().filter(|c| c.rpo_met && c.region == secondary).max_by_key(|c| c.time);
                if let Some(c) = best {
                    let by = a.state.operator.clone();
                    answers.push((i, Command::Answer { step: st.info.id.clone(), value: c.id.clone(), by }));
                }
                rows.push(ProposalRow {
                    app: a.app.clone(),
                    step: st.info.id.clone(),
                    point: best.cloned(),
                    secondary: secondary.clone(),
                    rpo_secs,
                });
            }
        }
        if rows.is_empty() {
            self.flash = Some("no application asks for a recovery point".into());
            return;
        }
        if answers.is_empty() {
            let none: Vec<&str> = rows.iter().map(|r| r.app.as_str()).collect();
            self.flash = Some(format!("nothing to choose (none meets its RPO: {})", none.join(", ")));
            return;
        }
        // the whole proposal in a popup: who gets which point (its age, its RPO verdict), who has none
        self.latest = Some(Proposal { rows, answers });
    }

    /// Shows an application's console, with its waiting question open if it has one.
    fn open(&mut self, app: &str) {
        let Some(i) = self.index_of(app) else { return };
        self.selected = Some(app.to_string());
        self.shown = Shown::App(i);
        self.apps[i].state.attend();
    }

    fn ask_quit(&mut self) -> Vec<IncidentEffect> {
        if self.control && self.active() {
            self.quitting = true;
            Vec::new()
        } else {
            vec![IncidentEffect::Quit]
        }
    }

    /// Interrupts every application still running, then quits.
    fn quit(&mut self) -> Vec<IncidentEffect> {
        self.quitting = false;
        let mut out: Vec<IncidentEffect> = (0..self.apps.len())
            .filter(|&i| self.apps[i].state.active())
            .map(|i| IncidentEffect::Send(i, Command::Interrupt))
            .collect();
        out.push(IncidentEffect::Quit);
        out
    }
}

/// Draws the incident console: the overview, or one application's console with the incident's bar below it.
pub struct IncidentScreen<'a> {
    pub state: &'a IncidentState,
    pub theme: &'a Theme,
}

impl Widget for IncidentScreen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, t) = (self.state, self.theme);
        buf.set_style(area, t.get("text"));
        match s.shown {
            Shown::App(i) if i < s.apps.len() => {
                let a = &s.apps[i];
                let [body, bar] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
                super::view::Screen { state: &a.state, theme: t }.render(body, buf);
                // the other applications' questions, each naming its application
                let others: Vec<String> = s
                    .rows()
                    .iter()
                    .filter(|r| r.rank == 0 && r.app != a.app)
                    .map(|r| format!("[{}] {}", r.app, r.waits_for))
                    .collect();
                let mut spans = vec![
                    Span::styled(" Esc/q", t.get("key")),
                    Span::styled(format!(" overview · {} ", a.app), t.get("muted")),
                ];
                if others.is_empty() {
                    spans.push(Span::styled("· no other application waits", t.get("muted")));
                } else {
                    spans.push(Span::styled(format!("· also waiting: {}", others.join(", ")), t.get("warning")));
                }
                Paragraph::new(Line::from(spans)).render(bar, buf);
            }
            _ => {
                let rows = s.rows();
                let o = super::overview::Overview {
                    title: &s.title,
                    rows: &rows,
                    selected: s.selected_row(&rows),
                    now: s.now(),
                    theme: t,
                    read_only: !s.control,
                };
                (&o).render(area, buf);
                if let Some(f) = &s.flash
                    && area.height > 0
                {
                    let last = Rect { y: area.y + area.height - 1, height: 1, ..area };
                    ratatui::widgets::Clear.render(last, buf);
                    Paragraph::new(Line::from(Span::styled(f.clone(), t.get("warning")))).render(last, buf);
                }
            }
        }
        if let Some(p) = &s.latest {
            latest_popup(p, s.now(), t, area, buf);
        }
        if s.quitting {
            let active: Vec<&str> = s.apps.iter().filter(|a| a.state.active()).map(|a| a.app.as_str()).collect();
            let lines = vec![
                Line::from(Span::styled(
                    format!("{} application(s) still running: {}.", active.len(), active.join(", ")),
                    t.get("text"),
                )),
                Line::from(Span::styled(
                    "Quitting interrupts them: running steps are cancelled, nothing new starts; the exit code is the \
                     worst of the applications' (130 for an interrupted one).",
                    t.get("text"),
                )),
                Line::from(vec![
                    Span::styled("To continue later: ", t.get("text")),
                    Span::styled(format!("drconsole resume {}", s.incident_id), t.get("key")),
                ]),
                Line::default(),
                Line::from(vec![
                    Span::styled("y", t.get("key")),
                    Span::styled(" quit and interrupt   ", t.get("muted")),
                    Span::styled("n q", t.get("key")),
                    Span::styled(" keep going", t.get("muted")),
                ]),
            ];
            super::view::text_popup(
                None,
                "Quit the incident?",
                "danger",
                lines,
                70,
                t,
                super::view::popup_area(area),
                buf,
            );
        }
    }
}

/// The popup of `L`: one line per application asking for a recovery point — the point it would get, its age and
/// its RPO verdict, or that it has none meeting its RPO in its secondary region — and the keys.
fn latest_popup(p: &Proposal, now: Timestamp, t: &Theme, area: Rect, buf: &mut Buffer) {
    let width = p.rows.iter().map(|r| r.app.chars().count()).max().unwrap_or(0);
    let mut lines: Vec<Line> = vec![
        Line::from(Span::styled(
            "The newest point in each application's secondary region that meets its own RPO:",
            t.get("text"),
        )),
        Line::default(),
    ];
    for r in &p.rows {
        let mut spans = vec![Span::styled(format!("{:<width$}  ", r.app), t.get("title"))];
        match &r.point {
            Some(c) => {
                let age = u64::try_from(now.duration_since(c.time).as_secs()).unwrap_or(0);
                spans.push(Span::styled(format!("{} ", c.id), t.get("key")));
                spans.push(Span::styled(format!("({}, {}) ", c.kind, c.region), t.get("muted")));
                spans.push(Span::styled(
                    format!("age {} ", crate::util::fmt_duration(std::time::Duration::from_secs(age))),
                    t.get("text"),
                ));
                spans.push(Span::styled("RPO met", t.get("rpo.met")));
            }
            None => spans.push(Span::styled(
                format!(
                    "none: no point in {} meets its RPO of {} — choose on its screen ({})",
                    r.secondary,
                    crate::util::fmt_duration(std::time::Duration::from_secs(r.rpo_secs)),
                    r.step
                ),
                t.get("warning"),
            )),
        }
        lines.push(Line::from(spans));
    }
    let n = p.answers.len();
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("y", t.get("key")),
        Span::styled(format!(" send to {n} application{}   ", if n == 1 { "" } else { "s" }), t.get("muted")),
        Span::styled("any other key", t.get("key")),
        Span::styled(" cancel", t.get("muted")),
    ]));
    super::view::text_popup(
        None,
        "Latest recovery points",
        "warning",
        lines,
        110,
        t,
        super::view::popup_area(area),
        buf,
    );
}
