//! The secondary region's edge and compute: NAT gateway, load balancer, WAF, auto scaling group; and the ASG
//! roll-out of a new launch template version (primary-region restore).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::kit::{POLL, c, cerr, outs, port_param, region, s, token, u32_param, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, ErrorKind, Outputs, Params};
use crate::cloud::cleanup::{KIND_NAT_CLAIM, NAT_CLAIM_PREFIX};
use crate::cloud::{
    CODE_GROUP_DUPLICATE, Cloud, CreateAutoScalingGroup, CreateListener, CreateLoadBalancer, CreateNatGateway,
    CreateSecurityGroup, CreateTargetGroup, Filter, NamedSecurityGroup, NatGateway, Subnet, TAG_RUN_ID,
    UpdateAutoScalingGroup, Vpc,
};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(NatEnsure), Arc::new(ElbEnsure), Arc::new(WafAssociate), Arc::new(AsgEnsure), Arc::new(AsgRollout)]
}

async fn vpc_by_name(cloud: &Cloud, region: &str, name: &str) -> Result<(Vpc, Vec<Subnet>), ActionError> {
    let vpc = c(cloud.ec2.describe_vpcs(region, &Filter::tag("Name", name)))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ActionError::fatal(format!("no VPC tagged Name={name} in {region}")))?;
    let subnets = c(cloud.ec2.describe_subnets(region, &Filter::default())).await?;
    let subnets = subnets.into_iter().filter(|s| s.vpc_id == vpc.id).collect();
    Ok((vpc, subnets))
}

struct NatEnsure;
static NAT: ActionSpec = ActionSpec {
    name: "nat.ensure",
    summary: "Ensure a NAT gateway serves the private subnets of a VPC: reuse an available one in the VPC (any \
              owner: a shared VPC), else claim the zone's NAT gateway (a security group named for it in the VPC, \
              which only one run can create: the applications of an incident and consoles on other hosts wait for \
              the claimant's gateway and reuse it), an Elastic IP and a new one in a public subnet; wait until \
              available; give the private subnets' route tables a default route through it unless theirs already \
              uses a working NAT gateway",
    params: &[
        P::req("vpc", K::Str, "the VPC's Name tag"),
        P::req("name", K::Str, "the NAT gateway's Name tag when one is created (its idempotency key)"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("subnet", K::Str, "the public subnet id (default: the VPC's first public subnet)"),
        P::opt("per_az", K::Bool, "one NAT gateway per availability zone with private subnets (default false: one)"),
    ],
    outputs: &[
        out("nat_gateway_id", "the NAT gateway (of the first zone)"),
        out("nat_gateway_ids", "every NAT gateway serving the VPC's private subnets, comma-separated"),
        out("public_ip", "its Elastic IP (empty when a NAT gateway found in place is used)"),
        out("route_tables", "private route tables routed through a NAT gateway (changed or already so)"),
        out("routes_changed", "route tables whose default route this step set"),
    ],
    iam: &[
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeAddresses",
        "ec2:AllocateAddress",
        "ec2:DescribeNatGateways",
        "ec2:CreateNatGateway",
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:DescribeRouteTables",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:CreateTags",
    ],
    expected_secs: 180,
    effect: Effect::Mutating,
};

/// The tag on a claim holding the time it was made (RFC 3339), for the other runs to tell a live claim from one
/// whose claimant died.
pub const TAG_CLAIMED_AT: &str = "drconsole:claimed-at";

/// A claim on a zone's NAT gateway older than this, with no NAT gateway of the zone in sight, was abandoned (its
/// claimant crashed or was stopped before it made one): another run deletes it and claims the zone again. NAT
/// gateways become available within minutes; the margin covers clocks of other hosts that are a little off.
pub const CLAIM_STALE: Duration = Duration::from_secs(20 * 60);

/// The claim's name in the VPC: one per zone, whatever the application (the NAT gateway is the VPC's).
pub fn nat_claim_name(az: &str) -> String {
    format!("{NAT_CLAIM_PREFIX}{az}")
}

/// The NAT gateways of the region that a run may use: a drill's are another run's, removed by its cleanup, never
/// reused by a failover or another drill (a drill reuses a failover's standing ones, which its cleanup leaves
/// alone).
async fn usable_nats(ctx: &ActionCtx, cloud: &Cloud, region: &str) -> Result<Vec<NatGateway>, ActionError> {
    let mut all = c(cloud.ec2.describe_nat_gateways(region, &Filter::default())).await?;
    all.retain(|n| n.tags.get(crate::cloud::TAG_DRILL).is_none_or(|run| *run == ctx.run_id));
    Ok(all)
}

fn live(state: &str) -> bool {
    state == "available" || state == "pending"
}

/// Where one zone's NAT gateway is to be made, and how it is found.
struct ZoneNat<'a> {
    region: &'a str,
    vpc: &'a Vpc,
    subnets: &'a [Subnet],
    az: &'a str,
    /// One NAT gateway for the VPC: one in any zone of the VPC serves.
    any_zone: bool,
    /// The public subnet a new one goes to.
    subnet: String,
    /// Its Name tag.
    name: String,
}

