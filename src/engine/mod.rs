//! The engine: runs a runbook's step graph with bounded parallelism, retries with backoff and jitter, timeouts,
//! approvals, operator questions and the RTO clock. It knows nothing of terminals: it emits [`Event`]s and takes
//! [`Command`]s, and every frontend (headless, TUI, watch) is a consumer of the same stream.

pub mod gate;
pub mod pace;
mod resume;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

// the run vocabulary lives in `crate::run`; re-exported here for the engine's users
pub use crate::run::clock::{self, Clock};
pub use crate::run::event::{self, Candidate, Event, EventKind, Outcome, Prompt, StepInfo};
pub use crate::run::{Command, Emitter, EventSink, OperatorRequest, Redactor, Status};
pub use resume::{PriorAnswer, PriorState, PriorStep};

use crate::actions::{Action, ActionCtx, ActionError, ErrorKind, Outputs, Params, Registry};
use crate::runbook::interp::{self, Scope};
use crate::runbook::{OnFailure, Runbook};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub run_id: String,
    /// When the incident started (RTO and RPO are measured from it); default: run start.
    pub incident_start: Option<Timestamp>,
    pub max_parallel: usize,
    /// Seeds retry jitter (and the simulator).
    pub seed: u64,
    /// `--recovery-point ID|latest`, for headless runs of `ask` policies.
    pub recovery_point: Option<String>,
    /// First retry delay; doubles each attempt, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a cancelled step may take to notice before it is dropped.
    pub cancel_grace: Duration,
    pub backend: String,
    /// The cloud the actions work on (the simulator or AWS); `None` when the runbook needs none.
    pub cloud: Option<Arc<crate::cloud::Cloud>>,
    /// Confirmations answered by a headless run's flags (`--yes`, `--approve`): approved by the engine itself
    /// the moment they are asked, so a simulated run does not depend on how fast a frontend answers.
    pub approvals: Approvals,
    /// The run's directory, when it is journalled (actions keep large outputs there).
    pub run_dir: Option<std::path::PathBuf>,
    /// Each step's P50 and P90 from the runbook's history (`crate::forecast`); `None`: expected durations.
    pub forecast: Option<Arc<crate::forecast::Forecast>>,
    /// A headless run: a step that creates starts only once the recovery point selections before it have ended
    /// ([`gate`]), so a run that stops for a choice it was not given has created nothing. The console (an operator
    /// answers) keeps the runbook's parallelism.
    pub decisions_first: bool,
}

/// Which confirmations are given in advance, and by whom.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    pub all: bool,
    pub steps: std::collections::HashSet<String>,
    /// Recorded as the approver.
    pub by: String,
}

impl Approvals {
    pub fn covers(&self, step: &str) -> bool {
        self.all || self.steps.contains(step)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            run_id: new_run_id(),
            incident_start: None,
            max_parallel: 16,
            seed: 0,
            recovery_point: None,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(120),
            cancel_grace: Duration::from_secs(10),
            backend: "sim".into(),
            cloud: None,
            approvals: Approvals::default(),
            run_dir: None,
            forecast: None,
            decisions_first: false,
        }
    }
}

/// A fresh run id: UTC time plus random suffix, sortable and safe in file and resource names.
pub fn new_run_id() -> String {
    let now = Timestamp::now().strftime("%Y%m%d-%H%M%S");
    format!("{now}-{:04x}", fastrand::u16(..))
}

/// What a finished run reports to its caller.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Outcome,
    pub message: String,
    pub statuses: Vec<(String, Status)>,
    /// The run was halted: a sink (the journal) could not record an event, so the run stopped where it was and
    /// nothing after it was recorded; the command ends with this error and its exit code, not the outcome's.
    pub halt: Option<crate::run::Halt>,
}

impl RunResult {
    /// The exit code the run ends with: its halt's ([`crate::run::Halt`]) when it was halted, else its outcome's.
    pub fn exit_code(&self) -> u8 {
        self.halt.as_ref().map_or_else(|| self.outcome.exit_code(), |h| h.exit_code)
    }
}

/// A running engine: send commands, receive events, await the result.
pub struct RunHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub join: tokio::task::JoinHandle<RunResult>,
}

struct StepRt {
    status: Status,
    attempts: u32,
    started: Option<Duration>,
    outputs: Map<String, Value>,
    approved: bool,
    cancel: Option<CancellationToken>,
    /// Set when the operator skips a running step: its end is recorded as skipped.
    skip: Option<(String, String)>,
    /// Marked overdue (running past its P90): said once.
    overdue: bool,
}

