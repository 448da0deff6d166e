//! The AWS adapter: the cloud port implemented on the AWS SDK for Rust.
//!
//! [`Clients`] loads the standard credential chain once (environment, shared profiles including SSO and
//! assume-role, web identity, ECS and EC2 instance metadata) and hands out one client per service per region,
//! built on first use and reused. `--profile` picks a shared-config profile; `--endpoint-url` (or the standard
//! `AWS_ENDPOINT_URL`) points every service at an emulator or a proxy, with S3 in path style there.
//! SDK retries use the standard mode with [`MAX_ATTEMPTS`] attempts; what still fails is mapped to the port's
//! `CloudError` by [`error::from_sdk`]. Each service's client has connect and read timeouts sized for its API
//! ([`timeouts`], the SDK enforces them), and every request goes through its region's circuit
//! ([`crate::cloud::health`], in [`pace`]'s HTTP client), so a region that stops answering is refused at once.

// The port's `CloudError` carries service, operation, region, code, message and request id by design: it is
// returned by value everywhere, as the port's traits do.
#![allow(clippy::result_large_err)]

mod acm;
mod arc;
mod asg;
pub mod backup;
mod cleanup;
pub mod convert;
mod dynamodb;
mod ec2;
mod elb;
pub mod error;
pub mod guard;
mod iam;
mod kms;
mod limits;
pub mod pace;
mod rds;
mod route53;
mod s3;
mod secrets;
mod waf;
pub mod wait;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use error::{from_sdk, sdk};
pub use guard::{AccountGuard, Identity};

/// SDK-level attempts per call (1 + retries) before an error reaches the action; the engine's step retries come
/// on top of these.
pub const MAX_ATTEMPTS: u32 = 8;

/// How drconsole reaches AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// A profile from `~/.aws/config` / `~/.aws/credentials` (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Send every call here (an emulator, a proxy, a VPC endpoint); else `AWS_ENDPOINT_URL` if set.
    pub endpoint_url: Option<String>,
    /// Overrides [`MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
    /// Regions where every change is refused before it is sent (a drill's primary region).
    pub read_only_regions: Vec<String>,
    /// The application the run recovers: named in every call's user agent (see [`Clients::for_app`]).
    pub app: Option<String>,
    /// Every request waits for its API class's token first ([`pace`]); one limiter per process.
    pub limiter: Option<Arc<crate::cloud::limit::RateLimiter>>,
    /// The per-region circuits; one per process, shared by an incident's applications. `None`: new ones from
    /// [`crate::cloud::health::HealthConfig::from_env`].
    pub health: Option<Arc<crate::cloud::health::RegionHealth>>,
    /// No circuits: every request is sent (the shared-state store, whose own outage handling decides when S3 is
    /// unreachable).
    pub no_circuits: bool,
}

/// Connect and read timeouts by service, enforced by the SDK (`TimeoutConfig`; the read timeout is the longest
/// wait for the answer's next bytes, the attempt timeout bounds one attempt):
///
/// | service | connect | read | attempt |
/// |---|---|---|---|
/// | every control-plane API (EC2, RDS, ELB, ASG, WAF, Route 53, IAM, STS, KMS, Secrets Manager, ACM, Backup, DynamoDB, Service Quotas) | 3.1 s | 20 s | 30 s |
/// | S3 (objects, long listings) | 3.1 s | 60 s | 120 s |
/// | Route 53 ARC cluster endpoints (routing controls; 2 attempts per endpoint, then the next endpoint) | 3.1 s | 5 s | 10 s |
///
/// AWS endpoints accept a connection in milliseconds and answer a control-plane call in well under a second; these
/// bounds are for a network or an endpoint in trouble. A region that accepts connections and never answers is
/// recognised sooner by its circuit's brownout window ([`crate::cloud::health::HealthConfig::brownout`]) than by
/// a few attempts' timeouts.
pub fn timeouts(service: &str) -> TimeoutConfig {
    let (read, attempt) = match service {
        "s3" => (60, 120),
        // the cluster's data plane answers in milliseconds; one that does not is left for the next endpoint
        "route53-recovery-cluster" => (5, 10),
        _ => (20, 30),
    };
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .read_timeout(Duration::from_secs(read))
        .operation_attempt_timeout(Duration::from_secs(attempt))
        .build()
}

/// A cache of one client per region.
struct PerRegion<C>(Mutex<HashMap<String, C>>);

