//! The timeline (Gantt) view: one bar per step on the run's time axis, from the incident to past the RTO deadline.
//! Done work is solid, running work shaded up to "now", what has not happened yet is projected from each step's
//! `expected` duration after what it needs (as the engine projects); the critical path (the chain that sets the
//! projected finish) is marked, with a "now" line and the deadline line across every row.
//!
//! [`schedule`] is pure (state + now → bars), so the header's projected finish and the view agree, and both move
//! every tick while the run waits for a person.

use jiff::Timestamp;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};

use super::state::{Look, State, StepView};
use super::theme::Theme;
use crate::run::Phase;
use crate::util::fmt_clock;

/// One step's place on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub id: String,
    pub status: Phase,
    /// When it started (actual), or when it is projected to start.
    pub start: Timestamp,
    /// Up to here the bar is what happened (`start..done_until`); after it, projection.
    pub done_until: Timestamp,
    pub end: Timestamp,
    /// It has not started: the whole bar is projected.
    pub projected: bool,
    pub critical: bool,
    /// The spans it waited for a person (approval, manual task, choice), the open one up to now.
    pub waits: Vec<(Timestamp, Timestamp)>,
    /// Where it ends if it and what it needs take their P90 from the history (= `end` without history): the bar's
    /// forecast band runs from `end` (P50) to here.
    pub p90_end: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub bars: Vec<Bar>,
    /// The P50 finish (each step at its P50 from the history, else its expected duration).
    pub finish: Timestamp,
    /// The P90 finish (= `finish` without history).
    pub p90_finish: Timestamp,
    /// Steps on the critical path that have yet to finish, in order.
    pub critical_path: Vec<String>,
}

/// The forecast band of a step with history: from its P50 end to its P90 end.
pub const BAND_GLYPH: char = '┄';

/// Time spent waiting for a person (approval, manual task, choice): its own glyph, in the awaiting colour.
pub const WAIT_GLYPH: char = '▒';

fn add(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap_or(t)
}

fn secs(a: Timestamp, b: Timestamp) -> i64 {
    crate::run::clock::secs_between(a, b)
}

/// The projected schedule at `now`: ended steps as they were, running ones to `max(now, start + expected)`, the rest
/// after what they need. Steps come in dependency order (the state keeps them so).
pub fn schedule(s: &State, now: Timestamp) -> Option<Schedule> {
    let mut p50 = schedule_on(s, now, false)?;
    let p90 = schedule_on(s, now, true)?;
    for (b, b90) in p50.bars.iter_mut().zip(&p90.bars) {
        b.p90_end = b90.end.max(b.end);
    }
    p50.p90_finish = p90.finish.max(p50.finish);
    Some(p50)
}

