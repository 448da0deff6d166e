//! The simulator: a two-region in-memory AWS world implementing every port trait, for tabletop exercises, demos
//! and training. Resources follow the state machines AWS has (RDS creating → backing-up → available, snapshot copy
//! pending → available with a progress %, NAT pending → available, Route 53 PENDING → INSYNC...) with typical,
//! jittered durations. Time is the engine's [`Clock`] (simulated time, `--speed N`); jitter and generated ids are
//! derived from the run seed and the resource's key, so a run is reproducible.
//!
//! A state is a function of time: each resource carries a [`Timeline`] of `(time, state)` phases fixed when it is
//! created, so describing it is a pure read, and the whole world serializes ([`Sim::save`], [`Sim::load`]).
//!
//! With no world file the simulator provisions what the runbook refers to ([`provision::seeds_from_runbook`]);
//! a world file ([`scenario`]) can define resources and inject faults.

mod acm;
mod arc;
mod asg;
mod backup;
mod cleanup;
mod dynamodb;
mod ec2;
mod elb;
mod iam;
mod kms;
mod limits;
pub mod provision;
mod rds;
mod route53;
mod s3;
pub mod scenario;
mod secrets;
mod waf;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::*;
use crate::run::Clock;

pub use provision::Seed;
pub use scenario::{Fault, WorldFile};

/// A resource's states over time: the state at `t` is the last phase that started at or before `t`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub phases: Vec<(Timestamp, String)>,
}

impl Timeline {
    pub fn fixed(at: Timestamp, state: &str) -> Self {
        Self { phases: vec![(at, state.to_string())] }
    }
    /// `states[0]` at `start`, then each next state after its duration.
    pub fn steps(start: Timestamp, states: &[(&str, Duration)], last: &str) -> Self {
        let mut t = start;
        let mut phases = Vec::new();
        for (s, d) in states {
            phases.push((t, (*s).to_string()));
            t = add(t, *d);
        }
        phases.push((t, last.to_string()));
        Self { phases }
    }
    pub fn state(&self, now: Timestamp) -> String {
        self.phases
            .iter()
            .rev()
            .find(|(t, _)| *t <= now)
            .or(self.phases.first())
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
    pub fn start(&self) -> Timestamp {
        self.phases.first().map_or(Timestamp::UNIX_EPOCH, |p| p.0)
    }
    pub fn end(&self) -> Timestamp {
        self.phases.last().map_or(Timestamp::UNIX_EPOCH, |p| p.0)
    }
    /// 0..=100 from the first phase to the last.
    pub fn percent(&self, now: Timestamp) -> u8 {
        let (s, e) = (self.start(), self.end());
        if now >= e {
            return 100;
        }
        let total = e.duration_since(s).as_secs_f64();
        if total <= 0.0 {
            return 100;
        }
        let done = now.duration_since(s).as_secs_f64().max(0.0);
        ((done / total) * 100.0).clamp(0.0, 99.0) as u8
    }
    /// Appends phases after the current end (a restart, a modification).
    pub fn then(&mut self, at: Timestamp, states: &[(&str, Duration)], last: &str) {
        let start = at.max(self.end());
        let next = Timeline::steps(start, states, last);
        self.phases.retain(|(t, _)| *t < start);
        self.phases.extend(next.phases);
    }
}

pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO)).unwrap_or(t)
}

pub(crate) fn sub(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO)).unwrap_or(t)
}

