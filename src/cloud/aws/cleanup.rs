//! The port's deletes on AWS (`drconsole cleanup`): the tag sweep per service (EC2 describes with `tag:` filters,
//! RDS and ELBv2 listings with their tags, ASG listing), describes by kind through the adapter's own methods, and
//! the deletes: DeleteAutoScalingGroup (ForceDelete), TerminateInstances, DeleteLoadBalancer, DeleteTargetGroup,
//! DeleteNatGateway, ReleaseAddress, DeleteVolume, DeleteDBInstance (SkipFinalSnapshot), DeleteDBSnapshot,
//! DeregisterImage + DeleteSnapshot of its block devices, DeleteSnapshot, DeleteHealthCheck, a DELETE change of the
//! record, DeleteLaunchTemplateVersions (the default moved to the newest other version first), DeleteTable.
//! Every delete goes through the account guard and a drill's read-only region ([`Aws::allow_change`]).

use async_trait::async_trait;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::cleanup::*;
use crate::cloud::{Asg, CloudError, CloudResult, DbSnapshotQuery, Dynamodb, Ec2, Elb, Filter, Rds, Route53, Tags};

fn found(kind: &str, id: &str, region: &str, state: &str, tags: &Tags) -> Found {
    Found { kind: kind.into(), id: id.into(), region: region.into(), state: state.into(), tags: tags.clone() }
}

fn gone(state: &str) -> bool {
    matches!(state, "deleted" | "terminated")
}

fn ok_if_not_found(r: Result<(), CloudError>) -> CloudResult<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

impl Aws {
    /// The security groups of the region matching one EC2 filter (`group-id`, `tag:KEY`) that are drconsole's
    /// claims (named [`NAT_CLAIM_PREFIX`] and the zone), as the cleanup sees them.
    async fn claim_groups(&self, region: &str, filter: &str, value: &str) -> CloudResult<Vec<Found>> {
        let r = self
            .clients
            .ec2(region)
            .describe_security_groups()
            .filters(aws_sdk_ec2::types::Filter::builder().name(filter).values(value).build())
            .send()
            .await;
        let out = match r {
            Ok(o) => o,
            Err(e) => {
                let e = from_sdk("ec2", "DescribeSecurityGroups", region, e);
                return if e.is_not_found() { Ok(Vec::new()) } else { Err(e) };
            }
        };
        Ok(out
            .security_groups()
            .iter()
            .filter(|g| g.group_name().is_some_and(|n| n.starts_with(NAT_CLAIM_PREFIX)))
            .map(|g| {
                let tags = super::convert::tags(g.tags().iter().map(|t| (t.key(), t.value())));
                found(KIND_NAT_CLAIM, g.group_id().unwrap_or_default(), region, "", &tags)
            })
            .collect())
    }

    /// The zone holding a record: the longest of its suffixes that is a hosted zone (public first).
    async fn zone_of(&self, record: &str) -> CloudResult<Option<String>> {
        let name = record.trim_end_matches('.');
        let labels: Vec<&str> = name.split('.').collect();
        for i in 0..labels.len().saturating_sub(1) {
            let suffix = labels[i..].join(".");
            let zones = self.find_hosted_zones(&suffix).await?;
            if let Some(z) = zones.iter().find(|z| !z.private).or(zones.first()) {
                return Ok(Some(z.id.clone()));
            }
        }
        Ok(None)
    }

