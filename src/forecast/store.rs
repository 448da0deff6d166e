//! The history on disk: `history/<runbook>.jsonl` in the state directory, one [`RunRecord`] a line, appended when a
//! run's end is recorded in its journal (the journal sink calls [`on_run_finished`]), read by [`load`].
//!
//! What is recorded: a run that ended recovered, failed, aborted or refused, drills included, unless it was started
//! or resumed with `--no-history`. An interrupted or blocked run is not (it is usually resumed: the resumed run's end
//! is recorded then, once). A run recorded twice (resumed after a failure and finished again) counts once: its
//! latest record wins.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Forecast, RunRecord};
use crate::journal::{self, JournalError, Meta};
use crate::run::view::RunView;
use crate::runbook::{Catalog, Runbook};

/// A file in a run directory that leaves the run out of the history (`resume --no-history`).
pub const NO_HISTORY_FILE: &str = "no-history";

/// Leaves a run out of the history (`resume --no-history`): a marker file in its directory.
pub fn leave_out(run_dir: &Path) -> Result<(), JournalError> {
    let p = run_dir.join(NO_HISTORY_FILE);
    journal::base::private_file()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&p)
        .map(|_| ())
        .map_err(JournalError::io("cannot create", &p))
}

/// The history file of a runbook.
pub fn path(root: &Path, runbook: &str) -> PathBuf {
    root.join("history").join(format!("{runbook}.jsonl"))
}

/// Appends one record (one `write` on an `O_APPEND` file).
pub fn append(root: &Path, rec: &RunRecord) -> Result<PathBuf, JournalError> {
    let p = path(root, &rec.runbook);
    if let Some(dir) = p.parent() {
        journal::private_dir(dir)?;
    }
    let mut line = serde_json::to_string(rec)
        .map_err(|e| JournalError::Usage(format!("cannot encode the history record of run {}: {e}", rec.run_id)))?;
    line.push('\n');
    let mut f = journal::base::private_file()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(JournalError::io("cannot open", &p))?;
    f.write_all(line.as_bytes()).map_err(JournalError::io("cannot append to", &p))?;
    Ok(p)
}

/// What a history file holds: each run once (its latest record), in the order first recorded, and the lines that
/// could not be read (a torn last line, a hand edit), which are left out.
#[derive(Debug, Default)]
pub struct Loaded {
    pub runs: Vec<RunRecord>,
    pub bad_lines: Vec<usize>,
    pub path: PathBuf,
}

/// Reads a runbook's history; no file is an empty history.
pub fn load(root: &Path, runbook: &str) -> Result<Loaded, JournalError> {
    let p = path(root, runbook);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded { path: p, ..Loaded::default() }),
        Err(e) => return Err(JournalError::io("cannot read", &p)(e)),
    };
    Ok(parse(&text, p))
}

fn parse(text: &str, path: PathBuf) -> Loaded {
    let mut runs: Vec<RunRecord> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut bad_lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RunRecord>(line) {
            Ok(r) => match at.get(&r.run_id) {
                Some(&i) => runs[i] = r,
                None => {
                    at.insert(r.run_id.clone(), runs.len());
                    runs.push(r);
                }
            },
            Err(_) => bad_lines.push(n + 1),
        }
    }
    Loaded { runs, bad_lines, path }
}

/// The state directory of a run directory (`<state>/runs/<id>`).
pub fn state_root(run_dir: &Path) -> Option<&Path> {
    let runs = run_dir.parent()?;
    (runs.file_name()? == "runs").then(|| runs.parent()).flatten()
}

/// Called when a run's end has been recorded in its journal: adds the run to its runbook's history, unless it is
/// left out (`--no-history`, an interrupted or blocked end). A failure is said on stderr; the run is not affected.
pub fn on_run_finished(run_dir: &Path) -> Option<RunRecord> {
    match record_run(run_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drconsole: the run's durations were not added to the forecast history: {e}");
            None
        }
    }
}

/// Where a run's record is kept in the shared state (under its prefix): one object per run, so hosts never
/// overwrite each other's.
pub fn shared_key(rec: &RunRecord) -> String {
    format!("history/{}/{}.json", rec.runbook, rec.run_id)
}

/// A record as stored (one JSON line).
pub fn encode(rec: &RunRecord) -> Vec<u8> {
    let mut v = serde_json::to_vec(rec).unwrap_or_default();
    v.push(b'\n');
    v
}

