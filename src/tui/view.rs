//! Rendering: `Screen { state, theme }` draws the whole console from an immutable view of the state. Layout
//! degrades with the terminal: at 80x24 the steps pane keeps only icon, id and time, and the log shrinks; below
//! 20 rows the log goes (Tab shows it instead of the detail pane); below 60 columns the detail pane goes.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, List, ListItem, ListState, Paragraph, Row, StatefulWidget, Table,
    TableState, Widget, Wrap,
};

use super::keymap::HELP;
use super::state::{Focus, LogLevel, Modal, Picker, State, StepStatus, StepView, value_text};
use super::theme::Theme;
use crate::engine::Outcome;
use crate::util::{fmt_clock, fmt_duration};

pub struct Screen<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

/// The areas of the main screen for a terminal size (also used by tests).
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub steps: Rect,
    pub detail: Option<Rect>,
    pub log: Option<Rect>,
    pub footer: Rect,
}

pub fn areas(area: Rect, focus: Focus) -> Areas {
    let header_h = if area.width < 120 { 4 } else { 3 };
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(header_h), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let show_log = body.height >= 14;
    let (top, log) = if show_log {
        let log_h = (body.height / 3).max(6);
        let [t, l] = Layout::vertical([Constraint::Min(1), Constraint::Length(log_h)]).areas(body);
        (t, Some(l))
    } else {
        (body, None)
    };
    if area.width < 60 {
        return Areas { header, steps: top, detail: None, log, footer };
    }
    let steps_w = if area.width >= 120 { (area.width * 2 / 5).min(64) } else { 34 };
    let [steps, right] = Layout::horizontal([Constraint::Length(steps_w), Constraint::Min(1)]).areas(top);
    if log.is_none() && focus == Focus::Log {
        // small screen: the log replaces the detail pane while it has the focus
        return Areas { header, steps, detail: None, log: Some(right), footer };
    }
    Areas { header, steps, detail: Some(right), log, footer }
}

fn trunc(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(w - 1).collect();
    t.push('…');
    t
}

fn hms(ts: jiff::Timestamp) -> String {
    ts.strftime("%H:%M:%S").to_string()
}

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, t) = (self.state, self.theme);
        buf.set_style(area, t.get("text"));
        let a = areas(area, s.focus);
        header(s, t, a.header, buf);
        steps_pane(s, t, a.steps, buf);
        if let Some(d) = a.detail {
            detail_pane(s, t, d, buf);
        }
        if let Some(l) = a.log {
            log_pane(s, t, l, buf);
        }
        footer(s, t, a.footer, buf);
        if let Some(m) = &s.modal {
            modal(s, t, m, area, buf);
        }
    }
}

fn block<'a>(title: Line<'a>, focused: bool, t: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(t.get(if focused { "border.focus" } else { "border" }))
        .title(title)
}

