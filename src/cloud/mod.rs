//! The cloud port: what the DR actions need from AWS, as one async trait per service. The simulator
//! ([`sim`]) and the AWS SDK adapter are two implementations of it; the actions are written once, over [`Cloud`].
//!
//! Conventions:
//! - every method takes the region explicitly (Route 53 is global and takes none);
//! - "not found" on a lookup of one named resource is `Ok(None)`, not an error; list/describe calls return what
//!   matches, possibly nothing;
//! - resource types are plain data (serde), with `state`/`status` strings spelt as AWS spells them
//!   (`available`, `in-use`, `InService`, `INSYNC`...);
//! - every create takes the tags to put on the resource (drconsole tags: [`TAG_RUN_ID`], [`TAG_STEP`],
//!   [`TAG_RUNBOOK`]) and, where the API has one, a client token, so actions can be idempotent.

pub mod aws;
pub mod batch;
pub mod cleanup;
pub mod control_plane;
pub mod error;
pub mod health;
pub mod limit;
pub mod sim;

pub use error::{ErrorKind, classify};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Tag keys drconsole puts on everything it creates.
pub const TAG_RUN_ID: &str = "drconsole:run-id";
pub const TAG_STEP: &str = "drconsole:step";
pub const TAG_RUNBOOK: &str = "drconsole:runbook";
/// On everything a drill creates (`--drill`), with the run id as its value.
pub const TAG_DRILL: &str = crate::drill_names::TAG_DRILL;

pub type Tags = BTreeMap<String, String>;

/// `CloudError::code` of a call refused by the account guard (see [`CloudError::is_refusal`]).
pub const CODE_ACCOUNT_MISMATCH: &str = "AccountMismatch";

/// An error from a cloud API call: what was called, where, and how to treat it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct CloudError {
    /// `rds`, `ec2`, `elbv2`, `autoscaling`, `wafv2`, `route53`, `s3`, `backup`, `dynamodb`, `secretsmanager`, `sts`
    pub service: String,
    /// The API operation, as AWS names it: `RestoreDBInstanceFromDBSnapshot`.
    pub operation: String,
    /// The region called (empty for global services).
    pub region: String,
    /// The AWS error code: `InsufficientDBInstanceCapacity`, `Throttling`, `DBInstanceNotFound`...
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// How to treat it: throttling, capacity, transient, not found, refused, fatal ([`classify`] decides).
    #[serde(default)]
    pub kind: ErrorKind,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.operation)?;
        if !self.region.is_empty() {
            write!(f, " in {}", self.region)?;
        }
        write!(f, " failed: {}: {}", self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl CloudError {
    pub fn new(service: &str, operation: &str, region: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            operation: operation.into(),
            region: region.into(),
            code: code.into(),
            message: message.into(),
            request_id: None,
            kind: ErrorKind::Fatal,
        }
    }
    /// The same error, classified by its code with [`classify`] (as the AWS adapter and the simulator's faults do).
    pub fn classified(mut self, status: Option<u16>) -> Self {
        self.kind = classify(&self.code, status);
        self
    }
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
    /// Marks it transient (retryable).
    pub fn retryable(self) -> Self {
        self.with_kind(ErrorKind::Transient)
    }
    pub fn throttling(self) -> Self {
        self.with_kind(ErrorKind::Throttling)
    }
    pub fn not_found(self) -> Self {
        self.with_kind(ErrorKind::NotFound)
    }
    /// Another attempt may succeed (throttling, capacity, 5xx, a resource not ready yet).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
    /// The resource named in the call does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
    /// The call was throttled: back off harder than for other retryable errors.
    pub fn is_throttling(&self) -> bool {
        self.kind == ErrorKind::Throttling
    }
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    /// A guard refused the call before anything was sent (the credentials are for another account than the
    /// runbook's `target.account`): nothing was changed, and the action must fail with `ActionError::refused`.
    pub fn is_refusal(&self) -> bool {
        self.kind == ErrorKind::Refused || self.code == CODE_ACCOUNT_MISMATCH
    }
    /// What the error is, as events carry it to every output ([`crate::run::ErrorCause`]).
    pub fn cause(&self) -> crate::run::ErrorCause {
        let kind = serde_json::to_value(self.kind).ok().and_then(|v| v.as_str().map(str::to_string));
        crate::run::ErrorCause {
            service: self.service.clone(),
            operation: self.operation.clone(),
            region: self.region.clone(),
            code: self.code.clone(),
            kind: kind.unwrap_or_else(|| "fatal".into()),
            unreachable: self.kind == ErrorKind::Unreachable || error::is_unanswered(&self.code),
        }
    }
    /// Not sent: the region's circuit is open ([`health`]).
    pub fn is_unreachable(&self) -> bool {
        self.kind == ErrorKind::Unreachable
    }
}

pub type CloudResult<T> = Result<T, CloudError>;

/// Selects resources by id and/or tags (all given tags must match). Empty = everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub ids: Vec<String>,
    pub tags: Tags,
    /// Names (AMI names, launch template names); matched exactly, or as a pattern when they hold `*` (any run of
    /// characters) or `?` (one character), as EC2's `name` filter does.
    pub names: Vec<String>,
}

