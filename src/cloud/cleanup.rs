//! The port's deletes, for `drconsole cleanup`: find what carries a tag (a sweep, as the Resource Groups Tagging
//! API gives it), describe one resource by kind and id, start deleting it. One trait for every service, keyed by
//! the resource kinds the actions' `resource` records use (`nat-gateway`, `rds-instance`...), so the cleanup
//! works from the journal as written.
//!
//! Conventions: `delete` is idempotent (a resource already deleting or gone is `Ok`); `describe` is `Ok(None)`
//! once the resource is gone (or in a final deleted state: `deleted`, `terminated`); Route 53 kinds take the
//! region `""`. Deletes go through the same guards as every change (account, a drill's read-only region).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CloudResult, Tags};

/// Resource kinds the cleanup knows, in the order it removes them (what uses a resource goes before it).
pub const DELETE_ORDER: &[&str] = &[
    KIND_ASG,
    KIND_EC2_INSTANCE,
    KIND_LOAD_BALANCER,
    KIND_TARGET_GROUP,
    KIND_NAT,
    KIND_EIP,
    KIND_VOLUME,
    KIND_DB,
    KIND_DB_SNAPSHOT,
    KIND_AMI,
    KIND_EBS_SNAPSHOT,
    KIND_HEALTH_CHECK,
    KIND_DNS_RECORD,
    KIND_LT_VERSION,
    KIND_TABLE,
    KIND_NAT_CLAIM,
];

pub const KIND_ASG: &str = "auto-scaling-group";
pub const KIND_EC2_INSTANCE: &str = "ec2-instance";
pub const KIND_LOAD_BALANCER: &str = "load-balancer";
pub const KIND_TARGET_GROUP: &str = "target-group";
pub const KIND_NAT: &str = "nat-gateway";
pub const KIND_EIP: &str = "elastic-ip";
pub const KIND_VOLUME: &str = "ebs-volume";
pub const KIND_DB: &str = "rds-instance";
pub const KIND_DB_SNAPSHOT: &str = "rds-snapshot";
pub const KIND_AMI: &str = "ami";
pub const KIND_EBS_SNAPSHOT: &str = "ebs-snapshot";
pub const KIND_HEALTH_CHECK: &str = "health-check";
pub const KIND_DNS_RECORD: &str = "dns-record";
pub const KIND_LT_VERSION: &str = "launch-template-version";
pub const KIND_TABLE: &str = "dynamodb-table";
/// `nat.ensure`'s claim on a zone's NAT gateway of a shared VPC: a security group (id `sg-…`) with no rules, withdrawn
/// by the run once the gateway is available; one left by a crash is removed by the cleanup.
pub const KIND_NAT_CLAIM: &str = "nat-claim";
/// The name of a NAT claim is this and the zone (`drconsole-nat-claim-us-west-2a`), unique in its VPC.
pub const NAT_CLAIM_PREFIX: &str = "drconsole-nat-claim-";

/// A route a run set (`nat.ensure`'s default routes): the id is `<route table> <destination>`. Not deleted like the
/// others: the cleanup puts it back as the run found it (before the NAT gateway it points to is deleted).
pub const KIND_ROUTE: &str = "route";

/// In the state of a route's `changed` record: `<new target> (was <previous>)`, the previous `none` (no route),
/// a NAT gateway or gateway id, or `?` (a target drconsole does not model).
pub const ROUTE_WAS: &str = " (was ";

/// A route a run changed, from its `changed` record: what it set and what was there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    pub table: String,
    pub destination: String,
    pub set_to: String,
    /// `None`: there was no such route; `Some("?")`: a target drconsole cannot put back.
    pub previous: Option<String>,
}

impl RouteChange {
    /// Reads a route's `changed` record (id `<table> <destination>`, state `<new> (was <previous>)`); `None` for
    /// a record without the previous target (journals before it was recorded).
    pub fn parse(id: &str, state: &str) -> Option<Self> {
        let (table, destination) = id.split_once(' ')?;
        let (set_to, was) = state.split_once(ROUTE_WAS)?;
        let was = was.strip_suffix(')')?;
        Some(Self {
            table: table.into(),
            destination: destination.into(),
            set_to: set_to.into(),
            previous: (was != "none").then(|| was.to_string()),
        })
    }
}

/// Kinds AWS cannot tag as drconsole creates them: deleted only when the run's journal says the run created them.
pub const UNTAGGED_KINDS: &[&str] = &[KIND_HEALTH_CHECK, KIND_DNS_RECORD, KIND_LT_VERSION];

/// A resource as the cleanup sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub kind: String,
    /// The id the delete takes: an AWS id, a name (load balancer, target group, ASG), `name:version` (a launch
    /// template version), a record name (DNS).
    pub id: String,
    /// `""` for Route 53.
    pub region: String,
    /// As AWS spells it (`available`, `deleting`, `InService`...).
    pub state: String,
    pub tags: Tags,
}

