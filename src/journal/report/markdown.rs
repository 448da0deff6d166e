//! `report.md`: the evidence report for people (auditors, the incident review). Every table cell is escaped.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

use super::Report;
use crate::util::fmt_duration;

fn secs(s: u64) -> String {
    fmt_duration(Duration::from_secs(s))
}

pub(super) fn ts(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

fn hms(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), |t| t.strftime("%H:%M:%SZ").to_string())
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**MISSED**",
        None => "not known",
    }
}

/// The report for people.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let title = if r.runbook.title.is_empty() { r.runbook.name.as_str() } else { r.runbook.title.as_str() };
    let _ = writeln!(o, "# Recovery report: {title}\n");
    let outcome = r
        .verdict
        .as_deref()
        .or(r.outcome.as_deref())
        .unwrap_or("not finished (running, or the process stopped: resume it)");
    let _ = writeln!(o, "| | |\n|---|---|");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    };
    row("Outcome", {
        let line = crate::run::verdict::outcome_line(outcome, &r.message);
        format!("**{outcome}**{}", line.strip_prefix(outcome).unwrap_or_default())
    });
    row("Run", format!("`{}`", r.run_id));
    row("Runbook", format!("`{}` ({})", r.runbook.name, r.runbook.path));
    row("Runbook sha256", format!("`{}`", r.runbook.sha256));
    row("Operator", format!("{}@{}", r.operator.user, r.operator.host));
    row("Backend", r.backend.clone());
    row("Account", r.account.clone().unwrap_or_else(|| "not set".into()));
    if let Some(i) = &r.identity {
        row("Identity", i.clone());
    }
    row("Regions", format!("{} (primary) → {} (secondary)", r.primary, r.secondary));
    row("Incident start", ts(r.incident_start));
    row("Run started", ts(r.started));
    row("Run ended", ts(r.ended));
    // the RTO's breakdown: time waiting for a person apart from the rest (machine time)
    let waited = match (r.rto.waited_secs, r.rto.machine_secs) {
        (0, _) => String::new(),
        (w, Some(m)) => format!(" ({} waiting for people, {} machine time)", secs(w), secs(m)),
        (w, None) => format!(" ({} of it waiting for people)", secs(w)),
    };
    let rto = match r.rto.achieved_secs {
        Some(a) => {
            format!("target {}, achieved {}{waited} — {}", secs(r.rto.target_secs), secs(a), verdict(r.rto.met))
        }
        None => format!("target {}, not finished{waited}", secs(r.rto.target_secs)),
    };
    row("RTO", rto);
    if let Some(f) = &r.rto.forecast {
        row("Forecast", f.clone());
    }
    let rpo = match r.rpo.achieved_secs {
        Some(a) => format!(
            "target {}, achieved {} — {}",
            secs(r.rpo.target_secs),
            if r.rpo.bound {
                format!("≥ {}", secs(u64::try_from(a).unwrap_or(0)))
            } else {
                secs(u64::try_from(a).unwrap_or(0))
            },
            match r.rpo.verdict {
                Some(crate::run::RpoVerdict::Unknown) => "**UNKNOWN** (a time known only as a bound)",
                _ => verdict(r.rpo.met),
            }
        ),
        None => format!("target {}, no recovery point chosen in this run", secs(r.rpo.target_secs)),
    };
    row("RPO", rpo);
    let _ = writeln!(o);
    if let Some(t) = &r.recovery_test {
        recovery_test(&mut o, t);
    }
    if let Some(c) = &r.cleanup {
        let _ = writeln!(o, "## Cleanup (`--force`)\n");
        cleanup_lines(&mut o, c);
        let _ = writeln!(o);
    }

    if !r.rpo.recovery_points.is_empty() {
        let _ = writeln!(o, "## Recovery points\n");
        let _ = writeln!(o, "| Step | Recovery point | Kind | Region | Taken at | Data loss window | RPO |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for p in &r.rpo.recovery_points {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                cell(&p.step),
                cell(&p.id),
                cell(&p.kind),
                cell(&p.region),
                ts(Some(p.time)),
                if p.bound {
                    format!("≥ {}", secs(u64::try_from(p.rpo_secs).unwrap_or(0)))
                } else {
                    secs(u64::try_from(p.rpo_secs).unwrap_or(0))
                },
                p.verdict.shout()
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Timeline\n");
    let _ = writeln!(o, "| Step | Action | Start | End | Duration | Waited | Attempts | Outcome | Resources |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let res: Vec<String> = s
            .resources
            .iter()
            .map(|x| {
                format!(
                    "{} `{}` in {} ({}{})",
                    x.kind,
                    x.id,
                    x.region,
                    x.phase,
                    if x.state.is_empty() { String::new() } else { format!(", {}", x.state) }
                )
            })
            .collect();
        let outcome = match &s.detail {
            Some(d) if s.outcome != "succeeded" => format!("{}: {d}", s.outcome),
            _ => s.outcome.clone(),
        };
        let _ = writeln!(
            o,
            "| `{}` {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.id,
            cell(&s.title),
            cell(&s.action),
            hms(s.start),
            hms(s.end),
            s.duration_secs.map_or_else(|| "—".to_string(), secs),
            if s.wait_secs > 0 { secs(s.wait_secs) } else { "—".to_string() },
            s.attempts,
            cell(&outcome),
            cell(&res.join("; "))
        );
    }
    let _ = writeln!(o);

    let _ = writeln!(o, "## Decisions\n");
    if r.decisions.is_empty() {
        let _ = writeln!(o, "None: no approval, answer, skip, abort or resume was recorded.\n");
    } else {
        if r.simulated {
            let _ = writeln!(o, "| Time (simulated) | Real time | Who | What | Step | Why / detail |");
            let _ = writeln!(o, "|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(o, "| Time | Who | What | Step | Why / detail |");
            let _ = writeln!(o, "|---|---|---|---|---|");
        }
        for d in &r.decisions {
            let real = if r.simulated { format!(" {} |", ts(d.wall)) } else { String::new() };
            let _ = writeln!(
                o,
                "| {} |{real} {} | {} | {} | {} |",
                ts(Some(d.at)),
                cell(&d.by),
                cell(&d.what),
                d.step.as_deref().map_or_else(String::new, |s| format!("`{s}`")),
                cell(&d.detail)
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Verification\n");
    if r.verification.is_empty() {
        let _ = writeln!(o, "No verification step (`check.*`) in this runbook.\n");
    } else {
        let _ = writeln!(o, "| Step | Check | Result | Detail |");
        let _ = writeln!(o, "|---|---|---|---|");
        for c in &r.verification {
            let _ = writeln!(o, "| `{}` | {} | {} | {} |", c.step, cell(&c.action), cell(&c.outcome), cell(&c.detail));
        }
        let _ = writeln!(o);
    }

    if !r.warnings.is_empty() {
        let _ = writeln!(o, "## Warnings\n");
        for w in &r.warnings {
            let _ = writeln!(o, "- `{}`: {}", w.step, w.message.replace('\n', " "));
        }
        let _ = writeln!(o);
    }

    if !r.regions.is_empty() {
        let _ = writeln!(o, "## Region health\n");
        let _ = writeln!(o, "| region | unreachable from | until | evidence |");
        let _ = writeln!(o, "|---|---|---|---|");
        for d in &r.regions {
            let until = match d.until {
                None => "still unreachable at the end".to_string(),
                Some(u) if d.session_ended => format!("{} (session {} ended; not known since)", ts(Some(u)), d.session),
                Some(u) => ts(Some(u)),
            };
            let _ = writeln!(o, "| {} | {} | {} | {} |", cell(&d.region), ts(Some(d.since)), until, cell(&d.evidence));
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Errors\n");
    if r.errors.is_empty() && r.journal.problem.is_none() {
        let _ = writeln!(o, "None.\n");
    } else {
        for e in &r.errors {
            let step = e.step.as_deref().map_or_else(String::new, |s| format!(" `{s}`"));
            let attempt = e.attempt.map_or_else(String::new, |a| format!(" attempt {a}"));
            let _ = writeln!(o, "- {}{step}{attempt}: {}", ts(Some(e.at)), e.error.replace('\n', " "));
        }
        if let Some(p) = &r.journal.problem {
            let _ = writeln!(o, "- the journal is damaged: {p}; this report covers the records before that line");
        }
        let _ = writeln!(o);
    }

    notifications(&mut o, &r.notifications, "the run");

    let _ = writeln!(o, "## Sessions\n");
    for s in &r.sessions {
        let how = if s.resumed { "resumed" } else { "started" };
        let _ = writeln!(o, "- {} session {} {how} by {}@{} (pid {})", ts(Some(s.at)), s.number, s.user, s.host, s.pid);
    }
    let torn = if r.journal.torn_tail { "; its last line was torn by a crash and left out" } else { "" };
    let _ = writeln!(o, "\nJournal: {} records{torn}.", r.journal.records);
    o
}

/// A drill's "Recovery test" section: the audit record of one scheduled recovery test.
fn recovery_test(o: &mut String, t: &super::RecoveryTest) {
    let _ = writeln!(o, "## Recovery test\n");
    let _ =
        writeln!(o, "A drill: rehearsed in the secondary region; production DNS and the primary region untouched.\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    };
    row("Verdict", format!("**{}**", t.verdict.to_uppercase()));
    row(
        "RTO",
        match t.rto_achieved_secs {
            Some(a) => {
                format!("measured {} against a target of {} — {}", secs(a), secs(t.rto_target_secs), verdict(t.rto_met))
            }
            None => format!("target {}, not measured (the run did not end)", secs(t.rto_target_secs)),
        },
    );
    row(
        "RPO",
        match t.rpo_achieved_secs {
            Some(a) => format!(
                "measured {} against a target of {} — {}",
                secs(u64::try_from(a).unwrap_or(0)),
                secs(t.rpo_target_secs),
                verdict(t.rpo_met)
            ),
            None => format!("target {}, no recovery point chosen", secs(t.rpo_target_secs)),
        },
    );
    let ok = t.checks.iter().filter(|c| c.outcome == "succeeded").count();
    row("Checks", format!("{ok} of {} succeeded", t.checks.len()));
    let cleanup = match &t.cleanup {
        None => "not run: remove the drill's resources with `drconsole cleanup RUN`".to_string(),
        Some(c) => {
            let left = match &c.left {
                None => "not finished (run `drconsole cleanup RUN` again)".to_string(),
                Some(l) if l.is_empty() => "nothing left tagged with the run id".to_string(),
                Some(l) => format!("{} LEFT tagged with the run id: {}", l.len(), l.join(", ")),
            };
            let failed = if c.failed.is_empty() { String::new() } else { format!("; {} failed", c.failed.len()) };
            let in_use = if c.in_use.is_empty() {
                String::new()
            } else {
                format!("; {} kept in use by others (still tagged): {}", c.in_use.len(), c.in_use.join(", "))
            };
            format!("{} resources removed{failed}; {left}{in_use}", c.removed.len())
        }
    };
    row("Cleanup", cleanup);
    row("Runbook sha256", format!("`{}`", t.runbook_sha256));
    let _ = writeln!(o);
    if !t.checks.is_empty() {
        let _ = writeln!(o, "| Check | Action | Outcome |\n|---|---|---|");
        for c in &t.checks {
            let _ = writeln!(o, "| {} | {} | {} |", cell(&c.step), cell(&c.action), cell(&c.outcome));
        }
        let _ = writeln!(o);
    }
    if let Some(c) = &t.cleanup {
        if !c.removed.is_empty() {
            let _ =
                writeln!(o, "Removed by cleanup ({} session{}):\n", c.sessions, if c.sessions == 1 { "" } else { "s" });
            for x in &c.removed {
                let _ = writeln!(o, "- {}", cell(x));
            }
            let _ = writeln!(o);
        }
        for x in c.kept.iter().map(|k| format!("kept: {k}")).chain(c.failed.iter().map(|f| format!("FAILED: {f}"))) {
            let _ = writeln!(o, "- {}", cell(&x));
        }
        if !c.kept.is_empty() || !c.failed.is_empty() {
            let _ = writeln!(o);
        }
    }
}

/// A cleanup's result as lines: removed, kept and why, in use, failed, what is left.
fn cleanup_lines(o: &mut String, c: &super::CleanupResult) {
    let left = match &c.left {
        None => "not finished (run `drconsole cleanup RUN --force` again)".to_string(),
        Some(l) if l.is_empty() => "nothing".to_string(),
        Some(l) => l.join(", "),
    };
    let _ = writeln!(o, "- {} resource(s) removed in {} session(s)", c.removed.len(), c.sessions);
    for x in &c.removed {
        let _ = writeln!(o, "- removed: {}", cell(x));
    }
    for x in &c.kept {
        let _ = writeln!(o, "- kept: {}", cell(x));
    }
    for x in &c.in_use {
        let _ = writeln!(o, "- in use by others, still tagged with the run id: {}", cell(x));
    }
    for x in &c.failed {
        let _ = writeln!(o, "- FAILED: {}", cell(x));
    }
    let _ = writeln!(o, "- left tagged with the run id: {}", cell(&left));
}

/// The **Notifications** section (nothing without deliveries): every message to the bridge and how its delivery
/// went, with how many failed while `who` ("the run", "the incident") went on without them. Ends with a blank line.
pub(crate) fn notifications(o: &mut String, deliveries: &[crate::notify::log::Delivery], who: &str) {
    if deliveries.is_empty() {
        return;
    }
    let failed = deliveries.iter().filter(|d| d.result != "delivered").count();
    let _ = writeln!(o, "## Notifications\n");
    if failed > 0 {
        let _ = writeln!(o, "{failed} of {} deliveries FAILED ({who} went on without them).\n", deliveries.len());
    }
    let _ = writeln!(o, "| Time | Notification | Webhook | Result | Attempts | Detail |");
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for d in deliveries {
        let detail = d.error.clone().or_else(|| d.status.map(|s| format!("HTTP {s}"))).unwrap_or_default();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            ts(Some(d.at)),
            d.event,
            cell(&d.url),
            d.result,
            d.attempts,
            cell(&detail)
        );
    }
    let _ = writeln!(o);
}