/// The schedule with every step at its P50 (`p90`: P90) from the history, else its expected duration.
fn schedule_on(s: &State, now: Timestamp, p90: bool) -> Option<Schedule> {
    let run = s.run()?;
    let mut bars: Vec<Bar> = Vec::with_capacity(s.step_count());
    // the step each bar waited on last (for the critical path)
    let mut after: Vec<Option<usize>> = Vec::with_capacity(s.step_count());
    let index = |id: &str, bars: &[Bar]| bars.iter().position(|b| b.id == id);
    for st in s.steps() {
        let waits: Vec<(Timestamp, Timestamp)> =
            st.waits.iter().map(|w| (w.from, w.to.unwrap_or(now).max(w.from))).collect();
        let forecast = if p90 { st.info.p90_secs } else { st.info.p50_secs };
        let expected = i64::try_from(forecast.unwrap_or(st.info.expected_secs)).unwrap_or(0);
        let (ready, dep) = st
            .info
            .needs
            .iter()
            .filter_map(|n| index(n, &bars))
            .map(|i| (bars[i].end, Some(i)))
            .max_by_key(|(t, _)| *t)
            .unwrap_or((run.started, None));
        // a step's bar starts when it was ready: waiting for its approval is part of it, drawn as a wait
        let bar = match (st.first_seen.or(st.started), st.ended) {
            (Some(start), Some(end)) => Bar {
                id: st.info.id.clone(),
                status: st.phase,
                start,
                done_until: end,
                end,
                projected: false,
                critical: false,
                waits: waits.clone(),
                p90_end: end,
            },
            (None, Some(end)) => Bar {
                // skipped or cancelled before it started: a mark where it ended
                id: st.info.id.clone(),
                status: st.phase,
                start: end,
                done_until: end,
                end,
                projected: false,
                critical: false,
                waits: waits.clone(),
                p90_end: end,
            },
            (Some(start), None) if st.phase == Phase::AwaitingApproval => Bar {
                // it waits for its confirmation: the wait so far, then its expected time from now
                id: st.info.id.clone(),
                status: st.phase,
                start,
                done_until: now,
                end: add(now, expected),
                projected: false,
                critical: false,
                waits: waits.clone(),
                p90_end: add(now, expected),
            },
            (Some(start), None) if !st.phase.is_terminal() && st.phase != Phase::Pending => {
                let end = add(st.attempts.last().map_or(start, |a| a.started), expected).max(now);
                Bar {
                    id: st.info.id.clone(),
                    status: st.phase,
                    start,
                    done_until: now,
                    end,
                    projected: false,
                    critical: false,
                    waits: waits.clone(),
                    p90_end: end,
                }
            }
            _ => {
                // pending, approved-but-not-started, or awaiting approval: from when it can start (not before now)
                let start = ready.max(now);
                let end = add(start, expected);
                Bar {
                    id: st.info.id.clone(),
                    status: st.phase,
                    start,
                    done_until: start,
                    end,
                    projected: true,
                    critical: false,
                    waits: Vec::new(),
                    p90_end: end,
                }
            }
        };
        bars.push(bar);
        after.push(dep);
    }
    let last = bars.iter().enumerate().max_by_key(|(i, b)| (b.end, std::cmp::Reverse(*i))).map(|(i, _)| i);
    let finish = last.map_or(now, |i| bars[i].end).max(now);
    // walk back from the step that ends last through what it waited on
    let mut path = Vec::new();
    let ended = |i: usize| s.step_at(i).is_none_or(|x| x.phase.is_terminal());
    let mut cur = last.filter(|&i| !ended(i));
    while let Some(i) = cur {
        if ended(i) {
            break;
        }
        bars[i].critical = true;
        path.push(bars[i].id.clone());
        cur = after[i];
    }
    path.reverse();
    Some(Schedule { bars, finish, p90_finish: finish, critical_path: path })
}

fn hm(ts: Timestamp) -> String {
    ts.strftime("%H:%M").to_string()
}

/// A round tick interval (seconds) giving labels at least `min_cols` apart on an axis of `cols` columns.
fn tick_secs(span: i64, cols: usize, min_cols: usize) -> i64 {
    const STEPS: &[i64] = &[60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];
    let max_ticks = (cols / min_cols.max(1)).max(1) as i64;
    STEPS.iter().copied().find(|st| span / st <= max_ticks).unwrap_or(86_400)
}

