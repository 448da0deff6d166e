//! EC2 Auto Scaling: groups, their instances, target groups and instance refreshes.
//!
//! Group names are unique per region: a create that finds the name taken (`AlreadyExists`, after a lost answer or
//! on a re-run) is not an error. Instance refresh is not emulated by moto; it is tested with recorded responses.

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{AutoScalingGroup as SdkAsg, LaunchTemplateSpecification, RefreshPreferences, Tag};

use super::Aws;
use super::convert::{pct, tags, ts};
use super::error::from_sdk;
use crate::cloud::{
    Asg, AsgInstance, AutoScalingGroup, CloudResult, CreateAutoScalingGroup, InstanceRefresh, UpdateAutoScalingGroup,
};

const SVC: &str = "autoscaling";

fn u32_of(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn group(g: &SdkAsg) -> AutoScalingGroup {
    let lt = g.launch_template();
    AutoScalingGroup {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        launch_template_name: lt.and_then(|l| l.launch_template_name()).unwrap_or_default().to_string(),
        launch_template_version: lt.and_then(|l| l.version()).unwrap_or("$Default").to_string(),
        min: u32_of(g.min_size()),
        max: u32_of(g.max_size()),
        desired: u32_of(g.desired_capacity()),
        subnets: g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        target_group_arns: g.target_group_arns().to_vec(),
        instances: g
            .instances()
            .iter()
            .map(|i| AsgInstance {
                id: i.instance_id().unwrap_or_default().to_string(),
                az: i.availability_zone().unwrap_or_default().to_string(),
                lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_string(),
                launch_template_version: i
                    .launch_template()
                    .and_then(|l| l.version())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            })
            .collect(),
        tags: tags(g.tags().iter().map(|t| (t.key(), t.value()))),
    }
}

#[async_trait]
impl Asg for Aws {
    async fn describe_auto_scaling_group(&self, region: &str, name: &str) -> CloudResult<Option<AutoScalingGroup>> {
        let out = self
            .clients
            .autoscaling(region)
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeAutoScalingGroups", region, e))?;
        Ok(out.auto_scaling_groups().first().map(group))
    }

    async fn list_auto_scaling_groups(&self, region: &str) -> CloudResult<Vec<AutoScalingGroup>> {
        let pages: Result<Vec<_>, _> =
            self.clients.autoscaling(region).describe_auto_scaling_groups().into_paginator().send().collect().await;
        let pages = pages.map_err(|e| from_sdk(SVC, "DescribeAutoScalingGroups", region, e))?;
        Ok(pages.iter().flat_map(|p| p.auto_scaling_groups().iter().map(group)).collect())
    }

    async fn create_auto_scaling_group(&self, region: &str, req: &CreateAutoScalingGroup) -> CloudResult<()> {
        const OP: &str = "CreateAutoScalingGroup";
        // no lookup first: asg.ensure looked for the name, and a taken name answers AlreadyExists
        self.allow_change(SVC, OP, region).await?;
        let tags: Vec<Tag> = req
            .tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .resource_id(&req.name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(true)
                    .build()
            })
            .collect();
        let r = self
            .clients
            .autoscaling(region)
            .create_auto_scaling_group()
            .auto_scaling_group_name(&req.name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&req.launch_template_name)
                    .version(&req.launch_template_version)
                    .build(),
            )
            .min_size(i32::try_from(req.min).unwrap_or(i32::MAX))
            .max_size(i32::try_from(req.max).unwrap_or(i32::MAX))
            .desired_capacity(i32::try_from(req.desired).unwrap_or(i32::MAX))
            .vpc_zone_identifier(req.subnets.join(","))
            .set_target_group_arns((!req.target_group_arns.is_empty()).then(|| req.target_group_arns.clone()))
            .health_check_type(if req.target_group_arns.is_empty() { "EC2" } else { "ELB" })
            .health_check_grace_period(300)
            .set_tags(Some(tags))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if e.code == "AlreadyExists" { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn update_auto_scaling_group(&self, region: &str, req: &UpdateAutoScalingGroup) -> CloudResult<()> {
        const OP: &str = "UpdateAutoScalingGroup";
        self.allow_change(SVC, OP, region).await?;
        let mut call = self.clients.autoscaling(region).update_auto_scaling_group().auto_scaling_group_name(&req.name);
        if let Some(v) = &req.launch_template_version {
            // keep the template, change its version
            let current = self.describe_auto_scaling_group(region, &req.name).await?;
            let name = current.map(|g| g.launch_template_name).unwrap_or_default();
            call = call
                .launch_template(LaunchTemplateSpecification::builder().launch_template_name(name).version(v).build());
        }
        call.set_min_size(req.min.and_then(|v| i32::try_from(v).ok()))
            .set_max_size(req.max.and_then(|v| i32::try_from(v).ok()))
            .set_desired_capacity(req.desired.and_then(|v| i32::try_from(v).ok()))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn attach_target_groups(&self, region: &str, name: &str, arns: &[String]) -> CloudResult<()> {
        const OP: &str = "AttachLoadBalancerTargetGroups";
        let current = self.describe_auto_scaling_group(region, name).await?;
        let missing: Vec<String> = arns
            .iter()
            .filter(|a| !current.as_ref().is_some_and(|g| g.target_group_arns.contains(a)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.allow_change(SVC, OP, region).await?;
        self.clients
            .autoscaling(region)
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(name)
            .set_target_group_arns(Some(missing))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn start_instance_refresh(&self, region: &str, name: &str, min_healthy_pct: u8) -> CloudResult<String> {
        const OP: &str = "StartInstanceRefresh";
        // one refresh at a time per group: a running one (a retry, or a re-run) is the one to follow
        if let Some(r) = self
            .describe_instance_refreshes(region, name)
            .await?
            .into_iter()
            .find(|r| matches!(r.status.as_str(), "Pending" | "InProgress"))
        {
            return Ok(r.id);
        }
        self.allow_change(SVC, OP, region).await?;
        let r = self
            .clients
            .autoscaling(region)
            .start_instance_refresh()
            .auto_scaling_group_name(name)
            .preferences(RefreshPreferences::builder().min_healthy_percentage(i32::from(min_healthy_pct)).build())
            .send()
            .await;
        match r {
            Ok(out) => Ok(out.instance_refresh_id().unwrap_or_default().to_string()),
            Err(e) => {
                let e = from_sdk(SVC, OP, region, e);
                if e.code == "InstanceRefreshInProgress"
                    && let Some(r) = self.describe_instance_refreshes(region, name).await?.into_iter().next()
                {
                    return Ok(r.id);
                }
                Err(e)
            }
        }
    }

    async fn describe_instance_refreshes(&self, region: &str, name: &str) -> CloudResult<Vec<InstanceRefresh>> {
        let all: Result<Vec<_>, _> = self
            .clients
            .autoscaling(region)
            .describe_instance_refreshes()
            .auto_scaling_group_name(name)
            .into_paginator()
            .send()
            .collect()
            .await;
        let pages = all.map_err(|e| from_sdk(SVC, "DescribeInstanceRefreshes", region, e))?;
        let mut v: Vec<InstanceRefresh> = pages
            .iter()
            .flat_map(|p| p.instance_refreshes().iter())
            .map(|r| InstanceRefresh {
                id: r.instance_refresh_id().unwrap_or_default().to_string(),
                status: r.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                percent: pct(r.percentage_complete()),
                start_time: ts(r.start_time()),
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        Ok(v)
    }
}