impl<C: Clone> PerRegion<C> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
    fn get(&self, region: &str, make: impl FnOnce() -> C) -> C {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(region.to_string()).or_insert_with(make).clone()
    }
}

/// The SDK clients, one per service per region, built on first use and reused for the whole run.
pub struct Clients {
    base: SdkConfig,
    path_style: bool,
    sts: PerRegion<aws_sdk_sts::Client>,
    ec2: PerRegion<aws_sdk_ec2::Client>,
    rds: PerRegion<aws_sdk_rds::Client>,
    s3: PerRegion<aws_sdk_s3::Client>,
    route53: PerRegion<aws_sdk_route53::Client>,
    /// Route 53 ARC cluster endpoints, by URL (each signed for its own region).
    recovery_cluster: PerRegion<aws_sdk_route53recoverycluster::Client>,
    asg: PerRegion<aws_sdk_autoscaling::Client>,
    elb: PerRegion<aws_sdk_elasticloadbalancingv2::Client>,
    waf: PerRegion<aws_sdk_wafv2::Client>,
    backup: PerRegion<aws_sdk_backup::Client>,
    secrets: PerRegion<aws_sdk_secretsmanager::Client>,
    dynamodb: PerRegion<aws_sdk_dynamodb::Client>,
    kms: PerRegion<aws_sdk_kms::Client>,
    acm: PerRegion<aws_sdk_acm::Client>,
    iam: PerRegion<aws_sdk_iam::Client>,
    quotas: PerRegion<aws_sdk_servicequotas::Client>,
    /// What does not change during a recovery and several steps ask for, read once per process for every run on
    /// these clients (an incident's applications share them, and their account): VPCs and subnets (the network's
    /// shape: nat.ensure, elb.ensure and asg.ensure each look their VPC up), hosted zones by name, backup vaults.
    /// Only answers that found something are kept, so a step retried after an operator fixed a missing resource
    /// asks again.
    pub(crate) shapes: Arc<ShapeCache>,
    /// Waits' polls of one kind in one region share one describe ([`crate::cloud::batch`]), shared by
    /// [`Clients::for_app`] as `shapes` is, so an incident's applications waiting at once make one call.
    pub(crate) polls: Arc<crate::cloud::batch::Polls>,
    /// Locks shared by every application's runs on these clients ([`crate::cloud::LocalLocks`]): nat.ensure's
    /// per zone of a shared VPC, so one application claims and creates a NAT gateway while the others wait.
    pub(crate) locks: Arc<crate::cloud::LocalLocks>,
    /// The circuits every request goes through (installed in the HTTP client by [`Clients::load`]).
    pub health: Option<Arc<crate::cloud::health::RegionHealth>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("endpoint_url", &self.base.endpoint_url()).finish_non_exhaustive()
    }
}

