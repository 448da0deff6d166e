//! The action catalogue: what a step can do. Each action declares a [`spec::ActionSpec`] (parameters, outputs, IAM
//! permissions, expected duration) and runs against an [`ActionCtx`], which gives it the clock, cancellation,
//! progress reporting, the operator and the cloud.

mod builtin;
mod data;
mod ebs_points;
mod ec2;
pub mod kit;
mod network;
mod points;
mod rds;
pub mod recovery_point;
mod route53;
pub(crate) use route53::{
    cluster_endpoints as route53_cluster_endpoints, failover_pair as route53_failover_pair,
    on_cluster as route53_on_cluster, target_of as route53_target_of,
};
pub mod shell;
/// The action spec lives with the runbook format (`runbook::catalog`), which the loader checks against.
pub mod spec {
    pub use crate::runbook::catalog::*;
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use spec::{ActionSpec, Effect, OutputSpec, ParamKind, ParamSpec};

use crate::cloud::Cloud;
use crate::run::{Candidate, Clock, Emitter, EventKind, OperatorRequest, Prompt};
use crate::runbook::Target;

pub type Outputs = Map<String, Value>;

/// Why an action did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// It failed; `retryable` says whether another attempt may succeed.
    Failed { retryable: bool },
    /// The run was stopped while it ran.
    Cancelled,
    /// A guard refused it (wrong account or region): nothing was changed. Exit code 4.
    Refused,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub kind: ErrorKind,
    pub message: String,
    /// The failed cloud call behind it, if one was: carried to the step's events (boxed: errors stay small).
    pub cause: Option<Box<crate::run::ErrorCause>>,
}

impl ActionError {
    /// A failure that another attempt may fix (a timeout, a throttled API, a resource not ready yet).
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Failed { retryable: true }, message: message.into(), cause: None }
    }
    /// A failure that retrying will not fix (bad parameters, a resource in the wrong state).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Failed { retryable: false }, message: message.into(), cause: None }
    }
    pub fn cancelled() -> Self {
        Self { kind: ErrorKind::Cancelled, message: "cancelled".into(), cause: None }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Refused, message: message.into(), cause: None }
    }
    /// The cloud call that failed it.
    pub fn with_cause(mut self, cause: crate::run::ErrorCause) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }
    pub fn retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Failed { retryable: true })
    }
}

/// A step's parameters after interpolation, with typed accessors whose errors name the parameter.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    fn missing(name: &str) -> ActionError {
        ActionError::fatal(format!("parameter `{name}` is required"))
    }
    fn mistyped(name: &str, want: &str, v: &Value) -> ActionError {
        ActionError::fatal(format!("parameter `{name}` must be {want}, got {v}"))
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
    pub fn str(&self, name: &str) -> Result<&str, ActionError> {
        self.opt_str(name)?.ok_or_else(|| Self::missing(name))
    }
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, ActionError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(Self::mistyped(name, "a string", v)),
        }
    }
    /// A string, or the string form of a number (outputs such as ports may be either).
    pub fn text(&self, name: &str) -> Result<String, ActionError> {
        match self.0.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            Some(v) => Err(Self::mistyped(name, "a string", v)),
        }
    }
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, ActionError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| Self::mistyped(name, "an integer", &Value::String(s.clone())))
            }
            Some(v) => Err(Self::mistyped(name, "an integer", v)),
        }
    }
    pub fn int(&self, name: &str) -> Result<i64, ActionError> {
        self.opt_int(name)?.ok_or_else(|| Self::missing(name))
    }
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ActionError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(v) => Err(Self::mistyped(name, "true or false", v)),
        }
    }
    pub fn opt_duration(&self, name: &str) -> Result<Option<Duration>, ActionError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => crate::util::parse_duration(s)
                .map(Some)
                .map_err(|e| ActionError::fatal(format!("parameter `{name}`: {e}"))),
        }
    }
    pub fn duration(&self, name: &str) -> Result<Duration, ActionError> {
        self.opt_duration(name)?.ok_or_else(|| Self::missing(name))
    }
    pub fn opt_time(&self, name: &str) -> Result<Option<jiff::Timestamp>, ActionError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e| ActionError::fatal(format!("parameter `{name}`: \"{s}\" is not an RFC 3339 time: {e}"))),
        }
    }
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ActionError> {
        match self.0.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Self::mistyped(name, "a list of strings", v)))
                .collect(),
            Some(Value::String(s)) => {
                Ok(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            }
            Some(v) => Err(Self::mistyped(name, "a list of strings", v)),
        }
    }
    pub fn table(&self, name: &str) -> Result<Vec<(String, String)>, ActionError> {
        match self.0.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect()),
            Some(v) => Err(Self::mistyped(name, "a table", v)),
        }
    }
}

