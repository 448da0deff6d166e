//! Route 53: UPSERT a record (alias to the ALB, failover, weighted) and wait INSYNC; health checks; and the
//! data-plane cut-over (`route53.failover`): with a failover record pair and health checks made beforehand, the
//! cut-over changes nothing in Route 53 — it checks that Route 53 answers with the SECONDARY record, which it does
//! once the PRIMARY's health check fails. Route 53's change APIs are served from us-east-1; the health checkers and
//! DNS answers are not, so this cut-over works on the day us-east-1 is impaired.

use std::sync::Arc;

use async_trait::async_trait;

use super::kit::{c, fqdn, outs, port_param, s, u32_param, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{AliasTarget, Cloud, HealthCheckConfig, HostedZone, RecordSet};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Upsert), Arc::new(HealthCheckA), Arc::new(Failover)]
}

pub(crate) async fn zone(cloud: &Cloud, name: &str) -> Result<HostedZone, ActionError> {
    let zones = c(cloud.route53.find_hosted_zones(name)).await?;
    match zones.len() {
        0 => Err(ActionError::fatal(format!("no hosted zone named {name}"))),
        1 => Ok(zones.into_iter().next().ok_or_else(|| ActionError::fatal("no zone"))?),
        _ => {
            let public: Vec<HostedZone> = zones.into_iter().filter(|z| !z.private).collect();
            public
                .into_iter()
                .next()
                .ok_or_else(|| ActionError::fatal(format!("several private zones named {name}: give the public one")))
        }
    }
}

struct Upsert;
static UPSERT: ActionSpec = ActionSpec {
    name: "route53.upsert",
    summary: "UPSERT a DNS record (alias to a load balancer, or values; failover or weighted routing) and wait until INSYNC",
    params: &[
        P::req("zone", K::Str, "the hosted zone name, e.g. example.com"),
        P::req("record", K::Str, "the record name, e.g. app.example.com"),
        P::opt("type", K::Str, "A (default), AAAA, CNAME..."),
        P::opt("alias_dns", K::Str, "alias target DNS name (the ALB's dns_name)"),
        P::opt("alias_zone_id", K::Str, "alias target hosted zone id (the ALB's zone_id)"),
        P::opt("values", K::StrList, "record values (when not an alias)"),
        P::opt("ttl", K::Int, "TTL for values (default 60)"),
        P::opt("failover", K::Str, "PRIMARY or SECONDARY (failover routing)"),
        P::opt("weight", K::Int, "weight (weighted routing)"),
        P::opt("set_identifier", K::Str, "set identifier (failover/weighted routing)"),
        P::opt("health_check_id", K::Str, "health check to attach"),
        P::opt("evaluate_target_health", K::Bool, "alias: evaluate target health (default true)"),
    ],
    outputs: &[
        out("change_id", "the Route 53 change (empty if the record was already so)"),
        out("fqdn", "the record name"),
    ],
    iam: &[
        "route53:ListHostedZonesByName",
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
    ],
    expected_secs: 90,
    effect: Effect::Destructive,
};

fn record_from(p: &Params) -> Result<RecordSet, ActionError> {
    let alias = match (p.opt_str("alias_dns")?, p.opt_str("alias_zone_id")?) {
        (Some(d), Some(z)) => Some(AliasTarget {
            dns_name: fqdn(&d.to_ascii_lowercase()),
            hosted_zone_id: z.into(),
            evaluate_target_health: p.bool_or("evaluate_target_health", true)?,
        }),
        (None, None) => None,
        _ => return Err(ActionError::fatal("an alias needs both `alias_dns` and `alias_zone_id`")),
    };
    let values = p.str_list("values")?;
    if alias.is_none() && values.is_empty() {
        return Err(ActionError::fatal("give `alias_dns` + `alias_zone_id`, or `values`"));
    }
    let failover = p.opt_str("failover")?.map(str::to_ascii_uppercase);
    if let Some(f) = &failover
        && f != "PRIMARY"
        && f != "SECONDARY"
    {
        return Err(ActionError::fatal(format!("parameter `failover` must be PRIMARY or SECONDARY, not {f}")));
    }
    let weight = p
        .opt_int("weight")?
        .map(|w| u32::try_from(w).map_err(|_| ActionError::fatal("`weight` must be 0-255")))
        .transpose()?;
    let set_identifier = p.opt_str("set_identifier")?.map(str::to_string);
    if (failover.is_some() || weight.is_some()) && set_identifier.is_none() {
        return Err(ActionError::fatal("failover and weighted records need `set_identifier`"));
    }
    Ok(RecordSet {
        name: fqdn(p.str("record")?),
        rtype: p.opt_str("type")?.unwrap_or("A").to_string(),
        ttl: if alias.is_some() { None } else { Some(u32_param(p, "ttl", 60)?) },
        values,
        alias,
        set_identifier,
        failover,
        weight,
        health_check_id: p.opt_str("health_check_id")?.map(str::to_string),
    })
}