/// With shared state (`--shared-state`, or the runbook's `[state]`): copies the runbook's records other hosts put on S3 into the
/// local history (those it lacks), so every host forecasts from the team's runs. Best effort: when S3 cannot be
/// read, the local history is used and the reason said on stderr.
pub fn pull_shared(root: &Path, rb: &Runbook) {
    let Some(cfg) = journal::shared::for_run(rb, None) else { return };
    let (runbook, region) = (rb.meta.name.as_str(), Some(rb.target.secondary.as_str()));
    let r = (|| -> Result<usize, JournalError> {
        let shared = journal::shared::Shared::open(&cfg, region)?;
        let local: std::collections::HashSet<String> =
            load(root, runbook)?.runs.into_iter().map(|r| r.run_id).collect();
        let mut added = 0;
        for key in shared.list_objects(&format!("history/{runbook}/"))? {
            let id = key.rsplit('/').next().and_then(|n| n.strip_suffix(".json")).unwrap_or_default();
            if id.is_empty() || local.contains(id) {
                continue;
            }
            let Some(bytes) = shared.get_object(&key)? else { continue };
            match serde_json::from_slice::<RunRecord>(&bytes) {
                Ok(rec) if rec.runbook == runbook => {
                    append(root, &rec)?;
                    added += 1;
                }
                _ => eprintln!("drconsole: {} on the shared state is not a history record: left out", key),
            }
        }
        Ok(added)
    })();
    if let Err(e) = r {
        eprintln!(
            "drconsole: the team's forecast history on the shared state could not be read ({e}); using this host's"
        );
    }
}

/// Adds a finished run to its history; `Ok(None)` when it is left out.
pub fn record_run(run_dir: &Path) -> Result<Option<RunRecord>, JournalError> {
    let Some(root) = state_root(run_dir) else { return Ok(None) };
    let Ok(meta) = Meta::read(run_dir) else { return Ok(None) };
    if meta.settings.no_history || run_dir.join(NO_HISTORY_FILE).exists() {
        return Ok(None);
    }
    let read = journal::read_journal(run_dir)?;
    let view = RunView::from_events(read.events());
    let Some(rec) = RunRecord::from_view(&view) else { return Ok(None) };
    if matches!(rec.outcome.as_str(), "interrupted" | "blocked") {
        return Ok(None);
    }
    append(root, &rec)?;
    Ok(Some(rec))
}

/// The forecast of `rb` on `backend` from the history in the state directory `root`; with no readable history,
/// the expected durations (and the reason on stderr).
pub fn forecast(root: &Path, rb: &Runbook, catalog: &dyn Catalog, backend: &str) -> Forecast {
    pull_shared(root, rb);
    match load(root, &rb.meta.name) {
        Ok(l) => Forecast::build(rb, catalog, backend, &l.runs, &HashMap::new()),
        Err(e) => {
            eprintln!("drconsole: the forecast history cannot be read ({e}); forecasting from expected durations");
            Forecast::expected(rb, catalog, backend)
        }
    }
}

/// The forecast `plan` shows: from the runbook's own backend's history, else (fewer than [`super::MIN_RUNS`] runs
/// there) from the other backend's when it has enough (a runbook rehearsed on the simulator, never run on AWS);
/// the forecast says which backend it comes from.
pub fn forecast_for_plan(root: &Path, rb: &Runbook, catalog: &dyn Catalog) -> Forecast {
    let own = rb.target.backend.as_str();
    let f = forecast(root, rb, catalog, own);
    if f.from_history() {
        return f;
    }
    let other = if own == "sim" { "aws" } else { "sim" };
    let g = forecast(root, rb, catalog, other);
    if g.from_history() { g } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_recorded_twice_counts_once_and_bad_lines_are_left_out() {
        let rec = |id: &str, outcome: &str| {
            let r = RunRecord {
                run_id: id.into(),
                runbook: "rb".into(),
                backend: "sim".into(),
                drill: false,
                outcome: outcome.into(),
                started: jiff::Timestamp::UNIX_EPOCH,
                finished: jiff::Timestamp::UNIX_EPOCH,
                rto_achieved_secs: 10,
                steps: Vec::new(),
            };
            serde_json::to_string(&r).unwrap()
        };
        let text = format!("{}\n{}\n{{torn\n{}\n", rec("a", "failed"), rec("b", "recovered"), rec("a", "recovered"));
        let l = parse(&text, PathBuf::new());
        assert_eq!(l.runs.len(), 2);
        assert_eq!((l.runs[0].run_id.as_str(), l.runs[0].outcome.as_str()), ("a", "recovered"));
        assert_eq!(l.bad_lines, vec![3]);
    }

    #[test]
    fn the_state_root_is_two_levels_above_a_run() {
        assert_eq!(state_root(Path::new("/s/runs/r1")), Some(Path::new("/s")));
        assert_eq!(state_root(Path::new("/s/other/r1")), None);
    }
}
