//! Drills: the same runbook, rehearsed for real in the secondary region, changing nothing a customer reaches
//! (`--drill`, or `mode = "drill"` under `[runbook]`).
//!
//! Rules (issue 14):
//! - everything the run creates carries `drconsole:drill = <run id>` ([`crate::cloud::TAG_DRILL`]) besides the usual
//!   run-id tags, and gets a name that cannot collide with a real failover's: `<name>-drill-<short id>`
//!   ([`drill_name`]), cut to the service's length limit, so a real failover started during a drill neither finds
//!   the drill's resources as its own nor is refused a name;
//! - a step whose action moves traffic (a Route 53 record change) writes the drill record
//!   `drill-<short id>.<record>` instead of the production record, and the record checks verify that one;
//! - the primary region is never written: [`primary_writes`] refuses a runbook before it starts (exit 4) when a step
//!   would change something there, [`rewrite`] refuses a step whose region is only known at run time, and the
//!   clouds refuse changes there (the simulator's `read_only_regions`, the AWS adapter's).
//!
//! The rewrite is a table of the actions' name parameters ([`NAME_PARAMS`]); a test keeps it complete: every action
//! that changes something is either in it or listed as naming nothing ([`NAMES_NOTHING`]).

use serde_json::Value;

use crate::actions::{ActionError, Effect, Params, Registry};
pub use crate::drill_names::{
    RECORD_PLACEHOLDERS, dns_name_error, drill_name, drill_record, is_drill_record, lt_version_description,
    lt_version_of_another_drill, norm, of_another_drill, record_for, short_id, template_error,
};
use crate::runbook::Runbook;

/// A name parameter of an action: the resource it names and the longest name the service accepts.
#[derive(Debug, Clone, Copy)]
pub struct NameParam {
    pub param: &'static str,
    pub max_len: usize,
}

const fn n(param: &'static str, max_len: usize) -> NameParam {
    NameParam { param, max_len }
}

/// Parameters that name what an action creates, by action.
pub const NAME_PARAMS: &[(&str, &[NameParam])] = &[
    ("rds.copy_snapshot", &[n("target_id", 255)]),
    ("rds.restore_snapshot", &[n("instance", 63)]),
    ("rds.restore_pitr", &[n("instance", 63)]),
    ("backup.restore_rds", &[n("instance", 63)]),
    ("ebs.create_volume", &[n("name", 255)]),
    ("ebs.swap_volume", &[n("name", 255)]),
    ("ebs.restore_set", &[n("name", 240)]),
    ("ec2.copy_image", &[n("name", 128)]),
    ("nat.ensure", &[n("name", 255)]),
    // ALB and target group names: 32 characters
    ("elb.ensure", &[n("name", 32), n("target_group", 32)]),
    ("asg.ensure", &[n("name", 255)]),
    ("route53.health_check", &[n("name", 64)]),
    ("dynamodb.import_s3", &[n("table", 255)]),
];

/// Actions that change something but create nothing named by a parameter (tagged copies, associations, changes to
/// what an earlier step made), and the generic `shell`, which drconsole cannot redirect; `route53.routing_control`
/// sets production's routing controls and refuses to run in a drill.
pub const NAMES_NOTHING: &[&str] = &[
    "ebs.copy_snapshot",
    "waf.associate",
    "rds.modify",
    "asg.rollout",
    "ec2.launch_template_version",
    "shell",
    "route53.routing_control",
];

/// Actions whose `region` defaults to the primary region (the others default to the secondary, or are global).
const PRIMARY_BY_DEFAULT: &[&str] =
    &["rds.restore_pitr", "asg.rollout", "ebs.swap_volume", "ec2.launch_template_version"];

/// Actions that move traffic: in a drill they write the drill record.
const MOVES_TRAFFIC: &[&str] = &["route53.upsert"];

/// Read-only checks of a record, and the parameter naming it: in a drill they verify the drill record.
const RECORD_CHECKS: &[(&str, &str)] = &[("check.record_points_to_alb", "record"), ("check.dns", "name")];

fn str_param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).and_then(Value::as_str)
}

/// The region a step of `action` writes, given its parameters; `None` when it is global (Route 53) or unknown.
fn written_region<'a>(rb: &'a Runbook, action: &str, p: &'a Params) -> Option<&'a str> {
    if action.starts_with("route53.") || action == "shell" {
        return None;
    }
    match str_param(p, "region") {
        Some(r) => Some(r),
        None if PRIMARY_BY_DEFAULT.contains(&action) => Some(rb.target.primary.as_str()),
        None => Some(rb.target.secondary.as_str()),
    }
}

/// The production records the runbook's traffic-moving steps write, as far as known before the run.
pub fn production_records(rb: &Runbook) -> Vec<String> {
    rb.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| MOVES_TRAFFIC.contains(&s.action.as_str()))
        .filter_map(|(i, _)| {
            crate::runbook::interp::planned_with(rb, i).get("record").and_then(Value::as_str).map(str::to_string)
        })
        .filter(|r| !r.contains("<steps."))
        .collect()
}