impl ZoneNat<'_> {
    fn az_of(&self, subnet: &str) -> Option<&str> {
        self.subnets.iter().find(|s| s.id == subnet).map(|s| s.az.as_str())
    }

    /// A live NAT gateway of the VPC in this zone, else (one for the VPC) in any zone; available ones first.
    fn find(&self, nats: &[NatGateway]) -> Option<NatGateway> {
        let in_vpc: Vec<&NatGateway> =
            nats.iter().filter(|n| live(&n.state) && self.subnets.iter().any(|s| s.id == n.subnet_id)).collect();
        in_vpc
            .iter()
            .filter(|n| self.az_of(&n.subnet_id) == Some(self.az))
            .min_by_key(|n| (n.state != "available", n.id.clone()))
            .or_else(|| {
                if self.any_zone { in_vpc.iter().min_by_key(|n| (n.state != "available", n.id.clone())) } else { None }
            })
            .map(|n| (*n).clone())
    }

    /// An Elastic IP (found by its Name unless `fresh`, else allocated) and a NAT gateway with this client token.
    /// `fresh`: this attempt has just claimed the zone, so no earlier attempt of the run can have allocated one.
    async fn create(
        &self,
        ctx: &ActionCtx,
        cloud: &Cloud,
        client_token: String,
        fresh: bool,
    ) -> Result<(NatGateway, String), ActionError> {
        let region = self.region;
        let eip_name = format!("{}-eip", self.name);
        let found = if fresh {
            None
        } else {
            c(cloud.ec2.describe_addresses(region, &Filter::tag("Name", eip_name.clone()))).await?.into_iter().next()
        };
        let eip = match found {
            Some(a) => {
                ctx.resource("found", "elastic-ip", &a.allocation_id, region, &a.public_ip);
                a
            }
            None => {
                ctx.resource("creating", "elastic-ip", &eip_name, region, "");
                let mut tags = ctx.tags();
                tags.insert("Name".into(), eip_name.clone());
                let a = c(cloud.ec2.allocate_address(region, &tags)).await?;
                ctx.resource("created", "elastic-ip", &a.allocation_id, region, &a.public_ip);
                a
            }
        };
        ctx.resource("creating", "nat-gateway", &self.name, region, "");
        let mut tags = ctx.tags();
        tags.insert("Name".into(), self.name.clone());
        let req = CreateNatGateway {
            subnet_id: self.subnet.clone(),
            allocation_id: eip.allocation_id.clone(),
            client_token,
            tags,
        };
        let n = c(cloud.ec2.create_nat_gateway(region, &req)).await?;
        ctx.resource("created", "nat-gateway", &n.id, region, &n.state);
        Ok((n, eip.public_ip))
    }

    /// The zone's NAT gateway for a failover into a VPC other runs may be recovering into at the same moment, none
    /// being there when the step looked. Under the process's lock for the zone (the other applications of an
    /// incident wait here, then find the gateway), the run claims the zone: only the run whose claim EC2 created
    /// makes the NAT gateway; the others wait for it (bounded: a claim older than [`CLAIM_STALE`] with no gateway
    /// in sight is taken over) and reuse it. The claim stays (a rerun never looks at it: it finds the gateway);
    /// the run's cleanup removes it, and a claimant that cannot make its gateway withdraws it.
    /// Returns the gateway and its new Elastic IP (empty when found).
    async fn shared(
        &self,
        ctx: &ActionCtx,
        cloud: &Cloud,
        nats: &mut Vec<NatGateway>,
    ) -> Result<(NatGateway, String), ActionError> {
        let region = self.region;
        let lock =
            cloud.ec2.local_locks().map(|l| l.get(&format!("nat\u{0}{region}\u{0}{}\u{0}{}", self.vpc.id, self.az)));
        // held until this zone's gateway is there: the other applications of the process wait here, not on the claim
        let (_held, mut look) = match &lock {
            Some(l) => match l.try_lock() {
                Ok(g) => (Some(g), false),
                Err(_) => {
                    ctx.progress(format!("waiting for another application's NAT gateway in {}", self.az), None);
                    tokio::select! {
                        g = l.lock() => (Some(g), true),
                        () = ctx.cancel.cancelled() => return Err(ActionError::cancelled()),
                    }
                }
            },
            None => (None, false),
        };
        let claim_name = nat_claim_name(self.az);
        let mut polls = 0u32;
        // another run's claim is known: it is looked at (withdrawn? abandoned?) before this run claims again
        let mut taken = false;
        loop {
            // what another application of this process, or another run, made while this one waited
            if look {
                *nats = usable_nats(ctx, cloud, region).await?;
                if let Some(n) = self.find(nats) {
                    ctx.resource("found", "nat-gateway", &n.id, region, &n.state);
                    return Ok((n, String::new()));
                }
            }
            look = true;
            let mut seen = None;
            if taken {
                seen = c(cloud.ec2.describe_vpc_security_group(region, &self.vpc.id, &claim_name)).await?;
            }
            // (group, made by this attempt)
            let mut mine = None;
            if seen.is_none() {
                // the claim: EC2 creates one group of this name in the VPC, whoever asks first; the others are
                // refused
                match cloud.ec2.create_security_group(region, &self.claim(ctx, &claim_name)).await {
                    Ok(g) => {
                        ctx.resource("created", KIND_NAT_CLAIM, &g.id, region, &claim_name);
                        mine = Some((g, true));
                    }
                    Err(e) if e.code == CODE_GROUP_DUPLICATE => {
                        taken = true;
                        // none seen: withdrawn meanwhile, or not yet listed (EC2's reads follow its writes within
                        // seconds): looked at again after the wait below, and claimed again if it is gone
                        seen = c(cloud.ec2.describe_vpc_security_group(region, &self.vpc.id, &claim_name)).await?;
                    }
                    Err(e) => return Err(cerr(e)),
                }
            }
            if let Some(g) = seen {
                if g.tags.get(TAG_RUN_ID) == Some(&ctx.run_id) {
                    // this run's own, from an attempt that stopped before its gateway was made
                    ctx.resource("found", KIND_NAT_CLAIM, &g.id, region, &claim_name);
                    mine = Some((g, false));
                } else if self.abandoned(ctx, cloud, &g).await? {
                    taken = false;
                    continue;
                }
            }
            if let Some((g, fresh)) = mine {
                // one token per claim: a retry of this claimant gets the same gateway back from AWS, and a later
                // claim (after this one's gateway is gone) a new one
                let made = self.create(ctx, cloud, token(&[region, &self.vpc.id, self.az, &g.id]), fresh).await;
                let made = match made {
                    Ok((n, ip)) => wait_available(ctx, cloud, region, n).await.map(|n| (n, ip)),
                    Err(e) => Err(e),
                };
                if let Err(e) = &made
                    && !matches!(e.kind, ErrorKind::Failed { retryable: true })
                {
                    // no gateway comes of this claim (refused, failed, stopped): withdrawn, so the other runs need
                    // not wait for it to go stale; a retryable failure keeps it for the step's next attempt
                    if c(cloud.ec2.delete_security_group(region, &g.id)).await.is_ok() {
                        ctx.resource("state", KIND_NAT_CLAIM, &g.id, region, "withdrawn");
                    }
                }
                return made;
            }
            // the first looks soon (the claimant's gateway shows while pending), then at the usual pace
            ctx.sleep(if polls < 2 { Duration::from_secs(5) } else { POLL }).await?;
            polls += 1;
        }
    }

    /// The zone's claim by this run: named for the zone, tagged with the run and the time.
    fn claim(&self, ctx: &ActionCtx, name: &str) -> CreateSecurityGroup {
        let mut tags = ctx.tags();
        tags.insert(TAG_CLAIMED_AT.into(), ctx.clock.now().to_string());
        tags.insert("Name".into(), name.to_string());
        CreateSecurityGroup {
            vpc_id: self.vpc.id.clone(),
            name: name.to_string(),
            description: format!(
                "drconsole: run {} claims the NAT gateway of {} in {} (no rules; removed by the run's cleanup)",
                ctx.run_id, self.az, self.vpc.id
            ),
            tags,
        }
    }

    /// Another run's claim: `true` when it was abandoned and this run deleted it (claim again), `false` to wait for
    /// the claimant's gateway. A group of the claim's name without the claim's tags is not drconsole's: the step
    /// refuses to guess whose it is.
    async fn abandoned(&self, ctx: &ActionCtx, cloud: &Cloud, g: &NamedSecurityGroup) -> Result<bool, ActionError> {
        let holder = g.tags.get(TAG_RUN_ID);
        let at = g.tags.get(TAG_CLAIMED_AT).and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let (Some(holder), Some(at)) = (holder, at) else {
            return Err(ActionError::fatal(format!(
                "security group {} ({}) in VPC {} has the name of drconsole's claim on the NAT gateway of {} but \
                 lacks the claim's tags ({TAG_RUN_ID}, {TAG_CLAIMED_AT}): not knowing whose it is, no NAT gateway \
                 is made; delete or rename it",
                g.id, g.name, self.vpc.id, self.az
            )));
        };
        let age = Duration::try_from(ctx.clock.now().duration_since(at)).unwrap_or_default();
        if age > CLAIM_STALE {
            ctx.warn(format!(
                "run {holder} claimed the NAT gateway of {} in VPC {} {} ago and none is there: taking its claim {} \
                 over",
                self.az,
                self.vpc.id,
                crate::util::fmt_duration(age),
                g.id
            ));
            // by id: when another run took it over first, this deletes nothing, and its claim stands
            c(cloud.ec2.delete_security_group(self.region, &g.id)).await?;
            return Ok(true);
        }
        ctx.progress(
            format!(
                "waiting for run {holder}'s NAT gateway in {} (claimed {} ago: {})",
                self.az,
                crate::util::fmt_duration(age),
                g.id
            ),
            None,
        );
        Ok(false)
    }
}

