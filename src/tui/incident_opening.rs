//! The opening screen of a new incident in the console (as a single run's [`super::opening`]): the incident, its
//! applications, one row each with its RTO, RPO, steps and its own preflight verdict. `p` runs every
//! application's preflight (read-only, each on a thread of its own: the screen keeps answering), `Enter` starts the
//! incident (after a verdict other than ready it asks first), `q` leaves with nothing started and no run recorded.
//! A resumed incident skips it.
//!
//! [`IncidentOpeningState`] is a pure state machine (keys in, [`OpeningReply`] out), [`IncidentOpeningView`] draws
//! it; [`run`] is the driver.

use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::opening::{Check, Opening, OpeningReply};
use super::theme::Theme;
use super::view::{centered, keys_line, popup, trunc};
use super::{TerminalGuard, TuiError};
use crate::preflight::{Report, Status, Verdict};
use crate::util::fmt_duration;

/// A preflight's result: its report and where the report file was written (or why not), or why it could not run.
pub type Checked = Result<(Report, Result<String, String>), String>;

#[derive(Debug, Clone)]
pub struct IncidentOpeningState {
    /// The incident's title.
    pub title: String,
    /// `sim` or `aws`.
    pub backend: String,
    /// Each application's opening and its preflight, in the incident's order.
    pub apps: Vec<(Opening, Check)>,
    /// "Start anyway?" after a preflight that was not ready.
    pub confirm_start: bool,
    pub flash: Option<String>,
}

/// How the incident's opening screen ended.
#[derive(Debug, Clone)]
pub struct IncidentOpeningExit {
    pub start: bool,
    /// Each application's last preflight verdict and report file, if one ran.
    pub preflights: Vec<(String, Verdict, Result<String, String>)>,
}

impl IncidentOpeningState {
    pub fn new(title: String, backend: String, apps: Vec<Opening>) -> Self {
        Self {
            title,
            backend,
            apps: apps.into_iter().map(|o| (o, Check::NotRun)).collect(),
            confirm_start: false,
            flash: None,
        }
    }

    fn running(&self) -> bool {
        self.apps.iter().any(|(_, c)| matches!(c, Check::Running))
    }

    /// The applications whose last preflight was not ready (or could not run).
    pub fn not_ready(&self) -> Vec<&str> {
        self.apps
            .iter()
            .filter(|(_, c)| match c {
                Check::Done(r, _) => r.verdict != Verdict::Ready,
                Check::Failed(_) => true,
                _ => false,
            })
            .map(|(o, _)| o.app.as_str())
            .collect()
    }

    pub fn key(&mut self, k: &KeyEvent) -> OpeningReply {
        self.flash = None;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c' | 'd')) {
            return OpeningReply::Quit;
        }
        if self.confirm_start {
            self.confirm_start = false;
            return if k.code == KeyCode::Char('y') { OpeningReply::Start } else { OpeningReply::None };
        }
        let running = self.running();
        match k.code {
            KeyCode::Enter if running => {
                self.flash = Some("the preflights are running: their verdicts first (q leaves)".into());
                OpeningReply::None
            }
            KeyCode::Enter if !self.not_ready().is_empty() => {
                self.confirm_start = true;
                OpeningReply::None
            }
            KeyCode::Enter => OpeningReply::Start,
            KeyCode::Char('p') if running => OpeningReply::None,
            KeyCode::Char('p') => {
                for (_, c) in &mut self.apps {
                    *c = Check::Running;
                }
                OpeningReply::Preflight
            }
            KeyCode::Char('q') | KeyCode::Esc => OpeningReply::Quit,
            _ => OpeningReply::None,
        }
    }

    /// The preflight of the application at `i` ended.
    pub fn checked(&mut self, i: usize, result: Checked) {
        if let Some((_, c)) = self.apps.get_mut(i) {
            *c = match result {
                Ok((r, file)) => Check::Done(Box::new(r), file),
                Err(e) => Check::Failed(e),
            };
        }
    }

    fn exit(&self, start: bool) -> IncidentOpeningExit {
        let preflights = self
            .apps
            .iter()
            .filter_map(|(o, c)| match c {
                Check::Done(r, file) => Some((o.app.clone(), r.verdict, file.clone())),
                _ => None,
            })
            .collect();
        IncidentOpeningExit { start, preflights }
    }
}

