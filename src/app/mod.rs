//! The commands behind the command line: `main` parses it, [`run`] dispatches, and every command returns its exit
//! code or an [`AppError`] that carries one ([`crate::exit`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::actions::Registry;
use crate::cli::{Cli, Cmd, ResumeArgs, RunArgs};
use crate::cloud::aws::AwsOptions;
use crate::engine::RunConfig;
use crate::engine::pace::Paced;
use crate::exit;
use crate::journal::{self, Prepared, RunSettings, StateDir};
use crate::runbook::{self, Backend, Runbook};
use crate::{headless, plan, tui};

mod error;
pub use error::AppError;

/// What a command ends with: its exit code, or why it could not do its work.
pub type Exit = Result<u8, AppError>;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Exit {
    if !matches!(cli.command, None | Some(Cmd::Resume(_))) {
        // listings end quietly when their reader goes away (`drconsole actions | head -1`)
        crate::util::quiet_broken_pipe();
    }
    let registry = Registry::builtin();
    journal::shared::configure(cli.shared_state().map_err(AppError::Usage)?);
    crate::notify::configure(&cli.notify).map_err(AppError::Usage)?;
    let state_dir = cli.state_dir.as_deref();
    match cli.command {
        Some(Cmd::Check { files, json }) => Ok(check(&files, json, &registry)),
        Some(Cmd::Actions { json }) => Ok(actions(json, &registry)),
        Some(Cmd::Plan { runbook, drill }) if crate::incident::file::is_incident_file(&runbook) => {
            let mut set = crate::incident::load_file(&runbook, &registry).map_err(|d| invalid(&runbook, &d))?;
            for (_, rb) in &mut set.apps {
                rb.meta.drill |= drill;
            }
            print!("{}", plan::plan_incident_text(&set, &registry));
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Plan { runbook, drill }) => {
            let mut rb = load(&runbook, &registry)?;
            rb.meta.drill |= drill;
            // the forecast from the runbook's history, when the state directory can be found
            let forecast = StateDir::resolve(state_dir)
                .ok()
                .map(|s| crate::forecast::store::forecast_for_plan(&s.root, &rb, &registry));
            print!("{}", plan::plan_text_with(&rb, &registry, forecast.as_ref()));
            Ok(exit::RECOVERED)
        }
        Some(Cmd::IamPolicy { runbook }) => {
            let rb = load(&runbook, &registry)?;
            let mut policy = plan::iam_policy(&rb, &registry);
            journal::shared::add_iam_statements(&mut policy, &rb);
            println!("{}", serde_json::to_string_pretty(&policy).unwrap_or_default());
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Resume(args)) => resume(&args, state_dir, registry),
        Some(Cmd::Runs { json }) => runs(state_dir, json),
        Some(Cmd::Report { run, format }) => report(state_dir, &run, &format),
        Some(Cmd::Watch { run, json }) => watch(state_dir, &run, json),
        Some(Cmd::History { runbook, json }) => {
            let rb = load(&runbook, &registry)?;
            let state = StateDir::resolve(state_dir)?;
            // with shared state: the team's runs first
            crate::forecast::store::pull_shared(&state.root, &rb);
            let text = crate::forecast::command::render(&state.root, &rb, &registry, json).map_err(AppError::Failed)?;
            println!("{}", text.trim_end());
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Cleanup { run, yes, force }) => {
            let opts = crate::cleanup::command::Options { yes, force, by: operator() };
            Ok(crate::cleanup::command::command(state_dir, &run, &opts))
        }
        Some(Cmd::Preflight(args)) => Ok(crate::preflight::command::main(&args, state_dir, &registry)),
        Some(Cmd::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "drconsole", &mut std::io::stdout());
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| AppError::Failed(format!("cannot write the manual page: {e}")))?;
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Schema { kind }) => {
            let schema = crate::schema::schema(kind, &registry);
            println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            Ok(exit::RECOVERED)
        }
        Some(Cmd::Inventory { runbooks, json }) => {
            Ok(crate::inventory::command::main(&runbooks, json, state_dir, &registry))
        }
        None => match &cli.run.runbook {
            Some(path) if !cli.run.more.is_empty() || crate::incident::file::is_incident_file(path) => {
                run_incident(path, &cli.run, state_dir, &registry)
            }
            Some(path) => run_one(path, &cli.run, state_dir, registry),
            None => Err(AppError::usage(
                "no runbook given\n\nUsage: drconsole [--headless] RUNBOOK | drconsole check FILE... | drconsole --help",
            )),
        },
    }
}

