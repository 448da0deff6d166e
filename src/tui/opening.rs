//! The opening screen of a new run in the console: what is about to run (runbook, backend, account and regions,
//! RTO and RPO, the steps) before anything is sent to the account. `Enter` starts the run, `p` runs the preflight
//! (read-only, [`crate::preflight`]) and shows its verdict and findings here, `q` leaves with nothing started.
//! After a preflight that found failures, `Enter` asks before starting: the run would start work it is known not
//! to be able to finish.
//!
//! [`OpeningState`] is a pure state machine (keys in, [`OpeningReply`] out) and [`OpeningView`] draws it, so both
//! are tested without a terminal; [`run`] is the driver.

use std::time::Duration;

use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget, Wrap};

use super::theme::Theme;
use super::view::{centered, keys_line, popup, trunc};
use super::{TerminalGuard, TuiError};
use crate::preflight::{Report, Status, Verdict};
use crate::runbook::Runbook;
use crate::util::fmt_duration;

/// What the opening screen says of the run about to start.
#[derive(Debug, Clone)]
pub struct Opening {
    pub title: String,
    pub app: String,
    pub runbook: String,
    pub file: String,
    /// `sim` or `aws`.
    pub backend: String,
    pub drill: bool,
    pub account: Option<String>,
    pub primary: String,
    pub secondary: String,
    pub rto: Duration,
    pub rpo: Duration,
    /// (id, title) of every step, in the runbook's order.
    pub steps: Vec<(String, String)>,
    /// The forecast from the runbook's history: `P50 36m17s · P90 41m32s from 6 past runs`, or `no history: from
    /// expected durations` (`crate::forecast`); `None`: not looked up.
    pub forecast: Option<String>,
}

impl Opening {
    pub fn from_runbook(rb: &Runbook) -> Self {
        Self {
            title: rb.meta.title.clone(),
            app: rb.meta.app.clone(),
            runbook: rb.meta.name.clone(),
            file: rb.path().display().to_string(),
            backend: rb.target.backend.as_str().to_string(),
            drill: rb.meta.drill,
            account: rb.target.account.clone(),
            primary: rb.target.primary.clone(),
            secondary: rb.target.secondary.clone(),
            rto: rb.meta.rto,
            rpo: rb.meta.rpo,
            steps: rb.steps.iter().map(|s| (s.id.clone(), s.title.clone())).collect(),
            forecast: None,
        }
    }

    /// With the forecast line of `f`: the critical path on P50 and on P90 durations, and where they come from.
    pub fn with_forecast(
        mut self,
        rb: &Runbook,
        catalog: &dyn crate::runbook::Catalog,
        f: &crate::forecast::Forecast,
    ) -> Self {
        let p = |i: usize, p90: bool| {
            f.step(&rb.steps[i].id).map_or_else(
                || rb.expected(catalog, i),
                |s| Duration::from_secs(if p90 { s.p90_secs } else { s.p50_secs }),
            )
        };
        self.forecast = Some(if f.from_history() {
            let (p50, p90) = (rb.dag.critical_path(|i| p(i, false)).0, rb.dag.critical_path(|i| p(i, true)).0);
            format!("forecast P50 {} · P90 {} {}", fmt_duration(p50), fmt_duration(p90), f.basis_text())
        } else {
            f.basis_text()
        });
        self
    }
}

/// Where the preflight is.
#[derive(Debug, Clone)]
pub enum Check {
    NotRun,
    Running,
    /// Its report, and where the report file was written (or why it was not).
    Done(Box<Report>, Result<String, String>),
    /// It could not run at all (the runtime, the account's credentials...).
    Failed(String),
}

/// What a key asks the driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpeningReply {
    None,
    /// Start the run.
    Start,
    /// Run the preflight.
    Preflight,
    /// Leave; nothing was started.
    Quit,
}

/// How the opening screen ended.
#[derive(Debug, Clone)]
pub struct OpeningExit {
    /// The operator chose to start the run.
    pub start: bool,
    /// The last preflight's verdict and report file, if one ran.
    pub preflight: Option<(Verdict, Result<String, String>)>,
}

#[derive(Debug, Clone)]
pub struct OpeningState {
    pub opening: Opening,
    pub check: Check,
    /// The first finding shown.
    pub scroll: usize,
    /// "Start anyway?" after a preflight that found failures.
    pub confirm_start: bool,
    /// A short message on the keys line (a key that does nothing now says why).
    pub flash: Option<String>,
    /// `?`: the keys of this screen in a popup; any key closes it.
    pub help: bool,
}

