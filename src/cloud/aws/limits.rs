//! Account limits the APIs tell: EC2 DescribeAccountAttributes (`vpc-max-elastic-ips`), Service Quotas
//! GetServiceQuota (NAT gateways per AZ, on-demand vCPUs), Elastic Load Balancing DescribeAccountLimits and
//! DescribeLoadBalancers (load balancers in use). All reads.

use async_trait::async_trait;
use aws_sdk_ec2::types::AccountAttributeName;

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudResult, Limits};

#[async_trait]
impl Limits for Aws {
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>> {
        let out = self
            .clients
            .ec2(region)
            .describe_account_attributes()
            .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "DescribeAccountAttributes", region, e))?;
        Ok(out
            .account_attributes()
            .iter()
            .filter(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
            .flat_map(|a| a.attribute_values())
            .find_map(|v| v.attribute_value().and_then(|x| x.parse().ok())))
    }

    async fn service_quota(&self, region: &str, service: &str, code: &str) -> CloudResult<Option<f64>> {
        let r =
            self.clients.servicequotas(region).get_service_quota().service_code(service).quota_code(code).send().await;
        match r {
            Ok(out) => Ok(out.quota().and_then(|q| q.value())),
            Err(e) => {
                let e = from_sdk("servicequotas", "GetServiceQuota", region, e);
                if e.code == "NoSuchResourceException" { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn elb_limit(&self, region: &str, name: &str) -> CloudResult<Option<u32>> {
        let out = self
            .clients
            .elbv2(region)
            .describe_account_limits()
            .send()
            .await
            .map_err(|e| from_sdk("elasticloadbalancing", "DescribeAccountLimits", region, e))?;
        Ok(out
            .limits()
            .iter()
            .filter(|l| l.name() == Some(name))
            .find_map(|l| l.max().and_then(|m| m.trim().parse::<f64>().ok()))
            .map(|m| m as u32))
    }

    async fn load_balancers_in_use(&self, region: &str, kind: &str) -> CloudResult<u32> {
        let pages: Result<Vec<_>, _> =
            self.clients.elbv2(region).describe_load_balancers().into_paginator().items().send().collect().await;
        let lbs = pages.map_err(|e| from_sdk("elasticloadbalancing", "DescribeLoadBalancers", region, e))?;
        let n = lbs.iter().filter(|lb| lb.r#type().is_some_and(|t| t.as_str() == kind)).count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