/// What an action can reach while it runs.
#[derive(Clone)]
pub struct ActionCtx {
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub clock: Clock,
    pub cancel: tokio_util::sync::CancellationToken,
    pub target: Arc<Target>,
    /// The runbook's RPO target, for recovery point selection.
    pub rpo: Duration,
    /// Incident start, the reference point for RPO.
    pub incident_start: jiff::Timestamp,
    /// A recovery point given on the command line (`--recovery-point ID|latest`).
    pub recovery_point: Option<String>,
    /// The runbook's name (tagged on everything the run creates).
    pub runbook: String,
    /// The cloud the run works on (the simulator or AWS); `None` for runs that need none.
    pub cloud: Option<Arc<Cloud>>,
    /// The run's directory (journalled runs), where actions may keep what is too big for the journal.
    pub run_dir: Option<std::path::PathBuf>,
    /// A drill (`--drill`): what the step creates is tagged `drconsole:drill` too.
    pub drill: bool,
    pub(crate) emitter: Emitter,
    pub(crate) operator: tokio::sync::mpsc::UnboundedSender<OperatorRequest>,
}

impl ActionCtx {
    /// The cloud, or an error naming the step when the run has none configured.
    pub fn cloud(&self) -> Result<&Cloud, ActionError> {
        self.cloud.as_deref().ok_or_else(|| {
            ActionError::fatal(format!(
                "step `{}` needs a cloud backend, and none is configured (run with --sim, or backend = \"aws\")",
                self.step_id
            ))
        })
    }

    /// The tags put on every resource this step creates.
    pub fn tags(&self) -> crate::cloud::Tags {
        let mut tags = crate::cloud::drconsole_tags(&self.run_id, &self.step_id, &self.runbook);
        if self.drill {
            tags.insert(crate::cloud::TAG_DRILL.into(), self.run_id.clone());
        }
        tags
    }

    /// Sleeps in run time (scaled by the simulator's speed); returns early with `Cancelled` when the run stops.
    pub async fn sleep(&self, d: Duration) -> Result<(), ActionError> {
        tokio::select! {
            () = self.clock.sleep(d) => Ok(()),
            () = self.cancel.cancelled() => Err(ActionError::cancelled()),
        }
    }

    /// Reports progress on a long wait; `percent` in 0..=100.
    pub fn progress(&self, message: impl Into<String>, percent: Option<f64>) {
        self.emitter.emit(EventKind::StepProgress {
            step: self.step_id.clone(),
            message: message.into(),
            percent,
            cause: None,
        });
    }

    /// Progress about a failed cloud call the step goes on after (it polls again, it falls back): the event carries
    /// the call's classified cause.
    pub fn progress_error(&self, message: impl Into<String>, e: &crate::cloud::CloudError) {
        self.emitter.emit(EventKind::StepProgress {
            step: self.step_id.clone(),
            message: message.into(),
            percent: None,
            cause: Some(e.cause()),
        });
    }

    /// Records a resource the step is creating, found or changed, so the journal and the report show it.
    pub fn resource(&self, phase: &str, kind: &str, id: &str, region: &str, state: &str) {
        self.emitter.emit(EventKind::Resource {
            step: self.step_id.clone(),
            phase: phase.to_string(),
            kind: kind.to_string(),
            id: id.to_string(),
            region: region.to_string(),
            state: state.to_string(),
        });
    }

    /// Marks a value as secret: it is replaced by `***` in every event from now on (journal, reports, screen).
    pub fn register_secret(&self, value: &str) {
        self.emitter.register_secret(value);
    }

    /// Emits an arbitrary event (recovery point chosen, RPO window).
    pub fn emit(&self, kind: EventKind) {
        self.emitter.emit(kind);
    }

    /// Says something worth knowing that does not fail the step (shown in the log, kept in the report).
    pub fn warn(&self, message: impl Into<String>) {
        self.emitter.emit(EventKind::StepWarning { step: self.step_id.clone(), message: message.into() });
    }

