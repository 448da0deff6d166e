//! Rendering: `Screen { state, theme }` draws the whole console from an immutable view of the state. The header
//! (run, state, RTO clock, RPO verdict) is always four rows and popups never cover it. Layout degrades with the
//! terminal: at 80x24 the steps pane keeps only icon, id and time, and the log shrinks; on tall screens the log
//! takes the room the steps do not need; below 20 rows the log goes (Tab shows it instead of the detail pane);
//! below 60 columns the detail pane goes. `t` swaps steps/detail/log for the timeline ([`super::timeline`]).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, List, ListItem, ListState, Paragraph, Row, StatefulWidget, Table,
    TableState, Widget, Wrap,
};

use super::keymap::HELP;
use super::popup::{Act, CleanupPopup, ConfirmPopup, Purpose, ReasonPopup, RpoLossPopup};
use super::state::{Focus, LogLevel, Look, Modal, Picker, Screen as Body, State, StepView, value_text};
use super::theme::Theme;
use crate::engine::Outcome;
use crate::run::Phase;
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

/// Header rows: title, where and state, the RTO clock, the RPO verdict.
pub const HEADER_H: u16 = 4;

/// The body between header and footer.
pub fn body_area(area: Rect) -> Rect {
    let [_, body, _] =
        Layout::vertical([Constraint::Length(HEADER_H), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    body
}

/// Where popups go: everything below the header (the RTO clock and the run's state stay visible).
pub fn popup_area(area: Rect) -> Rect {
    let h = HEADER_H.min(area.height);
    Rect { x: area.x, y: area.y + h, width: area.width, height: area.height - h }
}

pub fn areas(area: Rect, focus: Focus, steps: usize) -> Areas {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(HEADER_H), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let show_log = body.height >= 14;
    let (top, log) = if show_log {
        // tall screens: the steps and detail get what the steps need (at least 16 rows), the log the rest
        let top_h = if body.height >= 30 {
            u16::try_from(steps).unwrap_or(u16::MAX).saturating_add(2).max(16).min(body.height - 6)
        } else {
            body.height - (body.height / 3).max(6)
        };
        let [t, l] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(1)]).areas(body);
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

pub(super) fn trunc(s: &str, w: usize) -> String {
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
        let a = areas(area, s.focus, s.step_count());
        header(s, t, a.header, buf);
        if s.screen == Body::Timeline {
            super::timeline::render(s, t, body_area(area), buf);
        } else {
            steps_pane(s, t, a.steps, buf);
            if let Some(d) = a.detail {
                detail_pane(s, t, d, buf);
            }
            if let Some(l) = a.log {
                log_pane(s, t, l, buf);
            }
        }
        footer(s, t, a.footer, buf);
        if let Some(m) = &s.modal {
            modal(s, t, m, popup_area(area), buf);
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
    let Some(run) = s.run() else {
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
    if run.drill {
        // as loud as SIMULATOR: a recovery test, production untouched
        l1.push(Span::styled(" DRILL ", t.get("badge.sim")));
        l1.push(Span::raw(" "));
    }
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

    // 2: account and regions, regions whose calls fail; run state on the right
    let account = s
        .identity()
        .map(|(a, _)| a.clone())
        .or_else(|| run.account.clone())
        .map_or("no account guard".to_string(), |a| format!("account {a}"));
    let mut where_ = format!("{account} · {} → {}", run.primary, run.secondary);
    if let Some(url) = &s.shared_state {
        where_.push_str(&format!(" · state {url}"));
    }
    let (word, role) = match (s.finished(), s.paused()) {
        // the view's verdict: `recovered-late` when the RTO or the RPO was missed, and a drill's own verdict
        (Some(_), _) => {
            let word = s.view.outcome_word().unwrap_or("finished");
            let mut text = word.to_uppercase().replace('-', " ");
            let mut role = match word {
                "recovered" => "rto.ok",
                "recovered-late" => "rto.late",
                _ => "danger",
            };
            if let Some(d) = s.view.drill_verdict(None) {
                text.push_str(&format!(" · DRILL {}", d.as_str().to_uppercase()));
                if d == crate::run::DrillVerdict::Failed {
                    role = "danger";
                }
            }
            (text, role)
        }
        (None, Some(_)) => ("PAUSED".to_string(), "warning"),
        (None, None) if s.events_closed => ("STREAM ENDED".to_string(), "warning"),
        (None, None) if s.steps().any(|x| matches!(x.phase, Phase::AwaitingApproval | Phase::WaitingOperator)) => {
            ("WAITING FOR YOU".to_string(), "step.awaiting")
        }
        (None, None) => ("RUNNING".to_string(), "step.running"),
    };
    let word = format!(" {word} ");
    let mut badges: Vec<Span> = Vec::new();
    // the run's region health (its circuits: `region_unreachable` events), then the failed calls of other regions
    for r in s.view.regions.iter().filter(|r| r.is_unreachable()) {
        let since = r.down.last().map(|d| d.since.strftime(" since %H:%M:%S").to_string()).unwrap_or_default();
        badges.push(Span::styled(format!(" {} unreachable{since} ", r.region), t.get("region.down")));
        badges.push(Span::raw(" "));
    }
    for (region, h) in
        s.view.region_calls.iter().filter(|(region, _)| !s.view.regions.iter().any(|r| &r.region == *region))
    {
        let text = if h.unreachable {
            format!(" {region} unreachable ")
        } else {
            format!(" {region}: {} failed call{} ", h.failures, if h.failures == 1 { "" } else { "s" })
        };
        badges.push(Span::styled(text, t.get(if h.unreachable { "region.down" } else { "warning" })));
        badges.push(Span::raw(" "));
    }
    let badges_w: usize = badges.iter().map(|b| b.content.chars().count()).sum();
    let room = w.saturating_sub(word.chars().count() + badges_w + 1);
    let where_ = trunc(&where_, room);
    let pad = w.saturating_sub(where_.chars().count() + badges_w + word.chars().count());
    let mut l2 = vec![Span::styled(where_, t.get("text")), Span::raw(" ".repeat(pad))];
    l2.extend(badges);
    l2.push(Span::styled(word, t.get(role).add_modifier(Modifier::BOLD)));
    lines.push(Line::from(l2));

    // 3: the RTO clock: time left, time since the incident, projected finish vs deadline
    let rto = fmt_duration(std::time::Duration::from_secs(run.rto_secs));
    let rpo = fmt_duration(std::time::Duration::from_secs(run.rpo_secs));
    let mut l3: Vec<Span> = Vec::new();
    if let Some(f) = s.finished() {
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
        let projection = s.projected();
        let margin = projection.map(|p| p.1);
        let role = rto_role(left, margin, run.rto_secs);
        let left_txt =
            if left >= 0 { format!(" {} left ", fmt_clock(left)) } else { format!(" {} OVER ", fmt_clock(-left)) };
        l3.push(Span::styled(format!("RTO {rto}"), t.get("text")));
        l3.push(Span::raw(" "));
        l3.push(Span::styled(left_txt, t.get(role)));
        // with a forecast from history: the P50 and P90 finish (a band), hours and minutes to fit 80 columns
        let band = s.clock().filter(|c| !c.finished && c.from_history && projection.is_some());
        if let Some(since) = s.since_incident().filter(|_| band.is_none() || w >= 120) {
            l3.push(Span::styled(format!(" · {} since incident", fmt_clock(since)), t.get("text")));
        }
        if let Some(c) = band {
            let hm = |ts: jiff::Timestamp| ts.strftime("%H:%M").to_string();
            let late = c.margin_secs < 0;
            let text = format!(
                " · finish P50 {} · P90 {} · deadline {}",
                hm(c.projected_finish),
                hm(c.p90_finish),
                hm(run.deadline)
            );
            l3.push(Span::styled(text, t.get(if late { "rto.late" } else { "text" })));
            if late {
                l3.push(Span::styled(" LATE", t.get("rto.late")));
            } else if c.p90_margin_secs < 0 {
                l3.push(Span::styled(" P90 LATE", t.get("rto.late")));
            }
            if w >= 120 {
                let runs = c.history_runs.unwrap_or(0);
                l3.push(Span::styled(
                    format!(" (from {runs} past run{})", if runs == 1 { "" } else { "s" }),
                    t.get("muted"),
                ));
                // which critical path applies: the `*` steps below are P50's; on P90 another chain is longest
                if !c.p90_critical_path.is_empty() {
                    l3.push(Span::styled(
                        format!(" · P90 path: {}", c.p90_critical_path.join(" → ")),
                        t.get("warning"),
                    ));
                }
            }
        } else if let Some((finish, margin)) = projection {
            let sign = if margin >= 0 { "+" } else { "" };
            let verdict = if margin >= 0 { "" } else { " LATE" };
            let text = if w >= 120 {
                format!(
                    " · finish {} vs deadline {} ({sign}{}{verdict})",
                    hms(finish),
                    hms(run.deadline),
                    fmt_clock(margin)
                )
            } else {
                format!(" · finish {} ({sign}{}{verdict})", hms(finish), fmt_clock(margin))
            };
            l3.push(Span::styled(text, t.get(if margin >= 0 { "text" } else { "rto.late" })));
        }
    }
    lines.push(Line::from(l3));

    // 4: the RPO verdict first, so that it is never cut; then the point
    let rpo_line = match &s.chosen() {
        Some(c) => {
            // the verdict, as every output says it (run::verdict): a point whose time is only a bound is `UNKNOWN`
            // and its age `≥ …`
            let age = fmt_duration(std::time::Duration::from_secs(c.rpo_secs.max(0) as u64));
            let ge = if c.bound { "≥ " } else { "" };
            let (txt, role) = match c.verdict {
                crate::run::RpoVerdict::Met => ("met", "rpo.met"),
                crate::run::RpoVerdict::Missed => ("MISSED", "rpo.missed"),
                crate::run::RpoVerdict::Unknown => ("UNKNOWN", "warning"),
            };
            let missed = c.verdict == crate::run::RpoVerdict::Missed;
            let accepted = if missed && s.rpo_loss_accepted() { " (loss accepted)" } else { "" };
            Line::from(vec![
                Span::styled(format!("RPO {rpo} {txt}{accepted}"), t.get(role)),
                Span::styled(format!(": point {ge}{age} old ({}, {})", c.kind, c.id), t.get("text")),
            ])
        }
        None => Line::from(Span::styled(format!("RPO {rpo}: no recovery point chosen yet"), t.get("muted"))),
    };
    lines.push(rpo_line);
    let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, w)).collect();
    Paragraph::new(lines).render(area, buf);
}

/// A line cut to `w` columns with an ellipsis (the spans keep their styles).
fn fit(line: Line<'_>, w: usize) -> Line<'_> {
    if line.width() <= w {
        return line;
    }
    let mut left = w.saturating_sub(1);
    let mut spans = Vec::new();
    for sp in line.spans {
        let n = sp.content.chars().count();
        if n <= left {
            left -= n;
            spans.push(sp);
        } else {
            let cut: String = sp.content.chars().take(left).collect();
            spans.push(Span::styled(format!("{cut}…"), sp.style));
            break;
        }
    }
    Line::from(spans)
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
    let stage = s.stage(i);
    let prev = i > 0 && s.stage(i - 1) == stage;
    let next = s.stage(i + 1).is_some_and(|n| Some(n) == stage);
    match (prev, next) {
        (false, false) => "─",
        (false, true) => "┌",
        (true, true) => "├",
        (true, false) => "└",
    }
}

fn steps_pane(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let focused = s.focus == Focus::Steps;
    let done = s.steps().filter(|x| x.phase.is_terminal()).count();
    let mode = if s.follow { "following" } else { "f: follow" };
    let title = Line::from(vec![
        Span::styled(" Steps ", t.get("title")),
        Span::styled(format!("{done}/{} · {mode} ", s.step_count()), t.get("muted")),
    ]);
    let b = block(title, focused, t);
    let inner = b.inner(area);
    b.render(area, buf);
    let w = inner.width as usize;
    let clock = s.clock().filter(|c| !c.finished);
    let critical: Vec<&str> =
        clock.as_ref().map(|c| c.critical_path.iter().map(String::as_str).collect()).unwrap_or_default();
    let items: Vec<ListItem> = s
        .steps()
        .enumerate()
        .map(|(i, st)| {
            let time = s.fmt_step_time(st);
            let att = if st.attempt > 1 { format!(" ×{}", st.attempt) } else { String::new() };
            // running past its P90 from the history: marked, in the warning colour
            let overdue = st.overdue && !st.phase.is_terminal();
            let right = format!("{}{time}{att}", if overdue { "P90! " } else { "" });
            let crit = if critical.contains(&st.info.id.as_str()) { "*" } else { " " };
            let lead = format!("{} {}{}", st.phase.icon(), branch(s, i), crit);
            let room = w.saturating_sub(lead.chars().count() + right.chars().count() + 2);
            let name = if w >= 40 {
                let id_w = st.info.id.chars().count().min(room);
                let title_w = room.saturating_sub(id_w + 1);
                format!("{} {}", trunc(&st.info.id, id_w), trunc(&st.info.title, title_w))
            } else {
                trunc(&st.info.id, room)
            };
            let pad = room.saturating_sub(name.chars().count());
            let style = t.get(st.phase.role());
            ListItem::new(Line::from(vec![
                Span::styled(lead, style),
                Span::raw(" "),
                Span::styled(name, if st.phase == Phase::Pending { t.get("text") } else { style }),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(right, t.get(if overdue { "warning" } else { "muted" })),
            ]))
        })
        .collect();
    let list = List::new(items).highlight_style(t.get("selected"));
    // keep the selection visible; say how many rows are hidden above and below
    let h = usize::from(inner.height);
    let n = s.step_count();
    let offset = if n <= h { 0 } else { s.selected.saturating_sub(h.saturating_sub(1)).min(n - h) };
    let mut ls = ListState::default().with_offset(offset).with_selected(Some(s.selected));
    StatefulWidget::render(list, inner, buf, &mut ls);
    let below = n.saturating_sub(offset + h);
    if (offset > 0 || below > 0) && h > 0 {
        let more = match (offset, below) {
            (0, b) => format!(" ↓ {b} more "),
            (a, 0) => format!(" ↑ {a} more "),
            (a, b) => format!(" ↑ {a} ↓ {b} more "),
        };
        let len = u16::try_from(more.chars().count()).unwrap_or(0);
        let x = area.x + area.width.saturating_sub(len + 1);
        buf.set_string(x, area.y + area.height.saturating_sub(1), more, t.get("key"));
    }
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
        Span::styled(format!(" {} {} ", st.phase.icon(), st.phase.label()), t.get(st.phase.role())),
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
    if let (Some(p50), Some(p90)) = (st.info.p50_secs, st.info.p90_secs) {
        let d = |x: u64| fmt_duration(std::time::Duration::from_secs(x));
        meta.push_str(&format!(" · P50 {} · P90 {}", d(p50), d(p90)));
    }
    if st.attempt > 0 {
        meta.push_str(&format!(" · attempt {}", st.attempt));
    }
    let time = s.fmt_step_time(st);
    if !time.is_empty() {
        meta.push_str(&format!(" · {time}"));
    }
    // of that time, how long it waited for a person (the report's "Waited" column)
    let waited = st.wait_secs(s.now());
    if waited > 0 {
        meta.push_str(&format!(" · waited {}", fmt_duration(std::time::Duration::from_secs(waited))));
    }
    lines.push(Line::from(Span::styled(meta, t.get("muted"))));
    if st.overdue
        && !st.phase.is_terminal()
        && let (Some(p50), Some(p90)) = (st.info.p50_secs, st.info.p90_secs)
    {
        let d = |x: u64| fmt_duration(std::time::Duration::from_secs(x));
        lines.push(Line::from(Span::styled(
            format!("OVERDUE: past its P90 of {}; typically {} (P50 of past runs)", d(p90), d(p50)),
            t.get("warning"),
        )));
    }
    if let Some(e) = &st.error {
        lines.push(Line::from(Span::styled(format!("error (attempt {})", st.attempt), t.get("danger"))));
        for l in e.lines() {
            lines.push(Line::from(Span::styled(format!("  {l}"), t.get("step.failed"))));
        }
        if s.control && s.finished().is_none() {
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
    if let Some(eta) = eta_line(s, st, t, w) {
        lines.push(eta);
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
    if matches!(st.phase, Phase::AwaitingApproval | Phase::WaitingOperator) && s.control {
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

/// For a running step that reports no percentage: elapsed against `expected`, as a bar, and when it should end.
fn eta_line<'a>(s: &State, st: &StepView, t: &Theme, w: usize) -> Option<Line<'a>> {
    if !matches!(st.phase, Phase::Running | Phase::Retrying) || st.info.expected_secs == 0 {
        return None;
    }
    if st.progress.as_ref().is_some_and(|(_, p)| p.is_some()) {
        return None;
    }
    let elapsed = s.attempt_secs(st)?;
    let expected = i64::try_from(st.info.expected_secs).unwrap_or(i64::MAX);
    let pct = (elapsed as f64 / expected as f64 * 100.0).min(100.0);
    let e = fmt_duration(std::time::Duration::from_secs(elapsed.unsigned_abs()));
    let x = fmt_duration(std::time::Duration::from_secs(st.info.expected_secs));
    let started = st.attempts.last()?.started;
    let end = started.checked_add(jiff::SignedDuration::from_secs(expected)).ok()?;
    let tail = if elapsed <= expected {
        format!(" {e} of ~{x} · ETA {}", hms(end))
    } else {
        format!(" {e} of ~{x} · over by {}", fmt_duration(std::time::Duration::from_secs((elapsed - expected) as u64)))
    };
    let bw = w.saturating_sub(12 + tail.chars().count()).clamp(4, 30);
    Some(Line::from(vec![
        Span::styled(format!("{:<10}", "expected"), t.get("muted")),
        Span::styled(bar(pct, bw), t.get(if elapsed <= expected { "progress" } else { "warning" })),
        Span::styled(tail, t.get("text")),
    ]))
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
    if focused {
        title.push(Span::styled("Enter: whole line ", t.get("key")));
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
    if let Some(hint) = s.resume_hint() {
        spans.push(Span::styled(format!("{hint}  "), t.get("key")));
    }
    // most urgent first: what the run waits for, then help and quit, then the rest as room allows
    let mut keys: Vec<(&str, &str)> = Vec::new();
    let waiting = s.steps().any(|x| matches!(x.phase, Phase::AwaitingApproval | Phase::WaitingOperator));
    let active = s.control && s.active();
    // Enter does what the focused pane does with it: on the log it opens the line, elsewhere it answers
    let log_enter = s.focus == Focus::Log && s.screen == Body::Main;
    if log_enter {
        keys.push(("Enter", "whole line"));
    } else if active && waiting {
        keys.push(("Enter", "answer"));
    }
    if active && s.selected_step().is_some_and(|x| x.phase == Phase::Failed) {
        keys.push(("r", "retry"));
    }
    if !s.follow || s.log_bottom.is_some() {
        keys.push(("f", "follow"));
    }
    // in an incident, q goes back to the overview (quitting is the overview's)
    keys.extend([("?", "help"), ("q", if s.app.is_some() { "overview" } else { "quit" })]);
    // a finished drill: its cleanup is one key away (it asks for the run id)
    if s.control
        && s.finished().is_some()
        && s.run().is_some_and(|r| r.drill)
        && s.cleanup != super::state::CleanupChoice::Confirmed
    {
        keys.push(("c", "clean up"));
    }
    if active {
        keys.push(("s", "skip"));
        keys.push(("p", if s.paused().is_some() { "resume" } else { "pause" }));
        keys.push(("X", "abort"));
    }
    keys.extend([("t", if s.screen == Body::Timeline { "steps" } else { "timeline" })]);
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
pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// A popup's frame; in an incident its title names the application whose question or action it is.
pub(super) fn popup(app: Option<&str>, title: &str, role: &str, t: &Theme, area: Rect, buf: &mut Buffer) -> Rect {
    Clear.render(area, buf);
    let title = match app {
        Some(a) => format!("{a} · {title}"),
        None => title.to_string(),
    };
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

pub(super) fn keys_line<'a>(pairs: &[(&str, &str)], t: &Theme) -> Line<'a> {
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
#[allow(clippy::too_many_arguments)]
pub(super) fn text_popup(
    app: Option<&str>,
    title: &str,
    role: &str,
    lines: Vec<Line>,
    max_w: u16,
    t: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let w = area.width.saturating_sub(4).min(max_w);
    let h = wrapped_rows(&lines, w.saturating_sub(2)).saturating_add(2);
    let r = centered(area, w, h);
    let inner = popup(app, title, role, t, r, buf);
    Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
}

fn help(app: Option<&str>, t: &Theme, area: Rect, buf: &mut Buffer) {
    let two = area.width >= 78;
    let w = if two { area.width.saturating_sub(2).min(110) } else { area.width.saturating_sub(2).min(60) };
    // each column: one space, the keys padded to the longest, the description cut to what is left
    let col_w = usize::from(if two { w.saturating_sub(2) / 2 } else { w.saturating_sub(2) });
    // keys padded to the longest of their column
    let widest = |gs: &[(&str, &[(&str, &str)])]| {
        gs.iter().flat_map(|g| g.1.iter()).map(|(k, _)| k.chars().count()).max().unwrap_or(8) + 1
    };
    let split = if two { 2.min(HELP.len()) } else { HELP.len() };
    let (left_w, right_w) = (widest(&HELP[..split]), widest(&HELP[split..]));
    let group = |g: &(&str, &[(&str, &str)]), key_w: usize| {
        let mut lines = vec![Line::from(Span::styled(trunc(g.0, col_w), t.get("title")))];
        for (k, d) in g.1 {
            // in an incident, q on an application's screen goes back to the overview (quitting is the overview's)
            let d = if app.is_some() && *k == "q" { "back to the overview" } else { *d };
            lines.push(Line::from(vec![
                Span::styled(format!(" {k:<key_w$}"), t.get("key")),
                Span::styled(trunc(d, col_w.saturating_sub(key_w + 1)), t.get("text")),
            ]));
        }
        lines
    };
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (i, g) in HELP.iter().enumerate() {
        if i >= split { right.extend(group(g, right_w)) } else { left.extend(group(g, left_w)) }
    }
    let h = (left.len().max(right.len()) + 3) as u16;
    let r = centered(area, w, h);
    let inner = popup(app, "Keys", "border.focus", t, r, buf);
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

/// The keys of a popup, or while its guard holds, a word that they are not taken yet.
fn popup_keys<'a>(s: &State, pairs: &[(&str, &str)], t: &Theme) -> Line<'a> {
    if s.guarded() {
        Line::from(Span::styled("(just opened: keys are taken in a moment)", t.get("muted")))
    } else {
        keys_line(pairs, t)
    }
}

fn resume_line<'a>(s: &State, t: &Theme) -> Line<'a> {
    let id = s.run().map(|r| r.run_id.clone()).unwrap_or_default();
    Line::from(vec![
        Span::styled("To continue later: ", t.get("text")),
        Span::styled(format!("drconsole resume {id}"), t.get("key")),
    ])
}

fn modal(s: &State, t: &Theme, m: &Modal, area: Rect, buf: &mut Buffer) {
    let app = s.app.as_deref();
    match m {
        Modal::Help => help(app, t, area, buf),
        Modal::Quit(_) => {
            let lines = vec![
                Line::from(Span::styled("The run is still active.", t.get("text"))),
                Line::from(Span::styled(
                    "Quitting interrupts it: running steps are cancelled, nothing new starts, and drconsole exits \
                     with code 130.",
                    t.get("text"),
                )),
                resume_line(s, t),
                Line::default(),
                keys_line(&[("y", "quit and interrupt"), ("n q", "keep going")], t),
            ];
            text_popup(app, "Quit?", "danger", lines, 64, t, area, buf);
        }
        Modal::Act(p) => {
            let (title, what) = match &p.act {
                Act::Pause => {
                    ("Pause the run?", "Running steps finish; nothing new starts until you resume (p).".to_string())
                }
                Act::Resume => ("Resume the run?", "Steps that are ready start again.".to_string()),
                Act::Retry { step } => (
                    "Retry the step?",
                    format!("`{step}` runs again from its start (it finds what its earlier attempt created)."),
                ),
            };
            let lines = vec![
                Line::from(Span::styled(what, t.get("text"))),
                Line::default(),
                keys_line(&[("y", "yes"), ("n q Esc", "no")], t),
            ];
            text_popup(app, title, "warning", lines, 64, t, area, buf);
        }
        Modal::Reason(p) => reason_popup(s, t, p, area, buf),
        Modal::Confirm(p) => confirm_popup(s, t, p, area, buf),
        Modal::Cleanup(p) => cleanup_popup(s, t, p, area, buf),
        Modal::Manual(p) => {
            let lines = vec![
                Line::from(Span::styled(p.instructions.clone(), t.get("text"))),
                Line::default(),
                popup_keys(s, &[("y", "done"), ("s", "skip…"), ("q n Esc", "not now")], t),
            ];
            text_popup(app, &format!("Manual task: {}", p.step), "step.awaiting", lines, 90, t, area, buf);
        }
        Modal::Picker(p) => picker(s, t, p, area, buf),
        Modal::RpoLoss(p) => rpo_loss_popup(app, t, p, area, buf),
        Modal::LogLine(i) => {
            let Some(l) = s.log.get(*i) else { return };
            let step = if l.step.is_empty() { "run" } else { l.step.as_str() };
            let lines = vec![
                Line::from(Span::styled(
                    format!("{} · {} · {step}", l.ts.strftime("%Y-%m-%d %H:%M:%S"), l.tag),
                    t.get("muted"),
                )),
                Line::default(),
                Line::from(Span::styled(l.text.clone(), t.get("text"))),
                Line::default(),
                keys_line(&[("Enter q Esc", "close")], t),
            ];
            text_popup(app, &format!("Log line {}/{}", i + 1, s.log.len()), "border.focus", lines, 110, t, area, buf);
        }
    }
}

fn confirm_popup(s: &State, t: &Theme, p: &ConfirmPopup, area: Rect, buf: &mut Buffer) {
    let role = if p.typed.is_some() { "danger" } else { "step.awaiting" };
    let mut lines = vec![
        Line::from(Span::styled(p.title.clone(), t.get("title"))),
        Line::from(vec![Span::styled("It will: ", t.get("muted")), Span::styled(p.plan.clone(), t.get("text"))]),
        Line::default(),
    ];
    match &p.typed {
        Some(ty) => {
            lines.push(Line::from(Span::styled(
                "This step moves traffic or replaces something in use.",
                t.get("danger"),
            )));
            lines.push(Line::from(vec![
                Span::styled("Type ", t.get("text")),
                Span::styled(ty.name.clone(), t.get("key")),
                Span::styled(format!(" ({}) to approve:", ty.what), t.get("text")),
            ]));
            let ok = super::popup::name_matches(&ty.input, &ty.name);
            let field_w = (ty.name.chars().count() + 2).max(20);
            let verdict = if ok {
                Span::styled("  ✓ matches", t.get("rpo.met"))
            } else if ty.mismatch {
                Span::styled("  ✗ does not match", t.get("danger"))
            } else {
                Span::raw("")
            };
            lines.push(Line::from(vec![
                Span::styled("> ", t.get("key")),
                Span::styled(format!("{:<field_w$}", ty.input), t.get("input")),
                verdict,
            ]));
            lines.push(Line::default());
            lines.push(popup_keys(s, &[("Enter", "approve"), ("^u", "clear"), ("Esc ^g", "not now")], t));
        }
        None => lines.push(popup_keys(s, &[("y", "approve"), ("s", "skip…"), ("q n Esc", "not now")], t)),
    }
    text_popup(s.app.as_deref(), &format!("Confirm step {}", p.step), role, lines, 90, t, area, buf);
}

/// The drill's cleanup: what it deletes, the typed run id, and how to clean up later instead.
fn cleanup_popup(s: &State, t: &Theme, p: &CleanupPopup, area: Rect, buf: &mut Buffer) {
    let (primary, secondary) =
        s.run().map_or((String::new(), String::new()), |r| (r.primary.clone(), r.secondary.clone()));
    let ok = p.matches(&p.input);
    let field_w = (p.run_id.chars().count() + 2).max(20);
    let verdict = if ok {
        Span::styled("  ✓ matches", t.get("rpo.met"))
    } else if p.mismatch {
        Span::styled("  ✗ does not match", t.get("danger"))
    } else {
        Span::raw("")
    };
    let lines = vec![
        Line::from(Span::styled(
            format!(
                "Cleanup deletes everything drill {} created (tagged drconsole:run-id) in {secondary} and {primary}, \
                 then lists what is left.",
                p.run_id
            ),
            t.get("text"),
        )),
        Line::default(),
        Line::from(vec![
            Span::styled("Type ", t.get("text")),
            Span::styled(p.run_id.clone(), t.get("key")),
            Span::styled(" or ", t.get("text")),
            Span::styled(p.short.clone(), t.get("key")),
            Span::styled(" to clean up when the console closes:", t.get("text")),
        ]),
        Line::from(vec![
            Span::styled("> ", t.get("key")),
            Span::styled(format!("{:<field_w$}", p.input), t.get("input")),
            verdict,
        ]),
        Line::default(),
        Line::from(vec![
            Span::styled("Not now: nothing is deleted; later run ", t.get("muted")),
            Span::styled(format!("drconsole cleanup {}", p.run_id), t.get("key")),
        ]),
        popup_keys(s, &[("Enter", "clean up"), ("^u", "clear"), ("Esc ^g", "not now")], t),
    ];
    text_popup(s.app.as_deref(), "Clean up the drill?", "danger", lines, 90, t, area, buf);
}

fn reason_popup(s: &State, t: &Theme, p: &ReasonPopup, area: Rect, buf: &mut Buffer) {
    let mut lines = Vec::new();
    let (title, act) = match &p.purpose {
        Purpose::Skip { step, needed_by } => {
            if !needed_by.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("Later steps use the outputs of `{step}`; if it is skipped they fail when they start:"),
                    t.get("danger"),
                )));
                for (other, refs) in needed_by {
                    lines.push(Line::from(Span::styled(format!("  {other}: {}", refs.join(" ")), t.get("warning"))));
                }
                lines.push(Line::default());
            }
            (format!("Skip step {step}?"), format!("skip `{step}`"))
        }
        Purpose::Abort => {
            lines.push(Line::from(Span::styled(
                "Running steps are cancelled and nothing new starts. The run ends as aborted (exit code 1); \
                 resources already created stay.",
                t.get("text"),
            )));
            lines.push(resume_line(s, t));
            lines.push(Line::default());
            ("Abort the run?".to_string(), "abort the run".to_string())
        }
    };
    lines.push(Line::from(Span::styled("Why? (recorded in the journal and the report)", t.get("text"))));
    lines.push(Line::from(vec![
        Span::styled("> ", t.get("key")),
        Span::styled(format!("{:<40}", p.reason), t.get("input")),
    ]));
    if p.empty {
        lines.push(Line::from(Span::styled("a reason is required", t.get("danger"))));
    }
    lines.push(Line::default());
    if p.confirming {
        lines.push(Line::from(vec![
            Span::styled(format!("Really {act}? "), t.get("danger")),
            Span::styled("y", t.get("key")),
            Span::styled(" yes   ", t.get("muted")),
            Span::styled("other keys", t.get("key")),
            Span::styled(" back to the reason", t.get("muted")),
        ]));
    } else {
        lines.push(keys_line(&[("Enter", "next"), ("^u", "clear"), ("Esc ^g", "cancel")], t));
    }
    let role = if matches!(p.purpose, Purpose::Abort) { "danger" } else { "warning" };
    text_popup(s.app.as_deref(), &title, role, lines, 76, t, area, buf);
}

fn rpo_loss_popup(app: Option<&str>, t: &Theme, p: &RpoLossPopup, area: Rect, buf: &mut Buffer) {
    let c = &p.candidate;
    let age = fmt_duration(std::time::Duration::from_secs(c.age_secs.max(0) as u64));
    let rpo = fmt_duration(std::time::Duration::from_secs(p.picker.rpo_secs));
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", c.id), t.get("title")),
            Span::styled(format!("({}, {}) is {age} old at the incident: ", c.kind, c.region), t.get("text")),
            Span::styled(format!("it misses the RPO of {rpo}."), t.get("rpo.missed")),
        ]),
        Line::default(),
    ];
    if p.meeting > 0 {
        let (s, verb) = if p.meeting == 1 { ("", "meets") } else { ("s", "meet") };
        lines.push(Line::from(Span::styled(
            format!("{} other recovery point{s} {verb} the RPO: n goes back to choose one.", p.meeting),
            t.get("warning"),
        )));
    } else {
        lines.push(Line::from(Span::styled("No recovery point meets the RPO.", t.get("warning"))));
    }
    lines.push(Line::from(Span::styled(
        "Choosing it accepts the data loss; the decision is recorded in the journal and the report.",
        t.get("text"),
    )));
    lines.push(Line::default());
    lines.push(keys_line(&[("y", "accept the RPO loss"), ("n q Esc", "back to the list")], t));
    text_popup(app, "Accept the RPO loss?", "danger", lines, 84, t, area, buf);
}

fn picker(s: &State, t: &Theme, p: &Picker, area: Rect, buf: &mut Buffer) {
    let none_meet = p.meeting() == 0;
    let want_h = u16::try_from(p.candidates.len()).unwrap_or(u16::MAX).saturating_add(7 + u16::from(none_meet)).max(10);
    let r = centered(area, area.width.saturating_sub(4).min(120), area.height.min(want_h));
    let inner = popup(s.app.as_deref(), &format!("Choose a recovery point · {}", p.step), "border.focus", t, r, buf);
    let [msg, banner, table_a, info, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(none_meet)),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    Paragraph::new(Line::from(Span::styled(p.message.clone(), t.get("text")))).render(msg, buf);
    if none_meet {
        let rpo = fmt_duration(std::time::Duration::from_secs(p.rpo_secs));
        Paragraph::new(Line::from(Span::styled(
            format!(" NO POINT MEETS THE RPO ({rpo}): choosing one accepts the data loss "),
            t.get("rto.late"),
        )))
        .render(banner, buf);
    }
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
    let target = s.run().map(|r| format!(" · RPO target {}", fmt_duration(std::time::Duration::from_secs(r.rpo_secs))));
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
        popup_keys(
            s,
            &[("Enter", "choose"), ("j k", "move"), ("o O", "sort"), ("/", "filter"), ("s", "skip…"), ("q", "not now")],
            t,
        )
    };
    Paragraph::new(k).render(keys, buf);
}
