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
/// what an earlier step made), and the generic `shell`, which drconsole cannot redirect.
pub const NAMES_NOTHING: &[&str] =
    &["ebs.copy_snapshot", "waf.associate", "rds.modify", "asg.rollout", "ec2.launch_template_version", "shell"];

/// Actions whose `region` defaults to the primary region (the others default to the secondary, or are global).
const PRIMARY_BY_DEFAULT: &[&str] =
    &["rds.restore_pitr", "asg.rollout", "ebs.swap_volume", "ec2.launch_template_version"];

/// Actions that move traffic: in a drill they write the drill record.
const MOVES_TRAFFIC: &[&str] = &["route53.upsert"];

/// Read-only checks of a record, and the parameter naming it: in a drill they verify the drill record.
const RECORD_CHECKS: &[(&str, &str)] = &[("check.record_points_to_alb", "record"), ("check.dns", "name")];

/// The short id of a run in drill names: the random suffix of its id (`20261202-051201-ab12` → `ab12`).
pub fn short_id(run_id: &str) -> String {
    let tail = run_id.rsplit('-').next().unwrap_or(run_id);
    let clean: String = tail.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    if clean.is_empty() { "run".into() } else { clean }
}

/// A drill's name for a resource: `<name>-drill-<short id>`, the name cut so the whole fits `max_len`.
pub fn drill_name(name: &str, short: &str, max_len: usize) -> String {
    let suffix = format!("-drill-{short}");
    if name.ends_with(&suffix) {
        return name.to_string();
    }
    let room = max_len.saturating_sub(suffix.len());
    let base: String = name.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// The drill record for a production record: `drill-<short id>.<record>` (a trailing dot is kept).
pub fn drill_record(record: &str, short: &str) -> String {
    let prefix = format!("drill-{short}.");
    if record.starts_with(&prefix) { record.to_string() } else { format!("{prefix}{record}") }
}

/// Whether `tags` mark a copy another drill made (`drconsole:drill` = another run): a run never takes it as its
/// own, nor as a recovery point (that drill's cleanup deletes it). `run_id` is empty outside a run (preflight).
pub fn of_another_drill(tags: &crate::cloud::Tags, run_id: &str) -> bool {
    tags.get(crate::cloud::TAG_DRILL).is_some_and(|d| d != run_id)
}

/// The description of a launch template version drconsole adds: a drill's names the drill
/// (`drconsole drill <run id>: ...`), so a real failover (or another drill) never reuses it.
pub fn lt_version_description(drill: bool, run_id: &str, image: &str, source_version: u64) -> String {
    if drill {
        format!("{LT_DRILL_PREFIX}{run_id}: {image} from version {source_version}")
    } else {
        format!("drconsole: {image} from version {source_version}")
    }
}

const LT_DRILL_PREFIX: &str = "drconsole drill ";

/// Whether a launch template version's description says another drill than `run_id` added it.
pub fn lt_version_of_another_drill(description: &str, run_id: &str) -> bool {
    description
        .strip_prefix(LT_DRILL_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(run, _)| run != run_id)
}

/// The placeholders of a `drill_record` template under `[runbook]`.
pub const RECORD_PLACEHOLDERS: &[&str] = &["id", "record"];

/// The drill record a drill writes instead of `record`: the runbook's `drill_record` template (`{id}` the run's
/// short id, `{record}` the production record without its trailing dot) or, without one, [`drill_record`]. The
/// production record's trailing dot is kept.
pub fn record_for(template: Option<&str>, record: &str, short: &str) -> String {
    let Some(t) = template else { return drill_record(record, short) };
    let bare = record.trim_end_matches('.');
    let mut out = t.replace("{id}", short).replace("{record}", bare);
    if record.ends_with('.') && !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Whether `name` is a drill record of the run with short id `short`: what [`record_for`] makes of some
/// production record (`{record}` stands for any name). Cleanup deletes a DNS record only when it is one.
pub fn is_drill_record(template: Option<&str>, name: &str, short: &str) -> bool {
    let name = norm(name);
    let Some(t) = template else { return name.starts_with(&format!("drill-{short}.")) };
    let t = norm(&t.replace("{id}", short));
    let pieces: Vec<&str> = t.split("{record}").collect();
    let [first, middle @ .., last] = pieces.as_slice() else { return name == t };
    if pieces.len() == 1 {
        return name == t;
    }
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    for p in middle {
        // each `{record}` stands for at least one character
        match rest.get(1..).and_then(|r| r.find(p)) {
            Some(i) => rest = &rest[i + 1 + p.len()..],
            None => return false,
        }
    }
    rest.len() > last.len() && rest.ends_with(last)
}

/// Why a `drill_record` template is not usable: the byte range in it to point at, the message and a help line.
/// `{id}` is
/// required (two drills never write the same record), `{id}` and `{record}` are the only placeholders, and the
/// name it makes (with a sample id and record) must be a valid DNS name.
pub fn template_error(t: &str) -> Option<(std::ops::Range<usize>, String, Option<String>)> {
    let mut rest = t;
    let mut at = 0;
    let mut has_id = false;
    while let Some(open) = rest.find('{') {
        if let Some(i) = rest[..open].find('}') {
            return Some((at + i..at + i + 1, "a `}` without its `{` in `drill_record`".into(), None));
        }
        let start = at + open;
        let Some(close) = rest[open..].find('}') else {
            return Some((start..t.len(), "an unclosed `{` in `drill_record`: write {id} or {record}".into(), None));
        };
        let name = &rest[open + 1..open + close];
        match name {
            "id" => has_id = true,
            "record" => {}
            other => {
                let close_one = RECORD_PLACEHOLDERS.iter().find(|p| crate::util::suggest(other, &[p]).is_some());
                return Some((
                    start..start + close + 1,
                    format!("unknown placeholder `{{{other}}}` in `drill_record`: only {{id}} and {{record}}"),
                    close_one.map(|p| format!("did you mean `{{{p}}}`?")),
                ));
            }
        }
        at = start + close + 1;
        rest = &t[at..];
    }
    if let Some(i) = rest.find('}') {
        return Some((at + i..at + i + 1, "a `}` without its `{` in `drill_record`".into(), None));
    }
    if !has_id {
        return Some((
            0..t.len(),
            "`drill_record` must contain {id} (the run's short id), so two drills never write the same record".into(),
            Some("for example drill_record = \"drill-{id}.{record}\"".into()),
        ));
    }
    // a long short id and a plain record stand in for the run's
    let sample = record_for(Some(t), "app.example.com", "abcdefgh");
    dns_name_error(&sample)
        .map(|why| (0..t.len(), format!("`drill_record` makes `{sample}`, which is not a DNS name: {why}"), None))
}

/// Why `name` is not a DNS name Route 53 accepts for a record: labels of letters, digits, `-` and `_`, 1 to 63
/// characters, not starting or ending with `-`, at most 253 characters in all, at least two labels.
pub fn dns_name_error(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Some("it is empty".into());
    }
    if bare.len() > 253 {
        return Some(format!("{} characters, more than 253", bare.len()));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    if labels.len() < 2 {
        return Some("a record needs a name inside its zone, such as drill-{id}.app.example.com".into());
    }
    for l in labels {
        if l.is_empty() {
            return Some("an empty label (two dots in a row, or a leading dot)".into());
        }
        if l.len() > 63 {
            return Some(format!("the label `{l}` has {} characters, more than 63", l.len()));
        }
        if let Some(c) = l.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Some(format!("`{c}` in the label `{l}`: only letters, digits, `-` and `_`"));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Some(format!("the label `{l}` starts or ends with `-`"));
        }
    }
    None
}

fn norm(record: &str) -> String {
    record.trim_end_matches('.').to_ascii_lowercase()
}

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