    /// Records the data a step restored from a set of recovery points (an EBS set, an export...): the set counts
    /// in the run's RPO by its oldest member, and a set whose members are further apart than `tolerance` is a
    /// warning (it is not as consistent as its name says).
    pub fn recovery_set_used(
        &self,
        kind: &str,
        label: &str,
        region: &str,
        times: &[(jiff::Timestamp, bool)],
        tolerance: Duration,
    ) {
        let (Some(oldest), Some(newest)) = (times.iter().map(|t| t.0).min(), times.iter().map(|t| t.0).max()) else {
            return;
        };
        // a member whose time is only a bound (its data may be older than the oldest known) makes the window a bound
        let bound = times.iter().any(|(_, b)| *b);
        let rpo_secs = crate::run::clock::secs_between(oldest, self.incident_start).max(0);
        let verdict = crate::run::RpoVerdict::judge(rpo_secs, self.rpo.as_secs(), bound);
        self.emit(EventKind::RecoveryPointChosen {
            step: self.step_id.clone(),
            id: label.to_string(),
            kind: kind.to_string(),
            region: region.to_string(),
            time: oldest,
            rpo_secs,
            rpo_met: verdict == crate::run::RpoVerdict::Met,
            verdict: Some(verdict),
            bound,
        });
        let spread = u64::try_from(crate::run::clock::secs_between(oldest, newest)).unwrap_or(0);
        if spread > tolerance.as_secs() {
            self.warn(format!(
                "{label}: its {} members are {} apart (tolerance {}): the set is not consistent",
                times.len(),
                crate::util::fmt_duration(Duration::from_secs(spread)),
                crate::util::fmt_duration(tolerance)
            ));
        }
        match verdict {
            crate::run::RpoVerdict::Missed => self.warn(format!(
                "{label}: its oldest member is {} before the incident, beyond the RPO of {}",
                crate::run::fmt_loss(rpo_secs, bound),
                crate::util::fmt_duration(self.rpo)
            )),
            crate::run::RpoVerdict::Unknown => self.warn(format!(
                "{label}: RPO unknown: a member's time is only an upper bound ({} at least, the RPO is {})",
                crate::run::fmt_loss(rpo_secs, bound),
                crate::util::fmt_duration(self.rpo)
            )),
            crate::run::RpoVerdict::Met => {}
        }
    }

    /// Asks the operator a question and waits for the answer (through the engine, so it is journalled).
    pub async fn ask(&self, prompt: Prompt) -> Result<String, ActionError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.operator
            .send(OperatorRequest { step: self.step_id.clone(), prompt, reply: tx })
            .map_err(|_| ActionError::cancelled())?;
        tokio::select! {
            r = rx => r.map_err(|_| ActionError::cancelled()),
            () = self.cancel.cancelled() => Err(ActionError::cancelled()),
        }
    }

    /// Asks the operator to pick one of `candidates`; returns the chosen id.
    pub async fn choose(&self, message: String, candidates: Vec<Candidate>) -> Result<String, ActionError> {
        self.ask(Prompt::Choice { message, candidates }).await
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    fn spec(&self) -> &'static ActionSpec;
    /// One line saying what the step will do with these parameters (shown in `plan` and confirmations).
    fn plan(&self, p: &Params) -> String;
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError>;
}

/// Every action drconsole knows, by name.
#[derive(Clone)]
pub struct Registry {
    actions: Vec<Arc<dyn Action>>,
    by_name: HashMap<&'static str, usize>,
}

impl Registry {
    pub fn new(actions: Vec<Arc<dyn Action>>) -> Self {
        let by_name = actions.iter().enumerate().map(|(i, a)| (a.spec().name, i)).collect();
        Self { actions, by_name }
    }

    /// The built-in catalogue.
    pub fn builtin() -> Self {
        let mut all = builtin::all();
        all.extend(recovery_point::all());
        all.extend(rds::all());
        all.extend(ec2::all());
        all.extend(network::all());
        all.extend(route53::all());
        all.extend(data::all());
        Self::new(all)
    }

    /// The built-in catalogue plus `extra` actions (tests, benchmarks); an extra action replaces a built-in one of
    /// the same name.
    pub fn builtin_with(extra: Vec<Arc<dyn Action>>) -> Self {
        let mut actions = builtin::all();
        actions.retain(|a| !extra.iter().any(|e| e.spec().name == a.spec().name));
        actions.extend(extra);
        Self::new(actions)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.by_name.get(name).map(|&i| &self.actions[i])
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.spec().name).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Action>> {
        self.actions.iter()
    }
}

impl crate::runbook::Catalog for Registry {
    fn spec(&self, action: &str) -> Option<&'static ActionSpec> {
        self.get(action).map(|a| a.spec())
    }
    fn names(&self) -> Vec<&'static str> {
        Registry::names(self)
    }
}