/// A resource and its timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timed<T> {
    pub item: T,
    pub tl: Timeline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimTarget {
    pub id: String,
    pub port: u16,
    pub healthy_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimAsgInstance {
    pub id: String,
    pub az: String,
    pub version: u64,
    pub tl: Timeline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimAsg {
    pub group: AutoScalingGroup,
    pub instances: Vec<SimAsgInstance>,
    pub refreshes: Vec<(InstanceRefresh, Timeline, u64)>,
    /// Being deleted (`DeleteAutoScalingGroup` with ForceDelete): gone at this time, when its instances are.
    #[serde(default)]
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimImport {
    pub desc: ImportDescription,
    pub tl: Timeline,
    pub client_token: String,
    pub items: u64,
}

/// One region of the simulated world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegionState {
    pub dbs: BTreeMap<String, Timed<DbInstance>>,
    pub db_snapshots: BTreeMap<String, Timed<DbSnapshot>>,
    pub export_tasks: BTreeMap<String, Timed<ExportTask>>,
    pub volumes: BTreeMap<String, Timed<Volume>>,
    pub snapshots: BTreeMap<String, Timed<Snapshot>>,
    pub instances: BTreeMap<String, Timed<Instance>>,
    pub images: BTreeMap<String, Timed<Image>>,
    pub image_tokens: BTreeMap<String, String>,
    pub launch_templates: BTreeMap<String, LaunchTemplate>,
    pub addresses: BTreeMap<String, Address>,
    pub nats: BTreeMap<String, Timed<NatGateway>>,
    pub nat_tokens: BTreeMap<String, String>,
    /// Security groups made by a run (the claims of `nat.ensure`), by id; the groups a runbook names are not
    /// modelled (see `describe_security_groups`).
    #[serde(default)]
    pub security_groups: BTreeMap<String, NamedSecurityGroup>,
    pub route_tables: BTreeMap<String, RouteTable>,
    pub subnets: BTreeMap<String, Subnet>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub lbs: BTreeMap<String, Timed<LoadBalancer>>,
    pub tgs: BTreeMap<String, TargetGroup>,
    pub targets: BTreeMap<String, Vec<SimTarget>>,
    pub listeners: BTreeMap<String, Listener>,
    pub asgs: BTreeMap<String, SimAsg>,
    pub web_acls: BTreeMap<String, WebAcl>,
    /// resource arn → web ACL arn
    pub waf_associations: BTreeMap<String, String>,
    /// bucket → objects
    pub buckets: BTreeMap<String, Vec<S3Object>>,
    pub recovery_points: BTreeMap<String, RecoveryPoint>,
    pub restore_jobs: BTreeMap<String, (RestoreJob, Timeline, String)>,
    pub restore_tokens: BTreeMap<String, String>,
    pub tables: BTreeMap<String, Table>,
    pub imports: BTreeMap<String, SimImport>,
    /// Never saved with the world (it lands in the run directory): a loaded world gets its secrets back from the
    /// runbook and the world file, see [`Sim::restore_secrets`].
    #[serde(skip)]
    pub secrets: BTreeMap<String, SecretValue>,
}

/// Whether an API operation changes something (the account guard stops those; reads go through).
fn changes_something(op: &str) -> bool {
    const READS: &[&str] = &["Describe", "List", "Get", "Head", "Lookup", "Search", "Check", "Test"];
    !READS.iter().any(|r| op.starts_with(r))
}

/// Settings of the world (a world file's `[world]` table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldSettings {
    pub account: String,
    /// The runbook's `target.account`: as on AWS, a change is refused (nothing done) when it is not `account`.
    #[serde(default)]
    pub guard_account: Option<String>,
    /// How far back the provisioned backups go, and how often they were taken.
    pub backup_retention: Duration,
    pub backup_interval: Duration,
    /// The newest backup is this old (a backup job that silently stopped): "a snapshot older than expected".
    pub backups_stopped: Duration,
    /// The cross-region copies stopped this long ago (the copy job failed silently): the other region's newest
    /// copy is older than the newest backup.
    #[serde(default)]
    pub copies_stopped: Duration,
    /// KMS keys (ids, ARNs or aliases) that are disabled: DescribeKey says `Disabled`.
    #[serde(default)]
    pub disabled_kms_keys: Vec<String>,
    /// Elastic IP addresses the account may hold per region (AWS's default is 5).
    #[serde(default = "default_eip_limit")]
    pub elastic_ip_limit: u32,
    /// Certificate ARNs that do not exist (DescribeCertificate: ResourceNotFoundException).
    #[serde(default)]
    pub missing_certificates: Vec<String>,
    /// Security groups (ids or names) and DB subnet groups (names) that do not exist in the secondary region.
    #[serde(default)]
    pub missing_security_groups: Vec<String>,
    #[serde(default)]
    pub missing_db_subnet_groups: Vec<String>,
    /// Service Quotas values by `service/code` (`vpc/L-FE5A380F`), over the defaults ([`default_quotas`]).
    #[serde(default)]
    pub quotas: BTreeMap<String, f64>,
    /// IAM actions the caller's policies deny (iam:SimulatePrincipalPolicy says `implicitDeny`).
    #[serde(default)]
    pub denied_actions: Vec<String>,
    /// Regions whose every API call fails (a regional outage).
    pub unavailable_regions: Vec<String>,
    /// Regions whose every API call is accepted and never answered (a brownout): the call waits until the region's
    /// circuit opens ([`crate::cloud::health`]'s brownout window), as on AWS.
    #[serde(default)]
    pub brownout_regions: Vec<String>,
    /// Simulated latency of one API call.
    pub api_latency: Duration,
    /// Scale factor on every duration (0.5 = everything twice as fast).
    pub duration_scale: f64,
    /// Regions where every change is refused, nothing done (a drill's primary region: reads go through).
    #[serde(default)]
    pub read_only_regions: Vec<String>,
}

fn default_eip_limit() -> u32 {
    5
}

/// Service Quotas defaults of a new account: NAT gateways per AZ (vpc L-FE5A380F) 5, on-demand standard
/// instances' vCPUs (ec2 L-1216C47A) 256 (AWS grants new accounts less; an established account has more).
pub fn default_quotas() -> BTreeMap<String, f64> {
    BTreeMap::from([("vpc/L-FE5A380F".to_string(), 5.0), ("ec2/L-1216C47A".to_string(), 256.0)])
}

impl Default for WorldSettings {
    fn default() -> Self {
        Self {
            account: "123456789012".into(),
            guard_account: None,
            backup_retention: Duration::from_secs(12 * 3600),
            backup_interval: Duration::from_secs(3600),
            backups_stopped: Duration::ZERO,
            copies_stopped: Duration::ZERO,
            disabled_kms_keys: Vec::new(),
            elastic_ip_limit: default_eip_limit(),
            missing_certificates: Vec::new(),
            missing_security_groups: Vec::new(),
            missing_db_subnet_groups: Vec::new(),
            quotas: BTreeMap::new(),
            denied_actions: Vec::new(),
            unavailable_regions: Vec::new(),
            brownout_regions: Vec::new(),
            api_latency: Duration::from_millis(150),
            duration_scale: 1.0,
            read_only_regions: Vec::new(),
        }
    }
}

/// The whole simulated world: serializable, so a run can be resumed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub seed: u64,
    pub primary: String,
    pub secondary: String,
    pub settings: WorldSettings,
    pub regions: BTreeMap<String, RegionState>,
    pub zones: BTreeMap<String, HostedZone>,
    /// zone id → records
    pub records: BTreeMap<String, Vec<RecordSet>>,
    pub changes: BTreeMap<String, Timed<ChangeInfo>>,
    pub health_checks: BTreeMap<String, HealthCheck>,
    /// Health checks whose endpoint does not answer (GetHealthCheckStatus: Unhealthy).
    #[serde(default)]
    pub failing_health_checks: std::collections::BTreeSet<String>,
    /// Route 53 ARC routing controls, by ARN.
    #[serde(default)]
    pub routing_controls: BTreeMap<String, RoutingControl>,
    /// API calls made, by `service:Operation`.
    pub calls: BTreeMap<String, u64>,
    pub faults: Vec<Fault>,
    /// How many times each fault has fired.
    pub fault_hits: Vec<u64>,
    pub id_counter: BTreeMap<String, u64>,
}

