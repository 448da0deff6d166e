//! Route 53 ARC routing controls in the simulator: the cluster's data plane answers at each endpoint's region, so a
//! tabletop outage (`unavailable_regions`, `brownout_regions`) takes that endpoint away and the action moves to the
//! next one, as on AWS. Routing controls are a world file's `[[resource]] kind = "routing_control"` (or provisioned
//! from the runbook's steps); safety rules are not simulated.

use async_trait::async_trait;

use super::{Sim, bad, nf};
use crate::cloud::*;

const SVC: &str = "route53-recovery-cluster";

#[async_trait]
impl RoutingControls for Sim {
    async fn routing_control_state(&self, endpoint: &ClusterEndpoint, arn: &str) -> CloudResult<RoutingControl> {
        let op = "GetRoutingControlState";
        self.call(SVC, op, &endpoint.region).await?;
        let w = self.lock();
        w.routing_controls.get(arn).cloned().ok_or_else(|| {
            nf(SVC, op, &endpoint.region, "ResourceNotFoundException", format!("routing control {arn} not found"))
        })
    }

    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        states: &[(String, String)],
        _override_rules: &[String],
    ) -> CloudResult<()> {
        let op = "UpdateRoutingControlStates";
        self.call(SVC, op, &endpoint.region).await?;
        let mut w = self.lock();
        // all or nothing, as ARC applies a batch
        for (arn, state) in states {
            if !w.routing_controls.contains_key(arn) {
                return Err(nf(
                    SVC,
                    op,
                    &endpoint.region,
                    "ResourceNotFoundException",
                    format!("routing control {arn} not found"),
                ));
            }
            if state != "On" && state != "Off" {
                return Err(bad(
                    SVC,
                    op,
                    &endpoint.region,
                    "ValidationException",
                    format!("RoutingControlState must be On or Off, not {state}"),
                ));
            }
        }
        for (arn, state) in states {
            if let Some(rc) = w.routing_controls.get_mut(arn) {
                rc.state.clone_from(state);
            }
        }
        Ok(())
    }
}
