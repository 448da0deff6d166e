//! `drconsole preflight RUNBOOK...`: loads each runbook, gives it a read-only cloud (the simulator with `--sim` /
//! `--world`, else AWS as a run would), runs the checks, prints the table (or `--json`) and writes the report files.
//! Exit code: the worst of the runbooks, 4 (wrong account) > 2 (invalid runbook or usage) > 1 (not ready) > 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actions::Registry;
use crate::cli::PreflightArgs;
use crate::cloud::sim::{Sim, WorldFile};
use crate::runbook::{self, Backend, Runbook};

use super::{ReadOnlyCloud, Report, render};

const EXIT_USAGE: u8 = crate::exit::USAGE;

/// The worse of two codes (`exit::worst_check`: 4 > 2 > 1 > 0).
fn worst(a: u8, b: u8) -> u8 {
    crate::exit::worst_check([a, b])
}

/// Runs the command; returns the exit code.
pub fn main(args: &PreflightArgs, state_dir: Option<&Path>, registry: &Registry) -> u8 {
    let world = match args.world.as_deref().map(WorldFile::load).transpose() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("drconsole: {e}");
            return EXIT_USAGE;
        }
    };
    let mut code = crate::exit::RECOVERED;
    let mut reports = Vec::new();
    for path in &args.runbooks {
        let rb = match prepare(path, args, registry) {
            Ok(rb) => rb,
            Err(msg) => {
                eprint!("{msg}");
                code = worst(code, EXIT_USAGE);
                continue;
            }
        };
        let opts = CheckOptions {
            seed: args.seed,
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            history: history_of(&rb, state_dir),
        };
        let report = match check(&rb, &opts, world.as_ref(), registry) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("drconsole: {}: {e}", path.display());
                code = worst(code, EXIT_USAGE);
                continue;
            }
        };
        if !args.json {
            print!("{}", render::table(&report));
            println!();
        }
        match write_report(&report, args.report_dir.as_deref(), state_dir) {
            Ok(p) => eprintln!("drconsole: preflight report: {}", p.display()),
            Err(e) => {
                eprintln!("drconsole: cannot write the preflight report: {e}");
                code = worst(code, crate::exit::FAILED);
            }
        }
        write_inventory(&report, state_dir);
        code = worst(code, report.verdict.exit_code());
        reports.push(report);
    }
    if args.json {
        print!("{}", render::json(&reports));
    }
    code
}

/// Loads a runbook and applies `--var` and `--sim`; the error text is ready to print.
fn prepare(path: &Path, args: &PreflightArgs, registry: &Registry) -> Result<Runbook, String> {
    let mut rb = runbook::load(path, registry).map_err(|d| {
        format!("{d}{}: {} error{}\n", path.display(), d.0.len(), if d.0.len() == 1 { "" } else { "s" })
    })?;
    for v in &args.vars {
        let Some((k, val)) = v.split_once('=') else {
            return Err(format!("drconsole: --var {v}: write NAME=VALUE\n"));
        };
        if !rb.vars.contains_key(k) {
            let names: Vec<&str> = rb.vars.keys().map(String::as_str).collect();
            return Err(format!(
                "drconsole: --var {k}: the runbook {} has no variable `{k}` (it has: {})\n",
                path.display(),
                names.join(", ")
            ));
        }
        rb.vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
    }
    runbook::kinds::check_overrides(&rb, registry, &args.vars).map_err(|e| format!("drconsole: {e}\n"))?;
    if args.sim || args.world.is_some() {
        rb.target.backend = Backend::Sim;
    }
    Ok(rb)
}

/// Where a preflight looks: the simulated world's seed (with `--world`, given apart), or AWS as a run would.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub seed: u64,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// The runbook's past runs from the state directory's history (`crate::forecast::store`).
    pub history: Vec<crate::forecast::RunRecord>,
}

/// The past runs of `rb` recorded in the state directory (none when it cannot be found or read).
pub fn history_of(rb: &Runbook, state_dir: Option<&std::path::Path>) -> Vec<crate::forecast::RunRecord> {
    crate::journal::StateDir::resolve(state_dir)
        .ok()
        .and_then(|s| crate::forecast::store::load(&s.root, &rb.meta.name).ok())
        .map(|l| l.runs)
        .unwrap_or_default()
}

/// Runs the checks of one prepared runbook (its `--var`s and backend applied) on its own runtime: the simulator
/// (a world built as a run of the same seed and world file builds it), else AWS. Blocking; the console calls it
/// from a thread of its own.
pub fn check(
    rb: &Runbook,
    args: &CheckOptions,
    world: Option<&WorldFile>,
    registry: &Registry,
) -> Result<Report, String> {
    let now = jiff::Timestamp::now();
    if rb.target.backend == Backend::Sim {
        // the simulator on tokio's paused clock: its API latency passes in simulated time, at once
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        return Ok(rt.block_on(async {
            let clock = crate::run::Clock::starting_at(now, 1.0);
            let sim = Sim::for_runbook(clock, args.seed, rb, world);
            let cloud = ReadOnlyCloud::new(crate::cloud::sim::Sim::cloud_of(&Arc::new(sim)));
            super::run_with(rb, registry, &cloud, now, args.history.clone()).await
        }));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(rt.block_on(async {
        let opts = crate::cloud::aws::AwsOptions {
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            ..Default::default()
        };
        let cloud = ReadOnlyCloud::new(crate::cloud::aws::cloud_for(&opts, &rb.target).await);
        super::run_with(rb, registry, &cloud, now, args.history.clone()).await
    }))
}

/// Writes `<runbook>-<time>.md` and `.json` into `--report-dir` (default: the state directory's `preflight/`).
pub fn write_report(r: &Report, dir: Option<&Path>, state_dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => crate::journal::StateDir::resolve(state_dir).map_err(|e| e.to_string())?.root.join("preflight"),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let base = format!("{}-{}", r.runbook, r.checked_at.strftime("%Y%m%dT%H%M%SZ"));
    let md = dir.join(format!("{base}.md"));
    std::fs::write(&md, render::markdown(r)).map_err(|e| format!("{}: {e}", md.display()))?;
    let json = dir.join(format!("{base}.json"));
    std::fs::write(&json, render::json(std::slice::from_ref(r))).map_err(|e| format!("{}: {e}", json.display()))?;
    Ok(md)
}

/// Writes the DR inventory the checks established (state dir, and S3 with shared state) when the primary answered;
/// otherwise says that the newest one stays as it was. Never changes the exit code: the findings say what is wrong.
fn write_inventory(report: &Report, state_dir: Option<&Path>) {
    let root = match crate::journal::StateDir::resolve(state_dir) {
        Ok(s) => s.root,
        Err(e) => {
            eprintln!("drconsole: DR inventory not written: {e}");
            return;
        }
    };
    match &report.inventory {
        Some(inv) => match crate::inventory::save(inv, &root) {
            Ok(places) => eprintln!("drconsole: DR inventory of {}: {}", report.runbook, places.join(", ")),
            Err(e) => eprintln!("drconsole: DR inventory of {} not written: {e}", report.runbook),
        },
        None => {
            let (newest, _) = crate::inventory::load_newest(Some(&root), &report.runbook);
            let keep = newest.map_or_else(
                || "there is none yet".to_string(),
                |(i, from)| format!("the newest stays {} ({from})", i.describe_age(jiff::Timestamp::now())),
            );
            eprintln!(
                "drconsole: DR inventory of {} not written: {} did not answer (or the account is wrong); {keep}",
                report.runbook, report.primary
            );
        }
    }
}