pub struct Engine {
    rb: Arc<Runbook>,
    registry: Registry,
    cfg: RunConfig,
    clock: Clock,
    emitter: Emitter,
    steps: Vec<StepRt>,
    vars: Map<String, Value>,
    incident_start: Timestamp,
    started: Duration,
    rng: fastrand::Rng,
    /// Resumed runs: answers the operator gave before, replayed when the same step asks again.
    prior_answers: HashMap<String, PriorAnswer>,
    /// Resumed runs: run time spent by earlier sessions, so elapsed time continues.
    prior_elapsed: Duration,
    /// Each step's expected duration, looked up once: the projection reads them after every state change. With a
    /// forecast from history, its P50.
    expected: Vec<Duration>,
    /// Each step's P90 (its expected duration without history): the projection's late edge.
    p90: Vec<Duration>,
    /// A drill: the run's short id and the production records its traffic steps would write (`crate::drill`).
    drill: Option<(String, Vec<String>)>,
    /// Per step, the recovery point selections it waits for besides its needs (headless runs: [`gate`]).
    gate: Vec<Vec<usize>>,
    /// With a gate: each step's needs and the selections the gate holds it back for, the graph the projection's
    /// critical path runs through (made once; `None` without a gate, when the runbook's own graph is it).
    gated_deps: Option<Vec<Vec<usize>>>,
    /// Per size-dependent step, the size (GiB) of what it works on, learnt from the step it takes it from
    /// ([`Engine::learn_sizes`]).
    sizes: Vec<Option<f64>>,
}

enum Stop {
    Outcome(Outcome, String),
}

impl Engine {
    pub fn new(rb: Arc<Runbook>, registry: Registry, cfg: RunConfig, clock: Clock, emitter: Emitter) -> Self {
        let steps = rb
            .steps
            .iter()
            .map(|_| StepRt {
                status: Status::Pending,
                attempts: 0,
                started: None,
                outputs: Map::new(),
                approved: false,
                cancel: None,
                skip: None,
                overdue: false,
            })
            .collect();
        let incident_start = cfg.incident_start.unwrap_or_else(|| clock.now());
        let rng = fastrand::Rng::with_seed(cfg.seed);
        let started = clock.elapsed();
        let planned: Vec<Duration> = (0..rb.steps.len()).map(|i| rb.expected(&registry, i)).collect();
        let band = |i: usize| cfg.forecast.as_ref()?.learnt(&rb.steps[i].id).map(crate::forecast::StepForecast::band);
        let expected = (0..rb.steps.len()).map(|i| band(i).map_or(planned[i], |b| b.0)).collect();
        let p90 = (0..rb.steps.len()).map(|i| band(i).map_or(planned[i], |b| b.1)).collect();
        let drill = rb.meta.drill.then(|| (crate::drill::short_id(&cfg.run_id), crate::drill::production_records(&rb)));
        let gate =
            if cfg.decisions_first { gate::decision_gate(&rb, &registry) } else { vec![Vec::new(); rb.steps.len()] };
        let sizes = vec![None; rb.steps.len()];
        let gated_deps = gate
            .iter()
            .any(|g| !g.is_empty())
            .then(|| rb.dag.deps.iter().zip(&gate).map(|(d, g)| d.iter().chain(g).copied().collect()).collect());
        Self {
            rb,
            registry,
            cfg,
            clock,
            emitter,
            steps,
            vars: Map::new(),
            incident_start,
            started,
            rng,
            prior_answers: HashMap::new(),
            prior_elapsed: Duration::ZERO,
            expected,
            p90,
            drill,
            sizes,
            gated_deps,
            gate,
        }
    }

    /// Starts the engine on the current tokio runtime.
    pub fn spawn(rb: Arc<Runbook>, registry: Registry, cfg: RunConfig, clock: Clock) -> RunHandle {
        let emitter = Emitter::new(clock.clone());
        let events = emitter.subscribe();
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine::new(rb, registry, cfg, clock, emitter);
        RunHandle { commands: tx, events, join: tokio::spawn(engine.run(rx)) }
    }

    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    fn deadline(&self) -> Timestamp {
        let rto = jiff::SignedDuration::try_from(self.rb.meta.rto).unwrap_or(jiff::SignedDuration::ZERO);
        self.incident_start.saturating_add(rto).unwrap_or(self.incident_start)
    }

    fn emit(&self, kind: EventKind) {
        self.emitter.emit(kind);
    }

