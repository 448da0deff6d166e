//! The incident overview screen: one row per application (state, steps done of total, the step running or
//! waiting, RTO left, margin of the projected finish against the deadline, RPO against target, what it waits for),
//! most urgent first, and the queue of questions, each naming its application. Drawn from
//! `incident::overview` rows (the model); fits 80x24 with five applications.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

use crate::incident::overview::{OverviewRow, questions};

/// The overview of an incident: its title, the rows, the selected row.
pub struct Overview<'a> {
    pub title: &'a str,
    pub rows: &'a [OverviewRow],
    pub selected: usize,
}

impl Widget for &Overview<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let asked = questions(self.rows);
        let q_height = u16::try_from(asked.len().min(5)).unwrap_or(5) + 2;
        let [head, table, queue, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(q_height),
            Constraint::Length(1),
        ])
        .areas(area);
        Paragraph::new(Line::from(self.title.to_string()).style(Style::default().add_modifier(Modifier::BOLD)))
            .render(head, buf);
        let wide = area.width >= 100;
        let mut header = vec!["APPLICATION", "STATE", "DONE", "STEP", "RTO LEFT", "MARGIN", "RPO"];
        if wide {
            header.push("WAITS FOR");
        }
        let rows = self.rows.iter().enumerate().map(|(i, r)| {
            let mut cells = vec![
                r.app.clone(),
                r.state.clone(),
                format!("{}/{}", r.done, r.total),
                r.step.clone(),
                r.rto_left(),
                r.margin(),
                r.rpo.clone(),
            ];
            if wide {
                cells.push(r.waits_for.clone());
            }
            let mut style = Style::default();
            if r.rank == 0 || r.margin_secs < 0 {
                style = style.add_modifier(Modifier::BOLD);
            }
            if i == self.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(cells).style(style)
        });
        let mut widths = vec![
            Constraint::Length(20),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Min(9),
        ];
        if wide {
            widths.push(Constraint::Min(20));
        }
        Table::new(rows, widths)
            .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(Block::default().borders(Borders::TOP | Borders::BOTTOM).title(" applications, most urgent first "))
            .render(table, buf);
        let lines: Vec<Line> = if asked.is_empty() {
            vec![Line::from("no question is waiting")]
        } else {
            asked.iter().take(5).map(|q| Line::from(q.clone())).collect()
        };
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::TOP).title(format!(" questions ({}) ", asked.len())))
            .render(queue, buf);
        Paragraph::new(Line::from("↑/↓ select  Enter open (Esc/q back)  a first question  L latest points  q quit"))
            .render(keys, buf);
    }
}
