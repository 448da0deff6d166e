//! The regional incident: several runbooks (one per application) run as one incident in one process.
//!
//! Each application keeps its own run (journal, lock, reports, `resume`, `watch`); the incident has its own record
//! (`incidents/<id>/incident.json` in the state directory) listing them. On the simulator every application works
//! in one simulated account (one world, one paced runtime, one set of rate-limit buckets), so they contend for the
//! same API limits as they would on AWS; on AWS they share one SDK client per service and region.
//!
//! Rules: nothing is created until every runbook of the incident loads and every flag is valid; the record is
//! written atomically; the exit code is the worst of the applications' by [`worst_exit`].

pub mod drive;
pub mod file;
pub mod overview;
pub mod record;
pub mod report;

use std::path::{Path, PathBuf};

use crate::actions::Registry;
use crate::cloud::limit::Limits;
use crate::runbook::{self, DiagKind, Diagnostic, Diagnostics, Runbook};

pub use record::{AppRun, IncidentRecord};

/// The runbooks of an incident, loaded and checked.
#[derive(Debug)]
pub struct IncidentSet {
    pub name: String,
    pub title: String,
    /// The incident file, if the incident came from one (absolute).
    pub file: Option<PathBuf>,
    pub limits: Limits,
    /// (application, runbook), most urgent first: the file's `priority`, then the file's (or command line's) order.
    pub apps: Vec<(String, Runbook)>,
}

/// Loads an incident file and every runbook it names; all problems at once, each with its file:line:col.
pub fn load_file(path: &Path, registry: &Registry) -> Result<IncidentSet, Diagnostics> {
    let f = file::load(path)?;
    let mut diags = Vec::new();
    let mut apps: Vec<(String, Runbook)> = Vec::new();
    for (p, span) in &f.runbooks {
        if !p.is_file() {
            diags.push(f.diag(DiagKind::BadInclude, span.clone(), format!("no runbook at {}", p.display())));
            continue;
        }
        if file::is_incident_file(p) {
            diags.push(f.diag(DiagKind::BadInclude, span.clone(), "an incident cannot include another incident"));
            continue;
        }
        match runbook::load(p, registry) {
            Ok(rb) => {
                let app = app_of(&rb);
                if apps.iter().any(|(a, _)| *a == app) {
                    diags.push(f.diag(
                        DiagKind::BadValue,
                        span.clone(),
                        format!("application `{app}` has two runbooks in this incident; one run per application"),
                    ));
                    continue;
                }
                apps.push((app, rb));
            }
            Err(d) => diags.extend(d.0),
        }
    }
    for (name, span) in &f.priority {
        if diags.is_empty() && !apps.iter().any(|(a, _)| a == name) {
            let known: Vec<&str> = apps.iter().map(|(a, _)| a.as_str()).collect();
            diags.push(f.diag(
                DiagKind::BadValue,
                span.clone(),
                format!("priority: no application `{name}` in this incident (it has: {})", known.join(", ")),
            ));
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    let rank = |app: &str| f.priority.iter().position(|(p, _)| p == app).unwrap_or(usize::MAX);
    apps.sort_by_key(|(a, _)| rank(a));
    // the incident's webhooks hear of every application's run
    for (_, rb) in &mut apps {
        rb.meta.notify.extend(f.notify.iter().cloned());
    }
    Ok(IncidentSet {
        name: f.name.clone(),
        title: f.title.clone(),
        file: Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
        limits: f.limits,
        apps,
    })
}

/// Several runbooks given on the command line: an incident named after its applications.
pub fn load_runbooks(paths: &[PathBuf], registry: &Registry) -> Result<IncidentSet, Diagnostics> {
    let mut diags = Vec::new();
    let mut apps: Vec<(String, Runbook)> = Vec::new();
    for p in paths {
        if file::is_incident_file(p) {
            diags.push(Diagnostic::file(
                p,
                DiagKind::BadInclude,
                "an incident file runs on its own: give it alone, or give runbooks only",
            ));
            continue;
        }
        match runbook::load(p, registry) {
            Ok(rb) => {
                let app = app_of(&rb);
                if apps.iter().any(|(a, _)| *a == app) {
                    diags.push(Diagnostic::file(
                        p,
                        DiagKind::BadValue,
                        format!("application `{app}` is given twice; one run per application"),
                    ));
                    continue;
                }
                apps.push((app, rb));
            }
            Err(d) => diags.extend(d.0),
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    let names: Vec<&str> = apps.iter().map(|(a, _)| a.as_str()).collect();
    Ok(IncidentSet {
        name: "incident".into(),
        title: format!("Incident: {}", names.join(", ")),
        file: None,
        limits: Limits::aws_defaults(),
        apps,
    })
}

/// The application a runbook recovers: `[runbook] app`, else its name.
pub fn app_of(rb: &Runbook) -> String {
    if rb.meta.app.is_empty() { rb.meta.name.clone() } else { rb.meta.app.clone() }
}

/// The exit code of an incident: the worst of its applications' by precedence 4 > 1 > 3 > 130 > 0
/// ([`crate::exit::worst`]).
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    crate::exit::worst(codes)
}

/// `--recovery-point` in an incident: `latest` applies to every application, `APP=ID` to that application only.
/// A bare id is refused (it belongs to one application; say which).
pub fn recovery_points(value: Option<&str>, apps: &[&str]) -> Result<Vec<Option<String>>, String> {
    let Some(value) = value else { return Ok(vec![None; apps.len()]) };
    let mut all: Option<String> = None;
    let mut by_app: Vec<(String, String)> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // `latest+ebs=newest`: every application's newest point, with the EBS-set decision
        if part == "latest" || part.starts_with("latest+") {
            all = Some(part.to_string());
        } else if let Some((app, id)) = part.split_once('=') {
            if !apps.contains(&app) {
                return Err(format!(
                    "--recovery-point {part}: no application `{app}` in this incident (it has: {})",
                    apps.join(", ")
                ));
            }
            by_app.push((app.to_string(), id.to_string()));
        } else {
            return Err(format!(
                "--recovery-point {part}: an id belongs to one application; write APP={part} (applications: {}), \
                 or `latest` for every application",
                apps.join(", ")
            ));
        }
    }
    Ok(apps
        .iter()
        .map(|a| by_app.iter().rev().find(|(x, _)| x == a).map(|(_, id)| id.clone()).or_else(|| all.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_exit_code_wins_by_precedence() {
        assert_eq!(worst_exit([0, 130, 3, 1, 4]), 4);
        assert_eq!(worst_exit([0, 130, 3, 1]), 1);
        assert_eq!(worst_exit([130, 3, 0]), 3);
        assert_eq!(worst_exit([0, 130]), 130);
        assert_eq!(worst_exit([0, 0]), 0);
    }

    #[test]
    fn a_recovery_point_applies_where_it_belongs() {
        let apps = ["a", "b"];
        assert_eq!(recovery_points(Some("latest"), &apps), Ok(vec![Some("latest".into()), Some("latest".into())]));
        assert_eq!(
            recovery_points(Some("latest,b=snap-1"), &apps),
            Ok(vec![Some("latest".into()), Some("snap-1".into())])
        );
        assert_eq!(recovery_points(Some("a=snap-2"), &apps), Ok(vec![Some("snap-2".into()), None]));
        assert!(recovery_points(Some("snap-1"), &apps).is_err());
        assert!(recovery_points(Some("c=snap-1"), &apps).is_err());
    }
}