    fn run_started(&mut self) {
        let rb = &self.rb;
        let from_history = |id: &str| self.cfg.forecast.as_ref()?.learnt(id);
        let steps = rb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepInfo {
                id: s.id.clone(),
                title: s.title.clone(),
                action: s.action.clone(),
                needs: s.needs.clone(),
                expected_secs: from_history(&s.id).map_or(self.expected[i].as_secs(), |f| f.expected_secs),
                confirm: s.confirm,
                on_failure: s.on_failure,
                p50_secs: from_history(&s.id).map(|f| f.p50_secs),
                p90_secs: from_history(&s.id).map(|f| f.p90_secs),
            })
            .collect();
        self.emit(EventKind::RunStarted {
            run_id: self.cfg.run_id.clone(),
            runbook: rb.meta.name.clone(),
            title: rb.meta.title.clone(),
            app: rb.meta.app.clone(),
            path: rb.path().display().to_string(),
            sha256: rb.sha256(),
            backend: self.cfg.backend.clone(),
            account: rb.target.account.clone(),
            primary: rb.target.primary.clone(),
            secondary: rb.target.secondary.clone(),
            incident_start: self.incident_start,
            rto_secs: rb.meta.rto.as_secs(),
            rpo_secs: rb.meta.rpo.as_secs(),
            deadline: self.deadline(),
            speed: self.clock.speed(),
            steps,
            drill: rb.meta.drill,
        });
    }

    /// On AWS, says which account and identity the credentials are for, before any step runs (read-only: STS
    /// GetCallerIdentity). A failure here is not fatal: the account guard asks again before the first change and
    /// fails that step with the reason.
    async fn identity(&self) {
        if self.cfg.backend != "aws" {
            return;
        }
        // asked in the secondary region, as the account guard asks: in a regional failover the primary's endpoints
        // may be the ones that are down, and the run must not wait on them before its first step
        if let Some(cloud) = &self.cfg.cloud
            && let Ok(id) = cloud.sts.get_caller_identity(&self.rb.target.secondary).await
        {
            self.emit(EventKind::Identity { account: id.account, arn: id.arn });
        }
    }

    /// The remaining time of each step's chain through the graph with `durations` (P50 or P90): the longest chain
    /// and its steps.
    /// The longest chain of remaining `durations` through the needs, and (a headless run) the [`gate`] that holds
    /// creating steps back until the recovery point is chosen.
    fn remaining_path(&self, durations: &[Duration], now: Duration) -> (Duration, Vec<usize>) {
        let remaining = |i: usize| {
            let s = &self.steps[i];
            let d = durations[i];
            match s.status {
                Status::Pending | Status::AwaitingApproval => d,
                Status::Running => d.saturating_sub(now.saturating_sub(s.started.unwrap_or(now))),
                _ => Duration::ZERO,
            }
        };
        match &self.gated_deps {
            Some(deps) => crate::runbook::dag::critical_path_of(deps, remaining),
            None => self.rb.dag.critical_path(remaining),
        }
    }

    fn projection(&self) {
        let now = self.clock.elapsed();
        let (cp, path) = self.remaining_path(&self.expected, now);
        let (cp90, path90) = self.remaining_path(&self.p90, now);
        let now_ts = self.clock.now();
        let at = |d: Duration| {
            now_ts.saturating_add(jiff::SignedDuration::try_from(d).unwrap_or_default()).unwrap_or(now_ts)
        };
        let projected = at(cp);
        let deadline = self.deadline();
        let ids = |path: Vec<usize>| -> Vec<String> {
            path.into_iter()
                .filter(|&i| !self.steps[i].status.is_terminal())
                .map(|i| self.rb.steps[i].id.clone())
                .collect()
        };
        let critical_path = ids(path);
        let p90_path = ids(path90);
        self.emit(EventKind::Projection {
            elapsed_secs: (now.saturating_sub(self.started) + self.prior_elapsed).as_secs(),
            rto_left_secs: clock::secs_between(now_ts, deadline),
            projected_finish: projected,
            margin_secs: clock::secs_between(projected, deadline),
            p50_finish: Some(projected),
            p90_finish: Some(at(cp90)),
            history_runs: self.cfg.forecast.as_ref().map(|f| u32::try_from(f.runs).unwrap_or(u32::MAX)),
            p90_critical_path: if p90_path == critical_path { Vec::new() } else { p90_path },
            critical_path,
        });
    }

    /// Turns the cloud's region circuits into events ([`crate::cloud::health`]): a region already unreachable when
    /// the run starts (another application of the incident found it) at once, then every change as it happens.
    fn watch_regions(&self) -> Option<tokio::task::JoinHandle<()>> {
        let health = self.cfg.cloud.as_ref()?.health.clone()?;
        let mut changes = health.subscribe();
        let emitter = self.emitter.clone();
        let mut open: HashMap<String, Timestamp> = HashMap::new();
        for (region, o) in health.open_regions() {
            emitter.emit(EventKind::RegionUnreachable { region: region.clone(), evidence: o.evidence, since: o.since });
            open.insert(region, o.since);
        }
        Some(tokio::spawn(async move {
            loop {
                let t = match changes.recv().await {
                    Ok(t) => t,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if t.unreachable {
                    if open.get(&t.region) == Some(&t.since) {
                        continue;
                    }
                    open.insert(t.region.clone(), t.since);
                    emitter.emit(EventKind::RegionUnreachable {
                        region: t.region,
                        evidence: t.evidence,
                        since: t.since,
                    });
                } else if open.remove(&t.region).is_some() {
                    emitter.emit(EventKind::RegionReachable { region: t.region, since: t.since, evidence: t.evidence });
                }
            }
        }))
    }

    /// Runs to the end and returns the outcome.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) -> RunResult {
        self.run_started();
        let regions = self.watch_regions();
        self.identity().await;
        self.vars = self.render_vars();
        self.projection();
        let (op_tx, mut op_rx) = mpsc::unbounded_channel::<OperatorRequest>();
        let mut ops: HashMap<String, oneshot::Sender<String>> = HashMap::new();
        let mut tasks: JoinSet<(usize, u32, Result<Outputs, ActionError>)> = JoinSet::new();
        let mut paused: Option<String> = None;
        let mut stop: Option<Stop> = None;
        let mut commands_open = true;
        // a projection is due: steps changed state since the last one (one projection per turn of the loop, not one
        // per change, so a burst of finished steps costs one critical-path computation)
        let mut projection_due = false;
        let halted = self.emitter.stopped();

        loop {
            if halted.is_cancelled() {
                break;
            }
            if paused.is_none() && stop.is_none() {
                projection_due |= self.schedule(&mut tasks, &op_tx);
            }
            if projection_due {
                self.projection();
                projection_due = false;
            }
            let running = self.steps.iter().filter(|s| s.status == Status::Running).count();
            if running == 0 {
                if stop.is_some() {
                    break;
                }
                let waiting = self.steps.iter().any(|s| s.status == Status::AwaitingApproval);
                if paused.is_none() && !waiting {
                    break;
                }
                if !commands_open {
                    // nobody can answer: stop rather than hang
                    stop = Some(Stop::Outcome(Outcome::Interrupted, "the frontend went away".into()));
                    break;
                }
            }
            let overdue = self.next_overdue();
            let overdue_in = self.clock.real(overdue.map_or(Duration::ZERO, |(_, d)| d));
            tokio::select! {
                () = halted.cancelled() => continue,
                () = tokio::time::sleep(overdue_in), if overdue.is_some() => {
                    if let Some((i, _)) = overdue {
                        self.mark_overdue(i);
                    }
                },
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.command(cmd, &mut paused, &mut stop, &mut ops),
                    None => {
                        commands_open = false;
                        if running > 0 || paused.is_some() {
                            self.cancel_all();
                            stop.get_or_insert(Stop::Outcome(Outcome::Interrupted, "the frontend went away".into()));
                        }
                    }
                },
                Some(req) = op_rx.recv() => {
                    if let Some(a) = self.prior_answers.remove(&req.step) {
                        // answered before the run was resumed: the decision stands, the operator is not asked again
                        self.emit(EventKind::OperatorAnswered { step: req.step, answer: a.answer, by: a.by });
                        let _ = req.reply.send(a.reply);
                    } else {
                        self.emit(EventKind::OperatorRequest { step: req.step.clone(), prompt: req.prompt });
                        ops.insert(req.step, req.reply);
                    }
                }
                Some(done) = tasks.join_next() => {
                    match done {
                        Ok((i, attempts, result)) => self.finished(i, attempts, result, &mut paused, &mut stop, &mut ops),
                        Err(e) => {
                            // a panic inside an action: fail the run loudly rather than hang
                            self.cancel_all();
                            stop.get_or_insert(Stop::Outcome(Outcome::Failed, format!("internal error in a step task: {e}")));
                            for s in &mut self.steps {
                                if s.status == Status::Running {
                                    s.status = Status::Failed;
                                }
                            }
                        }
                    }
                    projection_due = true;
                }
            }
        }
        if let Some(r) = regions {
            // stopped before the run's last event, so no region event follows it
            r.abort();
            let _ = r.await;
        }
        if let Some(halt) = self.emitter.halted() {
            // nothing more can be recorded: the steps stop where they are (a step's next cloud call is refused
            // already, see `halted_here`), and the run ends without another event
            self.cancel_all();
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            let statuses = self.rb.steps.iter().zip(&self.steps).map(|(d, s)| (d.id.clone(), s.status)).collect();
            return RunResult { outcome: Outcome::Failed, message: halt.message.clone(), statuses, halt: Some(halt) };
        }
        self.finish(stop)
    }

    /// The running step that will pass its P90 from the history first, and how long until it does (run time).
    /// Steps without history have no P90 to pass.
    fn next_overdue(&self) -> Option<(usize, Duration)> {
        let f = self.cfg.forecast.as_ref()?;
        let now = self.clock.elapsed();
        (0..self.steps.len())
            .filter(|&i| self.steps[i].status == Status::Running && !self.steps[i].overdue)
            .filter_map(|i| {
                f.learnt(&self.rb.steps[i].id)?;
                let started = self.steps[i].started?;
                // past it by a second: "past its P90", not at it (its P90 scaled to this run's size once known)
                let due = started + self.p90[i] + Duration::from_secs(1);
                Some((i, due.saturating_sub(now)))
            })
            .min_by_key(|&(_, d)| d)
    }

    /// A step that says the size of what it found or made (`size_gib`, and `ebs_size_gib` for a recovery point's EBS
    /// set) tells the forecast the size of the steps that work on it: a size-dependent step not yet started whose
    /// parameters take `${steps.<id>.id}` (or `.ebs_snapshots`) is forecast again from its past runs' rates × this
    /// size ([`crate::forecast::StepForecast::for_size`]). The next projection carries it.
    ///
    /// The size is also kept for the step ([`Engine::sizes`]): a size-dependent step whose own outputs do not say its
    /// size reports the one it worked on when it succeeds, so that the history learns its rate.
    fn learn_sizes(&mut self, id: &str, outputs: &Map<String, Value>) {
        let num = |k: &str| {
            outputs.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())).filter(|g| *g > 0.0)
        };
        let sizes = [
            (format!("${{steps.{id}.id}}"), num("size_gib")),
            (format!("${{steps.{id}.ebs_snapshots}}"), num("ebs_size_gib")),
        ];
        for j in 0..self.rb.steps.len() {
            if !matches!(self.steps[j].status, Status::Pending | Status::AwaitingApproval) {
                continue;
            }
            let step = &self.rb.steps[j];
            if !crate::forecast::SIZE_DEPENDENT.contains(&step.action.as_str()) {
                continue;
            }
            let takes = |needle: &str| step.with.values().any(|v| v.as_str().is_some_and(|t| t.contains(needle)));
            let Some(size) = sizes.iter().find_map(|(needle, size)| takes(needle).then_some(*size).flatten()) else {
                continue;
            };
            self.sizes[j] = Some(size);
            let Some(sf) = self.cfg.forecast.as_ref().and_then(|f| f.learnt(&step.id)) else { continue };
            let Some((p50, p90)) = sf.for_size(size) else { continue };
            self.expected[j] = Duration::from_secs(p50);
            self.p90[j] = Duration::from_secs(p90);
            let step = step.id.clone();
            self.emit(EventKind::StepForecast { step, p50_secs: p50, p90_secs: p90, size_gib: size });
        }
    }

    /// Says that a step runs past its P90, with what is typical for it (once per step and session).
    fn mark_overdue(&mut self, i: usize) {
        let Some(sf) = self.cfg.forecast.as_ref().and_then(|f| f.step(&self.rb.steps[i].id)).cloned() else {
            return;
        };
        let s = &mut self.steps[i];
        if s.status != Status::Running || s.overdue {
            return;
        }
        s.overdue = true;
        let running_secs = self.clock.elapsed().saturating_sub(s.started.unwrap_or_default()).as_secs();
        self.emit(EventKind::StepOverdue {
            step: self.rb.steps[i].id.clone(),
            running_secs,
            p50_secs: self.expected[i].as_secs(),
            p90_secs: self.p90[i].as_secs(),
            samples: u32::try_from(sf.samples).unwrap_or(u32::MAX),
        });
        self.projection();
    }

    /// Step `d` no longer holds back the steps that need it.
    fn done(&self, d: usize) -> bool {
        match self.steps[d].status {
            Status::Succeeded | Status::Skipped => true,
            Status::Failed => self.rb.steps[d].on_failure == OnFailure::Continue,
            _ => false,
        }
    }

    fn deps_done(&self, i: usize) -> bool {
        self.rb.dag.deps[i].iter().all(|&d| self.done(d)) && self.gate[i].iter().all(|&d| self.done(d))
    }

    /// Starts every step whose needs are done, up to `max_parallel` running; returns whether any step changed state.
    fn schedule(
        &mut self,
        tasks: &mut JoinSet<(usize, u32, Result<Outputs, ActionError>)>,
        op_tx: &mpsc::UnboundedSender<OperatorRequest>,
    ) -> bool {
        let mut changed = false;
        let limit = self.cfg.max_parallel.max(1);
        let mut running = self.steps.iter().filter(|s| s.status == Status::Running).count();
        for k in 0..self.rb.dag.order.len() {
            let i = self.rb.dag.order[k];
            if self.steps[i].status != Status::Pending || !self.deps_done(i) {
                continue;
            }
            if self.rb.steps[i].confirm && !self.steps[i].approved {
                self.steps[i].status = Status::AwaitingApproval;
                let plan = match self.step_params(i) {
                    Ok(p) => self.plan_line(i, &p),
                    Err(e) => format!("(cannot render parameters: {e})"),
                };
                let id = self.rb.steps[i].id.clone();
                self.emit(EventKind::StepAwaitingApproval { step: id.clone(), plan });
                changed = true;
                if !self.cfg.approvals.covers(&id) {
                    continue;
                }
                self.steps[i].approved = true;
                self.steps[i].status = Status::Pending;
                self.emit(EventKind::StepApproved { step: id, by: self.cfg.approvals.by.clone() });
            }
            if running >= limit {
                break;
            }
            self.start(i, tasks, op_tx);
            if self.steps[i].status == Status::Running {
                running += 1;
            }
            changed = true;
        }
        changed
    }

    fn plan_line(&self, i: usize, p: &Params) -> String {
        self.registry.get(&self.rb.steps[i].action).map(|a| a.plan(p)).unwrap_or_default()
    }

    fn render_vars(&self) -> Map<String, Value> {
        let scope = RunScope { engine: self, vars: None };
        self.rb
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), interp::render_value(v, &scope).unwrap_or_else(|_| v.clone())))
            .collect()
    }

    fn params(&self, i: usize) -> Result<Params, interp::ResolveError> {
        let scope = RunScope { engine: self, vars: Some(&self.vars) };
        crate::actions::shell::render_params(&self.rb.steps[i].action, &self.rb.steps[i].with, &scope)
    }

    /// A step's parameters as it runs them: rendered, then (in a drill) rewritten by `crate::drill::rewrite`.
    fn step_params(&self, i: usize) -> Result<Params, ActionError> {
        let mut p = self.params(i).map_err(|e| ActionError::fatal(e.to_string()))?;
        if let Some((short, records)) = &self.drill {
            crate::drill::rewrite(&self.rb, &self.registry, &self.rb.steps[i].action, &mut p, short, records)?;
        }
        Ok(p)
    }

    /// Parameters as shown in events: secrets replaced.
    fn redacted(&self, action: &dyn Action, p: &Params) -> Map<String, Value> {
        p.0.iter()
            .map(|(k, v)| {
                let secret = action.spec().param(k).is_some_and(|s| s.secret);
                (k.clone(), if secret { Value::String("***".into()) } else { v.clone() })
            })
            .collect()
    }

    fn start(
        &mut self,
        i: usize,
        tasks: &mut JoinSet<(usize, u32, Result<Outputs, ActionError>)>,
        op_tx: &mpsc::UnboundedSender<OperatorRequest>,
    ) {
        let step = &self.rb.steps[i];
        let Some(action) = self.registry.get(&step.action).cloned() else {
            // `check` rejects unknown actions; reaching here means a registry mismatch
            self.steps[i].status = Status::Failed;
            self.emit(EventKind::StepFailed {
                step: step.id.clone(),
                attempt: 0,
                error: format!("unknown action `{}`", step.action),
                policy: step.on_failure,
                cause: None,
            });
            return;
        };
        let cancel = CancellationToken::new();
        let rt = &mut self.steps[i];
        rt.status = Status::Running;
        rt.started = Some(self.clock.elapsed());
        rt.cancel = Some(cancel.clone());
        let first_attempt = rt.attempts + 1;
        let params = self.step_params(i);
        let ctx = ActionCtx {
            run_id: self.cfg.run_id.clone(),
            step_id: step.id.clone(),
            attempt: first_attempt,
            clock: self.clock.clone(),
            cancel,
            target: Arc::new(self.rb.target.clone()),
            rpo: self.rb.meta.rpo,
            incident_start: self.incident_start,
            recovery_point: self.cfg.recovery_point.clone(),
            runbook: self.rb.meta.name.clone(),
            cloud: self.cfg.cloud.clone(),
            run_dir: self.cfg.run_dir.clone(),
            drill: self.drill.is_some(),
            emitter: self.emitter.clone(),
            operator: op_tx.clone(),
        };
        if let Ok(p) = &params {
            for (k, v) in &p.0 {
                if let (Some(spec), Value::String(v)) = (action.spec().param(k), v)
                    && spec.secret
                {
                    self.emitter.register_secret(v);
                }
            }
        }
        let plan = params.as_ref().map(|p| action.plan(p)).unwrap_or_default();
        let shown = params.as_ref().map(|p| self.redacted(action.as_ref(), p)).unwrap_or_default();
        let retry = Retry {
            retries: step.retries,
            timeout: step.timeout,
            base: self.cfg.backoff_base,
            max: self.cfg.backoff_max,
            grace: self.cfg.cancel_grace,
            seed: self.rng.u64(..),
        };
        let emitter = self.emitter.clone();
        tasks.spawn(emitter.scope(async move {
            let params = match params {
                Ok(p) => p,
                Err(e) => {
                    ctx.emitter.emit(EventKind::StepStarted {
                        step: ctx.step_id.clone(),
                        attempt: first_attempt,
                        plan,
                        params: Map::new(),
                    });
                    return (i, first_attempt, Err(e));
                }
            };
            run_attempts(i, action, ctx, params, plan, shown, retry).await
        }));
    }

    fn finished(
        &mut self,
        i: usize,
        attempts: u32,
        result: Result<Outputs, ActionError>,
        paused: &mut Option<String>,
        stop: &mut Option<Stop>,
        ops: &mut HashMap<String, oneshot::Sender<String>>,
    ) {
        let id = self.rb.steps[i].id.clone();
        ops.remove(&id);
        let elapsed = self.clock.elapsed().saturating_sub(self.steps[i].started.unwrap_or_default());
        let rt = &mut self.steps[i];
        rt.attempts = attempts;
        rt.cancel = None;
        if let Some((reason, by)) = rt.skip.take() {
            rt.status = Status::Skipped;
            self.emit(EventKind::StepSkipped { step: id, reason, by });
            return;
        }
        match result {
            Ok(outputs) => {
                let mut outputs = outputs;
                // the size it worked on, learnt from the step it took it from, when it does not say its own
                if let Some(g) = self.sizes[i]
                    && !outputs.contains_key("size_gib")
                {
                    outputs.insert("size_gib".into(), Value::from(g));
                }
                let rt = &mut self.steps[i];
                rt.status = Status::Succeeded;
                rt.outputs = outputs.clone();
                let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
                self.emit(EventKind::StepSucceeded { step: id.clone(), attempt: attempts, duration_ms, outputs });
                let outputs = self.steps[i].outputs.clone();
                self.learn_sizes(&id, &outputs);
            }
            Err(e) if e.kind == ErrorKind::Cancelled || stop.is_some() => {
                rt.status = Status::Cancelled;
                self.emit(EventKind::StepCancelled { step: id, reason: "the run was stopped".into() });
            }
            Err(e) => {
                rt.status = Status::Failed;
                let policy = self.rb.steps[i].on_failure;
                self.emit(EventKind::StepFailed {
                    step: id.clone(),
                    attempt: attempts,
                    error: e.message.clone(),
                    policy,
                    cause: e.cause.as_deref().cloned(),
                });
                if e.kind == ErrorKind::Refused {
                    self.cancel_all();
                    *stop = Some(Stop::Outcome(Outcome::Refused, e.message));
                    return;
                }
                match policy {
                    OnFailure::Continue => {}
                    OnFailure::Abort => {
                        self.cancel_all();
                        *stop = Some(Stop::Outcome(Outcome::Failed, format!("step `{id}` failed: {}", e.message)));
                    }
                    OnFailure::Pause => {
                        let reason = format!("step `{id}` failed: {}", e.message);
                        if paused.is_none() {
                            self.emit(EventKind::RunPaused { reason: reason.clone() });
                        }
                        *paused = Some(reason);
                    }
                }
            }
        }
    }

    fn cancel_all(&mut self) {
        for s in &mut self.steps {
            if let Some(c) = &s.cancel {
                c.cancel();
            }
        }
    }

    fn command(
        &mut self,
        cmd: Command,
        paused: &mut Option<String>,
        stop: &mut Option<Stop>,
        ops: &mut HashMap<String, oneshot::Sender<String>>,
    ) {
        let find = |id: &str| self.rb.step_index(id);
        match cmd {
            Command::Approve { step, by } => {
                if let Some(reply) = ops.remove(&step) {
                    self.emit(EventKind::OperatorAnswered {
                        step: step.clone(),
                        answer: "done".into(),
                        by: by.clone(),
                    });
                    let _ = reply.send(by);
                } else if let Some(i) = find(&step)
                    && self.steps[i].status == Status::AwaitingApproval
                {
                    self.steps[i].approved = true;
                    self.steps[i].status = Status::Pending;
                    self.emit(EventKind::StepApproved { step, by });
                }
            }
            Command::Answer { step, value, by } => {
                if let Some(reply) = ops.remove(&step) {
                    self.emit(EventKind::OperatorAnswered { step, answer: value.clone(), by });
                    let _ = reply.send(value);
                }
            }
            Command::Skip { step, reason, by } => {
                let Some(i) = find(&step) else { return };
                match self.steps[i].status {
                    Status::Running => {
                        self.steps[i].skip = Some((reason, by));
                        if let Some(c) = &self.steps[i].cancel {
                            c.cancel();
                        }
                    }
                    Status::Pending | Status::AwaitingApproval | Status::Failed | Status::Cancelled => {
                        let was_failed = self.steps[i].status == Status::Failed;
                        self.steps[i].status = Status::Skipped;
                        self.emit(EventKind::StepSkipped { step, reason, by: by.clone() });
                        if was_failed && paused.is_some() && !self.any_failed_pausing() {
                            *paused = None;
                            self.emit(EventKind::RunResumed { by });
                        }
                        self.projection();
                    }
                    Status::Succeeded | Status::Skipped => {}
                }
            }
            Command::Retry { step, by } => {
                let Some(i) = find(&step) else { return };
                if self.steps[i].status == Status::Failed && stop.is_none() {
                    self.steps[i].status = Status::Pending;
                    self.steps[i].approved = true;
                    self.emit(EventKind::StepRetryRequested { step: step.clone(), by: by.clone() });
                    if paused.is_some() && !self.any_failed_pausing() {
                        *paused = None;
                        self.emit(EventKind::RunResumed { by });
                    }
                }
            }
            Command::Pause { by } => {
                if paused.is_none() && stop.is_none() {
                    let reason = format!("paused by {by}");
                    self.emit(EventKind::RunPaused { reason: reason.clone() });
                    *paused = Some(reason);
                }
            }
            Command::Resume { by } => {
                if paused.is_some() && !self.any_failed_pausing() {
                    *paused = None;
                    self.emit(EventKind::RunResumed { by });
                }
            }
            Command::Abort { reason, by } => {
                self.cancel_all();
                stop.get_or_insert(Stop::Outcome(Outcome::Aborted, format!("aborted by {by}: {reason}")));
            }
            Command::Interrupt => {
                self.cancel_all();
                stop.get_or_insert(Stop::Outcome(Outcome::Interrupted, "interrupted".into()));
            }
            Command::Block { reason } => {
                self.cancel_all();
                stop.get_or_insert(Stop::Outcome(Outcome::Blocked, reason));
            }
        }
    }

    fn any_failed_pausing(&self) -> bool {
        self.steps
            .iter()
            .zip(&self.rb.steps)
            .any(|(s, d)| s.status == Status::Failed && d.on_failure == OnFailure::Pause)
    }

    fn finish(mut self, stop: Option<Stop>) -> RunResult {
        let (outcome, mut message) = match stop {
            Some(Stop::Outcome(o, m)) => (o, m),
            None => {
                let failed: Vec<&str> = self
                    .steps
                    .iter()
                    .zip(&self.rb.steps)
                    .filter(|(s, d)| s.status == Status::Failed && d.on_failure != OnFailure::Continue)
                    .map(|(_, d)| d.id.as_str())
                    .collect();
                if failed.is_empty() && self.steps.iter().all(|s| s.status.is_terminal()) {
                    (Outcome::Recovered, "every step succeeded or was skipped".to_string())
                } else if failed.is_empty() {
                    (
                        Outcome::Failed,
                        "some steps could not start because a step they need did not complete".to_string(),
                    )
                } else {
                    (Outcome::Failed, format!("failed: {}", failed.join(", ")))
                }
            }
        };
        for i in 0..self.steps.len() {
            if !self.steps[i].status.is_terminal() {
                self.steps[i].status = Status::Cancelled;
                let held: Vec<&str> =
                    self.gate[i].iter().filter(|&&d| !self.done(d)).map(|&d| self.rb.steps[d].id.as_str()).collect();
                let reason = if held.is_empty() {
                    format!("not started: the run ended ({})", outcome.as_str())
                } else {
                    format!(
                        "not started: the run ended ({}); a headless run creates nothing before `{}` has chosen",
                        outcome.as_str(),
                        held.join("`, `")
                    )
                };
                self.emit(EventKind::StepCancelled { step: self.rb.steps[i].id.clone(), reason });
            }
        }
        let count =
            |st: Status| u32::try_from(self.steps.iter().filter(|s| s.status == st).count()).unwrap_or(u32::MAX);
        let now = self.clock.now();
        let achieved = u64::try_from(clock::secs_between(self.incident_start, now)).unwrap_or(0);
        let rto = self.rb.meta.rto.as_secs();
        let rto_met = outcome == Outcome::Recovered && achieved <= rto;
        if outcome == Outcome::Recovered && !rto_met {
            message = format!("{message}; RTO missed");
        }
        self.emit(EventKind::RunFinished {
            outcome,
            duration_secs: (self.clock.elapsed().saturating_sub(self.started) + self.prior_elapsed).as_secs(),
            rto_secs: rto,
            rto_achieved_secs: achieved,
            rto_met,
            succeeded: count(Status::Succeeded),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            cancelled: count(Status::Cancelled),
            message: message.clone(),
        });
        let statuses = self.rb.steps.iter().zip(&self.steps).map(|(d, s)| (d.id.clone(), s.status)).collect();
        RunResult { outcome, message, statuses, halt: None }
    }
}

