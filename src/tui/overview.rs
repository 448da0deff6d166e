//! The incident overview screen, an incident commander's board: on top the time since the incident, the overall
//! projected finish (the latest application's), the deadline and the thinnest margin with its standing (on track,
//! AT RISK, LATE); then one row per application, most urgent first: its projected finish against its own deadline
//! in colour and in words, its RPO verdict as a word, what it is doing or waits for; then the queue of questions,
//! each naming its application. Drawn from `incident::overview` (the model, read from each application's run
//! view); fits 80x24 with five applications and shows more columns from 120 columns. Every colour has a word
//! beside it, so the monochrome theme (`NO_COLOR`) loses nothing.

use jiff::Timestamp;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use super::Theme;
use crate::incident::overview::{Board, OverviewRow, questions};
use crate::run::{RpoVerdict, Schedule};
use crate::util::fmt_clock;

/// The overview of an incident: its title, the rows, the selected row.
pub struct Overview<'a> {
    pub title: &'a str,
    pub rows: &'a [OverviewRow],
    pub selected: usize,
    /// Run time now (the board's "since the incident").
    pub now: Timestamp,
    pub theme: &'a Theme,
    /// `drconsole watch INCIDENT`: nothing can be answered here.
    pub read_only: bool,
}

/// The role of a standing.
pub fn schedule_role(s: Option<Schedule>) -> &'static str {
    match s {
        Some(Schedule::OnTrack) => "rto.ok",
        Some(Schedule::AtRisk) => "rto.tight",
        Some(Schedule::Late) => "rto.late",
        None => "muted",
    }
}

fn rpo_role(v: Option<RpoVerdict>) -> &'static str {
    match v {
        Some(RpoVerdict::Met) => "rpo.met",
        Some(RpoVerdict::Missed) => "rpo.missed",
        Some(RpoVerdict::Unknown) => "warning",
        None => "muted",
    }
}

fn doing_role(r: &OverviewRow) -> &'static str {
    match (r.rank, r.state.as_str()) {
        (0, _) => "step.awaiting",
        (_, "PAUSED") => "warning",
        (_, "FAILED") => "step.failed",
        (_, "running") => "step.running",
        (_, "recovered") => "step.succeeded",
        (_, "recovered-late") => "rto.late",
        _ => "danger",
    }
}

fn clock(t: Timestamp, wide: bool) -> String {
    t.strftime(if wide { "%H:%M:%S" } else { "%H:%M" }).to_string()
}

impl Overview<'_> {
    /// The board's line: since the incident, the overall finish, the deadline, the margin and the standing.
    fn board_line(&self, board: &Board, wide: bool) -> Line<'static> {
        let t = self.theme;
        let role = schedule_role(board.schedule);
        let mut spans = Vec::new();
        let Some(elapsed) = board.elapsed_secs else {
            return Line::from(Span::styled("no application has started yet", t.get("muted")));
        };
        spans.push(Span::styled(format!("{} since incident", fmt_clock(elapsed)), t.get("text")));
        let p90 = board.p90_finish.filter(|_| !board.finished);
        if let Some((finish, app)) = &board.finish {
            let label = match (board.finished, wide) {
                (true, _) => "ended",
                (false, true) => "projected finish",
                (false, false) => "finish",
            };
            spans.push(Span::styled(" · ", t.get("muted")));
            spans.push(Span::styled(format!("{label} "), t.get("text")));
            spans.push(Span::styled(clock(*finish, wide), t.get(role).add_modifier(Modifier::BOLD)));
            if wide {
                spans.push(Span::styled(format!(" UTC ({app}, the latest)"), t.get("text")));
            }
            // the forecast's late edge, when some application learnt it from its history (narrow:
            // `finish 06:10–06:25 · due 06:00`, so that the standing word still fits 80 columns)
            if let Some(p90) = p90 {
                let late = board.deadline.is_some_and(|d| p90 > d);
                let text = if wide { format!(" P90 {}", clock(p90, wide)) } else { format!("–{}", clock(p90, wide)) };
                spans.push(Span::styled(text, t.get(if late { "rto.late" } else { "text" })));
            }
        }
        if let Some(d) = board.deadline {
            spans.push(Span::styled(" · ", t.get("muted")));
            let of = match (&board.deadline_app, wide) {
                (Some(a), true) => format!(" UTC ({a})"),
                (None, true) => " UTC".to_string(),
                _ => String::new(),
            };
            let word = if p90.is_some() && !wide { "due" } else { "deadline" };
            spans.push(Span::styled(format!("{word} {}{of}", clock(d, wide)), t.get("text")));
        }
        if let (Some(m), Some((_, app))) = (board.margin_text(), &board.margin) {
            spans.push(Span::styled(" · ", t.get("muted")));
            spans.push(Span::styled(format!("margin {m}"), t.get(role)));
            if wide && self.rows.len() > 1 {
                spans.push(Span::styled(format!(" ({app})"), t.get("text")));
            }
        }
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {} ", board.schedule_word()), t.get(role).add_modifier(Modifier::BOLD)));
        Line::from(spans)
    }
}