    async fn all_asgs(&self, region: &str) -> CloudResult<Vec<(String, Tags)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .clients
                .autoscaling(region)
                .describe_auto_scaling_groups()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| from_sdk("autoscaling", "DescribeAutoScalingGroups", region, e))?;
            for g in page.auto_scaling_groups() {
                let tags = g
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                    .collect();
                out.push((g.auto_scaling_group_name().unwrap_or_default().to_string(), tags));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn all_dbs(&self, region: &str) -> CloudResult<Vec<crate::cloud::DbInstance>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .clients
                .rds(region)
                .describe_db_instances()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| from_sdk("rds", "DescribeDBInstances", region, e))?;
            out.extend(page.db_instances().iter().map(super::rds::instance));
            marker = page.marker().map(str::to_string);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    /// Load balancers and target groups of the region with their tags: (kind, name, tags).
    async fn all_elb(&self, region: &str) -> CloudResult<Vec<(&'static str, String, Tags)>> {
        let c = self.clients.elbv2(region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = c
                .describe_load_balancers()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| from_sdk("elbv2", "DescribeLoadBalancers", region, e))?;
            for l in page.load_balancers() {
                let tags = self.elb_tags(region, l.load_balancer_arn().unwrap_or_default()).await?;
                out.push((KIND_LOAD_BALANCER, l.load_balancer_name().unwrap_or_default().to_string(), tags));
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        let mut marker: Option<String> = None;
        loop {
            let page = c
                .describe_target_groups()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| from_sdk("elbv2", "DescribeTargetGroups", region, e))?;
            for t in page.target_groups() {
                let tags = self.elb_tags(region, t.target_group_arn().unwrap_or_default()).await?;
                out.push((KIND_TARGET_GROUP, t.target_group_name().unwrap_or_default().to_string(), tags));
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    async fn describe_kind(&self, region: &str, kind: &str, id: &str) -> CloudResult<Option<Found>> {
        let by_id = Filter::id(id);
        Ok(match kind {
            KIND_ASG => {
                self.describe_auto_scaling_group(region, id).await?.map(|g| found(kind, id, region, "", &g.tags))
            }
            KIND_EC2_INSTANCE => self
                .describe_instances(region, &by_id)
                .await?
                .into_iter()
                .find(|i| !gone(&i.state))
                .map(|i| found(kind, id, region, &i.state, &i.tags)),
            KIND_LOAD_BALANCER => {
                self.describe_load_balancer(region, id).await?.map(|l| found(kind, id, region, &l.state, &l.tags))
            }
            KIND_TARGET_GROUP => {
                self.describe_target_group(region, id).await?.map(|t| found(kind, id, region, "", &t.tags))
            }
            KIND_NAT => self
                .describe_nat_gateways(region, &by_id)
                .await?
                .into_iter()
                .find(|n| !gone(&n.state))
                .map(|n| found(kind, id, region, &n.state, &n.tags)),
            KIND_EIP => self
                .describe_addresses(region, &by_id)
                .await?
                .into_iter()
                .next()
                .map(|a| found(kind, id, region, "", &a.tags)),
            KIND_VOLUME => self
                .describe_volumes(region, &by_id)
                .await?
                .into_iter()
                .find(|v| !gone(&v.state))
                .map(|v| found(kind, id, region, &v.state, &v.tags)),
            KIND_DB => self
                .describe_db_instance(region, id)
                .await?
                .filter(|d| !gone(&d.status))
                .map(|d| found(kind, id, region, &d.status, &d.tags)),
            KIND_DB_SNAPSHOT => self
                .describe_db_snapshots(region, &DbSnapshotQuery { snapshot_id: Some(id.into()), ..Default::default() })
                .await?
                .into_iter()
                .next()
                .map(|s| found(kind, id, region, &s.status, &s.tags)),
            KIND_AMI => self
                .describe_images(region, &by_id)
                .await?
                .into_iter()
                .find(|i| i.state != "deregistered")
                .map(|i| found(kind, id, region, &i.state, &i.tags)),
            KIND_EBS_SNAPSHOT => self
                .describe_snapshots(region, &by_id)
                .await?
                .into_iter()
                .next()
                .map(|s| found(kind, id, region, &s.state, &s.tags)),
            KIND_HEALTH_CHECK => match self.clients.route53().get_health_check().health_check_id(id).send().await {
                Ok(_) => Some(found(kind, id, "", "", &Tags::new())),
                Err(e) => {
                    let e = from_sdk("route53", "GetHealthCheck", "", e);
                    if e.is_not_found() || e.code == "NoSuchHealthCheck" {
                        None
                    } else {
                        return Err(e);
                    }
                }
            },
            KIND_DNS_RECORD => match self.zone_of(id).await? {
                None => None,
                Some(z) => {
                    let n = super::route53::fqdn(id);
                    self.list_record_sets(&z, &n).await?.first().map(|_| found(kind, id, "", "INSYNC", &Tags::new()))
                }
            },
            KIND_LT_VERSION => {
                let Some((name, v)) = id.rsplit_once(':') else { return Ok(None) };
                let r = self
                    .clients
                    .ec2(region)
                    .describe_launch_template_versions()
                    .launch_template_name(name)
                    .versions(v)
                    .send()
                    .await;
                match r {
                    Ok(o) if !o.launch_template_versions().is_empty() => {
                        let default = o.launch_template_versions().iter().any(|v| v.default_version() == Some(true));
                        Some(found(kind, id, region, if default { "default" } else { "" }, &Tags::new()))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        let e = from_sdk("ec2", "DescribeLaunchTemplateVersions", region, e);
                        if e.is_not_found() || e.code.contains("NotFound") || e.code.contains("InvalidLaunchTemplate") {
                            None
                        } else {
                            return Err(e);
                        }
                    }
                }
            }
            KIND_TABLE => {
                self.describe_table(region, id).await?.map(|t| found(kind, id, region, &t.status, &Tags::new()))
            }
            KIND_NAT_CLAIM => self.claim_groups(region, "group-id", id).await?.into_iter().next(),
            _ => None,
        })
    }
}

#[async_trait]
impl Cleanup for Aws {
    async fn tagged(&self, region: &str, key: &str, value: &str) -> CloudResult<Vec<Found>> {
        let has = |t: &Tags| t.get(key).is_some_and(|v| v == value);
        let f = Filter::tag(key, value);
        let mut out = Vec::new();
        for (name, tags) in self.all_asgs(region).await? {
            if has(&tags) {
                out.push(found(KIND_ASG, &name, region, "", &tags));
            }
        }
        for i in self.describe_instances(region, &f).await? {
            if !gone(&i.state) {
                out.push(found(KIND_EC2_INSTANCE, &i.id, region, &i.state, &i.tags));
            }
        }
        for (kind, name, tags) in self.all_elb(region).await? {
            if has(&tags) {
                out.push(found(kind, &name, region, "", &tags));
            }
        }
        for n in self.describe_nat_gateways(region, &f).await? {
            if !gone(&n.state) {
                out.push(found(KIND_NAT, &n.id, region, &n.state, &n.tags));
            }
        }
        for a in self.describe_addresses(region, &f).await? {
            out.push(found(KIND_EIP, &a.allocation_id, region, "", &a.tags));
        }
        for v in self.describe_volumes(region, &f).await? {
            if !gone(&v.state) {
                out.push(found(KIND_VOLUME, &v.id, region, &v.state, &v.tags));
            }
        }
        for d in self.all_dbs(region).await? {
            if has(&d.tags) && !gone(&d.status) {
                out.push(found(KIND_DB, &d.id, region, &d.status, &d.tags));
            }
        }
        for s in self.describe_db_snapshots(region, &DbSnapshotQuery::default()).await? {
            if has(&s.tags) {
                out.push(found(KIND_DB_SNAPSHOT, &s.id, region, &s.status, &s.tags));
            }
        }
        for i in self.describe_images(region, &f).await? {
            out.push(found(KIND_AMI, &i.id, region, &i.state, &i.tags));
        }
        for s in self.describe_snapshots(region, &f).await? {
            out.push(found(KIND_EBS_SNAPSHOT, &s.id, region, &s.state, &s.tags));
        }
        out.extend(self.claim_groups(region, &format!("tag:{key}"), value).await?);
        Ok(out)
    }

    async fn describe(&self, region: &str, kind: &str, id: &str) -> CloudResult<Option<Found>> {
        self.describe_kind(region, kind, id).await
    }

    async fn delete(&self, region: &str, kind: &str, id: &str) -> CloudResult<()> {
        let global = kind == KIND_DNS_RECORD || kind == KIND_HEALTH_CHECK;
        let reg = if global { "" } else { region };
        match kind {
            KIND_ASG => {
                const OP: &str = "DeleteAutoScalingGroup";
                self.allow_change("autoscaling", OP, reg).await?;
                let r = self
                    .clients
                    .autoscaling(region)
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(id)
                    .force_delete(true)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("autoscaling", OP, region, e));
                match r {
                    // already being deleted: AWS says so with a ScalingActivityInProgress / ResourceInUse
                    Err(e) if e.message.contains("in progress") => Ok(()),
                    other => ok_if_not_found(other),
                }
            }
            KIND_EC2_INSTANCE => {
                const OP: &str = "TerminateInstances";
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .terminate_instances()
                        .instance_ids(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            KIND_LOAD_BALANCER => {
                const OP: &str = "DeleteLoadBalancer";
                let Some(l) = self.describe_load_balancer(region, id).await? else { return Ok(()) };
                self.allow_change("elbv2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .elbv2(region)
                        .delete_load_balancer()
                        .load_balancer_arn(&l.arn)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("elbv2", OP, region, e)),
                )
            }
            KIND_TARGET_GROUP => {
                const OP: &str = "DeleteTargetGroup";
                let Some(t) = self.describe_target_group(region, id).await? else { return Ok(()) };
                self.allow_change("elbv2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .elbv2(region)
                        .delete_target_group()
                        .target_group_arn(&t.arn)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("elbv2", OP, region, e)),
                )
            }
            KIND_NAT => {
                const OP: &str = "DeleteNatGateway";
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .delete_nat_gateway()
                        .nat_gateway_id(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            KIND_NAT_CLAIM => Ec2::delete_security_group(self, region, id).await,
            KIND_EIP => {
                const OP: &str = "ReleaseAddress";
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .release_address()
                        .allocation_id(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            KIND_VOLUME => {
                const OP: &str = "DeleteVolume";
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .delete_volume()
                        .volume_id(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            KIND_DB => {
                const OP: &str = "DeleteDBInstance";
                if self.describe_db_instance(region, id).await?.is_none_or(|d| d.status == "deleting") {
                    return Ok(());
                }
                self.allow_change("rds", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .rds(region)
                        .delete_db_instance()
                        .db_instance_identifier(id)
                        .skip_final_snapshot(true)
                        .delete_automated_backups(true)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("rds", OP, region, e)),
                )
            }
            KIND_DB_SNAPSHOT => {
                const OP: &str = "DeleteDBSnapshot";
                self.allow_change("rds", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .rds(region)
                        .delete_db_snapshot()
                        .db_snapshot_identifier(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("rds", OP, region, e)),
                )
            }
            KIND_AMI => {
                const OP: &str = "DeregisterImage";
                let Some(img) = self.describe_images(region, &Filter::id(id)).await?.into_iter().next() else {
                    return Ok(());
                };
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .deregister_image()
                        .image_id(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )?;
                // the AMI's own snapshots (a copy's: made by this run's CopyImage)
                for s in &img.snapshot_ids {
                    ok_if_not_found(
                        self.clients
                            .ec2(region)
                            .delete_snapshot()
                            .snapshot_id(s)
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| from_sdk("ec2", "DeleteSnapshot", region, e)),
                    )?;
                }
                Ok(())
            }
            KIND_EBS_SNAPSHOT => {
                const OP: &str = "DeleteSnapshot";
                self.allow_change("ec2", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .ec2(region)
                        .delete_snapshot()
                        .snapshot_id(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            KIND_HEALTH_CHECK => {
                const OP: &str = "DeleteHealthCheck";
                self.allow_change("route53", OP, "").await?;
                let r = self
                    .clients
                    .route53()
                    .delete_health_check()
                    .health_check_id(id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("route53", OP, "", e));
                match r {
                    Err(e) if e.code == "NoSuchHealthCheck" => Ok(()),
                    other => ok_if_not_found(other),
                }
            }
            KIND_DNS_RECORD => {
                const OP: &str = "ChangeResourceRecordSets";
                let Some(zone) = self.zone_of(id).await? else { return Ok(()) };
                let n = super::route53::fqdn(id);
                let recs = self.list_record_sets(&zone, &n).await?;
                if recs.is_empty() {
                    return Ok(());
                }
                self.allow_change("route53", OP, "").await?;
                let mut changes = Vec::new();
                for r in &recs {
                    let set = super::route53::sdk_record(r)
                        .map_err(|e| CloudError::new("route53", OP, "", "InvalidInput", e))?;
                    changes.push(
                        aws_sdk_route53::types::Change::builder()
                            .action(aws_sdk_route53::types::ChangeAction::Delete)
                            .resource_record_set(set)
                            .build()
                            .map_err(|e| CloudError::new("route53", OP, "", "InvalidInput", e.to_string()))?,
                    );
                }
                let batch = aws_sdk_route53::types::ChangeBatch::builder()
                    .comment("drconsole cleanup")
                    .set_changes(Some(changes))
                    .build()
                    .map_err(|e| CloudError::new("route53", OP, "", "InvalidInput", e.to_string()))?;
                self.clients
                    .route53()
                    .change_resource_record_sets()
                    .hosted_zone_id(&zone)
                    .change_batch(batch)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("route53", OP, "", e))
            }
            KIND_LT_VERSION => {
                const OP: &str = "DeleteLaunchTemplateVersions";
                let Some((name, v)) = id.rsplit_once(':') else {
                    return Err(CloudError::new(
                        "ec2",
                        OP,
                        region,
                        "InvalidInput",
                        format!("{id}: write NAME:VERSION"),
                    ));
                };
                let version: u64 = v
                    .parse()
                    .map_err(|_| CloudError::new("ec2", OP, region, "InvalidInput", format!("{id}: not a version")))?;
                let Some(lt) = self.describe_launch_template(region, name).await? else { return Ok(()) };
                self.allow_change("ec2", OP, reg).await?;
                if lt.default_version == version {
                    // AWS refuses to delete the default version: the version before it becomes the default again
                    let prev = version.saturating_sub(1);
                    if prev == 0 {
                        return Err(CloudError::new(
                            "ec2",
                            OP,
                            region,
                            "InvalidLaunchTemplateVersion.DefaultVersion",
                            format!("{id} is the default and only version of {name}"),
                        ));
                    }
                    self.set_default_launch_template_version(region, name, prev).await?;
                }
                let out = self
                    .clients
                    .ec2(region)
                    .delete_launch_template_versions()
                    .launch_template_name(name)
                    .versions(v)
                    .send()
                    .await
                    .map_err(|e| from_sdk("ec2", OP, region, e))?;
                match out.unsuccessfully_deleted_launch_template_versions().first() {
                    Some(u) => {
                        let msg = u.response_error().and_then(|e| e.message()).unwrap_or("not deleted").to_string();
                        if msg.contains("does not exist") || msg.contains("not found") {
                            Ok(())
                        } else {
                            Err(CloudError::new("ec2", OP, region, "LaunchTemplateVersionNotDeleted", msg))
                        }
                    }
                    None => Ok(()),
                }
            }
            KIND_TABLE => {
                const OP: &str = "DeleteTable";
                self.allow_change("dynamodb", OP, reg).await?;
                ok_if_not_found(
                    self.clients
                        .dynamodb(region)
                        .delete_table()
                        .table_name(id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("dynamodb", OP, region, e)),
                )
            }
            other => {
                Err(CloudError::new("tagging", "Delete", region, "UnknownKind", format!("cannot delete a {other}")))
            }
        }
    }

    async fn route_target(&self, region: &str, table: &str, destination: &str) -> CloudResult<Option<String>> {
        let tables = self.describe_route_tables(region, &Filter::id(table)).await?;
        Ok(tables
            .iter()
            .find(|t| t.id == table)
            .and_then(|t| t.routes.iter().find(|r| r.destination == destination))
            .and_then(|r| r.nat_gateway_id.clone().or_else(|| r.gateway_id.clone())))
    }

    async fn restore_route(
        &self,
        region: &str,
        table: &str,
        destination: &str,
        previous: Option<&str>,
    ) -> CloudResult<()> {
        let client = self.clients.ec2(region);
        match previous {
            None => {
                const OP: &str = "DeleteRoute";
                self.allow_change("ec2", OP, region).await?;
                ok_if_not_found(
                    client
                        .delete_route()
                        .route_table_id(table)
                        .destination_cidr_block(destination)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk("ec2", OP, region, e)),
                )
            }
            Some(to) => {
                const OP: &str = "ReplaceRoute";
                self.allow_change("ec2", OP, region).await?;
                let req = client.replace_route().route_table_id(table).destination_cidr_block(destination);
                let req = if to.starts_with("nat-") { req.nat_gateway_id(to) } else { req.gateway_id(to) };
                req.send().await.map(|_| ()).map_err(|e| from_sdk("ec2", OP, region, e))
            }
        }
    }
}