#[async_trait]
pub trait Cleanup: Send + Sync {
    /// Every live resource of the kinds in [`DELETE_ORDER`] in `region` with the tag `key` = `value`.
    async fn tagged(&self, region: &str, key: &str, value: &str) -> CloudResult<Vec<Found>>;
    /// One resource; `None` once it is gone.
    async fn describe(&self, region: &str, kind: &str, id: &str) -> CloudResult<Option<Found>>;
    /// Starts deleting it (the DB instance without a final snapshot, an ASG with its instances, an AMI with its
    /// snapshots); `Ok` when it is already deleting or gone.
    async fn delete(&self, region: &str, kind: &str, id: &str) -> CloudResult<()>;
    /// The target of a route table's route to `destination` (a NAT gateway or gateway id); `None` when the table
    /// has no such route or is gone.
    async fn route_target(&self, region: &str, table: &str, destination: &str) -> CloudResult<Option<String>>;
    /// Puts a route back: pointing to `previous` (a NAT gateway or gateway id) or, when `None`, deleted.
    async fn restore_route(
        &self,
        region: &str,
        table: &str,
        destination: &str,
        previous: Option<&str>,
    ) -> CloudResult<()>;
}

/// Why the cleanup must keep a NAT gateway or Elastic IP the run created: `Some(reason)` while route tables still
/// route through the gateway once the run's own routes are put back (the other applications of a shared VPC use
/// the claimant's gateway: [`others_behind`] kept the routes they need), or while the address belongs to a gateway
/// that is still there (kept so). `None` for other kinds, and when nothing uses it. Read-only: one listing of the
/// region's route tables, or of its NAT gateways.
pub async fn still_used(cloud: &super::Cloud, region: &str, kind: &str, id: &str) -> CloudResult<Option<String>> {
    let all = super::Filter::default();
    match kind {
        KIND_NAT => {
            let users: Vec<String> = cloud
                .ec2
                .describe_route_tables(region, &all)
                .await?
                .into_iter()
                .filter(|t| t.routes.iter().any(|r| r.nat_gateway_id.as_deref() == Some(id)))
                .map(|t| t.id)
                .collect();
            if users.is_empty() {
                return Ok(None);
            }
            Ok(Some(format!(
                "still in use: route table{} {} route{} through it (what lives behind {} is not this run's); \
                 deleting it would cut {} off: kept, with its Elastic IP",
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                if users.len() == 1 { "s" } else { "" },
                if users.len() == 1 { "it" } else { "them" },
                if users.len() == 1 { "it" } else { "them" },
            )))
        }
        KIND_EIP => {
            let nats = cloud.ec2.describe_nat_gateways(region, &all).await?;
            Ok(nats
                .into_iter()
                .find(|n| n.allocation_id == id && matches!(n.state.as_str(), "available" | "pending"))
                .map(|n| format!("the address of NAT gateway {}, which is still there (in use): kept with it", n.id)))
        }
        _ => Ok(None),
    }
}

/// What lives in the subnets a route table serves and is not `run_id`'s (another application's run, or the VPC's
/// own): auto scaling groups launching there, instances (pending, running, stopping or stopped) outside a group.
/// While there is any, the table's route through a NAT gateway is theirs too, and the cleanup neither puts it back
/// nor deletes the gateway. Read-only: the table, the region's groups and instances.
pub async fn others_behind(cloud: &super::Cloud, region: &str, table: &str, run_id: &str) -> CloudResult<Vec<String>> {
    let tables = cloud.ec2.describe_route_tables(region, &super::Filter::id(table)).await?;
    let Some(t) = tables.into_iter().find(|t| t.id == table) else { return Ok(Vec::new()) };
    if t.subnet_ids.is_empty() {
        return Ok(Vec::new());
    }
    let not_mine = |tags: &Tags| tags.get(super::TAG_RUN_ID).is_none_or(|r| r != run_id);
    let whose = |id: String, tags: &Tags| match tags.get(super::TAG_RUN_ID) {
        Some(r) => format!("{id} (run {r})"),
        None => id,
    };
    // auto scaling groups launching into those subnets (their instances come and go)
    let mut out: Vec<String> = cloud
        .asg
        .list_auto_scaling_groups(region)
        .await?
        .into_iter()
        .filter(|g| not_mine(&g.tags) && (g.desired > 0 || !g.instances.is_empty()))
        .filter(|g| g.subnets.iter().any(|s| t.subnet_ids.contains(s)))
        .map(|g| whose(format!("auto scaling group {}", g.name), &g.tags))
        .collect();
    let instances = cloud.ec2.describe_instances(region, &super::Filter::default()).await?;
    out.extend(
        instances
            .into_iter()
            .filter(|i| matches!(i.state.as_str(), "pending" | "running" | "stopping" | "stopped"))
            .filter(|i| i.subnet_id.as_ref().is_some_and(|s| t.subnet_ids.contains(s)))
            .filter(|i| not_mine(&i.tags) && !i.tags.contains_key("aws:autoscaling:groupName"))
            .map(|i| whose(format!("instance {}", i.id), &i.tags)),
    );
    Ok(out)
}