impl Clients {
    /// Loads the shared configuration (credentials chain, profile, endpoint, retries). Nothing is called yet:
    /// credentials are resolved on the first request.
    pub async fn load(opts: &AwsOptions) -> Arc<Clients> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(opts.max_attempts.unwrap_or(MAX_ATTEMPTS)))
            // credentials and the services without a client here; each client sets its own (`timeouts`)
            .timeout_config(timeouts("sts"));
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &opts.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        // run time on AWS is real time
        let clock = crate::run::Clock::new(1.0);
        let health = match (&opts.health, opts.no_circuits) {
            (_, true) => None,
            (Some(h), false) => Some(h.clone()),
            (None, false) => {
                let config = crate::cloud::health::HealthConfig::from_env().unwrap_or_else(|e| {
                    // a typo in a tuning variable must not leave the run without circuits: the defaults, said aloud
                    eprintln!("drconsole: {e}; using the defaults");
                    crate::cloud::health::HealthConfig::default()
                });
                Some(crate::cloud::health::RegionHealth::new(config, clock.clone()))
            }
        };
        loader = loader.http_client(pace::Paced::with(
            pace::default_https_client(),
            opts.limiter.clone(),
            health.clone(),
            clock,
        ));
        if let Some(name) = opts.app.as_deref().and_then(app_name) {
            loader = loader.app_name(name);
        }
        let base = loader.load().await;
        let mut clients = Self::from_config(base);
        clients.health.clone_from(&health);
        let clients = Arc::new(clients);
        if let Some(h) = &health {
            h.set_prober(prober(Arc::downgrade(&clients)));
        }
        clients
    }

    /// The same clients' configuration (credentials and their cache, HTTP connections, endpoint, retries) and
    /// kept reads, for one application of an incident: its calls carry `app/drconsole-<app>` in their user agent,
    /// so CloudTrail (and the tests' proxy) tell which application's run made each call.
    pub fn for_app(&self, app: &str) -> Arc<Clients> {
        let base = match app_name(app) {
            Some(name) => self.base.to_builder().app_name(name).build(),
            None => self.base.clone(),
        };
        let mut c = Self::from_config(base);
        c.shapes = self.shapes.clone();
        c.polls = self.polls.clone();
        c.locks = self.locks.clone();
        c.health = self.health.clone();
        Arc::new(c)
    }

    /// Clients from a ready configuration (tests pass one with a recorded-response HTTP client).
    pub fn from_config(base: SdkConfig) -> Clients {
        // a custom endpoint is an emulator, a proxy or a VPC endpoint: virtual-host S3 addressing would need DNS
        let path_style = base.endpoint_url().is_some();
        Clients {
            base,
            path_style,
            sts: PerRegion::new(),
            ec2: PerRegion::new(),
            rds: PerRegion::new(),
            s3: PerRegion::new(),
            route53: PerRegion::new(),
            recovery_cluster: PerRegion::new(),
            asg: PerRegion::new(),
            elb: PerRegion::new(),
            waf: PerRegion::new(),
            backup: PerRegion::new(),
            shapes: Arc::new(ShapeCache::default()),
            // run time on AWS is real time
            polls: Arc::new(crate::cloud::batch::Polls::new(&crate::run::Clock::new(1.0))),
            locks: Arc::new(crate::cloud::LocalLocks::default()),
            secrets: PerRegion::new(),
            dynamodb: PerRegion::new(),
            kms: PerRegion::new(),
            acm: PerRegion::new(),
            iam: PerRegion::new(),
            quotas: PerRegion::new(),
            health: None,
        }
    }

    /// The custom endpoint in use, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    fn config(&self, region: &str) -> SdkConfig {
        self.base.to_builder().region(Region::new(region.to_string())).build()
    }

    pub fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        self.sts.get(region, || {
            aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&self.config(region)).timeout_config(timeouts("sts")).build(),
            )
        })
    }
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.ec2.get(region, || {
            aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&self.config(region)).timeout_config(timeouts("ec2")).build(),
            )
        })
    }
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        self.rds.get(region, || {
            aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&self.config(region)).timeout_config(timeouts("rds")).build(),
            )
        })
    }
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        self.s3.get(region, || {
            let conf = aws_sdk_s3::config::Builder::from(&self.config(region))
                .force_path_style(self.path_style)
                .timeout_config(timeouts("s3"))
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }
    /// Route 53 is global; its control plane lives in us-east-1 whatever region is asked.
    pub fn route53(&self) -> aws_sdk_route53::Client {
        self.route53.get("us-east-1", || {
            aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&self.config("us-east-1"))
                    .timeout_config(timeouts("route53"))
                    .build(),
            )
        })
    }
    /// A Route 53 ARC cluster endpoint: its URL, signed for its region (a custom `--endpoint-url`, an emulator or a
    /// proxy, still takes every call). Two attempts per endpoint: the caller tries the next endpoint rather than
    /// retrying one that does not answer.
    pub fn recovery_cluster(&self, endpoint: &crate::cloud::ClusterEndpoint) -> aws_sdk_route53recoverycluster::Client {
        self.recovery_cluster.get(&format!("{} {}", endpoint.region, endpoint.url), || {
            let mut b = aws_sdk_route53recoverycluster::config::Builder::from(&self.config(&endpoint.region))
                .timeout_config(timeouts("route53-recovery-cluster"))
                .retry_config(RetryConfig::standard().with_max_attempts(2));
            if self.base.endpoint_url().is_none() {
                b = b.endpoint_url(&endpoint.url);
            }
            aws_sdk_route53recoverycluster::Client::from_conf(b.build())
        })
    }
    pub fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        self.asg.get(region, || {
            aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&self.config(region))
                    .timeout_config(timeouts("autoscaling"))
                    .build(),
            )
        })
    }
    pub fn elbv2(&self, region: &str) -> aws_sdk_elasticloadbalancingv2::Client {
        self.elb.get(region, || {
            aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.config(region))
                    .timeout_config(timeouts("elasticloadbalancing"))
                    .build(),
            )
        })
    }
    pub fn wafv2(&self, region: &str) -> aws_sdk_wafv2::Client {
        self.waf.get(region, || {
            aws_sdk_wafv2::Client::from_conf(
                aws_sdk_wafv2::config::Builder::from(&self.config(region)).timeout_config(timeouts("wafv2")).build(),
            )
        })
    }
    pub fn backup(&self, region: &str) -> aws_sdk_backup::Client {
        self.backup.get(region, || {
            aws_sdk_backup::Client::from_conf(
                aws_sdk_backup::config::Builder::from(&self.config(region)).timeout_config(timeouts("backup")).build(),
            )
        })
    }
    pub fn secretsmanager(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        self.secrets.get(region, || {
            aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&self.config(region))
                    .timeout_config(timeouts("secretsmanager"))
                    .build(),
            )
        })
    }
    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        self.dynamodb.get(region, || {
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&self.config(region))
                    .timeout_config(timeouts("dynamodb"))
                    .build(),
            )
        })
    }
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        self.kms.get(region, || {
            aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&self.config(region)).timeout_config(timeouts("kms")).build(),
            )
        })
    }
    pub fn acm(&self, region: &str) -> aws_sdk_acm::Client {
        self.acm.get(region, || {
            aws_sdk_acm::Client::from_conf(
                aws_sdk_acm::config::Builder::from(&self.config(region)).timeout_config(timeouts("acm")).build(),
            )
        })
    }
    /// IAM is global; its endpoint is signed for us-east-1 whatever region is asked.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.iam.get("us-east-1", || {
            aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&self.config("us-east-1")).timeout_config(timeouts("iam")).build(),
            )
        })
    }
    pub fn servicequotas(&self, region: &str) -> aws_sdk_servicequotas::Client {
        self.quotas.get(region, || {
            aws_sdk_servicequotas::Client::from_conf(
                aws_sdk_servicequotas::config::Builder::from(&self.config(region))
                    .timeout_config(timeouts("servicequotas"))
                    .build(),
            )
        })
    }
}

