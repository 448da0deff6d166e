//! The engine's event stream: everything a frontend shows and the journal records. Serialized as NDJSON by
//! `--json` (one object a line, `type` names the event); the schema is documented in the README.
//! Event names and fields are a public contract: add, never rename or remove.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runbook::OnFailure;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3... in emission order.
    pub seq: u64,
    /// Run time (simulated time on the simulator).
    pub ts: Timestamp,
    /// Real (wall-clock) time when the event was emitted, on simulated runs (where it differs from `ts`): a
    /// watcher turns "now" into run time from it, and reports show it beside simulated times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<Timestamp>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn new(seq: u64, ts: Timestamp, kind: EventKind) -> Self {
        Self { seq, ts, wall: None, kind }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepInfo {
    pub id: String,
    pub title: String,
    pub action: String,
    pub needs: Vec<String>,
    pub expected_secs: u64,
    pub confirm: bool,
    pub on_failure: OnFailure,
    /// The step's P50 duration from the runbook's history (`crate::forecast`); absent: no history, or a journal
    /// written before forecasts (the projection uses `expected_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_secs: Option<u64>,
    /// Its P90 duration from the history: past it, the step is overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_secs: Option<u64>,
}

/// A recovery point offered to the operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub kind: String,
    pub region: String,
    pub time: Timestamp,
    pub age_secs: i64,
    pub encrypted: bool,
    pub size_gib: Option<u64>,
    pub rpo_met: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// A failed cloud call as the port's one classifier judged it (`cloud::error::classify`), carried with the error's
/// text from the action to the event, the journal and every output: nothing re-parses a message to learn which
/// region failed or whether it answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorCause {
    /// `rds`, `ec2`…
    pub service: String,
    pub operation: String,
    /// The region called (empty for global services).
    pub region: String,
    /// The AWS error code.
    pub code: String,
    /// throttling, capacity, transient, not_found, refused, fatal
    pub kind: String,
    /// The region did not answer (unavailable, a timeout, a dropped connection), rather than refused the request.
    pub unreachable: bool,
}

/// What the operator is asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    /// A manual task: confirm when done.
    Done { instructions: String },
    /// Choose one candidate (recovery point).
    Choice { message: String, candidates: Vec<Candidate> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded or was skipped: exit 0.
    Recovered,
    /// A step failed: exit 1.
    Failed,
    /// The operator aborted: exit 1.
    Aborted,
    /// A headless run reached an approval or choice it was not given: exit 3.
    Blocked,
    /// A guard refused (wrong account or region): exit 4.
    Refused,
    /// Ctrl-C / SIGTERM: exit 130.
    Interrupted,
}

impl Outcome {
    /// The process exit code of a run that ended this way ([`crate::exit`]).
    pub fn exit_code(self) -> u8 {
        use crate::exit;
        match self {
            Outcome::Recovered => exit::RECOVERED,
            Outcome::Failed | Outcome::Aborted => exit::FAILED,
            Outcome::Blocked => exit::BLOCKED,
            Outcome::Refused => exit::REFUSED,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
            Outcome::Blocked => "blocked",
            Outcome::Refused => "refused",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// A data-loss verdict against the RPO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoVerdict {
    Met,
    /// Not known: the data's time is only bounded and the bound is within the RPO (the data may be older).
    Unknown,
    Missed,
}

impl RpoVerdict {
    /// The verdict of data `age_secs` old against an RPO of `rpo_secs`; with `bound`, the age is a lower bound
    /// (the time an upper bound): beyond the RPO it is missed for sure, within it nothing is known.
    pub fn judge(age_secs: i64, rpo_secs: u64, bound: bool) -> Self {
        if u64::try_from(age_secs).unwrap_or(0) > rpo_secs {
            RpoVerdict::Missed
        } else if bound {
            RpoVerdict::Unknown
        } else {
            RpoVerdict::Met
        }
    }
    /// From an event: its verdict, else (older journals) `rpo_met`.
    pub fn of(verdict: Option<RpoVerdict>, rpo_met: bool) -> Self {
        verdict.unwrap_or(if rpo_met { RpoVerdict::Met } else { RpoVerdict::Missed })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RpoVerdict::Met => "met",
            RpoVerdict::Missed => "missed",
            RpoVerdict::Unknown => "unknown",
        }
    }
    /// For reports and headless lines: `met`, `MISSED`, `UNKNOWN`.
    pub fn shout(self) -> &'static str {
        match self {
            RpoVerdict::Met => "met",
            RpoVerdict::Missed => "MISSED",
            RpoVerdict::Unknown => "UNKNOWN",
        }
    }
}

