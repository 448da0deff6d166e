//! The run journal: every run gets an id and a directory, every engine event is appended to `journal.jsonl` (and on
//! disk) before the engine acts on it, and a run can be resumed, reported on and watched from it.
//!
//! Layout of the state directory (`--state-dir`, else `$XDG_STATE_HOME/drconsole`, else
//! `~/.local/state/drconsole`), every directory 0700 and every file 0600:
//!
//! ```text
//! runs/<run-id>/journal.jsonl   one record a line: {"seq":N,"event":{...}|"note":{...},"crc":"<16 hex>"}
//! runs/<run-id>/meta.json       run id, runbook path and name, sha256, operator, backend, pid, start, settings
//! runs/<run-id>/runbook/        the runbook text: 0-<file>.toml, then the files it extends; runbook.sha256
//! runs/<run-id>/world.json      the simulator's world (saved through a [`WorldStore`])
//! runs/<run-id>/report.md|json, junit.xml   written when the run ends, or by `drconsole report`
//! locks/<runbook>--<account>--<primary>--<secondary>.lock   the run lock
//! ```
//!
//! Durability: each record is written with one `write` on a file opened `O_APPEND`, before the sink returns, so
//! it survives the process being killed at any instant. Records that, if lost in an OS crash or power cut, would
//! make a resumed run do something twice or forget a decision (`resource` creating/created/found, approvals,
//! answers, a chosen recovery point, step outcomes, run start and end, notes) are also `fdatasync`ed before the
//! sink returns. Progress, projections and retries are not: losing them costs nothing on resume, and syncing every
//! progress line of a long wait would only slow the run.

pub(crate) mod base;
mod edge;
mod follow;
mod lock;
mod meta;
mod read;
pub mod report;
mod runs;
mod session;
pub mod shared;
mod writer;

pub use base::{JournalError, LockInfo, Note, StateDir, WORLD_FILE};
pub(crate) use base::{private_dir, write_atomic};
pub use follow::follow;
pub use lock::{RunLock, SharedLock, lock_key, pid_alive};
pub use meta::{Meta, RunSettings, SessionInfo, ended_view, hostname, last_outcome, username, verdict_in};
pub use read::{JournalRead, Record, read_journal, read_journal_prefix};
pub use runs::RunSummary;
pub use session::{JournalInfo, Prepared, SessionGuard, list_runs, prepare_new, prepare_resume, prior_state};
pub use writer::{Journal, KILL_AFTER_ENV, WorldStore, load_world};