/// A runbook's diagnostics as `check` prints them, and the summary line.
fn invalid(path: &Path, diags: &runbook::Diagnostics) -> AppError {
    let n = diags.0.len();
    AppError::Invalid(format!("{diags}{}: {n} error{}\n", path.display(), if n == 1 { "" } else { "s" }))
}

fn load(path: &Path, registry: &Registry) -> Result<Runbook, AppError> {
    runbook::load(path, registry).map_err(|d| invalid(path, &d))
}

fn check(files: &[std::path::PathBuf], json: bool, registry: &Registry) -> u8 {
    let mut all = Vec::new();
    let mut bad = 0;
    for f in files {
        if crate::incident::file::is_incident_file(f) {
            match crate::incident::load_file(f, registry) {
                Ok(set) => {
                    if !json {
                        println!("ok: {} (incident {}, {} runbooks)", f.display(), set.name, set.apps.len());
                    }
                }
                Err(d) => {
                    bad += 1;
                    if !json {
                        invalid(f, &d).eprint();
                    }
                    all.extend(d.0);
                }
            }
            continue;
        }
        match runbook::load(f, registry) {
            Ok(rb) if rb.meta.drill && !crate::drill::primary_writes(&rb, registry).is_empty() => {
                // a drill runbook that would write its primary region cannot run
                bad += 1;
                for (step, why) in crate::drill::primary_writes(&rb, registry) {
                    if !json {
                        eprintln!("error: {}: step `{step}`: {why}", f.display());
                    }
                }
            }
            Ok(rb) => {
                if !json {
                    println!("ok: {} ({}, {} steps)", f.display(), rb.meta.name, rb.steps.len());
                }
            }
            Err(d) => {
                bad += 1;
                if !json {
                    invalid(f, &d).eprint();
                }
                all.extend(d.0);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    if bad > 0 { exit::USAGE } else { exit::RECOVERED }
}

fn actions(json: bool, registry: &Registry) -> u8 {
    if json {
        let specs: Vec<_> = registry.iter().map(|a| a.spec()).collect();
        println!("{}", serde_json::to_string_pretty(&specs).unwrap_or_default());
        return exit::RECOVERED;
    }
    for a in registry.iter() {
        let s = a.spec();
        println!("{:<28} {}", s.name, s.summary);
        for p in s.params {
            let req = if p.required { "required" } else { "optional" };
            println!("    {:<24} {req}, {}: {}", p.name, p.kind.describe(), p.doc);
        }
        if !s.outputs.is_empty() {
            let outs: Vec<&str> = s.outputs.iter().map(|o| o.name).collect();
            println!("    outputs: {}", outs.join(", "));
        }
        println!("    expected ~{}; {:?}", crate::util::fmt_duration(s.expected()), s.effect);
    }
    exit::RECOVERED
}

/// `user@host`: who is running drconsole, for the journal and reports.
pub fn operator() -> String {
    format!("{}@{}", journal::username(), journal::hostname())
}

/// What a headless frontend answers on its own: `--approve all|ID,ID`, `--yes`; every named step must exist.
fn headless_options(
    rb: &Runbook,
    approve: &[String],
    yes: bool,
    manual_done: &[String],
    json: bool,
) -> Result<headless::Options, AppError> {
    let named: HashSet<String> = approve.iter().filter(|a| *a != "all").cloned().collect();
    if let Some(a) = named.iter().find(|a| rb.step_index(a).is_none()) {
        return Err(AppError::usage(format!("--approve {a}: the runbook has no step `{a}`")));
    }
    let done: HashSet<String> = manual_done.iter().filter(|a| *a != "all").cloned().collect();
    if let Some(a) = done.iter().find(|a| rb.step_index(a).is_none_or(|i| rb.steps[i].action != "manual")) {
        return Err(AppError::usage(format!("--manual-done {a}: the runbook has no manual step `{a}`")));
    }
    Ok(headless::Options {
        json,
        approve_all: yes || approve.iter().any(|a| a == "all"),
        approve: named,
        operator: operator(),
        reports: None,
        engine_approves: false,
        manual_done_all: manual_done.iter().any(|a| a == "all"),
        manual_done: done,
        history: Vec::new(),
    })
}

fn run_one(path: &Path, args: &RunArgs, state_dir: Option<&Path>, registry: Registry) -> Exit {
    let mut rb = load(path, &registry)?;
    let incident_start = args
        .incident_start
        .as_deref()
        .map(|s| crate::cli::incident_start(s).map_err(|e| AppError::usage(format!("--incident-start {e}"))))
        .transpose()?;
    let settings = RunSettings {
        vars: args.vars.clone(),
        sim: args.sim || args.world.is_some(),
        speed: args.speed,
        seed: args.seed,
        max_parallel: args.max_parallel,
        recovery_point: args.recovery_point.clone(),
        incident_start,
        world: args.world.as_deref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        shared_state: journal::shared::for_run(&rb, args.profile.as_deref()),
        drill: args.drill,
        no_history: args.no_history,
    };
    // --var and --sim, the same way a resume applies them from the run's meta.json
    settings.apply(&mut rb)?;
    drill_refusal(&rb, &registry)?;
    if args.cleanup_after && !rb.meta.drill {
        return Err(AppError::usage(
            "--cleanup-after only applies to a drill (--drill, or mode = \"drill\" in [runbook])",
        ));
    }
    // a --var of the wrong kind is refused now, as `check` refuses a [vars] value, not when its step runs
    runbook::kinds::check_overrides(&rb, &registry, &args.vars).map_err(AppError::usage)?;
    // validated now, before anything is created (the opening screen's preflight uses it); loaded again when the
    // simulator starts, from the path kept in the run's settings
    let world = args.world.as_deref().map(crate::cloud::sim::WorldFile::load).transpose().map_err(AppError::usage)?;
    if rb.target.backend == Backend::Aws && args.speed != 1.0 {
        return Err(AppError::usage("--speed only applies to the simulator (--sim or backend = \"sim\")"));
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(AppError::usage("--speed must be a positive number"));
    }
    if args.json && !args.headless {
        return Err(AppError::usage("--json needs --headless"));
    }
    let opts = headless_options(&rb, &args.approve, args.yes, &args.manual_done, args.json)?;
    // nothing starts that cannot finish: a headless run cannot answer a recovery-point question
    unanswerable_asks(&rb, args)?;
    let cfg = RunConfig {
        incident_start,
        max_parallel: args.max_parallel,
        seed: args.seed,
        recovery_point: args.recovery_point.clone(),
        backend: rb.target.backend.as_str().to_string(),
        ..RunConfig::default()
    };
    let mut console = console_options(args.headless, args.theme.as_deref(), &rb, &registry)?;
    // in the console, --cleanup-after asks for the typed run id when the drill ends (and the console cleans up)
    let in_console = console.is_some();
    if let Some(c) = &mut console {
        c.cleanup_after = args.cleanup_after;
    }
    let state = StateDir::resolve(state_dir)?;
    if let Some(c) = &console {
        // another run of this runbook on this account and regions is refused now, not after the opening screen
        let key =
            journal::lock_key(&rb.meta.name, rb.target.account.as_deref(), &rb.target.primary, &rb.target.secondary);
        journal::RunLock::probe(&state.locks(), &key)?;
        if !opening(&rb, c, args, world.as_ref(), &registry, state_dir)? {
            eprintln!("drconsole: the run was not started: nothing was sent to the account and no run was recorded");
            return Ok(exit::INTERRUPTED);
        }
    }
    let prepared = journal::prepare_new(&state, rb, cfg, settings, args.take_over_lock)?;
    let dir = prepared.dir.clone();
    let code = drive(prepared, registry, &opts, console)?;
    if !args.cleanup_after || in_console {
        return Ok(code);
    }
    // --cleanup-after: whatever the outcome; the run's exit code wins unless it recovered
    eprintln!("drconsole: --cleanup-after: removing what the drill created");
    let copts = crate::cleanup::command::Options { yes: true, force: false, by: operator() };
    let cleaned = crate::cleanup::command::cleanup_dir(&dir, &copts);
    Ok(if code == exit::RECOVERED { cleaned } else { code })
}

/// The console's opening screen for a new run: the run starts when the operator says so (`Enter`), after a
/// preflight if they ask for one (`p`: read-only, on the world or account the run would use, its report written
/// to the state directory's `preflight/` as evidence); `false` when they left with nothing started.
fn opening(
    rb: &Runbook,
    console: &tui::TuiOptions,
    args: &RunArgs,
    world: Option<&crate::cloud::sim::WorldFile>,
    registry: &Registry,
    state_dir: Option<&Path>,
) -> Result<bool, AppError> {
    use crate::preflight::command::{CheckOptions, check, write_report};
    let world = world.cloned();
    let opts = CheckOptions {
        seed: args.seed,
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        history: crate::preflight::command::history_of(rb, state_dir),
    };
    let state_dir = state_dir.map(Path::to_path_buf);
    let start_preflight = || {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (rb, registry, world, opts, state_dir) =
            (rb.clone(), registry.clone(), world.clone(), opts.clone(), state_dir.clone());
        // blocking, on its own runtime: the screen keeps answering keys while the checks run
        std::thread::spawn(move || {
            let r = check(&rb, &opts, world.as_ref(), &registry).map(|report| {
                let file = write_report(&report, None, state_dir.as_deref()).map(|p| p.display().to_string());
                (report, file)
            });
            let _ = tx.send(r);
        });
        rx
    };
    let rt = runtime()?;
    let exit = rt
        .block_on(tui::opening::run(opening_of(rb, registry, state_dir.as_deref()), &console.theme, start_preflight))
        .map_err(|e| AppError::Failed(e.to_string()))?;
    if let Some((verdict, file)) = &exit.preflight {
        let file = match file {
            Ok(p) => format!("report: {p}"),
            Err(e) => format!("no report file: {e}"),
        };
        eprintln!("drconsole: preflight before the run: {} ({file})", verdict.as_str());
    }
    Ok(exit.start)
}

/// The opening screen's account of a runbook, with the forecast from its history when the state directory is found.
fn opening_of(rb: &Runbook, registry: &Registry, state_dir: Option<&Path>) -> tui::opening::Opening {
    let o = tui::opening::Opening::from_runbook(rb);
    match StateDir::resolve(state_dir) {
        Ok(s) => {
            let f = crate::forecast::store::forecast(&s.root, rb, registry, rb.target.backend.as_str());
            o.with_forecast(rb, registry, &f)
        }
        Err(_) => o,
    }
}

/// A drill that would write the primary region is refused before anything starts (exit 4, nothing created).
fn drill_refusal(rb: &Runbook, registry: &Registry) -> Result<(), AppError> {
    let writes = if rb.meta.drill { crate::drill::primary_writes(rb, registry) } else { Vec::new() };
    if writes.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for (_, why) in &writes {
        msg.push_str(&format!("refused: {why}\ndrconsole: "));
    }
    msg.push_str("the drill was not started; nothing was created");
    Err(AppError::Refused(msg))
}

/// The console's options, or `None` for a headless run; a console needs stdout to be a terminal.
fn console_options(
    headless: bool,
    theme: Option<&str>,
    rb: &Runbook,
    registry: &Registry,
) -> Result<Option<tui::TuiOptions>, AppError> {
    if headless {
        return Ok(None);
    }
    let theme = theme_or_default(theme)?;
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(AppError::usage("stdout is not a terminal: the console needs one; pass --headless for automation"));
    }
    Ok(Some(tui::TuiOptions {
        theme,
        operator: operator(),
        notes: tui::notes_from_runbook(rb, registry),
        history: Vec::new(),
        shared_state: None,
        cleanup_after: false,
    }))
}

fn theme_or_default(theme: Option<&str>) -> Result<tui::Theme, AppError> {
    Ok(theme.map(tui::Theme::load).transpose().map_err(AppError::usage)?.unwrap_or_else(tui::Theme::default_for_env))
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Setup(format!("cannot start the async runtime: {e}")))
}

/// Runs a prepared (new or resumed) run to its end with the journal recording it; the run lock is held until then.
/// A simulated run's engine goes on the simulator's paced runtime (`engine::pace`), the frontend stays here.
/// The exit code is the run's outcome's, in the console as headless; a cloud that cannot be set up is exit 2
/// on both.
fn drive(
    mut prepared: Prepared,
    registry: Registry,
    opts: &headless::Options,
    console: Option<tui::TuiOptions>,
) -> Exit {
    let rt = runtime()?;
    eprintln!("drconsole: run {} (journal: {})", prepared.cfg.run_id, prepared.dir.display());
    let shared_url = prepared.meta.settings.shared_state.as_ref().map(|s| s.url.clone());
    if let Some(url) = &shared_url {
        eprintln!("drconsole: shared state: {url} (lock and journal on S3)");
    }
    if console.is_none() {
        // headless: the flags' confirmations are given by the engine as they are asked
        let by = if opts.operator.is_empty() { "headless".to_string() } else { opts.operator.clone() };
        prepared.cfg.approvals = crate::engine::Approvals { all: opts.approve_all, steps: opts.approve.clone(), by };
        // nothing created before the recovery point is chosen (crate::engine::gate)
        prepared.cfg.decisions_first = true;
    }
    let mut paced = if prepared.rb.target.backend == Backend::Sim {
        let p = Paced::start(prepared.meta.settings.speed)
            .map_err(|e| AppError::Setup(format!("cannot start the simulator: {e}")))?;
        Some(p)
    } else {
        None
    };
    let clock = match &paced {
        Some(p) => p.clock(prepared.sim_start()),
        None => rt.block_on(async { prepared.clock() }),
    };
    match &paced {
        Some(p) => p.enter(|| attach_sim(&mut prepared, &clock)),
        None => rt.block_on(attach_aws(&mut prepared)),
    }
    .map_err(AppError::Setup)?;
    // a resume: the console (and the headless summary) show what the earlier sessions did
    let history: Vec<crate::run::Event> = if prepared.prior.is_some() {
        journal::read_journal(&prepared.dir).map(|r| r.events().cloned().collect()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut console = console;
    if let Some(topts) = &mut console {
        // a drill's cut-over asks for the drill record, known now that the run has its id
        tui::drill_notes(&mut topts.notes, &prepared.rb, &prepared.cfg.run_id);
    }
    let (handle, guard) = rt.block_on(async { prepared.start_on(registry, clock, paced.as_ref()) });
    if let Some(p) = &mut paced {
        p.go();
    }
    if let Some(mut topts) = console {
        topts.history = history;
        topts.shared_state = shared_url;
        let code = run_console(handle, guard, topts, &rt);
        crate::notify::drain(&rt);
        return code;
    }
    let opts = headless::Options { reports: Some(guard.dir.clone()), engine_approves: true, history, ..opts.clone() };
    let result = rt.block_on(async move {
        let result = headless::run(handle, &opts, std::io::stdout().lock()).await;
        drop(guard);
        result
    });
    drop(paced);
    crate::notify::drain(&rt);
    match result.halt {
        Some(h) => Err(AppError::Halted(h)),
        None => Ok(result.outcome.exit_code()),
    }
}

/// Gives an AWS run its cloud: the standard credential chain (or `--profile`), `--endpoint-url`.
async fn attach_aws(prepared: &mut Prepared) -> Result<(), String> {
    let settings = &prepared.meta.settings;
    let opts = AwsOptions {
        profile: settings.profile.clone(),
        endpoint_url: settings.endpoint_url.clone(),
        // a drill never writes its primary region
        read_only_regions: if prepared.rb.meta.drill { vec![prepared.rb.target.primary.clone()] } else { Vec::new() },
        app: Some(prepared.rb.meta.app.clone()),
        // AWS's documented request limits, paced on the client side as an incident's applications are
        limiter: Some(Arc::new(crate::cloud::limit::RateLimiter::new(crate::cloud::limit::Limits::aws_defaults()))),
        ..AwsOptions::default()
    };
    let cloud = crate::cloud::aws::cloud_for(&opts, &prepared.rb.target).await;
    prepared.cfg.cloud = Some(Arc::new(cloud));
    Ok(())
}

/// Gives a simulated run its world: the world of a resumed run comes back from its run directory, a new one is
/// provisioned from the runbook (and `--world`); the journal saves it at every checkpoint so a resume finds what
/// was created. Called inside the paced runtime's context (the world reads its clock).
fn attach_sim(prepared: &mut Prepared, clock: &crate::engine::Clock) -> Result<(), String> {
    use crate::cloud::sim::{Sim, WorldFile};
    let world = prepared.meta.settings.world.as_deref().map(WorldFile::load).transpose().map_err(|e| e.to_string())?;
    let sim = match journal::load_world(&prepared.dir).map_err(|e| e.to_string())? {
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| format!("the saved simulator world is not UTF-8: {e}"))?;
            let sim = Sim::load(&text, clock.clone()).map_err(|e| e.to_string())?;
            // the saved world has no secrets (they must not land in the run directory)
            sim.restore_secrets(&prepared.rb, world.as_ref());
            sim
        }
        None => Sim::for_runbook(clock.clone(), prepared.cfg.seed, &prepared.rb, world.as_ref()),
    };
    if prepared.rb.meta.drill {
        // a drill never writes its primary region
        sim.set_read_only(&prepared.rb.target.primary);
    }
    let sim = Arc::new(sim);
    prepared.cfg.cloud = Some(Arc::new(crate::cloud::sim::Sim::cloud_of(&sim)));
    prepared.set_world_store(Box::new(SimWorld(sim)));
    Ok(())
}

struct SimWorld(Arc<crate::cloud::sim::Sim>);

impl journal::WorldStore for SimWorld {
    fn save(&mut self) -> Result<Vec<u8>, String> {
        self.0.save().map(String::into_bytes).map_err(|e| e.to_string())
    }
}

/// The interactive console: the engine's events go to the TUI, its commands to the engine; the exit code follows
/// the run's outcome (as headless), 130 when the operator quit and interrupted an active run.
fn run_console(
    handle: crate::engine::RunHandle,
    guard: journal::SessionGuard,
    opts: tui::TuiOptions,
    rt: &tokio::runtime::Runtime,
) -> Exit {
    let run_id = guard.run_id.clone();
    let id = run_id.clone();
    let dir = guard.dir.clone();
    let cleanup_after = opts.cleanup_after;
    let (console, result) = rt.block_on(async move {
        // SIGHUP (the terminal went away) ends the console like SIGTERM: the run is interrupted and recorded
        let hangup = hangup_interrupts(handle.commands.clone());
        let console = tokio::select! {
            c = tui::run(handle.events, Some(handle.commands), opts) => c,
            () = hangup => Ok(tui::TuiExit { outcome: None, interrupted: true, cleanup: false }),
        };
        if let Ok(exit) = &console
            && exit.interrupted
        {
            eprintln!(
                "drconsole: run {id} interrupted: no new step starts; waiting for running steps to stop \
                 (continue with: drconsole resume {id})"
            );
        }
        // the console is gone (its command sender dropped): an active run stops as interrupted
        let result = handle.join.await;
        drop(guard);
        (console, result)
    });
    let console = console.map_err(|e| AppError::Failed(e.to_string()))?;
    let r = result.map_err(|e| AppError::Failed(format!("the engine stopped unexpectedly: {e}")))?;
    if let Some(h) = r.halt {
        return Err(AppError::Halted(h));
    }
    let word = crate::journal::verdict_in(&dir).unwrap_or(r.outcome.as_str());
    eprintln!("drconsole: run {run_id}: {}", crate::run::verdict::outcome_line(word, &r.message));
    if r.outcome != crate::engine::Outcome::Recovered {
        eprintln!("drconsole: to continue: drconsole resume {run_id}");
    }
    let code = r.outcome.exit_code();
    if console.cleanup {
        // confirmed in the console by the typed run id; the run's exit code wins unless it recovered
        eprintln!("drconsole: cleanup confirmed in the console: removing what the drill created");
        let copts = crate::cleanup::command::Options { yes: true, force: false, by: operator() };
        let cleaned = crate::cleanup::command::cleanup_dir(&dir, &copts);
        return Ok(if code == exit::RECOVERED { cleaned } else { code });
    }
    if cleanup_after {
        eprintln!(
            "drconsole: cleanup not confirmed: nothing was deleted; to remove what the drill created: drconsole \
             cleanup {run_id}"
        );
    }
    Ok(code)
}

/// A headless run without `--recovery-point` whose runbook asks the operator for one is refused before anything
/// is created (exit 3, as when it stops at the question, but with nothing to clean up).
fn unanswerable_asks(rb: &Runbook, args: &RunArgs) -> Result<(), AppError> {
    let asks = runbook::kinds::asking_steps(rb);
    if !args.headless || args.recovery_point.is_some() || asks.is_empty() {
        return Ok(());
    }
    Err(AppError::Blocked(format!(
        "step{} `{}` ask{} the operator for a recovery point, and a headless run cannot ask: pass \
         --recovery-point ID or --recovery-point latest. Nothing was started.",
        if asks.len() == 1 { "" } else { "s" },
        asks.join("`, `"),
        if asks.len() == 1 { "s" } else { "" },
    )))
}

/// Waits for SIGHUP, then interrupts the run (no new step starts, running steps are cancelled, the end is recorded).
async fn hangup_interrupts(commands: tokio::sync::mpsc::UnboundedSender<crate::engine::Command>) {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        hup.recv().await;
        let _ = commands.send(crate::engine::Command::Interrupt);
        return;
    }
    std::future::pending::<()>().await;
}