#[async_trait]
impl Action for Upsert {
    fn spec(&self) -> &'static ActionSpec {
        &UPSERT
    }
    fn plan(&self, p: &Params) -> String {
        let to = match p.text("alias_dns") {
            Ok(d) => format!("alias → {d}"),
            Err(_) => p.str_list("values").map(|v| v.join(", ")).unwrap_or_default(),
        };
        let routing = p
            .text("failover")
            .map(|f| format!(" failover {f}"))
            .or_else(|_| p.text("weight").map(|w| format!(" weight {w}")))
            .unwrap_or_default();
        format!(
            "route53:ChangeResourceRecordSets UPSERT {} {} {to}{routing} in {}; wait INSYNC",
            p.text("record").unwrap_or_default(),
            p.text("type").unwrap_or_else(|_| "A".into()),
            p.text("zone").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let z = zone(cloud, p.str("zone")?).await?;
        let rec = record_from(p)?;
        let existing = c(cloud.route53.list_record_sets(&z.id, &rec.name)).await?;
        if existing.contains(&rec) {
            ctx.resource("found", "dns-record", &rec.name, "global", "already as requested");
            return Ok(outs(&[("change_id", s("")), ("fqdn", s(rec.name))]));
        }
        ctx.resource("creating", "dns-record", &rec.name, "global", "UPSERT");
        let ch = c(cloud.route53.upsert_records(
            &z.id,
            std::slice::from_ref(&rec),
            &format!("drconsole {} {}", ctx.run_id, ctx.step_id),
        ))
        .await?;
        ctx.resource("created", "dns-record", &rec.name, "global", &ch.status);
        let id = ch.id.clone();
        if ch.status == "INSYNC" {
            // the change batch answered it is applied already: nothing to wait for
            return Ok(outs(&[("change_id", s(id)), ("fqdn", s(rec.name))]));
        }
        wait_state(
            ctx,
            "route53-change",
            &id,
            "global",
            std::time::Duration::from_secs(10),
            &["INSYNC"],
            &[],
            || async { Ok((cloud.route53.get_change(&id).await?.status, None)) },
        )
        .await?;
        Ok(outs(&[("change_id", s(id)), ("fqdn", s(rec.name))]))
    }
}

