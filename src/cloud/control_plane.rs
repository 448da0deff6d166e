//! Control-plane dependencies: which of an action's API calls are served by a global service's control plane, and
//! where that control plane lives. Route 53's change APIs (ChangeResourceRecordSets, CreateHealthCheck...) and
//! IAM's writes are served from us-east-1 whatever region a runbook works in, so a failover *out of* us-east-1 whose
//! cut-over changes a Route 53 record depends on the region it is leaving. `plan` and `preflight` name them; the
//! data-plane cut-over (`route53.failover`: a failover record pair and health checks made beforehand) has none.

use crate::runbook::catalog::ActionSpec;

/// Where the global control planes are served from.
pub const GLOBAL_CONTROL_PLANE_REGION: &str = "us-east-1";

/// A control plane an action calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// `Route 53`, `IAM`, `CloudFront`.
    pub service: &'static str,
    /// The region serving it.
    pub region: &'static str,
    /// The calls that need it (from the action's IAM permissions).
    pub calls: Vec<&'static str>,
}

/// Calls that change something in a global service (its control plane), by IAM action prefix.
const GLOBAL: &[(&str, &str)] = &[("route53:", "Route 53"), ("iam:", "IAM"), ("cloudfront:", "CloudFront")];

fn is_change(op: &str) -> bool {
    !["Get", "List", "Describe", "Simulate", "PassRole", "Test"].iter().any(|p| op.starts_with(p))
}

/// The global control planes an action changes something in (reads are left out: they are answered from the
/// same control plane, but an action that only reads has a way around it — preflight, the inventory).
pub fn of(spec: &ActionSpec) -> Vec<ControlPlane> {
    let mut out: Vec<ControlPlane> = Vec::new();
    for perm in spec.iam {
        for (prefix, service) in GLOBAL {
            let Some(op) = perm.strip_prefix(prefix) else { continue };
            if !is_change(op) {
                continue;
            }
            match out.iter_mut().find(|c| c.service == *service) {
                Some(c) => c.calls.push(op),
                None => out.push(ControlPlane { service, region: GLOBAL_CONTROL_PLANE_REGION, calls: vec![op] }),
            }
        }
    }
    out
}

/// One line naming the dependency, and whether it is on `primary` (the region a failover leaves).
pub fn describe(c: &ControlPlane, primary: &str) -> String {
    let whose = if c.region == primary {
        format!("{}, the primary region: on the day it is impaired this step may not run", c.region)
    } else {
        format!("{}, not the primary region", c.region)
    };
    format!("needs {}'s control plane ({}), served from {whose}", c.service, c.calls.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Registry;

    #[test]
    fn the_dns_change_depends_on_us_east_1_and_the_data_plane_cut_over_on_nothing() {
        let r = Registry::builtin();
        let upsert = of(r.get("route53.upsert").expect("route53.upsert").spec());
        assert_eq!(upsert.len(), 1, "{upsert:?}");
        assert_eq!(upsert[0].service, "Route 53");
        assert_eq!(upsert[0].calls, vec!["ChangeResourceRecordSets"]);
        assert!(describe(&upsert[0], "us-east-1").contains("the primary region: on the day"));
        assert!(describe(&upsert[0], "eu-west-1").contains("not the primary region"));
        let hc = of(r.get("route53.health_check").expect("route53.health_check").spec());
        assert_eq!(hc[0].calls, vec!["CreateHealthCheck"]);
        assert!(of(r.get("route53.failover").expect("route53.failover").spec()).is_empty());
        assert!(of(r.get("rds.restore_snapshot").expect("rds.restore_snapshot").spec()).is_empty());
    }
}
