//! Running an incident: every application's run prepared (nothing is created unless all can be), the record
//! written, one cloud for all (one simulated world on one paced runtime, or one set of SDK clients), each
//! application's engine driven by its own headless frontend, concurrently, in one process.
//!
//! Output: every text line starts with its application; every NDJSON event gets `app` and `run_id` fields; the
//! incident ends with an `incident_finished` line (NDJSON) or an incident summary (text).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::record::{AppRun, IncidentRecord, IncidentSession, new_incident_id};
use super::{IncidentSet, recovery_points, worst_exit};
use crate::actions::Registry;
use crate::cli::{ResumeArgs, RunArgs};
use crate::cloud::limit::Limits;
use crate::cloud::sim::{Sim, WorldFile};
use crate::engine::pace::Paced;
use crate::engine::{Approvals, Outcome, RunConfig};
use crate::headless;
use crate::journal::{self, JournalError, Prepared, RunSettings, StateDir};
use crate::runbook::{Backend, Runbook};

const EXIT_USAGE: u8 = crate::exit::USAGE;
const EXIT_BLOCKED: u8 = crate::exit::BLOCKED;

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("drconsole: {msg}");
    EXIT_USAGE
}

fn journal_error(e: &JournalError) -> u8 {
    eprintln!("drconsole: {e}");
    e.exit_code()
}

/// One application ready to run.
pub struct AppStart {
    pub app: String,
    pub prepared: Prepared,
    pub opts: headless::Options,
}

/// The flags a headless frontend answers with, for the applications whose runbooks have the steps named.
struct Answers {
    approve_all: bool,
    approve: HashSet<String>,
    manual_all: bool,
    manual: HashSet<String>,
}

impl Answers {
    /// `yes`: `--yes` or `--approve all`. Every step named must exist in at least one application (a manual one for `--manual-done`).
    fn new(rbs: &[&Runbook], approve: &[String], yes: bool, manual_done: &[String]) -> Result<Self, String> {
        let approve: HashSet<String> = approve.iter().filter(|a| *a != "all").cloned().collect();
        if let Some(a) = approve.iter().find(|a| !rbs.iter().any(|rb| rb.step_index(a).is_some())) {
            return Err(format!("--approve {a}: no runbook of the incident has a step `{a}`"));
        }
        let manual: HashSet<String> = manual_done.iter().filter(|a| *a != "all").cloned().collect();
        let is_manual = |rb: &Runbook, a: &str| rb.step_index(a).is_some_and(|i| rb.steps[i].action == "manual");
        if let Some(a) = manual.iter().find(|a| !rbs.iter().any(|rb| is_manual(rb, a))) {
            return Err(format!("--manual-done {a}: no runbook of the incident has a manual step `{a}`"));
        }
        Ok(Self { approve_all: yes, approve, manual_all: manual_done.iter().any(|a| a == "all"), manual })
    }

    fn for_app(&self, rb: &Runbook, json: bool, operator: &str) -> headless::Options {
        let has = |s: &String| rb.step_index(s).is_some();
        headless::Options {
            json,
            approve_all: self.approve_all,
            approve: self.approve.iter().filter(|s| has(s)).cloned().collect(),
            operator: operator.to_string(),
            reports: None,
            engine_approves: false,
            manual_done_all: self.manual_all,
            manual_done: self.manual.iter().filter(|s| has(s)).cloned().collect(),
            history: Vec::new(),
        }
    }
}