struct RunScope<'a> {
    engine: &'a Engine,
    vars: Option<&'a Map<String, Value>>,
}

impl Scope for RunScope<'_> {
    fn lookup(&self, path: &[String]) -> Option<Value> {
        let e = self.engine;
        let rb = &e.rb;
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let s = |x: &str| Some(Value::String(x.to_string()));
        match p.as_slice() {
            ["vars", name] => self.vars?.get(*name).cloned(),
            ["target", "primary"] => s(&rb.target.primary),
            ["target", "secondary"] => s(&rb.target.secondary),
            ["target", "account"] => rb.target.account.as_deref().and_then(s),
            ["target", "backend"] => s(&e.cfg.backend),
            ["runbook", "name"] => s(&rb.meta.name),
            ["runbook", "title"] => s(&rb.meta.title),
            ["runbook", "app"] => s(&rb.meta.app),
            ["runbook", "rto"] => s(&crate::util::fmt_duration(rb.meta.rto)),
            ["runbook", "rpo"] => s(&crate::util::fmt_duration(rb.meta.rpo)),
            ["runbook", "owner"] => rb.meta.owner.as_deref().and_then(s),
            ["runbook", "description"] => rb.meta.description.as_deref().and_then(s),
            ["run", "id"] => s(&e.cfg.run_id),
            ["run", "incident_start"] => s(&e.incident_start.to_string()),
            ["steps", id, out] => {
                let i = rb.step_index(id)?;
                e.steps[i].outputs.get(*out).cloned()
            }
            _ => None,
        }
    }
}

