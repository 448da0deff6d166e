//! EC2 in the simulator: volumes, snapshots and their copies, images, launch templates, instances, VPCs,
//! subnets, route tables, NAT gateways and Elastic IPs; the security groups a run creates (claims), unique by
//! name in their VPC as on AWS.

use std::time::Duration;

use async_trait::async_trait;

use super::{Sim, Timed, Timeline, bad, nf};
use crate::cloud::*;

fn vol_view(v: &Timed<Volume>, now: jiff::Timestamp) -> Volume {
    let mut x = v.item.clone();
    x.state = v.tl.state(now);
    for a in &mut x.attachments {
        if a.state == "attaching" && x.state == "in-use" {
            a.state = "attached".into();
        }
    }
    if x.state == "available" {
        x.attachments.clear();
    }
    x
}

fn ec2_snap_view(s: &Timed<Snapshot>, now: jiff::Timestamp) -> Snapshot {
    let mut x = s.item.clone();
    x.state = s.tl.state(now);
    x.progress_pct = s.tl.percent(now);
    x
}

fn inst_view(i: &Timed<Instance>, now: jiff::Timestamp) -> Instance {
    let mut x = i.item.clone();
    x.state = i.tl.state(now);
    x
}

#[async_trait]
impl Ec2 for Sim {
    async fn describe_volumes(&self, region: &str, f: &Filter) -> CloudResult<Vec<Volume>> {
        self.call("ec2", "DescribeVolumes", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .volumes
            .values()
            .filter(|v| f.matches(&v.item.id, None, &v.item.tags))
            .map(|v| vol_view(v, now))
            .collect())
    }

