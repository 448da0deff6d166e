//! Route 53: UPSERT a record (alias to the ALB, failover, weighted) and wait INSYNC; health checks; and the
//! data-plane cut-over (`route53.failover`): with a failover record pair and health checks made beforehand, the
//! cut-over changes nothing in Route 53 — it checks that Route 53 answers with the SECONDARY record, which it does
//! once the PRIMARY's health check fails. Route 53's change APIs are served from us-east-1; the health checkers and
//! DNS answers are not, so this cut-over works on the day us-east-1 is impaired. Route 53 ARC routing controls
//! (`route53.routing_control`) are the other data-plane cut-over: set On/Off at the first of the cluster's five
//! regional endpoints that answers, skipping those whose region's circuit is open.

use std::sync::Arc;

use async_trait::async_trait;

use super::kit::{c, fqdn, outs, port_param, s, u32_param, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{AliasTarget, Cloud, CloudError, ClusterEndpoint, HealthCheckConfig, HostedZone, RecordSet};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Upsert), Arc::new(HealthCheckA), Arc::new(Failover), Arc::new(RoutingControlA)]
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

struct RoutingControlA;
static ROUTING_CONTROL: ActionSpec = ActionSpec {
    name: "route53.routing_control",
    summary: "Data-plane cut-over with Route 53 ARC: set routing controls On/Off at the first of the cluster's \
              regional endpoints that answers (skipping regions known unreachable); needs no control plane",
    params: &[
        P::req(
            "cluster_endpoints",
            K::StrList,
            "the cluster's endpoints (DescribeCluster's ClusterEndpoints, kept in the runbook so the day needs no \
             control plane): URLs https://host-….route53-recovery-cluster.REGION.amazonaws.com/v1, or REGION=URL; \
             tried in this order",
        ),
        P::opt("on", K::StrList, "routing control ARNs to turn On (traffic to what they gate: the secondary's cell)"),
        P::opt("off", K::StrList, "routing control ARNs to turn Off (the primary's cell)"),
        P::opt(
            "override_safety_rules",
            K::StrList,
            "safety rule ARNs to override (a break-glass; leave empty so ARC's safety rules apply)",
        ),
    ],
    outputs: &[
        out("endpoint", "the region of the cluster endpoint that answered"),
        out("states", "every routing control named, `name=On|Off`, when the step ended"),
        out("changed", "true if the step changed a state, false if every control was already as asked"),
    ],
    iam: &["route53-recovery-cluster:GetRoutingControlState", "route53-recovery-cluster:UpdateRoutingControlStates"],
    expected_secs: 15,
    effect: Effect::Destructive,
};

/// The cluster endpoints of a `cluster_endpoints` parameter: `REGION=URL`, or a URL whose host names its region
/// (`….route53-recovery-cluster.REGION.amazonaws.com`).
pub(crate) fn cluster_endpoints(items: &[String]) -> Result<Vec<ClusterEndpoint>, String> {
    if items.is_empty() {
        return Err("`cluster_endpoints` is empty: give the cluster's endpoints (DescribeCluster)".into());
    }
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            if let Some((region, url)) = item.split_once('=')
                && !region.contains('/')
            {
                return Ok(ClusterEndpoint { region: region.trim().to_string(), url: url.trim().to_string() });
            }
            let host = item.split("://").nth(1).unwrap_or(item).split(['/', ':']).next().unwrap_or_default();
            let labels: Vec<&str> = host.split('.').collect();
            labels
                .iter()
                .position(|l| *l == "route53-recovery-cluster")
                .and_then(|i| labels.get(i + 1))
                .filter(|r| r.contains('-'))
                .map(|r| ClusterEndpoint { region: (*r).to_string(), url: item.to_string() })
                .ok_or_else(|| {
                    format!(
                        "cluster endpoint {item}: its region cannot be told from the host; write it REGION=URL \
                         (e.g. us-west-2={item})"
                    )
                })
        })
        .collect()
}

/// How a call to a cluster ended on every endpoint when none answered.
#[derive(Debug)]
pub(crate) enum ClusterFailure {
    /// An endpoint answered with an error another endpoint would give too (access denied, not found, a safety
    /// rule): the call is not tried elsewhere.
    Answered(ClusterEndpoint, CloudError),
    /// No endpoint answered: each one's region and why (skipped while its circuit is open, or the error).
    NoneAnswered(Vec<String>),
}

