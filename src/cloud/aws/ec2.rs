//! EC2: EBS volumes and snapshots, instances, AMIs, launch templates, Elastic IPs, NAT gateways, routes, subnets.
//!
//! Every list is paginated; ids that do not exist make a describe return nothing rather than fail. Creates do not
//! look first: the actions look for what they would create before they create it (one lookup per step). A client
//! token is sent where EC2 has one (CreateVolume, CopyImage, CreateNatGateway, CreateLaunchTemplateVersion), so a
//! retried call whose answer was lost returns the same resource; CopySnapshot and AllocateAddress have none, and
//! their callers' lookups (by drconsole's tags, by Name) are what keeps a step from making a second one.
//! CreateSecurityGroup is the one create meant to fail for a second caller (a name is unique in its VPC): the
//! claims of `nat.ensure` rest on it.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter as Ec2Filter, Image as SdkImage, Instance as SdkInstance, NatGateway as SdkNat, ResourceType,
    RouteTable as SdkRouteTable, Snapshot as SdkSnapshot, Tag, TagSpecification, Volume as SdkVolume, VolumeType,
};

use super::convert::{client_token, identity_tags, tags, ts, u64_of};
use super::error::from_sdk;
use super::{Aws, wait};
use crate::cloud::{
    Address, CloudError, CloudResult, CopyImage, CopySnapshot, CreateNatGateway, CreateSecurityGroup, CreateVolume,
    Ec2, Filter, Image, Instance, LaunchTemplate, LocalLocks, NamedSecurityGroup, NatGateway, Route, RouteTable,
    SecurityGroup, Snapshot, Subnet, Tags, Volume, VolumeAttachment, Vpc,
};

const SVC: &str = "ec2";
/// Tag recording what a copy was made from, so a retry finds the copy instead of making another.
const TAG_SOURCE: &str = "drconsole:source";

fn port_tags(t: &[Tag]) -> Tags {
    tags(t.iter().map(|t| (t.key(), t.value())))
}

fn tag_spec(kind: ResourceType, t: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .build()
}

/// The port filter as EC2 filters: each tag as `tag:KEY`, names as `name_filter` (or `tag:Name`).
fn filters(f: &Filter, name_filter: &str) -> Option<Vec<Ec2Filter>> {
    let mut v: Vec<Ec2Filter> =
        f.tags.iter().map(|(k, val)| Ec2Filter::builder().name(format!("tag:{k}")).values(val).build()).collect();
    if !f.names.is_empty() {
        v.push(Ec2Filter::builder().name(name_filter).set_values(Some(f.names.clone())).build());
    }
    (!v.is_empty()).then_some(v)
}

/// An EC2 filter `name` with these values (a batched poll's ids, security groups by id or name).
fn id_filter(name: &str, ids: Vec<String>) -> Ec2Filter {
    Ec2Filter::builder().name(name).set_values(Some(ids)).build()
}

fn ids(f: &Filter) -> Option<Vec<String>> {
    (!f.ids.is_empty()).then(|| f.ids.clone())
}

/// Keeps what matches the port filter: EC2 filters server-side already, this also holds against emulators that
/// ignore some filters (moto ignores `tag:` filters on DescribeNatGateways).
fn keep<T>(f: &Filter, v: Vec<T>, key: impl Fn(&T) -> (&str, Option<&str>, &Tags)) -> Vec<T> {
    v.into_iter()
        .filter(|x| {
            let (id, name, tags) = key(x);
            f.matches(id, name.or_else(|| tags.get("Name").map(String::as_str)), tags)
        })
        .collect()
}

