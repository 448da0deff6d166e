//! World/scenario files (`--world FILE`): settings, resources and injected faults for a tabletop exercise.
//!
//! ```toml
//! [world]
//! backups_stopped = "3h"              # the newest backup is 3 h old
//! copies_stopped = "6h"               # the cross-region copies stopped 6 h ago (the copy job failed)
//! disabled_kms_keys = ["alias/drconsole-dr"]  # DescribeKey says Disabled
//! elastic_ips_in_use = 5              # the secondary region's Elastic IP quota (elastic_ip_limit, 5) is used
//! missing_certificates = ["arn:aws:acm:us-west-2:123456789012:certificate/cross-sell"]
//! missing_security_groups = ["sg-0123"]   # also missing_db_subnet_groups = ["NAME"]
//! denied_actions = ["ec2:CreateNatGateway"]  # the caller's policies do not allow it (policy simulation)
//! quotas = { "vpc/L-FE5A380F" = 1, "ec2/L-1216C47A" = 8 }  # Service Quotas values (service/code)
//! unavailable_regions = ["us-east-1"] # every call there fails: a regional outage
//! brownout_regions = ["us-east-1"]    # every call there is accepted and never answered (a brownout)
//!
//! [[fault]]                           # the 1st RestoreDBInstanceFromDBSnapshot fails
//! operation = "rds:RestoreDBInstanceFromDBSnapshot"
//! nth = 1
//! error = "InsufficientDBInstanceCapacity"
//!
//! [[fault]]                           # 20% of EC2 calls in us-west-2 are throttled, each call 2 s slower
//! operation = "ec2:*"
//! region = "us-west-2"
//! throttle_rate = 0.2
//! latency = "2s"
//!
//! [[resource]]                        # a resource the runbook refers to, with its size
//! kind = "db"
//! id = "crosssell-prod"
//! size_gib = 2000
//! ```

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::WorldSettings;
use super::provision::Seed;
use crate::cloud::{CloudError, ErrorKind};
use crate::util::parse_duration;

/// A fault injected into the simulated API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `service:Operation`, `Operation`, or `service:*`.
    pub operation: String,
    /// Only calls to this region (default: any).
    pub region: Option<String>,
    /// Fail the Nth matching call (1-based) and the `times - 1` following ones.
    pub nth: Option<u64>,
    pub times: Option<u64>,
    /// The error code returned (default `Throttling` for a throttle rate).
    pub error: Option<String>,
    pub message: Option<String>,
    /// Whether the error is retryable (default: by code).
    pub retryable: Option<bool>,
    /// Fail this fraction of matching calls with `Throttling`.
    pub throttle_rate: Option<f64>,
    /// Extra latency on every matching call.
    pub latency: Option<Duration>,
}

impl Fault {
    /// A fault that fails the `nth` call of `operation` with `code`.
    pub fn nth(operation: &str, nth: u64, code: &str) -> Self {
        Self {
            operation: operation.into(),
            region: None,
            nth: Some(nth),
            times: None,
            error: Some(code.into()),
            message: None,
            retryable: None,
            throttle_rate: None,
            latency: None,
        }
    }

    pub(crate) fn matches(&self, service: &str, op: &str, region: &str) -> bool {
        let op_ok = match self.operation.split_once(':') {
            Some((s, "*")) => s.eq_ignore_ascii_case(service),
            Some((s, o)) => s.eq_ignore_ascii_case(service) && o == op,
            None => self.operation == op || self.operation == "*",
        };
        op_ok && self.region.as_deref().is_none_or(|r| r == region)
    }