/// Tags drconsole puts on everything it creates, so a later attempt (or a re-run) finds it instead of creating a
/// duplicate, and so an operator can see what a recovery created.
pub const TAG_RUN: &str = "drconsole:run";
pub const TAG_STEP: &str = "drconsole:step";
pub const TAG_RUNBOOK: &str = "drconsole:runbook";

/// The port implemented on AWS: every service trait, over one set of clients and one account guard.
pub struct Aws {
    pub clients: Arc<Clients>,
    guard: AccountGuard,
    /// Changes here are refused (a drill's primary region).
    read_only_regions: Vec<String>,
    /// What a read just before a create already fetched, kept for that create so it does not read it again:
    /// a launch template's versions (by region and name), taken by the next CreateLaunchTemplateVersion.
    lt_versions: Mutex<HashMap<(String, String), Vec<aws_sdk_ec2::types::LaunchTemplateVersion>>>,
}

/// See [`Clients::shapes`]: answers by the call and its arguments (region, filter), kept for the process. One call
/// at a time per kind, so steps running in parallel (nat.ensure and elb.ensure both look up the VPC) share one
/// answer.
#[derive(Default)]
pub(crate) struct ShapeCache {
    pub(crate) vpcs: tokio::sync::Mutex<HashMap<String, Vec<crate::cloud::Vpc>>>,
    pub(crate) subnets: tokio::sync::Mutex<HashMap<String, Vec<crate::cloud::Subnet>>>,
    pub(crate) zones: tokio::sync::Mutex<HashMap<String, Vec<crate::cloud::HostedZone>>>,
    /// The names of each region's backup vaults (made by the backup setup, not during a recovery); an empty answer
    /// is kept too: no vault appears during a run.
    pub(crate) vaults: tokio::sync::Mutex<HashMap<String, Vec<String>>>,
}

impl ShapeCache {
    pub(crate) fn key(region: &str, f: &crate::cloud::Filter) -> String {
        format!("{region}\u{0}{f:?}")
    }

    /// The kept answer for `key`, else `fetch`'s (kept when it found something).
    pub(crate) async fn cached<T, F, Fut>(
        m: &tokio::sync::Mutex<HashMap<String, Vec<T>>>,
        key: String,
        fetch: F,
    ) -> crate::cloud::CloudResult<Vec<T>>
    where
        T: Clone,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = crate::cloud::CloudResult<Vec<T>>>,
    {
        Self::kept(m, key, false, fetch).await
    }

