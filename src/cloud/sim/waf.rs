//! WAF in the simulator: web ACLs and their associations.

use async_trait::async_trait;

use super::{Sim, bad, nf};
use crate::cloud::*;

#[async_trait]
impl Waf for Sim {
    async fn get_web_acl(&self, region: &str, name: &str) -> CloudResult<Option<WebAcl>> {
        self.call("wafv2", "GetWebACL", region).await?;
        let mut w = self.lock();
        Ok(w.now_region(region).web_acls.get(name).cloned())
    }

    async fn get_web_acl_for_resource(&self, region: &str, resource_arn: &str) -> CloudResult<Option<WebAcl>> {
        self.call("wafv2", "GetWebACLForResource", region).await?;
        let mut w = self.lock();
        let r = w.now_region(region);
        Ok(r.waf_associations.get(resource_arn).and_then(|acl| r.web_acls.values().find(|a| a.arn == *acl)).cloned())
    }

    async fn associate_web_acl(&self, region: &str, web_acl_arn: &str, resource_arn: &str) -> CloudResult<()> {
        let op = "AssociateWebACL";
        self.call("wafv2", op, region).await?;
        let now = self.clock.now();
        let mut w = self.lock();
        let r = w.now_region(region);
        if !r.web_acls.values().any(|a| a.arn == web_acl_arn) {
            return Err(nf(
                "wafv2",
                op,
                region,
                "WAFNonexistentItemException",
                format!("web ACL {web_acl_arn} does not exist in {region}"),
            ));
        }
        match r.lbs.values().find(|l| l.item.arn == resource_arn) {
            None => {
                return Err(nf(
                    "wafv2",
                    op,
                    region,
                    "WAFNonexistentItemException",
                    format!("resource {resource_arn} does not exist"),
                ));
            }
            Some(l) if l.tl.state(now) != "active" => {
                return Err(bad(
                    "wafv2",
                    op,
                    region,
                    "WAFUnavailableEntityException",
                    format!("load balancer {} is still provisioning", l.item.name),
                )
                .retryable());
            }
            Some(_) => {}
        }
        r.waf_associations.insert(resource_arn.into(), web_acl_arn.into());
        Ok(())
    }
}