/// The simulator: the world behind a lock, and the run's clock.
pub struct Sim {
    world: Mutex<World>,
    clock: Clock,
    /// When enabled, every call with the tokio task that made it (the benchmark attributes calls to steps).
    call_log: Mutex<Option<Vec<(String, String)>>>,
    /// AWS's rate limits, when set ([`Sim::set_limits`]): the simulator throttles calls beyond them, and the
    /// client-side limiter (if on) makes calls wait for a token first.
    limits: std::sync::OnceLock<SimLimits>,
    /// Waits' polls of one kind in one region share one describe, as on AWS ([`crate::cloud::batch`]): every
    /// application of an incident polls this one world.
    pub(crate) polls: crate::cloud::batch::Polls,
    /// Locks shared by every application of an incident on this world ([`crate::cloud::LocalLocks`]).
    pub(crate) locks: Arc<crate::cloud::LocalLocks>,
    /// The region circuits every call goes through ([`crate::cloud::health`]), on the simulator's clock.
    health: Arc<crate::cloud::health::RegionHealth>,
}

/// Region circuits for a simulator on `clock` (settings from the environment, as on AWS; their defaults if a
/// variable does not parse, which the AWS path reports).
///
/// A scaled clock (run time = real time × speed, not the paced runtime's simulated time: the preflight's read-only
/// world at 1e6, tests) magnifies the machine's own delays: a call a loaded machine takes 60 µs to answer would be
/// 60 s of run time, a brownout that is not one. Its brownout window is therefore 60 s of real time (the window times
/// the speed); a paced simulated clock (scale 1) keeps the window as it is, in simulated time.
fn sim_health(clock: &Clock) -> Arc<crate::cloud::health::RegionHealth> {
    let mut config = crate::cloud::health::HealthConfig::from_env().unwrap_or_default();
    let real = clock.real(std::time::Duration::from_secs(1)).as_secs_f64();
    if real > 0.0 && real < 1.0 {
        config.brownout = config.brownout.mul_f64(1.0 / real);
    }
    crate::cloud::health::RegionHealth::new(config, clock.clone())
}

