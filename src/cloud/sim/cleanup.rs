//! The port's deletes on the simulated world, with the states and durations AWS has: an ASG deleted with
//! ForceDelete scales in (its instances Terminating → Terminated, 1-2 min) and is gone after them; a NAT gateway
//! is `deleting` about a minute, then `deleted` (and its Elastic IP cannot be released before that); a DB instance
//! is `deleting` 5-10 minutes; load balancers, target groups, volumes, snapshots and AMIs go at once (their
//! listeners, WAF associations and registered targets with them).

use std::time::Duration;

use async_trait::async_trait;

use super::{Sim, Timeline, World};
use crate::cloud::cleanup::*;
use crate::cloud::*;

fn gone_state(s: &str) -> bool {
    matches!(s, "deleted" | "terminated" | "Terminated")
}

fn found(kind: &str, id: &str, region: &str, state: &str, tags: &Tags) -> Found {
    Found { kind: kind.into(), id: id.into(), region: region.into(), state: state.into(), tags: tags.clone() }
}

impl World {
    /// The zone holding a record name (the longest zone name it ends with).
    fn zone_of(&self, record: &str) -> Option<String> {
        let n = super::provision::fqdn(record);
        self.zones
            .values()
            .filter(|z| n == z.name || n.ends_with(&format!(".{}", z.name)))
            .max_by_key(|z| z.name.len())
            .map(|z| z.id.clone())
    }

    fn describe_one(&mut self, region: &str, kind: &str, id: &str, now: jiff::Timestamp) -> Option<Found> {
        if kind == KIND_DNS_RECORD {
            let zone = self.zone_of(id)?;
            let n = super::provision::fqdn(id);
            return self
                .records
                .get(&zone)?
                .iter()
                .find(|r| r.name == n)
                .map(|_| found(kind, id, "", "INSYNC", &Tags::new()));
        }
        if kind == KIND_HEALTH_CHECK {
            return self.health_checks.get(id).map(|_| found(kind, id, "", "", &Tags::new()));
        }
        let r = self.now_region(region);
        match kind {
            KIND_ASG => r.asgs.get(id).filter(|a| a.deleted_at.is_none_or(|t| t > now)).map(|a| {
                found(
                    kind,
                    id,
                    region,
                    if a.deleted_at.is_some() { "Delete in progress" } else { "InService" },
                    &a.group.tags,
                )
            }),
            KIND_EC2_INSTANCE => r
                .instances
                .get(id)
                .map(|i| (i.tl.state(now), i))
                .filter(|(s, _)| !gone_state(s))
                .map(|(s, i)| found(kind, id, region, &s, &i.item.tags)),
            KIND_LOAD_BALANCER => r.lbs.get(id).map(|l| found(kind, id, region, &l.tl.state(now), &l.item.tags)),
            KIND_TARGET_GROUP => r.tgs.get(id).map(|t| found(kind, id, region, "", &t.tags)),
            KIND_NAT => r
                .nats
                .get(id)
                .map(|n| (n.tl.state(now), n))
                .filter(|(s, _)| !gone_state(s))
                .map(|(s, n)| found(kind, id, region, &s, &n.item.tags)),
            KIND_EIP => r.addresses.get(id).map(|a| found(kind, id, region, &a.public_ip, &a.tags)),
            KIND_VOLUME => r.volumes.get(id).map(|v| found(kind, id, region, &v.tl.state(now), &v.item.tags)),
            KIND_DB => r
                .dbs
                .get(id)
                .map(|d| (d.tl.state(now), d))
                .filter(|(s, _)| !gone_state(s))
                .map(|(s, d)| found(kind, id, region, &s, &d.item.tags)),
            KIND_DB_SNAPSHOT => r.db_snapshots.get(id).map(|d| found(kind, id, region, &d.tl.state(now), &d.item.tags)),
            KIND_AMI => r.images.get(id).map(|i| found(kind, id, region, &i.tl.state(now), &i.item.tags)),
            KIND_EBS_SNAPSHOT => r.snapshots.get(id).map(|s| found(kind, id, region, &s.tl.state(now), &s.item.tags)),
            KIND_LT_VERSION => {
                let (name, v) = id.rsplit_once(':')?;
                let v: usize = v.parse().ok()?;
                let lt = r.launch_templates.get(name)?;
                let state = if u64::try_from(v).ok() == Some(lt.default_version) { "default" } else { "" };
                lt.version_images
                    .get(v.checked_sub(1)?)
                    .filter(|img| !img.is_empty())
                    .map(|_| found(kind, id, region, state, &Tags::new()))
            }
            KIND_TABLE => r.tables.get(id).map(|t| found(kind, id, region, &t.status, &Tags::new())),
            KIND_NAT_CLAIM => r.security_groups.get(id).map(|g| found(kind, id, region, "", &g.tags)),
            _ => None,
        }
    }
}

