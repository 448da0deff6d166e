//! `drconsole plan` and `drconsole iam-policy`: what a runbook will do, derived without touching anything.

use std::fmt::Write;

use serde_json::Value;

use crate::actions::{Params, Registry};
use crate::runbook::Runbook;
use crate::util::fmt_duration;

/// Parameters as far as they can be known before the run.
pub fn planned_params(rb: &Runbook, i: usize) -> Params {
    Params(crate::runbook::interp::planned_with(rb, i))
}

pub fn plan_text(rb: &Runbook, registry: &Registry) -> String {
    plan_text_with(rb, registry, None)
}

/// The plan with the forecast from the runbook's history (`crate::forecast`): each step's P50 and P90, the
/// critical path on both, and how many past runs they come from.
pub fn plan_text_with(rb: &Runbook, registry: &Registry, forecast: Option<&crate::forecast::Forecast>) -> String {
    let learnt = forecast.filter(|f| f.from_history());
    let band = |i: usize| learnt?.learnt(&rb.steps[i].id).map(crate::forecast::StepForecast::band);
    let p50 = |i: usize| band(i).map_or_else(|| rb.expected(registry, i), |b| b.0);
    let p90 = |i: usize| band(i).map_or_else(|| rb.expected(registry, i), |b| b.1);
    let mut out = String::new();
    if rb.meta.drill {
        out.push_str(&crate::drill::plan_banner(rb));
    }
    let _ = writeln!(out, "{} ({})", rb.meta.title, rb.meta.name);
    let _ = writeln!(
        out,
        "app {} · target {} {} → {} · RTO {} · RPO {}",
        rb.meta.app,
        rb.target.backend.as_str(),
        rb.target.primary,
        rb.target.secondary,
        fmt_duration(rb.meta.rto),
        fmt_duration(rb.meta.rpo)
    );
    if let Some(acct) = &rb.target.account {
        let _ = writeln!(out, "account guard: {acct}");
    }
    let _ = writeln!(out);
    let (cp, path) = rb.dag.critical_path(p50);
    let (cp90, path90) = rb.dag.critical_path(p90);
    // steps that change something in a global control plane served from the primary region
    let mut on_primary: Vec<String> = Vec::new();
    for (n, &i) in rb.dag.order.iter().enumerate() {
        let s = &rb.steps[i];
        let Some(action) = registry.get(&s.action) else { continue };
        let mut params = planned_params(rb, i);
        if rb.meta.drill {
            let records = crate::drill::production_records(rb);
            let _ = crate::drill::rewrite(rb, registry, &s.action, &mut params, "<id>", &records);
        }
        let line = action.plan(&params);
        let crit = if path.contains(&i) { "*" } else { " " };
        let time = match band(i) {
            Some((a, b)) => format!("P50 {} · P90 {}", fmt_duration(a), fmt_duration(b)),
            None => format!("~{}", fmt_duration(rb.expected(registry, i))),
        };
        let _ = writeln!(out, "{crit}{:>3}. {}  [{}]  {time}", n + 1, s.id, s.action);
        let _ = writeln!(out, "       {}", s.title);
        let _ = writeln!(out, "       → {line}");
        let mut notes = Vec::new();
        if !s.needs.is_empty() {
            notes.push(format!("after {}", s.needs.join(", ")));
        }
        match action.spec().effect {
            crate::actions::Effect::Destructive => {
                notes.push("DESTRUCTIVE: moves traffic or replaces something in use".into())
            }
            crate::actions::Effect::ReadOnly => notes.push("read-only".into()),
            crate::actions::Effect::Mutating => {}
        }
        if s.confirm {
            notes.push("asks for confirmation".into());
        }
        if let Some(t) = s.timeout {
            notes.push(format!("timeout {}", fmt_duration(t)));
        }
        if s.retries > 0 {
            notes.push(format!("{} retries", s.retries));
        }
        notes.push(format!("on failure: {}", s.on_failure.as_str()));
        let _ = writeln!(out, "       ({})", notes.join("; "));
        for c in crate::cloud::control_plane::of(action.spec()) {
            let _ = writeln!(out, "       ! {}", crate::cloud::control_plane::describe(&c, &rb.target.primary));
            if c.region == rb.target.primary {
                on_primary.push(format!("{} ({})", s.id, c.service));
            }
        }
    }
    let names: Vec<&str> = path.iter().map(|&i| rb.steps[i].id.as_str()).collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "critical path (*): {}", names.join(" → "));
    let verdict = if cp <= rb.meta.rto {
        format!("meets the RTO of {} with {} to spare", fmt_duration(rb.meta.rto), fmt_duration(rb.meta.rto - cp))
    } else {
        format!("WARNING: exceeds the RTO of {} by {}", fmt_duration(rb.meta.rto), fmt_duration(cp - rb.meta.rto))
    };
    match (learnt, forecast) {
        (Some(f), _) => {
            let verdict90 = if cp90 <= rb.meta.rto {
                format!(
                    "meets the RTO of {} at P90 with {} to spare",
                    fmt_duration(rb.meta.rto),
                    fmt_duration(rb.meta.rto - cp90)
                )
            } else {
                format!(
                    "WARNING: exceeds the RTO of {} at P90 by {}",
                    fmt_duration(rb.meta.rto),
                    fmt_duration(cp90 - rb.meta.rto)
                )
            };
            let _ = writeln!(
                out,
                "projected duration: P50 {} · P90 {} — {} ({}) — {verdict90}",
                fmt_duration(cp),
                fmt_duration(cp90),
                f.basis_text(),
                backend_word(&f.backend)
            );
            if path90 != path {
                let names: Vec<&str> = path90.iter().map(|&i| rb.steps[i].id.as_str()).collect();
                let _ = writeln!(out, "critical path at P90: {}", names.join(" → "));
            }
        }
        (None, Some(f)) => {
            let _ = writeln!(out, "projected duration: {} — {verdict}", fmt_duration(cp));
            let _ = writeln!(out, "forecast: {} ({})", f.basis_text(), backend_word(&f.backend));
        }
        (None, None) => {
            let _ = writeln!(out, "projected duration: {} — {verdict}", fmt_duration(cp));
        }
    }
    if !on_primary.is_empty() {
        let _ = writeln!(
            out,
            "control planes in the primary region {}: {} — a data-plane cut-over (route53.failover, with a failover \
             record pair and health checks made beforehand, or route53.routing_control, with Route 53 ARC routing \
             controls) does not need it",
            rb.target.primary,
            on_primary.join(", ")
        );
    }
    out
}

