//! Route 53: UPSERT a record (alias to the ALB, failover, weighted) and wait INSYNC; health checks.

use std::sync::Arc;

use async_trait::async_trait;

use super::kit::{c, fqdn, outs, port_param, s, u32_param, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{AliasTarget, Cloud, HealthCheckConfig, HostedZone, RecordSet};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Upsert), Arc::new(HealthCheckA)]
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