fn header(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let w = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let Some(run) = &s.run else {
        lines.push(Line::from(Span::styled(" drconsole — waiting for the run to start…", t.get("title"))));
        Paragraph::new(lines).render(area, buf);
        return;
    };
    // 1: backend badge, title, app; run id on the right
    let badge = match run.backend.as_str() {
        "sim" => Span::styled(" SIMULATOR ", t.get("badge.sim")),
        "aws" => Span::styled(" AWS ", t.get("badge.aws")),
        other => Span::styled(format!(" {} ", other.to_uppercase()), t.get("badge.aws")),
    };
    let mut l1 = vec![badge, Span::raw(" ")];
    if !s.control {
        l1.push(Span::styled(" WATCH (read-only) ", t.get("badge.readonly")));
        l1.push(Span::raw(" "));
    }
    let right = format!("run {}", run.run_id);
    let used: usize = l1.iter().map(|x| x.content.chars().count()).sum();
    let title_w = w.saturating_sub(used + right.len() + 2);
    let title = format!("{} · {}", run.title, run.app);
    let title = trunc(&title, title_w);
    let pad = w.saturating_sub(used + title.chars().count() + right.len());
    l1.push(Span::styled(title, t.get("title")));
    l1.push(Span::raw(" ".repeat(pad)));
    l1.push(Span::styled(right, t.get("muted")));
    lines.push(Line::from(l1));

    // 2: account and regions; run state on the right
    let account = s
        .identity
        .as_ref()
        .map(|(a, _)| a.clone())
        .or_else(|| run.account.clone())
        .map_or("no account guard".to_string(), |a| format!("account {a}"));
    let where_ = format!("{account} · {} → {}", run.primary, run.secondary);
    let (word, role) = match (&s.finished, &s.paused) {
        (Some(f), _) => match f.outcome {
            Outcome::Recovered => ("RECOVERED".to_string(), "rto.ok"),
            o => (o.as_str().to_uppercase(), "danger"),
        },
        (None, Some(_)) => ("PAUSED".to_string(), "warning"),
        (None, None) if s.events_closed => ("STREAM ENDED".to_string(), "warning"),
        (None, None) if s.steps.iter().any(|x| matches!(x.status, StepStatus::Awaiting | StepStatus::Asking)) => {
            ("WAITING FOR YOU".to_string(), "step.awaiting")
        }
        (None, None) => ("RUNNING".to_string(), "step.running"),
    };
    let pad = w.saturating_sub(where_.chars().count() + word.chars().count() + 2);
    lines.push(Line::from(vec![
        Span::styled(trunc(&where_, w.saturating_sub(word.len() + 3)), t.get("text")),
        Span::raw(" ".repeat(pad)),
        Span::styled(format!(" {word} "), t.get(role).add_modifier(Modifier::BOLD)),
    ]));

    // 3: RTO countdown, projected finish vs deadline, RPO of the chosen point
    let rto = fmt_duration(std::time::Duration::from_secs(run.rto_secs));
    let rpo = fmt_duration(std::time::Duration::from_secs(run.rpo_secs));
    let mut l3: Vec<Span> = Vec::new();
    if let Some(f) = &s.finished {
        let verdict = match (f.outcome, f.rto_met) {
            (Outcome::Recovered, true) => ("met", "rto.ok"),
            (Outcome::Recovered, false) => ("MISSED", "rto.late"),
            _ => ("not recovered", "danger"),
        };
        l3.push(Span::styled(format!("RTO {rto} "), t.get("text")));
        l3.push(Span::styled(
            format!(" {} achieved {} ", verdict.0, fmt_clock(f.rto_achieved_secs as i64)),
            t.get(verdict.1),
        ));
        l3.push(Span::styled(
            format!(" · {} ok {} failed {} skipped {} cancelled", f.counts[0], f.counts[1], f.counts[2], f.counts[3]),
            t.get("muted"),
        ));
    } else {
        let left = s.rto_left().unwrap_or(0);
        let margin = s.projection.as_ref().map(|p| p.margin_secs);
        let role = rto_role(left, margin, run.rto_secs);
        let left_txt =
            if left >= 0 { format!(" {} left ", fmt_clock(left)) } else { format!(" {} OVER ", fmt_clock(-left)) };
        l3.push(Span::styled(format!("RTO {rto}"), t.get("text")));
        l3.push(Span::raw(" "));
        l3.push(Span::styled(left_txt, t.get(role)));
        if let Some(p) = &s.projection {
            let sign = if p.margin_secs >= 0 { "+" } else { "" };
            let verdict = if p.margin_secs >= 0 { "" } else { " LATE" };
            l3.push(Span::styled(
                format!(
                    " · finish {} vs deadline {} ({sign}{}{verdict})",
                    hms(p.projected_finish),
                    hms(run.deadline),
                    fmt_clock(p.margin_secs)
                ),
                t.get(if p.margin_secs >= 0 { "text" } else { "rto.late" }),
            ));
        }
    }
    let rpo_span = match &s.chosen {
        Some(c) => {
            let age = fmt_duration(std::time::Duration::from_secs(c.rpo_secs.max(0) as u64));
            let (txt, role) = if c.rpo_met { ("met", "rpo.met") } else { ("MISSED", "rpo.missed") };
            Span::styled(format!("RPO {rpo}: point {age} old ({}), {txt}", c.kind), t.get(role))
        }
        None => Span::styled(format!("RPO {rpo}: no recovery point chosen yet"), t.get("muted")),
    };
    if area.height >= 4 {
        // narrow screens: the RPO gets a line of its own
        lines.push(Line::from(l3));
        lines.push(Line::from(rpo_span));
    } else {
        l3.push(Span::raw(" · "));
        l3.push(rpo_span);
        lines.push(Line::from(l3));
    }
    Paragraph::new(lines).render(area, buf);
}

