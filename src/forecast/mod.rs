//! The forecast that learns: every finished run (and drill) leaves, per step, its duration, attempts, time waiting
//! for people and the size it worked on in a per-runbook history (`history/<runbook>.jsonl` in the state
//! directory, [`store`]); the next run's projection takes each step's P50 and P90 from it.
//!
//! Rules (docs/forecast.md):
//! - per backend: simulator runs feed simulator forecasts only, AWS runs AWS forecasts only;
//! - a step's samples are its succeeded runs with the same step id and action (a step that failed, was skipped or
//!   cancelled says nothing about how long it takes);
//! - percentiles are nearest-rank (P90 of 6 samples is the largest), on the step's whole duration (machine time and
//!   waits for people: both consume the RTO);
//! - size-dependent actions ([`SIZE_DEPENDENT`]) forecast a rate (seconds per GiB) when every sample has a size
//!   and this run's size is known: P50/P90 rate × this run's size;
//! - with fewer than [`MIN_RUNS`] samples, a step's P50 and P90 are its expected duration (the runbook's `expected`
//!   or the action's default) and the forecast says "no history: from expected durations".
//!
//! Pure: no I/O here (the store reads and writes the files).

pub mod command;
pub mod store;

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::run::view::{Phase, RunView};
use crate::runbook::{Catalog, Runbook};

/// Fewer past runs of a step than this, and its forecast is its expected duration.
pub const MIN_RUNS: usize = 3;

/// Actions whose time depends on the size of the data they work on (GiB restored or copied).
pub const SIZE_DEPENDENT: &[&str] =
    &["rds.restore_snapshot", "rds.copy_snapshot", "rds.restore_pitr", "ebs.restore_set", "ec2.copy_image"];

/// One finished run, as the history keeps it (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub runbook: String,
    /// `sim` or `aws`.
    pub backend: String,
    #[serde(default)]
    pub drill: bool,
    pub outcome: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    /// From the incident's start to the run's end (the RTO achieved).
    pub rto_achieved_secs: u64,
    pub steps: Vec<StepRecord>,
}

/// One step of a finished run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub id: String,
    pub action: String,
    /// `succeeded`, `failed`, `skipped`, `cancelled`, `not started`.
    pub outcome: String,
    /// Its whole duration (every session it was active in), waits for people included.
    pub secs: u64,
    /// Of which machine time (not waiting for a person).
    pub machine_secs: u64,
    /// Of which waiting for a person (approval, manual task, choice).
    pub wait_secs: u64,
    pub attempts: u32,
    /// The data it worked on, when its outputs say (`size_gib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<f64>,
}

impl RunRecord {
    /// The record of a run from its view; `None` unless the run has finished.
    pub fn from_view(v: &RunView) -> Option<Self> {
        let run = v.run.as_ref()?;
        let f = v.finished.as_ref()?;
        let steps = v
            .steps
            .iter()
            .map(|s| StepRecord {
                id: s.info.id.clone(),
                action: s.info.action.clone(),
                outcome: s.phase.word().to_string(),
                secs: s.duration_secs(f.at).unwrap_or(0),
                machine_secs: s.machine_secs(f.at).unwrap_or(0),
                wait_secs: s.wait_secs(f.at),
                attempts: s.attempt,
                size_gib: size_of(&s.outputs),
            })
            .collect();
        Some(Self {
            run_id: run.run_id.clone(),
            runbook: run.runbook.clone(),
            backend: run.backend.clone(),
            drill: run.drill,
            outcome: f.outcome.as_str().to_string(),
            started: run.started,
            finished: f.at,
            rto_achieved_secs: f.rto_achieved_secs,
            steps,
        })
    }

    fn step(&self, id: &str, action: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id && s.action == action && s.outcome == Phase::Succeeded.word())
    }
}

/// The size a step's outputs report (`size_gib`, a number or a numeric string).
fn size_of(outputs: &serde_json::Map<String, serde_json::Value>) -> Option<f64> {
    let v = outputs.get("size_gib")?;
    let n = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    (n.is_finite() && n > 0.0).then_some(n)
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of `xs`: the smallest value with at least `p` of the samples at or
/// below it. `None` for no samples.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // ceil(p × n) as a 1-based rank, clamped to 1..=n
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    v.get(rank - 1).copied()
}

/// Where a step's forecast comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Its past runs' durations.
    History,
    /// Its past runs' rates (seconds per GiB) × this run's size.
    Scaled,
    /// Too few past runs: its expected duration.
    Expected,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepForecast {
    pub id: String,
    pub action: String,
    pub p50_secs: u64,
    pub p90_secs: u64,
    /// Past succeeded runs of the step on this backend.
    pub samples: usize,
    pub basis: Basis,
    /// The runbook's expected duration (or the action's default).
    pub expected_secs: u64,
    /// A size-dependent action whose past runs all say their size: its P50 and P90 rates (seconds per GiB), so a
    /// run that learns its size while it runs (a recovery point chosen, a snapshot copied) can scale the step
    /// ([`StepForecast::for_size`]).
    #[serde(skip)]
    pub rates: Option<(f64, f64)>,
}