/// Starts a new incident from the command line.
pub fn run_new(set: IncidentSet, args: &RunArgs, state: &StateDir, registry: &Registry, operator: &str) -> u8 {
    let console = match console_theme(args.headless, args.json, args.theme.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !args.vars.is_empty() {
        return usage("--var names one runbook's variable; in an incident set it in that runbook's [vars]");
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return usage("--speed must be a positive number");
    }
    let sim = args.sim || args.world.is_some();
    let mut apps = set.apps;
    for (_, rb) in &mut apps {
        if sim {
            rb.target.backend = Backend::Sim;
        }
    }
    let backend = apps.first().map(|(_, rb)| rb.target.backend).unwrap_or(Backend::Sim);
    if let Some((a, _)) = apps.iter().find(|(_, rb)| rb.target.backend != backend) {
        return usage(format!(
            "application `{a}` runs on another backend than the others; an incident runs on one (pass --sim to \
             rehearse them all on the simulator)"
        ));
    }
    if backend == Backend::Aws && args.speed != 1.0 {
        return usage("--speed only applies to the simulator (--sim or backend = \"sim\")");
    }
    let rbs: Vec<&Runbook> = apps.iter().map(|(_, rb)| rb).collect();
    let answers =
        match Answers::new(&rbs, &args.approve, args.yes || args.approve.iter().any(|a| a == "all"), &args.manual_done)
        {
            Ok(a) => a,
            Err(e) => return usage(e),
        };
    let names: Vec<&str> = apps.iter().map(|(a, _)| a.as_str()).collect();
    let points = match recovery_points(args.recovery_point.as_deref(), &names) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    // nothing starts that cannot finish: a headless run cannot answer a recovery-point question (the console asks)
    for ((app, rb), point) in apps.iter().zip(&points) {
        let asks = crate::runbook::kinds::asking_steps(rb);
        if console.is_none() && point.is_none() && !asks.is_empty() {
            eprintln!(
                "drconsole: application `{app}`: step{} `{}` ask{} the operator for a recovery point, and a headless \
                 run cannot ask: pass --recovery-point latest (every application) or --recovery-point {app}=ID. \
                 Nothing was started.",
                if asks.len() == 1 { "" } else { "s" },
                asks.join("`, `"),
                if asks.len() == 1 { "s" } else { "" },
            );
            return EXIT_BLOCKED;
        }
    }
    let world_path = args.world.as_deref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    let world = match world_path.as_deref().map(WorldFile::load).transpose() {
        Ok(w) => w,
        Err(e) => return usage(e),
    };
    let incident_start = match args.incident_start.as_deref().map(crate::cli::incident_start).transpose() {
        Ok(t) => t,
        Err(e) => return usage(format!("--incident-start {e}")),
    };
    // the console's opening screen: the incident starts when the operator says so (q: nothing started, exit 130)
    if let Some(theme) = &console {
        match opening(&set.title, backend, &apps, theme, args, world.as_ref(), registry, state) {
            Ok(true) => {}
            Ok(false) => return crate::exit::INTERRUPTED,
            Err(code) => return code,
        }
    }
    let incident_start = incident_start.unwrap_or_else(Timestamp::now);
    // every run prepared, or none: a run that could not be opened takes the ones before it away
    let mut starts: Vec<AppStart> = Vec::new();
    for ((app, rb), point) in apps.into_iter().zip(points) {
        let settings = RunSettings {
            vars: Vec::new(),
            sim,
            speed: args.speed,
            seed: args.seed,
            max_parallel: args.max_parallel,
            recovery_point: point.clone(),
            incident_start: Some(incident_start),
            world: world_path.clone(),
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            shared_state: crate::journal::shared::for_run(&rb, args.profile.as_deref()),
            drill: args.drill,
            no_history: args.no_history,
        };
        let cfg = RunConfig {
            incident_start: Some(incident_start),
            max_parallel: args.max_parallel,
            seed: args.seed,
            recovery_point: point,
            backend: rb.target.backend.as_str().to_string(),
            ..RunConfig::default()
        };
        let opts = answers.for_app(&rb, args.json, operator);
        match journal::prepare_new(state, rb, cfg, settings, args.take_over_lock) {
            Ok(prepared) => starts.push(AppStart { app, prepared, opts }),
            Err(e) => {
                eprintln!("drconsole: application `{app}`: {e}");
                for s in starts {
                    let dir = s.prepared.dir.clone();
                    drop(s);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                eprintln!("drconsole: the incident did not start; nothing was created");
                return e.exit_code();
            }
        }
    }
    let record = IncidentRecord {
        incident_id: new_incident_id(),
        name: set.name,
        title: set.title,
        file: set.file.map(|f| f.display().to_string()),
        operator: operator.to_string(),
        backend: backend.as_str().to_string(),
        incident_start,
        started: Timestamp::now(),
        limits: set.limits,
        apps: starts
            .iter()
            .map(|s| AppRun {
                app: s.app.clone(),
                runbook: s.prepared.meta.runbook.clone(),
                runbook_path: s.prepared.meta.runbook_path.clone(),
                run_id: s.prepared.cfg.run_id.clone(),
                outcome: String::new(),
            })
            .collect(),
        sessions: Vec::new(),
    };
    if let Err(e) = record.write(state) {
        for s in starts {
            let dir = s.prepared.dir.clone();
            drop(s);
            let _ = std::fs::remove_dir_all(&dir);
        }
        return journal_error(&e);
    }
    drive(record, state, starts, registry, world, None, args.json, operator, console)
}

/// The incident's opening screen: its applications, each with its own preflight verdict once `p` ran them all
/// (read-only, each on a thread of its own; their reports written to the state directory's `preflight/`);
/// `Ok(false)` when the operator left with nothing started.
#[allow(clippy::too_many_arguments)]
fn opening(
    title: &str,
    backend: Backend,
    apps: &[(String, Runbook)],
    theme: &crate::tui::Theme,
    args: &RunArgs,
    world: Option<&WorldFile>,
    registry: &Registry,
    state: &StateDir,
) -> Result<bool, u8> {
    use crate::preflight::command::{CheckOptions, check, write_report};
    use crate::tui::incident_opening as io;
    // each application's own history feeds its preflight's forecast
    let opts = CheckOptions {
        seed: args.seed,
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        history: Vec::new(),
    };
    let dir = state.root.join("preflight");
    let openings = apps
        .iter()
        .map(|(app, rb)| crate::tui::opening::Opening {
            app: app.clone(),
            ..crate::tui::opening::Opening::from_runbook(rb)
        })
        .collect();
    let st = io::IncidentOpeningState::new(title.to_string(), backend.as_str().to_string(), openings);
    let start_preflight = |i: usize| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = apps.get(i).map(|(_, rb)| {
            let opts =
                CheckOptions { history: crate::preflight::command::history_of(rb, Some(&state.root)), ..opts.clone() };
            (rb.clone(), registry.clone(), world.cloned(), opts, dir.clone())
        });
        // blocking, on its own runtime: the screen keeps answering keys while the checks run
        std::thread::spawn(move || {
            let r = match job {
                Some((rb, registry, world, opts, dir)) => check(&rb, &opts, world.as_ref(), &registry).map(|report| {
                    let file = write_report(&report, Some(&dir), None).map(|p| p.display().to_string());
                    (report, file)
                }),
                None => Err("no such application".to_string()),
            };
            let _ = tx.send(r);
        });
        rx
    };
    let rt = runtime()?;
    let exit = rt.block_on(io::run(st, theme, start_preflight)).map_err(|e| {
        eprintln!("drconsole: {e}");
        crate::exit::FAILED
    })?;
    for (app, verdict, file) in &exit.preflights {
        let file = match file {
            Ok(p) => format!("report: {p}"),
            Err(e) => format!("no report file: {e}"),
        };
        eprintln!("drconsole: {app}: preflight before the incident: {} ({file})", verdict.as_str());
    }
    if !exit.start {
        eprintln!("drconsole: the incident was not started; nothing was created");
    }
    Ok(exit.start)
}

/// The console's theme, or `None` for a headless incident; the console needs stdout to be a terminal.
fn console_theme(headless: bool, json: bool, theme: Option<&str>) -> Result<Option<crate::tui::Theme>, u8> {
    if headless {
        return Ok(None);
    }
    if json {
        return Err(usage("--json needs --headless"));
    }
    let theme = match theme.map(crate::tui::Theme::load).transpose() {
        Ok(t) => t.unwrap_or_else(crate::tui::Theme::default_for_env),
        Err(e) => return Err(usage(e)),
    };
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(usage("stdout is not a terminal: the console needs one; pass --headless for automation"));
    }
    Ok(Some(theme))
}

