//! Elastic Load Balancing in the simulator: load balancers, target groups, listeners and target health.

use async_trait::async_trait;

use super::{Sim, SimTarget, Timed, Timeline, add, bad, nf};
use crate::cloud::*;

#[async_trait]
impl Elb for Sim {
    async fn describe_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        self.call("elbv2", "DescribeLoadBalancers", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region).lbs.get(name).map(|l| {
            let mut x = l.item.clone();
            x.state = l.tl.state(now);
            x
        }))
    }

    /// Batched as on AWS ([`crate::cloud::batch`]): one DescribeLoadBalancers for every load balancer being waited
    /// for in the region.
    async fn load_balancer_state(&self, region: &str, name: &str) -> CloudResult<Option<String>> {
        self.polls
            .load_balancers
            .poll(region, name, |names| async move {
                self.call("elbv2", "DescribeLoadBalancers", region).await?;
                let now = self.clock.now();
                let mut w = self.lock();
                let lbs = &w.now_region(region).lbs;
                Ok(names.iter().filter_map(|n| lbs.get(n).map(|l| (n.clone(), l.tl.state(now)))).collect())
            })
            .await
    }

    async fn create_load_balancer(&self, region: &str, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        let op = "CreateLoadBalancer";
        self.call("elbv2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        if w.now_region(region).lbs.contains_key(&req.name) {
            return Err(bad(
                "elbv2",
                op,
                region,
                "DuplicateLoadBalancerName",
                format!("A load balancer with the same name '{}' exists", req.name),
            ));
        }
        let subnets: Vec<Subnet> =
            req.subnets.iter().filter_map(|s| w.now_region(region).subnets.get(s).cloned()).collect();
        if subnets.len() < 2 || subnets.iter().map(|s| &s.az).collect::<std::collections::BTreeSet<_>>().len() < 2 {
            return Err(bad(
                "elbv2",
                op,
                region,
                "InvalidConfigurationRequest",
                "At least two subnets in two different Availability Zones must be specified".into(),
            ));
        }
        let h = super::hash_of(&(w.seed, region, &req.name));
        let arn = w.arn("elasticloadbalancing", region, &format!("loadbalancer/app/{}/{:016x}", req.name, h));
        let d = w.dur(180.0, &arn);
        let tl = Timeline::steps(now, &[("provisioning", d)], "active");
        let lb = LoadBalancer {
            arn,
            name: req.name.clone(),
            dns_name: format!("{}-{}.{region}.elb.amazonaws.com", req.name, h % 1_000_000_000),
            canonical_hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            state: "provisioning".into(),
            scheme: req.scheme.clone(),
            vpc_id: subnets[0].vpc_id.clone(),
            subnets: req.subnets.clone(),
            security_groups: req.security_groups.clone(),
            tags: req.tags.clone(),
        };
        w.now_region(region).lbs.insert(req.name.clone(), Timed { item: lb.clone(), tl });
        Ok(lb)
    }

    async fn describe_target_group(&self, region: &str, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.call("elbv2", "DescribeTargetGroups", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).tgs.get(name).cloned())
    }

    async fn create_target_group(&self, region: &str, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        let op = "CreateTargetGroup";
        self.call("elbv2", op, region).await?;
        let mut w = self.lock();
        if let Some(t) = w.now_region(region).tgs.get(&req.name) {
            return Ok(t.clone());
        }
        let h = super::hash_of(&(w.seed, region, &req.name));
        let tg = TargetGroup {
            arn: w.arn("elasticloadbalancing", region, &format!("targetgroup/{}/{:016x}", req.name, h)),
            name: req.name.clone(),
            protocol: req.protocol.clone(),
            port: req.port,
            vpc_id: req.vpc_id.clone(),
            health_check_path: req.health_check_path.clone(),
            tags: req.tags.clone(),
        };
        w.now_region(region).tgs.insert(req.name.clone(), tg.clone());
        Ok(tg)
    }

    async fn describe_listeners(&self, region: &str, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        self.call("elbv2", "DescribeListeners", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region)
            .listeners
            .values()
            .filter(|l| l.load_balancer_arn == load_balancer_arn)
            .cloned()
            .collect())
    }

    async fn create_listener(&self, region: &str, req: &CreateListener) -> CloudResult<Listener> {
        let op = "CreateListener";
        self.call("elbv2", op, region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.lbs.values().any(|l| l.item.arn == req.load_balancer_arn) {
            return Err(nf(
                "elbv2",
                op,
                region,
                "LoadBalancerNotFound",
                format!("load balancer {} not found", req.load_balancer_arn),
            ));
        }
        if r.listeners.values().any(|l| l.load_balancer_arn == req.load_balancer_arn && l.port == req.port) {
            return Err(bad(
                "elbv2",
                op,
                region,
                "DuplicateListener",
                format!("a listener on port {} exists", req.port),
            ));
        }
        let arn = format!("{}/listener/{}", req.load_balancer_arn.replace(":loadbalancer/", ":listener/"), req.port);
        let l = Listener {
            arn: arn.clone(),
            load_balancer_arn: req.load_balancer_arn.clone(),
            protocol: req.protocol.clone(),
            port: req.port,
            target_group_arn: req.target_group_arn.clone(),
            certificate_arn: req.certificate_arn.clone(),
        };
        r.listeners.insert(arn, l.clone());
        Ok(l)
    }

    async fn register_targets(&self, region: &str, target_group_arn: &str, ids: &[String]) -> CloudResult<()> {
        self.call("elbv2", "RegisterTargets", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let port =
            w.now_region(region).tgs.values().find(|t| t.arn == target_group_arn).map(|t| t.port).ok_or_else(|| {
                nf(
                    "elbv2",
                    "RegisterTargets",
                    region,
                    "TargetGroupNotFound",
                    format!("target group {target_group_arn} not found"),
                )
            })?;
        for id in ids {
            let d = w.dur(60.0, &format!("health/{target_group_arn}/{id}"));
            let list = w.now_region(region).targets.entry(target_group_arn.into()).or_default();
            if !list.iter().any(|t| t.id == *id) {
                list.push(SimTarget { id: id.clone(), port, healthy_at: add(now, d) });
            }
        }
        Ok(())
    }

    async fn describe_target_health(&self, region: &str, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.call("elbv2", "DescribeTargetHealth", region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        Ok(w.now_region(region)
            .targets
            .get(target_group_arn)
            .map(|l| {
                l.iter()
                    .map(|t| TargetHealth {
                        id: t.id.clone(),
                        port: t.port,
                        state: if now >= t.healthy_at { "healthy" } else { "initial" }.into(),
                        reason: (now < t.healthy_at).then(|| "Elb.InitialHealthChecking".into()),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
