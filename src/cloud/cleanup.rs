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