/// The rate limits of a simulated account: AWS's side (throttles) and the client's (waits).
#[derive(Debug)]
struct SimLimits {
    server: crate::cloud::limit::Buckets,
    client: Option<crate::cloud::limit::RateLimiter>,
    /// Throttled responses by API class (each attempt the SDK retries counts).
    throttled: Mutex<BTreeMap<String, u64>>,
}

/// What the rate limits did in a simulated account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitFigures {
    /// Throttled responses (`RequestLimitExceeded`/`Throttling`), by API class.
    pub throttled: BTreeMap<String, u64>,
    /// Calls the client-side limiter held back, and how long they waited in all (run time, seconds).
    pub limiter_waits: u64,
    pub limiter_wait_secs: f64,
}

/// How the simulated regional outage's errors end (what the region circuit counts as the region failing).
const OUTAGE: &str = "(simulated regional outage)";

/// Attempts a throttled call gets, as the AWS SDK's standard retry mode has it.
const THROTTLE_ATTEMPTS: u32 = 3;

/// A "not found" answer from a simulated service, as AWS gives it.
fn nf(service: &str, op: &str, region: &str, code: &str, what: String) -> CloudError {
    CloudError::new(service, op, region, code, what).not_found()
}

/// Any other error answer from a simulated service.
fn bad(service: &str, op: &str, region: &str, code: &str, what: String) -> CloudError {
    CloudError::new(service, op, region, code, what)
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot save the simulated world: {0}")]
    Save(serde_json::Error),
    #[error("cannot load the simulated world: {0}")]
    Load(serde_json::Error),
}

impl Sim {
    /// An empty two-region world.
    pub fn new(clock: Clock, seed: u64, primary: &str, secondary: &str) -> Self {
        let mut regions = BTreeMap::new();
        regions.insert(primary.to_string(), RegionState::default());
        regions.insert(secondary.to_string(), RegionState::default());
        let world = World {
            seed,
            primary: primary.into(),
            secondary: secondary.into(),
            settings: WorldSettings::default(),
            regions,
            zones: BTreeMap::new(),
            records: BTreeMap::new(),
            changes: BTreeMap::new(),
            health_checks: BTreeMap::new(),
            failing_health_checks: Default::default(),
            routing_controls: BTreeMap::new(),
            calls: BTreeMap::new(),
            faults: Vec::new(),
            fault_hits: Vec::new(),
            id_counter: BTreeMap::new(),
        };
        Self::of_world(world, clock)
    }

    /// A simulator over `world` on `clock`: the one place its per-process parts (polls, locks, circuits) are made,
    /// for a new world and a loaded one alike.
    fn of_world(world: World, clock: Clock) -> Self {
        let polls = crate::cloud::batch::Polls::new(&clock);
        let health = sim_health(&clock);
        Self {
            world: Mutex::new(world),
            clock,
            call_log: Mutex::new(None),
            limits: std::sync::OnceLock::new(),
            polls,
            locks: Arc::default(),
            health,
        }
    }

    /// A world provisioned from a runbook (what it refers to), then from a world file if given.
    pub fn for_runbook(clock: Clock, seed: u64, rb: &crate::runbook::Runbook, file: Option<&WorldFile>) -> Self {
        let sim = Self::new(clock, seed, &rb.target.primary, &rb.target.secondary);
        if let Some(f) = file {
            sim.apply_world_file(f);
        }
        for s in provision::seeds_from_runbook(rb) {
            sim.provision(&s);
        }
        sim.lock().settings.guard_account.clone_from(&rb.target.account);
        sim
    }

    pub fn into_cloud(self) -> Cloud {
        Self::cloud_of(&Arc::new(self))
    }

