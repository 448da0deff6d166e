//! The run vocabulary every layer shares: events, the clock, the emitter with its sinks and redactor, commands,
//! operator requests, and the [`view::RunView`] that folds events into what a run is.
//!
//! Rules: `run` imports nothing above it (only `runbook` for the step policy types and `util`); the engine,
//! actions, the cloud simulator, the journal and every frontend import it, never each other for these types.

pub mod clock;
mod command;
pub mod describe;
mod emit;
pub mod event;
pub mod verdict;
pub mod view;

pub use clock::Clock;
pub use command::{Command, OperatorRequest};
pub use emit::{Emitter, EventSink, Halt, Redactor, halted_here};
pub use event::{Candidate, ErrorCause, Event, EventKind, Outcome, Prompt, RpoVerdict, StepInfo, fmt_loss};
pub use verdict::{DrillVerdict, Schedule, Verdicts};
pub use view::{ClockView, Phase, RunView, StepView};

/// The lifecycle of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Skipped | Status::Cancelled)
    }
}