/// The steps of a drill that would change the primary region, as far as known before the run: each with why.
/// A drill refuses to start when there is one (exit 4, nothing created); `check` reports them for a drill runbook.
pub fn primary_writes(rb: &Runbook, registry: &Registry) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, s) in rb.steps.iter().enumerate() {
        let Some(action) = registry.get(&s.action) else { continue };
        if action.spec().effect == Effect::ReadOnly {
            continue;
        }
        let p = Params(crate::runbook::interp::planned_with(rb, i));
        if let Some(r) = written_region(rb, &s.action, &p)
            && r == rb.target.primary
        {
            out.push((
                s.id.clone(),
                format!(
                    "step `{}` ({}) would change the primary region {}: a drill never writes the primary region",
                    s.id, s.action, rb.target.primary
                ),
            ));
        }
    }
    out
}

/// What a drill changes in a step's parameters, at run time: names, the drill record, and the primary-region
/// guard. `records` are the production records of [`production_records`].
pub fn rewrite(
    rb: &Runbook,
    registry: &Registry,
    action: &str,
    p: &mut Params,
    short: &str,
    records: &[String],
) -> Result<(), ActionError> {
    let effect = registry.get(action).map_or(Effect::Mutating, |a| a.spec().effect);
    if effect != Effect::ReadOnly
        && let Some(r) = written_region(rb, action, p)
        && r == rb.target.primary
    {
        return Err(ActionError::refused(format!(
            "refused: this step ({action}) would change the primary region {r}, and a drill never writes the \
             primary region; nothing was changed"
        )));
    }
    if let Some((_, names)) = NAME_PARAMS.iter().find(|(a, _)| *a == action) {
        // the target group's default name derives from the load balancer's (before it is renamed)
        let original_name = str_param(p, "name").map(str::to_string);
        for np in *names {
            let current = match str_param(p, np.param) {
                Some(v) => Some(v.to_string()),
                None if action == "elb.ensure" && np.param == "target_group" => {
                    original_name.as_ref().map(|n| format!("{n}-tg"))
                }
                None => None,
            };
            if let Some(v) = current {
                p.0.insert(np.param.to_string(), Value::String(drill_name(&v, short, np.max_len)));
            }
        }
    }
    let template = rb.meta.drill_record.as_deref();
    if MOVES_TRAFFIC.contains(&action)
        && let Some(r) = str_param(p, "record")
    {
        let d = record_for(template, r, short);
        // a template may name a record outside the production record's zone: Route 53 would refuse it there
        if let Some(zone) = str_param(p, "zone").map(norm)
            && !(norm(&d) == zone || norm(&d).ends_with(&format!(".{zone}")))
        {
            return Err(ActionError::fatal(format!(
                "the drill record {d} (from drill_record under [runbook]) is not in the zone {zone}: write a \
                 drill_record that ends with the zone, such as \"drill-{{id}}.{{record}}\"; nothing was changed"
            )));
        }
        p.0.insert("record".into(), Value::String(d));
    }
    if let Some((_, param)) = RECORD_CHECKS.iter().find(|(a, _)| *a == action)
        && let Some(r) = str_param(p, param)
        && records.iter().any(|x| norm(x) == norm(r))
    {
        let d = record_for(template, r, short);
        p.0.insert((*param).to_string(), Value::String(d));
    }
    Ok(())
}

