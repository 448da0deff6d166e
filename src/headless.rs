//! The headless frontend: one line per event (or NDJSON with `--json`), answers confirmations from flags, and
//! stops with exit 3 when the run needs an answer it was not given.

use std::collections::HashSet;
use std::io::Write;

use jiff::Timestamp;

use crate::engine::{RunHandle, RunResult};
use crate::run::describe::describe_in;
use crate::run::verdict::outcome_line;
use crate::run::{Command, Event, EventKind, Outcome, Prompt, RunView};
use crate::util::{fmt_clock, fmt_duration, sanitize};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub json: bool,
    pub approve_all: bool,
    pub approve: HashSet<String>,
    /// Who answers, recorded in approvals: `user@host (headless)`.
    pub operator: String,
    /// The run directory, where the reports are written (named in the summary).
    pub reports: Option<std::path::PathBuf>,
    /// The engine was given these approvals (`RunConfig::approvals`): they are not sent again.
    pub engine_approves: bool,
    /// `--manual-done all|ID,ID`: manual tasks recorded as done by the flag.
    pub manual_done_all: bool,
    pub manual_done: HashSet<String>,
    /// A resume: the earlier sessions' events, applied to the view (not printed) before this session's, so the
    /// summary covers the whole run as the console and the report do (recovery points chosen before, regions
    /// unreachable in an earlier session).
    pub history: Vec<Event>,
}

impl Options {
    fn approves(&self, step: &str) -> bool {
        self.approve_all || self.approve.contains(step)
    }
}