/// Resumes every application of an incident that did not recover.
pub fn resume(dir: &Path, args: &ResumeArgs, state: &StateDir, registry: &Registry, operator: &str) -> u8 {
    let record = match IncidentRecord::read(dir) {
        Ok(r) => r,
        Err(e) => return journal_error(&e),
    };
    let console = match console_theme(args.headless, args.json, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.runbook.is_some() {
        return usage("--runbook names one run's runbook; resume that application's run by its run id");
    }
    let mut todo: Vec<&AppRun> = Vec::new();
    for a in &record.apps {
        let done = state
            .find_run(&a.run_id)
            .ok()
            .and_then(|d| journal::read_journal(&d).ok())
            .and_then(|r| journal::last_outcome(&r))
            .is_some_and(|(o, _)| o == Outcome::Recovered);
        if done {
            eprintln!("drconsole: {}: run {} already recovered", a.app, a.run_id);
        } else {
            todo.push(a);
        }
    }
    if todo.is_empty() {
        return usage(format!(
            "every application of incident {} recovered; there is nothing to resume",
            record.incident_id
        ));
    }
    let names: Vec<&str> = todo.iter().map(|a| a.app.as_str()).collect();
    let points = match recovery_points(args.recovery_point.as_deref(), &names) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let mut starts: Vec<AppStart> = Vec::new();
    for (a, point) in todo.iter().zip(points) {
        match journal::prepare_resume(state, &a.run_id, None, registry, args.force, args.take_over_lock, point) {
            Ok(p) => {
                if args.no_history
                    && let Err(e) = crate::forecast::store::leave_out(&p.dir)
                {
                    eprintln!("drconsole: application `{}`: {e}", a.app);
                    return e.exit_code();
                }
                let done = if p.done.is_empty() { "none".to_string() } else { p.done.join(", ") };
                eprintln!("drconsole: {}: resuming run {}; steps already done: {done}", a.app, a.run_id);
                starts.push(AppStart { app: a.app.clone(), prepared: p, opts: headless::Options::default() })
            }
            Err(e) => {
                eprintln!("drconsole: application `{}`: {e}", a.app);
                return e.exit_code();
            }
        }
    }
    let rbs: Vec<&Runbook> = starts.iter().map(|s| &s.prepared.rb).collect();
    let answers =
        match Answers::new(&rbs, &args.approve, args.yes || args.approve.iter().any(|a| a == "all"), &args.manual_done)
        {
            Ok(a) => a,
            Err(e) => return usage(e),
        };
    for s in &mut starts {
        s.opts = answers.for_app(&s.prepared.rb, args.json, operator);
    }
    // the shared world comes back from the newest save of any application's run (they all saved the same world)
    let saved = newest_world(state, &record);
    let world = match starts.first().and_then(|s| s.prepared.meta.settings.world.clone()) {
        Some(p) => match WorldFile::load(&p) {
            Ok(w) => Some(w),
            Err(e) => return usage(e),
        },
        None => None,
    };
    drive(record, state, starts, registry, world, saved, args.json, operator, console)
}

/// The newest `world.json` among the incident's runs.
fn newest_world(state: &StateDir, record: &IncidentRecord) -> Option<String> {
    record
        .apps
        .iter()
        .filter_map(|a| state.find_run(&a.run_id).ok())
        .map(|d| d.join(journal::WORLD_FILE))
        .filter_map(|p| std::fs::metadata(&p).and_then(|m| m.modified()).ok().map(|t| (t, p)))
        .max_by_key(|(t, _)| *t)
        .and_then(|(_, p)| std::fs::read_to_string(p).ok())
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("drconsole: cannot start the async runtime: {e}");
        crate::exit::FAILED
    })
}