    /// The port over a shared simulator, its calls under the simulator's region circuits: an open circuit is
    /// probed as on AWS (STS GetCallerIdentity in the region).
    pub fn cloud_of(sim: &Arc<Sim>) -> Cloud {
        let weak = Arc::downgrade(sim);
        sim.health.set_prober(Arc::new(move |region: String| {
            let weak = weak.clone();
            Box::pin(async move {
                if let Some(sim) = weak.upgrade() {
                    let _ = sim.call("sts", "GetCallerIdentity", &region).await;
                }
            })
        }));
        Cloud::from_all("sim", sim.clone()).with_health(Some(sim.health.clone()))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serializes the whole world (resources, timelines, faults, call counts) as JSON.
    pub fn save(&self) -> Result<String, SimError> {
        serde_json::to_string(&*self.lock()).map_err(SimError::Save)
    }

    /// Restores a world saved by [`Sim::save`], on a clock (for a resumed run, one that continues in run time).
    pub fn load(json: &str, clock: Clock) -> Result<Self, SimError> {
        let world: World = serde_json::from_str(json).map_err(SimError::Load)?;
        Ok(Self::of_world(world, clock))
    }

    /// Provisions again the secrets a world file and a runbook refer to (the same values a new world gets): a saved
    /// world leaves Secrets Manager out, so a resumed run calls this after [`Sim::load`].
    pub fn restore_secrets(&self, rb: &crate::runbook::Runbook, file: Option<&WorldFile>) {
        let from_file = file.map(|f| f.resources.clone()).unwrap_or_default();
        for s in from_file.into_iter().chain(provision::seeds_from_runbook(rb)).filter(|s| s.kind == "secret") {
            self.provision(&s);
        }
    }

    /// API calls made so far, by `service:Operation`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Starts recording each API call with the id of the tokio task that made it.
    pub fn record_calls(&self) {
        *self.call_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Vec::new());
    }

    /// The calls recorded since [`Sim::record_calls`]: (task id, `service:Operation`).
    pub fn call_log(&self) -> Vec<(String, String)> {
        self.call_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default()
    }

    /// A copy of the world as it is now.
    pub fn snapshot(&self) -> World {
        self.lock().clone()
    }

    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn apply_world_file(&self, f: &WorldFile) {
        let mut w = self.lock();
        f.settings.apply(&mut w.settings);
        // Elastic IPs other workloads hold in the secondary region
        let secondary = w.secondary.clone();
        for k in 0..f.settings.elastic_ips_in_use.unwrap_or(0) {
            let id = w.id("eipalloc", &format!("{secondary}/other/{k}"));
            let ip = format!("198.51.100.{}", 10 + k % 200);
            let mut tags = Tags::new();
            tags.insert("Name".into(), format!("other-workload-{k}"));
            w.now_region(&secondary).addresses.insert(id.clone(), Address { allocation_id: id, public_ip: ip, tags });
        }
        w.faults.extend(f.faults.iter().cloned());
        let n = w.faults.len();
        w.fault_hits.resize(n, 0);
        drop(w);
        for s in &f.resources {
            self.provision(s);
        }
    }

    /// Adds a fault while the world runs (tests).
    pub fn inject(&self, fault: Fault) {
        let mut w = self.lock();
        w.faults.push(fault);
        w.fault_hits.push(0);
    }

    /// Refuses every change in `region` from now on (a drill's primary region); reads go through.
    pub fn set_read_only(&self, region: &str) {
        let mut w = self.lock();
        if !w.settings.read_only_regions.iter().any(|r| r == region) {
            w.settings.read_only_regions.push(region.to_string());
        }
    }

    pub fn set_region_available(&self, region: &str, available: bool) {
        let mut w = self.lock();
        w.settings.unavailable_regions.retain(|r| r != region);
        w.settings.brownout_regions.retain(|r| r != region);
        if !available {
            w.settings.unavailable_regions.push(region.to_string());
        }
    }

    /// Every call to `region` is accepted and never answered from now on (a brownout), until
    /// [`Sim::set_region_available`].
    pub fn set_region_brownout(&self, region: &str) {
        let mut w = self.lock();
        w.settings.unavailable_regions.retain(|r| r != region);
        if !w.settings.brownout_regions.iter().any(|r| r == region) {
            w.settings.brownout_regions.push(region.to_string());
        }
    }

    /// The region circuits this simulator's calls go through.
    pub fn health(&self) -> &Arc<crate::cloud::health::RegionHealth> {
        &self.health
    }

    /// Meters every call against AWS's rate limits from now on (once; later calls are ignored): calls beyond a
    /// bucket are throttled; with `limits.limiter` the client waits for a token before each call instead.
    pub fn set_limits(&self, limits: crate::cloud::limit::Limits) {
        let client = limits.limiter.then(|| crate::cloud::limit::RateLimiter::new(limits.clone()));
        let _ = self.limits.set(SimLimits {
            server: crate::cloud::limit::Buckets::new(limits),
            client,
            throttled: Mutex::new(BTreeMap::new()),
        });
    }

