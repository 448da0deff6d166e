//! drconsole: parse the command line, pick a frontend, map outcomes to exit codes.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use drconsole::actions::Registry;
use drconsole::cli::{Cli, Cmd, RunArgs};
use drconsole::cloud::aws::AwsOptions;
use drconsole::engine::{Clock, Engine, RunConfig};
use drconsole::runbook::{self, Backend, Runbook};
use drconsole::{headless, plan};

/// Exit codes (DESIGN.md): 0 recovered, 1 failed/aborted, 2 invalid runbook or usage, 3 blocked, 4 refused, 130 interrupted.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let registry = Registry::builtin();
    match cli.command {
        Some(Cmd::Check { files, json }) => check(&files, json, &registry),
        Some(Cmd::Actions { json }) => actions(json, &registry),
        Some(Cmd::Plan { runbook }) => {
            with_runbook(&runbook, &registry, |rb| print!("{}", plan::plan_text(rb, &registry)))
        }
        Some(Cmd::IamPolicy { runbook }) => with_runbook(&runbook, &registry, |rb| {
            println!("{}", serde_json::to_string_pretty(&plan::iam_policy(rb, &registry)).unwrap_or_default());
        }),
        None => match &cli.run.runbook {
            Some(path) => run(path, &cli.run, registry),
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
        match runbook::load(f, registry) {
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
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

fn parse_incident_start(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let ago = drconsole::util::parse_duration(s)
        .map_err(|_| format!("--incident-start \"{s}\" is neither an RFC 3339 time nor a duration ago (e.g. 45m)"))?;
    let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
    jiff::Timestamp::now().checked_sub(ago).map_err(|e| e.to_string())
}

fn run(path: &Path, args: &RunArgs, registry: Registry) -> ExitCode {
    let mut rb = match load(path, &registry) {
        Ok(rb) => rb,
        Err(code) => return code,
    };
    for v in &args.vars {
        let Some((k, val)) = v.split_once('=') else {
            return usage(format!("--var {v}: write NAME=VALUE"));
        };
        if !rb.vars.contains_key(k) {
            let names: Vec<&str> = rb.vars.keys().map(String::as_str).collect();
            return usage(format!("--var {k}: the runbook has no variable `{k}` (it has: {})", names.join(", ")));
        }
        rb.vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
    }
    if args.sim || args.world.is_some() {
        rb.target.backend = Backend::Sim;
    }
    let world = match args.world.as_deref().map(drconsole::cloud::sim::WorldFile::load).transpose() {
        Ok(w) => w,
        Err(e) => return usage(e),
    };
    if rb.target.backend == Backend::Aws && args.speed != 1.0 {
        return usage("--speed only applies to the simulator (--sim or backend = \"sim\")");
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return usage("--speed must be a positive number");
    }
    if args.json && !args.headless {
        return usage("--json needs --headless");
    }
    let incident_start = match args.incident_start.as_deref().map(parse_incident_start).transpose() {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let approve: HashSet<String> = args.approve.iter().filter(|a| *a != "all").cloned().collect();
    for a in &approve {
        if rb.step_index(a).is_none() {
            return usage(format!("--approve {a}: the runbook has no step `{a}`"));
        }
    }
    let opts = headless::Options {
        json: args.json,
        approve_all: args.yes || args.approve.iter().any(|a| a == "all"),
        approve,
        operator: operator(),
    };
    let mut cfg = RunConfig {
        incident_start,
        max_parallel: args.max_parallel,
        seed: args.seed,
        recovery_point: args.recovery_point.clone(),
        backend: rb.target.backend.as_str().to_string(),
        ..RunConfig::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drconsole: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.headless {
        eprintln!(
            "drconsole: the interactive console is not available yet; running headless (pass --headless to silence this)"
        );
    }
    let speed = args.speed;
    let aws = (rb.target.backend == Backend::Aws).then(|| {
        let opts = AwsOptions {
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            ..AwsOptions::default()
        };
        (opts, rb.target.clone())
    });
    let sim = rb.target.backend == Backend::Sim;
    let result = rt.block_on(async move {
        if let Some((opts, target)) = aws {
            cfg.cloud = Some(Arc::new(drconsole::cloud::aws::cloud_for(&opts, &target).await));
        }
        let clock = Clock::new(speed);
        if sim {
            let world = drconsole::cloud::sim::Sim::for_runbook(clock.clone(), cfg.seed, &rb, world.as_ref());
            cfg.cloud = Some(Arc::new(world.into_cloud()));
        }
        let handle = Engine::spawn(Arc::new(rb), registry, cfg, clock);
        headless::run(handle, &opts, std::io::stdout().lock()).await
    });
    ExitCode::from(u8::try_from(result.outcome.exit_code()).unwrap_or(1))
}