/// Draws the timeline into `area` (the body between header and footer).
pub fn render(s: &State, t: &Theme, area: Rect, buf: &mut Buffer) {
    let now = s.finished().map_or(s.now(), |f| f.at);
    let title = Line::from(vec![
        Span::styled(" Timeline ", t.get("title")),
        Span::styled("· t: back to the steps ", t.get("muted")),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(t.get("border.focus"))
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let (Some(run), Some(plan)) = (s.run(), schedule(s, now)) else { return };
    if inner.height < 4 || inner.width < 30 {
        Paragraph::new("too small for the timeline").render(inner, buf);
        return;
    }
    let w = inner.width as usize;
    let label_w = if w >= 120 { 26 } else { 15 };
    let cols = w.saturating_sub(label_w + 1).max(10);
    // the axis: from the incident (the RTO counts from there) to past the deadline and the projected finish
    let t0 = run.incident_start.min(run.started);
    let t1 = run.deadline.max(plan.p90_finish).max(now);
    let span = secs(t0, t1).max(60);
    let t1 = add(t1, (span / 40).max(60));
    let span = secs(t0, t1).max(60);
    let col = |ts: Timestamp| -> usize {
        let x = secs(t0, ts).clamp(0, span) as f64 / span as f64 * (cols - 1) as f64;
        (x.round() as usize).min(cols - 1)
    };
    // the run time a column stands for (its middle)
    let at_col = |c: usize| -> Timestamp {
        let secs_in = (c as f64 / (cols - 1).max(1) as f64 * span as f64).round() as i64;
        add(t0, secs_in)
    };
    // half a column's run time
    let half = (span / (2 * (cols - 1).max(1) as i64)).max(1);
    let x = inner.x + label_w as u16 + 1;
    let now_x = col(now);
    let deadline_x = col(run.deadline);

    // row 0: labels; row 1: the ruler
    let step = tick_secs(span, cols, 7);
    let first = (t0.as_second().div_euclid(step) + 1) * step;
    let mut ruler: Vec<char> = vec!['─'; cols];
    let mut labels: Vec<char> = vec![' '; cols];
    let mut tick = first;
    while tick < t1.as_second() {
        let Ok(ts) = Timestamp::from_second(tick) else { break };
        let c = col(ts);
        ruler[c] = '┴';
        let text = hm(ts);
        let start = c.saturating_sub(2);
        if start + text.len() <= cols && labels[start..start + text.len()].iter().all(|ch| *ch == ' ') {
            for (i, ch) in text.chars().enumerate() {
                labels[start + i] = ch;
            }
        }
        tick += step;
    }
    let head = format!("{:<label_w$}", if w >= 120 { "step (UTC)" } else { "UTC" });
    buf.set_string(inner.x, inner.y, &head, t.get("muted"));
    buf.set_string(x, inner.y, labels.iter().collect::<String>(), t.get("muted"));
    buf.set_string(inner.x, inner.y + 1, " ".repeat(label_w), t.get("muted"));
    buf.set_string(x, inner.y + 1, ruler.iter().collect::<String>(), t.get("border"));

    // step rows, scrolled to keep the selection visible; the last row is the legend
    let rows = usize::from(inner.height.saturating_sub(3));
    let n = plan.bars.len();
    let offset = if n <= rows { 0 } else { s.selected.saturating_sub(rows.saturating_sub(1)).min(n - rows) };
    for (r, bar) in plan.bars.iter().enumerate().skip(offset).take(rows) {
        let y = inner.y + 2 + (r - offset) as u16;
        let Some(st) = s.step_at(r) else { continue };
        let st: &StepView = st;
        let mark = if bar.critical { "*" } else { " " };
        let label = format!("{} {mark}{}", st.phase.icon(), st.info.id);
        let label: String = label.chars().take(label_w).collect();
        let style = if r == s.selected { t.get("selected") } else { t.get(st.phase.role()) };
        buf.set_string(inner.x, y, format!("{label:<label_w$}"), style);
        let (a, b) = (col(bar.start), col(bar.end));
        let done = col(bar.done_until);
        for c in a..=b.max(a) {
            // a column waits when a wait fills half of it, or holds the middle of a wait (a short wait still shows)
            let (lo, hi) = (add(at_col(c), -half), add(at_col(c), half));
            let waiting = bar.waits.iter().any(|&(from, to)| {
                let overlap = secs(from.max(lo), to.min(hi));
                let mid = add(from, secs(from, to) / 2);
                from < to && (overlap * 2 >= secs(lo, hi) || (lo <= mid && mid < hi))
            });
            let (ch, role) = if !bar.projected && c <= done && waiting {
                (WAIT_GLYPH, "step.awaiting")
            } else if bar.projected || c > done {
                ('░', if bar.critical { "timeline.critical" } else { "timeline.projected" })
            } else {
                match bar.status {
                    Phase::Succeeded => ('█', "step.succeeded"),
                    Phase::Failed => ('█', "step.failed"),
                    Phase::Skipped => ('»', "step.skipped"),
                    Phase::Cancelled => ('-', "step.cancelled"),
                    Phase::AwaitingApproval | Phase::WaitingOperator => (WAIT_GLYPH, "step.awaiting"),
                    _ => ('▓', "step.running"),
                }
            };
            buf.set_string(x + c as u16, y, ch.to_string(), t.get(role));
        }
        // the forecast band: from its P50 end to its P90 end (steps with history that have not ended)
        let b90 = col(bar.p90_end);
        for c in (b.max(a) + 1)..=b90 {
            buf.set_string(x + c as u16, y, BAND_GLYPH.to_string(), t.get("timeline.projected"));
        }
    }
    // the deadline and now lines over every step row (where no bar is drawn, or over it)
    for r in 0..rows.min(n) {
        let y = inner.y + 2 + r as u16;
        let line = |buf: &mut Buffer, c: usize, ch: &str, style: Style| {
            let cell = &mut buf[(x + c as u16, y)];
            if cell.symbol() == " " || cell.symbol() == "░" {
                cell.set_symbol(ch).set_style(style);
            }
        };
        line(buf, deadline_x, "┃", t.get("timeline.deadline"));
        if s.finished().is_none() {
            line(buf, now_x, "│", t.get("timeline.now"));
        }
    }
    buf.set_string(x + deadline_x as u16, inner.y + 1, "┃", t.get("timeline.deadline"));
    if s.finished().is_none() {
        buf.set_string(x + now_x as u16, inner.y + 1, "│", t.get("timeline.now"));
    }

    // legend and figures
    let y = inner.y + inner.height - 1;
    let hidden = n.saturating_sub(rows);
    let margin = secs(plan.finish, run.deadline);
    let sign = if margin >= 0 { "+" } else { "" };
    let mut spans = vec![
        Span::styled("█", t.get("step.succeeded")),
        Span::styled(" done ", t.get("muted")),
        Span::styled("▓", t.get("step.running")),
        Span::styled(" running ", t.get("muted")),
        Span::styled(WAIT_GLYPH.to_string(), t.get("step.awaiting")),
        Span::styled(" waiting for a person ", t.get("muted")),
        Span::styled("░", t.get("timeline.projected")),
        Span::styled(" projected ", t.get("muted")),
        Span::styled("*", t.get("timeline.critical")),
        Span::styled(" critical ", t.get("muted")),
    ];
    if s.finished().is_none() {
        spans.push(Span::styled("│", t.get("timeline.now")));
        spans.push(Span::styled(format!(" now {} ", s.now().strftime("%H:%M:%S")), t.get("muted")));
    }
    spans.push(Span::styled("┃", t.get("timeline.deadline")));
    spans.push(Span::styled(format!(" deadline {} ", run.deadline.strftime("%H:%M:%S")), t.get("muted")));
    let band = plan.p90_finish > plan.finish;
    if band && s.finished().is_none() {
        spans.push(Span::styled(BAND_GLYPH.to_string(), t.get("timeline.projected")));
        spans.push(Span::styled(" P50–P90 ", t.get("muted")));
    }
    let verdict = match s.finished() {
        Some(f) => format!("· ended {}", f.at.strftime("%H:%M:%S")),
        // the band: hours and minutes, so that both fit 80 columns (the header has the deadline beside them)
        None if band => {
            format!("· finish P50 {} · P90 {}", plan.finish.strftime("%H:%M"), plan.p90_finish.strftime("%H:%M"))
        }
        None => format!("· finish {} ({sign}{})", plan.finish.strftime("%H:%M:%S"), fmt_clock(margin)),
    };
    spans.push(Span::styled(verdict, t.get(if margin >= 0 { "text" } else { "rto.late" })));
    if hidden > 0 {
        spans.push(Span::styled(format!(" · {hidden} more (j k)"), t.get("key")));
    }
    // at 80 columns the legend words go first, then the figures stay
    let full: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    if full > w {
        spans.retain(|s| {
            !matches!(
                s.content.trim(),
                "done" | "running" | "waiting for a person" | "projected" | "critical" | "P50–P90"
            )
        });
        for s in &mut spans {
            if matches!(s.content.as_ref(), "█" | "▓" | "▒" | "░" | "*" | "┄") {
                s.content = format!("{} ", s.content).into();
            }
        }
    }
    Paragraph::new(Line::from(spans)).render(Rect { x: inner.x, y, width: inner.width, height: 1 }, buf);
}