/// The countdown's colour: late when the projection misses the deadline (or time is up), tight under 20% of the
/// RTO or a margin under 10% of it, ok otherwise.
pub fn rto_role(left: i64, margin: Option<i64>, rto_secs: u64) -> &'static str {
    let rto = rto_secs as i64;
    if left <= 0 || margin.is_some_and(|m| m < 0) {
        "rto.late"
    } else if left * 5 < rto || margin.is_some_and(|m| m * 10 < rto) {
        "rto.tight"
    } else {
        "rto.ok"
    }
}

/// Branch glyphs: steps of one stage run in parallel and are bracketed together.
fn branch(s: &State, i: usize) -> &'static str {
    let stage = s.steps[i].stage;
    let prev = i > 0 && s.steps[i - 1].stage == stage;
    let next = s.steps.get(i + 1).is_some_and(|n| n.stage == stage);
    match (prev, next) {
        (false, false) => "─",
        (false, true) => "┌",
        (true, true) => "├",
        (true, false) => "└",
    }
}

fn steps_pane(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let focused = s.focus == Focus::Steps;
    let done = s.steps.iter().filter(|x| x.status.is_terminal()).count();
    let mode = if s.follow { "following" } else { "f: follow" };
    let title = Line::from(vec![
        Span::styled(" Steps ", t.get("title")),
        Span::styled(format!("{done}/{} · {mode} ", s.steps.len()), t.get("muted")),
    ]);
    let b = block(title, focused, t);
    let inner = b.inner(area);
    b.render(area, buf);
    let w = inner.width as usize;
    let critical: Vec<&str> =
        s.projection.as_ref().map(|p| p.critical_path.iter().map(String::as_str).collect()).unwrap_or_default();
    let items: Vec<ListItem> = s
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let time = s.fmt_step_time(st);
            let att = if st.attempt > 1 { format!(" ×{}", st.attempt) } else { String::new() };
            let right = format!("{time}{att}");
            let crit = if critical.contains(&st.info.id.as_str()) { "*" } else { " " };
            let lead = format!("{} {}{}", st.status.icon(), branch(s, i), crit);
            let room = w.saturating_sub(lead.chars().count() + right.chars().count() + 2);
            let name = if w >= 40 {
                let id_w = st.info.id.chars().count().min(room);
                let title_w = room.saturating_sub(id_w + 1);
                format!("{} {}", trunc(&st.info.id, id_w), trunc(&st.info.title, title_w))
            } else {
                trunc(&st.info.id, room)
            };
            let pad = room.saturating_sub(name.chars().count());
            let style = t.get(st.status.role());
            ListItem::new(Line::from(vec![
                Span::styled(lead, style),
                Span::raw(" "),
                Span::styled(name, if st.status == StepStatus::Pending { t.get("text") } else { style }),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(right, t.get("muted")),
            ]))
        })
        .collect();
    let list = List::new(items).highlight_style(t.get("selected"));
    let mut ls = ListState::default().with_selected(Some(s.selected));
    StatefulWidget::render(list, inner, buf, &mut ls);
}

fn kv<'a>(k: &str, v: String, t: &Theme) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{k:<10}"), t.get("muted")), Span::styled(v, t.get("text"))])
}

fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width.saturating_sub(filled)))
}

