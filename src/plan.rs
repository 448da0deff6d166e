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
    let (cp, path) = rb.dag.critical_path(|i| rb.expected(registry, i));
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
        let _ =
            writeln!(out, "{crit}{:>3}. {}  [{}]  ~{}", n + 1, s.id, s.action, fmt_duration(rb.expected(registry, i)));
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
    let _ = writeln!(out, "projected duration: {} — {verdict}", fmt_duration(cp));
    if !on_primary.is_empty() {
        let _ = writeln!(
            out,
            "control planes in the primary region {}: {} — a data-plane cut-over (route53.failover, with a failover \
             record pair and health checks made beforehand) does not need it",
            rb.target.primary,
            on_primary.join(", ")
        );
    }
    out
}

/// The least-privilege IAM policy for a runbook: see [`crate::iam`].
pub fn iam_policy(rb: &Runbook, registry: &Registry) -> Value {
    crate::iam::policy(rb, registry)
}
