//! The headless frontend: one line per event (or NDJSON with `--json`), answers confirmations from flags, and
//! stops with exit 3 when the run needs an answer it was not given.

use std::collections::HashSet;
use std::io::Write;

use jiff::Timestamp;

use crate::engine::{Command, Event, EventKind, Outcome, Prompt, RunHandle, RunResult};
use crate::util::{fmt_clock, fmt_duration};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub json: bool,
    pub approve_all: bool,
    pub approve: HashSet<String>,
    /// Who answers, recorded in approvals: `user@host (headless)`.
    pub operator: String,
}

impl Options {
    fn approves(&self, step: &str) -> bool {
        self.approve_all || self.approve.contains(step)
    }
}

/// Renders events as text lines (or NDJSON): shared by headless runs and `drconsole watch`.
pub struct Printer<W: Write> {
    out: W,
    json: bool,
    start: Option<Timestamp>,
    deadline: Option<Timestamp>,
    last_margin: Option<i64>,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, json: bool) -> Self {
        Self { out, json, start: None, deadline: None, last_margin: None }
    }

    /// Prints one event, and the summary when the run finishes.
    pub fn print(&mut self, ev: &Event) {
        self.event(ev);
        if let EventKind::RunFinished { .. } = ev.kind {
            self.summary(ev);
        }
        let _ = self.out.flush();
    }

    fn line(&mut self, ts: Timestamp, tag: &str, step: &str, text: &str) {
        let start = self.start.unwrap_or(ts);
        let elapsed = ts.duration_since(start).as_secs();
        let left = self.deadline.map_or(0, |d| d.duration_since(ts).as_secs());
        // values drconsole did not write (command output, AWS names) must not drive the terminal
        let (step, text) = (crate::util::sanitize_line(step), crate::util::sanitize_line(text));
        let _ = writeln!(self.out, "[+{} RTO {}] {tag:<8} {step:<16} {text}", fmt_clock(elapsed), fmt_clock(left));
    }

    fn event(&mut self, ev: &Event) {
        if self.json {
            if let Ok(s) = serde_json::to_string(ev) {
                let _ = writeln!(self.out, "{s}");
            }
            if let EventKind::RunStarted { .. } = &ev.kind {
                self.track(ev);
            }
            return;
        }
        self.track(ev);
        let ts = ev.ts;
        match &ev.kind {
            EventKind::RunStarted {
                run_id,
                runbook,
                title,
                backend,
                account,
                primary,
                secondary,
                rto_secs,
                rpo_secs,
                steps,
                ..
            } => {
                let acct = account.as_deref().map(|a| format!(" account {a}")).unwrap_or_default();
                let text = format!(
                    "{title} ({runbook}) run {run_id} on {backend}{acct} {primary} -> {secondary}; {} steps; RTO {} RPO {}",
                    steps.len(),
                    fmt_duration(std::time::Duration::from_secs(*rto_secs)),
                    fmt_duration(std::time::Duration::from_secs(*rpo_secs)),
                );
                self.line(ts, "run", "", &text);
            }
            EventKind::Identity { account, arn } => {
                self.line(ts, "identity", "", &format!("account {account} as {arn}"))
            }
            EventKind::StepAwaitingApproval { step, plan } => {
                self.line(ts, "confirm", step, &format!("needs approval: {plan}"))
            }
            EventKind::StepApproved { step, by } => self.line(ts, "approved", step, &format!("by {by}")),
            EventKind::StepStarted { step, attempt, plan, .. } => {
                self.line(ts, "start", step, &format!("attempt {attempt}: {plan}"))
            }
            EventKind::StepProgress { step, message, percent } => {
                let pct = percent.map(|p| format!(" ({p:.0}%)")).unwrap_or_default();
                self.line(ts, "progress", step, &format!("{message}{pct}"));
            }
            EventKind::Resource { step, phase, kind, id, region, state } => {
                self.line(ts, "resource", step, &format!("{phase} {kind} {id} in {region}: {state}"));
            }
            EventKind::OperatorRequest { step, prompt } => match prompt {
                Prompt::Done { instructions } => {
                    self.line(ts, "manual", step, &format!("operator task: {instructions}"))
                }
                Prompt::Choice { message, candidates } => {
                    self.line(ts, "choose", step, &format!("{message} ({} candidates)", candidates.len()))
                }
            },
            EventKind::OperatorAnswered { step, answer, by } => {
                self.line(ts, "answered", step, &format!("{answer} (by {by})"))
            }
            EventKind::RecoveryPointChosen { step, id, kind, region, time, rpo_secs, rpo_met } => {
                let met = if *rpo_met { "RPO met" } else { "RPO MISSED" };
                let age = fmt_duration(std::time::Duration::from_secs(u64::try_from(*rpo_secs).unwrap_or(0)));
                self.line(
                    ts,
                    "point",
                    step,
                    &format!("{kind} {id} in {region} at {time} (data loss window {age}, {met})"),
                );
            }
            EventKind::StepRetrying { step, attempt, error, delay_ms } => {
                let d = *delay_ms as f64 / 1000.0;
                self.line(ts, "retry", step, &format!("attempt {attempt} failed: {error}; next attempt in {d:.1}s"));
            }
            EventKind::StepSucceeded { step, duration_ms, outputs, .. } => {
                let outs: Vec<String> = outputs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect();
                let outs = if outs.is_empty() { String::new() } else { format!("; {}", outs.join(" ")) };
                let d = fmt_duration(std::time::Duration::from_millis(*duration_ms));
                self.line(ts, "ok", step, &format!("in {d}{outs}"));
            }
            EventKind::StepFailed { step, attempt, error, policy } => {
                self.line(
                    ts,
                    "FAILED",
                    step,
                    &format!("attempt {attempt}: {error} (on_failure = {})", policy.as_str()),
                );
            }
            EventKind::StepSkipped { step, reason, by } => {
                self.line(ts, "skipped", step, &format!("{reason} (by {by})"))
            }
            EventKind::StepCancelled { step, reason } => self.line(ts, "cancel", step, reason),
            EventKind::Projection { projected_finish, margin_secs, .. } => {
                // print only meaningful changes: the first, a sign change, or a move of a minute or more
                let show = match self.last_margin {
                    None => true,
                    Some(m) => (m < 0) != (*margin_secs < 0) || (m - margin_secs).abs() >= 60,
                };
                if show {
                    self.last_margin = Some(*margin_secs);
                    let verdict = if *margin_secs >= 0 { "on track" } else { "LATE" };
                    let finish = projected_finish.strftime("%H:%M:%SZ");
                    self.line(
                        ts,
                        "eta",
                        "",
                        &format!("projected finish {finish}, margin {} ({verdict})", fmt_clock(*margin_secs)),
                    );
                }
            }
            EventKind::RunPaused { reason } => self.line(ts, "paused", "", reason),
            EventKind::RunResumed { by } => self.line(ts, "resumed", "", &format!("by {by}")),
            EventKind::RunFinished { .. } => {}
        }
    }

    fn track(&mut self, ev: &Event) {
        if let EventKind::RunStarted { deadline, .. } = &ev.kind {
            self.start = Some(ev.ts);
            self.deadline = Some(*deadline);
        }
    }

    fn summary(&mut self, ev: &Event) {
        let EventKind::RunFinished {
            outcome,
            duration_secs,
            rto_secs,
            rto_achieved_secs,
            rto_met,
            succeeded,
            failed,
            skipped,
            cancelled,
            message,
        } = &ev.kind
        else {
            return;
        };
        if self.json {
            return;
        }
        let d = |s: u64| fmt_duration(std::time::Duration::from_secs(s));
        let _ = writeln!(self.out);
        let _ = writeln!(self.out, "outcome:  {} — {}", outcome.as_str(), crate::util::sanitize_line(message));
        let _ = writeln!(self.out, "duration: {}", d(*duration_secs));
        let verdict = match (outcome, rto_met) {
            (Outcome::Recovered, true) => "met",
            (Outcome::Recovered, false) => "MISSED",
            _ => "not recovered",
        };
        let _ = writeln!(self.out, "RTO:      target {}, achieved {} ({verdict})", d(*rto_secs), d(*rto_achieved_secs));
        let _ = writeln!(
            self.out,
            "steps:    {succeeded} succeeded, {failed} failed, {skipped} skipped, {cancelled} cancelled"
        );
    }
}

