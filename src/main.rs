//! drconsole: parse the command line, pick a frontend, map outcomes to exit codes.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use drconsole::actions::Registry;
use drconsole::cli::{Cli, Cmd, ResumeArgs, RunArgs};
use drconsole::cloud::aws::AwsOptions;
use drconsole::engine::RunConfig;
use drconsole::engine::pace::Paced;
use drconsole::journal::{self, JournalError, Prepared, RunSettings, StateDir};
use drconsole::runbook::{self, Backend, Runbook};
use drconsole::{headless, plan, tui};

/// Exit codes (DESIGN.md): 0 recovered, 1 failed/aborted, 2 invalid runbook or usage, 3 blocked, 4 refused, 130 interrupted.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, None | Some(Cmd::Resume(_))) {
        // listings end quietly when their reader goes away (`drconsole actions | head -1`)
        drconsole::util::quiet_broken_pipe();
    }
    let registry = Registry::builtin();
    match cli.shared_state() {
        Ok(c) => journal::shared::configure(c),
        Err(e) => return usage(e),
    }
    match cli.command {
        Some(Cmd::Check { files, json }) => check(&files, json, &registry),
        Some(Cmd::Actions { json }) => actions(json, &registry),
        Some(Cmd::Plan { runbook, drill }) => with_runbook(&runbook, &registry, |rb| {
            let mut rb = rb.clone();
            rb.meta.drill |= drill;
            print!("{}", plan::plan_text(&rb, &registry));
        }),
        Some(Cmd::IamPolicy { runbook }) => with_runbook(&runbook, &registry, |rb| {
            let mut policy = plan::iam_policy(rb, &registry);
            journal::shared::add_iam_statements(&mut policy, rb);
            println!("{}", serde_json::to_string_pretty(&policy).unwrap_or_default());
        }),
        Some(Cmd::Resume(args)) => resume(&args, cli.state_dir.as_deref(), registry),
        Some(Cmd::Runs { json }) => runs(cli.state_dir.as_deref(), json),
        Some(Cmd::Report { run, format }) => report(cli.state_dir.as_deref(), &run, &format),
        Some(Cmd::Watch { run, json }) => watch(cli.state_dir.as_deref(), &run, json),
        Some(Cmd::Cleanup { run, yes, force }) => {
            let opts = drconsole::cleanup::command::Options { yes, force, by: operator() };
            ExitCode::from(drconsole::cleanup::command::command(cli.state_dir.as_deref(), &run, &opts))
        }
        Some(Cmd::Preflight(args)) => {
            ExitCode::from(drconsole::preflight::command::main(&args, cli.state_dir.as_deref(), &registry))
        }
        None => match &cli.run.runbook {
            Some(path) if !cli.run.more.is_empty() || drconsole::incident::file::is_incident_file(path) => {
                run_incident(path, &cli.run, cli.state_dir.as_deref(), &registry)
            }
            Some(path) => run(path, &cli.run, cli.state_dir.as_deref(), registry),
            None => {
                eprintln!(
                    "drconsole: no runbook given\n\nUsage: drconsole [--headless] RUNBOOK | drconsole check FILE... | drconsole --help"
                );
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("drconsole: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn load(path: &Path, registry: &Registry) -> Result<Runbook, ExitCode> {
    runbook::load(path, registry).map_err(|diags| {
        eprint!("{diags}");
        eprintln!("{}: {} error{}", path.display(), diags.0.len(), if diags.0.len() == 1 { "" } else { "s" });
        ExitCode::from(EXIT_USAGE)
    })
}

fn with_runbook(path: &Path, registry: &Registry, f: impl FnOnce(&Runbook)) -> ExitCode {
    match load(path, registry) {
        Ok(rb) => {
            f(&rb);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn check(files: &[std::path::PathBuf], json: bool, registry: &Registry) -> ExitCode {
    let mut all = Vec::new();
    let mut bad = 0;
    for f in files {
        if drconsole::incident::file::is_incident_file(f) {
            match drconsole::incident::load_file(f, registry) {
                Ok(set) => {
                    if !json {
                        println!("ok: {} (incident {}, {} runbooks)", f.display(), set.name, set.apps.len());
                    }
                }
                Err(d) => {
                    bad += 1;
                    if !json {
                        eprint!("{d}");
                        eprintln!("{}: {} error{}", f.display(), d.0.len(), if d.0.len() == 1 { "" } else { "s" });
                    }
                    all.extend(d.0);
                }
            }
            continue;
        }
        match runbook::load(f, registry) {
            Ok(rb) if rb.meta.drill && !drconsole::drill::primary_writes(&rb, registry).is_empty() => {
                // a drill runbook that would write its primary region cannot run
                bad += 1;
                for (step, why) in drconsole::drill::primary_writes(&rb, registry) {
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
                    eprint!("{d}");
                    eprintln!("{}: {} error{}", f.display(), d.0.len(), if d.0.len() == 1 { "" } else { "s" });
                }
                all.extend(d.0);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    if bad > 0 { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS }
}

fn actions(json: bool, registry: &Registry) -> ExitCode {
    if json {
        let specs: Vec<_> = registry.iter().map(|a| a.spec()).collect();
        println!("{}", serde_json::to_string_pretty(&specs).unwrap_or_default());
        return ExitCode::SUCCESS;
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
        println!("    expected ~{}; {:?}", drconsole::util::fmt_duration(s.expected()), s.effect);
    }
    ExitCode::SUCCESS
}

fn operator() -> String {
    format!("{}@{}", journal::username(), journal::hostname())
}

fn parse_incident_start(s: &str) -> Result<jiff::Timestamp, String> {
    drconsole::cli::incident_start(s).map_err(|e| format!("--incident-start {e}"))
}

/// What a headless frontend answers on its own: `--approve all|ID,ID`, `--yes`; every named step must exist.
fn headless_options(
    rb: &Runbook,
    approve: &[String],
    yes: bool,
    manual_done: &[String],
    json: bool,
) -> Result<headless::Options, ExitCode> {
    let named: HashSet<String> = approve.iter().filter(|a| *a != "all").cloned().collect();
    if let Some(a) = named.iter().find(|a| rb.step_index(a).is_none()) {
        return Err(usage(format!("--approve {a}: the runbook has no step `{a}`")));
    }
    let done: HashSet<String> = manual_done.iter().filter(|a| *a != "all").cloned().collect();
    if let Some(a) = done.iter().find(|a| rb.step_index(a).is_none_or(|i| rb.steps[i].action != "manual")) {
        return Err(usage(format!("--manual-done {a}: the runbook has no manual step `{a}`")));
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
    })
}

fn run(path: &Path, args: &RunArgs, state_dir: Option<&Path>, registry: Registry) -> ExitCode {
    let mut rb = match load(path, &registry) {
        Ok(rb) => rb,
        Err(code) => return code,
    };
    let incident_start = match args.incident_start.as_deref().map(parse_incident_start).transpose() {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
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
    };
    // --var and --sim, the same way a resume applies them from the run's meta.json
    if let Err(e) = settings.apply(&mut rb) {
        return journal_error(&e);
    }
    if let Some(code) = drill_refusal(&rb, &registry) {
        return code;
    }
    if args.cleanup_after && !rb.meta.drill {
        return usage("--cleanup-after only applies to a drill (--drill, or mode = \"drill\" in [runbook])");
    }
    // a --var of the wrong kind is refused now, as `check` refuses a [vars] value, not when its step runs
    if let Err(e) = runbook::kinds::check_overrides(&rb, &registry, &args.vars) {
        return usage(e);
    }
    // validated now, before anything is created; loaded again when the simulator starts
    if let Some(Err(e)) = args.world.as_deref().map(drconsole::cloud::sim::WorldFile::load) {
        return usage(e);
    }
    if rb.target.backend == Backend::Aws && args.speed != 1.0 {
        return usage("--speed only applies to the simulator (--sim or backend = \"sim\")");
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return usage("--speed must be a positive number");
    }
    if args.json && !args.headless {
        return usage("--json needs --headless");
    }
    let opts = match headless_options(&rb, &args.approve, args.yes, &args.manual_done, args.json) {
        Ok(o) => o,
        Err(code) => return code,
    };
    // nothing starts that cannot finish: a headless run cannot answer a recovery-point question
    if let Some(code) = unanswerable_asks(&rb, args) {
        return code;
    }
    let cfg = RunConfig {
        incident_start,
        max_parallel: args.max_parallel,
        seed: args.seed,
        recovery_point: args.recovery_point.clone(),
        backend: rb.target.backend.as_str().to_string(),
        ..RunConfig::default()
    };
    let console = match console_options(args.headless, args.theme.as_deref(), &rb, &registry) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let prepared = match StateDir::resolve(state_dir)
        .and_then(|state| journal::prepare_new(&state, rb, cfg, settings, args.take_over_lock))
    {
        Ok(p) => p,
        Err(e) => return journal_error(&e),
    };
    let dir = prepared.dir.clone();
    let code = drive(prepared, registry, &opts, console);
    if !args.cleanup_after {
        return code;
    }
    // --cleanup-after: whatever the outcome; the run's exit code wins unless it recovered
    eprintln!("drconsole: --cleanup-after: removing what the drill created");
    let copts = drconsole::cleanup::command::Options { yes: true, force: false, by: operator() };
    let cleaned = drconsole::cleanup::command::cleanup_dir(&dir, &copts);
    if code == ExitCode::SUCCESS { ExitCode::from(cleaned) } else { code }
}

/// A drill that would write the primary region is refused before anything starts (exit 4, nothing created).
fn drill_refusal(rb: &Runbook, registry: &Registry) -> Option<ExitCode> {
    let writes = if rb.meta.drill { drconsole::drill::primary_writes(rb, registry) } else { Vec::new() };
    if writes.is_empty() {
        return None;
    }
    for (_, why) in &writes {
        eprintln!("drconsole: refused: {why}");
    }
    eprintln!("drconsole: the drill was not started; nothing was created");
    Some(ExitCode::from(4))
}

/// The console's options, or `None` for a headless run; a console needs stdout to be a terminal.
fn console_options(
    headless: bool,
    theme: Option<&str>,
    rb: &Runbook,
    registry: &Registry,
) -> Result<Option<tui::TuiOptions>, ExitCode> {
    if headless {
        return Ok(None);
    }
    let theme = theme_or_default(theme)?;
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(usage("stdout is not a terminal: the console needs one; pass --headless for automation"));
    }
    Ok(Some(tui::TuiOptions {
        theme,
        operator: operator(),
        notes: tui::notes_from_runbook(rb, registry),
        history: Vec::new(),
        shared_state: None,
    }))
}

fn theme_or_default(theme: Option<&str>) -> Result<tui::Theme, ExitCode> {
    match theme.map(tui::Theme::load).transpose() {
        Ok(t) => Ok(t.unwrap_or_else(tui::Theme::default_for_env)),
        Err(e) => Err(usage(e)),
    }
}

fn journal_error(e: &JournalError) -> ExitCode {
    eprintln!("drconsole: {e}");
    ExitCode::from(e.exit_code())
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("drconsole: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// Runs a prepared (new or resumed) run to its end with the journal recording it; the run lock is held until then.
/// A simulated run's engine goes on the simulator's paced runtime (`engine::pace`), the frontend stays here.
fn drive(
    mut prepared: Prepared,
    registry: Registry,
    opts: &headless::Options,
    console: Option<tui::TuiOptions>,
) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    eprintln!("drconsole: run {} (journal: {})", prepared.cfg.run_id, prepared.dir.display());
    let shared_url = prepared.meta.settings.shared_state.as_ref().map(|s| s.url.clone());
    if let Some(url) = &shared_url {
        eprintln!("drconsole: shared state: {url} (lock and journal on S3)");
    }
    if console.is_none() {
        // headless: the flags' confirmations are given by the engine as they are asked
        let by = if opts.operator.is_empty() { "headless".to_string() } else { opts.operator.clone() };
        prepared.cfg.approvals =
            drconsole::engine::Approvals { all: opts.approve_all, steps: opts.approve.clone(), by };
    }
    let mut paced = if prepared.rb.target.backend == Backend::Sim {
        match Paced::start(prepared.meta.settings.speed) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("drconsole: cannot start the simulator: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let clock = match &paced {
        Some(p) => p.clock(prepared.sim_start()),
        None => rt.block_on(async { prepared.clock() }),
    };
    let attached = match &paced {
        Some(p) => p.enter(|| attach_sim(&mut prepared, &clock)),
        None => rt.block_on(attach_aws(&mut prepared)),
    };
    if let Err(e) = attached {
        eprintln!("drconsole: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    // a resume: the console shows what the earlier sessions did
    let history = match (&console, prepared.prior.is_some()) {
        (Some(_), true) => {
            journal::read_journal(&prepared.dir).map(|r| r.events().cloned().collect()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let (handle, guard) = rt.block_on(async { prepared.start_on(registry, clock, paced.as_ref()) });
    if let Some(p) = &mut paced {
        p.go();
    }
    if let Some(mut topts) = console {
        topts.history = history;
        topts.shared_state = shared_url;
        return run_console(handle, guard, topts, &rt);
    }
    let opts = headless::Options { reports: Some(guard.dir.clone()), engine_approves: true, ..opts.clone() };
    let result = rt.block_on(async move {
        let result = headless::run(handle, &opts, std::io::stdout().lock()).await;
        drop(guard);
        result
    });
    drop(paced);
    ExitCode::from(u8::try_from(result.outcome.exit_code()).unwrap_or(1))
}

/// Gives an AWS run its cloud: the standard credential chain (or `--profile`), `--endpoint-url`.
async fn attach_aws(prepared: &mut Prepared) -> Result<(), String> {
    let settings = &prepared.meta.settings;
    let opts = AwsOptions {
        profile: settings.profile.clone(),
        endpoint_url: settings.endpoint_url.clone(),
        // a drill never writes its primary region
        read_only_regions: if prepared.rb.meta.drill { vec![prepared.rb.target.primary.clone()] } else { Vec::new() },
        ..AwsOptions::default()
    };
    let cloud = drconsole::cloud::aws::cloud_for(&opts, &prepared.rb.target).await;
    prepared.cfg.cloud = Some(Arc::new(cloud));
    Ok(())
}

/// Gives a simulated run its world: the world of a resumed run comes back from its run directory, a new one is
/// provisioned from the runbook (and `--world`); the journal saves it at every checkpoint so a resume finds what
/// was created. Called inside the paced runtime's context (the world reads its clock).
fn attach_sim(prepared: &mut Prepared, clock: &drconsole::engine::Clock) -> Result<(), String> {
    use drconsole::cloud::sim::{Sim, WorldFile};
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
    prepared.cfg.cloud = Some(Arc::new(drconsole::cloud::Cloud::from_all("sim", sim.clone())));
    prepared.set_world_store(Box::new(SimWorld(sim)));
    Ok(())
}

struct SimWorld(Arc<drconsole::cloud::sim::Sim>);

impl journal::WorldStore for SimWorld {
    fn save(&mut self) -> Result<Vec<u8>, String> {
        self.0.save().map(String::into_bytes).map_err(|e| e.to_string())
    }
}

/// The interactive console: the engine's events go to the TUI, its commands to the engine; the exit code follows
/// the run's outcome (as headless), 130 when the operator quit and interrupted an active run.
fn run_console(
    handle: drconsole::engine::RunHandle,
    guard: journal::SessionGuard,
    opts: tui::TuiOptions,
    rt: &tokio::runtime::Runtime,
) -> ExitCode {
    let run_id = guard.run_id.clone();
    let id = run_id.clone();
    let result = rt.block_on(async move {
        // SIGHUP (the terminal went away) ends the console like SIGTERM: the run is interrupted and recorded
        let hangup = hangup_interrupts(handle.commands.clone());
        let console = tokio::select! {
            c = tui::run(handle.events, Some(handle.commands), opts) => c,
            () = hangup => Ok(tui::TuiExit { outcome: None, interrupted: true }),
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
        (console.map_err(|e| e.to_string()), result)
    });
    match result {
        (Err(e), _) => {
            eprintln!("drconsole: {e}");
            ExitCode::FAILURE
        }
        (Ok(_), Ok(r)) => {
            eprintln!("drconsole: run {run_id}: {} — {}", r.outcome.as_str(), r.message);
            if r.outcome != drconsole::engine::Outcome::Recovered {
                eprintln!("drconsole: to continue: drconsole resume {run_id}");
            }
            ExitCode::from(u8::try_from(r.outcome.exit_code()).unwrap_or(1))
        }
        (Ok(_), Err(e)) => {
            eprintln!("drconsole: the engine stopped unexpectedly: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A headless run without `--recovery-point` whose runbook asks the operator for one is refused before anything
/// is created (exit 3, as when it stops at the question, but with nothing to clean up).
fn unanswerable_asks(rb: &Runbook, args: &RunArgs) -> Option<ExitCode> {
    let asks = runbook::kinds::asking_steps(rb);
    if !args.headless || args.recovery_point.is_some() || asks.is_empty() {
        return None;
    }
    eprintln!(
        "drconsole: step{} `{}` ask{} the operator for a recovery point, and a headless run cannot ask: pass \
         --recovery-point ID or --recovery-point latest. Nothing was started.",
        if asks.len() == 1 { "" } else { "s" },
        asks.join("`, `"),
        if asks.len() == 1 { "s" } else { "" },
    );
    Some(ExitCode::from(3))
}

/// Waits for SIGHUP, then interrupts the run (no new step starts, running steps are cancelled, the end is recorded).
async fn hangup_interrupts(commands: tokio::sync::mpsc::UnboundedSender<drconsole::engine::Command>) {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        hup.recv().await;
        let _ = commands.send(drconsole::engine::Command::Interrupt);
        return;
    }
    std::future::pending::<()>().await;
}

/// Several runbooks, or an incident file: one incident, one run per application (`drconsole::incident`).
fn run_incident(first: &Path, args: &RunArgs, state_dir: Option<&Path>, registry: &Registry) -> ExitCode {
    let loaded = if args.more.is_empty() {
        drconsole::incident::load_file(first, registry)
    } else {
        let paths: Vec<std::path::PathBuf> = std::iter::once(first.to_path_buf()).chain(args.more.clone()).collect();
        drconsole::incident::load_runbooks(&paths, registry)
    };
    let set = match loaded {
        Ok(s) => s,
        Err(d) => {
            eprint!("{d}");
            eprintln!("{}: {} error{}", first.display(), d.0.len(), if d.0.len() == 1 { "" } else { "s" });
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match StateDir::resolve(state_dir) {
        Ok(state) => ExitCode::from(drconsole::incident::drive::run_new(set, args, &state, registry, &operator())),
        Err(e) => journal_error(&e),
    }
}

fn resume(args: &ResumeArgs, state_dir: Option<&Path>, registry: Registry) -> ExitCode {
    if let Ok(state) = StateDir::resolve(state_dir)
        && let Some(found) = drconsole::incident::record::find_incident(&state, &args.run)
    {
        return match found {
            Ok(dir) => ExitCode::from(drconsole::incident::drive::resume(&dir, args, &state, &registry, &operator())),
            Err(e) => journal_error(&e),
        };
    }
    let prepared = match StateDir::resolve(state_dir).and_then(|state| {
        journal::prepare_resume(
            &state,
            &args.run,
            args.runbook.as_deref(),
            &registry,
            args.force,
            args.take_over_lock,
            args.recovery_point.clone(),
        )
    }) {
        Ok(p) => p,
        Err(e) => return journal_error(&e),
    };
    if args.json && !args.headless {
        return usage("--json needs --headless");
    }
    let opts = match headless_options(&prepared.rb, &args.approve, args.yes, &args.manual_done, args.json) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let done = if prepared.done.is_empty() { "none".to_string() } else { prepared.done.join(", ") };
    eprintln!("drconsole: resuming run {}; steps already done (not repeated): {done}", prepared.cfg.run_id);
    let console = match console_options(args.headless, None, &prepared.rb, &registry) {
        Ok(c) => c,
        Err(code) => return code,
    };
    drive(prepared, registry, &opts, console)
}

fn runs(state_dir: Option<&Path>, json: bool) -> ExitCode {
    let state = match StateDir::resolve(state_dir) {
        Ok(s) => s,
        Err(e) => return journal_error(&e),
    };
    let runs = journal::list_runs(&state);
    if json {
        println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if runs.is_empty() {
        println!("no runs under {}", state.runs().display());
        return ExitCode::SUCCESS;
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
    drconsole::incident::drive::print_incidents(&state);
    ExitCode::SUCCESS
}

fn report(state_dir: Option<&Path>, run: &str, format: &str) -> ExitCode {
    if let Ok(state) = StateDir::resolve(state_dir)
        && let Some(found) = drconsole::incident::record::find_incident(&state, run)
    {
        use drconsole::incident::report as ir;
        return match found.and_then(|dir| ir::write_all(&state, &dir).map(|r| (dir, r))) {
            Ok((dir, r)) => {
                match format {
                    "json" => print!("{}", ir::json(&r)),
                    "junit" => print!("{}", ir::junit(&r)),
                    _ => print!("{}", ir::markdown(&r)),
                }
                eprintln!("drconsole: incident reports written to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => journal_error(&e),
        };
    }
    let built = StateDir::resolve(state_dir)
        .and_then(|state| state.find_run(run))
        .and_then(|dir| journal::report::write_all(&dir).map(|r| (dir, r)));
    let (dir, r) = match built {
        Ok(x) => x,
        Err(e) => return journal_error(&e),
    };
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
        eprintln!("drconsole: the journal is damaged: {p}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn watch(state_dir: Option<&Path>, run: &str, json: bool) -> ExitCode {
    if let Ok(state) = StateDir::resolve(state_dir)
        && let Some(found) = drconsole::incident::record::find_incident(&state, run)
    {
        return match found {
            Ok(dir) => ExitCode::from(drconsole::incident::drive::watch(&state, &dir, json)),
            Err(e) => journal_error(&e),
        };
    }
    let shared = journal::shared::configured().is_some();
    let dir = match StateDir::resolve(state_dir)
        .and_then(|state| if shared { Ok(state.root) } else { state.find_run(run) })
    {
        Ok(d) => d,
        Err(e) => return journal_error(&e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    use std::io::IsTerminal;
    let console = !json && std::io::stdout().is_terminal();
    let theme = match theme_or_default(None) {
        Ok(t) => t,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let events = match journal::shared::follow(run) {
            Some(Ok((_, events))) => events,
            Some(Err(e)) => return journal_error(&e),
            None => journal::follow(&dir),
        };
        if console {
            // read-only: no command channel
            if let Err(e) = tui::run(events, None, tui::TuiOptions::new(theme, operator())).await {
                eprintln!("drconsole: {e}");
                return ExitCode::FAILURE;
            }
        } else {
            headless::print_stream(events, json, Some(dir.clone()), std::io::stdout().lock()).await;
        }
        ExitCode::SUCCESS
    })
}