/// Renders events as text lines (or NDJSON): shared by headless runs and `drconsole watch`. Lines come from the
/// shared describer (`run::describe`), times from the run's [`RunView`], so they read as the console's log does.
pub struct Printer<W: Write> {
    out: W,
    json: bool,
    view: RunView,
    last_margin: Option<i64>,
    /// Where the run's reports are written (said in the summary).
    reports: Option<std::path::PathBuf>,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, json: bool) -> Self {
        Self { out, json, view: RunView::new(), last_margin: None, reports: None }
    }

    /// The summary names the directory the reports were written to.
    pub fn with_reports(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.reports = dir;
        self
    }

    /// Applies earlier sessions' events to the view without printing them (a resume).
    pub fn with_history(mut self, history: &[Event]) -> Self {
        for ev in history {
            self.view.apply(ev);
        }
        self
    }

    pub fn view(&self) -> &RunView {
        &self.view
    }

    /// Prints one event, and the summary when the run finishes.
    pub fn print(&mut self, ev: &Event) {
        self.event(ev);
        if let EventKind::RunFinished { .. } = ev.kind {
            self.summary();
        }
        let _ = self.out.flush();
    }

    fn line(&mut self, ts: Timestamp, tag: &str, step: &str, text: &str) {
        let (elapsed, left) = match (&self.view.run, self.view.clock_at(ts)) {
            (Some(run), Some(c)) => (ts.duration_since(run.started).as_secs(), c.rto_left_secs),
            _ => (0, 0),
        };
        let _ = writeln!(self.out, "[+{} RTO {}] {tag:<8} {step:<16} {text}", fmt_clock(elapsed), fmt_clock(left));
    }

    fn event(&mut self, ev: &Event) {
        self.view.apply(ev);
        if self.json {
            if let Ok(s) = serde_json::to_string(ev) {
                let _ = writeln!(self.out, "{s}");
            }
            return;
        }
        if let Some(l) = describe_in(&ev.kind, &self.view, ev.ts) {
            self.line(ev.ts, l.tag, &l.step, &l.text);
        }
        if let EventKind::Projection { .. } = ev.kind {
            self.eta(ev.ts);
        }
    }

    /// On a tick between events: an `eta` line only when time alone moved the projection (a step waiting for a
    /// person, or running past its expected time) — what the events show is printed with them, at their time, so
    /// a watcher of the journal prints the same lines.
    pub fn tick(&mut self, now: Timestamp) {
        let at = |t| self.view.clock_at(t).map(|c| c.projected_finish);
        let Some(last) = self.view.last_ts else { return };
        if self.view.moves_with_time(now) && at(now) != at(last) {
            self.eta(now);
        }
    }

    /// An `eta` line when the projection moved: the first, a change between on track and late, or a move of a
    /// minute or more. Called on projection events and on a tick (the projection moves while a step waits).
    pub fn eta(&mut self, now: Timestamp) {
        if self.json {
            return;
        }
        let Some(c) = self.view.clock_at(now) else { return };
        if c.finished {
            return;
        }
        let show = match self.last_margin {
            None => true,
            Some(m) => (m < 0) != (c.margin_secs < 0) || (m - c.margin_secs).abs() >= 60,
        };
        if show {
            self.last_margin = Some(c.margin_secs);
            let verdict = if c.margin_secs >= 0 { "on track" } else { "LATE" };
            let finish = c.projected_finish.strftime("%H:%M:%SZ");
            let mut text = format!("projected finish {finish}, margin {} ({verdict})", fmt_clock(c.margin_secs));
            if c.from_history {
                // the forecast band: the finish above is the P50 one
                let runs = c.history_runs.unwrap_or(0);
                let p90_verdict = if c.p90_margin_secs >= 0 { "" } else { ", LATE at P90" };
                text.push_str(&format!(
                    "; P50 {finish} · P90 {} (from {runs} past run{}{p90_verdict})",
                    c.p90_finish.strftime("%H:%M:%SZ"),
                    if runs == 1 { "" } else { "s" }
                ));
            }
            self.line(c.now, "eta", "", &text);
            let _ = self.out.flush();
        }
    }

    fn summary(&mut self) {
        if self.json {
            return;
        }
        let Some(f) = self.view.finished.clone() else { return };
        let d = |s: u64| fmt_duration(std::time::Duration::from_secs(s));
        let _ = writeln!(self.out);
        let word = self.view.outcome_word().unwrap_or(f.outcome.as_str());
        let _ = writeln!(self.out, "outcome:  {}", outcome_line(word, &sanitize(&f.message)));
        if let Some(drill) = self.view.drill_verdict(None) {
            let _ = writeln!(self.out, "drill:    {} (the report's recovery test)", drill.as_str());
        }
        let _ = writeln!(self.out, "duration: {}", d(f.duration_secs));
        let verdict = match (f.outcome, f.rto_met) {
            (Outcome::Recovered, true) => "met",
            (Outcome::Recovered, false) => "MISSED",
            _ => "not recovered",
        };
        let waited = self.view.waited_secs(f.at);
        let waited = if waited > 0 { format!("; {} of it waiting for people", d(waited)) } else { String::new() };
        let _ = writeln!(
            self.out,
            "RTO:      target {}, achieved {} ({verdict}{waited})",
            d(f.rto_secs),
            d(f.rto_achieved_secs)
        );
        if let Some(line) = crate::forecast::at_start_vs_actual(&self.view) {
            let _ = writeln!(self.out, "forecast: {line}");
        }
        let rpo = self.view.rpo();
        match (&rpo.worst, rpo.achieved_secs) {
            (Some(worst), Some(a)) => {
                let verdict = rpo.verdict.unwrap_or(crate::run::RpoVerdict::Missed).shout();
                let _ = writeln!(
                    self.out,
                    "RPO:      target {}, achieved {} ({verdict}; oldest data: {} {} of step {})",
                    d(rpo.target_secs),
                    crate::run::fmt_loss(a, rpo.bound),
                    worst.kind,
                    sanitize(&worst.id),
                    worst.step
                );
            }
            _ => {
                let _ = writeln!(self.out, "RPO:      target {}, no recovery point used", d(rpo.target_secs));
            }
        }
        let [succeeded, failed, skipped, cancelled] = f.counts;
        let _ = writeln!(
            self.out,
            "steps:    {succeeded} succeeded, {failed} failed, {skipped} skipped, {cancelled} cancelled"
        );
        for r in &self.view.regions {
            let periods: Vec<String> = r
                .down
                .iter()
                .map(|d| match d.until {
                    Some(to) if d.session_ended => format!(
                        "{} until session {} ended at {} (not known since)",
                        d.since.strftime("%H:%M:%SZ"),
                        d.session,
                        to.strftime("%H:%M:%SZ")
                    ),
                    Some(to) => format!("{} to {}", d.since.strftime("%H:%M:%SZ"), to.strftime("%H:%M:%SZ")),
                    None => format!("since {} (still unreachable)", d.since.strftime("%H:%M:%SZ")),
                })
                .collect();
            let _ = writeln!(self.out, "region:   {} unreachable {}", sanitize(&r.region), periods.join(", "));
        }
        if let Some(dir) = &self.reports {
            let _ = writeln!(self.out, "reports:  {}", dir.display());
        }
        if f.outcome != Outcome::Recovered
            && let Some(run) = &self.view.run
        {
            let _ = writeln!(self.out, "continue: drconsole resume {}", run.run_id);
        }
    }
}