struct SimWorld(Arc<Sim>);

impl journal::WorldStore for SimWorld {
    fn save(&mut self) -> Result<Vec<u8>, String> {
        self.0.save().map(String::into_bytes).map_err(|e| e.to_string())
    }
}

/// One simulated account for every application: a saved world (resume), or a new one provisioned from every
/// runbook (and the world file); AWS's rate limits metered on it.
fn shared_sim(
    apps: &[AppStart],
    clock: &crate::engine::Clock,
    world: Option<&WorldFile>,
    saved: Option<String>,
    limits: Limits,
) -> Result<Arc<Sim>, String> {
    let first = apps.first().map(|a| &a.prepared).ok_or("an incident needs at least one application")?;
    let sim = match saved {
        Some(text) => {
            let sim = Sim::load(&text, clock.clone()).map_err(|e| e.to_string())?;
            for a in apps {
                sim.restore_secrets(&a.prepared.rb, world);
            }
            sim
        }
        None => {
            let t = &first.rb.target;
            let sim = Sim::new(clock.clone(), first.cfg.seed, &t.primary, &t.secondary);
            if let Some(f) = world {
                sim.apply_world_file(f);
            }
            for a in apps {
                for s in crate::cloud::sim::provision::seeds_from_runbook(&a.prepared.rb) {
                    sim.provision(&s);
                }
            }
            let guard = apps.iter().find_map(|a| a.prepared.rb.target.account.clone());
            sim.with_world(|w| w.settings.guard_account = guard);
            sim
        }
    };
    sim.with_world(|w| {
        for a in apps {
            for r in [&a.prepared.rb.target.primary, &a.prepared.rb.target.secondary] {
                w.regions.entry(r.clone()).or_default();
            }
        }
    });
    sim.set_limits(limits);
    Ok(Arc::new(sim))
}

