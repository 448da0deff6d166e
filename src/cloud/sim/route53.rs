//! Route 53 in the simulator: hosted zones, record sets, changes going PENDING → INSYNC, health checks.

use async_trait::async_trait;

use super::provision::fqdn;
use super::{Sim, Timed, Timeline, bad, nf};
use crate::cloud::*;

#[async_trait]
impl Route53 for Sim {
    async fn find_hosted_zones(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        self.call("route53", "ListHostedZonesByName", "").await?;
        let w = self.lock();
        let n = fqdn(name);
        Ok(w.zones.values().filter(|z| z.name == n).cloned().collect())
    }

    async fn list_record_sets(&self, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>> {
        self.call("route53", "ListResourceRecordSets", "").await?;
        let w = self.lock();
        let n = fqdn(name);
        let recs = w.records.get(zone_id).ok_or_else(|| {
            nf(
                "route53",
                "ListResourceRecordSets",
                "",
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })?;
        Ok(recs.iter().filter(|r| r.name == n).cloned().collect())
    }

    async fn upsert_records(&self, zone_id: &str, records: &[RecordSet], comment: &str) -> CloudResult<ChangeInfo> {
        let op = "ChangeResourceRecordSets";
        self.call("route53", op, "").await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let zone = w.zones.get(zone_id).cloned().ok_or_else(|| {
            nf("route53", op, "", "NoSuchHostedZone", format!("No hosted zone found with ID: {zone_id}"))
        })?;
        for r in records {
            if !(r.name == zone.name || r.name.ends_with(&format!(".{}", zone.name))) {
                return Err(bad(
                    "route53",
                    op,
                    "",
                    "InvalidChangeBatch",
                    format!("RRSet with DNS name {} is not permitted in zone {}", r.name, zone.name),
                ));
            }
            if r.alias.is_none() && r.values.is_empty() {
                return Err(bad(
                    "route53",
                    op,
                    "",
                    "InvalidInput",
                    format!("record {} has neither values nor an alias target", r.name),
                ));
            }
        }
        let id = format!("C{:019X}", super::hash_of(&(w.seed, zone_id, comment, w.changes.len())));
        let d = w.dur(60.0, &id);
        let recs = w.records.entry(zone_id.into()).or_default();
        for r in records {
            recs.retain(|x| !(x.name == r.name && x.rtype == r.rtype && x.set_identifier == r.set_identifier));
            recs.push(r.clone());
        }
        let info = ChangeInfo { id: id.clone(), status: "PENDING".into(), submitted: now };
        w.changes.insert(id, Timed { item: info.clone(), tl: Timeline::steps(now, &[("PENDING", d)], "INSYNC") });
        Ok(info)
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        self.call("route53", "GetChange", "").await?;
        let now = self.clock.now();
        let w = self.lock();
        let c = w.changes.get(change_id).ok_or_else(|| {
            nf(
                "route53",
                "GetChange",
                "",
                "NoSuchChange",
                format!("A change with the specified change ID does not exist: {change_id}"),
            )
        })?;
        let mut x = c.item.clone();
        x.status = c.tl.state(now);
        Ok(x)
    }

    async fn find_health_check(&self, caller_reference: &str) -> CloudResult<Option<HealthCheck>> {
        self.call("route53", "ListHealthChecks", "").await?;
        let w = self.lock();
        Ok(w.health_checks.values().find(|h| h.caller_reference == caller_reference).cloned())
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> CloudResult<HealthCheck> {
        self.call("route53", "CreateHealthCheck", "").await?;
        let mut w = self.lock();
        if let Some(h) = w.health_checks.values().find(|h| h.caller_reference == caller_reference) {
            return Ok(h.clone());
        }
        let h = super::hash_of(&(w.seed, caller_reference));
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h as u32,
            (h >> 32) as u16,
            (h >> 48) & 0xfff,
            h & 0xfff,
            h & 0xffff_ffff_ffff
        );
        let hc = HealthCheck { id: id.clone(), caller_reference: caller_reference.into(), config: config.clone() };
        w.health_checks.insert(id, hc.clone());
        Ok(hc)
    }

    async fn health_check_status(&self, id: &str) -> CloudResult<String> {
        self.call("route53", "GetHealthCheckStatus", "").await?;
        let w = self.lock();
        if w.failing_health_checks.contains(id) {
            Ok("Unhealthy".into())
        } else if w.health_checks.contains_key(id) {
            Ok("Healthy".into())
        } else {
            Err(nf(
                "route53",
                "GetHealthCheckStatus",
                "",
                "NoSuchHealthCheck",
                format!("health check {id} does not exist"),
            ))
        }
    }
}