fn detail_pane(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(st) = s.selected_step() else {
        block(Line::from(Span::styled(" Detail ", t.get("title"))), false, t).render(area, buf);
        return;
    };
    let title = Line::from(vec![
        Span::styled(format!(" {} ", st.info.id), t.get("title")),
        Span::styled(format!(" {} {} ", st.status.icon(), st.status.word()), t.get(st.status.role())),
    ]);
    let b = block(title, s.focus == Focus::Detail, t);
    let inner = b.inner(area);
    b.render(area, buf);
    let lines = detail_lines(s, st, t, inner.width as usize);
    let rows = wrapped_rows(&lines, inner.width);
    let offset = s.detail_offset().min(rows.saturating_sub(1));
    Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false }).scroll((offset, 0)).render(inner, buf);
    if rows > inner.height.saturating_add(offset) && inner.height > 0 {
        // more below: say so on the bottom border
        let more = Span::styled(" ↓ more: Tab, j ", t.get("key"));
        let x = area.x + area.width.saturating_sub(18);
        buf.set_span(x, area.y + area.height.saturating_sub(1), &more, 16);
    }
}

fn detail_lines<'a>(s: &State, st: &StepView, t: &Theme, w: usize) -> Vec<Line<'a>> {
    let mut lines: Vec<Line> = vec![Line::from(Span::styled(st.info.title.clone(), t.get("title")))];
    let mut meta = format!("{} · on_failure {}", st.info.action, st.info.on_failure.as_str());
    if !st.info.needs.is_empty() {
        meta.push_str(&format!(" · needs {}", st.info.needs.join(", ")));
    }
    meta.push_str(&format!(" · expected {}", fmt_duration(std::time::Duration::from_secs(st.info.expected_secs))));
    if st.attempt > 0 {
        meta.push_str(&format!(" · attempt {}", st.attempt));
    }
    let time = s.fmt_step_time(st);
    if !time.is_empty() {
        meta.push_str(&format!(" · {time}"));
    }
    lines.push(Line::from(Span::styled(meta, t.get("muted"))));
    if let Some(e) = &st.error {
        lines.push(Line::from(Span::styled(format!("error (attempt {})", st.attempt), t.get("danger"))));
        for l in e.lines() {
            lines.push(Line::from(Span::styled(format!("  {l}"), t.get("step.failed"))));
        }
        if s.control && s.finished.is_none() {
            lines.push(Line::from(Span::styled("r retry · s skip · X abort", t.get("key"))));
        }
    }
    if let Some((msg, pct)) = &st.progress {
        match pct {
            Some(p) => {
                let bw = w.saturating_sub(18).clamp(4, 40);
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<10}", "progress"), t.get("muted")),
                    Span::styled(bar(*p, bw), t.get("progress")),
                    Span::styled(format!(" {p:>3.0}%"), t.get("text")),
                ]));
                lines.push(Line::from(Span::styled(format!("{:<10}{msg}", ""), t.get("text"))));
            }
            None => lines.push(kv("progress", msg.clone(), t)),
        }
    }
    let note = s.notes.get(&st.info.id);
    if let Some(doc) = note.and_then(|n| n.doc.as_ref()) {
        lines.push(Line::from(Span::styled(doc.clone(), t.get("text").add_modifier(Modifier::ITALIC))));
    }
    if let Some(plan) = &st.plan {
        lines.push(kv("plan", plan.clone(), t));
    }
    if note.is_some_and(|n| n.destructive) {
        lines.push(Line::from(Span::styled("moves traffic or replaces something in use", t.get("warning"))));
    }
    if matches!(st.status, StepStatus::Awaiting | StepStatus::Asking) && s.control {
        lines.push(Line::from(Span::styled("waits for you: press Enter", t.get("step.awaiting"))));
    }
    if let Some(n) = &st.note {
        lines.push(kv("note", n.clone(), t));
    }
    if !st.params.is_empty() {
        lines.push(Line::from(Span::styled("parameters", t.get("muted"))));
        for (k, v) in &st.params {
            lines.push(Line::from(vec![
                Span::styled(format!("  {k} = "), t.get("muted")),
                Span::styled(value_text(v), t.get("text")),
            ]));
        }
    }
    if !st.resources.is_empty() {
        lines.push(Line::from(Span::styled("resources", t.get("muted"))));
        for r in &st.resources {
            lines.push(Line::from(vec![
                Span::styled(format!("  {} {} ({}) ", r.kind, r.id, r.region), t.get("text")),
                Span::styled(r.state.clone(), t.get("step.running")),
            ]));
        }
    }
    if !st.outputs.is_empty() {
        lines.push(Line::from(Span::styled("outputs", t.get("muted"))));
        for (k, v) in &st.outputs {
            lines.push(Line::from(vec![
                Span::styled(format!("  {k} = "), t.get("muted")),
                Span::styled(value_text(v), t.get("step.succeeded")),
            ]));
        }
    }
    if !st.attempt_errors.is_empty() {
        lines.push(Line::from(Span::styled("earlier attempts", t.get("muted"))));
        for e in &st.attempt_errors {
            lines.push(Line::from(Span::styled(format!("  {e}"), t.get("warning"))));
        }
    }
    lines
}