fn backend_word(backend: &str) -> &'static str {
    if backend == "sim" { "simulator runs" } else { "AWS runs" }
}

/// The least-privilege IAM policy for a runbook: see [`crate::iam`].
pub fn iam_policy(rb: &Runbook, registry: &Registry) -> Value {
    crate::iam::policy(rb, registry)
}

/// `drconsole plan INCIDENT`: each application's critical path and projected RTO, and the incident's overall finish
/// (the latest application) with the shared API rate limits taken into account.
///
/// The limits' model (deliberately simple, and said in the output): every application starts at the incident's
/// start; each step makes one call per mutating API operation it is granted (its IAM actions, `cloud::limit::class`;
/// reads and polls are not counted); the calls of every application in one bucket (class and region, Route 53
/// global) go out at once, so a bucket with `n` calls over its `burst` makes the last of them wait
/// `(n - burst) / rate` seconds. The overall finish is the latest application's critical path plus the longest of
/// those waits (an upper bound: it supposes the wait falls on that application's critical path).
pub fn plan_incident_text(set: &crate::incident::IncidentSet, registry: &Registry) -> String {
    use std::collections::BTreeMap;
    use std::time::Duration;
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", set.title, set.name);
    let _ = writeln!(
        out,
        "{} applications, run as one incident · API rate limits: {} · client-side limiter {}",
        set.apps.len(),
        if set.limits == crate::cloud::limit::Limits::aws_defaults() { "AWS defaults" } else { "from [limits]" },
        if set.limits.limiter { "on" } else { "off" }
    );
    let _ = writeln!(out);
    let width = set.apps.iter().map(|(a, _)| a.len()).max().unwrap_or(0).max(11);
    let _ =
        writeln!(out, "  {:width$}  {:>6}  {:>9}  {:>8}  critical path", "application", "RTO", "projected", "margin");
    let mut latest: Option<(Duration, &str)> = None;
    let mut over = Vec::new();
    let mut calls: BTreeMap<String, u32> = BTreeMap::new();
    for (app, rb) in &set.apps {
        let (cp, path) = rb.dag.critical_path(|i| rb.expected(registry, i));
        let names: Vec<&str> = path.iter().map(|&i| rb.steps[i].id.as_str()).collect();
        let margin = if cp <= rb.meta.rto {
            fmt_duration(rb.meta.rto - cp)
        } else {
            over.push(app.as_str());
            format!("-{}", fmt_duration(cp - rb.meta.rto))
        };
        let _ = writeln!(
            out,
            "  {app:width$}  {:>6}  {:>9}  {margin:>8}  {}",
            fmt_duration(rb.meta.rto),
            fmt_duration(cp),
            names.join(" → ")
        );
        if latest.is_none_or(|(d, _)| cp > d) {
            latest = Some((cp, app.as_str()));
        }
        for step in &rb.steps {
            let Some(action) = registry.get(&step.action) else { continue };
            for perm in action.spec().iam {
                let Some((service, op)) = perm.split_once(':') else { continue };
                let Some(class) = crate::cloud::limit::class(service, op) else { continue };
                if class.ends_with("non-mutating") || ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)) {
                    continue;
                }
                *calls.entry(crate::cloud::limit::scope(&class, &rb.target.secondary)).or_default() += 1;
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "shared API rate limits (mutating calls of every application, at once):");
    let mut worst: Option<(Duration, String)> = None;
    for (scope, n) in &calls {
        let class = scope.split('@').next().unwrap_or(scope);
        let Some(limit) = set.limits.classes.get(class) else {
            let _ = writeln!(out, "  {scope}: {n} calls, no limit known");
            continue;
        };
        let extra = n.saturating_sub(limit.burst);
        let wait = Duration::from_secs_f64(f64::from(extra) / limit.rate);
        let effect = if extra == 0 {
            "within the burst, no wait".to_string()
        } else {
            format!("the last waits {}", fmt_duration(wait))
        };
        let _ = writeln!(out, "  {scope}: {n} calls; burst {}, {}/s: {effect}", limit.burst, limit.rate);
        if worst.as_ref().is_none_or(|(w, _)| wait > *w) {
            worst = Some((wait, scope.clone()));
        }
    }
    if calls.is_empty() {
        let _ = writeln!(out, "  none metered");
    }
    let _ = writeln!(out);
    let (cp, app) = latest.unwrap_or((Duration::ZERO, "none"));
    let wait = worst.as_ref().map_or(Duration::ZERO, |(w, _)| *w);
    let _ = writeln!(
        out,
        "overall finish: {} after the incident's start (latest application: {app}, {} of its critical path + {} of \
         rate-limit waits)",
        fmt_duration(cp + wait),
        fmt_duration(cp),
        fmt_duration(wait)
    );
    let tightest = set.apps.iter().map(|(_, rb)| rb.meta.rto).min().unwrap_or_default();
    let _ = writeln!(out, "tightest RTO: {}", fmt_duration(tightest));
    if over.is_empty() {
        let _ = writeln!(out, "every application's projected duration meets its RTO");
    } else {
        let _ = writeln!(out, "WARNING: projected past their RTO: {}", over.join(", "));
    }
    let _ = writeln!(
        out,
        "model: all applications start together; one call per mutating API operation a step is granted (reads and \
         polls not counted); a bucket's calls beyond its burst wait (calls - burst) / rate; the longest such wait is \
         added to the latest application (an upper bound)"
    );
    out
}