impl Widget for &Overview<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let wide = area.width >= 120;
        let legend = area.height >= 40;
        let asked = questions(self.rows);
        let q_height = u16::try_from(asked.len().min(5)).unwrap_or(5) + 2;
        let [head, board, table, queue, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(if legend { 2 } else { 1 }),
            Constraint::Min(3),
            Constraint::Length(q_height),
            Constraint::Length(1),
        ])
        .areas(area);
        let mut title = Vec::new();
        if self.read_only {
            title.push(Span::styled(" WATCH (read-only) ", t.get("badge.readonly")));
            title.push(Span::raw(" "));
        }
        let room = usize::from(area.width).saturating_sub(if self.read_only { 20 } else { 0 });
        title.push(Span::styled(super::view::trunc(self.title, room), t.get("title").add_modifier(Modifier::BOLD)));
        Paragraph::new(Line::from(title)).render(head, buf);
        let b = Board::of(self.rows, self.now);
        let mut lines = vec![self.board_line(&b, wide)];
        if legend {
            lines.push(Line::from(Span::styled(
                "on track · AT RISK: the projected finish leaves less than 10% of the RTO · LATE: projected past the \
                 deadline (a finished run: its RTO missed)",
                t.get("muted"),
            )));
        }
        Paragraph::new(lines).render(board, buf);

        let header: Vec<&str> = if wide {
            vec![
                "APPLICATION",
                "STATE",
                "DONE",
                "STEP",
                "RTO LEFT",
                "FINISH",
                "DEADLINE",
                "SCHEDULE",
                "MARGIN",
                "RPO",
                "WAITS FOR",
            ]
        } else {
            vec!["APPLICATION", "FINISH", "SCHEDULE", "MARGIN", "RPO", "STATE / WAITS FOR"]
        };
        let rows = self.rows.iter().enumerate().map(|(i, r)| {
            let sched = t.get(schedule_role(r.schedule));
            let finish = r.projected_finish.map_or("-".to_string(), |f| clock(f, wide));
            let mut cells: Vec<Cell> = vec![Cell::from(r.app.clone())];
            if wide {
                cells.push(Cell::from(Span::styled(r.state.clone(), t.get(doing_role(r)))));
                cells.push(Cell::from(format!("{}/{}", r.done, r.total)));
                cells.push(Cell::from(r.step.clone()));
                cells.push(Cell::from(Span::styled(r.rto_left(), sched)));
            }
            cells.push(Cell::from(Span::styled(finish, sched)));
            if wide {
                cells.push(Cell::from(r.deadline.map_or("-".to_string(), |d| clock(d, true))));
            }
            cells.push(Cell::from(Span::styled(r.schedule_word(), sched.add_modifier(Modifier::BOLD))));
            cells.push(Cell::from(Span::styled(r.margin(), sched)));
            cells.push(Cell::from(Span::styled(r.rpo_text(wide), t.get(rpo_role(r.rpo_verdict)))));
            if wide {
                cells.push(Cell::from(Span::styled(r.waits_for.clone(), t.get("step.awaiting"))));
            } else {
                cells.push(Cell::from(Span::styled(r.doing(), t.get(doing_role(r)))));
            }
            let mut style = Style::default();
            if r.rank == 0 || r.schedule == Some(Schedule::Late) {
                style = style.add_modifier(Modifier::BOLD);
            }
            if i == self.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(cells).style(style)
        });
        let widths: Vec<Constraint> = if wide {
            vec![
                Constraint::Length(20),
                Constraint::Length(14),
                Constraint::Length(5),
                Constraint::Length(16),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(21),
                Constraint::Min(16),
            ]
        } else {
            vec![
                Constraint::Length(20),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(15),
                Constraint::Min(16),
            ]
        };
        Table::new(rows, widths)
            .header(Row::new(header).style(t.get("muted").add_modifier(Modifier::BOLD)))
            .block(
                Block::default()
                    .borders(Borders::TOP | Borders::BOTTOM)
                    .border_style(t.get("border"))
                    .title(" applications, most urgent first "),
            )
            .render(table, buf);
        let lines: Vec<Line> = if asked.is_empty() {
            vec![Line::from(Span::styled("no question is waiting", t.get("muted")))]
        } else {
            asked.iter().take(5).map(|q| Line::from(Span::styled(q.clone(), t.get("step.awaiting")))).collect()
        };
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .border_style(t.get("border"))
                    .title(format!(" questions ({}) ", asked.len())),
            )
            .render(queue, buf);
        let keys_text = if self.read_only {
            "↑/↓ select  Enter open (Esc/q back)  a first question  q quit · read-only"
        } else {
            "↑/↓ select  Enter open (Esc/q back)  a first question  L latest points  q quit"
        };
        Paragraph::new(Line::from(Span::styled(keys_text, t.get("muted")))).render(keys, buf);
    }
}