    /// What the rate limits did so far (`None`: no limits set).
    pub fn limit_figures(&self) -> Option<LimitFigures> {
        let l = self.limits.get()?;
        let (waits, waited) = l.client.as_ref().map(|c| c.waited()).unwrap_or_default();
        Some(LimitFigures {
            throttled: l.throttled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            limiter_waits: waits,
            limiter_wait_secs: waited.as_secs_f64(),
        })
    }

    /// The rate limits: the client's limiter waits for a token; AWS's side throttles a call whose bucket is
    /// empty, and the client retries it as the SDK's standard mode does (each attempt a call).
    async fn metered(&self, service: &str, op: &str, region: &str) -> CloudResult<()> {
        let Some(l) = self.limits.get() else { return Ok(()) };
        let Some(class) = crate::cloud::limit::class(service, op) else { return Ok(()) };
        if let Some(c) = &l.client {
            c.acquire(&self.clock, service, op, region).await;
        }
        let mut attempt = 1;
        loop {
            if l.server.try_take(&class, region, self.clock.now()).is_ok() {
                return Ok(());
            }
            *l.throttled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(class.clone()).or_insert(0) +=
                1;
            if attempt >= THROTTLE_ATTEMPTS {
                let code = if service == "ec2" { "RequestLimitExceeded" } else { "Throttling" };
                return Err(CloudError::new(
                    service,
                    op,
                    region,
                    code,
                    format!("Rate exceeded (simulated {class} bucket is empty)"),
                )
                .retryable());
            }
            *self.lock().calls.entry(format!("{service}:{op}")).or_insert(0) += 1;
            self.clock.sleep(Duration::from_millis(100 * (1 << attempt))).await;
            attempt += 1;
        }
    }

