//! A preflight's outputs: a table for the terminal, JSON for machines, and a markdown report in the style of the
//! run reports (evidence that readiness was checked, and when).

use std::fmt::Write;

use super::{Report, Status};
use crate::util::fmt_duration;

fn secs(s: u64) -> String {
    fmt_duration(std::time::Duration::from_secs(s))
}

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Cuts `s` to `n` characters, with `…` when cut.
fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The terminal table: one line per finding (what was checked, what was found), what to do under a warn/fail,
/// then what could not be checked and the verdict. `width` is the terminal's (long texts are wrapped by lines).
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "preflight: {} ({}) · {} · {} → {}", r.title, r.runbook, r.backend, r.primary, r.secondary);
    let _ = writeln!(
        out,
        "checked {} · account {} · RTO {} · RPO {}",
        stamp(r.checked_at),
        r.account.as_deref().unwrap_or("?"),
        secs(r.rto_secs),
        secs(r.rpo_secs)
    );
    let _ = writeln!(out);
    let step_w = r.findings.iter().map(|f| f.step.chars().count()).max().unwrap_or(4).clamp(4, 20);
    let _ = writeln!(out, "{:<4}  {:<step_w$}  CHECK — FOUND", "", "STEP");
    for f in &r.findings {
        let _ = writeln!(out, "{:<4}  {:<step_w$}  {} — {}", f.status.as_str(), fit(&f.step, step_w), f.check, f.found);
        if !f.todo.is_empty() {
            let _ = writeln!(out, "{:<4}  {:<step_w$}  → {}", "", "", f.todo);
        }
    }
    if !r.unchecked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "not checked:");
        for u in &r.unchecked {
            let _ = writeln!(out, "  {} ({}): {}", u.what, u.step, u.why);
        }
    }
    if !r.refused_calls.is_empty() {
        let _ = writeln!(out, "refused mutating calls (a bug: preflight is read-only): {:?}", r.refused_calls);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "verdict: {} — {} ok, {} warn, {} fail, {} not checked",
        r.verdict.as_str().to_uppercase(),
        r.count(Status::Ok),
        r.count(Status::Warn),
        r.count(Status::Fail),
        r.unchecked.len()
    );
    out
}

/// The report as JSON (pretty, with a trailing newline).
pub fn json(reports: &[Report]) -> String {
    let mut s = serde_json::to_string_pretty(reports).unwrap_or_default();
    s.push('\n');
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The markdown report (`preflight.md`).
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Preflight report: {}", r.title);
    let _ = writeln!(out);
    let _ = writeln!(out, "| | |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| Verdict | **{}** — {} ok, {} warn, {} fail, {} not checked |",
        r.verdict.as_str(),
        r.count(Status::Ok),
        r.count(Status::Warn),
        r.count(Status::Fail),
        r.unchecked.len()
    );
    let _ = writeln!(out, "| Checked at | {} |", stamp(r.checked_at));
    let _ = writeln!(out, "| Runbook | `{}` ({}) |", r.runbook, r.file);
    let _ = writeln!(out, "| Application | {} |", r.app);
    let _ = writeln!(out, "| Backend | {} |", r.backend);
    let _ = writeln!(out, "| Account | {} |", r.account.as_deref().unwrap_or("unknown"));
    let _ = writeln!(out, "| Identity | {} |", r.identity.as_deref().unwrap_or("unknown"));
    let _ = writeln!(out, "| Regions | {} (primary) → {} (secondary) |", r.primary, r.secondary);
    let _ = writeln!(out, "| RTO | target {} |", secs(r.rto_secs));
    let _ = writeln!(out, "| RPO | target {} (measured as if the incident started at the check) |", secs(r.rpo_secs));
    let _ = writeln!(
        out,
        "| Read-only | {} |",
        if r.refused_calls.is_empty() {
            "no mutating call was attempted".to_string()
        } else {
            format!("mutating calls attempted and refused: {:?}", r.refused_calls)
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "## Findings");
    let _ = writeln!(out);
    let _ = writeln!(out, "| Status | Step | Checked | Found | To do |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for f in &r.findings {
        let st = match f.status {
            Status::Ok => "ok".to_string(),
            s => format!("**{}**", s.as_str()),
        };
        let _ = writeln!(out, "| {st} | `{}` | {} | {} | {} |", f.step, cell(&f.check), cell(&f.found), cell(&f.todo));
    }
    if !r.unchecked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "## Not checked");
        let _ = writeln!(out);
        let _ = writeln!(out, "| Step | What | Why |");
        let _ = writeln!(out, "|---|---|---|");
        for u in &r.unchecked {
            let _ = writeln!(out, "| `{}` | {} | {} |", u.step, cell(&u.what), cell(&u.why));
        }
    }
    out
}
