//! Engine and `check` benchmarks (`cargo bench --bench engine`). They measure and print; they assert nothing about
//! time.
//!
//! 1. A generated 1,000-step layered DAG of no-op steps (fan-out from a root, layers linked by 1-3 random needs,
//!    barrier steps that fan in a whole layer): total run time and scheduler overhead per step.
//! 2. The same DAG with every step a 10 ms wait (`wait 1s` on a clock running 100x): total time against the
//!    critical path, with unbounded and with the default bounded parallelism.
//! 3. `check` (`runbook::load_str`) on a generated ~2,000-line runbook.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use drconsole::actions::{Action, ActionCtx, ActionError, ActionSpec, Effect, Outputs, Params, Registry};
use drconsole::engine::{Clock, Engine, EventKind, Outcome, RunConfig};
use drconsole::runbook::{self, Runbook};

struct Noop;
static NOOP: ActionSpec = ActionSpec {
    name: "noop",
    summary: "does nothing",
    params: &[],
    outputs: &[],
    iam: &[],
    expected_secs: 1,
    effect: Effect::ReadOnly,
};

#[async_trait]
impl Action for Noop {
    fn spec(&self) -> &'static ActionSpec {
        &NOOP
    }
    fn plan(&self, _: &Params) -> String {
        "nothing".into()
    }
    async fn run(&self, _: &ActionCtx, _: &Params) -> Result<Outputs, ActionError> {
        Ok(Outputs::new())
    }
}

fn registry() -> Registry {
    Registry::builtin_with(vec![Arc::new(Noop)])
}

const HEADER: &str = r#"[runbook]
name = "bench"
title = "Generated benchmark runbook"
app = "bench"
rto = "24h"
rpo = "1h"