/// Runs the prepared applications to their ends; returns the incident's exit code.
#[allow(clippy::too_many_arguments)]
fn drive(
    mut record: IncidentRecord,
    state: &StateDir,
    mut apps: Vec<AppStart>,
    registry: &Registry,
    world: Option<WorldFile>,
    saved: Option<String>,
    json: bool,
    operator: &str,
    console: Option<crate::tui::Theme>,
) -> u8 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let number = u32::try_from(record.sessions.len()).unwrap_or(0) + 1;
    record.sessions.push(IncidentSession {
        number,
        operator: operator.to_string(),
        pid: std::process::id(),
        started: Timestamp::now(),
        ended: None,
        exit_code: None,
        limits: None,
        calls: Default::default(),
    });
    if let Err(e) = record.write(state) {
        return journal_error(&e);
    }
    // with shared state, the record is mirrored beside the runs: `watch INCIDENT` works from any host
    let shared = apps.iter().find_map(|a| {
        a.prepared.meta.settings.shared_state.clone().map(|c| (c, a.prepared.rb.target.secondary.clone()))
    });
    let mirror = |record: &IncidentRecord| {
        if let Some((cfg, region)) = &shared
            && let Err(e) = record.mirror(cfg, Some(region))
        {
            eprintln!("drconsole: the incident record could not be copied to the shared state: {e}");
        }
    };
    mirror(&record);
    eprintln!(
        "drconsole: incident {} — {} ({} application{}; record: {})",
        record.incident_id,
        record.title,
        apps.len(),
        if apps.len() == 1 { "" } else { "s" },
        record.dir(state).join(super::record::RECORD_FILE).display()
    );
    for a in &apps {
        eprintln!("drconsole: {}: run {} (journal: {})", a.app, a.prepared.cfg.run_id, a.prepared.dir.display());
    }
    for a in &mut apps {
        a.prepared.set_incident_id(&record.incident_id);
    }
    for a in apps.iter_mut().filter(|_| console.is_none()) {
        // headless: the flags' confirmations are given by the engine as they are asked
        let by = if a.opts.operator.is_empty() { "headless".to_string() } else { a.opts.operator.clone() };
        a.prepared.cfg.approvals = Approvals { all: a.opts.approve_all, steps: a.opts.approve.clone(), by };
        // nothing created before the recovery point is chosen (crate::engine::gate)
        a.prepared.cfg.decisions_first = true;
    }
    let is_sim = apps.iter().all(|a| a.prepared.rb.target.backend == Backend::Sim);
    let speed = apps.first().map_or(1.0, |a| a.prepared.meta.settings.speed);
    let mut paced = None;
    let mut sim = None;
    let mut clocks = Vec::new();
    if is_sim {
        let p = match Paced::start(speed) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("drconsole: cannot start the simulator: {e}");
                return crate::exit::FAILED;
            }
        };
        let start = apps.iter().map(|a| a.prepared.sim_start()).max().unwrap_or_else(Timestamp::now);
        let clock = p.clock(start);
        let made = p.enter(|| shared_sim(&apps, &clock, world.as_ref(), saved, record.limits.clone()));
        let s = match made {
            Ok(s) => s,
            Err(e) => {
                eprintln!("drconsole: {e}");
                return EXIT_USAGE;
            }
        };
        for a in &mut apps {
            a.prepared.cfg.cloud = Some(Arc::new(crate::cloud::sim::Sim::cloud_of(&s)));
            a.prepared.set_world_store(Box::new(SimWorld(s.clone())));
            clocks.push(clock.clone());
        }
        sim = Some(s);
        paced = Some(p);
    } else {
        // one SDK client per service and region for every application
        let settings = apps.first().map(|a| a.prepared.meta.settings.clone()).unwrap_or_default();
        // one limiter for every application: AWS meters the account and region, not the run
        let limits = record.limits.clone();
        let opts = crate::cloud::aws::AwsOptions {
            profile: settings.profile.clone(),
            endpoint_url: settings.endpoint_url.clone(),
            limiter: limits.limiter.then(|| Arc::new(crate::cloud::limit::RateLimiter::new(limits))),
            ..Default::default()
        };
        let clients = rt.block_on(crate::cloud::aws::Clients::load(&opts));
        for a in &mut apps {
            let t = &a.prepared.rb.target;
            let cloud =
                crate::cloud::aws::Aws::new(clients.for_app(&a.app), &t.secondary, t.account.clone()).into_cloud();
            a.prepared.cfg.cloud = Some(Arc::new(cloud));
            clocks.push(rt.block_on(async { a.prepared.clock() }));
        }
    }
    // the bridge hears that the incident started (every application's webhooks, each once)
    let webhooks = incident_webhooks(&apps);
    let drill = apps.iter().any(|a| a.prepared.rb.meta.drill || a.prepared.meta.settings.drill);
    let names: Vec<&str> = apps.iter().map(|a| a.app.as_str()).collect();
    let verb = if number == 1 { "started" } else { "resumed" };
    let deadline = apps.iter().map(|a| a.prepared.rb.meta.rto).max().map(|rto| {
        let span = jiff::SignedDuration::try_from(rto).unwrap_or(jiff::SignedDuration::ZERO);
        record.incident_start.saturating_add(span).unwrap_or(record.incident_start)
    });
    crate::notify::send_incident(
        &rt,
        webhooks.clone(),
        record.dir(state),
        crate::notify::incident_message(
            "incident_started",
            &record.incident_id,
            drill,
            format!(
                "{verb} — {}; {} application{}: {}{}",
                record.title,
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                deadline.map(|d| format!("; latest deadline {d}")).unwrap_or_default()
            ),
            serde_json::json!({ "title": record.title, "session": number,
                "apps": record.apps.iter().map(|a| serde_json::json!({"app": a.app, "run_id": a.run_id})).collect::<Vec<_>>() }),
        ),
    );
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let width = apps.iter().map(|a| a.app.len()).max().unwrap_or(0);
    let mut running = Vec::new();
    for (a, clock) in apps.into_iter().zip(clocks) {
        let AppStart { app, prepared, opts } = a;
        let run_id = prepared.cfg.run_id.clone();
        // the console shows what a resumed run's earlier sessions did
        let history = match (&console, prepared.prior.is_some()) {
            (Some(_), true) => {
                journal::read_journal(&prepared.dir).map(|r| r.events().cloned().collect()).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let notes = if console.is_some() {
            crate::tui::notes_from_runbook(&prepared.rb, registry)
        } else {
            crate::tui::StepNotes::new()
        };
        let (handle, guard) = rt.block_on(async { prepared.start_on(registry.clone(), clock, paced.as_ref()) });
        let opts = headless::Options { reports: Some(guard.dir.clone()), engine_approves: true, ..opts };
        let writer =
            AppWriter { app: app.clone(), run_id: run_id.clone(), json, width, out: out.clone(), buf: Vec::new() };
        running.push(Running { app, run_id, handle, guard, opts, writer, notes, history });
    }
    if let Some(p) = &mut paced {
        p.go();
    }
    let headless = console.is_none();
    let results = match console {
        Some(theme) => {
            let opts = crate::tui::IncidentOptions {
                theme,
                operator: operator.to_string(),
                title: console_title(&record),
                incident_id: record.incident_id.clone(),
            };
            rt.block_on(run_console(running, opts))
        }
        None => rt.block_on(futures::future::join_all(running.into_iter().map(|r| async move {
            let Running { app, run_id, handle, guard, opts, writer, .. } = r;
            let r = headless::run(handle, &opts, writer).await;
            drop(guard);
            (app, run_id, r)
        }))),
    };
    drop(paced);
    let code = worst_exit(results.iter().map(|(_, _, r)| r.exit_code()));
    // every application's last messages (and the incident's start) are out before the incident's end is sent
    crate::notify::drain(&rt);
    // the bridge hears how the incident ended: each application's verdict (the run view's word), the exit code
    let verdicts: Vec<(String, String, String)> = results
        .iter()
        .map(|(app, run_id, r)| {
            let word = crate::journal::verdict_in(&state.runs().join(run_id)).unwrap_or(r.outcome.as_str());
            (app.clone(), run_id.clone(), word.to_string())
        })
        .collect();
    crate::notify::send_incident(
        &rt,
        webhooks,
        record.dir(state),
        crate::notify::incident_message(
            "incident_finished",
            &record.incident_id,
            drill,
            format!(
                "finished — exit {code}: {}; reports {}",
                verdicts.iter().map(|(a, _, w)| format!("{a} {w}")).collect::<Vec<_>>().join(", "),
                record.dir(state).display()
            ),
            serde_json::json!({ "exit_code": code, "report": record.dir(state).join("report.md").display().to_string(),
                "apps": verdicts.iter().map(|(a, r, w)| serde_json::json!({"app": a, "run_id": r, "verdict": w})).collect::<Vec<_>>() }),
        ),
    );
    crate::notify::drain(&rt);
    for (app, _, r) in &results {
        if let Some(h) = &r.halt {
            eprintln!("drconsole: {app}: {h}");
        }
    }
    for (app, _, r) in &results {
        if let Some(a) = record.apps.iter_mut().find(|a| &a.app == app) {
            a.outcome = r.outcome.as_str().to_string();
        }
    }
    let figures = sim.as_ref().and_then(|s| s.limit_figures());
    let calls = sim.as_ref().map(|s| s.calls()).unwrap_or_default();
    if let Some(s) = record.sessions.last_mut() {
        s.ended = Some(Timestamp::now());
        s.exit_code = Some(code);
        s.limits = figures.clone();
        s.calls = calls.clone();
    }
    if let Err(e) = record.write(state) {
        eprintln!("drconsole: {e}");
    }
    mirror(&record);
    if let Err(e) = super::report::write_all(state, &record.dir(state)) {
        eprintln!("drconsole: cannot write the incident report: {e}");
    }
    summary(state, &record, &results, figures.as_ref(), calls.values().sum(), code, json, headless);
    code
}

/// The webhooks of an incident: `--notify`, `DRCONSOLE_NOTIFY` and every application's `[notify]` (its runbook's and
/// the incident file's), each once.
fn incident_webhooks(apps: &[AppStart]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in apps {
        for u in crate::notify::webhooks(&a.prepared.rb.meta.notify) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

/// One application's engine, started, with what its frontend needs.
struct Running {
    app: String,
    run_id: String,
    handle: crate::engine::RunHandle,
    guard: journal::SessionGuard,
    opts: headless::Options,
    writer: AppWriter,
    notes: crate::tui::StepNotes,
    history: Vec<crate::engine::Event>,
}

/// The incident console over every application's engine; then each engine's result (an engine still running
/// when the console is gone stops as interrupted: its command sender was dropped).
async fn run_console(
    running: Vec<Running>,
    opts: crate::tui::IncidentOptions,
) -> Vec<(String, String, crate::engine::RunResult)> {
    let incident_id = opts.incident_id.clone();
    let mut links = Vec::new();
    let mut joins = Vec::new();
    let mut senders = Vec::new();
    for r in running {
        let crate::engine::RunHandle { commands, events, join } = r.handle;
        senders.push(commands.clone());
        links.push(crate::tui::AppLink {
            app: r.app.clone(),
            events,
            commands: Some(commands),
            notes: r.notes,
            history: r.history,
        });
        joins.push((r.app, r.run_id, join, r.guard));
    }
    let exit = {
        // SIGHUP (the terminal went away) ends the console like SIGTERM: every application is interrupted
        let hangup = hangup_interrupts(senders);
        tokio::select! {
            c = crate::tui::run_incident(links, opts) => c,
            () = hangup => Ok(crate::tui::IncidentExit { interrupted: true }),
        }
    };
    match exit {
        Ok(e) if e.interrupted => eprintln!(
            "drconsole: incident {incident_id} interrupted: no new step starts; waiting for running steps to stop \
             (continue with: drconsole resume {incident_id})"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("drconsole: {e}"),
    }
    let mut results = Vec::new();
    for (app, run_id, join, guard) in joins {
        let r = join.await.unwrap_or_else(|e| crate::engine::RunResult {
            outcome: Outcome::Failed,
            message: format!("the engine stopped unexpectedly: {e}"),
            statuses: Vec::new(),
            halt: None,
        });
        drop(guard);
        results.push((app, run_id, r));
    }
    results
}

/// Waits for SIGHUP, then interrupts every application.
async fn hangup_interrupts(commands: Vec<tokio::sync::mpsc::UnboundedSender<crate::engine::Command>>) {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        hup.recv().await;
        for c in &commands {
            let _ = c.send(crate::engine::Command::Interrupt);
        }
        return;
    }
    drop(commands);
    std::future::pending::<()>().await;
}

/// The incident's last line(s): one NDJSON `incident_finished` object, or a table of its applications.
#[allow(clippy::too_many_arguments)]
fn summary(
    state: &StateDir,
    record: &IncidentRecord,
    results: &[(String, String, crate::engine::RunResult)],
    figures: Option<&crate::cloud::sim::LimitFigures>,
    calls: u64,
    code: u8,
    json: bool,
    headless: bool,
) {
    let mut out = std::io::stdout().lock();
    let throttled: u64 = figures.map(|f| f.throttled.values().sum()).unwrap_or(0);
    if json {
        let apps: Vec<serde_json::Value> = results
            .iter()
            .map(|(app, run_id, r)| {
                let verdict = crate::journal::verdict_in(&state.runs().join(run_id)).unwrap_or(r.outcome.as_str());
                serde_json::json!({
                    "app": app, "run_id": run_id, "outcome": r.outcome.as_str(), "verdict": verdict, "message": r.message
                })
            })
            .collect();
        let v = serde_json::json!({
            "type": "incident_finished",
            "incident_id": record.incident_id,
            "exit_code": code,
            "apps": apps,
            "api_calls": calls,
            "throttled": throttled,
            "limits": figures,
        });
        let _ = writeln!(out, "{v}");
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "incident {}: {} — exit {code}", record.incident_id, record.title);
    for (app, run_id, r) in results {
        // the run view's word (`recovered-late` when a target was missed), as the overview and the report say it
        let word = crate::journal::verdict_in(&state.runs().join(run_id)).unwrap_or(r.outcome.as_str());
        let _ = writeln!(out, "  {app:<24} {word:<14} run {run_id}");
    }
    if let Some(f) = figures {
        let _ = writeln!(
            out,
            "  API: {calls} calls, {throttled} throttled; the limiter held back {} calls ({:.0} s in all)",
            f.limiter_waits, f.limiter_wait_secs
        );
    }
    let _ = writeln!(out, "reports: {}", record.dir(state).display());
    if code != 0 {
        // as it ran: in the console, or headless
        let flag = if headless { " --headless" } else { "" };
        let _ = writeln!(out, "continue: drconsole resume {}{flag}", record.incident_id);
    }
    let _ = out.flush();
}

/// One application's output: whole lines, each text line prefixed by the application, each NDJSON object given
/// `app` and `run_id` fields, written to the shared stdout one line at a time.
struct AppWriter {
    app: String,
    run_id: String,
    json: bool,
    width: usize,
    out: Arc<Mutex<std::io::Stdout>>,
    buf: Vec<u8>,
}

impl AppWriter {
    fn emit(&self, line: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let line = if self.json {
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
                Ok(m) => {
                    let mut o = serde_json::Map::new();
                    o.insert("app".into(), self.app.clone().into());
                    o.insert("run_id".into(), self.run_id.clone().into());
                    o.extend(m);
                    serde_json::Value::Object(o).to_string()
                }
                Err(_) => text.into_owned(),
            }
        } else {
            format!("{:<w$}  {text}", self.app, w = self.width)
        };
        let out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = out.lock();
        writeln!(out, "{}", line.trim_end())
    }
}

impl Write for AppWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        while let Some(i) = self.buf.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            self.emit(&line[..line.len() - 1])?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.lock().flush()
    }
}

