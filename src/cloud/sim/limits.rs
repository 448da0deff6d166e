//! Account limits in the simulator: the world's Elastic IP limit per region (`elastic_ip_limit`, default 5), its
//! Service Quotas values (`quotas`, over [`super::default_quotas`]), Elastic Load Balancing's account limit of 50
//! application load balancers, and the load balancers the world has.

use async_trait::async_trait;

use super::Sim;
use crate::cloud::{CloudResult, Limits};

#[async_trait]
impl Limits for Sim {
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>> {
        self.call("ec2", "DescribeAccountAttributes", region).await?;
        Ok(Some(self.lock().settings.elastic_ip_limit))
    }

    async fn service_quota(&self, region: &str, service: &str, code: &str) -> CloudResult<Option<f64>> {
        self.call("servicequotas", "GetServiceQuota", region).await?;
        let key = format!("{service}/{code}");
        let w = self.lock();
        Ok(w.settings.quotas.get(&key).copied().or_else(|| super::default_quotas().get(&key).copied()))
    }

    async fn elb_limit(&self, region: &str, name: &str) -> CloudResult<Option<u32>> {
        self.call("elasticloadbalancing", "DescribeAccountLimits", region).await?;
        Ok(match name {
            "application-load-balancers" | "network-load-balancers" => Some(50),
            "target-groups" => Some(3000),
            _ => None,
        })
    }

    async fn load_balancers_in_use(&self, region: &str, kind: &str) -> CloudResult<u32> {
        self.call("elasticloadbalancing", "DescribeLoadBalancers", region).await?;
        let mut w = self.lock();
        // the simulator's load balancers are all application load balancers
        let n = if kind == "application" { w.now_region(region).lbs.len() } else { 0 };
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
