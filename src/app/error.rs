//! The error a command ends with, and its exit code ([`crate::exit`]).

use crate::exit::{BLOCKED, FAILED, REFUSED, USAGE};
use crate::journal::JournalError;

/// Why a command could not do what it was asked; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad arguments or a combination the command cannot honour.
    #[error("{0}")]
    Usage(String),
    /// A runbook or incident file with errors: the diagnostics as printed (`file:line:col`, the line, a caret)
    /// and the summary line.
    #[error("{0}")]
    Invalid(String),
    /// The cloud, the simulator or the async runtime could not be set up: nothing started.
    #[error("{0}")]
    Setup(String),
    /// A guard refused (nothing was started or changed).
    #[error("{0}")]
    Refused(String),
    /// The run could not start because it would stop at a question nobody can answer.
    #[error("{0}")]
    Blocked(String),
    /// Something failed after the command started.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The run was halted mid-way: its journal could not record an event (shared state gone, or this session
    /// fenced off by a takeover); the halt carries its error's exit code.
    #[error(transparent)]
    Halted(#[from] crate::run::Halt),
}

impl AppError {
    pub fn usage(msg: impl std::fmt::Display) -> Self {
        AppError::Usage(msg.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Usage(_) | AppError::Invalid(_) | AppError::Setup(_) => USAGE,
            AppError::Refused(_) => REFUSED,
            AppError::Blocked(_) => BLOCKED,
            AppError::Failed(_) => FAILED,
            AppError::Journal(e) => e.exit_code(),
            AppError::Halted(h) => h.exit_code,
        }
    }

    /// How `main` prints it: diagnostics as they are, anything else after `drconsole: `.
    pub fn eprint(&self) {
        match self {
            AppError::Invalid(text) => eprint!("{text}"),
            e => eprintln!("drconsole: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_exit_code() {
        assert_eq!(AppError::usage("x").exit_code(), USAGE);
        assert_eq!(AppError::Setup("x".into()).exit_code(), USAGE);
        assert_eq!(AppError::Refused("x".into()).exit_code(), REFUSED);
        assert_eq!(AppError::Blocked("x".into()).exit_code(), BLOCKED);
        assert_eq!(AppError::Journal(JournalError::Locked("held".into())).exit_code(), REFUSED);
        let fenced = JournalError::Locked("taken over".into());
        let halt = crate::run::Halt { message: fenced.to_string(), exit_code: fenced.exit_code() };
        assert_eq!(AppError::Halted(halt).exit_code(), REFUSED, "a session fenced off mid-run ends refused");
    }
}