[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"
"#;

/// A layered DAG of `n` steps: one root; layers of 20-60 steps, each step needing 1-3 steps of the layer before;
/// every fifth layer is a single barrier step that needs the whole layer before it (fan-in), and fans out again.
/// Steps run `action` with `with` (a TOML inline table).
fn layered_dag(n: usize, action: &str, with: &str) -> (String, usize) {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut text = String::from(HEADER);
    let mut prev: Vec<usize> = Vec::new();
    let mut id = 0;
    let mut layers = 0;
    while id < n {
        let width = if prev.is_empty() || layers % 5 == 4 { 1 } else { rng.usize(20..=60).min(n - id) };
        let mut layer = Vec::with_capacity(width);
        for _ in 0..width {
            let needs: Vec<usize> = if prev.len() == 1 || layers % 5 == 4 {
                prev.clone()
            } else {
                let k = rng.usize(1..=3).min(prev.len());
                let mut pick: Vec<usize> = (0..k).map(|_| prev[rng.usize(..prev.len())]).collect();
                pick.sort_unstable();
                pick.dedup();
                pick
            };
            let needs: Vec<String> = needs.iter().map(|d| format!("\"s{d}\"")).collect();
            text.push_str(&format!(
                "\n[[step]]\nid = \"s{id}\"\ntitle = \"Step {id}\"\naction = \"{action}\"\nneeds = [{}]\nwith = {with}\n",
                needs.join(", ")
            ));
            layer.push(id);
            id += 1;
        }
        prev = layer;
        layers += 1;
    }
    (text, layers)
}

fn load(text: &str) -> Runbook {
    match runbook::load_str(Path::new("bench.toml"), text, &registry()) {
        Ok(rb) => rb,
        Err(d) => panic!("the generated runbook does not pass check:\n{d}"),
    }
}

struct Measured {
    wall: Duration,
    events: usize,
    outcome: Outcome,
}

/// Runs a runbook to the end on a fresh runtime, draining its events; returns wall time and event count.
fn run(rb: &Runbook, max_parallel: usize, speed: f64, multi_thread: bool) -> Measured {
    let rt = if multi_thread {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let rb = Arc::new(rb.clone());
    rt.block_on(async move {
        let cfg = RunConfig { max_parallel, run_id: "bench".into(), ..RunConfig::default() };
        let start = Instant::now();
        let mut handle = Engine::spawn(rb, registry(), cfg, Clock::new(speed));
        let mut events = 0;
        let mut outcome = Outcome::Failed;
        while let Some(ev) = handle.events.recv().await {
            events += 1;
            if let EventKind::RunFinished { outcome: o, .. } = ev.kind {
                outcome = o;
                break;
            }
        }
        let wall = start.elapsed();
        let _ = handle.join.await;
        Measured { wall, events, outcome }
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_noop(n: usize) {
    let (text, layers) = layered_dag(n, "noop", "{}");
    let rb = load(&text);
    let edges: usize = rb.dag.deps.iter().map(Vec::len).sum();
    let (cp, path) = rb.dag.critical_path(|_| Duration::from_secs(1));
    println!(
        "no-op DAG: {n} steps, {edges} needs, {layers} layers, critical path {} steps ({} s of expected time)",
        path.len(),
        cp.as_secs()
    );
    for (label, max_parallel, multi) in [
        ("current-thread runtime, max_parallel 16  ", 16, false),
        ("current-thread runtime, max_parallel 1000", 1000, false),
        ("multi-thread runtime,   max_parallel 16  ", 16, true),
    ] {
        let mut walls = Vec::new();
        let mut events = 0;
        for _ in 0..5 {
            let m = run(&rb, max_parallel, 1.0, multi);
            assert_eq!(m.outcome, Outcome::Recovered, "the benchmark run did not recover");
            walls.push(m.wall);
            events = m.events;
        }
        let wall = median(walls);
        println!(
            "  {label}: total {:8.2} ms, {:6.1} µs per step, {events} events ({:.1} µs per event)",
            ms(wall),
            wall.as_secs_f64() * 1e6 / n as f64,
            wall.as_secs_f64() * 1e6 / events as f64,
        );
    }
}

fn bench_waits(n: usize) {
    // each step waits 1 s of run time; the clock runs 100x: 10 ms of real time per step
    let speed = 100.0;
    let (text, _) = layered_dag(n, "wait", "{ duration = \"1s\" }");
    let rb = load(&text);
    let (cp, _) = rb.dag.critical_path(|_| Duration::from_secs(1));
    let cp_real = cp.div_f64(speed);
    println!(
        "10 ms waits, same shape: critical path {:.0} ms of real time ({} steps of 1 s at speed {speed})",
        ms(cp_real),
        cp.as_secs()
    );
    for (label, max_parallel) in [("max_parallel 1000", 1000), ("max_parallel 16  ", 16)] {
        let m = run(&rb, max_parallel, speed, true);
        assert_eq!(m.outcome, Outcome::Recovered, "the benchmark run did not recover");
        println!(
            "  {label}: total {:8.1} ms = {:.3} x the critical path",
            ms(m.wall),
            m.wall.as_secs_f64() / cp_real.as_secs_f64()
        );
    }
}

/// A realistic runbook of about `lines` lines: variables, interpolation, shell and check steps with needs on
/// earlier steps and references to their outputs.
fn big_runbook(lines: usize) -> String {
    let mut text = String::from(HEADER);
    text.push_str("\n[vars]\n");
    for v in 0..20 {
        text.push_str(&format!("var{v} = \"value-{v}-${{target.secondary}}\"\n"));
    }
    let mut i = 0;
    while text.lines().count() < lines {
        let needs = if i == 0 { String::new() } else { format!("needs = [\"step{}\"]\n", i - 1) };
        let cmd = if i == 0 {
            "echo ${vars.var0}".to_string()
        } else {
            format!("echo ${{steps.step{}.stdout}} ${{vars.var{}}} ${{run.id}} ${{runbook.name}}", i - 1, i % 20)
        };
        text.push_str(&format!(
            "\n[[step]]\nid = \"step{i}\"\ntitle = \"Step {i}: restore and verify\"\naction = \"shell\"\n{needs}\
             timeout = \"5m\"\nretries = 2\non_failure = \"pause\"\nexpected = \"30s\"\n\
             doc = \"Generated step {i}; its output feeds the next step.\"\n[step.with]\ncommand = \"{cmd}\"\n\
             timeout = \"1m\"\n"
        ));
        i += 1;
    }
    text
}

fn bench_check(lines: usize) {
    let text = big_runbook(lines);
    let reg = registry();
    let mut times = Vec::new();
    let mut steps = 0;
    for _ in 0..20 {
        let start = Instant::now();
        let rb = runbook::load_str(Path::new("big.toml"), &text, &reg);
        times.push(start.elapsed());
        match rb {
            Ok(rb) => steps = rb.steps.len(),
            Err(d) => panic!("the generated runbook does not pass check:\n{d}"),
        }
    }
    let min = times.iter().min().copied().unwrap_or_default();
    let med = median(times);
    println!(
        "check: {} lines, {steps} steps: median {:.2} ms, best {:.2} ms (target: well under 100 ms)",
        text.lines().count(),
        ms(med),
        ms(min)
    );
    let (dag_text, _) = layered_dag(1000, "noop", "{}");
    let start = Instant::now();
    let _ = load(&dag_text);
    println!("check: the 1,000-step DAG ({} lines): {:.2} ms", dag_text.lines().count(), ms(start.elapsed()));
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing: run the quick part only then
    let quick = !std::env::args().any(|a| a == "--bench");
    bench_check(2000);
    if quick {
        return;
    }
    bench_noop(1000);
    bench_waits(1000);
    if std::env::args().any(|a| a == "--scaling") {
        for n in [2000, 4000] {
            bench_noop(n);
        }
    }
}