impl StepForecast {
    /// Its P50 and P90.
    pub fn band(&self) -> (std::time::Duration, std::time::Duration) {
        (std::time::Duration::from_secs(self.p50_secs), std::time::Duration::from_secs(self.p90_secs))
    }

    /// P50 and P90 (seconds) for `size_gib` of data, from the past runs' rates; `None` when the step is not
    /// size-dependent, its history has no sizes, or the size is not positive.
    pub fn for_size(&self, size_gib: f64) -> Option<(u64, u64)> {
        let (r50, r90) = self.rates?;
        if !(size_gib > 0.0 && size_gib.is_finite()) {
            return None;
        }
        let secs = |r: f64| (r * size_gib).round().max(0.0) as u64;
        let (p50, p90) = (secs(r50), secs(r90));
        Some((p50, p90.max(p50)))
    }
}

/// The forecast of a runbook on one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub backend: String,
    /// Finished past runs of the runbook on this backend.
    pub runs: usize,
    pub steps: Vec<StepForecast>,
}

impl Forecast {
    /// Every step at its expected duration (no history).
    pub fn expected(rb: &Runbook, catalog: &dyn Catalog, backend: &str) -> Self {
        Self::build(rb, catalog, backend, &[], &HashMap::new())
    }

    /// The forecast of `rb` from `records` (any runbook and backend: those of others are left out); `sizes` gives
    /// this run's size in GiB by step id, where known.
    pub fn build(
        rb: &Runbook,
        catalog: &dyn Catalog,
        backend: &str,
        records: &[RunRecord],
        sizes: &HashMap<String, f64>,
    ) -> Self {
        let mine: Vec<&RunRecord> =
            records.iter().filter(|r| r.runbook == rb.meta.name && r.backend == backend).collect();
        let steps = rb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let expected = rb.expected(catalog, i).as_secs();
                let samples: Vec<&StepRecord> = mine.iter().filter_map(|r| r.step(&s.id, &s.action)).collect();
                step_forecast(&s.id, &s.action, expected, &samples, sizes.get(&s.id).copied())
            })
            .collect();
        Self { backend: backend.to_string(), runs: mine.len(), steps }
    }

    /// The forecast of the step `id`.
    pub fn step(&self, id: &str) -> Option<&StepForecast> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The forecast of the step `id` when it comes from its history (`None`: too little history, and its expected
    /// duration applies).
    pub fn learnt(&self, id: &str) -> Option<&StepForecast> {
        self.step(id).filter(|s| s.basis != Basis::Expected)
    }

    /// Some step's forecast comes from its history.
    pub fn from_history(&self) -> bool {
        self.steps.iter().any(|s| s.basis != Basis::Expected)
    }

    /// Where the forecast comes from, in words: `from 6 past runs`, or `no history: from expected durations`.
    pub fn basis_text(&self) -> String {
        let runs = |n: usize| format!("{n} past run{}", if n == 1 { "" } else { "s" });
        if self.from_history() {
            let fallback = self.steps.iter().filter(|s| s.basis == Basis::Expected).count();
            if fallback == 0 {
                format!("from {}", runs(self.runs))
            } else {
                format!("from {} ({fallback} step{} from expected durations)", runs(self.runs), plural(fallback))
            }
        } else if self.runs == 0 {
            "no history: from expected durations".to_string()
        } else {
            format!("no history: from expected durations ({} on {}, {MIN_RUNS} needed)", runs(self.runs), self.backend)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One step's P50 and P90 from its samples: rates × `size` for a size-dependent action whose samples all have a
/// size, durations otherwise; its expected duration with fewer than [`MIN_RUNS`] samples.
pub fn step_forecast(
    id: &str,
    action: &str,
    expected: u64,
    samples: &[&StepRecord],
    size: Option<f64>,
) -> StepForecast {
    let base = StepForecast {
        id: id.to_string(),
        action: action.to_string(),
        p50_secs: expected,
        p90_secs: expected,
        samples: samples.len(),
        basis: Basis::Expected,
        expected_secs: expected,
        rates: None,
    };
    if samples.len() < MIN_RUNS {
        return base;
    }
    let rates: Option<Vec<f64>> =
        samples.iter().map(|s| s.size_gib.filter(|g| *g > 0.0).map(|g| s.secs as f64 / g)).collect();
    let rates = rates.filter(|_| SIZE_DEPENDENT.contains(&action));
    let rate_band = rates.as_ref().and_then(|r| Some((percentile(r, 0.5)?, percentile(r, 0.9)?)));
    let (xs, scale, basis) = match (rates, size) {
        (Some(rates), Some(size)) if size > 0.0 => (rates, size, Basis::Scaled),
        _ => (samples.iter().map(|s| s.secs as f64).collect(), 1.0, Basis::History),
    };
    let q = |p: f64| percentile(&xs, p).map_or(expected, |x| (x * scale).round().max(0.0) as u64);
    let (p50, p90) = (q(0.5), q(0.9));
    StepForecast { p50_secs: p50, p90_secs: p90.max(p50), basis, rates: rate_band, ..base }
}

/// The forecast at the run's start against its actual finish, when the forecast came from history:
/// `at start P50 11:24:00Z · P90 11:41:00Z (from 6 past runs); finished 11:30:12Z, within P90`.
pub fn at_start_vs_actual(view: &RunView) -> Option<String> {
    let f = view.finished.as_ref()?;
    let first = view.projection.as_ref()?.first.as_deref()?;
    let (p50, p90) = (first.p50_finish?, first.p90_finish?);
    if !view.from_history() {
        return None;
    }
    let runs = first.history_runs.unwrap_or(0);
    let verdict = if f.at <= p50 {
        "by P50"
    } else if f.at <= p90 {
        "within P90"
    } else {
        "LATER than P90"
    };
    Some(format!(
        "at start P50 {} · P90 {} (from {runs} past run{}); finished {}, {verdict}",
        p50.strftime("%H:%M:%SZ"),
        p90.strftime("%H:%M:%SZ"),
        if runs == 1 { "" } else { "s" },
        f.at.strftime("%H:%M:%SZ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(secs: u64, size: Option<f64>) -> StepRecord {
        StepRecord {
            id: "restore_db".into(),
            action: "rds.restore_snapshot".into(),
            outcome: "succeeded".into(),
            secs,
            machine_secs: secs,
            wait_secs: 0,
            attempts: 1,
            size_gib: size,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0];
        assert_eq!(percentile(&xs, 0.5), Some(3.0));
        assert_eq!(percentile(&xs, 0.9), Some(6.0));
        assert_eq!(percentile(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.9), Some(9.0));
        assert_eq!(percentile(&ten, 0.5), Some(5.0));
    }

    /// A restore of 2 TiB forecast from restores of 500 GiB at 2 s/GiB takes four times as long: P50 and P90 scale
    /// with the size of this run's data.
    #[test]
    fn size_dependent_steps_scale_by_this_run_s_size() {
        let samples = [rec(1000, Some(500.0)), rec(1100, Some(500.0)), rec(900, Some(500.0)), rec(1200, Some(500.0))];
        let refs: Vec<&StepRecord> = samples.iter().collect();
        let f = step_forecast("restore_db", "rds.restore_snapshot", 600, &refs, Some(2048.0));
        assert_eq!(f.basis, Basis::Scaled);
        // rates 1.8, 2.0, 2.2, 2.4 s/GiB: P50 2.0, P90 2.4
        assert_eq!(f.p50_secs, 4096);
        assert_eq!(f.p90_secs, (2.4f64 * 2048.0).round() as u64);
        // the same size: the durations themselves
        let same = step_forecast("restore_db", "rds.restore_snapshot", 600, &refs, Some(500.0));
        assert_eq!((same.p50_secs, same.p90_secs), (1000, 1200));
        // a size-independent action is not scaled
        let nat = step_forecast("nat", "nat.ensure", 600, &refs, Some(2048.0));
        assert_eq!((nat.basis, nat.p50_secs, nat.p90_secs), (Basis::History, 1000, 1200));
        // no size for this run: durations
        let unknown = step_forecast("restore_db", "rds.restore_snapshot", 600, &refs, None);
        assert_eq!((unknown.basis, unknown.p50_secs), (Basis::History, 1000));
        // a sample without a size: durations (a rate cannot be had from it)
        let mixed = [rec(1000, Some(500.0)), rec(1100, None), rec(900, Some(500.0))];
        let refs: Vec<&StepRecord> = mixed.iter().collect();
        assert_eq!(step_forecast("r", "rds.restore_snapshot", 600, &refs, Some(2048.0)).basis, Basis::History);
    }

    #[test]
    fn too_few_runs_fall_back_to_the_expected_duration() {
        let samples = [rec(1000, None), rec(1100, None)];
        let refs: Vec<&StepRecord> = samples.iter().collect();
        let f = step_forecast("restore_db", "rds.restore_snapshot", 1500, &refs, None);
        assert_eq!((f.basis, f.p50_secs, f.p90_secs, f.samples), (Basis::Expected, 1500, 1500, 2));
    }
}