struct HealthCheckA;
static HEALTH_CHECK: ActionSpec = ActionSpec {
    name: "route53.health_check",
    summary: "Ensure a Route 53 health check (keyed by its caller reference) on an endpoint",
    params: &[
        P::req("name", K::Str, "the caller reference (its idempotency key)"),
        P::req("fqdn", K::Str, "the endpoint's domain name"),
        P::opt("type", K::Str, "HTTPS (default), HTTP, TCP"),
        P::opt("port", K::Port, "default 443"),
        P::opt("path", K::Str, "default /health"),
        P::opt("failure_threshold", K::Int, "default 3"),
    ],
    outputs: &[out("health_check_id", "the health check id"), out("status", "Healthy or Unhealthy")],
    iam: &["route53:ListHealthChecks", "route53:CreateHealthCheck", "route53:GetHealthCheckStatus"],
    expected_secs: 30,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for HealthCheckA {
    fn spec(&self) -> &'static ActionSpec {
        &HEALTH_CHECK
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "route53:CreateHealthCheck {} {}://{}:{}{}",
            p.text("name").unwrap_or_default(),
            p.text("type").unwrap_or_else(|_| "HTTPS".into()),
            p.text("fqdn").unwrap_or_default(),
            p.text("port").unwrap_or_else(|_| "443".into()),
            p.text("path").unwrap_or_else(|_| "/health".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let name = p.str("name")?;
        let hc = match c(cloud.route53.find_health_check(name)).await? {
            Some(h) => {
                ctx.resource("found", "health-check", &h.id, "global", "");
                h
            }
            None => {
                ctx.resource("creating", "health-check", name, "global", "");
                let cfg = HealthCheckConfig {
                    check_type: p.opt_str("type")?.unwrap_or("HTTPS").to_string(),
                    fqdn: p.str("fqdn")?.to_string(),
                    port: port_param(p, "port", 443)?,
                    path: Some(p.opt_str("path")?.unwrap_or("/health").to_string()),
                    failure_threshold: u32_param(p, "failure_threshold", 3)?,
                };
                let h = c(cloud.route53.create_health_check(name, &cfg)).await?;
                ctx.resource("created", "health-check", &h.id, "global", "");
                h
            }
        };
        let status = c(cloud.route53.health_check_status(&hc.id)).await?;
        Ok(outs(&[("health_check_id", s(hc.id)), ("status", s(status))]))
    }
}

struct Failover;
static FAILOVER: ActionSpec = ActionSpec {
    name: "route53.failover",
    summary: "Data-plane cut-over: check that a pre-created failover record pair now answers with its SECONDARY \
              (the PRIMARY's health check failed); changes nothing in Route 53",
    params: &[
        P::req("zone", K::Str, "the hosted zone name, e.g. example.com"),
        P::req("record", K::Str, "the record name, e.g. app.example.com"),
        P::opt("type", K::Str, "A (default), AAAA, CNAME..."),
        P::opt(
            "secondary_dns",
            K::Str,
            "what the SECONDARY record must point to (an alias DNS name or a value, e.g. the new ALB's dns_name)",
        ),
        P::opt("wait", K::Bool, "wait until the PRIMARY's health check fails (default true); false: check once"),
    ],
    outputs: &[
        out("fqdn", "the record name"),
        out("answer", "SECONDARY once traffic has moved"),
        out("secondary_target", "where the SECONDARY record points"),
        out("primary_health_check", "the PRIMARY's health check id"),
        out("primary_status", "the PRIMARY's health check status when the step ended"),
    ],
    iam: &["route53:ListHostedZonesByName", "route53:ListResourceRecordSets", "route53:GetHealthCheckStatus"],
    expected_secs: 120,
    effect: Effect::ReadOnly,
};

/// The failover pair of `name` and `rtype`: (PRIMARY, SECONDARY).
pub(crate) fn failover_pair(records: &[RecordSet], name: &str, rtype: &str) -> (Option<RecordSet>, Option<RecordSet>) {
    let of = |f: &str| {
        records.iter().find(|r| r.name == name && r.rtype == rtype && r.failover.as_deref() == Some(f)).cloned()
    };
    (of("PRIMARY"), of("SECONDARY"))
}

/// Where a record points: its alias target (without the trailing dot, lower case) or its values.
pub(crate) fn target_of(r: &RecordSet) -> String {
    match &r.alias {
        Some(a) => a.dns_name.trim_end_matches('.').to_ascii_lowercase(),
        None => r.values.join(","),
    }
}

#[async_trait]
impl Action for Failover {
    fn spec(&self) -> &'static ActionSpec {
        &FAILOVER
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "route53:ListResourceRecordSets {} {} in {}: the failover pair's SECONDARY{}; wait until the PRIMARY's \
             health check fails (route53:GetHealthCheckStatus); no change to Route 53",
            p.text("record").unwrap_or_default(),
            p.text("type").unwrap_or_else(|_| "A".into()),
            p.text("zone").unwrap_or_default(),
            p.text("secondary_dns").map(|d| format!(" → {d}")).unwrap_or_default(),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let zone_name = p.str("zone")?;
        let z = zone(cloud, zone_name).await?;
        let name = fqdn(p.str("record")?);
        let rtype = p.opt_str("type")?.unwrap_or("A").to_string();
        let records = c(cloud.route53.list_record_sets(&z.id, &name)).await?;
        let (primary, secondary) = failover_pair(&records, &name, &rtype);
        let (Some(primary), Some(secondary)) = (primary, secondary) else {
            return Err(ActionError::fatal(format!(
                "{name} {rtype} in {zone_name} has no failover record pair (a PRIMARY with a health check and a \
                 SECONDARY): the data-plane cut-over needs them made beforehand (preflight checks them); \
                 route53.upsert changes the record instead, which needs Route 53's control plane (us-east-1)"
            )));
        };
        let target = target_of(&secondary);
        if let Some(want) = p.opt_str("secondary_dns")? {
            let want = want.trim_end_matches('.').to_ascii_lowercase();
            if target != want {
                return Err(ActionError::fatal(format!(
                    "the SECONDARY record of {name} points to {target}, not to {want}: traffic would move to the \
                     wrong place; point it there beforehand (a Route 53 change) or cut over with route53.upsert"
                )));
            }
        }
        let Some(hc) = primary.health_check_id.clone() else {
            return Err(ActionError::fatal(format!(
                "the PRIMARY record of {name} has no health check: Route 53 cannot tell it is down, and drconsole \
                 cannot tell whether traffic moved"
            )));
        };
        if let Some(shc) = &secondary.health_check_id {
            let st = c(cloud.route53.health_check_status(shc)).await?;
            if st != "Healthy" {
                return Err(ActionError::fatal(format!(
                    "the SECONDARY record's health check {shc} is {st}: with both unhealthy Route 53 keeps answering \
                     with the PRIMARY"
                )));
            }
        }
        ctx.resource("found", "dns-record", &name, "global", &format!("failover pair, SECONDARY → {target}"));
        let wait = p.bool_or("wait", true)?;
        let mut interval = std::time::Duration::from_secs(10);
        loop {
            let status = c(cloud.route53.health_check_status(&hc)).await?;
            if status != "Healthy" {
                ctx.resource("state", "health-check", &hc, "global", &status);
                return Ok(outs(&[
                    ("fqdn", s(name)),
                    ("answer", s("SECONDARY")),
                    ("secondary_target", s(target)),
                    ("primary_health_check", s(hc)),
                    ("primary_status", s(status)),
                ]));
            }
            if !wait {
                return Err(ActionError::fatal(format!(
                    "the PRIMARY's health check {hc} is still Healthy: Route 53 still answers {name} with the PRIMARY"
                )));
            }
            ctx.progress(
                format!(
                    "the PRIMARY's health check {hc} is still Healthy: Route 53 answers {name} with the PRIMARY; \
                     waiting for it to fail (or fail the primary's endpoint on purpose)"
                ),
                None,
            );
            ctx.sleep(interval).await?;
            interval = (interval * 2).min(std::time::Duration::from_secs(60));
        }
    }
}