impl ClusterFailure {
    pub(crate) fn message(&self, what: &str) -> String {
        match self {
            Self::Answered(ep, e) => format!("{what}: the cluster endpoint in {} answered: {e}", ep.region),
            Self::NoneAnswered(tries) => {
                format!("{what}: no cluster endpoint answered ({})", tries.join("; "))
            }
        }
    }
}

/// Runs `call` at the cluster's endpoints in turn, from `first` (an index into `endpoints`), until one answers,
/// as AWS recommends for the data plane: an endpoint whose region's circuit is open is skipped without a call, one
/// that does not answer (unreachable, 5xx, throttled, timed out) is left for the next; an error that is an answer
/// (4xx) ends the tries. `tried(region, why)` is told of each endpoint left. Returns the endpoint that answered.
pub(crate) async fn on_cluster<T, F, Fut>(
    cloud: &Cloud,
    endpoints: &[ClusterEndpoint],
    first: usize,
    mut tried: impl FnMut(&str, &str),
    mut call: F,
) -> Result<(usize, T), ClusterFailure>
where
    F: FnMut(ClusterEndpoint) -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut tries = Vec::new();
    for k in 0..endpoints.len() {
        let i = (first + k) % endpoints.len();
        let ep = &endpoints[i];
        if let Some(open) = cloud.health.as_ref().and_then(|h| h.is_open(&ep.region)) {
            let why = format!(
                "{} skipped: unreachable since {} ({})",
                ep.region,
                open.since.strftime("%H:%M:%S UTC"),
                open.evidence
            );
            tried(&ep.region, &why);
            tries.push(why);
            continue;
        }
        match call(ep.clone()).await {
            Ok(v) => return Ok((i, v)),
            Err(e) if e.is_unreachable() || e.is_retryable() => {
                let why = format!("{}: {e}", ep.region);
                tried(&ep.region, &why);
                tries.push(why);
            }
            Err(e) => return Err(ClusterFailure::Answered(ep.clone(), e)),
        }
    }
    Err(ClusterFailure::NoneAnswered(tries))
}

/// Reads every routing control in `arns` at one endpoint.
async fn read_states(
    cloud: &Cloud,
    ep: &ClusterEndpoint,
    arns: &[String],
) -> Result<Vec<crate::cloud::RoutingControl>, CloudError> {
    let mut out = Vec::with_capacity(arns.len());
    for arn in arns {
        out.push(cloud.routing_controls.routing_control_state(ep, arn).await?);
    }
    Ok(out)
}

