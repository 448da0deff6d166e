//! The run's verdicts, as facts of the [`RunView`]: how it ended in words (`recovered-late` included), the RTO and
//! RPO verdicts, a drill's verdict, and the time spent waiting for people. Computed here once; the console's end
//! screen, the incident overview, headless summaries, watch, the reports and `runs` read them, so they cannot say
//! `RECOVERED` on one screen and `recovered-late` on another.

use jiff::Timestamp;

use super::event::Outcome;
use super::view::{Phase, RunView};

/// How a run ended, in one line: the view's word and the engine's message, the message left out when it only
/// repeats the word (`interrupted`, not `interrupted — interrupted`).
pub fn outcome_line(word: &str, message: &str) -> String {
    let m = message.trim();
    if m.is_empty() || m.eq_ignore_ascii_case(word) || m.eq_ignore_ascii_case(&word.replace('-', " ")) {
        word.to_string()
    } else {
        format!("{word} — {m}")
    }
}

/// A drill's verdict (the report's "Recovery test").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillVerdict {
    /// Recovered, RTO and RPO met, every check succeeded, the cleanup left nothing.
    Passed,
    /// One of those is known to have failed.
    Failed,
    /// Nothing failed yet, but the run or its cleanup has not ended.
    Pending,
}

impl DrillVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillVerdict::Passed => "passed",
            DrillVerdict::Failed => "failed",
            DrillVerdict::Pending => "pending",
        }
    }
}

/// A projection's standing against its deadline: the words the incident board, the console and the notifications
/// use. **At risk** means the projected finish is before the deadline by less than [`AT_RISK_SHARE`] of the RTO
/// (10%: 12 minutes of a 2-hour RTO); **late** means it is past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Schedule {
    OnTrack,
    AtRisk,
    Late,
}

/// The share of the RTO under which a margin is "at risk".
pub const AT_RISK_SHARE: f64 = 0.1;

impl Schedule {
    /// The standing of a margin (deadline minus projected finish, negative when late) against an RTO.
    pub fn of(margin_secs: i64, rto_secs: u64) -> Self {
        let at_risk = (rto_secs as f64 * AT_RISK_SHARE) as i64;
        if margin_secs < 0 {
            Schedule::Late
        } else if margin_secs < at_risk {
            Schedule::AtRisk
        } else {
            Schedule::OnTrack
        }
    }

    /// A standing on the board, in words: `on track`, `AT RISK`, `LATE`; once `finished`, `met` or `LATE` (the
    /// RTO); `-` with none (not started).
    pub fn word(standing: Option<Schedule>, finished: bool) -> &'static str {
        match (standing, finished) {
            (None, _) => "-",
            (Some(Schedule::Late), _) => "LATE",
            (Some(_), true) => "met",
            (Some(Schedule::AtRisk), false) => "AT RISK",
            (Some(Schedule::OnTrack), false) => "on track",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::OnTrack => "on track",
            Schedule::AtRisk => "at risk",
            Schedule::Late => "late",
        }
    }
}

/// Everything a run's end is judged by, in one value: every output prints these.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    /// `recovered`, `recovered-late` (recovered, but the RTO or the RPO was missed), `failed`, `aborted`, `blocked`,
    /// `refused`, `interrupted`; `None` while the run has not ended.
    pub outcome: Option<&'static str>,
    /// The RTO was met; `None` until the run ended.
    pub rto_met: Option<bool>,
    /// The RTO achieved (seconds from the incident to the end); `None` until the run ended.
    pub rto_achieved_secs: Option<u64>,
    /// The RPO of every recovery point used was met; `None` when no point was used (unknown).
    pub rpo_met: Option<bool>,
    /// A drill's verdict; `None` for a real failover.
    pub drill: Option<DrillVerdict>,
}

impl RunView {
    /// The run's outcome in words: `recovered-late` when it recovered but missed its RTO or RPO.
    pub fn outcome_word(&self) -> Option<&'static str> {
        let f = self.finished.as_ref()?;
        Some(if f.outcome == Outcome::Recovered && (!f.rto_met || self.rpo().met == Some(false)) {
            "recovered-late"
        } else {
            f.outcome.as_str()
        })
    }

    /// A drill's verdict, given what is known of its cleanup (`Some(true)`: it finished and left nothing, `None`: it
    /// has not run or not finished). Failed as soon as anything is known to have failed, so a drill that missed its
    /// RTO says so at its end, before its cleanup.
    pub fn drill_verdict(&self, cleanup_clean: Option<bool>) -> Option<DrillVerdict> {
        self.run.as_ref().filter(|r| r.drill)?;
        let Some(f) = &self.finished else { return Some(DrillVerdict::Pending) };
        let checks_ok =
            self.steps.iter().filter(|s| s.info.action.starts_with("check.")).all(|s| s.phase == Phase::Succeeded);
        let failed = f.outcome != Outcome::Recovered
            || !f.rto_met
            || self.rpo().met == Some(false)
            || self.rpo().verdict == Some(crate::run::event::RpoVerdict::Unknown)
            || !checks_ok
            || cleanup_clean == Some(false);
        Some(if failed {
            DrillVerdict::Failed
        } else if cleanup_clean == Some(true) {
            DrillVerdict::Passed
        } else {
            DrillVerdict::Pending
        })
    }

    /// Every verdict at once (the drill's with what is known of its cleanup).
    pub fn verdicts(&self, cleanup_clean: Option<bool>) -> Verdicts {
        let f = self.finished.as_ref();
        Verdicts {
            outcome: self.outcome_word(),
            rto_met: f.map(|f| f.rto_met),
            rto_achieved_secs: f.map(|f| f.rto_achieved_secs),
            rpo_met: self.rpo().met,
            drill: self.drill_verdict(cleanup_clean),
        }
    }

    /// Run time every step spent waiting for a person (approvals, manual tasks, choices), up to `now`.
    pub fn waited_secs(&self, now: Timestamp) -> u64 {
        self.steps.iter().map(|s| s.wait_secs(now)).sum()
    }

    /// The instant the run's facts are measured at when no clock is given: its end, else its last event.
    pub fn end_or_last(&self) -> Option<Timestamp> {
        self.finished.as_ref().map(|f| f.at).or(self.last_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_line_does_not_repeat_its_word() {
        assert_eq!(outcome_line("interrupted", "interrupted"), "interrupted");
        assert_eq!(outcome_line("interrupted", ""), "interrupted");
        assert_eq!(outcome_line("recovered-late", "recovered late"), "recovered-late");
        assert_eq!(
            outcome_line("interrupted", "interrupted by the operator"),
            "interrupted — interrupted by the operator"
        );
    }

    #[test]
    fn at_risk_is_a_margin_under_a_tenth_of_the_rto() {
        // 2 h RTO: at risk under 12 minutes of margin, late below zero
        assert_eq!(Schedule::of(12 * 60, 7200), Schedule::OnTrack);
        assert_eq!(Schedule::of(12 * 60 - 1, 7200), Schedule::AtRisk);
        assert_eq!(Schedule::of(0, 7200), Schedule::AtRisk);
        assert_eq!(Schedule::of(-1, 7200), Schedule::Late);
    }
}