impl OpeningState {
    pub fn new(opening: Opening) -> Self {
        Self { opening, check: Check::NotRun, scroll: 0, confirm_start: false, flash: None, help: false }
    }

    /// The findings in the order shown: failures, then warnings, then the checks that passed.
    pub fn findings(&self) -> Vec<&crate::preflight::Finding> {
        let Check::Done(r, _) = &self.check else { return Vec::new() };
        let mut v: Vec<_> = r.findings.iter().collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.status));
        v
    }

    fn not_ready(&self) -> Option<&Report> {
        match &self.check {
            Check::Done(r, _) if r.verdict != Verdict::Ready => Some(r),
            _ => None,
        }
    }

    pub fn key(&mut self, k: &KeyEvent) -> OpeningReply {
        self.flash = None;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c' | 'd')) {
            return OpeningReply::Quit;
        }
        if self.help {
            // the help popup takes the key that closes it
            self.help = false;
            return OpeningReply::None;
        }
        if self.confirm_start {
            self.confirm_start = false;
            return if k.code == KeyCode::Char('y') { OpeningReply::Start } else { OpeningReply::None };
        }
        let running = matches!(self.check, Check::Running);
        match k.code {
            KeyCode::Enter if running => {
                self.flash = Some("the preflight is running: its verdict first (q leaves)".into());
                OpeningReply::None
            }
            KeyCode::Enter if self.not_ready().is_some() => {
                self.confirm_start = true;
                OpeningReply::None
            }
            KeyCode::Enter => OpeningReply::Start,
            KeyCode::Char('p') if running => OpeningReply::None,
            KeyCode::Char('p') => {
                self.check = Check::Running;
                self.scroll = 0;
                OpeningReply::Preflight
            }
            KeyCode::Char('?') => {
                self.help = true;
                OpeningReply::None
            }
            KeyCode::Char('q') | KeyCode::Esc => OpeningReply::Quit,
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll = (self.scroll + 1).min(self.findings().len().saturating_sub(1));
                OpeningReply::None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.scroll = self.scroll.saturating_sub(1);
                OpeningReply::None
            }
            KeyCode::PageDown => {
                self.scroll = (self.scroll + 10).min(self.findings().len().saturating_sub(1));
                OpeningReply::None
            }
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_sub(10);
                OpeningReply::None
            }
            KeyCode::Home | KeyCode::Char('g') => {
                self.scroll = 0;
                OpeningReply::None
            }
            _ => OpeningReply::None,
        }
    }

    /// The preflight's result arrived.
    pub fn checked(&mut self, result: Result<(Report, Result<String, String>), String>) {
        self.check = match result {
            Ok((r, file)) => Check::Done(Box::new(r), file),
            Err(e) => Check::Failed(e),
        };
        self.scroll = 0;
        self.flash = None;
    }

    fn exit(&self, start: bool) -> OpeningExit {
        let preflight = match &self.check {
            Check::Done(r, file) => Some((r.verdict, file.clone())),
            _ => None,
        };
        OpeningExit { start, preflight }
    }
}

fn status_role(s: Status) -> &'static str {
    match s {
        Status::Ok => "step.succeeded",
        Status::Warn => "warning",
        Status::Fail => "danger",
    }
}

fn verdict_role(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "rto.ok",
        Verdict::NotReady | Verdict::WrongAccount => "danger",
    }
}

/// Draws the opening screen.
pub struct OpeningView<'a> {
    pub state: &'a OpeningState,
    pub theme: &'a Theme,
}