fn states_text(controls: &[crate::cloud::RoutingControl]) -> String {
    controls
        .iter()
        .map(|c| format!("{}={}", if c.name.is_empty() { c.arn.as_str() } else { c.name.as_str() }, c.state))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The wanted state of each routing control of a step: `on` then `off`, each `(arn, On|Off)`.
pub(crate) fn wanted_states(p: &Params) -> Result<Vec<(String, String)>, ActionError> {
    let on = p.str_list("on")?;
    let off = p.str_list("off")?;
    if on.is_empty() && off.is_empty() {
        return Err(ActionError::fatal("give the routing controls to set: `on`, `off` (ARNs)"));
    }
    if let Some(both) = on.iter().find(|a| off.contains(a)) {
        return Err(ActionError::fatal(format!("routing control {both} is in both `on` and `off`")));
    }
    Ok(on.into_iter().map(|a| (a, "On".to_string())).chain(off.into_iter().map(|a| (a, "Off".to_string()))).collect())
}

#[async_trait]
impl Action for RoutingControlA {
    fn spec(&self) -> &'static ActionSpec {
        &ROUTING_CONTROL
    }
    fn plan(&self, p: &Params) -> String {
        let list = |k: &str| p.str_list(k).map(|v| v.join(", ")).unwrap_or_default();
        let regions = p
            .str_list("cluster_endpoints")
            .ok()
            .and_then(|e| cluster_endpoints(&e).ok())
            .map(|e| e.iter().map(|e| e.region.clone()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let mut what = Vec::new();
        if !list("on").is_empty() {
            what.push(format!("On: {}", list("on")));
        }
        if !list("off").is_empty() {
            what.push(format!("Off: {}", list("off")));
        }
        format!(
            "route53-recovery-cluster:UpdateRoutingControlStates {} at the first cluster endpoint that answers ({regions}); \
             data plane, no control plane",
            what.join("; ")
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let endpoints = cluster_endpoints(&p.str_list("cluster_endpoints")?).map_err(ActionError::fatal)?;
        let wanted = wanted_states(p)?;
        if ctx.drill {
            return Err(ActionError::refused(
                "a drill never moves production traffic: route53.routing_control sets the routing controls \
                 production traffic follows; leave this step out of the drill (or mark it manual)",
            ));
        }
        let overrides = p.str_list("override_safety_rules")?;
        let arns: Vec<String> = wanted.iter().map(|(a, _)| a.clone()).collect();
        let progress = |_: &str, why: &str| ctx.progress(format!("cluster endpoint {why}; trying the next"), None);
        let (at, before) = on_cluster(cloud, &endpoints, 0, progress, |ep| {
            let arns = &arns;
            async move { read_states(cloud, &ep, arns).await }
        })
        .await
        .map_err(|f| ActionError::fatal(f.message("reading the routing controls")))?;
        let differ: Vec<(String, String)> = wanted
            .iter()
            .filter(|(arn, want)| before.iter().find(|c| &c.arn == arn).is_none_or(|c| &c.state != want))
            .cloned()
            .collect();
        if differ.is_empty() {
            for c in &before {
                ctx.resource("found", "routing-control", &c.arn, &endpoints[at].region, &c.state);
            }
            return Ok(outs(&[
                ("endpoint", s(endpoints[at].region.clone())),
                ("states", s(states_text(&before))),
                ("changed", s("false")),
            ]));
        }
        for (arn, want) in &differ {
            ctx.resource("changing", "routing-control", arn, &endpoints[at].region, want);
        }
        // setting a state is idempotent: an update that timed out at one endpoint and applied anyway is made again
        // at the next with the same result
        let (at, ()) = on_cluster(cloud, &endpoints, at, progress, |ep| {
            let (wanted, overrides) = (wanted.clone(), overrides.clone());
            async move { cloud.routing_controls.update_routing_control_states(&ep, &wanted, &overrides).await }
        })
        .await
        .map_err(|f| match &f {
            ClusterFailure::Answered(_, e) if e.is_refusal() => {
                ActionError::refused(f.message("setting the routing controls"))
            }
            _ => ActionError::fatal(f.message("setting the routing controls")),
        })?;
        let (at, after) = on_cluster(cloud, &endpoints, at, progress, |ep| {
            let arns = &arns;
            async move { read_states(cloud, &ep, arns).await }
        })
        .await
        .map_err(|f| ActionError::fatal(f.message("reading the routing controls back")))?;
        let wrong: Vec<String> = wanted
            .iter()
            .filter(|(arn, want)| after.iter().find(|c| &c.arn == arn).is_none_or(|c| &c.state != want))
            .map(|(arn, want)| format!("{arn} is not {want}"))
            .collect();
        if !wrong.is_empty() {
            return Err(ActionError::fatal(format!(
                "the cluster accepted the change but reads back otherwise: {}",
                wrong.join("; ")
            )));
        }
        for c in &after {
            ctx.resource("changed", "routing-control", &c.arn, &endpoints[at].region, &c.state);
        }
        Ok(outs(&[
            ("endpoint", s(endpoints[at].region.clone())),
            ("states", s(states_text(&after))),
            ("changed", s("true")),
        ]))
    }
}

#[cfg(test)]
mod routing_control_tests {
    use super::*;

    #[test]
    fn cluster_endpoints_tell_their_region_from_the_host_or_a_prefix() {
        let e = cluster_endpoints(&[
            "https://host-dsfc5i.route53-recovery-cluster.us-west-2.amazonaws.com/v1".into(),
            "eu-west-1=https://10.0.0.1:8443/v1".into(),
        ])
        .unwrap();
        assert_eq!(e[0].region, "us-west-2");
        assert_eq!(e[0].url, "https://host-dsfc5i.route53-recovery-cluster.us-west-2.amazonaws.com/v1");
        assert_eq!(e[1].region, "eu-west-1");
        assert_eq!(e[1].url, "https://10.0.0.1:8443/v1");
        let err = cluster_endpoints(&["https://arc.example.com/v1".into()]).unwrap_err();
        assert!(err.contains("REGION=URL"), "{err}");
        assert!(cluster_endpoints(&[]).is_err());
    }
}