fn highlight<'a>(text: &str, q: &str, base: Style, t: &Theme) -> Vec<Span<'a>> {
    if q.is_empty() {
        return vec![Span::styled(text.to_string(), base)];
    }
    let lower = text.to_lowercase();
    let q = q.to_lowercase();
    // lowercasing keeps byte offsets only for ASCII; fall back to no highlight otherwise
    if lower.len() != text.len() {
        return vec![Span::styled(text.to_string(), base)];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = lower[i..].find(&q) {
        let a = i + p;
        if a > i {
            out.push(Span::styled(text[i..a].to_string(), base));
        }
        out.push(Span::styled(text[a..a + q.len()].to_string(), t.get("search.match")));
        i = a + q.len();
    }
    if i < text.len() {
        out.push(Span::styled(text[i..].to_string(), base));
    }
    out
}

fn log_pane(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let focused = s.focus == Focus::Log;
    let n = s.log.len();
    let bottom = s.log_bottom.unwrap_or(n.saturating_sub(1)).min(n.saturating_sub(1));
    let mode = match s.log_bottom {
        None => "following".to_string(),
        Some(b) => format!("line {}/{n} · f: follow", b + 1),
    };
    let mut title = vec![Span::styled(" Log ", t.get("title")), Span::styled(format!("{mode} "), t.get("muted"))];
    if let Some(q) = s.search.as_ref().filter(|q| !q.editing && !q.query.is_empty()) {
        title.push(Span::styled(format!("/{} (n N) ", q.query), t.get("key")));
    }
    let b = block(Line::from(title), focused, t);
    let inner = b.inner(area);
    b.render(area, buf);
    let h = inner.height as usize;
    if n == 0 || h == 0 {
        return;
    }
    let first = (bottom + 1).saturating_sub(h);
    let query = s.search.as_ref().map(|q| q.query.as_str()).unwrap_or("");
    let current = s.search.as_ref().and_then(|q| q.current);
    let w = inner.width as usize;
    let narrow = w < 70;
    let lines: Vec<Line> = s.log[first..=bottom]
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let role = match l.level {
                LogLevel::Info => "text",
                LogLevel::Good => "step.succeeded",
                LogLevel::Warn => "warning",
                LogLevel::Bad => "danger",
            };
            let head = if narrow {
                format!("{} {:<8} {:<10} ", hms(l.ts), l.tag, trunc(&l.step, 10))
            } else {
                format!("{} {:<8} {:<16} ", hms(l.ts), l.tag, trunc(&l.step, 16))
            };
            let room = w.saturating_sub(head.chars().count());
            let mut spans = vec![Span::styled(head, t.get("muted"))];
            spans.extend(highlight(&trunc(&l.text, room), query, t.get(role), t));
            let line = Line::from(spans);
            if current == Some(first + k) { line.style(t.get("selected")) } else { line }
        })
        .collect();
    Paragraph::new(lines).render(inner, buf);
}