    /// Counts a call and applies latency, outages and faults, under its region's circuit (as the AWS adapter's HTTP
    /// client does): a region whose circuit is open refuses the call at once. Every API method starts here.
    pub(crate) async fn call(&self, service: &str, op: &str, region: &str) -> CloudResult<()> {
        // the client retries a regional outage's 503 as the AWS SDK's standard mode does (each attempt a call, and
        // a failure the region's circuit counts), until the circuit opens and refuses the next one
        let mut attempt = 1;
        loop {
            match self.attempt(service, op, region).await {
                Err(e) if e.message.ends_with(OUTAGE) && attempt < THROTTLE_ATTEMPTS => {
                    self.clock.sleep(Duration::from_millis(100 * (1 << attempt))).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn attempt(&self, service: &str, op: &str, region: &str) -> CloudResult<()> {
        let key = crate::cloud::health::key(service, region);
        let what = format!("{service} {op}");
        self.health
            .guard(
                &key,
                &what,
                self.call_unguarded(service, op, region),
                |r| match r {
                    // the regional outage fails the region; a world file's fault on one API is that API's answer
                    Err(e) if e.message.ends_with(OUTAGE) => {
                        crate::cloud::health::Seen::ServerError(format!("{what}: {}: {}", e.code, e.message))
                    }
                    Err(e) if e.is_unreachable() || e.is_refusal() => crate::cloud::health::Seen::Nothing,
                    _ => crate::cloud::health::Seen::Answered,
                },
                |open| crate::cloud::health::RegionHealth::refusal(&key, open, service, op),
            )
            .await
    }

    async fn call_unguarded(&self, service: &str, op: &str, region: &str) -> CloudResult<()> {
        self.metered(service, op, region).await?;
        let (latency, err) = {
            let mut w = self.lock();
            let key = format!("{service}:{op}");
            if let Some(log) = self.call_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
                log.push((tokio::task::try_id().map(|i| i.to_string()).unwrap_or_default(), key.clone()));
            }
            let n = {
                let c = w.calls.entry(key.clone()).or_insert(0);
                *c += 1;
                *c
            };
            let mut latency = w.settings.api_latency;
            let request_id = format!("sim-{:08x}", hash_of(&(w.seed, &key, n)) as u32);
            let mut err = None;
            if let Some(want) = &w.settings.guard_account
                && *want != w.settings.account
                && changes_something(op)
            {
                // the account guard, as the AWS adapter has it: refused before anything is changed
                let a = &w.settings.account;
                err = Some(CloudError::new(
                    service,
                    op,
                    region,
                    crate::cloud::CODE_ACCOUNT_MISMATCH,
                    format!(
                        "refused: the credentials are for account {a} (arn:aws:sts::{a}:assumed-role/\
                         DrconsoleSimulator/tabletop), but the runbook targets account {want}; nothing was changed"
                    ),
                ));
            } else if changes_something(op) && w.settings.read_only_regions.iter().any(|r| r == region) {
                // a drill never writes its primary region: refused before anything is changed
                err = Some(
                    CloudError::new(
                        service,
                        op,
                        region,
                        "DrillReadOnlyRegion",
                        format!("refused: {region} is the primary region of a drill, which is never written; nothing was changed"),
                    )
                    .with_kind(crate::cloud::ErrorKind::Refused),
                );
            } else if !region.is_empty() && w.settings.unavailable_regions.iter().any(|r| r == region) {
                err = Some(
                    CloudError::new(
                        service,
                        op,
                        region,
                        "ServiceUnavailable",
                        format!("region {region} is unavailable {OUTAGE}"),
                    )
                    .retryable(),
                );
            } else if !region.is_empty() && !w.regions.contains_key(region) && service != "route53-recovery-cluster" {
                // (an ARC cluster's endpoints are in five regions, whichever two the world has)
                err = Some(CloudError::new(
                    service,
                    op,
                    region,
                    "UnrecognizedClientException",
                    format!("the simulated world has no region {region} (it has {} and {})", w.primary, w.secondary),
                ));
            }
            let seed = w.seed;
            for i in 0..w.faults.len() {
                let f = w.faults[i].clone();
                if !f.matches(service, op, region) {
                    continue;
                }
                if let Some(l) = f.latency {
                    latency += l;
                }
                if err.is_some() {
                    continue;
                }
                let fire = match (f.nth, f.throttle_rate) {
                    (Some(nth), _) => n >= nth && n < nth + f.times.unwrap_or(1),
                    (None, Some(rate)) => {
                        // the client retries throttling as the AWS SDK's standard mode does: 3 attempts with
                        // backoff, each one an API call
                        let mut throttled = unit(hash_of(&(seed, &key, n, i))) < rate;
                        let mut attempt = 1u32;
                        while throttled && attempt < 3 {
                            latency += Duration::from_millis(100 * (1 << attempt));
                            *w.calls.entry(key.clone()).or_insert(0) += 1;
                            throttled = unit(hash_of(&(seed, &key, n, i, attempt))) < rate;
                            attempt += 1;
                        }
                        throttled
                    }
                    (None, None) => f.error.is_some() && (f.times.is_none_or(|t| w.fault_hits[i] < t)),
                };
                if fire {
                    let e = f.error(service, op, region);
                    w.fault_hits[i] += 1;
                    err = Some(e);
                }
            }
            (latency, err.map(|e| e.with_request_id(request_id)))
        };
        self.clock.sleep(latency).await;
        let brownout = !region.is_empty() && self.lock().settings.brownout_regions.iter().any(|r| r == region);
        if brownout {
            // accepted, never answered: the circuit's brownout window ends the wait
            std::future::pending::<()>().await;
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

pub(crate) fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// A number in [0, 1) from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl World {
    pub(crate) fn now_region(&mut self, region: &str) -> &mut RegionState {
        self.regions.entry(region.to_string()).or_default()
    }

    /// A deterministic id: `prefix-` and 17 hex digits from the seed and a key (the resource's natural key).
    pub(crate) fn id(&mut self, prefix: &str, key: &str) -> String {
        let n = self.id_counter.entry(format!("{prefix}/{key}")).or_insert(0);
        *n += 1;
        let h = hash_of(&(self.seed, prefix, key, *n));
        format!("{prefix}-{:017x}", h & 0x0000_00ff_ffff_ffff_ffff)
    }

    /// A duration around a typical one, deterministic under the seed and the key: log-normal with the typical
    /// value as its median and σ = 0.18 (AWS's own durations are right-skewed: most restores and copies take about
    /// the typical time, a few take much longer, none takes no time), kept within 0.7–1.6 × the typical value so a
    /// tabletop exercise stays within the step timeouts its runbook was written for. ([`Self::dur_spread`]: the
    /// factor alone.)
    pub(crate) fn dur(&self, base_secs: f64, key: &str) -> Duration {
        let j = self.dur_spread(key);
        Duration::from_secs_f64((base_secs * j * self.settings.duration_scale).max(1.0))
    }

    /// The factor [`Self::dur`] applies: exp(σ·z), z standard normal from two hashed uniforms (Box–Muller).
    pub(crate) fn dur_spread(&self, key: &str) -> f64 {
        const SIGMA: f64 = 0.18;
        let u1 = unit(hash_of(&(self.seed, key, "dur"))).max(1e-12);
        let u2 = unit(hash_of(&(self.seed, key, "dur2")));
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (SIGMA * z).exp().clamp(0.7, 1.6)
    }

    pub(crate) fn arn(&self, service: &str, region: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{region}:{}:{rest}", self.settings.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_timeline_gives_the_state_and_progress_at_any_time() {
        let start = t("2026-11-21T00:00:00Z");
        let tl = Timeline::steps(
            start,
            &[("creating", Duration::from_secs(800)), ("backing-up", Duration::from_secs(200))],
            "available",
        );
        assert_eq!(tl.state(start), "creating");
        assert_eq!(tl.state(t("2026-11-21T00:13:19Z")), "creating");
        assert_eq!(tl.state(t("2026-11-21T00:13:20Z")), "backing-up");
        assert_eq!(tl.state(t("2026-11-21T01:00:00Z")), "available");
        assert_eq!(tl.percent(t("2026-11-21T00:08:20Z")), 50);
        assert_eq!(tl.percent(t("2026-11-21T02:00:00Z")), 100);
        let mut tl = tl;
        tl.then(t("2026-11-21T02:00:00Z"), &[("modifying", Duration::from_secs(60))], "available");
        assert_eq!(tl.state(t("2026-11-21T02:00:30Z")), "modifying");
        assert_eq!(tl.state(t("2026-11-21T02:01:00Z")), "available");
    }

    #[test]
    fn faults_match_by_service_operation_and_region() {
        let f = Fault { region: Some("us-west-2".into()), ..Fault::nth("rds:CopyDBSnapshot", 1, "AccessDenied") };
        assert!(f.matches("rds", "CopyDBSnapshot", "us-west-2"));
        assert!(!f.matches("rds", "CopyDBSnapshot", "us-east-1"));
        assert!(!f.matches("ec2", "CopyDBSnapshot", "us-west-2"));
        let any = Fault::nth("ec2:*", 1, "Throttling");
        assert!(any.matches("ec2", "DescribeVolumes", "us-east-1"));
        let e = any.error("ec2", "DescribeVolumes", "us-east-1");
        assert!(e.is_retryable() && e.is_throttling());
        let capacity = Fault::nth("RestoreDBInstanceFromDBSnapshot", 1, "InsufficientDBInstanceCapacity");
        let ce = capacity.error("rds", "RestoreDBInstanceFromDBSnapshot", "us-west-2");
        assert!(ce.is_retryable() && ce.kind == crate::cloud::ErrorKind::Capacity);
        assert!(!Fault::nth("x", 1, "AccessDenied").error("rds", "x", "r").is_retryable());
        let forced = Fault { retryable: Some(false), ..capacity };
        assert!(!forced.error("rds", "RestoreDBInstanceFromDBSnapshot", "us-west-2").is_retryable());
    }

    /// Over many keys, the spread is log-normal around the typical value: median about 1, about one in ten above
    /// 1.25 (σ 0.18: P90 = e^(1.2816·0.18) ≈ 1.26), none outside 0.7–1.6.
    #[test]
    fn durations_spread_log_normally_around_the_typical_value() {
        let clock = Clock::starting_at(t("2026-11-21T00:00:00Z"), 1.0);
        let sim = Sim::new(clock, 7, "us-east-1", "us-west-2");
        let w = sim.lock();
        let mut f: Vec<f64> = (0..4000).map(|i| w.dur_spread(&format!("k{i}"))).collect();
        f.sort_by(f64::total_cmp);
        let (median, p90) = (f[2000], f[3600]);
        assert!((0.96..1.04).contains(&median), "median {median}");
        assert!((1.20..1.32).contains(&p90), "P90 {p90}");
        assert!(f[0] >= 0.7 && f[3999] <= 1.6);
    }

    #[test]
    fn durations_and_ids_are_deterministic_under_the_seed() {
        let clock = Clock::starting_at(t("2026-11-21T00:00:00Z"), 1.0);
        let a = Sim::new(clock.clone(), 42, "us-east-1", "us-west-2");
        let b = Sim::new(clock.clone(), 42, "us-east-1", "us-west-2");
        let c = Sim::new(clock, 43, "us-east-1", "us-west-2");
        let (da, db, dc) = (a.lock().dur(600.0, "k"), b.lock().dur(600.0, "k"), c.lock().dur(600.0, "k"));
        assert_eq!(da, db);
        assert_ne!(da, dc);
        assert!(da >= Duration::from_secs(420) && da <= Duration::from_secs(960));
        assert_eq!(a.lock().id("vol", "x"), b.lock().id("vol", "x"));
        let first = a.lock().id("vol", "x");
        let second = a.lock().id("vol", "x");
        assert_ne!(first, second, "a second resource with the same key");
    }
}
