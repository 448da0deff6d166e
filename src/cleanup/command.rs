//! The `cleanup` command: checks (a drill, or `--force`; a typed confirmation or `--yes`), gives the run its
//! cloud back (the simulator's saved world on its paced runtime, or AWS with the run's profile and endpoint),
//! runs [`super::run`] and prints what was removed and what is left. Exit codes: 0 nothing left (but what is kept
//! because others use it: a shared NAT gateway), 1 something is left or failed, 2 usage, 3 not confirmed, 4 refused (not a drill and no `--force`; nothing deleted).

use crate::exit;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use super::{Entry, Log, Plan, Res, Summary};
use crate::journal::{self, Meta, StateDir};
use crate::run::{Clock, RunView};

/// What `drconsole cleanup` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub yes: bool,
    pub force: bool,
    /// Recorded in `cleanup.jsonl`.
    pub by: String,
}

/// `drconsole cleanup RUN`: the exit code.
pub fn command(state_dir: Option<&Path>, run: &str, opts: &Options) -> u8 {
    let dir = match StateDir::resolve(state_dir).and_then(|s| s.find_run(run)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("drconsole: {e}");
            return e.exit_code();
        }
    };
    cleanup_dir(&dir, opts)
}

fn fail(code: u8, msg: impl std::fmt::Display) -> u8 {
    eprintln!("drconsole: {msg}");
    code
}

/// Cleans up the run in `dir` (also what `--cleanup-after` calls when a drill ends).
pub fn cleanup_dir(dir: &Path, opts: &Options) -> u8 {
    let read = match journal::read_journal(dir) {
        Ok(r) => r,
        Err(e) => return fail(exit::FAILED, format!("cannot read the run's journal: {e}")),
    };
    let view = RunView::from_events(read.events());
    let Some(head) = view.run.clone() else {
        return fail(exit::FAILED, "the run's journal has no start: nothing to clean up");
    };
    let meta = match Meta::read(dir) {
        Ok(m) => m,
        Err(e) => return fail(exit::FAILED, format!("cannot read the run's meta.json: {e}")),
    };
    let clock0 = Clock::new(1.0);
    let mut log = match Log::open(dir, clock0.clone()) {
        Ok(l) => l,
        Err(e) => return fail(exit::FAILED, e),
    };
    if !head.drill && !opts.force {
        let reason = format!(
            "run {} was not a drill: its resources may be serving customers. Nothing was deleted. Pass --force to \
             remove what it created anyway (e.g. to retry a failed failover from scratch)",
            head.run_id
        );
        let _ = log.write(Entry::Refused { by: opts.by.clone(), reason: reason.clone() });
        return fail(exit::REFUSED, format!("refused: {reason}"));
    }
    if !view.is_finished() && !opts.force {
        return fail(
            exit::REFUSED,
            format!(
                "refused: run {} has not ended (it may still be creating resources): resume it to its end, or pass \
                 --force. Nothing was deleted",
                head.run_id
            ),
        );
    }
    if !opts.yes && !confirmed(&head.run_id) {
        return fail(exit::BLOCKED, "not confirmed: nothing was deleted (headless: pass --yes)");
    }
    let _lock = match CleanupLock::take(dir) {
        Ok(l) => l,
        Err(e) => return fail(exit::REFUSED, e),
    };
    let plan = Plan {
        run_id: head.run_id.clone(),
        drill: head.drill,
        drill_record: meta.drill_record.clone(),
        regions: vec![head.primary.clone(), head.secondary.clone()],
        journalled: super::created_by_run(&view),
        routes: super::routes_changed_by_run(&view),
    };
    let lines_before = super::read_log(dir);
    let result = if head.backend == "sim" {
        // simulated time goes on from the later of the run's end and the last cleanup
        let start = [view.last_ts, lines_before.last().map(|l| l.ts)].into_iter().flatten().max();
        on_sim(dir, &meta, start.unwrap_or_else(jiff::Timestamp::now), &plan, opts)
    } else {
        on_aws(dir, &meta, head.drill, &plan, opts)
    };
    let summary = Summary::from_lines(&super::read_log(dir));
    // the reports show the cleanup's result (a drill's Recovery test section)
    if let Err(e) = journal::report::write_all(dir) {
        eprintln!("drconsole: cannot write the reports again: {e}");
    }
    match result {
        Err(e) => fail(exit::FAILED, format!("cleanup of run {} stopped: {e}; run it again to continue", plan.run_id)),
        Ok(left) => {
            print_summary(&plan.run_id, &summary, &left);
            if left.is_empty() && summary.failed.is_empty() { exit::RECOVERED } else { exit::FAILED }
        }
    }
}

