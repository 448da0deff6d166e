//! ELBv2: application load balancers, target groups, listeners, targets and their health.
//!
//! Load balancer and target group names are unique per region, and ELBv2 itself answers a create with an
//! existing name and the same settings with the existing resource; a listener on a port already taken is found
//! and returned.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, LoadBalancer as SdkLb, ProtocolEnum, Tag, TargetDescription,
    TargetGroup as SdkTg,
};

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{
    CloudError, CloudResult, CreateListener, CreateLoadBalancer, CreateTargetGroup, Elb, Listener, LoadBalancer, Tags,
    TargetGroup, TargetHealth,
};

const SVC: &str = "elbv2";

fn sdk_tags(t: &Tags) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn lb(l: &SdkLb, t: Tags) -> LoadBalancer {
    LoadBalancer {
        arn: l.load_balancer_arn().unwrap_or_default().to_string(),
        name: l.load_balancer_name().unwrap_or_default().to_string(),
        dns_name: l.dns_name().unwrap_or_default().to_string(),
        canonical_hosted_zone_id: l.canonical_hosted_zone_id().unwrap_or_default().to_string(),
        state: l.state().and_then(|s| s.code()).map(|c| c.as_str().to_string()).unwrap_or_default(),
        scheme: l.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
        vpc_id: l.vpc_id().unwrap_or_default().to_string(),
        subnets: l.availability_zones().iter().filter_map(|z| z.subnet_id()).map(str::to_string).collect(),
        security_groups: l.security_groups().to_vec(),
        tags: t,
    }
}

fn tg(g: &SdkTg, t: Tags) -> TargetGroup {
    TargetGroup {
        arn: g.target_group_arn().unwrap_or_default().to_string(),
        name: g.target_group_name().unwrap_or_default().to_string(),
        protocol: g.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
        port: g.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        health_check_path: g.health_check_path().unwrap_or_default().to_string(),
        tags: t,
    }
}

fn listener(l: &aws_sdk_elasticloadbalancingv2::types::Listener) -> Listener {
    let forward = l.default_actions().iter().find_map(|a| {
        a.target_group_arn().map(str::to_string).or_else(|| {
            a.forward_config()
                .and_then(|f| f.target_groups().first())
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)
        })
    });
    Listener {
        arn: l.listener_arn().unwrap_or_default().to_string(),
        load_balancer_arn: l.load_balancer_arn().unwrap_or_default().to_string(),
        protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
        port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        target_group_arn: forward.unwrap_or_default(),
        certificate_arn: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
    }
}

impl Aws {
    /// The load balancer by that name, `None` when there is none.
    async fn lb_by_name(&self, region: &str, name: &str) -> CloudResult<Option<SdkLb>> {
        let r = self.clients.elbv2(region).describe_load_balancers().names(name).send().await;
        match r {
            Ok(o) => Ok(o.load_balancers().first().cloned()),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeLoadBalancers", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    pub(super) async fn elb_tags(&self, region: &str, arn: &str) -> CloudResult<Tags> {
        let out = self
            .clients
            .elbv2(region)
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeTags", region, e))?;
        Ok(out
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags().iter().map(|t| (t.key(), t.value())))
            .map(|(k, v)| (k.unwrap_or_default().to_string(), v.unwrap_or_default().to_string()))
            .collect())
    }
}