fn footer(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let w = area.width as usize;
    if let Some(q) = s.search.as_ref().filter(|q| q.editing) {
        let line = Line::from(vec![
            Span::styled("/", t.get("key")),
            Span::styled(q.query.clone(), t.get("input")),
            Span::styled("  Enter search · Esc/^g cancel", t.get("muted")),
        ]);
        Paragraph::new(line).render(area, buf);
        return;
    }
    let mut spans: Vec<Span> = Vec::new();
    if let Some(f) = &s.flash {
        spans.push(Span::styled(format!("{} ", trunc(f, w / 2)), t.get("warning")));
    }
    // most urgent first: what the run waits for, then help and quit, then the rest as room allows
    let mut keys: Vec<(&str, &str)> = Vec::new();
    let waiting = s.steps.iter().any(|x| matches!(x.status, StepStatus::Awaiting | StepStatus::Asking));
    let active = s.control && s.active();
    if active && waiting {
        keys.push(("Enter", "answer"));
    }
    if active && s.selected_step().is_some_and(|x| x.status == StepStatus::Failed) {
        keys.push(("r", "retry"));
    }
    if !s.follow || s.log_bottom.is_some() {
        keys.push(("f", "follow"));
    }
    keys.extend([("?", "help"), ("q", "quit")]);
    if active {
        keys.push(("s", "skip"));
        keys.push(("p", if s.paused.is_some() { "resume" } else { "pause" }));
        keys.push(("X", "abort"));
    }
    keys.extend([("j/k", "move"), ("Tab", "log"), ("/", "search")]);
    let mut used: usize = spans.iter().map(|x| x.content.chars().count()).sum();
    for (k, d) in keys {
        let len = k.chars().count() + d.chars().count() + 3;
        if used + len > w {
            break;
        }
        spans.push(Span::styled(k.to_string(), t.get("key")));
        spans.push(Span::styled(format!(" {d}  "), t.get("muted")));
        used += len;
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

/// A centred rectangle of at most `w` x `h`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn popup(title: &str, role: &str, t: &Theme, area: Rect, buf: &mut Buffer) -> Rect {
    Clear.render(area, buf);
    let b = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(t.get(role))
        .style(t.get("modal"))
        .title(Span::styled(format!(" {title} "), t.get(role).add_modifier(Modifier::BOLD)));
    let inner = b.inner(area);
    b.render(area, buf);
    inner
}

fn keys_line<'a>(pairs: &[(&str, &str)], t: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    for (k, d) in pairs {
        spans.push(Span::styled(k.to_string(), t.get("key")));
        spans.push(Span::styled(format!(" {d}   "), t.get("muted")));
    }
    Line::from(spans)
}