    async fn describe_snapshots(&self, region: &str, f: &Filter) -> CloudResult<Vec<Snapshot>> {
        self.call("ec2", "DescribeSnapshots", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Snapshot> = w
            .now_region(region)
            .snapshots
            .values()
            .filter(|s| s.tl.start() <= now && f.matches(&s.item.id, None, &s.item.tags))
            .map(|s| ec2_snap_view(s, now))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.start_time));
        Ok(v)
    }

    /// Batched ([`crate::cloud::batch`]): one DescribeSnapshots for every snapshot being waited for in the region;
    /// so are the other polls.
    async fn poll_snapshot(&self, region: &str, id: &str) -> CloudResult<Option<Snapshot>> {
        self.polls
            .snapshots
            .poll(region, id, |ids| async move {
                let v = self.describe_snapshots(region, &Filter { ids, ..Filter::default() }).await?;
                Ok(v.into_iter().map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_volume(&self, region: &str, id: &str) -> CloudResult<Option<Volume>> {
        self.polls
            .volumes
            .poll(region, id, |ids| async move {
                let v = self.describe_volumes(region, &Filter { ids, ..Filter::default() }).await?;
                Ok(v.into_iter().map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_instance(&self, region: &str, id: &str) -> CloudResult<Option<Instance>> {
        self.polls
            .instances
            .poll(region, id, |ids| async move {
                let v = self.describe_instances(region, &Filter { ids, ..Filter::default() }).await?;
                Ok(v.into_iter().map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_image(&self, region: &str, id: &str) -> CloudResult<Option<Image>> {
        self.polls
            .images
            .poll(region, id, |ids| async move {
                let v = self.describe_images(region, &Filter { ids, ..Filter::default() }).await?;
                Ok(v.into_iter().map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn poll_nat_gateway(&self, region: &str, id: &str) -> CloudResult<Option<NatGateway>> {
        self.polls
            .nat_gateways
            .poll(region, id, |ids| async move {
                let v = self.describe_nat_gateways(region, &Filter { ids, ..Filter::default() }).await?;
                Ok(v.into_iter().map(|x| (x.id.clone(), x)).collect())
            })
            .await
    }

    async fn describe_snapshots_of_volume(&self, region: &str, volume_id: &str) -> CloudResult<Vec<Snapshot>> {
        self.call("ec2", "DescribeSnapshots", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Snapshot> = w
            .now_region(region)
            .snapshots
            .values()
            .filter(|s| s.tl.start() <= now && s.item.volume_id == volume_id)
            .map(|s| ec2_snap_view(s, now))
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.start_time));
        Ok(v)
    }

    async fn copy_snapshot(&self, region: &str, req: &CopySnapshot) -> CloudResult<Snapshot> {
        let op = "CopySnapshot";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let src = w
            .now_region(&req.source_region)
            .snapshots
            .get(&req.source_snapshot_id)
            .map(|s| ec2_snap_view(s, now))
            .ok_or_else(|| {
                nf(
                    "ec2",
                    op,
                    region,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{}' does not exist in {}", req.source_snapshot_id, req.source_region),
                )
            })?;
        if src.state != "completed" {
            return Err(bad("ec2", op, region, "IncorrectState", format!("snapshot {} is {}", src.id, src.state)));
        }
        let id = w.id("snap", &format!("{region}/copy/{}", src.id));
        let total = w.dur(240.0 + src.size_gib as f64 * 0.05, &id);
        let tl = Timeline::steps(now, &[("pending", total)], "completed");
        let mut s = src.clone();
        s.id.clone_from(&id);
        s.start_time = now;
        s.kms_key_id = req.kms_key_id.clone().or(src.kms_key_id);
        s.description.clone_from(&req.description);
        s.tags = req.tags.clone();
        s.tags.entry("drconsole:source-volume".into()).or_insert(src.volume_id.clone());
        s.tags.insert("drconsole:source-snapshot".into(), src.id.clone());
        let t = Timed { item: s, tl };
        let view = ec2_snap_view(&t, now);
        w.now_region(region).snapshots.insert(id, t);
        Ok(view)
    }

    async fn create_volume(&self, region: &str, req: &CreateVolume) -> CloudResult<Volume> {
        let op = "CreateVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if !req.az.starts_with(region) {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidParameterValue",
                format!("availability zone {} is not in {region}", req.az),
            ));
        }
        let (size, encrypted, kms) = match &req.snapshot_id {
            Some(sid) => {
                let s = w.now_region(region).snapshots.get(sid).map(|s| ec2_snap_view(s, now)).ok_or_else(|| {
                    nf("ec2", op, region, "InvalidSnapshot.NotFound", format!("The snapshot '{sid}' does not exist"))
                })?;
                if s.state != "completed" {
                    return Err(
                        bad("ec2", op, region, "IncorrectState", format!("snapshot {sid} is {}", s.state)).retryable()
                    );
                }
                (
                    req.size_gib.unwrap_or(s.size_gib).max(s.size_gib),
                    s.encrypted || req.kms_key_id.is_some(),
                    req.kms_key_id.clone().or(s.kms_key_id),
                )
            }
            None => (req.size_gib.unwrap_or(100), req.kms_key_id.is_some(), req.kms_key_id.clone()),
        };
        let id = w.id("vol", &format!("{region}/{}/{:?}", req.az, req.snapshot_id));
        let d = w.dur(20.0 + size as f64 * 0.02, &id);
        let tl = Timeline::steps(now, &[("creating", d)], "available");
        let v = Volume {
            id: id.clone(),
            az: req.az.clone(),
            size_gib: size,
            volume_type: req.volume_type.clone(),
            state: "creating".into(),
            snapshot_id: req.snapshot_id.clone(),
            encrypted,
            kms_key_id: kms,
            attachments: Vec::new(),
            tags: req.tags.clone(),
        };
        let t = Timed { item: v, tl };
        let view = vol_view(&t, now);
        w.now_region(region).volumes.insert(id, t);
        Ok(view)
    }

    async fn attach_volume(&self, region: &str, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.volumes.changing(region, &[volume_id]);
        let op = "AttachVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let d = w.dur(8.0, &format!("attach/{volume_id}"));
        let r = w.now_region(region);
        let inst = r.instances.get(instance_id).map(|i| inst_view(i, now)).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{instance_id}' does not exist"),
            )
        })?;
        if inst.block_devices.contains_key(device) {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidParameterValue",
                format!("device {device} on {instance_id} is already in use"),
            ));
        }
        let v = r.volumes.get_mut(volume_id).ok_or_else(|| {
            nf("ec2", op, region, "InvalidVolume.NotFound", format!("The volume '{volume_id}' does not exist"))
        })?;
        let state = v.tl.state(now);
        if state != "available" {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("volume {volume_id} is {state}, not available"),
            ));
        }
        if v.item.az != inst.az {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidVolume.ZoneMismatch",
                format!("volume {volume_id} is in {}, instance {instance_id} in {}", v.item.az, inst.az),
            ));
        }
        v.item.attachments = vec![VolumeAttachment {
            instance_id: instance_id.into(),
            device: device.into(),
            state: "attaching".into(),
        }];
        v.tl.then(now, &[("attaching", d)], "in-use");
        if let Some(i) = r.instances.get_mut(instance_id) {
            i.item.block_devices.insert(device.into(), volume_id.into());
        }
        Ok(())
    }

    async fn detach_volume(&self, region: &str, volume_id: &str, instance_id: &str) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.volumes.changing(region, &[volume_id]);
        let op = "DetachVolume";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let d = w.dur(10.0, &format!("detach/{volume_id}"));
        let r = w.now_region(region);
        let v = r.volumes.get_mut(volume_id).ok_or_else(|| {
            nf("ec2", op, region, "InvalidVolume.NotFound", format!("The volume '{volume_id}' does not exist"))
        })?;
        if !v.item.attachments.iter().any(|a| a.instance_id == instance_id) {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("volume {volume_id} is not attached to {instance_id}"),
            ));
        }
        let running = r.instances.get(instance_id).is_some_and(|i| i.tl.state(now) == "running");
        let v = r
            .volumes
            .get_mut(volume_id)
            .ok_or_else(|| nf("ec2", op, region, "InvalidVolume.NotFound", volume_id.to_string()))?;
        if running && v.item.attachments.iter().any(|a| a.device == "/dev/xvda" || a.device == "/dev/sda1") {
            return Err(bad(
                "ec2",
                op,
                region,
                "IncorrectState",
                format!("cannot detach the root volume {volume_id} of running instance {instance_id}"),
            ));
        }
        for a in &mut v.item.attachments {
            a.state = "detaching".into();
        }
        v.tl.then(now, &[("in-use", d)], "available");
        if let Some(i) = r.instances.get_mut(instance_id) {
            i.item.block_devices.retain(|_, vid| vid != volume_id);
        }
        Ok(())
    }

    async fn stop_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.instances.changing(region, &ids.iter().map(String::as_str).collect::<Vec<_>>());
        self.call("ec2", "StopInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let ds: Vec<Duration> = ids.iter().map(|id| w.dur(45.0, &format!("stop/{id}"))).collect();
        let r = w.now_region(region);
        for (id, d) in ids.iter().zip(ds) {
            let i = r.instances.get_mut(id).ok_or_else(|| {
                nf(
                    "ec2",
                    "StopInstances",
                    region,
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                )
            })?;
            if i.tl.state(now) == "running" {
                i.tl.then(now, &[("stopping", d)], "stopped");
            }
        }
        Ok(())
    }

    async fn start_instances(&self, region: &str, ids: &[String]) -> CloudResult<()> {
        // the wait after this sees the change, not an answer from before it
        let _changing = self.polls.instances.changing(region, &ids.iter().map(String::as_str).collect::<Vec<_>>());
        self.call("ec2", "StartInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let ds: Vec<Duration> = ids.iter().map(|id| w.dur(35.0, &format!("start/{id}"))).collect();
        let r = w.now_region(region);
        for (id, d) in ids.iter().zip(ds) {
            let i = r.instances.get_mut(id).ok_or_else(|| {
                nf(
                    "ec2",
                    "StartInstances",
                    region,
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                )
            })?;
            let s = i.tl.state(now);
            if s == "stopping" {
                return Err(bad(
                    "ec2",
                    "StartInstances",
                    region,
                    "IncorrectInstanceState",
                    format!("instance {id} is stopping"),
                )
                .retryable());
            }
            if s == "stopped" {
                i.tl.then(now, &[("pending", d)], "running");
            }
        }
        Ok(())
    }

    async fn describe_instances(&self, region: &str, f: &Filter) -> CloudResult<Vec<Instance>> {
        self.call("ec2", "DescribeInstances", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .instances
            .values()
            .filter(|i| f.matches(&i.item.id, None, &i.item.tags))
            .map(|i| inst_view(i, now))
            .collect())
    }

    async fn describe_images(&self, region: &str, f: &Filter) -> CloudResult<Vec<Image>> {
        self.call("ec2", "DescribeImages", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let mut v: Vec<Image> = w
            .now_region(region)
            .images
            .values()
            .filter(|i| f.matches(&i.item.id, Some(&i.item.name), &i.item.tags))
            .map(|i| {
                let mut x = i.item.clone();
                x.state = i.tl.state(now);
                x
            })
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.created));
        Ok(v)
    }

    async fn copy_image(&self, region: &str, req: &CopyImage) -> CloudResult<Image> {
        let op = "CopyImage";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(id) = w.now_region(region).image_tokens.get(&req.client_token).cloned()
            && let Some(i) = w.now_region(region).images.get(&id)
        {
            let mut x = i.item.clone();
            x.state = i.tl.state(now);
            return Ok(x);
        }
        let src =
            w.now_region(&req.source_region).images.get(&req.source_image_id).map(|i| i.item.clone()).ok_or_else(
                || {
                    nf(
                        "ec2",
                        op,
                        region,
                        "InvalidAMIID.NotFound",
                        format!("The image id '[{}]' does not exist in {}", req.source_image_id, req.source_region),
                    )
                },
            )?;
        let id = w.id("ami", &format!("{region}/{}", req.client_token));
        let d = w.dur(600.0 + src.size_gib as f64 * 2.0, &id);
        let tl = Timeline::steps(now, &[("pending", d)], "available");
        let img = Image {
            id: id.clone(),
            name: req.name.clone(),
            state: "pending".into(),
            created: now,
            encrypted: true,
            size_gib: src.size_gib,
            snapshot_ids: Vec::new(),
            tags: req.tags.clone(),
        };
        let r = w.now_region(region);
        r.image_tokens.insert(req.client_token.clone(), id.clone());
        r.images.insert(id, Timed { item: img.clone(), tl });
        Ok(img)
    }

    async fn describe_launch_template(&self, region: &str, name: &str) -> CloudResult<Option<LaunchTemplate>> {
        self.call("ec2", "DescribeLaunchTemplates", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).launch_templates.get(name).cloned())
    }

    /// The simulator has no security group model: a group asked for exists, in the region's first VPC, unless the
    /// world file lists it in `missing_security_groups`.
    async fn describe_security_groups(&self, region: &str, ids: &[String]) -> CloudResult<Vec<SecurityGroup>> {
        self.call("ec2", "DescribeSecurityGroups", region).await?;
        let mut w = self.lock();
        let missing = w.settings.missing_security_groups.clone();
        let vpc = w.now_region(region).vpcs.values().next().map(|v| v.id.clone()).unwrap_or_default();
        Ok(ids
            .iter()
            .filter(|i| !missing.contains(i))
            .map(|i| SecurityGroup {
                id: if i.starts_with("sg-") { i.clone() } else { format!("sg-{:017x}", super::hash_of(&(region, i))) },
                name: i.clone(),
                vpc_id: vpc.clone(),
            })
            .collect())
    }

    /// vCPUs by the instance size, as EC2's general-purpose families have them (`large` 2, `xlarge` 4, `Nxlarge`
    /// 4N); an unknown size is not offered.
    async fn instance_type_vcpus(&self, region: &str, instance_type: &str) -> CloudResult<Option<u32>> {
        self.call("ec2", "DescribeInstanceTypes", region).await?;
        let size = instance_type.split_once('.').map_or("", |(_, s)| s);
        Ok(match size {
            "nano" | "micro" | "small" | "medium" | "large" => Some(2),
            "xlarge" => Some(4),
            s => s.strip_suffix("xlarge").and_then(|n| n.parse::<u32>().ok()).map(|n| n * 4),
        })
    }

    async fn create_launch_template_version(
        &self,
        region: &str,
        name: &str,
        source_version: u64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<u64> {
        let op = "CreateLaunchTemplateVersion";
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.images.contains_key(image_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidAMIID.NotFound",
                format!("The image id '[{image_id}]' does not exist in {region}"),
            ));
        }
        let lt = r.launch_templates.get_mut(name).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateName.NotFoundException",
                format!("launch template {name} does not exist"),
            )
        })?;
        if source_version == 0 || source_version > lt.latest_version {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateVersion",
                format!("{name} has no version {source_version}"),
            ));
        }
        lt.latest_version += 1;
        lt.version_images.push(image_id.into());
        // versions made before descriptions were kept have none
        lt.version_descriptions.resize(lt.version_images.len() - 1, String::new());
        lt.version_descriptions.push(description.into());
        Ok(lt.latest_version)
    }

    async fn set_default_launch_template_version(&self, region: &str, name: &str, version: u64) -> CloudResult<()> {
        let op = "ModifyLaunchTemplate";
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        let lt = w.now_region(region).launch_templates.get_mut(name).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateName.NotFoundException",
                format!("launch template {name} does not exist"),
            )
        })?;
        let idx = usize::try_from(version).unwrap_or(0);
        let Some(img) = idx.checked_sub(1).and_then(|i| lt.version_images.get(i)).cloned() else {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidLaunchTemplateVersion",
                format!("{name} has no version {version}"),
            ));
        };
        lt.default_version = version;
        lt.image_id = img;
        Ok(())
    }

    async fn describe_addresses(&self, region: &str, f: &Filter) -> CloudResult<Vec<Address>> {
        self.call("ec2", "DescribeAddresses", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .addresses
            .values()
            .filter(|a| f.matches(&a.allocation_id, None, &a.tags))
            .cloned()
            .collect())
    }

    async fn allocate_address(&self, region: &str, tags: &Tags) -> CloudResult<Address> {
        self.call("ec2", "AllocateAddress", region).await?;
        let mut w = self.lock();
        let id = w.id("eipalloc", &format!("{region}/{tags:?}"));
        let h = super::hash_of(&id);
        let a = Address {
            allocation_id: id.clone(),
            public_ip: format!("52.{}.{}.{}", h % 250, (h >> 8) % 250, (h >> 16) % 250),
            tags: tags.clone(),
        };
        w.now_region(region).addresses.insert(id, a.clone());
        Ok(a)
    }

    async fn describe_nat_gateways(&self, region: &str, f: &Filter) -> CloudResult<Vec<NatGateway>> {
        self.call("ec2", "DescribeNatGateways", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .nats
            .values()
            .filter(|n| f.matches(&n.item.id, None, &n.item.tags))
            .map(|n| {
                let mut x = n.item.clone();
                x.state = n.tl.state(now);
                x
            })
            .collect())
    }

    async fn create_nat_gateway(&self, region: &str, req: &CreateNatGateway) -> CloudResult<NatGateway> {
        let op = "CreateNatGateway";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if let Some(id) = w.now_region(region).nat_tokens.get(&req.client_token).cloned()
            && let Some(n) = w.now_region(region).nats.get(&id)
        {
            let mut x = n.item.clone();
            x.state = n.tl.state(now);
            return Ok(x);
        }
        if !w.now_region(region).subnets.contains_key(&req.subnet_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{}' does not exist", req.subnet_id),
            ));
        }
        if !w.now_region(region).addresses.contains_key(&req.allocation_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidAllocationID.NotFound",
                format!("allocation {} does not exist", req.allocation_id),
            ));
        }
        let id = w.id("nat", &format!("{region}/{}", req.client_token));
        // NAT gateways take 1-3 minutes
        let d = w.dur(60.0 + 120.0 * super::unit(super::hash_of(&(w.seed, &id))), &id);
        let tl = Timeline::steps(now, &[("pending", d)], "available");
        let n = NatGateway {
            id: id.clone(),
            subnet_id: req.subnet_id.clone(),
            allocation_id: req.allocation_id.clone(),
            state: "pending".into(),
            tags: req.tags.clone(),
        };
        let r = w.now_region(region);
        r.nat_tokens.insert(req.client_token.clone(), id.clone());
        r.nats.insert(id, Timed { item: n.clone(), tl });
        Ok(n)
    }

    async fn describe_route_tables(&self, region: &str, f: &Filter) -> CloudResult<Vec<RouteTable>> {
        self.call("ec2", "DescribeRouteTables", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .route_tables
            .values()
            .filter(|t| {
                f.matches(&t.id, None, &t.tags)
                    || (!f.ids.is_empty()
                        && f.ids.contains(&t.vpc_id)
                        && f.tags.iter().all(|(k, v)| t.tags.get(k) == Some(v)))
            })
            .cloned()
            .collect())
    }

    async fn set_route_to_nat(
        &self,
        region: &str,
        route_table_id: &str,
        destination: &str,
        nat_gateway_id: &str,
    ) -> CloudResult<()> {
        let op = "ReplaceRoute";
        self.call("ec2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let r = w.now_region(region);
        let nat_state = r.nats.get(nat_gateway_id).map(|n| n.tl.state(now));
        if nat_state.as_deref() != Some("available") {
            return Err(bad(
                "ec2",
                op,
                region,
                "InvalidNatGatewayID.NotFound",
                format!("NAT gateway {nat_gateway_id} is not available ({nat_state:?})"),
            ));
        }
        let t = r.route_tables.get_mut(route_table_id).ok_or_else(|| {
            nf(
                "ec2",
                op,
                region,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{route_table_id}' does not exist"),
            )
        })?;
        t.routes.retain(|x| x.destination != destination);
        t.routes.push(Route {
            destination: destination.into(),
            nat_gateway_id: Some(nat_gateway_id.into()),
            gateway_id: None,
        });
        Ok(())
    }

    async fn describe_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>> {
        self.call("ec2", "DescribeSubnets", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .subnets
            .values()
            .filter(|s| {
                f.matches(&s.id, None, &s.tags)
                    || (!f.ids.is_empty()
                        && f.ids.contains(&s.vpc_id)
                        && f.tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
            })
            .cloned()
            .collect())
    }

    async fn describe_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>> {
        self.call("ec2", "DescribeVpcs", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).vpcs.values().filter(|v| f.matches(&v.id, None, &v.tags)).cloned().collect())
    }

    async fn create_security_group(&self, region: &str, req: &CreateSecurityGroup) -> CloudResult<NamedSecurityGroup> {
        let op = "CreateSecurityGroup";
        self.call("ec2", op, region).await?;
        let mut w = self.lock();
        if !w.now_region(region).vpcs.contains_key(&req.vpc_id) {
            return Err(nf(
                "ec2",
                op,
                region,
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{}' does not exist", req.vpc_id),
            ));
        }
        // the name is unique in its VPC: the second caller is refused, as EC2 refuses it
        if w.now_region(region).security_groups.values().any(|g| g.vpc_id == req.vpc_id && g.name == req.name) {
            return Err(bad(
                "ec2",
                op,
                region,
                CODE_GROUP_DUPLICATE,
                format!("The security group '{}' already exists for VPC '{}'", req.name, req.vpc_id),
            ));
        }
        let id = w.id("sg", &format!("{region}/{}/{}", req.vpc_id, req.name));
        let g = NamedSecurityGroup {
            id: id.clone(),
            name: req.name.clone(),
            vpc_id: req.vpc_id.clone(),
            description: req.description.clone(),
            tags: req.tags.clone(),
        };
        w.now_region(region).security_groups.insert(id, g.clone());
        Ok(g)
    }

    async fn describe_vpc_security_group(
        &self,
        region: &str,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<NamedSecurityGroup>> {
        self.call("ec2", "DescribeSecurityGroups", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).security_groups.values().find(|g| g.vpc_id == vpc_id && g.name == name).cloned())
    }

    async fn delete_security_group(&self, region: &str, id: &str) -> CloudResult<()> {
        self.call("ec2", "DeleteSecurityGroup", region).await?;
        self.lock().now_region(region).security_groups.remove(id);
        Ok(())
    }

    /// Every application of an incident shares this world, and its locks.
    fn local_locks(&self) -> Option<std::sync::Arc<LocalLocks>> {
        Some(self.locks.clone())
    }
}