/// One application's preflight in a cell: its verdict, the counts, the first failure.
fn verdict_cell<'a>(c: &Check, t: &Theme) -> (Line<'a>, Option<String>) {
    match c {
        Check::NotRun => (Line::from(Span::styled("not run", t.get("muted"))), None),
        Check::Running => (Line::from(Span::styled("checking…", t.get("step.running"))), None),
        Check::Failed(e) => (Line::from(Span::styled("COULD NOT RUN", t.get("danger"))), Some(e.clone())),
        Check::Done(r, _) => {
            let role = if r.verdict == Verdict::Ready { "rto.ok" } else { "danger" };
            let first = r
                .findings
                .iter()
                .find(|f| f.status == Status::Fail)
                .or_else(|| r.findings.iter().find(|f| f.status == Status::Warn))
                .map(|f| format!("{} {} {} — {}", f.status.as_str(), f.step, f.check, f.found));
            (
                Line::from(vec![
                    Span::styled(
                        format!(" {} ", r.verdict.as_str().to_uppercase()),
                        t.get(role).add_modifier(Modifier::BOLD | Modifier::REVERSED),
                    ),
                    Span::styled(
                        format!(" {} fail · {} warn", r.count(Status::Fail), r.count(Status::Warn)),
                        t.get("text"),
                    ),
                ]),
                first,
            )
        }
    }
}

/// Draws the incident's opening screen.
pub struct IncidentOpeningView<'a> {
    pub state: &'a IncidentOpeningState,
    pub theme: &'a Theme,
}

