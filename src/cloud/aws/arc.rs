//! Route 53 ARC routing controls on the cluster's data plane (`route53-recovery-cluster`): one client per cluster
//! endpoint, signed for the endpoint's region, so each call goes through that region's circuit. The caller (the
//! `route53.routing_control` action, preflight) picks the endpoint and moves to the next when one does not answer.

use async_trait::async_trait;
use aws_sdk_route53recoverycluster::types::{RoutingControlState, UpdateRoutingControlStateEntry};

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudError, CloudResult, ClusterEndpoint, RoutingControl, RoutingControls};

const SVC: &str = "route53-recovery-cluster";

fn state(s: &str) -> CloudResult<RoutingControlState> {
    match s {
        "On" => Ok(RoutingControlState::On),
        "Off" => Ok(RoutingControlState::Off),
        other => Err(CloudError::new(
            SVC,
            "UpdateRoutingControlStates",
            "",
            "InvalidState",
            format!("a routing control's state is On or Off, not {other}"),
        )),
    }
}

#[async_trait]
impl RoutingControls for Aws {
    async fn routing_control_state(&self, endpoint: &ClusterEndpoint, arn: &str) -> CloudResult<RoutingControl> {
        const OP: &str = "GetRoutingControlState";
        let out = self
            .clients
            .recovery_cluster(endpoint)
            .get_routing_control_state()
            .routing_control_arn(arn)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, &endpoint.region, e))?;
        Ok(RoutingControl {
            arn: out.routing_control_arn().to_string(),
            name: out.routing_control_name().unwrap_or_default().to_string(),
            state: out.routing_control_state().as_str().to_string(),
        })
    }

    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        states: &[(String, String)],
        override_rules: &[String],
    ) -> CloudResult<()> {
        const OP: &str = "UpdateRoutingControlStates";
        // the account guard (a drill never gets here: route53.routing_control refuses to run in one)
        self.allow_change(SVC, OP, "").await?;
        let entries = states
            .iter()
            .map(|(arn, s)| {
                UpdateRoutingControlStateEntry::builder()
                    .routing_control_arn(arn)
                    .routing_control_state(state(s)?)
                    .build()
                    .map_err(|e| CloudError::new(SVC, OP, &endpoint.region, "InvalidRequest", e.to_string()))
            })
            .collect::<CloudResult<Vec<_>>>()?;
        self.clients
            .recovery_cluster(endpoint)
            .update_routing_control_states()
            .set_update_routing_control_state_entries(Some(entries))
            .set_safety_rules_to_override((!override_rules.is_empty()).then(|| override_rules.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, &endpoint.region, e))?;
        Ok(())
    }
}