/// `Ok(empty)` when EC2 says one of the asked ids does not exist.
fn none_if_not_found<T>(r: Result<Vec<T>, CloudError>) -> CloudResult<Vec<T>> {
    match r {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}

fn volume(v: &SdkVolume) -> Volume {
    Volume {
        id: v.volume_id().unwrap_or_default().to_string(),
        az: v.availability_zone().unwrap_or_default().to_string(),
        size_gib: u64_of(v.size()),
        volume_type: v.volume_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        state: v.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        snapshot_id: v.snapshot_id().filter(|s| !s.is_empty()).map(str::to_string),
        encrypted: v.encrypted().unwrap_or(false),
        kms_key_id: v.kms_key_id().map(str::to_string),
        attachments: v
            .attachments()
            .iter()
            .map(|a| VolumeAttachment {
                instance_id: a.instance_id().unwrap_or_default().to_string(),
                device: a.device().unwrap_or_default().to_string(),
                state: a.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            })
            .collect(),
        tags: port_tags(v.tags()),
    }
}

fn snapshot(s: &SdkSnapshot) -> Snapshot {
    let progress = s.progress().unwrap_or_default().trim_end_matches('%').trim().parse::<u8>().unwrap_or(0);
    let state = s.state().map(|s| s.as_str().to_string()).unwrap_or_default();
    Snapshot {
        id: s.snapshot_id().unwrap_or_default().to_string(),
        volume_id: s.volume_id().unwrap_or_default().to_string(),
        progress_pct: if state == "completed" { 100 } else { progress.min(100) },
        state,
        start_time: ts(s.start_time()),
        size_gib: u64_of(s.volume_size()),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_string),
        description: s.description().unwrap_or_default().to_string(),
        tags: port_tags(s.tags()),
    }
}

fn instance(i: &SdkInstance) -> Instance {
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        az: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
        subnet_id: i.subnet_id().map(str::to_string),
        image_id: i.image_id().unwrap_or_default().to_string(),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        private_ip: i.private_ip_address().map(str::to_string),
        block_devices: i
            .block_device_mappings()
            .iter()
            .filter_map(|b| Some((b.device_name()?.to_string(), b.ebs()?.volume_id()?.to_string())))
            .collect(),
        tags: port_tags(i.tags()),
    }
}

fn image(i: &SdkImage) -> Image {
    let created =
        i.creation_date().and_then(|d| d.parse::<jiff::Timestamp>().ok()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let ebs: Vec<_> = i.block_device_mappings().iter().filter_map(|b| b.ebs()).collect();
    Image {
        id: i.image_id().unwrap_or_default().to_string(),
        name: i.name().unwrap_or_default().to_string(),
        state: i.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        created,
        encrypted: ebs.iter().any(|e| e.encrypted() == Some(true)),
        size_gib: ebs.iter().map(|e| u64_of(e.volume_size())).sum(),
        snapshot_ids: ebs.iter().filter_map(|e| e.snapshot_id()).map(str::to_string).collect(),
        tags: port_tags(i.tags()),
    }
}

fn nat(n: &SdkNat) -> NatGateway {
    NatGateway {
        id: n.nat_gateway_id().unwrap_or_default().to_string(),
        subnet_id: n.subnet_id().unwrap_or_default().to_string(),
        allocation_id: n
            .nat_gateway_addresses()
            .first()
            .and_then(|a| a.allocation_id())
            .unwrap_or_default()
            .to_string(),
        state: n.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        tags: port_tags(n.tags()),
    }
}

fn route_table(t: &SdkRouteTable) -> RouteTable {
    RouteTable {
        id: t.route_table_id().unwrap_or_default().to_string(),
        vpc_id: t.vpc_id().unwrap_or_default().to_string(),
        subnet_ids: t.associations().iter().filter_map(|a| a.subnet_id()).map(str::to_string).collect(),
        routes: t
            .routes()
            .iter()
            .map(|r| Route {
                destination: r
                    .destination_cidr_block()
                    .or(r.destination_prefix_list_id())
                    .unwrap_or_default()
                    .to_string(),
                nat_gateway_id: r.nat_gateway_id().map(str::to_string),
                gateway_id: r.gateway_id().map(str::to_string),
            })
            .collect(),
        tags: port_tags(t.tags()),
    }
}

impl Aws {
    async fn fetch_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_vpcs()
            .set_vpc_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| {
                v.iter()
                    .map(|x| Vpc {
                        id: x.vpc_id().unwrap_or_default().to_string(),
                        cidr: x.cidr_block().unwrap_or_default().to_string(),
                        tags: port_tags(x.tags()),
                    })
                    .collect()
            })
            .map_err(|e| from_sdk(SVC, "DescribeVpcs", region, e)),
        )
    }

    async fn fetch_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_subnets()
            .set_subnet_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| {
                v.iter()
                    .map(|s| Subnet {
                        id: s.subnet_id().unwrap_or_default().to_string(),
                        vpc_id: s.vpc_id().unwrap_or_default().to_string(),
                        az: s.availability_zone().unwrap_or_default().to_string(),
                        cidr: s.cidr_block().unwrap_or_default().to_string(),
                        public: s.map_public_ip_on_launch().unwrap_or(false),
                        tags: port_tags(s.tags()),
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|e| from_sdk(SVC, "DescribeSubnets", region, e)),
        )
    }

    async fn launch_template_versions(
        &self,
        region: &str,
        name: &str,
    ) -> CloudResult<Vec<aws_sdk_ec2::types::LaunchTemplateVersion>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_launch_template_versions()
            .launch_template_name(name)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        r.map_err(|e| from_sdk(SVC, "DescribeLaunchTemplateVersions", region, e))
    }
}