/// The incident console's first line: the backend, the incident's title and id (the driver's and the watcher's).
fn console_title(record: &IncidentRecord) -> String {
    let backend = if record.backend == "sim" { "SIMULATOR" } else { "AWS" };
    format!("{backend} · {} · incident {}", record.title, record.incident_id)
}

/// Follows every application of an incident from their journals, read-only, until they all end: on a terminal the
/// incident console, read-only (the board the driver sees, and each application's screen from it); otherwise
/// their lines (text or NDJSON), each naming its application. With shared state configured, each application's
/// journal is read from it.
pub fn watch(state: &StateDir, dir: &Path, json: bool, console: Option<crate::tui::Theme>, operator: &str) -> u8 {
    let record = match IncidentRecord::read(dir) {
        Ok(r) => r,
        Err(e) => return journal_error(&e),
    };
    let shared = journal::shared::configured().is_some();
    let mut dirs = Vec::new();
    for a in &record.apps {
        match state.find_run(&a.run_id) {
            Ok(d) => dirs.push((a.app.clone(), a.run_id.clone(), d)),
            // on another host, the run is read from the shared state
            Err(_) if shared => dirs.push((a.app.clone(), a.run_id.clone(), state.root.clone())),
            Err(e) => return journal_error(&e),
        }
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    if let Some(theme) = console {
        let opts = crate::tui::IncidentOptions {
            theme,
            operator: operator.to_string(),
            title: console_title(&record),
            incident_id: record.incident_id.clone(),
        };
        let done = rt.block_on(async move {
            let mut links = Vec::new();
            for (app, run_id, d) in dirs {
                let events = match journal::shared::follow(&run_id) {
                    Some(Ok((_, events))) => events,
                    Some(Err(e)) => return Err(format!("{app}: {e}")),
                    None => journal::follow(&d),
                };
                links.push(crate::tui::AppLink {
                    app,
                    events,
                    commands: None,
                    notes: crate::tui::StepNotes::new(),
                    history: Vec::new(),
                });
            }
            crate::tui::run_incident(links, opts).await.map_err(|e| e.to_string())
        });
        return match done {
            Ok(_) => crate::exit::RECOVERED,
            Err(e) => {
                eprintln!("drconsole: {e}");
                crate::exit::FAILED
            }
        };
    }
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let width = dirs.iter().map(|(a, _, _)| a.len()).max().unwrap_or(0);
    rt.block_on(futures::future::join_all(dirs.into_iter().map(|(app, run_id, d)| {
        let id = run_id.clone();
        let writer = AppWriter { app, run_id, json, width, out: out.clone(), buf: Vec::new() };
        async move {
            let events = match journal::shared::follow(&id) {
                Some(Ok((_, events))) => events,
                Some(Err(e)) => {
                    eprintln!("drconsole: run {id}: {e}");
                    return;
                }
                None => journal::follow(&d),
            };
            headless::print_stream(events, json, Some(d.clone()), writer).await;
        }
    })));
    crate::exit::RECOVERED
}

/// `drconsole runs --json`: the runs (the array `runs --json` always printed), each run of an incident with an
/// `incident` object: `{"incident_id", "name", "title", "started", "app"}` (the incident and the application the
/// run recovers). A run of no incident has no `incident` field.
pub fn runs_json(state: &StateDir, runs: &[journal::RunSummary]) -> serde_json::Value {
    let incidents = super::record::list_incidents(state);
    let items = runs
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
            let found = incidents.iter().find_map(|i| i.apps.iter().find(|a| a.run_id == r.run_id).map(|a| (i, a)));
            if let (Some((i, a)), Some(o)) = (found, v.as_object_mut()) {
                o.insert(
                    "incident".into(),
                    serde_json::json!({
                        "incident_id": i.incident_id,
                        "name": i.name,
                        "title": i.title,
                        "started": i.started,
                        "app": a.app,
                    }),
                );
            }
            v
        })
        .collect();
    serde_json::Value::Array(items)
}

/// The incidents under the state directory, each with its applications (`drconsole runs`).
pub fn print_incidents(state: &StateDir) {
    let incidents = super::record::list_incidents(state);
    if incidents.is_empty() {
        return;
    }
    let runs = journal::list_runs(state);
    println!();
    println!("{:<30} {:<28} {:<20} APPLICATIONS", "INCIDENT", "NAME", "STARTED");
    for i in incidents {
        println!(
            "{:<30} {:<28} {:<20} {}",
            i.incident_id,
            i.name,
            i.started.strftime("%Y-%m-%d %H:%M:%SZ"),
            i.apps.len()
        );
        for a in &i.apps {
            let (status, outcome) = runs
                .iter()
                .find(|r| r.run_id == a.run_id)
                .map(|r| (r.status.clone(), if r.outcome.is_empty() { "-".to_string() } else { r.outcome.clone() }))
                .unwrap_or_else(|| ("missing".into(), "-".into()));
            println!("  {:<28} {:<22} {:<10} {outcome}", a.app, a.run_id, status);
        }
    }
}
