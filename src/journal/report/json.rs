//! `report.json`: the report for machines (`drconsole-report/1`: fields are added, never renamed or removed).

use super::Report;

/// The report for machines.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}
