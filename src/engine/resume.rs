//! Starting a run from prior state: a run rebuilt from its journal (`drconsole resume`) goes on where it stopped.
//! Steps that succeeded keep their outputs and are not run again; approvals and answers already given stand;
//! everything else starts again (actions are idempotent and find what an earlier attempt created).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::{Clock, Emitter, Engine, RunConfig, RunHandle, RunResult, Status};
use crate::actions::Registry;
use crate::runbook::Runbook;

/// What a step had reached before the run stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorStep {
    /// `Succeeded` and `Skipped` are kept; any other status means the step starts again.
    pub status: Status,
    /// Attempts made so far (the next attempt is numbered after them).
    pub attempts: u32,
    /// Outputs of a succeeded step.
    pub outputs: Map<String, Value>,
    /// The operator approved the step (confirm = true): not asked again.
    pub approved: bool,
}

/// An operator answer given before the run stopped, replayed if the step asks the same question again.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorAnswer {
    /// As recorded (`done`, or the chosen recovery point).
    pub answer: String,
    pub by: String,
    /// What the waiting action receives (the answer for a choice; who confirmed for a manual task).
    pub reply: String,
}

/// The state a resumed run starts from (built by the journal from its records).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorState {
    /// By step id; steps absent here start from scratch.
    pub steps: HashMap<String, PriorStep>,
    /// By step id.
    pub answers: HashMap<String, PriorAnswer>,
    /// The last event number in the journal: the resumed run numbers its events after it.
    pub last_seq: u64,
    /// Run time already spent by earlier sessions of the run.
    pub elapsed: Duration,
}

impl Engine {
    /// An engine that continues a run from `prior`. `cfg` should carry the original run id and incident start
    /// (the RTO clock continues from it).
    pub fn resume(
        rb: Arc<Runbook>,
        registry: Registry,
        cfg: RunConfig,
        clock: Clock,
        emitter: Emitter,
        prior: PriorState,
    ) -> Self {
        emitter.continue_from(prior.last_seq);
        let mut e = Engine::new(rb, registry, cfg, clock, emitter);
        for (i, step) in e.rb.steps.iter().enumerate() {
            let Some(p) = prior.steps.get(&step.id) else { continue };
            let rt = &mut e.steps[i];
            rt.attempts = p.attempts;
            rt.approved = p.approved;
            match p.status {
                Status::Succeeded => {
                    rt.status = Status::Succeeded;
                    rt.outputs = p.outputs.clone();
                }
                Status::Skipped => rt.status = Status::Skipped,
                _ => {}
            }
        }
        e.prior_answers = prior.answers;
        e.prior_elapsed = prior.elapsed;
        e
    }

    /// Starts this engine on the current tokio runtime. Sinks added to its emitter before this call (the
    /// journal) see every event, including the first, before the returned handle's `events` does.
    pub fn launch(self) -> RunHandle {
        self.launch_with(tokio::spawn)
    }

    /// As [`Engine::launch`], with the engine's task spawned by `spawn` (the simulator's paced runtime).
    pub fn launch_with(
        self,
        spawn: impl FnOnce(futures::future::BoxFuture<'static, RunResult>) -> tokio::task::JoinHandle<RunResult>,
    ) -> RunHandle {
        let events = self.emitter.subscribe();
        let (tx, rx) = mpsc::unbounded_channel();
        let join = spawn(Box::pin(self.run(rx)));
        RunHandle { commands: tx, events, join }
    }
}