/// Drives a run to its end, printing to `out`; Ctrl-C / SIGTERM interrupt it gracefully.
pub async fn run<W: Write>(mut handle: RunHandle, opts: &Options, out: W) -> RunResult {
    let mut p = Printer::new(out, opts.json).with_reports(opts.reports.clone()).with_history(&opts.history);
    let by = if opts.operator.is_empty() { "headless".to_string() } else { opts.operator.clone() };
    let interrupted = shutdown_signal();
    tokio::pin!(interrupted);
    let mut signalled = false;
    // the projection moves while a step runs long or waits: look at it once a second between events
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = handle.events.recv() => {
                let Some(ev) = ev else { break };
                p.event(&ev);
                if let EventKind::RunFinished { .. } = ev.kind {
                    p.summary();
                }
                if let Some(cmd) = respond(&ev.kind, opts, &by) {
                    if let Command::Block { reason } = &cmd {
                        eprintln!("drconsole: {}", crate::util::sanitize_line(reason));
                    }
                    let _ = handle.commands.send(cmd);
                }
            }
            _ = tick.tick() => {
                let now = p.view().run_time_at(Timestamp::now());
                p.tick(now);
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
            halt: None,
        },
    }
}

/// Prints a stream of events that this process does not drive (a watched run: read-only) until it ends.
pub async fn print_stream<W: Write>(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    json: bool,
    reports: Option<std::path::PathBuf>,
    out: W,
) {
    let mut p = Printer::new(out, json).with_reports(reports);
    while let Some(ev) = events.recv().await {
        p.print(&ev);
    }
}

/// What a headless run answers to an event, if anything.
pub fn respond(ev: &EventKind, opts: &Options, by: &str) -> Option<Command> {
    match ev {
        // the engine gives the flags' approvals itself when told to (RunConfig::approvals)
        EventKind::StepAwaitingApproval { step, .. } if opts.engine_approves && opts.approves(step) => None,
        EventKind::StepAwaitingApproval { step, .. } => Some(if opts.approves(step) {
            Command::Approve { step: step.clone(), by: by.to_string() }
        } else {
            Command::Block {
                reason: format!(
                    "step `{step}` needs confirmation; pass --approve {step} (or --yes) to approve it in a headless run"
                ),
            }
        }),
        EventKind::OperatorRequest { step, prompt: Prompt::Done { .. } } => {
            Some(if opts.manual_done_all || opts.manual_done.contains(step) {
                // --yes answers confirmations only: a manual task is recorded as done by the flag, not by a person
                Command::Approve {
                    step: step.clone(),
                    by: format!("--manual-done flag ({by}); no person confirmed it"),
                }
            } else {
                Command::Block {
                    reason: format!(
                        "manual step `{step}` needs an operator to confirm it is done; pass --manual-done {step} \
                         once it is (recorded as answered by the flag)"
                    ),
                }
            })
        }
        EventKind::OperatorRequest { step, prompt: Prompt::Choice { message, candidates } } => {
            let reason = if candidates.iter().any(|c| c.kind == "ebs-set") {
                // the whole recovery point set misses the RPO the database point met: a decision, never a default
                let ids: Vec<&str> = candidates.iter().map(|c| c.id.trim_start_matches("ebs=")).collect();
                format!(
                    "step `{step}` asks: {message}; pass --recovery-point POINT+ebs=DECISION with DECISION one of: {} \
                     (e.g. --recovery-point latest+ebs=newest)",
                    ids.join(", ")
                )
            } else if message.starts_with(crate::actions::recovery_point::SET_UNKNOWN) {
                format!("step `{step}` stopped before any recovery point was restored: {message}")
            } else {
                format!("step `{step}` asks for a recovery point; pass --recovery-point ID or --recovery-point latest")
            };
            Some(Command::Block { reason })
        }
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