    pub(crate) fn error(&self, service: &str, op: &str, region: &str) -> CloudError {
        let code = self.error.clone().unwrap_or_else(|| "Throttling".into());
        let message = self.message.clone().unwrap_or_else(|| match code.as_str() {
            "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => "Rate exceeded".to_string(),
            "InsufficientDBInstanceCapacity" => {
                "Cannot create a database instance because there is no capacity for the requested class in this Availability Zone (simulated fault)".to_string()
            }
            "InsufficientInstanceCapacity" => {
                "We currently do not have sufficient capacity in the Availability Zone you requested (simulated fault)".to_string()
            }
            c => format!("{c} (simulated fault)"),
        });
        // the port's classifier, as for AWS's answers; a fault file may still say otherwise
        let mut e = CloudError::new(service, op, region, &code, message).classified(None);
        if self.throttle_rate.is_some() {
            e.kind = ErrorKind::Throttling;
        }
        match self.retryable {
            Some(true) if !e.is_retryable() => e.kind = ErrorKind::Transient,
            Some(false) if e.is_retryable() => e.kind = ErrorKind::Fatal,
            _ => {}
        }
        e
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileFault {
    operation: String,
    region: Option<String>,
    nth: Option<u64>,
    times: Option<u64>,
    error: Option<String>,
    message: Option<String>,
    retryable: Option<bool>,
    throttle_rate: Option<f64>,
    latency: Option<String>,
    /// What the fault stands for, shown nowhere; for the reader of the file.
    #[allow(dead_code)]
    doc: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    account: Option<String>,
    backup_retention: Option<String>,
    backup_interval: Option<String>,
    backups_stopped: Option<String>,
    copies_stopped: Option<String>,
    #[serde(default)]
    disabled_kms_keys: Vec<String>,
    elastic_ip_limit: Option<u32>,
    /// Elastic IPs already allocated in the secondary region (by other workloads).
    elastic_ips_in_use: Option<u32>,
    #[serde(default)]
    missing_certificates: Vec<String>,
    #[serde(default)]
    missing_security_groups: Vec<String>,
    #[serde(default)]
    missing_db_subnet_groups: Vec<String>,
    #[serde(default)]
    quotas: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    denied_actions: Vec<String>,
    #[serde(default)]
    unavailable_regions: Vec<String>,
    #[serde(default)]
    brownout_regions: Vec<String>,
    api_latency: Option<String>,
    duration_scale: Option<f64>,
}

/// What `drconsole schema world` describes: the very type the loader reads.
pub(crate) type WorldSchema = File;

/// A simulator world or tabletop scenario file (`--world FILE`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(default)]
    world: FileSettings,
    #[serde(default)]
    fault: Vec<FileFault>,
    #[serde(default)]
    resource: Vec<Seed>,
    /// The scenario's story, for the people at the table.
    #[allow(dead_code)]
    description: Option<String>,
}

/// Settings given by a world file; `None` keeps the default.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub account: Option<String>,
    pub backup_retention: Option<Duration>,
    pub backup_interval: Option<Duration>,
    pub backups_stopped: Option<Duration>,
    pub copies_stopped: Option<Duration>,
    pub disabled_kms_keys: Vec<String>,
    pub elastic_ip_limit: Option<u32>,
    pub elastic_ips_in_use: Option<u32>,
    pub missing_certificates: Vec<String>,
    pub missing_security_groups: Vec<String>,
    pub missing_db_subnet_groups: Vec<String>,
    pub quotas: std::collections::BTreeMap<String, f64>,
    pub denied_actions: Vec<String>,
    pub unavailable_regions: Vec<String>,
    pub brownout_regions: Vec<String>,
    pub api_latency: Option<Duration>,
    pub duration_scale: Option<f64>,
}

impl SettingsPatch {
    pub fn apply(&self, s: &mut WorldSettings) {
        if let Some(a) = &self.account {
            s.account.clone_from(a);
        }
        if let Some(d) = self.backup_retention {
            s.backup_retention = d;
        }
        if let Some(d) = self.backup_interval {
            s.backup_interval = d;
        }
        if let Some(d) = self.backups_stopped {
            s.backups_stopped = d;
        }
        if let Some(d) = self.copies_stopped {
            s.copies_stopped = d;
        }
        s.disabled_kms_keys.extend(self.disabled_kms_keys.iter().cloned());
        if let Some(n) = self.elastic_ip_limit {
            s.elastic_ip_limit = n;
        }
        s.missing_certificates.extend(self.missing_certificates.iter().cloned());
        s.missing_security_groups.extend(self.missing_security_groups.iter().cloned());
        s.missing_db_subnet_groups.extend(self.missing_db_subnet_groups.iter().cloned());
        s.quotas.extend(self.quotas.iter().map(|(k, v)| (k.clone(), *v)));
        s.denied_actions.extend(self.denied_actions.iter().cloned());
        s.unavailable_regions.extend(self.unavailable_regions.iter().cloned());
        s.brownout_regions.extend(self.brownout_regions.iter().cloned());
        if let Some(d) = self.api_latency {
            s.api_latency = d;
        }
        if let Some(x) = self.duration_scale {
            s.duration_scale = x;
        }
    }
}

