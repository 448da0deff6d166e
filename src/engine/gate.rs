//! The decision gate of a headless run: nothing is created before the recovery point is chosen.
//!
//! A headless run that must stop for a choice it was not given (an EBS set it cannot attribute, a set that misses
//! the RPO with no `+ebs=` decision) stops with exit 3 at its `recovery_point.select` step. The steps that need no
//! recovery point (the AMI copy, the NAT gateway, the load balancer) would otherwise start in parallel with the pick
//! and may already have created resources when it stops. With the gate, such a step waits until every selection
//! step it could run beside has ended: the run either stops with nothing created, or goes on with its choice made.
//!
//! Only selection steps that come before anything is created are gate keepers (one that needs a creating step runs
//! after it anyway, and waiting for it would deadlock). The console has an operator to answer and keeps the runbook's
//! parallelism (docs/primary-down.md).

use crate::actions::Registry;
use crate::runbook::Runbook;
use crate::runbook::catalog::Effect;

/// The actions that decide what is restored, and may stop a headless run for a choice.
pub const DECIDING: &[&str] = &["recovery_point.select"];

/// Whether step `i` may create or change something (an unknown action counts as one: fail closed).
fn creates(rb: &Runbook, registry: &Registry, i: usize) -> bool {
    registry.get(&rb.steps[i].action).is_none_or(|a| a.spec().effect != Effect::ReadOnly)
}

/// For each step, the selection steps it waits for in a headless run: for a step that creates, every selection
/// step with nothing that creates upstream of it (and not downstream of the step: it would be upstream then);
/// nothing for the others.
pub fn decision_gate(rb: &Runbook, registry: &Registry) -> Vec<Vec<usize>> {
    let n = rb.steps.len();
    let keepers: Vec<usize> = (0..n)
        .filter(|&d| DECIDING.contains(&rb.steps[d].action.as_str()))
        .filter(|&d| !(0..n).any(|u| rb.dag.is_upstream(u, d) && creates(rb, registry, u)))
        .collect();
    (0..n)
        .map(|i| {
            if !creates(rb, registry, i) {
                return Vec::new();
            }
            keepers.iter().copied().filter(|&d| d != i && !rb.dag.is_upstream(i, d)).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Runbook {
        let registry = Registry::builtin();
        crate::runbook::load_str(std::path::Path::new("gate.toml"), text, &registry).expect("a valid runbook")
    }

    fn ids(rb: &Runbook, g: &[Vec<usize>], step: &str) -> Vec<String> {
        let i = rb.step_index(step).expect("the step");
        g[i].iter().map(|&d| rb.steps[d].id.clone()).collect()
    }

    const HEAD: &str = r#"
[runbook]
name = "gate"
title = "gate"
app = "gate"
rto = "2h"
rpo = "1h"
[target]
backend = "sim"
primary = "us-east-1"
secondary = "us-west-2"
"#;

    #[test]
    fn the_regional_failover_creates_nothing_before_pick_db() {
        let registry = Registry::builtin();
        let rb = crate::runbook::load(std::path::Path::new("runbooks/cross-sell.toml"), &registry)
            .expect("the shipped runbook loads");
        let g = decision_gate(&rb, &registry);
        for step in ["copy_ami", "nat", "alb", "copy_db", "restore_data", "waf", "asg", "dns"] {
            assert_eq!(ids(&rb, &g, step), vec!["pick_db".to_string()], "{step}");
        }
        // read-only steps are not held: the pick itself, the checks
        for step in ["pick_db", "check_db", "check_targets", "verify_dns"] {
            assert!(ids(&rb, &g, step).is_empty(), "{step}: {:?}", ids(&rb, &g, step));
        }
    }

    #[test]
    fn a_selection_after_something_created_holds_nothing_back() {
        let text = format!(
            r#"{HEAD}
[[step]]
id = "make"
title = "make"
action = "shell"
[step.with]
command = "true"

[[step]]
id = "pick"
title = "pick"
action = "recovery_point.select"
needs = ["make"]
[step.with]
source = "ami"
resource = "web"
policy = "latest"

[[step]]
id = "other"
title = "other"
action = "shell"
[step.with]
command = "true"
"#
        );
        let rb = load(&text);
        let g = decision_gate(&rb, &Registry::builtin());
        // `pick` needs `make` (which creates, as far as the engine can tell): waiting for it would deadlock
        assert!(g.iter().all(Vec::is_empty), "{g:?}");
    }

    #[test]
    fn only_steps_that_create_wait_and_never_for_a_selection_after_them() {
        let text = format!(
            r#"{HEAD}
[[step]]
id = "pick"
title = "pick"
action = "recovery_point.select"
[step.with]
source = "ami"
resource = "web"
policy = "latest"

[[step]]
id = "look"
title = "look"
action = "wait"
[step.with]
duration = "1s"

[[step]]
id = "make"
title = "make"
action = "shell"
[step.with]
command = "true"
"#
        );
        let rb = load(&text);
        let g = decision_gate(&rb, &Registry::builtin());
        assert!(ids(&rb, &g, "look").is_empty());
        assert_eq!(ids(&rb, &g, "make"), vec!["pick".to_string()]);
        assert!(ids(&rb, &g, "pick").is_empty());
    }
}