/// Several runbooks, or an incident file: one incident, one run per application (`crate::incident`).
fn run_incident(first: &Path, args: &RunArgs, state_dir: Option<&Path>, registry: &Registry) -> Exit {
    let loaded = if args.more.is_empty() {
        crate::incident::load_file(first, registry)
    } else {
        let paths: Vec<std::path::PathBuf> = std::iter::once(first.to_path_buf()).chain(args.more.clone()).collect();
        crate::incident::load_runbooks(&paths, registry)
    };
    let set = loaded.map_err(|d| invalid(first, &d))?;
    let state = StateDir::resolve(state_dir)?;
    Ok(crate::incident::drive::run_new(set, args, &state, registry, &operator()))
}

fn resume(args: &ResumeArgs, state_dir: Option<&Path>, registry: Registry) -> Exit {
    if let Ok(state) = StateDir::resolve(state_dir)
        && let Some(found) = crate::incident::record::find_incident(&state, &args.run)
    {
        return Ok(crate::incident::drive::resume(&found?, args, &state, &registry, &operator()));
    }
    let state = StateDir::resolve(state_dir)?;
    let prepared = journal::prepare_resume(
        &state,
        &args.run,
        args.runbook.as_deref(),
        &registry,
        args.force,
        args.take_over_lock,
        args.recovery_point.clone(),
    )?;
    if args.json && !args.headless {
        return Err(AppError::usage("--json needs --headless"));
    }
    let opts = headless_options(&prepared.rb, &args.approve, args.yes, &args.manual_done, args.json)?;
    if args.no_history {
        crate::forecast::store::leave_out(&prepared.dir).map_err(|e| AppError::Failed(e.to_string()))?;
    }
    let done = if prepared.done.is_empty() { "none".to_string() } else { prepared.done.join(", ") };
    eprintln!("drconsole: resuming run {}; steps already done (not repeated): {done}", prepared.cfg.run_id);
    let console = console_options(args.headless, None, &prepared.rb, &registry)?;
    drive(prepared, registry, &opts, console)
}