/// Drives a run to its end, printing to `out`; Ctrl-C / SIGTERM interrupt it gracefully.
pub async fn run<W: Write>(mut handle: RunHandle, opts: &Options, out: W) -> RunResult {
    let mut p = Printer::new(out, opts.json);
    let by = if opts.operator.is_empty() { "headless".to_string() } else { opts.operator.clone() };
    let interrupted = shutdown_signal();
    tokio::pin!(interrupted);
    let mut signalled = false;
    loop {
        tokio::select! {
            ev = handle.events.recv() => {
                let Some(ev) = ev else { break };
                p.event(&ev);
                if let EventKind::RunFinished { .. } = ev.kind {
                    p.summary(&ev);
                }
                if let Some(cmd) = respond(&ev.kind, opts, &by) {
                    if let Command::Block { reason } = &cmd {
                        eprintln!("drconsole: {}", crate::util::sanitize_line(reason));
                    }
                    let _ = handle.commands.send(cmd);
                }
            }
            () = &mut interrupted, if !signalled => {
                signalled = true;
                eprintln!("drconsole: interrupted: no new steps will start; stopping running steps");
                let _ = handle.commands.send(Command::Interrupt);
            }
        }
    }
    let _ = p.out.flush();
    match handle.join.await {
        Ok(r) => r,
        Err(e) => RunResult {
            outcome: Outcome::Failed,
            message: format!("the engine stopped unexpectedly: {e}"),
            statuses: Vec::new(),
        },
    }
}