/// The lines `plan` shows at the top of a drill's plan.
pub fn plan_banner(rb: &Runbook) -> String {
    let records = production_records(rb);
    let dns = if records.is_empty() {
        String::new()
    } else {
        let template = rb.meta.drill_record.as_deref();
        let shown: Vec<String> = records.iter().map(|r| record_for(template, r, "<id>")).collect();
        format!("; DNS: the drill record {} (production untouched)", shown.join(", "))
    };
    format!(
        "DRILL — a recovery test: everything is created in {} tagged drconsole:drill, named <name>-drill-<id>{dns}; \
         the primary region {} is never written. Remove it with: drconsole cleanup RUN\n",
        rb.target.secondary, rb.target.primary
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_changing_action_is_in_the_name_table_or_names_nothing() {
        let reg = Registry::builtin();
        for a in reg.iter() {
            let s = a.spec();
            if s.effect == Effect::ReadOnly || MOVES_TRAFFIC.contains(&s.name) {
                continue;
            }
            let named = NAME_PARAMS.iter().find(|(n, _)| *n == s.name);
            assert!(
                named.is_some() || NAMES_NOTHING.contains(&s.name),
                "{}: add it to drill::NAME_PARAMS or drill::NAMES_NOTHING",
                s.name
            );
            for np in named.map(|(_, p)| *p).unwrap_or_default() {
                assert!(s.param(np.param).is_some(), "{} has no parameter `{}`", s.name, np.param);
            }
        }
    }

    #[test]
    fn drill_names_fit_the_limit_and_keep_the_run() {
        assert_eq!(drill_name("crosssell-prod-dr", "ab12", 63), "crosssell-prod-dr-drill-ab12");
        let alb = drill_name("inventory-management-dr-alb", "ab12", 32);
        assert_eq!(alb, "inventory-management-drill-ab12");
        assert!(alb.len() <= 32 && alb.ends_with("-drill-ab12"), "{alb}");
        assert_eq!(drill_name(&alb, "ab12", 32), alb, "idempotent");
        assert_eq!(drill_record("app.example.com.", "ab12"), "drill-ab12.app.example.com.");
        assert_eq!(short_id("20261202-051201-AB12"), "ab12");
    }

    #[test]
    fn a_drill_record_template_makes_the_record_and_cleanup_knows_it() {
        let t = Some("recovery-{id}-{record}");
        assert_eq!(record_for(t, "app.example.com.", "ab12"), "recovery-ab12-app.example.com.");
        assert_eq!(record_for(t, "app.example.com", "ab12"), "recovery-ab12-app.example.com");
        assert_eq!(
            record_for(Some("drill-{id}.shop.example.com"), "app.example.com.", "ab12"),
            "drill-ab12.shop.example.com."
        );
        assert_eq!(record_for(None, "app.example.com", "ab12"), "drill-ab12.app.example.com");
        assert!(is_drill_record(t, "recovery-ab12-app.example.com.", "ab12"));
        assert!(!is_drill_record(t, "recovery-cd34-app.example.com.", "ab12"), "another drill's");
        assert!(!is_drill_record(t, "app.example.com.", "ab12"), "the production record");
        assert!(!is_drill_record(t, "recovery-ab12-", "ab12"), "{{record}} stands for something");
        assert!(is_drill_record(Some("drill-{id}.shop.example.com"), "Drill-AB12.shop.example.com.", "ab12"));
        assert!(!is_drill_record(Some("drill-{id}.shop.example.com"), "drill-ab12.shop.example.org", "ab12"));
        assert!(is_drill_record(None, "drill-ab12.app.example.com.", "ab12"));
        assert!(!is_drill_record(None, "app.example.com.", "ab12"));
    }

    #[test]
    fn a_drills_copies_and_launch_template_versions_are_no_other_runs() {
        let mut tags = crate::cloud::Tags::new();
        assert!(!of_another_drill(&tags, "r1"), "untagged: anyone's");
        tags.insert(crate::cloud::TAG_DRILL.into(), "d1".into());
        assert!(of_another_drill(&tags, "r1") && of_another_drill(&tags, ""));
        assert!(!of_another_drill(&tags, "d1"), "the drill's own");
        let d = lt_version_description(true, "d1", "ami-1", 3);
        assert_eq!(d, "drconsole drill d1: ami-1 from version 3");
        assert!(lt_version_of_another_drill(&d, "r1"));
        assert!(!lt_version_of_another_drill(&d, "d1"));
        let real = lt_version_description(false, "r1", "ami-1", 3);
        assert_eq!(real, "drconsole: ami-1 from version 3", "as the AWS adapter wrote it before");
        assert!(!lt_version_of_another_drill(&real, "d1"));
        assert!(!lt_version_of_another_drill("", "d1"));
    }

    #[test]
    fn a_drill_record_template_needs_id_known_placeholders_and_a_dns_name() {
        assert!(template_error("drill-{id}.{record}").is_none());
        assert!(template_error("{record}-drill-{id}").is_none());
        let (r, m, _) = template_error("drill.{record}").unwrap();
        assert!(m.contains("must contain {id}") && r == (0..14), "{m} {r:?}");
        let (r, m, help) = template_error("drill-{id}.{recrod}").unwrap();
        assert_eq!(r, 11..19);
        assert!(m.contains("`{recrod}`"), "{m}");
        assert_eq!(help.as_deref(), Some("did you mean `{record}`?"));
        assert!(template_error("drill-{id.{record}").is_some_and(|(_, m, _)| m.contains("unknown placeholder")));
        assert!(template_error("drill-{id}}.x.com").is_some_and(|(_, m, _)| m.contains("without its")));
        assert!(template_error("drill-{id").is_some_and(|(_, m, _)| m.contains("unclosed")));
        assert!(template_error("drill {id}.{record}").is_some_and(|(_, m, _)| m.contains("not a DNS name")));
        assert!(template_error("-{id}.{record}").is_some_and(|(_, m, _)| m.contains("starts or ends with `-`")));
        assert!(template_error("drill-{id}").is_some_and(|(_, m, _)| m.contains("inside its zone")));
        assert!(
            template_error(&format!("{}{{id}}.{{record}}", "a".repeat(60)))
                .is_some_and(|(_, m, _)| m.contains("more than 63"))
        );
    }
}