/// A data-loss window as text: `1h06m`, or `≥ 1h06m` when only bounded.
pub fn fmt_loss(secs: i64, bound: bool) -> String {
    let d = crate::util::fmt_duration(std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
    if bound { format!("≥ {d}") } else { d }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        run_id: String,
        runbook: String,
        title: String,
        app: String,
        path: String,
        sha256: String,
        backend: String,
        account: Option<String>,
        primary: String,
        secondary: String,
        incident_start: Timestamp,
        rto_secs: u64,
        rpo_secs: u64,
        deadline: Timestamp,
        speed: f64,
        steps: Vec<StepInfo>,
        /// A drill (`--drill`): a recovery test that changes nothing a customer reaches.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        drill: bool,
    },
    /// The account and identity in use, once known (AWS: STS GetCallerIdentity).
    Identity {
        account: String,
        arn: String,
    },
    StepAwaitingApproval {
        step: String,
        plan: String,
    },
    StepApproved {
        step: String,
        by: String,
    },
    StepStarted {
        step: String,
        attempt: u32,
        plan: String,
        params: Map<String, Value>,
    },
    StepProgress {
        step: String,
        message: String,
        percent: Option<f64>,
        /// The failed call the message is about, if any (a wait that polls again after an error).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<ErrorCause>,
    },
    Resource {
        step: String,
        phase: String,
        kind: String,
        id: String,
        region: String,
        state: String,
    },
    OperatorRequest {
        step: String,
        prompt: Prompt,
    },
    OperatorAnswered {
        step: String,
        answer: String,
        by: String,
    },
    RecoveryPointChosen {
        step: String,
        id: String,
        kind: String,
        region: String,
        time: Timestamp,
        rpo_secs: i64,
        rpo_met: bool,
        /// `met`, `missed` or `unknown` (a time known only as a bound that does not settle it); absent in journals
        /// written before verdicts: then `rpo_met` says met or missed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<RpoVerdict>,
        /// `time` is only an upper bound on the data's time (a copy's own start): the data loss is at least
        /// `rpo_secs`, shown as `≥ …`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bound: bool,
    },
    StepRetrying {
        step: String,
        attempt: u32,
        error: String,
        delay_ms: u64,
        /// The failed cloud call, when a cloud call failed the attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<ErrorCause>,
    },
    StepSucceeded {
        step: String,
        attempt: u32,
        duration_ms: u64,
        outputs: Map<String, Value>,
    },
    StepFailed {
        step: String,
        attempt: u32,
        error: String,
        policy: OnFailure,
        /// The failed cloud call, when a cloud call failed the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<ErrorCause>,
    },
    StepSkipped {
        step: String,
        reason: String,
        by: String,
    },
    StepCancelled {
        step: String,
        reason: String,
    },
    /// Something a step found worth saying that does not fail it (e.g. a "consistent" recovery set whose members
    /// are further apart than its tolerance).
    StepWarning {
        step: String,
        message: String,
    },
    /// A step runs past its P90 from the runbook's history (`crate::forecast`): it takes longer than nine past runs
    /// in ten did. Said once per step and session, while it runs; steps without history are never overdue.
    StepOverdue {
        step: String,
        /// How long it has run.
        running_secs: u64,
        /// What is typical for it: its P50 and P90 from `samples` past runs.
        p50_secs: u64,
        p90_secs: u64,
        samples: u32,
    },
    /// A step's P50/P90 were forecast again for the size of what it will work on, learnt from the step whose
    /// output it takes (`crate::forecast`: past rates × this size). The projection and the overdue mark use these
    /// from now on.
    StepForecast {
        step: String,
        p50_secs: u64,
        p90_secs: u64,
        /// The size it was scaled to (GiB).
        size_gib: f64,
    },
    /// The operator asked for a failed step to run again.
    StepRetryRequested {
        step: String,
        by: String,
    },
    /// The RTO projection: emitted whenever a step changes state.
    Projection {
        elapsed_secs: u64,
        rto_left_secs: i64,
        projected_finish: Timestamp,
        margin_secs: i64,
        critical_path: Vec<String>,
        /// The finish if every remaining step takes its P50 (= `projected_finish`); absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p50_finish: Option<Timestamp>,
        /// The finish if every remaining step takes its P90 (its expected duration without history).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p90_finish: Option<Timestamp>,
        /// Past finished runs of this runbook on this backend that the forecast learnt from (0: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history_runs: Option<u32>,
        /// The critical path on P90 durations, when it is not the P50 one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        p90_critical_path: Vec<String>,
    },
    /// A region (or a global service's control plane: `route53`, `iam`) stopped answering: its circuit opened,
    /// and calls to it are refused without being sent until a probe is answered ([`crate::cloud::health`]).
    RegionUnreachable {
        region: String,
        /// What was seen: the failures in a row, or the call left unanswered (a brownout).
        evidence: String,
        /// When the circuit opened.
        since: Timestamp,
    },
    /// A probe was answered: the region's circuit closed.
    RegionReachable {
        region: String,
        /// When it had become unreachable.
        since: Timestamp,
        evidence: String,
    },
    RunPaused {
        reason: String,
    },
    RunResumed {
        by: String,
    },
    RunFinished {
        outcome: Outcome,
        duration_secs: u64,
        rto_secs: u64,
        rto_achieved_secs: u64,
        rto_met: bool,
        succeeded: u32,
        failed: u32,
        skipped: u32,
        cancelled: u32,
        message: String,
    },
}

impl EventKind {
    /// The step an event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            EventKind::StepAwaitingApproval { step, .. }
            | EventKind::StepApproved { step, .. }
            | EventKind::StepStarted { step, .. }
            | EventKind::StepProgress { step, .. }
            | EventKind::Resource { step, .. }
            | EventKind::OperatorRequest { step, .. }
            | EventKind::OperatorAnswered { step, .. }
            | EventKind::RecoveryPointChosen { step, .. }
            | EventKind::StepRetrying { step, .. }
            | EventKind::StepSucceeded { step, .. }
            | EventKind::StepFailed { step, .. }
            | EventKind::StepSkipped { step, .. }
            | EventKind::StepCancelled { step, .. }
            | EventKind::StepWarning { step, .. }
            | EventKind::StepOverdue { step, .. }
            | EventKind::StepForecast { step, .. }
            | EventKind::StepRetryRequested { step, .. } => Some(step),
            _ => None,
        }
    }
}