fn runs(state_dir: Option<&Path>, json: bool) -> Exit {
    let state = StateDir::resolve(state_dir)?;
    let runs = journal::list_runs(&state);
    if json {
        let v = crate::incident::drive::runs_json(&state, &runs);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(exit::RECOVERED);
    }
    if runs.is_empty() {
        println!("no runs under {}", state.runs().display());
        return Ok(exit::RECOVERED);
    }
    println!("{:<22} {:<28} {:<10} {:<20} OUTCOME", "RUN", "RUNBOOK", "STATUS", "STARTED");
    for r in runs {
        let started = r.started.map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_default();
        let outcome = match (&r.problem, r.outcome.is_empty()) {
            (Some(p), _) => format!("({p})"),
            (None, true) => "-".to_string(),
            (None, false) => r.outcome.clone(),
        };
        println!("{:<22} {:<28} {:<10} {:<20} {outcome}", r.run_id, r.runbook, r.status, started);
    }
    crate::incident::drive::print_incidents(&state);
    Ok(exit::RECOVERED)
}

fn report(state_dir: Option<&Path>, run: &str, format: &str) -> Exit {
    if let Ok(state) = StateDir::resolve(state_dir)
        && let Some(found) = crate::incident::record::find_incident(&state, run)
    {
        use crate::incident::report as ir;
        let dir = found?;
        let r = ir::write_all(&state, &dir)?;
        match format {
            "json" => print!("{}", ir::json(&r)),
            "junit" => print!("{}", ir::junit(&r)),
            _ => print!("{}", ir::markdown(&r)),
        }
        eprintln!("drconsole: incident reports written to {}", dir.display());
        return Ok(exit::RECOVERED);
    }
    let dir = StateDir::resolve(state_dir)?.find_run(run)?;
    let r = journal::report::write_all(&dir)?;
    match format {
        "json" => print!("{}", journal::report::json(&r)),
        "junit" => print!("{}", journal::report::junit(&r)),
        _ => print!("{}", journal::report::markdown(&r)),
    }
    eprintln!("drconsole: reports written to {}", dir.display());
    if let Err(e) = journal::shared::push_run_reports(&dir) {
        eprintln!("drconsole: the reports could not be copied to the shared state: {e}");
    }
    if let Some(p) = &r.journal.problem {
        return Err(AppError::Failed(format!("the journal is damaged: {p}")));
    }
    Ok(exit::RECOVERED)
}

