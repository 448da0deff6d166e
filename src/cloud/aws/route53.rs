//! Route 53 (global): hosted zones, record sets (UPSERT in one change batch), changes, health checks.
//!
//! UPSERT is idempotent by nature; health checks use Route 53's own idempotency key, the caller reference.

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget as SdkAlias, Change, ChangeAction, ChangeBatch, HealthCheckConfig as SdkHcConfig, HealthCheckType,
    ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};

use super::Aws;
use super::convert::ts;
use super::error::from_sdk;
use crate::cloud::{
    AliasTarget, ChangeInfo, CloudError, CloudResult, HealthCheck, HealthCheckConfig, HostedZone, RecordSet, Route53,
};

const SVC: &str = "route53";

pub(super) fn fqdn(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

/// `/hostedzone/Z123` → `Z123`; `/change/C1` → `C1`.
fn short_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

/// Route 53 escapes `*` as `\052` in names it returns.
fn unescape(name: &str) -> String {
    name.replace("\\052", "*")
}

fn record(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: unescape(r.name()),
        rtype: r.r#type().as_str().to_string(),
        ttl: r.ttl().and_then(|t| u32::try_from(t).ok()),
        values: r.resource_records().iter().map(|v| v.value().to_string()).collect(),
        alias: r.alias_target().map(|a| AliasTarget {
            dns_name: a.dns_name().to_string(),
            hosted_zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        set_identifier: r.set_identifier().map(str::to_string),
        failover: r.failover().map(|f| f.as_str().to_string()),
        weight: r.weight().and_then(|w| u32::try_from(w).ok()),
        health_check_id: r.health_check_id().map(str::to_string),
    }
}

pub(super) fn sdk_record(r: &RecordSet) -> Result<ResourceRecordSet, String> {
    let mut b = ResourceRecordSet::builder().name(fqdn(&r.name)).r#type(RrType::from(r.rtype.as_str()));
    if let Some(a) = &r.alias {
        b = b.alias_target(
            SdkAlias::builder()
                .dns_name(&a.dns_name)
                .hosted_zone_id(&a.hosted_zone_id)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(|e| e.to_string())?,
        );
    } else {
        b = b.ttl(i64::from(r.ttl.unwrap_or(60)));
        for v in &r.values {
            b = b.resource_records(ResourceRecord::builder().value(v).build().map_err(|e| e.to_string())?);
        }
    }
    if let Some(s) = &r.set_identifier {
        b = b.set_identifier(s);
    }
    if let Some(f) = &r.failover {
        b = b.failover(ResourceRecordSetFailover::from(f.as_str()));
    }
    if let Some(w) = r.weight {
        b = b.weight(i64::from(w));
    }
    if let Some(h) = &r.health_check_id {
        b = b.health_check_id(h);
    }
    b.build().map_err(|e| e.to_string())
}

fn change_info(c: &aws_sdk_route53::types::ChangeInfo) -> ChangeInfo {
    ChangeInfo { id: short_id(c.id()), status: c.status().as_str().to_string(), submitted: ts(Some(c.submitted_at())) }
}

fn health_check(h: &aws_sdk_route53::types::HealthCheck) -> HealthCheck {
    let c = h.health_check_config();
    HealthCheck {
        id: h.id().to_string(),
        caller_reference: h.caller_reference().to_string(),
        config: HealthCheckConfig {
            check_type: c.map(|c| c.r#type().as_str().to_string()).unwrap_or_default(),
            fqdn: c.and_then(|c| c.fully_qualified_domain_name()).unwrap_or_default().to_string(),
            port: c.and_then(|c| c.port()).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            path: c.and_then(|c| c.resource_path()).map(str::to_string),
            failure_threshold: c.and_then(|c| c.failure_threshold()).and_then(|p| u32::try_from(p).ok()).unwrap_or(3),
        },
    }
}

impl Aws {
    async fn fetch_hosted_zones(&self, want: String) -> CloudResult<Vec<HostedZone>> {
        let client = self.clients.route53();
        let mut found = Vec::new();
        let mut next: Option<(String, Option<String>)> = Some((want.clone(), None));
        while let Some((dns, zone)) = next.take() {
            let out = client
                .list_hosted_zones_by_name()
                .dns_name(&dns)
                .set_hosted_zone_id(zone)
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "ListHostedZonesByName", "", e))?;
            let mut past = false;
            for z in out.hosted_zones() {
                if fqdn(z.name()) == want {
                    found.push(HostedZone {
                        id: short_id(z.id()),
                        name: z.name().to_string(),
                        private: z.config().is_some_and(|c| c.private_zone()),
                    });
                } else {
                    // zones come sorted by name: once past ours, stop
                    past = true;
                }
            }
            if out.is_truncated()
                && !past
                && let Some(d) = out.next_dns_name()
            {
                next = Some((d.to_string(), out.next_hosted_zone_id().map(str::to_string)));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl Route53 for Aws {
    /// Read once per run for a name (see [`Clients::shapes`]): the upsert and the check after it ask for one zone.
    async fn find_hosted_zones(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        let want = fqdn(name);
        super::ShapeCache::cached(&self.clients.shapes.zones, want.clone(), || self.fetch_hosted_zones(want.clone()))
            .await
    }

    async fn list_record_sets(&self, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>> {
        let want = fqdn(name);
        let client = self.clients.route53();
        let mut out_sets = Vec::new();
        let mut start: Option<(String, Option<RrType>, Option<String>)> = Some((want.clone(), None, None));
        while let Some((n, t, ident)) = start.take() {
            let r = client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(&n)
                .set_start_record_type(t)
                .set_start_record_identifier(ident)
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "ListResourceRecordSets", "", e))?;
            let mut past = false;
            for s in r.resource_record_sets() {
                if fqdn(&unescape(s.name())) == want {
                    out_sets.push(record(s));
                } else {
                    past = true;
                }
            }
            if r.is_truncated()
                && !past
                && let Some(nn) = r.next_record_name()
            {
                start = Some((
                    nn.to_string(),
                    r.next_record_type().cloned(),
                    r.next_record_identifier().map(str::to_string),
                ));
            }
        }
        Ok(out_sets)
    }

    async fn upsert_records(&self, zone_id: &str, records: &[RecordSet], comment: &str) -> CloudResult<ChangeInfo> {
        const OP: &str = "ChangeResourceRecordSets";
        self.allow_change(SVC, OP, "").await?;
        let changes = records
            .iter()
            .map(|r| {
                let set = sdk_record(r)?;
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CloudError::new(SVC, OP, "", "InvalidInput", e))?;
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(|e| CloudError::new(SVC, OP, "", "InvalidInput", e.to_string()))?;
        let out = self
            .clients
            .route53()
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, "", e))?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| CloudError::new(SVC, OP, "", "EmptyResponse", "no ChangeInfo in the answer"))
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        let out = self
            .clients
            .route53()
            .get_change()
            .id(short_id(change_id))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "GetChange", "", e))?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| CloudError::new(SVC, "GetChange", "", "EmptyResponse", "no ChangeInfo in the answer"))
    }

    async fn find_health_check(&self, caller_reference: &str) -> CloudResult<Option<HealthCheck>> {
        let all: Result<Vec<_>, _> =
            self.clients.route53().list_health_checks().into_paginator().items().send().collect().await;
        let all = all.map_err(|e| from_sdk(SVC, "ListHealthChecks", "", e))?;
        Ok(all.iter().find(|h| h.caller_reference() == caller_reference).map(health_check))
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> CloudResult<HealthCheck> {
        const OP: &str = "CreateHealthCheck";
        // no lookup first: route53.health_check looked for the caller reference
        self.allow_change(SVC, OP, "").await?;
        let cfg = SdkHcConfig::builder()
            .r#type(HealthCheckType::from(config.check_type.as_str()))
            .fully_qualified_domain_name(&config.fqdn)
            .port(i32::from(config.port))
            .set_resource_path(config.path.clone())
            .failure_threshold(i32::try_from(config.failure_threshold).unwrap_or(3))
            .build()
            .map_err(|e| CloudError::new(SVC, OP, "", "InvalidInput", e.to_string()))?;
        // the caller reference is Route 53's idempotency key: a retried call returns the same check
        let out = self
            .clients
            .route53()
            .create_health_check()
            .caller_reference(caller_reference)
            .health_check_config(cfg)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, "", e))?;
        out.health_check()
            .map(health_check)
            .ok_or_else(|| CloudError::new(SVC, OP, "", "EmptyResponse", "no HealthCheck in the answer"))
    }

    async fn health_check_status(&self, id: &str) -> CloudResult<String> {
        let out = self
            .clients
            .route53()
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "GetHealthCheckStatus", "", e))?;
        let obs = out.health_check_observations();
        let ok = obs
            .iter()
            .filter(|o| o.status_report().and_then(|r| r.status()).is_some_and(|s| s.starts_with("Success")))
            .count();
        // Route 53 considers an endpoint healthy when more than 18 % of its checkers do
        Ok(if !obs.is_empty() && ok * 100 > obs.len() * 18 { "Healthy" } else { "Unhealthy" }.to_string())
    }
}
