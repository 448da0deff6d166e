//! Commands from a frontend to the engine, and questions from an action to the operator (routed through the
//! engine so they are journalled and any frontend can answer).

use tokio::sync::oneshot;

use super::event::Prompt;

/// A command from a frontend to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Approve a step awaiting confirmation, or confirm a manual task is done.
    Approve {
        step: String,
        by: String,
    },
    /// Answer a choice (recovery point).
    Answer {
        step: String,
        value: String,
        by: String,
    },
    /// Skip a step that has not succeeded, with a reason.
    Skip {
        step: String,
        reason: String,
        by: String,
    },
    /// Run a failed step again.
    Retry {
        step: String,
        by: String,
    },
    Pause {
        by: String,
    },
    Resume {
        by: String,
    },
    /// Stop the run: running steps are cancelled, nothing new starts, outcome `aborted`.
    Abort {
        reason: String,
        by: String,
    },
    /// Ctrl-C: stop gracefully, outcome `interrupted`.
    Interrupt,
    /// A headless frontend cannot answer what the run is waiting for: outcome `blocked`.
    Block {
        reason: String,
    },
}

/// A question from an action, routed through the engine so that it is journalled and any frontend can answer.
#[derive(Debug)]
pub struct OperatorRequest {
    pub step: String,
    pub prompt: Prompt,
    pub reply: oneshot::Sender<String>,
}