#[async_trait]
impl Ec2 for Aws {
    async fn describe_volumes(&self, region: &str, f: &Filter) -> CloudResult<Vec<Volume>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_volumes()
            .set_volume_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| keep(f, v.iter().map(volume).collect(), |x: &Volume| (&x.id, None, &x.tags)))
                .map_err(|e| from_sdk(SVC, "DescribeVolumes", region, e)),
        )
    }

    async fn describe_snapshots(&self, region: &str, f: &Filter) -> CloudResult<Vec<Snapshot>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_snapshots()
            .owner_ids("self")
            .set_snapshot_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| keep(f, v.iter().map(snapshot).collect(), |x: &Snapshot| (&x.id, None, &x.tags)))
                .map_err(|e| from_sdk(SVC, "DescribeSnapshots", region, e)),
        )
    }

    /// Batched ([`crate::cloud::batch`]): one DescribeSnapshots with the filter `snapshot-id` for every snapshot
    /// being waited for in the region. Filters, not SnapshotIds: with ids, one that does not exist fails the whole
    /// call. So are the other polls (`volume-id`, `instance-id`, `image-id`, `nat-gateway-id`).
    async fn poll_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<Snapshot>> {
        self.clients
            .polls
            .snapshots
            .poll(region, id, |ids| async move {
                let r: Result<Vec<_>, _> = self
                    .clients
                    .ec2(region)
                    .describe_snapshots()
                    .owner_ids("self")
                    .filters(id_filter("snapshot-id", ids))
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, "DescribeSnapshots", region, e))?;
                Ok(v.iter().map(snapshot).map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_volume(&self, region: &str, id: &str) -> CloudResult<Option<Volume>> {
        self.clients
            .polls
            .volumes
            .poll(region, id, |ids| async move {
                let r: Result<Vec<_>, _> = self
                    .clients
                    .ec2(region)
                    .describe_volumes()
                    .filters(id_filter("volume-id", ids))
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, "DescribeVolumes", region, e))?;
                Ok(v.iter().map(volume).map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_instance(&self, region: &str, id: &str) -> CloudResult<Option<Instance>> {
        self.clients
            .polls
            .instances
            .poll(region, id, |ids| async move {
                let r: Result<Vec<_>, _> = self
                    .clients
                    .ec2(region)
                    .describe_instances()
                    .filters(id_filter("instance-id", ids))
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let rs = r.map_err(|e| from_sdk(SVC, "DescribeInstances", region, e))?;
                Ok(rs.iter().flat_map(|r| r.instances().iter().map(instance)).map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_image(&self, region: &str, id: &str) -> CloudResult<Option<Image>> {
        self.clients
            .polls
            .images
            .poll(region, id, |ids| async move {
                let r: Result<Vec<_>, _> = self
                    .clients
                    .ec2(region)
                    .describe_images()
                    .owners("self")
                    .filters(id_filter("image-id", ids))
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, "DescribeImages", region, e))?;
                Ok(v.iter().map(image).map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_nat_gateway(&self, region: &str, id: &str) -> CloudResult<Option<NatGateway>> {
        self.clients
            .polls
            .nat_gateways
            .poll(region, id, |ids| async move {
                let r: Result<Vec<_>, _> = self
                    .clients
                    .ec2(region)
                    .describe_nat_gateways()
                    .filter(id_filter("nat-gateway-id", ids))
                    .into_paginator()
                    .items()
                    .send()
                    .collect()
                    .await;
                let v = r.map_err(|e| from_sdk(SVC, "DescribeNatGateways", region, e))?;
                Ok(v.iter().map(nat).map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn describe_snapshots_of_volume(&self, region: &str, volume_id: &str) -> CloudResult<Vec<Snapshot>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_snapshots()
            .owner_ids("self")
            .filters(Ec2Filter::builder().name("volume-id").values(volume_id).build())
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        r.map(|v| v.iter().map(snapshot).collect()).map_err(|e| from_sdk(SVC, "DescribeSnapshots", region, e))
    }

    async fn copy_snapshot(&self, region: &str, req: &CopySnapshot) -> CloudResult<Snapshot> {
        const OP: &str = "CopySnapshot";
        // no lookup first: CopySnapshot has no client token, so its caller looks for the copy before it makes one
        // (ebs.copy_snapshot and ebs.restore_set look by the drconsole:source-snapshot tag), once per step
        let mut t = req.tags.clone();
        t.insert(TAG_SOURCE.into(), format!("{}/{}", req.source_region, req.source_snapshot_id));
        self.allow_change(SVC, OP, region).await?;
        let mut call = self
            .clients
            .ec2(region)
            .copy_snapshot()
            .source_region(&req.source_region)
            .source_snapshot_id(&req.source_snapshot_id)
            .description(&req.description)
            .tag_specifications(tag_spec(ResourceType::Snapshot, &t));
        if let Some(k) = &req.kms_key_id {
            call = call.encrypted(true).kms_key_id(k);
        }
        let out = call.send().await.map_err(|e| from_sdk(SVC, OP, region, e))?;
        let id = out.snapshot_id().unwrap_or_default().to_string();
        wait::consistent(5, || async {
            self.describe_snapshots(region, &Filter::id(&id)).await?.into_iter().next().ok_or_else(|| {
                CloudError::new(
                    SVC,
                    "DescribeSnapshots",
                    region,
                    "InvalidSnapshot.NotFound",
                    format!("{id} not visible yet"),
                )
                .not_found()
            })
        })
        .await
    }

    async fn create_volume(&self, region: &str, req: &CreateVolume) -> CloudResult<Volume> {
        const OP: &str = "CreateVolume";
        // no lookup first: the actions look for the volume's Name before they create it, and the client token
        // (from the request and the step's identity) makes a retried call return the same volume
        let it = identity_tags(&req.tags);
        self.allow_change(SVC, OP, region).await?;
        let mut parts: Vec<&str> = vec![OP, &req.az, req.snapshot_id.as_deref().unwrap_or(""), &req.volume_type];
        parts.extend(it.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
        let token = client_token(&parts);
        let out = self
            .clients
            .ec2(region)
            .create_volume()
            .availability_zone(&req.az)
            .set_snapshot_id(req.snapshot_id.clone())
            .volume_type(VolumeType::from(req.volume_type.as_str()))
            .set_size(req.size_gib.and_then(|s| i32::try_from(s).ok()))
            .set_iops(req.iops.and_then(|s| i32::try_from(s).ok()))
            .set_kms_key_id(req.kms_key_id.clone())
            .set_encrypted(req.kms_key_id.as_ref().map(|_| true))
            .client_token(token)
            .tag_specifications(tag_spec(ResourceType::Volume, &req.tags))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(Volume {
            id: out.volume_id().unwrap_or_default().to_string(),
            az: out.availability_zone().unwrap_or(&req.az).to_string(),
            size_gib: u64_of(out.size()),
            volume_type: out.volume_type().map(|t| t.as_str().to_string()).unwrap_or_else(|| req.volume_type.clone()),
            state: out.state().map(|s| s.as_str().to_string()).unwrap_or_else(|| "creating".into()),
            snapshot_id: out.snapshot_id().filter(|s| !s.is_empty()).map(str::to_string),
            encrypted: out.encrypted().unwrap_or(false),
            kms_key_id: out.kms_key_id().map(str::to_string),
            attachments: Vec::new(),
            tags: port_tags(out.tags()),
        })
    }

    async fn attach_volume(&self, region: &str, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.volumes.changing(region, &[volume_id]);
        const OP: &str = "AttachVolume";
        // already attached there (a retry, or a re-run)?
        let current = self.describe_volumes(region, &Filter::id(volume_id)).await?;
        if current.iter().any(|v| {
            v.attachments
                .iter()
                .any(|a| a.instance_id == instance_id && a.state != "detaching" && a.state != "detached")
        }) {
            return Ok(());
        }
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .ec2(region)
            .attach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .device(device)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn detach_volume(&self, region: &str, volume_id: &str, instance_id: &str) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.clients.polls.volumes.changing(region, &[volume_id]);
        const OP: &str = "DetachVolume";
        let current = self.describe_volumes(region, &Filter::id(volume_id)).await?;
        if current.iter().all(|v| v.attachments.iter().all(|a| a.instance_id != instance_id || a.state == "detached")) {
            return Ok(());
        }
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .ec2(region)
            .detach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn stop_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing =
            self.clients.polls.instances.changing(region, &ids.iter().map(String::as_str).collect::<Vec<_>>());
        const OP: &str = "StopInstances";
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .ec2(region)
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn start_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing =
            self.clients.polls.instances.changing(region, &ids.iter().map(String::as_str).collect::<Vec<_>>());
        const OP: &str = "StartInstances";
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .ec2(region)
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn describe_instances(&self, region: &str, f: &Filter) -> CloudResult<Vec<Instance>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_instances()
            .set_instance_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|rs| {
                let v = rs.iter().flat_map(|r| r.instances().iter().map(instance)).collect();
                keep(f, v, |x: &Instance| (&x.id, None, &x.tags))
            })
            .map_err(|e| from_sdk(SVC, "DescribeInstances", region, e)),
        )
    }

    async fn describe_images(&self, region: &str, f: &Filter) -> CloudResult<Vec<Image>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_images()
            .owners("self")
            .set_image_ids(ids(f))
            .set_filters(filters(f, "name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| keep(f, v.iter().map(image).collect(), |x: &Image| (&x.id, Some(&x.name), &x.tags)))
                .map_err(|e| from_sdk(SVC, "DescribeImages", region, e)),
        )
    }

    async fn copy_image(&self, region: &str, req: &CopyImage) -> CloudResult<Image> {
        const OP: &str = "CopyImage";
        // no lookup first: ec2.copy_image looked for the name in the target region, and the client token makes a
        // retried call return the same image
        self.allow_change(SVC, OP, region).await?;
        let mut call = self
            .clients
            .ec2(region)
            .copy_image()
            .source_region(&req.source_region)
            .source_image_id(&req.source_image_id)
            .name(&req.name)
            .client_token(&req.client_token)
            .tag_specifications(tag_spec(ResourceType::Image, &req.tags));
        if let Some(k) = &req.kms_key_id {
            call = call.encrypted(true).kms_key_id(k);
        }
        let out = call.send().await.map_err(|e| from_sdk(SVC, OP, region, e))?;
        let id = out.image_id().unwrap_or_default().to_string();
        wait::consistent(5, || async {
            self.describe_images(region, &Filter::id(&id)).await?.into_iter().next().ok_or_else(|| {
                CloudError::new(SVC, "DescribeImages", region, "InvalidAMIID.NotFound", format!("{id} not visible yet"))
                    .not_found()
            })
        })
        .await
    }

    /// One DescribeLaunchTemplateVersions (it names the template and flags the default version): the template's
    /// own tags are not read (DescribeLaunchTemplates), nothing uses them. The versions are kept for a
    /// CreateLaunchTemplateVersion that follows.
    async fn describe_launch_template(&self, region: &str, name: &str) -> CloudResult<Option<LaunchTemplate>> {
        let mut versions = match self.launch_template_versions(region, name).await {
            Ok(v) => v,
            // EC2 answers a missing name with a validation error of its own
            Err(e) if e.is_not_found() || e.code.contains("NotFound") || e.message.contains("does not exist") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some(first) = versions.first() else { return Ok(None) };
        let (id, lt_name) = (
            first.launch_template_id().unwrap_or_default().to_string(),
            first.launch_template_name().unwrap_or(name).to_string(),
        );
        versions.sort_by_key(|v| v.version_number().unwrap_or(0));
        let number = |v: &aws_sdk_ec2::types::LaunchTemplateVersion| {
            v.version_number().and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
        };
        let default = versions.iter().find(|v| v.default_version() == Some(true));
        let default_version = default.map_or(1, number);
        let image_of = |v: &aws_sdk_ec2::types::LaunchTemplateVersion| {
            v.launch_template_data().and_then(|d| d.image_id()).unwrap_or_default().to_string()
        };
        let lt = LaunchTemplate {
            id,
            name: lt_name,
            default_version,
            latest_version: versions.last().map_or(1, number),
            image_id: default.map(image_of).unwrap_or_default(),
            version_images: versions.iter().map(image_of).collect(),
            version_descriptions: versions
                .iter()
                .map(|v| v.version_description().unwrap_or_default().to_string())
                .collect(),
            tags: Tags::new(),
            security_groups: default
                .and_then(|v| v.launch_template_data())
                .map(|d| d.security_group_ids().to_vec())
                .unwrap_or_default(),
            instance_type: default
                .and_then(|v| v.launch_template_data())
                .and_then(|d| d.instance_type())
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        };
        self.lt_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((region.to_string(), name.to_string()), versions);
        Ok(Some(lt))
    }

    async fn describe_security_groups(&self, region: &str, ids: &[String]) -> CloudResult<Vec<SecurityGroup>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // filters, not GroupIds: a missing id is an answer without it, not an error for the whole call
        let (by_id, by_name): (Vec<&String>, Vec<&String>) = ids.iter().partition(|i| i.starts_with("sg-"));
        let mut out = Vec::new();
        for (filter, values) in [("group-id", by_id), ("group-name", by_name)] {
            if values.is_empty() {
                continue;
            }
            let f = id_filter(filter, values.into_iter().cloned().collect());
            let pages: Result<Vec<_>, _> = self
                .clients
                .ec2(region)
                .describe_security_groups()
                .filters(f)
                .into_paginator()
                .items()
                .send()
                .collect()
                .await;
            let groups = pages.map_err(|e| from_sdk(SVC, "DescribeSecurityGroups", region, e))?;
            out.extend(groups.iter().map(|g| SecurityGroup {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            }));
        }
        Ok(out)
    }

    async fn instance_type_vcpus(&self, region: &str, instance_type: &str) -> CloudResult<Option<u32>> {
        let r = self
            .clients
            .ec2(region)
            .describe_instance_types()
            .instance_types(aws_sdk_ec2::types::InstanceType::from(instance_type))
            .send()
            .await;
        match r {
            Ok(out) => Ok(out
                .instance_types()
                .first()
                .and_then(|t| t.v_cpu_info())
                .and_then(|v| v.default_v_cpus())
                .and_then(|n| u32::try_from(n).ok())),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeInstanceTypes", region, e);
                if e.is_not_found() || e.code.starts_with("InvalidInstanceType") { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn create_launch_template_version(
        &self,
        region: &str,
        name: &str,
        source_version: u64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<u64> {
        const OP: &str = "CreateLaunchTemplateVersion";
        // a version made from this source with this image already exists (a retry, or a re-run)? The versions
        // the describe just before read (ensure_lt_image describes, then creates) are not read again
        let cached = self
            .lt_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(region.to_string(), name.to_string()));
        let versions = match cached {
            Some(v) => v,
            None => self.launch_template_versions(region, name).await?,
        };
        if let Some(v) = versions.iter().find(|v| {
            v.version_description() == Some(description)
                && v.launch_template_data().and_then(|d| d.image_id()) == Some(image_id)
        }) {
            return Ok(u64::try_from(v.version_number().unwrap_or(0)).unwrap_or(0));
        }
        // moto does not inherit from SourceVersion: send the source's data with the new image
        let source =
            versions.iter().find(|v| v.version_number().and_then(|n| u64::try_from(n).ok()) == Some(source_version));
        let mut data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder().image_id(image_id);
        if let Some(d) = source.and_then(|v| v.launch_template_data()) {
            if let Some(t) = d.instance_type() {
                data = data.instance_type(t.clone());
            }
            data = data
                .set_security_group_ids((!d.security_group_ids().is_empty()).then(|| d.security_group_ids().to_vec()));
            data = data.set_key_name(d.key_name().map(str::to_string)).set_user_data(d.user_data().map(str::to_string));
        }
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .ec2(region)
            .create_launch_template_version()
            .launch_template_name(name)
            .source_version(source_version.to_string())
            .version_description(description)
            .client_token(client_token(&[OP, region, name, &source_version.to_string(), image_id]))
            .launch_template_data(data.build())
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        let n = out.launch_template_version().and_then(|v| v.version_number()).unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn set_default_launch_template_version(&self, region: &str, name: &str, version: u64) -> CloudResult<()> {
        const OP: &str = "ModifyLaunchTemplate";
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .ec2(region)
            .modify_launch_template()
            .launch_template_name(name)
            .default_version(version.to_string())
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn describe_addresses(&self, region: &str, f: &Filter) -> CloudResult<Vec<Address>> {
        let r = self
            .clients
            .ec2(region)
            .describe_addresses()
            .set_allocation_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .send()
            .await;
        let r = r.map_err(|e| from_sdk(SVC, "DescribeAddresses", region, e));
        none_if_not_found(r.map(|o| {
            let v = o
                .addresses()
                .iter()
                .map(|a| Address {
                    allocation_id: a.allocation_id().unwrap_or_default().to_string(),
                    public_ip: a.public_ip().unwrap_or_default().to_string(),
                    tags: port_tags(a.tags()),
                })
                .collect();
            keep(f, v, |x: &Address| (&x.allocation_id, None, &x.tags))
        }))
    }

    async fn allocate_address(&self, region: &str, t: &Tags) -> CloudResult<Address> {
        const OP: &str = "AllocateAddress";
        // no lookup first: AllocateAddress has no client token, so its caller looks for the address before it
        // allocates one (nat.ensure looks by its Name tag), once per step
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .ec2(region)
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .tag_specifications(tag_spec(ResourceType::ElasticIp, t))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(Address {
            allocation_id: out.allocation_id().unwrap_or_default().to_string(),
            public_ip: out.public_ip().unwrap_or_default().to_string(),
            tags: t.clone(),
        })
    }

    async fn describe_nat_gateways(&self, region: &str, f: &Filter) -> CloudResult<Vec<NatGateway>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_nat_gateways()
            .set_nat_gateway_ids(ids(f))
            .set_filter(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| keep(f, v.iter().map(nat).collect(), |x: &NatGateway| (&x.id, None, &x.tags)))
                .map_err(|e| from_sdk(SVC, "DescribeNatGateways", region, e)),
        )
    }

    async fn create_nat_gateway(&self, region: &str, req: &CreateNatGateway) -> CloudResult<NatGateway> {
        const OP: &str = "CreateNatGateway";
        // no lookup first: nat.ensure looked at every NAT gateway of the VPC, and the client token makes a retried
        // call return the same gateway
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .ec2(region)
            .create_nat_gateway()
            .subnet_id(&req.subnet_id)
            .allocation_id(&req.allocation_id)
            .client_token(&req.client_token)
            .tag_specifications(tag_spec(ResourceType::Natgateway, &req.tags))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        out.nat_gateway()
            .map(nat)
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no NatGateway in the answer"))
    }

    async fn describe_route_tables(&self, region: &str, f: &Filter) -> CloudResult<Vec<RouteTable>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .ec2(region)
            .describe_route_tables()
            .set_route_table_ids(ids(f))
            .set_filters(filters(f, "tag:Name"))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        none_if_not_found(
            r.map(|v| keep(f, v.iter().map(route_table).collect(), |x: &RouteTable| (&x.id, None, &x.tags)))
                .map_err(|e| from_sdk(SVC, "DescribeRouteTables", region, e)),
        )
    }

    async fn set_route_to_nat(
        &self,
        region: &str,
        route_table_id: &str,
        destination: &str,
        nat_gateway_id: &str,
    ) -> CloudResult<()> {
        // no describe first: nat.ensure read the route tables and calls this only for a route to add or to
        // change. CreateRoute first; a route already there (RouteAlreadyExists) is replaced to point at this gateway
        let client = self.clients.ec2(region);
        const OP: &str = "CreateRoute";
        self.allow_change(SVC, OP, region).await?;
        let r = client
            .create_route()
            .route_table_id(route_table_id)
            .destination_cidr_block(destination)
            .nat_gateway_id(nat_gateway_id)
            .send()
            .await;
        if let Err(e) = r {
            let e = from_sdk(SVC, OP, region, e);
            if e.code != "RouteAlreadyExists" {
                return Err(e);
            }
            client
                .replace_route()
                .route_table_id(route_table_id)
                .destination_cidr_block(destination)
                .nat_gateway_id(nat_gateway_id)
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "ReplaceRoute", region, e))?;
        }
        Ok(())
    }

    /// Read once per run for the same filter (see [`Clients::shapes`]).
    async fn describe_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>> {
        let key = super::ShapeCache::key(region, f);
        super::ShapeCache::cached(&self.clients.shapes.subnets, key, || self.fetch_subnets(region, f)).await
    }

    async fn create_security_group(&self, region: &str, req: &CreateSecurityGroup) -> CloudResult<NamedSecurityGroup> {
        const OP: &str = "CreateSecurityGroup";
        // no lookup first, no client token: a second group of this name in the VPC is refused by EC2
        // (InvalidGroup.Duplicate), which is what the caller wants to learn
        self.allow_change(SVC, OP, region).await?;
        let out = self
            .clients
            .ec2(region)
            .create_security_group()
            .vpc_id(&req.vpc_id)
            .group_name(&req.name)
            .description(&req.description)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, &req.tags))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        let id = out
            .group_id()
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no GroupId in the answer"))?;
        Ok(NamedSecurityGroup {
            id: id.to_string(),
            name: req.name.clone(),
            vpc_id: req.vpc_id.clone(),
            description: req.description.clone(),
            tags: req.tags.clone(),
        })
    }

    async fn describe_vpc_security_group(
        &self,
        region: &str,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<NamedSecurityGroup>> {
        let out = self
            .clients
            .ec2(region)
            .describe_security_groups()
            .filters(id_filter("vpc-id", vec![vpc_id.to_string()]))
            .filters(id_filter("group-name", vec![name.to_string()]))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeSecurityGroups", region, e))?;
        Ok(out.security_groups().iter().find(|g| g.group_name() == Some(name) && g.vpc_id() == Some(vpc_id)).map(|g| {
            NamedSecurityGroup {
                id: g.group_id().unwrap_or_default().to_string(),
                name: name.to_string(),
                vpc_id: vpc_id.to_string(),
                description: g.description().unwrap_or_default().to_string(),
                tags: port_tags(g.tags()),
            }
        }))
    }

    async fn delete_security_group(&self, region: &str, id: &str) -> CloudResult<()> {
        const OP: &str = "DeleteSecurityGroup";
        self.allow_change(SVC, OP, region).await?;
        match self.clients.ec2(region).delete_security_group().group_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// Shared by [`super::Clients::for_app`] as `shapes` is: an incident's applications.
    fn local_locks(&self) -> Option<std::sync::Arc<LocalLocks>> {
        Some(self.clients.locks.clone())
    }

    /// Read once per run for the same filter (see [`Clients::shapes`]).
    async fn describe_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>> {
        let key = super::ShapeCache::key(region, f);
        super::ShapeCache::cached(&self.clients.shapes.vpcs, key, || self.fetch_vpcs(region, f)).await
    }
}