    /// As [`ShapeCache::cached`], keeping an empty answer too when `keep_empty`.
    pub(crate) async fn kept<T, F, Fut>(
        m: &tokio::sync::Mutex<HashMap<String, Vec<T>>>,
        key: String,
        keep_empty: bool,
        fetch: F,
    ) -> crate::cloud::CloudResult<Vec<T>>
    where
        T: Clone,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = crate::cloud::CloudResult<Vec<T>>>,
    {
        let mut kept = m.lock().await;
        if let Some(v) = kept.get(&key) {
            return Ok(v.clone());
        }
        let v = fetch().await?;
        if keep_empty || !v.is_empty() {
            kept.insert(key, v.clone());
        }
        Ok(v)
    }
}

/// Probes a region whose circuit is open with its cheapest read: STS `GetCallerIdentity` there (Route 53:
/// `GetHostedZoneCount`; IAM: `GetAccountSummary`). Any answer, an error code included, closes the circuit: the
/// circuit sees the HTTP answer, not the call's result.
fn prober(clients: std::sync::Weak<Clients>) -> crate::cloud::health::Prober {
    Arc::new(move |key: String| {
        let clients = clients.clone();
        Box::pin(async move {
            let Some(c) = clients.upgrade() else { return };
            match key.as_str() {
                "route53" => drop(c.route53().get_hosted_zone_count().send().await),
                "iam" => drop(c.iam().get_account_summary().send().await),
                region => drop(c.sts(region).get_caller_identity().send().await),
            }
        })
    })
}

/// `drconsole-<app>` as the SDK's app name (letters, digits and `-._` and a few more; at most 50), if it is one.
fn app_name(app: &str) -> Option<aws_config::AppName> {
    let name: String = format!("drconsole-{app}").chars().take(50).collect();
    aws_config::AppName::new(name).ok()
}

/// Error code of the refusal by the account guard (a `CloudError` with this code means: nothing was changed).
pub use crate::cloud::CODE_ACCOUNT_MISMATCH as ACCOUNT_MISMATCH;

impl Aws {
    /// `home_region` is where STS is asked who the credentials belong to; `account` is the runbook's
    /// `target.account` guard, if any.
    pub fn new(clients: Arc<Clients>, home_region: &str, account: Option<String>) -> Self {
        let guard = AccountGuard::new(clients.clone(), home_region, account);
        Self { clients, guard, read_only_regions: Vec::new(), lt_versions: Mutex::new(HashMap::new()) }
    }

    /// Refuses every change in these regions (a drill never writes its primary region).
    pub fn with_read_only_regions(mut self, regions: Vec<String>) -> Self {
        self.read_only_regions = regions;
        self
    }

    /// The port over this adapter.
    pub fn into_cloud(self) -> crate::cloud::Cloud {
        let health = self.clients.health.clone();
        crate::cloud::Cloud::from_all("aws", Arc::new(self)).with_health(health)
    }

    pub fn guard(&self) -> &AccountGuard {
        &self.guard
    }

    /// Called by every method that changes something, before it calls AWS.
    async fn allow_change(&self, service: &str, operation: &str, region: &str) -> crate::cloud::CloudResult<()> {
        if !region.is_empty() && self.read_only_regions.iter().any(|r| r == region) {
            return Err(crate::cloud::CloudError::new(
                service,
                operation,
                region,
                "DrillReadOnlyRegion",
                format!("refused: {region} is the primary region of a drill, which is never written; nothing was sent"),
            )
            .with_kind(crate::cloud::ErrorKind::Refused));
        }
        match self.guard.check().await {
            Ok(()) => Ok(()),
            Err(guard::GuardError::Sts(e)) => Err(e),
            Err(e @ guard::GuardError::WrongAccount { .. }) => {
                Err(crate::cloud::CloudError::new(service, operation, region, ACCOUNT_MISMATCH, e.to_string()))
            }
        }
    }
}

/// The cloud port on AWS for a runbook's target: clients from the standard chain (or `opts`), the account guard
/// set to `target.account`. STS is asked in the secondary region: in a regional failover the primary region's
/// endpoints may be the ones that are down.
pub async fn cloud_for(opts: &AwsOptions, target: &crate::runbook::Target) -> crate::cloud::Cloud {
    let clients = Clients::load(opts).await;
    Aws::new(clients, &target.secondary, target.account.clone())
        .with_read_only_regions(opts.read_only_regions.clone())
        .into_cloud()
}
