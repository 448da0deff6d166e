//! The process exit codes (DESIGN.md), in one place (like nextest's `NextestExitCode`). Every command returns
//! `Result<u8, AppError>` ([`crate::app::AppError`], whose `exit_code()` maps each kind of error to one of
//! these), and `main` exits with it. This module depends on nothing, so the run model can use it.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | recovered (a command: done) |
//! | 1 | failed or aborted; an I/O or journal error |
//! | 2 | invalid runbook or usage; the cloud could not be set up |
//! | 3 | blocked: the run needs an answer it cannot get |
//! | 4 | refused by a guard (wrong account, lock held, changed runbook, a drill writing its primary, cleanup of a real run) |
//! | 130 | interrupted |

pub const RECOVERED: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const BLOCKED: u8 = 3;
pub const REFUSED: u8 = 4;
pub const INTERRUPTED: u8 = 130;

/// The rank of an exit code when several runs end as one (an incident, `--cleanup-after`): 4 refused, then 1
/// failed, then 3 blocked, then 130 interrupted, then 0 recovered (DESIGN.md). Any other code ranks with 1.
pub fn rank(code: u8) -> u8 {
    match code {
        REFUSED => 5,
        BLOCKED => 3,
        INTERRUPTED => 2,
        RECOVERED => 0,
        _ => 4,
    }
}

/// The worst of several exit codes by [`rank`]; 0 for none.
pub fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes.into_iter().fold(RECOVERED, |w, c| if rank(c) > rank(w) { c } else { w })
}

/// The rank of a code among the runbooks of one `drconsole preflight` (checks, not runs): 4 wrong account, then 2
/// invalid runbook or usage, then 1 not ready, then 0 ready.
pub fn check_rank(code: u8) -> u8 {
    match code {
        REFUSED => 3,
        USAGE => 2,
        RECOVERED => 0,
        _ => 1,
    }
}

/// The worst of the codes of a `preflight` over several runbooks, by [`check_rank`]; 0 for none.
pub fn worst_check(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes.into_iter().fold(RECOVERED, |w, c| if check_rank(c) > check_rank(w) { c } else { w })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_code_follows_the_documented_precedence() {
        assert_eq!(worst([]), RECOVERED);
        assert_eq!(worst([RECOVERED, INTERRUPTED]), INTERRUPTED);
        assert_eq!(worst([INTERRUPTED, BLOCKED, RECOVERED]), BLOCKED);
        assert_eq!(worst([BLOCKED, FAILED]), FAILED);
        assert_eq!(worst([FAILED, REFUSED, BLOCKED]), REFUSED);
        assert_eq!(worst([USAGE, BLOCKED]), USAGE, "another code ranks with 1");
    }

    #[test]
    fn a_preflight_over_several_runbooks_reports_the_worst_check() {
        assert_eq!(worst_check([]), RECOVERED);
        assert_eq!(worst_check([FAILED, USAGE]), USAGE);
        assert_eq!(worst_check([USAGE, REFUSED, FAILED]), REFUSED);
        assert_eq!(worst_check([RECOVERED, FAILED]), FAILED);
    }
}
