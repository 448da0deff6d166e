//! Auto Scaling in the simulator: groups, their instances going Pending → InService, and their registration with
//! target groups.

use std::time::Duration;

use async_trait::async_trait;

use super::{Sim, SimAsgInstance, SimTarget, Timeline, World, add, bad, nf};
use crate::cloud::*;

impl World {
    /// Brings an ASG's instances to `desired`: new ones go Pending → InService and, once in service, register
    /// with the group's target groups (healthy after the health checks pass).
    pub(super) fn scale(&mut self, region: &str, name: &str, now: jiff::Timestamp) {
        let Some(a) = self.now_region(region).asgs.get(name).cloned() else { return };
        let want = a.group.desired as usize;
        let mut inst = a.instances.clone();
        inst.truncate(want);
        // the version the group names: `$Default`, `$Latest` or a number
        let version =
            self.now_region(region).launch_templates.get(&a.group.launch_template_name).map_or(1, |lt| {
                match a.group.launch_template_version.as_str() {
                    "$Latest" => lt.latest_version,
                    v => v.parse().unwrap_or(lt.default_version),
                }
            });
        let mut new = Vec::new();
        let mut k = inst.len();
        while inst.len() < want {
            let id = self.id("i", &format!("{region}/{name}/{k}"));
            let d = self.dur(120.0, &id);
            let az = a
                .group
                .subnets
                .get(k % a.group.subnets.len().max(1))
                .and_then(|s| self.now_region(region).subnets.get(s))
                .map_or_else(|| format!("{region}a"), |s| s.az.clone());
            inst.push(SimAsgInstance {
                id: id.clone(),
                az,
                version,
                tl: Timeline::steps(now, &[("Pending", d)], "InService"),
            });
            new.push((id, add(now, d)));
            k += 1;
        }
        let tgs = a.group.target_group_arns.clone();
        for tg in &tgs {
            let port = self.now_region(region).tgs.values().find(|t| t.arn == *tg).map_or(80, |t| t.port);
            for i in &inst {
                let in_service = i.tl.end();
                let d = self.dur(45.0, &format!("health/{tg}/{}", i.id));
                let list = self.now_region(region).targets.entry(tg.clone()).or_default();
                if !list.iter().any(|t| t.id == i.id) {
                    list.push(SimTarget { id: i.id.clone(), port, healthy_at: add(in_service.max(now), d) });
                }
            }
        }
        if let Some(g) = self.now_region(region).asgs.get_mut(name) {
            g.instances = inst;
        }
    }
}

fn asg_view(a: &super::SimAsg, now: jiff::Timestamp) -> AutoScalingGroup {
    let mut g = a.group.clone();
    // a finished refresh moved every instance to its version
    let refreshed = a.refreshes.iter().filter(|(_, tl, _)| tl.state(now) == "Successful").map(|(_, _, v)| *v).max();
    g.instances = a
        .instances
        .iter()
        .map(|i| AsgInstance {
            id: i.id.clone(),
            az: i.az.clone(),
            lifecycle_state: i.tl.state(now),
            health_status: "Healthy".into(),
            launch_template_version: refreshed.unwrap_or(i.version).max(i.version),
        })
        .collect();
    g
}