impl Filter {
    pub fn id(id: impl Into<String>) -> Self {
        Self { ids: vec![id.into()], ..Self::default() }
    }
    pub fn tag(k: impl Into<String>, v: impl Into<String>) -> Self {
        let mut tags = Tags::new();
        tags.insert(k.into(), v.into());
        Self { tags, ..Self::default() }
    }
    pub fn name(n: impl Into<String>) -> Self {
        Self { names: vec![n.into()], ..Self::default() }
    }
    pub fn and_tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    /// Whether a resource with this id, name and tags matches.
    pub fn matches(&self, id: &str, name: Option<&str>, tags: &Tags) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|i| i == id))
            && (self.names.is_empty() || name.is_some_and(|n| self.names.iter().any(|x| glob_match(x, n))))
            && self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// `pattern` matches `name`: exactly, or with `*` standing for any run of characters and `?` for one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == name;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // classic two-pointer wildcard match with backtracking to the last `*`
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

// ---------------------------------------------------------------------------------------------------------- RDS

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbInstance {
    pub id: String,
    pub arn: String,
    /// `postgres`, `mysql`...
    pub engine: String,
    pub class: String,
    /// `creating`, `backing-up`, `available`, `modifying`, `stopped`...
    pub status: String,
    pub endpoint: Option<String>,
    pub port: u16,
    pub storage_gib: u64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub az: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub earliest_restorable_time: Option<Timestamp>,
    pub latest_restorable_time: Option<Timestamp>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbSnapshot {
    pub id: String,
    pub arn: String,
    pub instance_id: String,
    /// `manual`, `automated`, `awsbackup`
    pub snapshot_type: String,
    /// `creating`, `pending`, `copying`, `available`
    pub status: String,
    pub progress_pct: u8,
    pub created: Timestamp,
    pub engine: String,
    pub storage_gib: u64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// For a cross-region copy: the ARN it was copied from.
    pub source_arn: Option<String>,
    pub tags: Tags,
}

/// Which snapshots to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSnapshotQuery {
    pub instance_id: Option<String>,
    pub snapshot_id: Option<String>,
    /// Include automated (and AWS Backup) snapshots, not only manual ones.
    pub include_automated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreWindow {
    pub earliest: Timestamp,
    pub latest: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyDbSnapshot {
    /// ARN of the snapshot to copy (in `source_region`).
    pub source_arn: String,
    pub source_region: String,
    pub target_id: String,
    /// KMS key in the target region (required for encrypted cross-region copies).
    pub kms_key_id: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreDbFromSnapshot {
    pub instance_id: String,
    pub snapshot_id: String,
    pub class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub multi_az: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreDbToPointInTime {
    pub source_instance_id: String,
    pub target_instance_id: String,
    /// `None` = the latest restorable time.
    pub time: Option<Timestamp>,
    pub class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyDbInstance {
    pub instance_id: String,
    pub class: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub parameter_group: Option<String>,
    /// A secret value: adapters must never log it.
    pub master_user_password: Option<String>,
    pub apply_immediately: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartExportTask {
    pub id: String,
    pub source_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub iam_role_arn: String,
    pub kms_key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTask {
    pub id: String,
    pub source_arn: String,
    /// `STARTING`, `IN_PROGRESS`, `COMPLETE`, `FAILED`
    pub status: String,
    pub percent: u8,
    pub bucket: String,
    pub prefix: String,
}

#[async_trait]
pub trait Rds: Send + Sync {
    async fn describe_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>>;
    /// What a wait polls: the instance as [`Rds::describe_db_instance`] has it, or as one describe of every
    /// instance being waited for in the region said up to [`batch::FRESH`] ago ([`batch`]). Never for a lookup
    /// that decides whether to create.
    async fn poll_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        self.describe_db_instance(region, id).await
    }
    async fn describe_db_snapshots(&self, region: &str, q: &DbSnapshotQuery) -> CloudResult<Vec<DbSnapshot>>;
    /// What a wait polls: a manual snapshot by identifier, possibly batched as [`Rds::poll_db_instance`] is.
    async fn poll_db_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<DbSnapshot>> {
        let q = DbSnapshotQuery { snapshot_id: Some(id.into()), ..Default::default() };
        Ok(self.describe_db_snapshots(region, &q).await?.into_iter().next())
    }
    /// The point-in-time window of an instance (earliest and latest restorable time).
    async fn restore_window(&self, region: &str, instance_id: &str) -> CloudResult<RestoreWindow>;
    /// Copies a snapshot into `region` (cross-region when `source_region` differs).
    async fn copy_db_snapshot(&self, region: &str, req: &CopyDbSnapshot) -> CloudResult<DbSnapshot>;
    async fn restore_db_from_snapshot(&self, region: &str, req: &RestoreDbFromSnapshot) -> CloudResult<DbInstance>;
    async fn restore_db_to_point_in_time(&self, region: &str, req: &RestoreDbToPointInTime) -> CloudResult<DbInstance>;
    async fn modify_db_instance(&self, region: &str, req: &ModifyDbInstance) -> CloudResult<DbInstance>;
    async fn start_export_task(&self, region: &str, req: &StartExportTask) -> CloudResult<ExportTask>;
    async fn describe_export_task(&self, region: &str, id: &str) -> CloudResult<Option<ExportTask>>;
    /// A DB subnet group by name; `Ok(None)` when the region has none of that name.
    async fn describe_db_subnet_group(&self, region: &str, name: &str) -> CloudResult<Option<DbSubnetGroup>>;
}

/// A DB subnet group: the subnets (and so the VPC and AZs) a restored instance may be placed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSubnetGroup {
    pub name: String,
    pub vpc_id: String,
    /// `(subnet id, availability zone)`.
    pub subnets: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------------------- EC2

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    pub instance_id: String,
    pub device: String,
    /// `attaching`, `attached`, `detaching`, `detached`
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub az: String,
    pub size_gib: u64,
    pub volume_type: String,
    /// `creating`, `available`, `in-use`, `deleting`
    pub state: String,
    pub snapshot_id: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub attachments: Vec<VolumeAttachment>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    /// `pending`, `completed`, `error`
    pub state: String,
    pub progress_pct: u8,
    pub start_time: Timestamp,
    pub size_gib: u64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`
    pub state: String,
    pub az: String,
    pub subnet_id: Option<String>,
    pub image_id: String,
    pub instance_type: String,
    pub private_ip: Option<String>,
    /// device name → volume id
    pub block_devices: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    /// `pending`, `available`, `failed`
    pub state: String,
    pub created: Timestamp,
    pub encrypted: bool,
    pub size_gib: u64,
    pub snapshot_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub default_version: u64,
    pub latest_version: u64,
    /// The image of the default version.
    pub image_id: String,
    /// Image per version, oldest first (index 0 = version 1).
    pub version_images: Vec<String>,
    /// Description per version, as `version_images` (empty when none): drconsole's versions say which run, and
    /// whether a drill, made them ([`crate::drill_names::lt_version_description`]).
    #[serde(default)]
    pub version_descriptions: Vec<String>,
    pub tags: Tags,
    /// The default version's security group ids and instance type (empty when it does not set them).
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub instance_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGateway {
    pub id: String,
    pub subnet_id: String,
    pub allocation_id: String,
    /// `pending`, `available`, `failed`, `deleting`, `deleted`
    pub state: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    pub nat_gateway_id: Option<String>,
    pub gateway_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub routes: Vec<Route>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub az: String,
    pub cidr: String,
    /// Maps public IPs on launch (a public subnet, with a route to an internet gateway).
    pub public: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidr: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
}

/// A security group as a claim sees it: its name is unique in its VPC, so of several runs creating the same name
/// one succeeds and the others get [`CODE_GROUP_DUPLICATE`] (on AWS and on moto alike). `nat.ensure` uses one as
/// the claim on a zone's NAT gateway of a shared VPC, its tags naming the claimant run and the time of the claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedSecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSecurityGroup {
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    /// Set with the group in the same call (TagSpecifications): the claim and its claimant are one write.
    pub tags: Tags,
}

/// The error code of a CreateSecurityGroup whose name is already taken in the VPC.
pub const CODE_GROUP_DUPLICATE: &str = "InvalidGroup.Duplicate";

/// Locks by key shared by every run on one cloud in this process (the applications of an incident share their
/// clients, or the simulated world): `nat.ensure` holds one per (region, VPC, zone) while it claims and creates
/// that zone's NAT gateway, so the other applications wait for it here instead of racing for the claim. What other
/// processes do is settled by the claim itself ([`NamedSecurityGroup`]).
#[derive(Debug, Default)]
pub struct LocalLocks(std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl LocalLocks {
    /// The lock for `key` (made on first use; the same one for every caller of this process).
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(key.to_string()).or_default().clone()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySnapshot {
    pub source_region: String,
    pub source_snapshot_id: String,
    pub kms_key_id: Option<String>,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVolume {
    pub az: String,
    pub snapshot_id: Option<String>,
    pub volume_type: String,
    pub size_gib: Option<u64>,
    pub iops: Option<u64>,
    pub kms_key_id: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyImage {
    pub source_region: String,
    pub source_image_id: String,
    pub name: String,
    pub kms_key_id: Option<String>,
    /// Idempotency token.
    pub client_token: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateNatGateway {
    pub subnet_id: String,
    pub allocation_id: String,
    pub client_token: String,
    pub tags: Tags,
}

#[async_trait]
pub trait Ec2: Send + Sync {
    async fn describe_volumes(&self, region: &str, f: &Filter) -> CloudResult<Vec<Volume>>;
    async fn describe_snapshots(&self, region: &str, f: &Filter) -> CloudResult<Vec<Snapshot>>;
    /// What waits poll: one resource by id, as its describe has it, or as one describe of every resource of the
    /// kind being waited for in the region said up to [`batch::FRESH`] ago ([`batch`]). Never for a lookup that
    /// decides whether to create.
    async fn poll_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<Snapshot>> {
        Ok(self.describe_snapshots(region, &Filter::id(id)).await?.into_iter().next())
    }
    async fn poll_volume(&self, region: &str, id: &str) -> CloudResult<Option<Volume>> {
        Ok(self.describe_volumes(region, &Filter::id(id)).await?.into_iter().next())
    }
    async fn poll_instance(&self, region: &str, id: &str) -> CloudResult<Option<Instance>> {
        Ok(self.describe_instances(region, &Filter::id(id)).await?.into_iter().next())
    }
    async fn poll_image(&self, region: &str, id: &str) -> CloudResult<Option<Image>> {
        Ok(self.describe_images(region, &Filter::id(id)).await?.into_iter().next())
    }
    async fn poll_nat_gateway(&self, region: &str, id: &str) -> CloudResult<Option<NatGateway>> {
        Ok(self.describe_nat_gateways(region, &Filter::id(id)).await?.into_iter().next())
    }
    /// Snapshots of one volume (the filter `volume-id`).
    async fn describe_snapshots_of_volume(&self, region: &str, volume_id: &str) -> CloudResult<Vec<Snapshot>>;
    async fn copy_snapshot(&self, region: &str, req: &CopySnapshot) -> CloudResult<Snapshot>;
    async fn create_volume(&self, region: &str, req: &CreateVolume) -> CloudResult<Volume>;
    async fn attach_volume(&self, region: &str, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()>;
    async fn detach_volume(&self, region: &str, volume_id: &str, instance_id: &str) -> CloudResult<()>;
    async fn stop_instances(&self, region: &str, ids: &[String]) -> CloudResult<()>;
    async fn start_instances(&self, region: &str, ids: &[String]) -> CloudResult<()>;
    async fn describe_instances(&self, region: &str, f: &Filter) -> CloudResult<Vec<Instance>>;
    async fn describe_images(&self, region: &str, f: &Filter) -> CloudResult<Vec<Image>>;
    async fn copy_image(&self, region: &str, req: &CopyImage) -> CloudResult<Image>;
    async fn describe_launch_template(&self, region: &str, name: &str) -> CloudResult<Option<LaunchTemplate>>;
    /// The security groups among `ids` (group ids `sg-…`, or group names) that exist in the region; the missing
    /// ones are simply absent from the answer.
    async fn describe_security_groups(&self, region: &str, ids: &[String]) -> CloudResult<Vec<SecurityGroup>>;
    /// The default vCPUs of an instance type (DescribeInstanceTypes); `None` when the region does not offer it.
    async fn instance_type_vcpus(&self, region: &str, instance_type: &str) -> CloudResult<Option<u32>>;
    /// Creates a version from `source_version` with a new image and `description`; returns the new version number.
    /// A version with this description and image already there (a retry) is returned instead.
    async fn create_launch_template_version(
        &self,
        region: &str,
        name: &str,
        source_version: u64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<u64>;
    async fn set_default_launch_template_version(&self, region: &str, name: &str, version: u64) -> CloudResult<()>;
    async fn describe_addresses(&self, region: &str, f: &Filter) -> CloudResult<Vec<Address>>;
    async fn allocate_address(&self, region: &str, tags: &Tags) -> CloudResult<Address>;
    async fn describe_nat_gateways(&self, region: &str, f: &Filter) -> CloudResult<Vec<NatGateway>>;
    async fn create_nat_gateway(&self, region: &str, req: &CreateNatGateway) -> CloudResult<NatGateway>;
    async fn describe_route_tables(&self, region: &str, f: &Filter) -> CloudResult<Vec<RouteTable>>;
    /// Creates or replaces the route `destination` in a route table to point at a NAT gateway.
    async fn set_route_to_nat(
        &self,
        region: &str,
        route_table_id: &str,
        destination: &str,
        nat_gateway_id: &str,
    ) -> CloudResult<()>;
    async fn describe_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>>;
    async fn describe_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>>;
    /// Creates a security group in a VPC with its tags; a group of that name already in the VPC is the error
    /// [`CODE_GROUP_DUPLICATE`] (the test-and-set a claim relies on).
    async fn create_security_group(&self, region: &str, req: &CreateSecurityGroup) -> CloudResult<NamedSecurityGroup>;
    /// The security group named `name` in the VPC, with its description and tags.
    async fn describe_vpc_security_group(
        &self,
        region: &str,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<NamedSecurityGroup>>;
    /// Deletes a security group by id; a group already gone is `Ok`.
    async fn delete_security_group(&self, region: &str, id: &str) -> CloudResult<()>;
    /// The locks shared by every run on this cloud in this process ([`LocalLocks`]); `None` when runs on it share
    /// nothing (each waits on the claims alone).
    fn local_locks(&self) -> Option<Arc<LocalLocks>> {
        None
    }
}

// ---------------------------------------------------------------------------------------------------------- ELBv2

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    /// The zone id to use in a Route 53 alias to this load balancer.
    pub canonical_hosted_zone_id: String,
    /// `provisioning`, `active`, `failed`
    pub state: String,
    pub scheme: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub vpc_id: String,
    pub health_check_path: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub protocol: String,
    pub port: u16,
    pub target_group_arn: String,
    pub certificate_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub id: String,
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `draining`, `unused`
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLoadBalancer {
    pub name: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `internet-facing` or `internal`
    pub scheme: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTargetGroup {
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub vpc_id: String,
    pub health_check_path: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateListener {
    pub load_balancer_arn: String,
    pub protocol: String,
    pub port: u16,
    pub target_group_arn: String,
    pub certificate_arn: Option<String>,
}

#[async_trait]
pub trait Elb: Send + Sync {
    async fn describe_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>>;
    /// A load balancer by name for a caller that needs its ARN, DNS name and state only (elb.ensure): its tags are
    /// not read, so `tags` may be empty; on AWS one call fewer than [`Elb::describe_load_balancer`].
    async fn find_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        self.describe_load_balancer(region, name).await
    }
    /// A load balancer's state (`provisioning`, `active`, `failed`), `None` when there is none by that name: what
    /// a wait polls, without the tags [`Elb::describe_load_balancer`] also reads.
    async fn load_balancer_state(&self, region: &str, name: &str) -> CloudResult<Option<String>> {
        Ok(self.describe_load_balancer(region, name).await?.map(|l| l.state))
    }
    async fn create_load_balancer(&self, region: &str, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer>;
    async fn describe_target_group(&self, region: &str, name: &str) -> CloudResult<Option<TargetGroup>>;
    async fn create_target_group(&self, region: &str, req: &CreateTargetGroup) -> CloudResult<TargetGroup>;
    async fn describe_listeners(&self, region: &str, load_balancer_arn: &str) -> CloudResult<Vec<Listener>>;
    async fn create_listener(&self, region: &str, req: &CreateListener) -> CloudResult<Listener>;
    async fn register_targets(&self, region: &str, target_group_arn: &str, ids: &[String]) -> CloudResult<()>;
    async fn describe_target_health(&self, region: &str, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>>;
}

// ---------------------------------------------------------------------------------------------------------- ASG

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsgInstance {
    pub id: String,
    pub az: String,
    /// `Pending`, `InService`, `Terminating`...
    pub lifecycle_state: String,
    /// `Healthy`, `Unhealthy`
    pub health_status: String,
    pub launch_template_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoScalingGroup {
    pub name: String,
    pub arn: String,
    pub launch_template_name: String,
    /// `$Latest`, `$Default` or a number
    pub launch_template_version: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub subnets: Vec<String>,
    pub target_group_arns: Vec<String>,
    pub instances: Vec<AsgInstance>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAutoScalingGroup {
    pub name: String,
    pub launch_template_name: String,
    pub launch_template_version: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub subnets: Vec<String>,
    pub target_group_arns: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAutoScalingGroup {
    pub name: String,
    pub launch_template_version: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRefresh {
    pub id: String,
    /// `Pending`, `InProgress`, `Successful`, `Failed`, `Cancelled`
    pub status: String,
    pub percent: u8,
    pub start_time: Timestamp,
}

#[async_trait]
pub trait Asg: Send + Sync {
    async fn describe_auto_scaling_group(&self, region: &str, name: &str) -> CloudResult<Option<AutoScalingGroup>>;
    /// Every auto scaling group of the region (the cleanup asks what else lives in a VPC's subnets).
    async fn list_auto_scaling_groups(&self, region: &str) -> CloudResult<Vec<AutoScalingGroup>>;
    async fn create_auto_scaling_group(&self, region: &str, req: &CreateAutoScalingGroup) -> CloudResult<()>;
    async fn update_auto_scaling_group(&self, region: &str, req: &UpdateAutoScalingGroup) -> CloudResult<()>;
    async fn attach_target_groups(&self, region: &str, name: &str, arns: &[String]) -> CloudResult<()>;
    async fn start_instance_refresh(&self, region: &str, name: &str, min_healthy_pct: u8) -> CloudResult<String>;
    /// Newest first.
    async fn describe_instance_refreshes(&self, region: &str, name: &str) -> CloudResult<Vec<InstanceRefresh>>;
}

// ---------------------------------------------------------------------------------------------------------- WAFv2

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAcl {
    pub id: String,
    pub name: String,
    pub arn: String,
    /// `REGIONAL` (ALB) or `CLOUDFRONT`
    pub scope: String,
}

#[async_trait]
pub trait Waf: Send + Sync {
    /// A REGIONAL web ACL by name.
    async fn get_web_acl(&self, region: &str, name: &str) -> CloudResult<Option<WebAcl>>;
    async fn get_web_acl_for_resource(&self, region: &str, resource_arn: &str) -> CloudResult<Option<WebAcl>>;
    async fn associate_web_acl(&self, region: &str, web_acl_arn: &str, resource_arn: &str) -> CloudResult<()>;
}

// ---------------------------------------------------------------------------------------------------------- Route 53

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedZone {
    pub id: String,
    /// With the trailing dot: `example.com.`
    pub name: String,
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasTarget {
    pub dns_name: String,
    pub hosted_zone_id: String,
    pub evaluate_target_health: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified, with the trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`...
    pub rtype: String,
    pub ttl: Option<u32>,
    pub values: Vec<String>,
    pub alias: Option<AliasTarget>,
    pub set_identifier: Option<String>,
    /// `PRIMARY` or `SECONDARY`
    pub failover: Option<String>,
    pub weight: Option<u32>,
    pub health_check_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    pub id: String,
    /// `PENDING`, `INSYNC`
    pub status: String,
    pub submitted: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    /// `HTTPS`, `HTTP`, `TCP`
    pub check_type: String,
    pub fqdn: String,
    pub port: u16,
    pub path: Option<String>,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub id: String,
    pub caller_reference: String,
    pub config: HealthCheckConfig,
}

#[async_trait]
pub trait Route53: Send + Sync {
    /// Hosted zones with exactly this name (trailing dot optional).
    async fn find_hosted_zones(&self, name: &str) -> CloudResult<Vec<HostedZone>>;
    /// Record sets with this name (all types, all set identifiers).
    async fn list_record_sets(&self, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>>;
    /// One change batch of UPSERTs.
    async fn upsert_records(&self, zone_id: &str, records: &[RecordSet], comment: &str) -> CloudResult<ChangeInfo>;
    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo>;
    async fn find_health_check(&self, caller_reference: &str) -> CloudResult<Option<HealthCheck>>;
    async fn create_health_check(&self, caller_reference: &str, config: &HealthCheckConfig)
    -> CloudResult<HealthCheck>;
    /// `Healthy`/`Unhealthy` as most checkers see it.
    async fn health_check_status(&self, id: &str) -> CloudResult<String>;
}

// ---------------------------------------------------------------------------------------------------------- Route 53 ARC

/// One regional endpoint of a Route 53 Application Recovery Controller cluster (the cluster's data plane: five
/// endpoints in five regions, any one of which can read and set routing controls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEndpoint {
    pub region: String,
    /// `https://host-….route53-recovery-cluster.REGION.amazonaws.com/v1`
    pub url: String,
}

/// A routing control as the cluster's data plane reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingControl {
    pub arn: String,
    pub name: String,
    /// `On` or `Off`.
    pub state: String,
}

/// Route 53 ARC routing controls, through one cluster endpoint per call: the caller chooses the endpoint and tries
/// the others when it does not answer (as AWS recommends), so an impaired region costs one endpoint, not the step.
#[async_trait]
pub trait RoutingControls: Send + Sync {
    /// GetRoutingControlState at `endpoint`.
    async fn routing_control_state(&self, endpoint: &ClusterEndpoint, arn: &str) -> CloudResult<RoutingControl>;
    /// UpdateRoutingControlStates at `endpoint`: every `(arn, On|Off)` in one call (ARC evaluates its safety rules
    /// over the whole batch), overriding the safety rules named in `override_rules`.
    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        states: &[(String, String)],
        override_rules: &[String],
    ) -> CloudResult<()>;
}

// ---------------------------------------------------------------------------------------------------------- S3

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    pub key: String,
    pub size_bytes: u64,
    pub last_modified: Timestamp,
    pub encrypted: bool,
}

#[async_trait]
pub trait S3: Send + Sync {
    async fn list_objects(&self, region: &str, bucket: &str, prefix: &str) -> CloudResult<Vec<S3Object>>;
}

// ---------------------------------------------------------------------------------------------------------- Backup

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPoint {
    pub arn: String,
    pub vault: String,
    pub resource_arn: String,
    /// `RDS`, `EBS`, `EC2`, `DynamoDB`...
    pub resource_type: String,
    /// `COMPLETED`, `PARTIAL`, `EXPIRED`...
    pub status: String,
    pub created: Timestamp,
    pub size_bytes: u64,
    pub encrypted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRestoreJob {
    pub recovery_point_arn: String,
    pub iam_role_arn: String,
    pub resource_type: String,
    pub metadata: BTreeMap<String, String>,
    pub idempotency_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreJob {
    pub id: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `ABORTED`, `FAILED`
    pub status: String,
    pub percent: u8,
    pub created_resource_arn: Option<String>,
}

#[async_trait]
pub trait Backup: Send + Sync {
    async fn list_recovery_points_by_resource(
        &self,
        region: &str,
        resource_arn: &str,
    ) -> CloudResult<Vec<RecoveryPoint>>;
    async fn list_recovery_points_by_vault(&self, region: &str, vault: &str) -> CloudResult<Vec<RecoveryPoint>>;
    /// The names of the region's backup vaults.
    async fn list_backup_vaults(&self, region: &str) -> CloudResult<Vec<String>>;
    async fn start_restore_job(&self, region: &str, req: &StartRestoreJob) -> CloudResult<String>;
    async fn describe_restore_job(&self, region: &str, id: &str) -> CloudResult<RestoreJob>;
}

// ---------------------------------------------------------------------------------------------------------- DynamoDB

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportTable {
    pub client_token: String,
    pub table_name: String,
    pub bucket: String,
    pub bucket_owner: Option<String>,
    pub key_prefix: String,
    /// `DYNAMODB_JSON`, `ION`, `CSV`
    pub input_format: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
    pub kms_key_id: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportDescription {
    pub arn: String,
    pub table_name: String,
    /// `IN_PROGRESS`, `COMPLETED`, `CANCELLING`, `CANCELLED`, `FAILED`
    pub status: String,
    pub imported_items: u64,
    pub processed_bytes: u64,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub arn: String,
    /// `CREATING`, `ACTIVE`...
    pub status: String,
    pub item_count: u64,
    pub import_arn: Option<String>,
}

#[async_trait]
pub trait Dynamodb: Send + Sync {
    async fn import_table(&self, region: &str, req: &ImportTable) -> CloudResult<ImportDescription>;
    async fn describe_import(&self, region: &str, arn: &str) -> CloudResult<ImportDescription>;
    async fn describe_table(&self, region: &str, name: &str) -> CloudResult<Option<Table>>;
}

// ---------------------------------------------------------------------------------------------------------- Secrets, STS

/// A secret's value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretValue {
    pub arn: String,
    pub name: String,
    pub value: String,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue").field("arn", &self.arn).field("name", &self.name).field("value", &"***").finish()
    }
}

#[async_trait]
pub trait SecretsManager: Send + Sync {
    async fn get_secret_value(&self, region: &str, id: &str) -> CloudResult<SecretValue>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

#[async_trait]
pub trait Sts: Send + Sync {
    async fn get_caller_identity(&self, region: &str) -> CloudResult<CallerIdentity>;
}

// ---------------------------------------------------------------------------------------------------------- KMS

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKey {
    pub id: String,
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`, `Unavailable`, `Creating`...
    pub state: String,
}

#[async_trait]
pub trait Kms: Send + Sync {
    /// A key by id, ARN or alias (`alias/NAME`); `Ok(None)` when the region has no such key.
    async fn describe_key(&self, region: &str, key: &str) -> CloudResult<Option<KmsKey>>;
}

// ---------------------------------------------------------------------------------------------------------- Limits

/// Account limits an API can tell (EC2's account attributes).
#[async_trait]
pub trait Limits: Send + Sync {
    /// How many Elastic IP addresses the account may hold in the region (`vpc-max-elastic-ips`); `None` when the
    /// API does not say.
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>>;
    /// A Service Quotas value (`service` such as `vpc` or `ec2`, `code` such as `L-FE5A380F`); `None` when Service
    /// Quotas does not know that quota in the region (NoSuchResourceException).
    async fn service_quota(&self, region: &str, service: &str, code: &str) -> CloudResult<Option<f64>>;
    /// An Elastic Load Balancing account limit by name (`application-load-balancers`, DescribeAccountLimits);
    /// `None` when the answer does not list it.
    async fn elb_limit(&self, region: &str, name: &str) -> CloudResult<Option<u32>>;
    /// How many load balancers of `kind` (`application`, `network`) the region has.
    async fn load_balancers_in_use(&self, region: &str, kind: &str) -> CloudResult<u32>;
}

// ---------------------------------------------------------------------------------------------------------- ACM

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub arn: String,
    pub domain: String,
    /// The names it covers: the domain and its subject alternative names (`*.example.com` for a wildcard).
    pub names: Vec<String>,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, `REVOKED`, `INACTIVE`, `FAILED`, `VALIDATION_TIMED_OUT`
    pub status: String,
    pub not_after: Option<jiff::Timestamp>,
}

impl Certificate {
    /// Whether it covers `name` (a trailing dot ignored; `*.a.b` covers `x.a.b`, not `a.b` nor `y.x.a.b`).
    pub fn covers(&self, name: &str) -> bool {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|c| {
            let c = c.trim_end_matches('.').to_ascii_lowercase();
            match c.strip_prefix("*.") {
                Some(base) => n.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == base),
                None => c == n,
            }
        })
    }
}

#[async_trait]
pub trait Acm: Send + Sync {
    /// A certificate by ARN; `Ok(None)` when the region has no such certificate.
    async fn describe_certificate(&self, region: &str, arn: &str) -> CloudResult<Option<Certificate>>;
}

// ---------------------------------------------------------------------------------------------------------- IAM

/// The answer of a policy simulation for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulatedDecision {
    pub action: String,
    /// `allowed`, `explicitDeny`, `implicitDeny`
    pub decision: String,
}

#[async_trait]
pub trait Iam: Send + Sync {
    /// What the principal's policies decide for each action (on any resource, in `region`):
    /// iam:SimulatePrincipalPolicy. A read: it changes nothing.
    async fn simulate_principal_policy(
        &self,
        principal_arn: &str,
        actions: &[String],
        region: &str,
    ) -> CloudResult<Vec<SimulatedDecision>>;
}

// ---------------------------------------------------------------------------------------------------------- Cloud

/// Every service an action can reach. One implementation backs all of them (the simulator, or AWS).
#[derive(Clone)]
pub struct Cloud {
    /// `sim` or `aws`, for messages.
    pub backend: &'static str,
    pub rds: Arc<dyn Rds>,
    pub ec2: Arc<dyn Ec2>,
    pub elb: Arc<dyn Elb>,
    pub asg: Arc<dyn Asg>,
    pub waf: Arc<dyn Waf>,
    pub route53: Arc<dyn Route53>,
    /// Route 53 ARC routing controls (the cluster's data plane).
    pub routing_controls: Arc<dyn RoutingControls>,
    pub s3: Arc<dyn S3>,
    pub backup: Arc<dyn Backup>,
    pub dynamodb: Arc<dyn Dynamodb>,
    pub secrets: Arc<dyn SecretsManager>,
    pub sts: Arc<dyn Sts>,
    /// Deletes, for `drconsole cleanup` ([`cleanup`]).
    pub cleanup: Arc<dyn cleanup::Cleanup>,
    pub kms: Arc<dyn Kms>,
    pub limits: Arc<dyn Limits>,
    pub acm: Arc<dyn Acm>,
    pub iam: Arc<dyn Iam>,
    /// The per-region circuits the backend's calls go through ([`health`]), when it has them: engines turn their
    /// changes into `region_unreachable` / `region_reachable` events.
    pub health: Option<Arc<health::RegionHealth>>,
}

impl Cloud {
    /// The same cloud, its calls going through these circuits.
    pub fn with_health(mut self, health: Option<Arc<health::RegionHealth>>) -> Self {
        self.health = health;
        self
    }

    /// A cloud whose every service is the same object (the simulator; an adapter holding all SDK clients).
    pub fn from_all<T>(backend: &'static str, all: Arc<T>) -> Self
    where
        T: Rds
            + Ec2
            + Elb
            + Asg
            + Waf
            + Route53
            + RoutingControls
            + S3
            + Backup
            + Dynamodb
            + SecretsManager
            + Sts
            + cleanup::Cleanup
            + Kms
            + Limits
            + Acm
            + Iam
            + 'static,
    {
        Self {
            backend,
            rds: all.clone(),
            ec2: all.clone(),
            elb: all.clone(),
            asg: all.clone(),
            waf: all.clone(),
            route53: all.clone(),
            routing_controls: all.clone(),
            s3: all.clone(),
            backup: all.clone(),
            dynamodb: all.clone(),
            secrets: all.clone(),
            sts: all.clone(),
            cleanup: all.clone(),
            kms: all.clone(),
            limits: all.clone(),
            acm: all.clone(),
            iam: all,
            health: None,
        }
    }
}

impl fmt::Debug for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cloud").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// The drconsole tags for a resource created by a step of a run.
pub fn drconsole_tags(run_id: &str, step: &str, runbook: &str) -> Tags {
    let mut t = Tags::new();
    t.insert(TAG_RUN_ID.into(), run_id.into());
    t.insert(TAG_STEP.into(), step.into());
    t.insert(TAG_RUNBOOK.into(), runbook.into());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_service_operation_region_code_message_and_request_id() {
        let e =
            CloudError::new("rds", "CopyDBSnapshot", "us-west-2", "AccessDenied", "not allowed").with_request_id("r-1");
        assert_eq!(e.to_string(), "rds CopyDBSnapshot in us-west-2 failed: AccessDenied: not allowed (request id r-1)");
        let g = CloudError::new("route53", "GetChange", "", "NoSuchChange", "gone").not_found();
        assert_eq!(g.to_string(), "route53 GetChange failed: NoSuchChange: gone");
        assert!(g.is_not_found() && !g.is_retryable());
        let t = CloudError::new("ec2", "DescribeVolumes", "us-east-1", "Throttling", "slow down").classified(Some(400));
        assert!(t.is_throttling() && t.is_retryable());
        let c = CloudError::new(
            "rds",
            "RestoreDBInstanceFromDBSnapshot",
            "us-west-2",
            "InsufficientDBInstanceCapacity",
            "none",
        )
        .classified(Some(400));
        assert_eq!(c.kind, ErrorKind::Capacity);
        assert!(c.is_retryable());
    }

    #[test]
    fn filters_match_ids_names_and_all_tags() {
        let mut tags = Tags::new();
        tags.insert("app".into(), "x".into());
        tags.insert("tier".into(), "private".into());
        assert!(Filter::default().matches("a", None, &tags));
        assert!(Filter::tag("app", "x").and_tag("tier", "private").matches("a", None, &tags));
        assert!(!Filter::tag("app", "x").and_tag("tier", "public").matches("a", None, &tags));
        assert!(Filter::id("a").matches("a", None, &tags) && !Filter::id("b").matches("a", None, &tags));
        assert!(Filter::name("n").matches("a", Some("n"), &tags) && !Filter::name("n").matches("a", None, &tags));
        let pat = Filter::name("app-web-*");
        assert!(pat.matches("a", Some("app-web-2026-12-01T21-00"), &tags));
        assert!(!pat.matches("a", Some("app-db-2026-12-01T21-00"), &tags));
        assert!(glob_match("a?c*", "abcdef") && !glob_match("a?c", "abcd") && glob_match("*", ""));
    }

    #[test]
    fn secret_values_do_not_show_in_debug() {
        let s = SecretValue { arn: "arn".into(), name: "n".into(), value: "hunter2hunter2".into() };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