/// Waits until the NAT gateway is available; returns it as last seen.
async fn wait_available(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    mut nat: NatGateway,
) -> Result<NatGateway, ActionError> {
    if nat.state != "available" {
        let id = nat.id.clone();
        wait_state(
            ctx,
            "nat-gateway",
            &id,
            region,
            POLL,
            &["available"],
            &["failed", "deleted", "deleting"],
            || async {
                let n = cloud.ec2.poll_nat_gateway(region, &id).await?;
                Ok((n.map_or_else(|| "missing".into(), |n| n.state), None))
            },
        )
        .await?;
        nat.state = "available".into();
    }
    Ok(nat)
}

#[async_trait]
impl Action for NatEnsure {
    fn spec(&self) -> &'static ActionSpec {
        &NAT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "reuse an available NAT gateway of VPC {} ({}), else claim the zone (ec2:CreateSecurityGroup {}…, which one run wins; the others wait for its gateway) and ec2:AllocateAddress + ec2:CreateNatGateway {} in a public subnet; wait available; route 0.0.0.0/0 of the private subnets' route tables to it unless already through a working NAT gateway",
            p.text("vpc").unwrap_or_default(),
            p.text("region").unwrap_or_else(|_| "secondary".into()),
            NAT_CLAIM_PREFIX,
            p.text("name").unwrap_or_default(),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let name = p.str("name")?;
        let per_az = p.bool_or("per_az", false)?;
        let (vpc, subnets) = vpc_by_name(cloud, &region, p.str("vpc")?).await?;
        let public: Vec<&Subnet> = subnets.iter().filter(|s| s.public).collect();
        let private: Vec<&Subnet> = subnets.iter().filter(|s| !s.public).collect();
        let az_of = |subnet: &str| subnets.iter().find(|s| s.id == subnet).map(|s| s.az.clone());
        // every NAT gateway of the region: the VPC's live ones are reused, and a route through any available one
        // is working and left alone
        let mut all_nats = usable_nats(ctx, cloud, &region).await?;
        // the zones to serve: each zone with private subnets (per_az), or one for the VPC: the first zone with a
        // public subnet, whatever the order EC2 lists them in and whichever subnet a runbook names, so that every
        // run into the VPC claims the same zone and waits on the same lock (a run naming its `subnet` in another
        // zone would otherwise claim that zone and make a second gateway at the same moment)
        let first_public = public.iter().min_by(|a, b| (&a.az, &a.id).cmp(&(&b.az, &b.id)));
        let chosen = match p.opt_str("subnet")? {
            Some(s) => Some(s.to_string()),
            None => first_public.map(|s| s.id.clone()),
        };
        let mut zones: Vec<String> = if per_az {
            let mut z: Vec<String> = private.iter().map(|s| s.az.clone()).collect();
            z.sort();
            z.dedup();
            z
        } else {
            first_public.map(|s| s.az.clone()).or_else(|| chosen.as_deref().and_then(az_of)).into_iter().collect()
        };
        if zones.is_empty() {
            zones.extend(chosen.as_deref().and_then(az_of));
        }
        let mut nat_for_zone: Vec<(String, NatGateway)> = Vec::new();
        let mut public_ip = String::new();
        for az in &zones {
            let subnet = match (&chosen, per_az) {
                (Some(s), false) => s.clone(),
                _ => match public.iter().find(|s| &s.az == az) {
                    Some(s) => s.id.clone(),
                    None => String::new(),
                },
            };
            let zone = ZoneNat {
                region: &region,
                vpc: &vpc,
                subnets: &subnets,
                az,
                any_zone: !per_az,
                name: if per_az {
                    format!("{name}-{}", az.trim_start_matches(region.as_str()))
                } else {
                    name.to_string()
                },
                subnet,
            };
            let (nat, ip) = match zone.find(&all_nats) {
                Some(n) => {
                    ctx.resource("found", "nat-gateway", &n.id, &region, &n.state);
                    (n, String::new())
                }
                None if zone.subnet.is_empty() => {
                    return Err(ActionError::fatal(format!(
                        "VPC {} has no public subnet in {az} for a NAT gateway; its subnets: {}",
                        vpc.id,
                        subnets
                            .iter()
                            .map(|s| format!("{} ({}, {})", s.id, s.az, if s.public { "public" } else { "private" }))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                None => {
                    if ctx.drill {
                        // a drill's NAT gateway is its own (no other run reuses it): no claim, its run's token
                        zone.create(ctx, cloud, token(&[&region, &zone.name, &ctx.run_id]), false).await?
                    } else {
                        zone.shared(ctx, cloud, &mut all_nats).await?
                    }
                }
            };
            if !ip.is_empty() {
                public_ip = ip;
            }
            let nat = wait_available(ctx, cloud, &region, nat).await?;
            nat_for_zone.push((az.clone(), nat));
        }
        let Some((_, first)) = nat_for_zone.first().cloned() else {
            return Err(ActionError::fatal(format!("VPC {} has no subnets in {region}", vpc.id)));
        };
        // only the route tables explicitly associated with the VPC's private subnets (never the main table that no
        // subnet uses, never a public one); a default route through a working NAT gateway is left as it is
        let working: Vec<&str> = all_nats
            .iter()
            .filter(|n| n.state == "available")
            .map(|n| n.id.as_str())
            .chain(nat_for_zone.iter().map(|(_, n)| n.id.as_str()))
            .collect();
        let tables = c(cloud.ec2.describe_route_tables(&region, &Filter::default())).await?;
        let (mut routed, mut changed) = (Vec::new(), Vec::new());
        for t in tables.into_iter().filter(|t| t.vpc_id == vpc.id) {
            let served: Vec<&&Subnet> = private.iter().filter(|s| t.subnet_ids.contains(&s.id)).collect();
            if served.is_empty() {
                continue;
            }
            let default = t.routes.iter().find(|r| r.destination == "0.0.0.0/0");
            if default.is_some_and(|r| r.gateway_id.as_deref().is_some_and(|g| g.starts_with("igw-"))) {
                continue;
            }
            let current = default.and_then(|r| r.nat_gateway_id.clone());
            // a NAT gateway made since this step looked (another run's, in a zone this one did not claim) is asked
            // about: when it is available, the route through it is working too, and never flipped to another
            let made_since = match current.as_deref() {
                Some(cur) if !working.contains(&cur) && !all_nats.iter().any(|n| n.id == cur) => {
                    c(cloud.ec2.poll_nat_gateway(&region, cur)).await?.filter(|n| {
                        n.state == "available"
                            && n.tags.get(crate::cloud::TAG_DRILL).is_none_or(|run| *run == ctx.run_id)
                    })
                }
                _ => None,
            };
            if let Some(cur) = current.as_deref().filter(|c| working.contains(c) || made_since.is_some()) {
                ctx.resource("found", "route", &format!("{} 0.0.0.0/0", t.id), &region, cur);
                routed.push(t.id);
                continue;
            }
            let az = served.first().map(|s| s.az.clone()).unwrap_or_default();
            let target = nat_for_zone.iter().find(|(z, _)| *z == az).map_or(&first, |(_, n)| n);
            // what it pointed to before, for the cleanup to put back: `none` (no default route), a NAT gateway or
            // gateway id, `?` (a target drconsole does not model)
            let was = match default {
                None => "none".to_string(),
                Some(r) => r.nat_gateway_id.clone().or_else(|| r.gateway_id.clone()).unwrap_or_else(|| "?".into()),
            };
            c(cloud.ec2.set_route_to_nat(&region, &t.id, "0.0.0.0/0", &target.id)).await?;
            let detail = format!("{}{}{was})", target.id, crate::cloud::cleanup::ROUTE_WAS);
            ctx.resource("changed", "route", &format!("{} 0.0.0.0/0", t.id), &region, &detail);
            routed.push(t.id.clone());
            changed.push(t.id);
        }
        let ids: Vec<&str> = nat_for_zone.iter().map(|(_, n)| n.id.as_str()).collect();
        Ok(outs(&[
            ("nat_gateway_id", s(first.id.clone())),
            ("nat_gateway_ids", s(ids.join(","))),
            ("public_ip", s(public_ip)),
            ("route_tables", s(routed.join(","))),
            ("routes_changed", s(changed.join(","))),
        ]))
    }
}

struct ElbEnsure;
static ELB: ActionSpec = ActionSpec {
    name: "elb.ensure",
    summary: "Ensure an application load balancer in the VPC's public subnets, a target group and a listener; wait until active",
    params: &[
        P::req("name", K::Str, "the load balancer's name"),
        P::req("vpc", K::Str, "the VPC's Name tag"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("target_group", K::Str, "the target group's name (default <name>-tg)"),
        P::opt("port", K::Port, "listener port (default 443)"),
        P::opt("protocol", K::Str, "listener protocol (default HTTPS)"),
        P::opt("certificate_arn", K::Str, "ACM certificate for HTTPS"),
        P::opt("target_port", K::Port, "target port (default 80)"),
        P::opt("health_check_path", K::Str, "default /health"),
        P::opt("security_groups", K::StrList, "security group ids"),
    ],
    outputs: &[
        out("arn", "the load balancer ARN"),
        out("dns_name", "its DNS name"),
        out("zone_id", "its canonical hosted zone id (for Route 53 aliases)"),
        out("target_group_arn", "the target group ARN"),
    ],
    iam: &[
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:AddTags",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
    ],
    expected_secs: 240,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for ElbEnsure {
    fn spec(&self) -> &'static ActionSpec {
        &ELB
    }
    fn plan(&self, p: &Params) -> String {
        let name = p.text("name").unwrap_or_default();
        format!(
            "elbv2:CreateLoadBalancer {name} (internet-facing, public subnets of {}) + CreateTargetGroup {} + CreateListener {}:{}; wait active",
            p.text("vpc").unwrap_or_default(),
            p.text("target_group").unwrap_or_else(|_| format!("{name}-tg")),
            p.text("protocol").unwrap_or_else(|_| "HTTPS".into()),
            p.text("port").unwrap_or_else(|_| "443".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let name = p.str("name")?;
        let (vpc, subnets) = vpc_by_name(cloud, &region, p.str("vpc")?).await?;
        let found_lb = c(cloud.elb.find_load_balancer(&region, name)).await?;
        let lb_created = found_lb.is_none();
        let lb = match found_lb {
            Some(l) => {
                ctx.resource("found", "load-balancer", name, &region, &l.state);
                l
            }
            None => {
                ctx.resource("creating", "load-balancer", name, &region, "");
                let req = CreateLoadBalancer {
                    name: name.into(),
                    subnets: subnets.iter().filter(|s| s.public).map(|s| s.id.clone()).collect(),
                    security_groups: p.str_list("security_groups")?,
                    scheme: "internet-facing".into(),
                    tags: ctx.tags(),
                };
                let l = c(cloud.elb.create_load_balancer(&region, &req)).await?;
                ctx.resource("created", "load-balancer", name, &region, &l.state);
                l
            }
        };
        let tg_name = p.opt_str("target_group")?.map_or_else(|| format!("{name}-tg"), str::to_string);
        let port = port_param(p, "port", 443)?;
        // a load balancer this step just created has no listener yet: nothing to look up
        let listeners = if lb_created { Vec::new() } else { c(cloud.elb.describe_listeners(&region, &lb.arn)).await? };
        let listener = listeners.iter().find(|l| l.port == port);
        // the listener already forwards to the target group (its ARN names it: `targetgroup/NAME/ID`): found, with
        // no lookup of the name
        let forwarded = listener
            .map(|l| l.target_group_arn.clone())
            .filter(|arn| arn.split('/').nth(1) == Some(tg_name.as_str()) && arn.contains(":targetgroup/"));
        let tg_arn = match forwarded {
            Some(arn) => {
                ctx.resource("found", "target-group", &tg_name, &region, "");
                arn
            }
            // the target group is made after the load balancer: when this step just created the load balancer, no
            // attempt got as far as the target group, and a name taken anyway (the load balancer was deleted
            // since) makes CreateTargetGroup return what exists (DuplicateTargetGroupName)
            None => {
                match if lb_created { None } else { c(cloud.elb.describe_target_group(&region, &tg_name)).await? } {
                    Some(t) => {
                        ctx.resource("found", "target-group", &tg_name, &region, "");
                        t.arn
                    }
                    None => {
                        ctx.resource("creating", "target-group", &tg_name, &region, "");
                        let req = CreateTargetGroup {
                            name: tg_name.clone(),
                            protocol: "HTTP".into(),
                            port: port_param(p, "target_port", 80)?,
                            vpc_id: vpc.id.clone(),
                            health_check_path: p.opt_str("health_check_path")?.unwrap_or("/health").into(),
                            tags: ctx.tags(),
                        };
                        let t = c(cloud.elb.create_target_group(&region, &req)).await?;
                        let mine = t.tags.get(crate::cloud::TAG_RUN_ID) == Some(&ctx.run_id);
                        ctx.resource(if mine { "created" } else { "found" }, "target-group", &tg_name, &region, "");
                        t.arn
                    }
                }
            }
        };
        if listener.is_some() {
            ctx.resource("found", "listener", &format!("{name}:{port}"), &region, "");
        } else {
            ctx.resource("creating", "listener", &format!("{name}:{port}"), &region, "");
            let req = CreateListener {
                load_balancer_arn: lb.arn.clone(),
                protocol: p.opt_str("protocol")?.unwrap_or("HTTPS").into(),
                port,
                target_group_arn: tg_arn.clone(),
                certificate_arn: p.opt_str("certificate_arn")?.map(str::to_string),
            };
            c(cloud.elb.create_listener(&region, &req)).await?;
            ctx.resource("created", "listener", &format!("{name}:{port}"), &region, "");
        }
        if lb.state != "active" {
            wait_state(ctx, "load-balancer", name, &region, POLL, &["active"], &["failed"], || async {
                let state = cloud.elb.load_balancer_state(&region, name).await?;
                Ok((state.unwrap_or_else(|| "missing".into()), None))
            })
            .await?;
        }
        Ok(outs(&[
            ("arn", s(lb.arn)),
            ("dns_name", s(lb.dns_name)),
            ("zone_id", s(lb.canonical_hosted_zone_id)),
            ("target_group_arn", s(tg_arn)),
        ]))
    }
}

struct WafAssociate;
static WAF: ActionSpec = ActionSpec {
    name: "waf.associate",
    summary: "Ensure a REGIONAL WAF web ACL is associated with a resource (the load balancer)",
    params: &[
        P::req("web_acl", K::Str, "the web ACL's name"),
        P::req("resource", K::Str, "the resource ARN (ALB)"),
        P::opt("region", K::Region, "default: secondary"),
    ],
    outputs: &[out("web_acl_arn", "the web ACL ARN")],
    iam: &["wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "elasticloadbalancing:SetWebACL"],
    expected_secs: 30,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for WafAssociate {
    fn spec(&self) -> &'static ActionSpec {
        &WAF
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "wafv2:AssociateWebACL {} (REGIONAL) → {}",
            p.text("web_acl").unwrap_or_default(),
            p.text("resource").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let (name, res) = (p.str("web_acl")?, p.str("resource")?);
        // what guards the resource first: a web ACL of that name (names are unique per region in the REGIONAL
        // scope) is the answer, with no lookup of the name
        let cur = c(cloud.waf.get_web_acl_for_resource(&region, res)).await?;
        if let Some(a) = cur.as_ref().filter(|a| a.name == name) {
            ctx.resource("found", "waf-association", name, &region, "associated");
            return Ok(outs(&[("web_acl_arn", s(a.arn.clone()))]));
        }
        let acl = c(cloud.waf.get_web_acl(&region, name))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("no REGIONAL web ACL named {name} in {region}")))?;
        match cur {
            Some(cur) if cur.arn == acl.arn => ctx.resource("found", "waf-association", name, &region, "associated"),
            cur => {
                if let Some(other) = cur {
                    ctx.progress(format!("replacing web ACL {} on the resource", other.name), None);
                }
                ctx.resource("creating", "waf-association", name, &region, "");
                c(cloud.waf.associate_web_acl(&region, &acl.arn, res)).await?;
                ctx.resource("created", "waf-association", name, &region, "associated");
            }
        }
        Ok(outs(&[("web_acl_arn", s(acl.arn))]))
    }
}

struct AsgEnsure;
static ASG: ActionSpec = ActionSpec {
    name: "asg.ensure",
    summary: "Ensure an auto scaling group from a launch template (optionally with a new AMI) in the VPC's private \
              subnets, with min/max/desired and the target group; wait for InService instances and healthy targets",
    params: &[
        P::req("name", K::Str, "the group's name"),
        P::req("launch_template", K::Str, "the launch template name"),
        P::req("vpc", K::Str, "the VPC's Name tag"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("image", K::Str, "an AMI to put into the launch template first"),
        P::opt("min", K::Int, "default 2"),
        P::opt("max", K::Int, "default 6"),
        P::opt("desired", K::Int, "default: min"),
        P::opt("target_group_arn", K::Str, "target group to attach"),
        P::opt("wait_healthy", K::Bool, "wait until the targets are healthy (default true)"),
    ],
    outputs: &[
        out("instances", "instances in service"),
        out("instance_ids", "their ids, comma-separated"),
        out("arn", "the group's ARN"),
    ],
    iam: &[
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling:CreateOrUpdateTags",
        "ec2:DescribeLaunchTemplates",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
        "ec2:RunInstances",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "iam:PassRole",
        "elasticloadbalancing:DescribeTargetHealth",
    ],
    expected_secs: 360,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for AsgEnsure {
    fn spec(&self) -> &'static ActionSpec {
        &ASG
    }
    fn plan(&self, p: &Params) -> String {
        let min = p.text("min").unwrap_or_else(|_| "2".into());
        format!(
            "{}autoscaling:CreateAutoScalingGroup {} from {} (min {min}, max {}, desired {}) in private subnets of {}; attach {}; wait InService + healthy",
            p.text("image")
                .map(|i| format!("launch template {} ← {i}; ", p.text("launch_template").unwrap_or_default()))
                .unwrap_or_default(),
            p.text("name").unwrap_or_default(),
            p.text("launch_template").unwrap_or_default(),
            p.text("max").unwrap_or_else(|_| "6".into()),
            p.text("desired").unwrap_or_else(|_| min.clone()),
            p.text("vpc").unwrap_or_default(),
            p.text("target_group_arn").unwrap_or_else(|_| "no target group".into()),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let (name, lt) = (p.str("name")?, p.str("launch_template")?);
        let min = u32_param(p, "min", 2)?;
        let max = u32_param(p, "max", 6)?.max(min);
        let desired = u32_param(p, "desired", min)?.clamp(min, max);
        // a drill leaves the shared launch template's default version alone (customers' groups launch it): its
        // group names the version it added instead
        let version = match p.opt_str("image")? {
            Some(image) => Some(super::ec2::ensure_lt_image(ctx, cloud, &region, lt, image, !ctx.drill).await?),
            None => None,
        };
        let lt_version = match version {
            Some(v) if ctx.drill => v.to_string(),
            _ => "$Default".to_string(),
        };
        let tg = p.opt_str("target_group_arn")?.map(str::to_string);
        // the group as just described, when nothing changed it since: the wait below starts from it
        let mut known = None;
        match c(cloud.asg.describe_auto_scaling_group(&region, name)).await? {
            None => {
                let (_, subnets) = vpc_by_name(cloud, &region, p.str("vpc")?).await?;
                ctx.resource("creating", "auto-scaling-group", name, &region, "");
                let req = CreateAutoScalingGroup {
                    name: name.into(),
                    launch_template_name: lt.into(),
                    launch_template_version: lt_version,
                    min,
                    max,
                    desired,
                    subnets: subnets.iter().filter(|s| !s.public).map(|s| s.id.clone()).collect(),
                    target_group_arns: tg.iter().cloned().collect(),
                    tags: ctx.tags(),
                };
                c(cloud.asg.create_auto_scaling_group(&region, &req)).await?;
                ctx.resource("created", "auto-scaling-group", name, &region, &format!("desired {desired}"));
            }
            Some(g) => {
                ctx.resource("found", "auto-scaling-group", name, &region, &format!("desired {}", g.desired));
                let resize = g.min != min || g.max != max || g.desired < desired;
                let attach = tg.as_ref().is_some_and(|t| !g.target_group_arns.contains(t));
                if resize {
                    let req = UpdateAutoScalingGroup {
                        name: name.into(),
                        launch_template_version: None,
                        min: Some(min),
                        max: Some(max),
                        desired: Some(desired.max(g.desired)),
                    };
                    c(cloud.asg.update_auto_scaling_group(&region, &req)).await?;
                    ctx.resource(
                        "changed",
                        "auto-scaling-group",
                        name,
                        &region,
                        &format!("min {min} max {max} desired {desired}"),
                    );
                }
                if let Some(t) = tg.as_ref().filter(|_| attach) {
                    c(cloud.asg.attach_target_groups(&region, name, std::slice::from_ref(t))).await?;
                    ctx.resource("changed", "auto-scaling-group", name, &region, "target group attached");
                }
                if !resize && !attach {
                    known = Some(g);
                }
            }
        }
        // instances in service n/m
        let mut last = (usize::MAX, 0);
        let mut arn = String::new();
        let ids = loop {
            let g = match known.take() {
                Some(g) => g,
                None => c(cloud.asg.describe_auto_scaling_group(&region, name))
                    .await?
                    .ok_or_else(|| ActionError::fatal(format!("auto scaling group {name} disappeared")))?,
            };
            arn.clone_from(&g.arn);
            let ins: Vec<String> =
                g.instances.iter().filter(|i| i.lifecycle_state == "InService").map(|i| i.id.clone()).collect();
            let want = g.desired as usize;
            if (ins.len(), want) != last {
                ctx.progress(
                    format!("instances in service {}/{want}", ins.len()),
                    Some(100.0 * ins.len() as f64 / want.max(1) as f64),
                );
                for i in &g.instances {
                    ctx.resource("state", "ec2-instance", &i.id, &region, &i.lifecycle_state);
                }
                last = (ins.len(), want);
            }
            if ins.len() >= want {
                break ins;
            }
            ctx.sleep(POLL).await?;
        };
        if let Some(t) = &tg
            && p.bool_or("wait_healthy", true)?
        {
            wait_targets(ctx, cloud, &region, t, ids.len()).await?;
        }
        Ok(outs(&[("instances", Value::from(ids.len())), ("instance_ids", s(ids.join(","))), ("arn", s(arn))]))
    }
}

/// Waits until at least `want` targets are healthy, reporting healthy n/m.
pub(crate) async fn wait_targets(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    tg: &str,
    want: usize,
) -> Result<usize, ActionError> {
    let mut last = usize::MAX;
    loop {
        match cloud.elb.describe_target_health(region, tg).await {
            Ok(th) => {
                let healthy = th.iter().filter(|t| t.state == "healthy").count();
                if healthy != last {
                    ctx.progress(
                        format!("healthy targets {healthy}/{}", want.max(th.len())),
                        Some(100.0 * healthy as f64 / want.max(1) as f64),
                    );
                    ctx.resource("state", "target-group", tg, region, &format!("{healthy} healthy of {}", th.len()));
                    last = healthy;
                }
                if healthy >= want && want > 0 {
                    return Ok(healthy);
                }
            }
            Err(e) if e.is_retryable() => ctx.progress_error(format!("waiting for target health: {e}"), &e),
            Err(e) => return Err(super::kit::cerr(e)),
        }
        ctx.sleep(POLL).await?;
    }
}

struct AsgRollout;
static ROLLOUT: ActionSpec = ActionSpec {
    name: "asg.rollout",
    summary: "Roll the auto scaling group's instances onto its launch template's default version (instance refresh); \
              nothing to do when every instance is on it",
    params: &[
        P::req("asg", K::Str, "the group's name"),
        P::opt("region", K::Region, "default: primary"),
        P::opt("min_healthy_pct", K::Int, "minimum healthy percentage during the refresh (default 90)"),
        P::opt("launch_template", K::Str, "the launch template the group must use (refuses another)"),
    ],
    outputs: &[
        out("refresh_id", "the instance refresh (empty when nothing had to change)"),
        out("version", "the launch template version now running"),
    ],
    iam: &[
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:StartInstanceRefresh",
        "autoscaling:DescribeInstanceRefreshes",
        "ec2:DescribeLaunchTemplates",
    ],
    expected_secs: 900,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for AsgRollout {
    fn spec(&self) -> &'static ActionSpec {
        &ROLLOUT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "autoscaling:StartInstanceRefresh {} (min healthy {}%) unless every instance runs the default version; wait Successful",
            p.text("asg").unwrap_or_default(),
            p.text("min_healthy_pct").unwrap_or_else(|_| "90".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = p.opt_str("region")?.map_or_else(|| ctx.target.primary.clone(), str::to_string);
        let name = p.str("asg")?;
        let g = c(cloud.asg.describe_auto_scaling_group(&region, name))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("auto scaling group {name} not found in {region}")))?;
        if let Some(want) = p.opt_str("launch_template")?
            && want != g.launch_template_name
        {
            return Err(ActionError::fatal(format!(
                "auto scaling group {name} uses launch template {}, not {want}",
                g.launch_template_name
            )));
        }
        let lt = c(cloud.ec2.describe_launch_template(&region, &g.launch_template_name))
            .await?
            .ok_or_else(|| ActionError::fatal(format!("launch template {} not found", g.launch_template_name)))?;
        let v = lt.default_version;
        let refreshes = c(cloud.asg.describe_instance_refreshes(&region, name)).await?;
        let running = refreshes.iter().find(|r| r.status == "Pending" || r.status == "InProgress");
        let id = if let Some(r) = running {
            ctx.resource("found", "instance-refresh", &r.id, &region, &r.status);
            r.id.clone()
        } else if g.instances.iter().all(|i| i.launch_template_version == v) {
            ctx.resource("found", "auto-scaling-group", name, &region, &format!("all instances on version {v}"));
            return Ok(outs(&[("refresh_id", s("")), ("version", Value::from(v))]));
        } else {
            let pct = u8::try_from(u32_param(p, "min_healthy_pct", 90)?.min(100)).unwrap_or(90);
            ctx.resource("creating", "instance-refresh", name, &region, "");
            let id = c(cloud.asg.start_instance_refresh(&region, name, pct)).await?;
            ctx.resource("created", "instance-refresh", &id, &region, "Pending");
            id
        };
        wait_state(
            ctx,
            "instance-refresh",
            &id,
            &region,
            POLL,
            &["Successful"],
            &["Failed", "Cancelled", "RollbackSuccessful"],
            || async {
                let r = cloud.asg.describe_instance_refreshes(&region, name).await?;
                Ok(r.into_iter()
                    .find(|r| r.id == id)
                    .map_or_else(|| ("missing".into(), None), |r| (r.status, Some(r.percent))))
            },
        )
        .await?;
        Ok(outs(&[("refresh_id", s(id)), ("version", Value::from(v))]))
    }
}