#[async_trait]
impl Asg for Sim {
    async fn describe_auto_scaling_group(&self, region: &str, name: &str) -> CloudResult<Option<AutoScalingGroup>> {
        self.call("autoscaling", "DescribeAutoScalingGroups", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        // a deleted group is gone once its instances are
        Ok(w.now_region(region)
            .asgs
            .get(name)
            .filter(|a| a.deleted_at.is_none_or(|t| t > now))
            .map(|a| asg_view(a, now)))
    }

    async fn list_auto_scaling_groups(&self, region: &str) -> CloudResult<Vec<AutoScalingGroup>> {
        self.call("autoscaling", "DescribeAutoScalingGroups", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .asgs
            .values()
            .filter(|a| a.deleted_at.is_none_or(|t| t > now))
            .map(|a| asg_view(a, now))
            .collect())
    }

    async fn create_auto_scaling_group(&self, region: &str, req: &CreateAutoScalingGroup) -> CloudResult<()> {
        let op = "CreateAutoScalingGroup";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        // a deleted group's name is free again once it is gone
        w.now_region(region).asgs.retain(|_, a| a.deleted_at.is_none_or(|t| t > now));
        if w.now_region(region).asgs.contains_key(&req.name) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "AlreadyExists",
                format!(
                    "AutoScalingGroup by this name already exists - A group with the name {} already exists",
                    req.name
                ),
            ));
        }
        if !w.now_region(region).launch_templates.contains_key(&req.launch_template_name) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "ValidationError",
                format!(
                    "You must use a valid fully-formed launch template. The specified launch template {} does not exist",
                    req.launch_template_name
                ),
            ));
        }
        let arn = w.arn("autoscaling", region, &format!("autoScalingGroup:sim:autoScalingGroupName/{}", req.name));
        let group = AutoScalingGroup {
            name: req.name.clone(),
            arn,
            launch_template_name: req.launch_template_name.clone(),
            launch_template_version: req.launch_template_version.clone(),
            min: req.min,
            max: req.max,
            desired: req.desired,
            subnets: req.subnets.clone(),
            target_group_arns: req.target_group_arns.clone(),
            instances: Vec::new(),
            tags: req.tags.clone(),
        };
        w.now_region(region).asgs.insert(
            req.name.clone(),
            super::SimAsg { group, instances: Vec::new(), refreshes: Vec::new(), deleted_at: None },
        );
        w.scale(region, &req.name, now);
        Ok(())
    }

    async fn update_auto_scaling_group(&self, region: &str, req: &UpdateAutoScalingGroup) -> CloudResult<()> {
        let op = "UpdateAutoScalingGroup";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let a = w.now_region(region).asgs.get_mut(&req.name).ok_or_else(|| {
            nf("autoscaling", op, region, "ValidationError", format!("AutoScalingGroup name not found - {}", req.name))
        })?;
        let g = &mut a.group;
        if let Some(v) = &req.launch_template_version {
            g.launch_template_version.clone_from(v);
        }
        g.min = req.min.unwrap_or(g.min);
        g.max = req.max.unwrap_or(g.max);
        g.desired = req.desired.unwrap_or(g.desired).clamp(g.min, g.max.max(g.min));
        w.scale(region, &req.name, now);
        Ok(())
    }

    async fn attach_target_groups(&self, region: &str, name: &str, arns: &[String]) -> CloudResult<()> {
        let op = "AttachLoadBalancerTargetGroups";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let a = w.now_region(region).asgs.get_mut(name).ok_or_else(|| {
            nf("autoscaling", op, region, "ValidationError", format!("AutoScalingGroup name not found - {name}"))
        })?;
        for arn in arns {
            if !a.group.target_group_arns.contains(arn) {
                a.group.target_group_arns.push(arn.clone());
            }
        }
        w.scale(region, name, now);
        Ok(())
    }

    async fn start_instance_refresh(&self, region: &str, name: &str, min_healthy_pct: u8) -> CloudResult<String> {
        let op = "StartInstanceRefresh";
        self.call("autoscaling", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let Some(a) = w.now_region(region).asgs.get(name).cloned() else {
            return Err(nf(
                "autoscaling",
                op,
                region,
                "ValidationError",
                format!("AutoScalingGroup name not found - {name}"),
            ));
        };
        if a.refreshes.iter().any(|(_, tl, _)| matches!(tl.state(now).as_str(), "Pending" | "InProgress")) {
            return Err(bad(
                "autoscaling",
                op,
                region,
                "InstanceRefreshInProgress",
                format!("An instance refresh is already in progress for {name}"),
            ));
        }
        let version =
            w.now_region(region).launch_templates.get(&a.group.launch_template_name).map_or(1, |lt| lt.default_version);
        let id = w.id("refresh", &format!("{region}/{name}"));
        // replaced in batches: (100 - min healthy)% at a time, ~4 min per batch (launch + warm-up + health checks)
        let batch = (f64::from(100 - min_healthy_pct.min(99)) / 100.0 * a.instances.len() as f64).ceil().max(1.0);
        let batches = (a.instances.len() as f64 / batch).ceil().max(1.0);
        let d = w.dur(240.0 * batches, &id);
        let tl = Timeline::steps(now, &[("Pending", Duration::from_secs(20)), ("InProgress", d)], "Successful");
        let r = InstanceRefresh { id: id.clone(), status: "Pending".into(), percent: 0, start_time: now };
        if let Some(g) = w.now_region(region).asgs.get_mut(name) {
            g.refreshes.insert(0, (r, tl, version));
        }
        Ok(id)
    }

    async fn describe_instance_refreshes(&self, region: &str, name: &str) -> CloudResult<Vec<InstanceRefresh>> {
        self.call("autoscaling", "DescribeInstanceRefreshes", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .asgs
            .get(name)
            .map(|a| {
                a.refreshes
                    .iter()
                    .map(|(r, tl, _)| {
                        let mut x = r.clone();
                        x.status = tl.state(now);
                        x.percent = tl.percent(now);
                        x
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