#[async_trait]
impl Cleanup for Sim {
    async fn tagged(&self, region: &str, key: &str, value: &str) -> CloudResult<Vec<Found>> {
        self.call("tagging", "GetResources", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let has = |t: &Tags| t.get(key).is_some_and(|v| v == value);
        let r = w.now_region(region);
        let mut out = Vec::new();
        for (id, a) in &r.asgs {
            if has(&a.group.tags) && a.deleted_at.is_none_or(|t| t > now) {
                out.push(found(KIND_ASG, id, region, "", &a.group.tags));
            }
        }
        for (id, i) in &r.instances {
            if has(&i.item.tags) && !gone_state(&i.tl.state(now)) {
                out.push(found(KIND_EC2_INSTANCE, id, region, &i.tl.state(now), &i.item.tags));
            }
        }
        for (id, l) in &r.lbs {
            if has(&l.item.tags) {
                out.push(found(KIND_LOAD_BALANCER, id, region, &l.tl.state(now), &l.item.tags));
            }
        }
        for (id, t) in &r.tgs {
            if has(&t.tags) {
                out.push(found(KIND_TARGET_GROUP, id, region, "", &t.tags));
            }
        }
        for (id, n) in &r.nats {
            if has(&n.item.tags) && !gone_state(&n.tl.state(now)) {
                out.push(found(KIND_NAT, id, region, &n.tl.state(now), &n.item.tags));
            }
        }
        for (id, a) in &r.addresses {
            if has(&a.tags) {
                out.push(found(KIND_EIP, id, region, "", &a.tags));
            }
        }
        for (id, g) in &r.security_groups {
            if has(&g.tags) {
                out.push(found(KIND_NAT_CLAIM, id, region, "", &g.tags));
            }
        }
        for (id, v) in &r.volumes {
            if has(&v.item.tags) {
                out.push(found(KIND_VOLUME, id, region, &v.tl.state(now), &v.item.tags));
            }
        }
        for (id, d) in &r.dbs {
            if has(&d.item.tags) && !gone_state(&d.tl.state(now)) {
                out.push(found(KIND_DB, id, region, &d.tl.state(now), &d.item.tags));
            }
        }
        for (id, s) in &r.db_snapshots {
            if has(&s.item.tags) {
                out.push(found(KIND_DB_SNAPSHOT, id, region, &s.tl.state(now), &s.item.tags));
            }
        }
        for (id, i) in &r.images {
            if has(&i.item.tags) {
                out.push(found(KIND_AMI, id, region, &i.tl.state(now), &i.item.tags));
            }
        }
        for (id, s) in &r.snapshots {
            if has(&s.item.tags) {
                out.push(found(KIND_EBS_SNAPSHOT, id, region, &s.tl.state(now), &s.item.tags));
            }
        }
        Ok(out)
    }

    async fn describe(&self, region: &str, kind: &str, id: &str) -> CloudResult<Option<Found>> {
        self.call("tagging", "Describe", region).await?;
        let now = self.clock.now();
        Ok(self.lock().describe_one(region, kind, id, now))
    }

    async fn delete(&self, region: &str, kind: &str, id: &str) -> CloudResult<()> {
        let (service, op) = match kind {
            KIND_ASG => ("autoscaling", "DeleteAutoScalingGroup"),
            KIND_EC2_INSTANCE => ("ec2", "TerminateInstances"),
            KIND_LOAD_BALANCER => ("elbv2", "DeleteLoadBalancer"),
            KIND_TARGET_GROUP => ("elbv2", "DeleteTargetGroup"),
            KIND_NAT => ("ec2", "DeleteNatGateway"),
            KIND_EIP => ("ec2", "ReleaseAddress"),
            KIND_VOLUME => ("ec2", "DeleteVolume"),
            KIND_DB => ("rds", "DeleteDBInstance"),
            KIND_DB_SNAPSHOT => ("rds", "DeleteDBSnapshot"),
            KIND_AMI => ("ec2", "DeregisterImage"),
            KIND_EBS_SNAPSHOT => ("ec2", "DeleteSnapshot"),
            KIND_HEALTH_CHECK => ("route53", "DeleteHealthCheck"),
            KIND_DNS_RECORD => ("route53", "ChangeResourceRecordSets"),
            KIND_LT_VERSION => ("ec2", "DeleteLaunchTemplateVersions"),
            KIND_TABLE => ("dynamodb", "DeleteTable"),
            KIND_NAT_CLAIM => ("ec2", "DeleteSecurityGroup"),
            other => {
                return Err(CloudError::new(
                    "tagging",
                    "Delete",
                    region,
                    "UnknownKind",
                    format!("cannot delete a {other}"),
                ));
            }
        };
        let global = kind == KIND_DNS_RECORD || kind == KIND_HEALTH_CHECK;
        self.call(service, op, if global { "" } else { region }).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let err = |code: &str, msg: String| CloudError::new(service, op, region, code, msg);
        match kind {
            KIND_ASG => {
                let seed_durs: Vec<Duration> = {
                    let Some(a) = w.now_region(region).asgs.get(id) else { return Ok(()) };
                    if a.deleted_at.is_some() {
                        return Ok(());
                    }
                    a.instances
                        .iter()
                        .map(|i| i.id.clone())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|i| w.dur(90.0, &format!("terminate/{i}")))
                        .collect()
                };
                let r = w.now_region(region);
                let Some(a) = r.asgs.get_mut(id) else { return Ok(()) };
                let mut end = super::add(now, Duration::from_secs(10));
                for (i, d) in a.instances.iter_mut().zip(seed_durs) {
                    i.tl.then(now, &[("Terminating", d)], "Terminated");
                    end = end.max(i.tl.end());
                }
                a.group.desired = 0;
                a.group.min = 0;
                a.deleted_at = Some(end);
                let ids: Vec<String> = a.instances.iter().map(|i| i.id.clone()).collect();
                let tgs = a.group.target_group_arns.clone();
                for tg in tgs {
                    if let Some(list) = r.targets.get_mut(&tg) {
                        list.retain(|t| !ids.contains(&t.id));
                    }
                }
            }
            KIND_EC2_INSTANCE => {
                let d = w.dur(60.0, &format!("terminate/{id}"));
                if let Some(i) = w.now_region(region).instances.get_mut(id)
                    && !gone_state(&i.tl.state(now))
                {
                    i.tl.then(now, &[("shutting-down", d)], "terminated");
                }
            }
            KIND_LOAD_BALANCER => {
                let r = w.now_region(region);
                if let Some(lb) = r.lbs.remove(id) {
                    // its listeners and WAF association go with it
                    r.listeners.retain(|_, l| l.load_balancer_arn != lb.item.arn);
                    r.waf_associations.remove(&lb.item.arn);
                }
            }
            KIND_TARGET_GROUP => {
                let r = w.now_region(region);
                let Some(tg) = r.tgs.get(id).cloned() else { return Ok(()) };
                if r.listeners.values().any(|l| l.target_group_arn == tg.arn) {
                    return Err(err(
                        "ResourceInUse",
                        format!("Target group '{}' is currently in use by a listener", tg.arn),
                    ));
                }
                r.tgs.remove(id);
                r.targets.remove(&tg.arn);
            }
            KIND_NAT => {
                let d = w.dur(60.0, &format!("delete/{id}"));
                if let Some(n) = w.now_region(region).nats.get_mut(id) {
                    let s = n.tl.state(now);
                    if s != "deleting" && !gone_state(&s) {
                        n.tl = Timeline::steps(now, &[("deleting", d)], "deleted");
                    }
                }
            }
            KIND_NAT_CLAIM => {
                w.now_region(region).security_groups.remove(id);
            }
            KIND_EIP => {
                let r = w.now_region(region);
                if r.nats.values().any(|n| n.item.allocation_id == id && !gone_state(&n.tl.state(now))) {
                    // AWS: the address is still associated with a NAT gateway that is not deleted yet
                    return Err(err("InvalidIPAddress.InUse", format!("Address {id} is in use")).retryable());
                }
                r.addresses.remove(id);
            }
            KIND_VOLUME => {
                let r = w.now_region(region);
                if let Some(v) = r.volumes.get(id)
                    && !v.item.attachments.is_empty()
                {
                    return Err(err("VolumeInUse", format!("Volume {id} is currently attached")));
                }
                r.volumes.remove(id);
            }
            KIND_DB => {
                let d = w.dur(450.0, &format!("delete/{id}"));
                if let Some(db) = w.now_region(region).dbs.get_mut(id) {
                    let s = db.tl.state(now);
                    if s != "deleting" && !gone_state(&s) {
                        // SkipFinalSnapshot: 5-10 minutes of `deleting`
                        db.tl = Timeline::steps(now, &[("deleting", d)], "deleted");
                    }
                }
            }
            KIND_DB_SNAPSHOT => {
                w.now_region(region).db_snapshots.remove(id);
            }
            KIND_AMI => {
                let r = w.now_region(region);
                if let Some(img) = r.images.remove(id) {
                    // DeregisterImage, then DeleteSnapshot of its block devices
                    for s in &img.item.snapshot_ids {
                        r.snapshots.remove(s);
                    }
                }
            }
            KIND_EBS_SNAPSHOT => {
                let r = w.now_region(region);
                if r.images.values().any(|i| i.item.snapshot_ids.iter().any(|s| s == id)) {
                    return Err(err(
                        "InvalidSnapshot.InUse",
                        format!("The snapshot {id} is currently in use by an AMI"),
                    ));
                }
                r.snapshots.remove(id);
            }
            KIND_HEALTH_CHECK => {
                w.health_checks.remove(id);
            }
            KIND_DNS_RECORD => {
                let n = super::provision::fqdn(id);
                if let Some(zone) = w.zone_of(id)
                    && let Some(recs) = w.records.get_mut(&zone)
                {
                    recs.retain(|r| r.name != n);
                }
            }
            KIND_LT_VERSION => {
                let Some((name, v)) = id.rsplit_once(':') else {
                    return Err(err("InvalidLaunchTemplateVersion", format!("{id}: write NAME:VERSION")));
                };
                let v: usize =
                    v.parse().map_err(|_| err("InvalidLaunchTemplateVersion", format!("{id}: not a version")))?;
                if let Some(lt) = w.now_region(region).launch_templates.get_mut(name)
                    && let Some(i) = v.checked_sub(1).filter(|i| *i < lt.version_images.len())
                {
                    if u64::try_from(v).ok() == Some(lt.default_version) {
                        // AWS refuses to delete the default version: the newest other version becomes the default
                        match lt.version_images[..i].iter().rposition(|img| !img.is_empty()) {
                            Some(p) => {
                                lt.default_version = u64::try_from(p + 1).unwrap_or(1);
                                lt.image_id = lt.version_images[p].clone();
                            }
                            None => {
                                return Err(err(
                                    "InvalidLaunchTemplateVersion.DefaultVersion",
                                    format!("{id} is the default and only version of {name}"),
                                ));
                            }
                        }
                    }
                    lt.version_images[i].clear();
                }
            }
            KIND_TABLE => {
                w.now_region(region).tables.remove(id);
            }
            _ => {}
        }
        Ok(())
    }