/// A parsed world file.
#[derive(Debug, Clone, Default)]
pub struct WorldFile {
    pub settings: SettingsPatch,
    pub faults: Vec<Fault>,
    pub resources: Vec<Seed>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorldFileError(pub String);

impl WorldFile {
    pub fn load(path: &Path) -> Result<Self, WorldFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WorldFileError(format!("{}: cannot read the world file: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a world file; errors say `file:line:col: what`.
    pub fn parse(text: &str, name: &str) -> Result<Self, WorldFileError> {
        let f: File = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            let line_text = text.lines().nth(line - 1).unwrap_or_default();
            WorldFileError(format!(
                "{name}:{line}:{col}: {}\n  | {line_text}\n  | {}^",
                e.message(),
                " ".repeat(col.saturating_sub(1))
            ))
        })?;
        let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, WorldFileError> {
            v.as_deref()
                .map(|s| {
                    if s == "0s" || s == "0" {
                        return Ok(Duration::ZERO);
                    }
                    parse_duration(s).map_err(|e| WorldFileError(format!("{name}: {field}: {e}")))
                })
                .transpose()
        };
        let w = &f.world;
        let settings = SettingsPatch {
            account: w.account.clone(),
            backup_retention: dur("world.backup_retention", &w.backup_retention)?,
            backup_interval: dur("world.backup_interval", &w.backup_interval)?,
            backups_stopped: dur("world.backups_stopped", &w.backups_stopped)?,
            copies_stopped: dur("world.copies_stopped", &w.copies_stopped)?,
            disabled_kms_keys: w.disabled_kms_keys.clone(),
            elastic_ip_limit: w.elastic_ip_limit,
            elastic_ips_in_use: w.elastic_ips_in_use,
            missing_certificates: w.missing_certificates.clone(),
            missing_security_groups: w.missing_security_groups.clone(),
            missing_db_subnet_groups: w.missing_db_subnet_groups.clone(),
            quotas: w.quotas.clone(),
            denied_actions: w.denied_actions.clone(),
            unavailable_regions: w.unavailable_regions.clone(),
            brownout_regions: w.brownout_regions.clone(),
            api_latency: dur("world.api_latency", &w.api_latency)?,
            duration_scale: w.duration_scale,
        };
        let mut faults = Vec::new();
        for (i, ff) in f.fault.iter().enumerate() {
            if ff.nth.is_none() && ff.throttle_rate.is_none() && ff.latency.is_none() && ff.error.is_none() {
                return Err(WorldFileError(format!(
                    "{name}: fault {} ({}) does nothing: give nth + error, throttle_rate, latency, or error",
                    i + 1,
                    ff.operation
                )));
            }
            if let Some(r) = ff.throttle_rate
                && !(0.0..=1.0).contains(&r)
            {
                return Err(WorldFileError(format!("{name}: fault {}: throttle_rate must be in 0..1", i + 1)));
            }
            faults.push(Fault {
                operation: ff.operation.clone(),
                region: ff.region.clone(),
                nth: ff.nth,
                times: ff.times,
                error: ff.error.clone(),
                message: ff.message.clone(),
                retryable: ff.retryable,
                throttle_rate: ff.throttle_rate,
                latency: dur(&format!("fault {} latency", i + 1), &ff.latency)?,
            });
        }
        Ok(Self { settings, faults, resources: f.resource })
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