/// Prints a stream of events that this process does not drive (a watched run: read-only) until it ends.
pub async fn print_stream<W: Write>(mut events: tokio::sync::mpsc::UnboundedReceiver<Event>, json: bool, out: W) {
    let mut p = Printer::new(out, json);
    while let Some(ev) = events.recv().await {
        p.print(&ev);
    }
}

/// What a headless run answers to an event, if anything.
pub fn respond(ev: &EventKind, opts: &Options, by: &str) -> Option<Command> {
    match ev {
        EventKind::StepAwaitingApproval { step, .. } => Some(if opts.approves(step) {
            Command::Approve { step: step.clone(), by: by.to_string() }
        } else {
            Command::Block {
                reason: format!(
                    "step `{step}` needs confirmation; pass --approve {step} (or --yes) to approve it in a headless run"
                ),
            }
        }),
        EventKind::OperatorRequest { step, prompt: Prompt::Done { .. } } => Some(if opts.approves(step) {
            Command::Approve { step: step.clone(), by: by.to_string() }
        } else {
            Command::Block {
                reason: format!(
                    "manual step `{step}` needs an operator to confirm it is done; pass --approve {step} (or --yes) once it is"
                ),
            }
        }),
        EventKind::OperatorRequest { step, prompt: Prompt::Choice { .. } } => Some(Command::Block {
            reason: format!(
                "step `{step}` asks for a recovery point; pass --recovery-point ID or --recovery-point latest"
            ),
        }),
        EventKind::RunPaused { reason } => Some(Command::Abort {
            reason: format!("{reason}; a headless run cannot wait for an operator (use the console to retry or skip)"),
            by: by.to_string(),
        }),
        _ => None,
    }
}

/// Listens for Ctrl-C, SIGTERM and SIGHUP (a dropped SSH session). The handlers are installed now, before the first
/// line is printed, not when the future is first polled: a signal that arrives meanwhile must not kill the process
/// without a summary.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        let hup = signal(SignalKind::hangup());
        async move {
            match (int, term, hup) {
                (Ok(mut int), Ok(mut term), Ok(mut hup)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                }
                (Ok(mut int), _, _) => {
                    int.recv().await;
                }
                (Err(_), _, _) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