#[async_trait]
impl Elb for Aws {
    async fn describe_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        let Some(l) = self.lb_by_name(region, name).await? else { return Ok(None) };
        let t = self.elb_tags(region, l.load_balancer_arn().unwrap_or_default()).await?;
        Ok(Some(lb(&l, t)))
    }

    async fn find_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        Ok(self.lb_by_name(region, name).await?.map(|l| lb(&l, Tags::new())))
    }

    /// Batched ([`crate::cloud::batch`]): one DescribeLoadBalancers with the names of every load balancer being
    /// waited for in the region (20 a call). A name that does not exist fails the whole call with
    /// LoadBalancerNotFound (there is no filter that would not): then each name is asked for alone.
    async fn load_balancer_state(&self, region: &str, name: &str) -> CloudResult<Option<String>> {
        fn state(l: &SdkLb) -> String {
            l.state().and_then(|s| s.code()).map(|c| c.as_str().to_string()).unwrap_or_default()
        }
        self.clients
            .polls
            .load_balancers
            .poll(region, name, |names| async move {
                let r =
                    self.clients.elbv2(region).describe_load_balancers().set_names(Some(names.clone())).send().await;
                match r.map_err(|e| from_sdk(SVC, "DescribeLoadBalancers", region, e)) {
                    Ok(o) => Ok(o
                        .load_balancers()
                        .iter()
                        .filter_map(|l| l.load_balancer_name().map(|n| (n.to_string(), state(l))))
                        .collect()),
                    Err(e) if e.is_not_found() && names.len() > 1 => {
                        let mut found = Vec::new();
                        for n in names {
                            if let Some(l) = self.lb_by_name(region, &n).await? {
                                found.push((n, state(&l)));
                            }
                        }
                        Ok(found)
                    }
                    Err(e) if e.is_not_found() => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn create_load_balancer(&self, region: &str, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        const OP: &str = "CreateLoadBalancer";
        // no lookup first: elb.ensure looked for the name; AWS answers a repeated create with the same settings
        // with the existing load balancer, and a taken name with DuplicateLoadBalancerName
        self.allow_change(SVC, OP, region).await?;
        let r = self
            .clients
            .elbv2(region)
            .create_load_balancer()
            .name(&req.name)
            .set_subnets(Some(req.subnets.clone()))
            .set_security_groups((!req.security_groups.is_empty()).then(|| req.security_groups.clone()))
            .scheme(req.scheme.as_str().into())
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Application)
            .set_tags(Some(sdk_tags(&req.tags)))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e));
        let out = match r {
            Ok(o) => o,
            Err(e) if e.code == "DuplicateLoadBalancerName" => {
                return self.describe_load_balancer(region, &req.name).await?.ok_or(e);
            }
            Err(e) => return Err(e),
        };
        out.load_balancers()
            .first()
            .map(|l| lb(l, req.tags.clone()))
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no LoadBalancer in the answer"))
    }

    async fn describe_target_group(&self, region: &str, name: &str) -> CloudResult<Option<TargetGroup>> {
        let r = self.clients.elbv2(region).describe_target_groups().names(name).send().await;
        let out = match r {
            Ok(o) => o,
            Err(e) => {
                let e = from_sdk(SVC, "DescribeTargetGroups", region, e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let Some(g) = out.target_groups().first() else { return Ok(None) };
        let t = self.elb_tags(region, g.target_group_arn().unwrap_or_default()).await?;
        Ok(Some(tg(g, t)))
    }

    async fn create_target_group(&self, region: &str, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        const OP: &str = "CreateTargetGroup";
        // no lookup first (elb.ensure looked): a taken name answers DuplicateTargetGroupName
        self.allow_change(SVC, OP, region).await?;
        let r = self
            .clients
            .elbv2(region)
            .create_target_group()
            .name(&req.name)
            .protocol(ProtocolEnum::from(req.protocol.as_str()))
            .port(i32::from(req.port))
            .vpc_id(&req.vpc_id)
            .health_check_path(&req.health_check_path)
            .health_check_enabled(true)
            .set_tags(Some(sdk_tags(&req.tags)))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e));
        let out = match r {
            Ok(o) => o,
            Err(e) if e.code == "DuplicateTargetGroupName" => {
                return self.describe_target_group(region, &req.name).await?.ok_or(e);
            }
            Err(e) => return Err(e),
        };
        out.target_groups()
            .first()
            .map(|g| tg(g, req.tags.clone()))
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no TargetGroup in the answer"))
    }

    async fn describe_listeners(&self, region: &str, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        let r: Result<Vec<_>, _> = self
            .clients
            .elbv2(region)
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        r.map(|v| v.iter().map(listener).collect()).map_err(|e| from_sdk(SVC, "DescribeListeners", region, e))
    }

    async fn create_listener(&self, region: &str, req: &CreateListener) -> CloudResult<Listener> {
        const OP: &str = "CreateListener";
        // no lookup first (elb.ensure looked): a taken port answers DuplicateListener
        self.allow_change(SVC, OP, region).await?;
        let action = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&req.target_group_arn).build();
        let r = self
            .clients
            .elbv2(region)
            .create_listener()
            .load_balancer_arn(&req.load_balancer_arn)
            .protocol(ProtocolEnum::from(req.protocol.as_str()))
            .port(i32::from(req.port))
            .default_actions(action)
            .set_certificates(
                req.certificate_arn.as_ref().map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
            )
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e));
        let out = match r {
            Ok(o) => o,
            Err(e) if e.code == "DuplicateListener" => {
                let found = self.describe_listeners(region, &req.load_balancer_arn).await?;
                return found.into_iter().find(|l| l.port == req.port).ok_or(e);
            }
            Err(e) => return Err(e),
        };
        out.listeners()
            .first()
            .map(listener)
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no Listener in the answer"))
    }

    async fn register_targets(&self, region: &str, target_group_arn: &str, ids: &[String]) -> CloudResult<()> {
        const OP: &str = "RegisterTargets";
        if ids.is_empty() {
            return Ok(());
        }
        self.allow_change(SVC, OP, region).await?;
        // registering a registered target is a no-op in ELBv2: idempotent as it is
        let targets: Vec<TargetDescription> = ids.iter().map(|i| TargetDescription::builder().id(i).build()).collect();
        self.clients
            .elbv2(region)
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        Ok(())
    }

    async fn describe_target_health(&self, region: &str, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        let out = self
            .clients
            .elbv2(region)
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeTargetHealth", region, e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| TargetHealth {
                id: d.target().and_then(|t| t.id()).unwrap_or_default().to_string(),
                port: d.target().and_then(|t| t.port()).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                state: d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: d.target_health().and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
            })
            .collect())
    }
}