    async fn route_target(&self, region: &str, table: &str, destination: &str) -> CloudResult<Option<String>> {
        self.call("ec2", "DescribeRouteTables", region).await?;
        let mut w = self.lock();
        let Some(t) = w.now_region(region).route_tables.get(table) else { return Ok(None) };
        Ok(t.routes
            .iter()
            .find(|r| r.destination == destination)
            .and_then(|r| r.nat_gateway_id.clone().or_else(|| r.gateway_id.clone())))
    }

    async fn restore_route(
        &self,
        region: &str,
        table: &str,
        destination: &str,
        previous: Option<&str>,
    ) -> CloudResult<()> {
        let op = if previous.is_some() { "ReplaceRoute" } else { "DeleteRoute" };
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        let Some(t) = w.now_region(region).route_tables.get_mut(table) else {
            return Err(CloudError::new(
                "ec2",
                op,
                region,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{table}' does not exist"),
            )
            .not_found());
        };
        t.routes.retain(|r| r.destination != destination);
        if let Some(p) = previous {
            let nat = p.starts_with("nat-");
            t.routes.push(Route {
                destination: destination.into(),
                nat_gateway_id: nat.then(|| p.to_string()),
                gateway_id: (!nat).then(|| p.to_string()),
            });
        }
        Ok(())
    }
}
