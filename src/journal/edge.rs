//! What a resume must refuse, or repair, before it rebuilds a run from its journal: the edge cases a crash, a full
//! disk or a careless hand leave behind.
//!
//! Rules: an empty journal is a refusal, never a fresh start under the old run id (a second `run_started`, the
//! recovery point chosen again); a simulated run whose saved world is gone but whose journal records resources is a
//! refusal (a fresh world would not hold what the run created); a run that ended without its reports (killed right
//! after its last record) gets them written, so what is pointed at exists.

use std::path::Path;

use super::base::{JournalError, WORLD_FILE};
use super::meta::{Meta, last_outcome};
use super::read::JournalRead;

/// Checks that a run can be resumed from `read`, and writes missing reports of a run that ended.
pub(super) fn check_resumable(dir: &Path, meta: &Meta, read: &JournalRead) -> Result<(), JournalError> {
    let journal = dir.join("journal.jsonl");
    if read.records.is_empty() {
        return Err(JournalError::Usage(format!(
            "the journal of run {} is empty ({}): what the run did is unknown, so it cannot be resumed safely. \
             Check what exists (its runbook is kept in {}), then start a new run",
            meta.run_id,
            journal.display(),
            dir.join("runbook").display()
        )));
    }
    // the run view's resources: anything the run made, found or changed lives in the saved world
    let view = crate::run::RunView::from_events(read.events());
    let created = view.steps.iter().any(|s| !s.resources.is_empty());
    if meta.backend == "sim" && created && !dir.join(WORLD_FILE).exists() {
        return Err(JournalError::NotFound(format!(
            "the simulator's world of run {} is missing ({}), but its journal records resources the run made: \
             a resumed simulation would start from a fresh world without them. Start a new simulated run",
            meta.run_id,
            dir.join(WORLD_FILE).display()
        )));
    }
    if last_outcome(read).is_some() && !dir.join("report.md").exists() {
        // killed between its last record and its reports
        super::report::write_all(dir)?;
    }
    Ok(())
}