impl Widget for OpeningView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, t) = (self.state, self.theme);
        buf.set_style(area, t.get("text"));
        let o = &s.opening;
        let [head, body, foot] =
            Layout::vertical([Constraint::Length(3), Constraint::Min(3), Constraint::Length(1)]).areas(area);
        let w = usize::from(area.width);

        // header: the badges and title, where, the targets
        let mut l1 = vec![match o.backend.as_str() {
            "sim" => Span::styled(" SIMULATOR ", t.get("badge.sim")),
            other => Span::styled(format!(" {} ", other.to_uppercase()), t.get("badge.aws")),
        }];
        l1.push(Span::raw(" "));
        if o.drill {
            l1.push(Span::styled(" DRILL ", t.get("badge.sim")));
            l1.push(Span::raw(" "));
        }
        let right = " NOT STARTED ";
        let used: usize = l1.iter().map(|x| x.content.chars().count()).sum();
        let title = trunc(&format!("{} · {}", o.title, o.app), w.saturating_sub(used + right.len() + 1));
        let pad = w.saturating_sub(used + title.chars().count() + right.len());
        l1.push(Span::styled(title, t.get("title")));
        l1.push(Span::raw(" ".repeat(pad)));
        l1.push(Span::styled(right, t.get("step.awaiting")));
        let account = o.account.as_ref().map_or("no account guard".to_string(), |a| format!("account {a}"));
        let l2 = format!(
            " {account} · {} → {} · RTO {} · RPO {}",
            o.primary,
            o.secondary,
            fmt_duration(o.rto),
            fmt_duration(o.rpo)
        );
        let mut l3 = format!(" runbook {} ({}) · {} steps", o.runbook, o.file, o.steps.len());
        if let Some(f) = &o.forecast {
            // the forecast first: the file name is what gets cut on a narrow screen
            l3 = format!(" {f} · runbook {} · {} steps", o.runbook, o.steps.len());
        }
        Paragraph::new(vec![
            Line::from(l1),
            Line::from(Span::styled(trunc(&l2, w), t.get("text"))),
            Line::from(Span::styled(trunc(&l3, w), t.get("muted"))),
        ])
        .render(head, buf);

        // body: the steps, then the preflight (most of the room once it has findings)
        let findings = s.findings();
        let steps_h = if findings.is_empty() {
            body.height.saturating_sub(if matches!(s.check, Check::Failed(_)) { 4 } else { 3 }).max(3)
        } else {
            u16::try_from(o.steps.len() + 2).unwrap_or(u16::MAX).min(body.height / 3).max(3)
        };
        let [steps_area, check_area] = Layout::vertical([Constraint::Length(steps_h), Constraint::Min(3)]).areas(body);
        let frame = |title: String| {
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .border_style(t.get("border"))
                .title(Span::styled(title, t.get("title")))
        };
        let b = frame(" Steps ".into());
        let inner = b.inner(steps_area);
        b.render(steps_area, buf);
        let room = usize::from(inner.height);
        let iw = usize::from(inner.width);
        let idw = o.steps.iter().map(|(id, _)| id.chars().count()).max().unwrap_or(0).min(24);
        let mut lines: Vec<Line> = Vec::new();
        for (i, (id, title)) in o.steps.iter().enumerate() {
            if lines.len() + 1 == room && o.steps.len() > room {
                lines.push(Line::from(Span::styled(format!(" … and {} more", o.steps.len() - i), t.get("muted"))));
                break;
            }
            lines.push(Line::from(vec![
                Span::styled(format!(" {:>2} ", i + 1), t.get("muted")),
                Span::styled(format!("{:<idw$}", trunc(id, idw)), t.get("step.pending")),
                Span::styled(trunc(&format!("  {title}"), iw.saturating_sub(4 + idw)), t.get("muted")),
            ]));
        }
        Paragraph::new(lines).render(inner, buf);

        let b = frame(" Preflight ".into());
        let inner = b.inner(check_area);
        b.render(check_area, buf);
        let iw = usize::from(inner.width);
        let mut lines: Vec<Line> = Vec::new();
        match &s.check {
            Check::NotRun => lines.push(Line::from(vec![
                Span::styled(" not run: ", t.get("muted")),
                Span::styled("p", t.get("key")),
                Span::styled(" checks every step's preconditions, read-only, before you start", t.get("muted")),
            ])),
            Check::Running => lines.push(Line::from(Span::styled(
                " checking every step's preconditions (read-only)…",
                t.get("step.running"),
            ))),
            Check::Failed(e) => {
                lines.push(Line::from(Span::styled(" the preflight could not run:", t.get("danger"))));
                lines.push(Line::from(Span::styled(format!(" {e}"), t.get("text"))));
            }
            Check::Done(r, file) => {
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(" {} ", r.verdict.as_str().to_uppercase()),
                        t.get(verdict_role(r.verdict)).add_modifier(Modifier::BOLD | Modifier::REVERSED),
                    ),
                    Span::styled(
                        trunc(
                            &format!(
                                " {} ok · {} warn · {} fail · {} not checked · checked {}",
                                r.count(Status::Ok),
                                r.count(Status::Warn),
                                r.count(Status::Fail),
                                r.unchecked.len(),
                                r.checked_at.strftime("%H:%M:%SZ")
                            ),
                            iw.saturating_sub(r.verdict.as_str().len() + 2),
                        ),
                        t.get("text"),
                    ),
                ]));
                let file = match file {
                    Ok(p) => format!(" report {p}"),
                    Err(e) => format!(" no report file: {e}"),
                };
                lines.push(Line::from(Span::styled(trunc(&file, iw), t.get("muted"))));
                // findings are wrapped, never cut mid-sentence: one that does not fit below the others waits for
                // ↓ (the first one shown always starts at the top)
                let room = usize::from(inner.height).saturating_sub(2);
                let rows = |text: usize| text.div_ceil(iw.max(1)).max(1);
                let mut shown = 0;
                for f in findings.iter().skip(s.scroll) {
                    let head = format!(" {:<4} {} ", f.status.as_str(), trunc(&f.step, 18));
                    let rest = format!("{} — {}", f.check, f.found);
                    let pad = " ".repeat(head.chars().count());
                    let todo = (!f.todo.is_empty()).then(|| format!("→ {}", f.todo));
                    let need = rows(head.chars().count() + rest.chars().count())
                        + todo.as_ref().map_or(0, |x| rows(pad.chars().count() + x.chars().count()));
                    if shown > 0 && shown + need > room {
                        break;
                    }
                    lines.push(Line::from(vec![
                        Span::styled(head.clone(), t.get(status_role(f.status))),
                        Span::styled(rest, t.get("text")),
                    ]));
                    if let Some(todo) = todo {
                        lines.push(Line::from(vec![Span::raw(pad), Span::styled(todo, t.get("muted"))]));
                    }
                    shown += need;
                }
            }
        }
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);

        // keys
        let mut keys: Vec<(&str, &str)> = vec![("Enter", "start the run")];
        if !matches!(s.check, Check::Running) {
            keys.push(("p", if matches!(s.check, Check::NotRun) { "preflight" } else { "preflight again" }));
        }
        if !findings.is_empty() {
            keys.push(("↑↓", "findings"));
        }
        keys.push(("?", "help"));
        // narrow screens keep every key: the help says a quit starts nothing
        keys.push(("q", if area.width >= 100 { "quit (nothing started)" } else { "quit" }));
        let mut line = keys_line(&keys, t);
        if let Some(f) = &s.flash {
            line.spans.insert(0, Span::styled(format!("{f}  "), t.get("warning")));
        }
        Paragraph::new(line).render(foot, buf);

        if s.help {
            let rect = centered(area, 70, 11);
            let inner = popup(None, "Keys", "text", t, rect, buf);
            let lines = vec![
                keys_line(&[("Enter", "start the run (after a preflight that is not ready, it asks first)")], t),
                keys_line(&[("p", "preflight: every step's preconditions, read-only")], t),
                keys_line(&[("↑ ↓ j k", "scroll the findings, one at a time")], t),
                keys_line(&[("PgUp PgDn g", "scroll by ten, back to the first")], t),
                keys_line(&[("q Esc ^c", "leave: nothing is started, no run is recorded")], t),
                Line::default(),
                Line::from(Span::styled("any key closes this", t.get("muted"))),
            ];
            Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
        }
        if s.confirm_start
            && let Some(r) = s.not_ready()
        {
            let rect = centered(area, 66, 6);
            let inner = popup(None, "Start anyway?", "danger", t, rect, buf);
            let lines = vec![
                Line::from(Span::styled(
                    match r.verdict {
                        Verdict::WrongAccount => {
                            "The preflight says WRONG ACCOUNT: the credentials are not the runbook's.".to_string()
                        }
                        _ => format!(
                            "The preflight says {}: {} failed check{}.",
                            r.verdict.as_str().to_uppercase(),
                            r.count(Status::Fail),
                            if r.count(Status::Fail) == 1 { "" } else { "s" }
                        ),
                    },
                    t.get("danger"),
                )),
                Line::from(Span::styled(
                    "The run would start work it is known not to be able to finish.",
                    t.get("text"),
                )),
                keys_line(&[("y", "start anyway"), ("any other key", "back")], t),
            ];
            Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
        }
    }
}

