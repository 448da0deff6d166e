//! `drconsole history RUNBOOK [--json]`: the past runs that feed a runbook's forecast, and each step's P50/P90 per
//! backend (docs/forecast.md).

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{Basis, Forecast, store};
use crate::runbook::{Catalog, Runbook};
use crate::util::fmt_duration;

/// The history's text or JSON; `Err` when the history file cannot be read.
pub fn render(root: &Path, rb: &Runbook, catalog: &dyn Catalog, as_json: bool) -> Result<String, String> {
    let loaded = store::load(root, &rb.meta.name).map_err(|e| e.to_string())?;
    let backends: Vec<&str> = ["sim", "aws"]
        .into_iter()
        .filter(|b| loaded.runs.iter().any(|r| r.backend == *b) || *b == rb.target.backend.as_str())
        .collect();
    let forecasts: Vec<Forecast> = backends
        .iter()
        .map(|b| Forecast::build(rb, catalog, b, &loaded.runs, &std::collections::HashMap::new()))
        .collect();
    if as_json {
        let v = json!({
            "runbook": rb.meta.name,
            "file": loaded.path.display().to_string(),
            "min_runs": super::MIN_RUNS,
            "unreadable_lines": loaded.bad_lines,
            "runs": loaded.runs.iter().filter(|r| r.runbook == rb.meta.name).collect::<Vec<_>>(),
            "forecasts": forecasts.iter().map(|f| json!({
                "backend": f.backend,
                "runs": f.runs,
                "from_history": f.from_history(),
                "basis": f.basis_text(),
                "steps": f.steps,
            })).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    let d = |s: u64| fmt_duration(Duration::from_secs(s));
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}): forecast history in {}", rb.meta.title, rb.meta.name, loaded.path.display());
    if !loaded.bad_lines.is_empty() {
        let lines: Vec<String> = loaded.bad_lines.iter().map(ToString::to_string).collect();
        let _ =
            writeln!(out, "left out: unreadable line{} {}", if lines.len() == 1 { "" } else { "s" }, lines.join(", "));
    }
    let _ = writeln!(out);
    let runs: Vec<_> = loaded.runs.iter().filter(|r| r.runbook == rb.meta.name).collect();
    if runs.is_empty() {
        let _ = writeln!(out, "no past runs recorded");
    } else {
        let _ = writeln!(out, "{:<24} {:<7} {:<12} {:<20} {:>9}", "run", "backend", "outcome", "started", "RTO");
        for r in &runs {
            let outcome = if r.drill { format!("{} drill", r.outcome) } else { r.outcome.clone() };
            let _ = writeln!(
                out,
                "{:<24} {:<7} {:<12} {:<20} {:>9}",
                r.run_id,
                r.backend,
                outcome,
                r.started.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
                d(r.rto_achieved_secs)
            );
        }
    }
    for f in &forecasts {
        let _ = writeln!(out);
        let name = if f.backend == "sim" { "simulator" } else { "AWS" };
        let _ = writeln!(out, "forecast on {name}: {}", f.basis_text());
        let _ = writeln!(out, "  {:<22} {:>6} {:>9} {:>9} {:>9}  basis", "step", "runs", "P50", "P90", "expected");
        for s in &f.steps {
            let basis = match s.basis {
                Basis::History => "history",
                Basis::Scaled => "history, scaled by size",
                Basis::Expected => "expected",
            };
            let _ = writeln!(
                out,
                "  {:<22} {:>6} {:>9} {:>9} {:>9}  {basis}",
                s.id,
                s.samples,
                d(s.p50_secs),
                d(s.p90_secs),
                d(s.expected_secs)
            );
        }
    }
    Ok(out)
}