fn print_summary(run_id: &str, s: &Summary, left: &[Res]) {
    println!("cleanup of run {run_id}: {} removed", s.removed.len());
    for r in &s.removed {
        println!("  removed  {r}");
    }
    for (r, to) in &s.restored {
        let how = if to == "deleted" { "deleted the route the run added".to_string() } else { format!("back to {to}") };
        println!("  restored {r}: {how}");
    }
    for (r, why) in &s.kept {
        println!("  kept     {r}: {why}");
    }
    for (r, e) in &s.failed {
        println!("  FAILED   {r}: {e}");
    }
    if !s.in_use.is_empty() {
        println!("kept in use, still tagged drconsole:run-id={run_id}: {} (see `kept` above)", s.in_use.len());
        for r in &s.in_use {
            println!("  in use   {r}");
        }
    }
    if left.is_empty() {
        println!("left tagged drconsole:run-id={run_id}: nothing");
    } else {
        println!("left tagged drconsole:run-id={run_id}: {}", left.len());
        for r in left {
            println!("  left     {r}");
        }
    }
}

/// The typed confirmation: the run id (or its last four characters), on a terminal.
fn confirmed(run_id: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let short = crate::drill::short_id(run_id);
    eprint!(
        "drconsole: cleanup deletes everything run {run_id} created, in both regions.\nType the run id (or `{short}`) \
         to go on: "
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    let t = line.trim();
    t == run_id || t == short
}

/// `cleanup.lock` in the run directory: one cleanup of a run at a time; a dead holder's lock is taken over.
struct CleanupLock(std::path::PathBuf);

impl CleanupLock {
    fn take(dir: &Path) -> Result<Self, String> {
        let path = dir.join("cleanup.lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    let _ = f.sync_all();
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid: Option<u32> = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok());
                    if let Some(p) = pid
                        && journal::pid_alive(p)
                        && p != std::process::id()
                    {
                        return Err(format!("another cleanup of this run is running (pid {p}); nothing was deleted"));
                    }
                    // its holder is gone (killed): take it over
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(format!("cannot take {}", path.display()))
    }
}

impl Drop for CleanupLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn on_sim(dir: &Path, meta: &Meta, start: jiff::Timestamp, plan: &Plan, opts: &Options) -> Result<Vec<Res>, String> {
    use crate::cloud::sim::Sim;
    let bytes = journal::load_world(dir)
        .map_err(|e| e.to_string())?
        .ok_or("the simulated run saved no world (world.json): nothing to clean up")?;
    let text = String::from_utf8(bytes).map_err(|e| format!("the saved world is not UTF-8: {e}"))?;
    let mut paced = crate::engine::pace::Paced::start(meta.settings.speed)
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let clock = paced.clock(start);
    let sim = Arc::new(Sim::load(&text, clock.clone()).map_err(|e| e.to_string())?);
    let cloud = crate::cloud::sim::Sim::cloud_of(&sim);
    let mut log = Log::open(dir, clock.clone())?;
    log.write(Entry::Started { by: opts.by.clone(), drill: plan.drill, forced: opts.force && !plan.drill })?;
    let world_path = dir.join(journal::WORLD_FILE);
    let plan_owned = plan.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    paced.spawn(async move {
        let save_sim = sim.clone();
        let mut save = move || {
            // the world on disk follows every delete, so a killed cleanup is resumed from what was done
            if let Ok(json) = save_sim.save() {
                let _ = journal::write_atomic(&world_path, json.as_bytes());
            }
        };
        let r = super::run(&cloud, &plan_owned, &clock, &mut log, &mut save).await;
        let _ = tx.send(r);
    });
    paced.go();
    rx.recv().map_err(|_| "the simulator stopped during the cleanup".to_string())?
}

fn on_aws(dir: &Path, meta: &Meta, drill: bool, plan: &Plan, opts: &Options) -> Result<Vec<Res>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async {
        let aws = crate::cloud::aws::AwsOptions {
            profile: meta.settings.profile.clone(),
            endpoint_url: meta.settings.endpoint_url.clone(),
            read_only_regions: if drill { vec![meta.primary.clone()] } else { Vec::new() },
            ..Default::default()
        };
        let target = crate::runbook::Target {
            backend: crate::runbook::Backend::Aws,
            account: meta.account.clone(),
            primary: meta.primary.clone(),
            secondary: meta.secondary.clone(),
        };
        let cloud = crate::cloud::aws::cloud_for(&aws, &target).await;
        let clock = Clock::new(1.0).with_pace(crate::run::clock::emulator_pace(meta.settings.endpoint_url.as_deref()));
        let mut log = Log::open(dir, clock.clone())?;
        log.write(Entry::Started { by: opts.by.clone(), drill: plan.drill, forced: opts.force && !plan.drill })?;
        super::run(&cloud, plan, &clock, &mut log, &mut || {}).await
    })
}