impl Widget for IncidentOpeningView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, t) = (self.state, self.theme);
        buf.set_style(area, t.get("text"));
        let w = usize::from(area.width);
        let wide = area.width >= 120;
        let [head, body, notes, foot] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Min(4),
            // once a preflight ran: each application's first finding, wrapped (two rows each at most)
            Constraint::Length(if s.apps.iter().any(|(_, c)| !matches!(c, Check::NotRun)) {
                u16::try_from(s.apps.len() * 2 + 1).unwrap_or(u16::MAX).min(area.height / 2)
            } else {
                2
            }),
            Constraint::Length(1),
        ])
        .areas(area);
        let badge = match s.backend.as_str() {
            "sim" => Span::styled(" SIMULATOR ", t.get("badge.sim")),
            other => Span::styled(format!(" {} ", other.to_uppercase()), t.get("badge.aws")),
        };
        let right = " NOT STARTED ";
        let title = trunc(&s.title, w.saturating_sub(right.len() + 13));
        let pad = w.saturating_sub(11 + 1 + title.chars().count() + right.len());
        let regions: Vec<String> = {
            let mut v: Vec<String> = s.apps.iter().map(|(o, _)| format!("{} → {}", o.primary, o.secondary)).collect();
            v.dedup();
            v
        };
        Paragraph::new(vec![
            Line::from(vec![
                badge,
                Span::raw(" "),
                Span::styled(title, t.get("title")),
                Span::raw(" ".repeat(pad)),
                Span::styled(right, t.get("step.awaiting")),
            ]),
            Line::from(Span::styled(
                trunc(&format!(" {} applications · {}", s.apps.len(), regions.join(", ")), w),
                t.get("text"),
            )),
        ])
        .render(head, buf);

        let mut header = vec!["APPLICATION", "RTO", "RPO", "STEPS", "PREFLIGHT"];
        if wide {
            header.insert(1, "RUNBOOK");
        }
        let rows = s.apps.iter().map(|(o, c)| {
            let mut cells = vec![Cell::from(o.app.clone())];
            if wide {
                cells.push(Cell::from(trunc(&o.file, 40)));
            }
            cells.push(Cell::from(fmt_duration(o.rto)));
            cells.push(Cell::from(fmt_duration(o.rpo)));
            cells.push(Cell::from(o.steps.len().to_string()));
            cells.push(Cell::from(verdict_cell(c, t).0));
            Row::new(cells)
        });
        let mut widths = vec![Constraint::Length(22)];
        if wide {
            widths.push(Constraint::Length(42));
        }
        widths.extend([Constraint::Length(8), Constraint::Length(8), Constraint::Length(6), Constraint::Min(20)]);
        Table::new(rows, widths)
            .header(Row::new(header).style(t.get("muted").add_modifier(Modifier::BOLD)))
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .border_style(t.get("border"))
                    .title(" applications, each with its own preflight "),
            )
            .render(body, buf);

        // what each application's preflight found first, wrapped (never cut mid-sentence)
        let mut lines: Vec<Line> = Vec::new();
        if s.apps.iter().all(|(_, c)| matches!(c, Check::NotRun)) {
            lines.push(Line::from(vec![
                Span::styled("p", t.get("key")),
                Span::styled(" runs every application's preflight, read-only, before you start", t.get("muted")),
            ]));
        } else {
            for (o, c) in &s.apps {
                if let (_, Some(first)) = verdict_cell(c, t) {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{}: ", o.app), t.get("title")),
                        Span::styled(first, t.get("text")),
                    ]));
                }
            }
            if lines.is_empty() && !s.running() {
                lines.push(Line::from(Span::styled(
                    "every preflight is clean; reports in the state directory's preflight/",
                    t.get("muted"),
                )));
            }
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP).border_style(t.get("border")))
            .render(notes, buf);

        let mut keys: Vec<(&str, &str)> = vec![("Enter", "start the incident")];
        if !s.running() {
            keys.push(("p", "preflight every application"));
        }
        keys.push(("q", if area.width >= 100 { "quit (nothing started)" } else { "quit" }));
        let mut line = keys_line(&keys, t);
        if let Some(f) = &s.flash {
            line.spans.insert(0, Span::styled(format!("{f}  "), t.get("warning")));
        }
        Paragraph::new(line).render(foot, buf);

        if s.confirm_start {
            let bad = s.not_ready();
            let rect = centered(area, 66, 6);
            let inner = popup(None, "Start anyway?", "danger", t, rect, buf);
            let lines = vec![
                Line::from(Span::styled(
                    format!("The preflight is not ready for: {}.", bad.join(", ")),
                    t.get("danger"),
                )),
                Line::from(Span::styled(
                    "Those applications would start work they are known not to be able to finish.",
                    t.get("text"),
                )),
                keys_line(&[("y", "start anyway"), ("any other key", "back")], t),
            ];
            Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
        }
    }
}

/// Runs the incident's opening screen until the operator starts the incident or leaves. `preflight(i)` starts the
/// preflight of the application at `i` and returns where its result will arrive (on a thread of its own).
pub async fn run<F>(
    mut state: IncidentOpeningState,
    theme: &Theme,
    mut preflight: F,
) -> Result<IncidentOpeningExit, TuiError>
where
    F: FnMut(usize) -> tokio::sync::oneshot::Receiver<Checked>,
{
    let guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut input = EventStream::new();
    let (tx, mut results) = tokio::sync::mpsc::unbounded_channel::<(usize, Checked)>();
    let signal = super::terminate_signal();
    tokio::pin!(signal);
    let exit = loop {
        term.draw(|f| f.render_widget(IncidentOpeningView { state: &state, theme }, f.area()))?;
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => match state.key(&k) {
                    OpeningReply::Start => break state.exit(true),
                    OpeningReply::Quit => break state.exit(false),
                    OpeningReply::Preflight => {
                        for i in 0..state.apps.len() {
                            let rx = preflight(i);
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                let r = rx.await.unwrap_or_else(|_| Err("the preflight stopped unexpectedly".into()));
                                let _ = tx.send((i, r));
                            });
                        }
                    }
                    OpeningReply::None => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break state.exit(false),
            },
            Some((i, r)) = results.recv() => state.checked(i, r),
            () = &mut signal => break state.exit(false),
        }
    };
    drop(guard);
    Ok(exit)
}