struct Retry {
    retries: u32,
    timeout: Option<Duration>,
    base: Duration,
    max: Duration,
    grace: Duration,
    seed: u64,
}

/// Runs a step's attempts: timeout per attempt, exponential backoff with full jitter between retryable failures.
async fn run_attempts(
    i: usize,
    action: Arc<dyn Action>,
    mut ctx: ActionCtx,
    params: Params,
    plan: String,
    shown: Map<String, Value>,
    r: Retry,
) -> (usize, u32, Result<Outputs, ActionError>) {
    let mut rng = fastrand::Rng::with_seed(r.seed);
    let first = ctx.attempt;
    let mut attempt = first;
    let last = first + r.retries;
    loop {
        ctx.attempt = attempt;
        ctx.emitter.emit(EventKind::StepStarted {
            step: ctx.step_id.clone(),
            attempt,
            plan: plan.clone(),
            params: shown.clone(),
        });
        let result = attempt_once(action.as_ref(), &ctx, &params, r.timeout, r.grace).await;
        match result {
            Err(e) if e.retryable() && attempt < last && !ctx.cancel.is_cancelled() => {
                // full jitter: uniform in [base*2^n / 2, base*2^n], capped
                let exp = r.base.saturating_mul(1u32 << (attempt - first).min(16)).min(r.max);
                let delay = exp.mul_f64(0.5 + rng.f64() * 0.5);
                ctx.emitter.emit(EventKind::StepRetrying {
                    step: ctx.step_id.clone(),
                    attempt,
                    error: e.message.clone(),
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    cause: e.cause.as_deref().cloned(),
                });
                if let Err(c) = ctx.sleep(delay).await {
                    return (i, attempt, Err(c));
                }
                attempt += 1;
            }
            other => return (i, attempt, other),
        }
    }
}

async fn attempt_once(
    action: &dyn Action,
    ctx: &ActionCtx,
    params: &Params,
    timeout: Option<Duration>,
    grace: Duration,
) -> Result<Outputs, ActionError> {
    let run = action.run(ctx, params);
    let timed = async {
        match timeout {
            Some(t) => tokio::time::timeout(ctx.clock.real(t), run).await.unwrap_or_else(|_| {
                Err(ActionError::transient(format!("timed out after {}", crate::util::fmt_duration(t))))
            }),
            None => run.await,
        }
    };
    // actions notice cancellation at their waits; one that does not is dropped after a grace period
    let grace = async {
        ctx.cancel.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = timed => r,
        () = grace => Err(ActionError::cancelled()),
    }
}
