#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The five-application regional failover on the simulator, all five at once in one world (a regional outage
//! takes them all down together). Prints, in simulated time, each run's total time against its critical path
//! (the longest chain of step durations through the DAG: the best any scheduler could do with those steps), and
//! the simulated API calls per step. Measures; does not gate. `cargo bench --bench sim_failover`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drconsole::actions::Registry;
use drconsole::cloud::Cloud;
use drconsole::cloud::sim::{Sim, provision};
use drconsole::engine::{Clock, Command, Emitter, Engine, Event, EventKind, EventSink, Prompt, RunConfig};
use drconsole::runbook::{self, Runbook};
use drconsole::util::fmt_duration;

const APPS: &[&str] = &[
    "runbooks/cross-sell.toml",
    "runbooks/inventory-management.toml",
    "runbooks/agent-payment.toml",
    "runbooks/customer-assistance.toml",
    "runbooks/vendor-assistance.toml",
];

/// Records which tokio task runs which step: `step_started` is emitted from inside the step's task.
struct TaskSink {
    app: String,
    tasks: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl EventSink for TaskSink {
    fn event(&mut self, ev: &Event) {
        if let EventKind::StepStarted { step, .. } = &ev.kind
            && let Some(id) = tokio::task::try_id()
        {
            self.tasks.lock().unwrap().insert(id.to_string(), (self.app.clone(), step.clone()));
        }
    }
}

async fn drive(
    rb: Runbook,
    cloud: Arc<Cloud>,
    clock: Clock,
    tasks: Arc<Mutex<HashMap<String, (String, String)>>>,
) -> Vec<Event> {
    let emitter = Emitter::new(clock.clone());
    emitter.add_sink(Box::new(TaskSink { app: rb.meta.name.clone(), tasks }));
    let mut events_rx = emitter.subscribe();
    let cfg = RunConfig {
        run_id: format!("bench-{}", rb.meta.name),
        seed: 1,
        recovery_point: Some("latest+ebs=newest".into()),
        cloud: Some(cloud),
        backend: "sim".into(),
        ..RunConfig::default()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::new(Arc::new(rb), Registry::builtin(), cfg, clock, emitter);
    let join = tokio::spawn(engine.run(rx));
    let mut events = Vec::new();
    while let Some(ev) = events_rx.recv().await {
        let cmd = match &ev.kind {
            EventKind::StepAwaitingApproval { step, .. } => {
                Some(Command::Approve { step: step.clone(), by: "bench".into() })
            }
            EventKind::OperatorRequest { step, prompt: Prompt::Choice { candidates, .. } } => {
                Some(Command::Answer { step: step.clone(), value: candidates[0].id.clone(), by: "bench".into() })
            }
            EventKind::RunPaused { reason } => Some(Command::Abort { reason: reason.clone(), by: "bench".into() }),
            _ => None,
        };
        let done = matches!(ev.kind, EventKind::RunFinished { .. });
        events.push(ev);
        if let Some(c) = cmd {
            let _ = tx.send(c);
        }
        if done {
            break;
        }
    }
    let _ = join.await;
    events
}

fn main() {
    let registry = Registry::builtin();
    let rbs: Vec<Runbook> =
        APPS.iter().map(|p| runbook::load(Path::new(p), &registry).unwrap_or_else(|d| panic!("{d}"))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let wall = std::time::Instant::now();
    let (runs, calls, log, tasks) = rt.block_on(async {
        let clock = Clock::starting_at("2026-11-21T03:00:00Z".parse().unwrap(), 1.0);
        let sim = Arc::new(Sim::for_runbook(clock.clone(), 1, &rbs[0], None));
        for rb in &rbs[1..] {
            for s in provision::seeds_from_runbook(rb) {
                sim.provision(&s);
            }
        }
        sim.record_calls();
        let cloud = Arc::new(Cloud::from_all("sim", sim.clone()));
        let tasks = Arc::new(Mutex::new(HashMap::new()));
        let handles: Vec<_> =
            rbs.iter().map(|rb| tokio::spawn(drive(rb.clone(), cloud.clone(), clock.clone(), tasks.clone()))).collect();
        let mut runs = Vec::new();
        for h in handles {
            runs.push(h.await.unwrap());
        }
        let tasks = tasks.lock().unwrap().clone();
        (runs, sim.calls(), sim.call_log(), tasks)
    });

    println!("five-application regional failover on the simulator (all five at once, one world)\n");
    println!("{:<34} {:>9} {:>10} {:>14} {:>7}", "runbook", "outcome", "total", "critical path", "ratio");
    let (mut worst, mut all_total, mut all_cp) = (0.0f64, Duration::ZERO, Duration::ZERO);
    for (rb, events) in rbs.iter().zip(&runs) {
        let started = events.first().map(|e| e.ts).unwrap();
        let (finished, outcome) = events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunFinished { outcome, .. } => Some((e.ts, outcome.as_str())),
                _ => None,
            })
            .unwrap();
        let total = finished.duration_since(started).unsigned_abs();
        let mut dur: HashMap<&str, Duration> = HashMap::new();
        for e in events {
            if let EventKind::StepSucceeded { step, duration_ms, .. } = &e.kind {
                dur.insert(step.as_str(), Duration::from_millis(*duration_ms));
            }
        }
        let (cp, _) = rb.dag.critical_path(|i| dur.get(rb.steps[i].id.as_str()).copied().unwrap_or_default());
        let ratio = total.as_secs_f64() / cp.as_secs_f64().max(1.0);
        worst = worst.max(ratio);
        all_total = all_total.max(total);
        all_cp = all_cp.max(cp);
        println!(
            "{:<34} {:>9} {:>10} {:>14} {:>7.3}",
            rb.meta.name,
            outcome,
            fmt_duration(total),
            fmt_duration(cp),
            ratio
        );
    }
    let overall = all_total.as_secs_f64() / all_cp.as_secs_f64().max(1.0);
    println!(
        "{:<34} {:>9} {:>10} {:>14} {:>7.3}   (target <= 1.05: {})",
        "all five (longest)",
        "",
        fmt_duration(all_total),
        fmt_duration(all_cp),
        overall,
        if worst <= 1.05 { "met" } else { "MISSED" }
    );
    println!("worst per-runbook ratio: {worst:.3}\n");

    // API calls per step (summed over the five apps), attributed by the task that made them
    let mut per_step: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (task, op) in &log {
        let step = tasks.get(task).map_or_else(|| "(outside a step)".to_string(), |(_, s)| s.clone());
        *per_step.entry(step).or_default().entry(op.clone()).or_insert(0) += 1;
    }
    println!("simulated API calls per step (five apps together; average per app in brackets)");
    let order: Vec<&str> = rbs[0].dag.order.iter().map(|&i| rbs[0].steps[i].id.as_str()).collect();
    for step in &order {
        let Some(ops) = per_step.get(*step) else { continue };
        let n: u64 = ops.values().sum();
        let mut top: Vec<(&String, &u64)> = ops.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = top.iter().take(4).map(|(k, v)| format!("{k} {v}")).collect();
        println!("  {step:<14} {n:>5} ({:>5.1})  {}", n as f64 / rbs.len() as f64, top.join(", "));
    }
    let total_calls: u64 = calls.values().sum();
    println!(
        "  {:<14} {total_calls:>5} ({:>5.1})  incl. throttling retries",
        "total",
        total_calls as f64 / rbs.len() as f64
    );
    println!(
        "\nwall-clock time for the whole benchmark: {:.2?} (paused tokio clock: simulated time is free)",
        wall.elapsed()
    );
}