/// Rows a paragraph of `lines` takes when wrapped at `w` columns (an estimate: wrapping at words may add a row).
fn wrapped_rows(lines: &[Line], w: u16) -> u16 {
    let w = usize::from(w.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(w).max(1) + usize::from(l.width() > w)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// A popup sized to its text: at most `max_w` wide, as tall as the wrapped lines (plus borders).
fn text_popup(title: &str, role: &str, lines: Vec<Line>, max_w: u16, t: &Theme, area: Rect, buf: &mut Buffer) {
    let w = area.width.saturating_sub(4).min(max_w);
    let h = wrapped_rows(&lines, w.saturating_sub(2)).saturating_add(2);
    let r = centered(area, w, h);
    let inner = popup(title, role, t, r, buf);
    Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
}

fn help(t: &Theme, area: Rect, buf: &mut Buffer) {
    let two = area.width >= 78;
    let key_w = if area.width < 100 { 14 } else { 16 };
    let group = |g: &(&str, &[(&str, &str)])| {
        let mut lines = vec![Line::from(Span::styled(g.0.to_string(), t.get("title")))];
        for (k, d) in g.1 {
            lines.push(Line::from(vec![
                Span::styled(format!(" {k:<key_w$}"), t.get("key")),
                Span::styled(d.to_string(), t.get("text")),
            ]));
        }
        lines
    };
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (i, g) in HELP.iter().enumerate() {
        if two && i >= 2 { right.extend(group(g)) } else { left.extend(group(g)) }
    }
    let h = (left.len().max(right.len()) + 3) as u16;
    let w = if two { area.width.saturating_sub(2).min(110) } else { area.width.saturating_sub(2).min(60) };
    let r = centered(area, w, h);
    let inner = popup("Keys", "border.focus", t, r, buf);
    let [body, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    if two {
        let [l, rr] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        Paragraph::new(left).render(l, buf);
        Paragraph::new(right).render(rr, buf);
    } else {
        Paragraph::new(left).render(body, buf);
    }
    Paragraph::new(keys_line(&[("q ? Esc", "close")], t)).render(foot, buf);
}

fn modal(s: &State, t: &Theme, m: &Modal, area: Rect, buf: &mut Buffer) {
    match m {
        Modal::Help => help(t, area, buf),
        Modal::Quit => {
            let lines = vec![
                Line::from(Span::styled("The run is still active.", t.get("text"))),
                Line::from(Span::styled(
                    "Quitting interrupts it: running steps are cancelled, nothing new starts, and drconsole exits \
                     with code 130.",
                    t.get("text"),
                )),
                Line::default(),
                keys_line(&[("y", "quit and interrupt"), ("n q", "keep going")], t),
            ];
            text_popup("Quit?", "danger", lines, 64, t, area, buf);
        }
        Modal::Abort => {
            let lines = vec![
                Line::from(Span::styled(
                    "Running steps are cancelled and nothing new starts. The run ends as aborted (exit code 1); \
                     resources already created stay.",
                    t.get("text"),
                )),
                Line::default(),
                keys_line(&[("y", "abort the run"), ("n q", "keep going")], t),
            ];
            text_popup("Abort the run?", "danger", lines, 64, t, area, buf);
        }
        Modal::Confirm { step, plan, destructive, input } => {
            let title = s.step(step).map(|x| x.info.title.clone()).unwrap_or_default();
            let role = if destructive.is_some() { "danger" } else { "step.awaiting" };
            let mut lines = vec![
                Line::from(Span::styled(title, t.get("title"))),
                Line::default(),
                Line::from(vec![Span::styled("It will: ", t.get("muted")), Span::styled(plan.clone(), t.get("text"))]),
                Line::default(),
            ];
            match destructive {
                Some(name) => {
                    lines.push(Line::from(Span::styled(
                        "This step moves traffic or replaces something in use.",
                        t.get("danger"),
                    )));
                    lines.push(Line::from(vec![
                        Span::styled("Type ", t.get("text")),
                        Span::styled(name.clone(), t.get("key")),
                        Span::styled(" to approve:", t.get("text")),
                    ]));
                    let ok = input == name;
                    let field_w = (name.chars().count() + 2).max(20);
                    lines.push(Line::from(vec![
                        Span::styled("> ", t.get("key")),
                        Span::styled(format!("{input:<field_w$}"), t.get("input")),
                        Span::styled(if ok { "  ✓" } else { "" }, t.get("rpo.met")),
                    ]));
                    lines.push(Line::default());
                    lines.push(keys_line(&[("Enter", "approve"), ("Esc ^g", "not now")], t));
                }
                None => lines.push(keys_line(&[("y", "approve"), ("s", "skip…"), ("q n Esc", "not now")], t)),
            }
            text_popup(&format!("Confirm step {step}"), role, lines, 90, t, area, buf);
        }
        Modal::Manual { step, instructions } => {
            let lines = vec![
                Line::from(Span::styled(instructions.clone(), t.get("text"))),
                Line::default(),
                keys_line(&[("y", "done"), ("s", "skip…"), ("q n Esc", "not now")], t),
            ];
            text_popup(&format!("Manual task: {step}"), "step.awaiting", lines, 90, t, area, buf);
        }
        Modal::Skip { step, reason } => {
            let lines = vec![
                Line::from(Span::styled("Why? (recorded in the journal and the report)", t.get("text"))),
                Line::from(vec![
                    Span::styled("> ", t.get("key")),
                    Span::styled(format!("{reason:<40}"), t.get("input")),
                ]),
                Line::default(),
                keys_line(&[("Enter", "skip"), ("Esc ^g", "cancel")], t),
            ];
            text_popup(&format!("Skip step {step}?"), "warning", lines, 72, t, area, buf);
        }
        Modal::Picker(p) => picker(s, t, p, area, buf),
    }
}

fn picker(s: &State, t: &Theme, p: &Picker, area: Rect, buf: &mut Buffer) {
    let want_h = u16::try_from(p.candidates.len()).unwrap_or(u16::MAX).saturating_add(7).max(10);
    let r = centered(area, area.width.saturating_sub(4).min(120), area.height.saturating_sub(2).min(want_h));
    let inner = popup(&format!("Choose a recovery point · {}", p.step), "border.focus", t, r, buf);
    let [msg, table_a, info, keys] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1), Constraint::Length(1)])
            .areas(inner);
    Paragraph::new(Line::from(Span::styled(p.message.clone(), t.get("text")))).render(msg, buf);
    let narrow = inner.width < 90;
    let visible = p.visible();
    let rows: Vec<Row> = visible
        .iter()
        .map(|c| {
            let age = fmt_duration(std::time::Duration::from_secs(c.age_secs.max(0) as u64));
            let size = c.size_gib.map_or("-".to_string(), |g| format!("{g} GiB"));
            let (rpo, role) = if c.rpo_met { ("✓ met", "rpo.met") } else { ("✗ missed", "rpo.missed") };
            let mut cells = vec![
                Cell::from(c.time.strftime("%m-%d %H:%M").to_string()),
                Cell::from(age),
                Cell::from(c.kind.clone()),
                Cell::from(c.region.clone()),
                Cell::from(if c.encrypted { "yes" } else { "NO" }),
                Cell::from(size),
                Cell::from(Span::styled(rpo, t.get(role))),
            ];
            if !narrow {
                cells.push(Cell::from(c.id.clone()));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let mut head = vec!["time (UTC)", "age", "kind", "region", "enc", "size", "RPO"];
    if !narrow {
        widths.push(Constraint::Min(10));
        head.push("id");
    }
    let arrow = if p.descending { "↓" } else { "↑" };
    let head: Vec<Cell> = head
        .into_iter()
        .map(|h| {
            let sorted = (h == "time (UTC)" && p.sort.name() == "time") || h == p.sort.name();
            Cell::from(if sorted { format!("{h}{arrow}") } else { h.to_string() })
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(t.get("title")))
        .row_highlight_style(t.get("selected"))
        .highlight_symbol("› ");
    let mut ts = TableState::default().with_selected(if visible.is_empty() { None } else { Some(p.selected) });
    StatefulWidget::render(table, table_a, buf, &mut ts);
    let target =
        s.run.as_ref().map(|r| format!(" · RPO target {}", fmt_duration(std::time::Duration::from_secs(r.rpo_secs))));
    let mut info_spans = vec![Span::styled(
        format!(
            "{} of {} · sort {} {arrow}{}",
            visible.len(),
            p.candidates.len(),
            p.sort.name(),
            target.unwrap_or_default()
        ),
        t.get("muted"),
    )];
    if p.filtering || !p.filter.is_empty() {
        info_spans.push(Span::styled(" · filter ", t.get("muted")));
        info_spans.push(Span::styled(format!("{:<12}", p.filter), t.get("input")));
    }
    if narrow && let Some(c) = visible.get(p.selected) {
        info_spans.push(Span::styled(format!(" · {}", c.id), t.get("text")));
    }
    Paragraph::new(Line::from(info_spans)).render(info, buf);
    let k = if p.filtering {
        keys_line(&[("Enter", "done"), ("Esc ^g", "clear filter")], t)
    } else {
        keys_line(&[("Enter", "choose"), ("j k", "move"), ("o O", "sort"), ("/", "filter"), ("q", "not now")], t)
    };
    Paragraph::new(k).render(keys, buf);
}