fn watch(state_dir: Option<&Path>, run: &str, json: bool) -> Exit {
    // an incident: from this state directory, else (another host) its record from the shared state
    let incident = StateDir::resolve(state_dir).ok().and_then(|state| {
        let found = match crate::incident::record::find_incident(&state, run) {
            Some(Err(_)) if run.starts_with("inc-") => crate::incident::record::pull_incident(&state, run)
                .or_else(|| crate::incident::record::find_incident(&state, run)),
            f => f,
        };
        found.map(|f| (state, f))
    });
    if let Some((state, found)) = incident {
        use std::io::IsTerminal;
        let console = (!json && std::io::stdout().is_terminal()).then(|| theme_or_default(None)).transpose()?;
        return Ok(crate::incident::drive::watch(&state, &found?, json, console, &operator()));
    }
    let shared = journal::shared::configured().is_some();
    let state = StateDir::resolve(state_dir)?;
    let dir = if shared { state.root } else { state.find_run(run)? };
    let rt = runtime()?;
    use std::io::IsTerminal;
    let console = !json && std::io::stdout().is_terminal();
    let theme = theme_or_default(None)?;
    rt.block_on(async move {
        let events = match journal::shared::follow(run) {
            Some(Ok((_, events))) => events,
            Some(Err(e)) => return Err(e.into()),
            None => journal::follow(&dir),
        };
        if console {
            // read-only: no command channel
            tui::run(events, None, tui::TuiOptions::new(theme, operator()))
                .await
                .map_err(|e| AppError::Failed(e.to_string()))?;
        } else {
            headless::print_stream(events, json, Some(dir.clone()), std::io::stdout().lock()).await;
        }
        Ok(exit::RECOVERED)
    })
}
