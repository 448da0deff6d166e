//! IAM in the simulator: a policy simulation (iam:SimulatePrincipalPolicy) that allows every action except the
//! ones the world file lists in `denied_actions` (`implicitDeny`: no policy of the caller grants them), so a
//! tabletop can show what a missing permission looks like before a run.

use async_trait::async_trait;

use super::Sim;
use crate::cloud::{CloudResult, Iam, SimulatedDecision};

#[async_trait]
impl Iam for Sim {
    async fn simulate_principal_policy(
        &self,
        _principal_arn: &str,
        actions: &[String],
        _region: &str,
    ) -> CloudResult<Vec<SimulatedDecision>> {
        self.call("iam", "SimulatePrincipalPolicy", "").await?;
        let w = self.lock();
        Ok(actions
            .iter()
            .map(|a| {
                let denied = w.settings.denied_actions.iter().any(|d| d.eq_ignore_ascii_case(a));
                SimulatedDecision {
                    action: a.clone(),
                    decision: if denied { "implicitDeny" } else { "allowed" }.into(),
                }
            })
            .collect())
    }
}