/// Runs the opening screen until the operator starts the run or leaves. `preflight` starts a preflight and
/// returns where its result will arrive (it runs on a thread of its own: the screen keeps answering keys).
pub async fn run<F>(opening: Opening, theme: &Theme, mut preflight: F) -> Result<OpeningExit, TuiError>
where
    F: FnMut() -> tokio::sync::oneshot::Receiver<Result<(Report, Result<String, String>), String>>,
{
    let guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut state = OpeningState::new(opening);
    let mut input = EventStream::new();
    let mut pending: Option<tokio::sync::oneshot::Receiver<_>> = None;
    let signal = super::terminate_signal();
    tokio::pin!(signal);
    let exit = loop {
        term.draw(|f| f.render_widget(OpeningView { state: &state, theme }, f.area()))?;
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => match state.key(&k) {
                    OpeningReply::Start => break state.exit(true),
                    OpeningReply::Quit => break state.exit(false),
                    OpeningReply::Preflight => pending = Some(preflight()),
                    OpeningReply::None => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break state.exit(false),
            },
            r = async {
                match pending.as_mut() {
                    Some(p) => p.await,
                    None => std::future::pending().await,
                }
            }, if pending.is_some() => {
                pending = None;
                state.checked(r.unwrap_or_else(|_| Err("the preflight stopped unexpectedly".into())));
            }
            () = &mut signal => break state.exit(false),
        }
    };
    drop(guard);
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> Opening {
        Opening {
            title: "Demo".into(),
            app: "demo".into(),
            runbook: "demo".into(),
            file: "demo.toml".into(),
            backend: "sim".into(),
            drill: false,
            account: None,
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            rto: Duration::from_secs(3600),
            rpo: Duration::from_secs(900),
            steps: vec![("a".into(), "A".into())],
            forecast: None,
        }
    }

    fn report(verdict: Verdict) -> Report {
        Report {
            runbook: "demo".into(),
            title: "Demo".into(),
            app: "demo".into(),
            file: "demo.toml".into(),
            backend: "sim".into(),
            account: None,
            identity: None,
            primary: "us-east-1".into(),
            secondary: "us-west-2".into(),
            rto_secs: 3600,
            rpo_secs: 900,
            checked_at: jiff::Timestamp::UNIX_EPOCH,
            verdict,
            findings: Vec::new(),
            unchecked: Vec::new(),
            refused_calls: std::collections::BTreeMap::new(),
            inventory: None,
        }
    }

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn question_mark_shows_the_keys_and_the_next_key_only_closes_them() {
        let mut s = OpeningState::new(opening());
        assert_eq!(s.key(&k(KeyCode::Char('?'))), OpeningReply::None);
        assert!(s.help);
        // q closes the help, it does not leave; Enter then starts
        assert_eq!(s.key(&k(KeyCode::Char('q'))), OpeningReply::None);
        assert!(!s.help);
        assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::Start);
    }

    #[test]
    fn enter_starts_at_once_without_a_preflight_and_q_or_ctrl_c_leave() {
        let mut s = OpeningState::new(opening());
        assert_eq!(s.key(&k(KeyCode::Char('x'))), OpeningReply::None);
        assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::Start);
        assert_eq!(s.key(&k(KeyCode::Char('q'))), OpeningReply::Quit);
        assert_eq!(s.key(&k(KeyCode::Esc)), OpeningReply::Quit);
        assert_eq!(s.key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), OpeningReply::Quit);
        assert!(s.exit(false).preflight.is_none());
    }

    #[test]
    fn a_ready_verdict_starts_on_enter_and_a_not_ready_one_needs_y() {
        let mut s = OpeningState::new(opening());
        assert_eq!(s.key(&k(KeyCode::Char('p'))), OpeningReply::Preflight);
        assert_eq!(s.key(&k(KeyCode::Char('p'))), OpeningReply::None, "one preflight at a time");
        s.checked(Ok((report(Verdict::Ready), Ok("r.md".into()))));
        assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::Start);
        assert_eq!(s.exit(true).preflight.map(|p| p.0), Some(Verdict::Ready));

        for v in [Verdict::NotReady, Verdict::WrongAccount] {
            let mut s = OpeningState::new(opening());
            s.key(&k(KeyCode::Char('p')));
            s.checked(Ok((report(v), Err("read-only file system".into()))));
            assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::None);
            assert!(s.confirm_start);
            assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::None, "Enter again is not y");
            assert!(!s.confirm_start);
            s.key(&k(KeyCode::Enter));
            assert_eq!(s.key(&k(KeyCode::Char('y'))), OpeningReply::Start);
        }
    }

    #[test]
    fn a_preflight_that_could_not_run_does_not_block_the_start() {
        let mut s = OpeningState::new(opening());
        s.key(&k(KeyCode::Char('p')));
        s.checked(Err("no credentials".into()));
        assert!(matches!(s.check, Check::Failed(_)));
        assert_eq!(s.key(&k(KeyCode::Enter)), OpeningReply::Start);
    }
}
