//! `drconsole schema runbook|incident|world|theme`: JSON Schemas (draft 2020-12) of the files drconsole reads, for
//! editors (taplo / Even Better TOML read a `#:schema` line) and CI.
//!
//! Each schema comes from the definitions its loader uses, so the two cannot drift: the runbook's from the loader's
//! section and field tables (`runbook::SECTIONS`, `RUNBOOK_FIELDS`, …) and every action's parameter table in the
//! catalogue; the incident file's, world's and theme's from the serde types their loaders deserialize
//! (`schemars` derives). A schema checks shape (fields, types, names, required keys, an action's parameters);
//! `drconsole check` remains the judge of meaning (references, cycles, regions that must differ).

use serde_json::{Map, Value, json};

use crate::cli::SchemaKind;
use crate::runbook::{
    Catalog, NOTIFY_FIELDS, ParamKind, RUNBOOK_FIELDS, SECTIONS, STATE_FIELDS, STEP_FIELDS, TARGET_FIELDS,
};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
/// A name: `[a-z0-9_-]+`.
const NAME: &str = "^[a-z0-9_-]+$";
/// A duration with its unit(s), no surrounding spaces: `90s`, `45m`, `2h`, `1h30m`.
const DURATION: &str = "^[0-9]+(\\.[0-9]+)?[a-z]+( ?[0-9]+(\\.[0-9]+)?[a-z]+)*$";
/// An AWS region name such as `us-west-2`.
const REGION: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$";
/// A value computed when the run starts: `${vars.NAME}`, `${steps.ID.OUTPUT}`, …
const INTERPOLATED: &str = "\\$\\{";

/// The schema of one kind of file.
pub fn schema(kind: SchemaKind, catalog: &dyn Catalog) -> Value {
    match kind {
        SchemaKind::Runbook => runbook(catalog),
        SchemaKind::Incident => derived::<crate::incident::file::IncidentSchema>("drconsole incident file"),
        SchemaKind::World => derived::<crate::cloud::sim::scenario::WorldSchema>("drconsole simulator world"),
        SchemaKind::Theme => derived::<crate::tui::theme::ThemeSchema>("drconsole console theme"),
    }
}

fn derived<T: schemars::JsonSchema>(title: &str) -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("title".into(), json!(title));
    }
    v
}

fn pattern(p: &str, description: &str) -> Value {
    json!({ "type": "string", "pattern": p, "description": description })
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// The schema of a `[runbook]`, `[target]`, `[state]` or `[[step]]` field; `None` for a field the loader accepts
/// that this table does not describe yet (a test fails on it).
fn field(section: &str, name: &str) -> Option<Value> {
    Some(match (section, name) {
        ("runbook", "name") => pattern(NAME, "the runbook's name, [a-z0-9_-]+"),
        ("runbook", "title") => string("a title for people"),
        ("runbook", "app") => string("the application it recovers"),
        ("runbook", "rto") => pattern(DURATION, "recovery time objective, e.g. \"2h\""),
        ("runbook", "rpo") => pattern(DURATION, "recovery point objective, e.g. \"1h\""),
        ("runbook", "owner") => string("who owns it (a team, an on-call rotation)"),
        ("runbook", "description") => string("what it does"),
        ("runbook", "extends") => string("a runbook to inherit from, relative to this file"),
        ("runbook", "mode") => {
            json!({ "enum": ["recovery", "drill"], "description": "recovery (a real failover) or drill (a recovery test)" })
        }
        ("runbook", "drill_record") => {
            string("the DNS record a drill writes instead of the production one: {id}, {record}")
        }
        ("target", "backend") => {
            json!({ "enum": ["aws", "sim"], "description": "aws, or sim (the built-in simulator)" })
        }
        ("target", "account") => pattern("^[0-9]{12}$", "refuse to act in any other AWS account"),
        ("target", "primary") => pattern(REGION, "the region that failed"),
        ("target", "secondary") => pattern(REGION, "the region to recover into"),
        ("state", "shared") => pattern("^s3://", "shared state: s3://BUCKET/PREFIX"),
        ("state", "region") => pattern(REGION, "the shared-state bucket's region"),
        ("state", "kms_key") => string("encrypt shared-state objects with this KMS key"),
        ("notify", "webhooks") => json!({ "type": "array", "items": { "type": "string", "pattern": "^https?://" },
            "description": "webhook URLs the run's notifications are POSTed to (Slack, Teams, any JSON receiver)" }),
        ("step", "id") => pattern(NAME, "the step's id, [a-z0-9_-]+, unique"),
        ("step", "title") => string("what the step does, for people"),
        ("step", "action") => string("an action of the catalogue (`drconsole actions`)"),
        ("step", "needs") => json!({ "type": "array", "items": { "type": "string", "pattern": NAME },
            "description": "the steps it runs after" }),
        ("step", "with") => json!({ "type": "object", "description": "the action's parameters" }),
        ("step", "timeout") => pattern(DURATION, "the longest one attempt may take"),
        ("step", "retries") => json!({ "type": "integer", "minimum": 0, "maximum": 100 }),
        ("step", "on_failure") => json!({ "enum": ["abort", "continue", "pause"] }),
        ("step", "confirm") => json!({ "type": "boolean", "description": "an operator confirms before it starts" }),
        ("step", "expected") => pattern(DURATION, "its expected duration, for the RTO projection"),
        ("step", "doc") => string("what the engineer should know before this step"),
        _ => return None,
    })
}

/// The fields the loader accepts that [`field`] does not describe (must be empty; a test checks).
pub fn undescribed_fields() -> Vec<String> {
    [
        ("runbook", RUNBOOK_FIELDS),
        ("target", TARGET_FIELDS),
        ("state", STATE_FIELDS),
        ("notify", NOTIFY_FIELDS),
        ("step", STEP_FIELDS),
    ]
    .iter()
    .flat_map(|(section, fields)| fields.iter().map(move |f| (*section, *f)))
    .filter(|(section, f)| field(section, f).is_none())
    .map(|(section, f)| format!("{section}.{f}"))
    .collect()
}

fn section(name: &str, fields: &[&str]) -> Value {
    let props: Map<String, Value> =
        fields.iter().map(|f| (f.to_string(), field(name, f).unwrap_or_else(|| json!({})))).collect();
    json!({ "type": "object", "properties": props, "additionalProperties": false })
}

/// A parameter's value: its kind, or a string that interpolates (`${…}`), which `check` judges.
fn param(kind: ParamKind, doc: &str) -> Value {
    let plain = match kind {
        ParamKind::Str => json!({ "type": "string" }),
        ParamKind::Int => json!({ "type": "integer" }),
        ParamKind::Bool => json!({ "type": "boolean" }),
        ParamKind::Duration => json!({ "type": "string", "pattern": DURATION }),
        ParamKind::Time => json!({ "type": "string" }),
        ParamKind::StrList => json!({ "type": "array", "items": { "type": "string" } }),
        ParamKind::Table => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        ParamKind::Region => json!({ "type": "string", "pattern": REGION }),
        ParamKind::Port => json!({ "type": "integer", "minimum": 1, "maximum": 65535 }),
        ParamKind::Url => json!({ "type": "string", "pattern": "^https?://" }),
        ParamKind::OneOf(words) => json!({ "enum": words }),
    };
    json!({ "description": doc, "anyOf": [plain, { "type": "string", "pattern": INTERPOLATED }] })
}

fn runbook(catalog: &dyn Catalog) -> Value {
    let mut names = catalog.names();
    names.sort_unstable();
    // one rule per action: `with` holds exactly its parameters, the required ones present
    let per_action: Vec<Value> = names
        .iter()
        .filter_map(|n| catalog.spec(n))
        .map(|spec| {
            let props: Map<String, Value> =
                spec.params.iter().map(|p| (p.name.to_string(), param(p.kind, p.doc))).collect();
            let required: Vec<&str> = spec.params.iter().filter(|p| p.required).map(|p| p.name).collect();
            // an action with required parameters needs its `with` table
            let with_required: Vec<&str> = if required.is_empty() { vec![] } else { vec!["with"] };
            json!({
                "if": { "properties": { "action": { "const": spec.name } }, "required": ["action"] },
                "then": {
                    "properties": { "with": {
                        "type": "object", "properties": props, "required": required, "additionalProperties": false
                    } },
                    "required": with_required
                }
            })
        })
        .collect();
    let mut step = section("step", STEP_FIELDS);
    if let Value::Object(m) = &mut step {
        m.insert("required".into(), json!(["id"]));
        m.insert("allOf".into(), Value::Array(per_action));
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            props.insert("action".into(), json!({ "enum": names, "description": "an action of the catalogue" }));
        }
    }
    let sections: Map<String, Value> = SECTIONS
        .iter()
        .map(|s| {
            let v = match *s {
                "runbook" => section("runbook", RUNBOOK_FIELDS),
                "target" => section("target", TARGET_FIELDS),
                "state" => section("state", STATE_FIELDS),
                "notify" => section("notify", NOTIFY_FIELDS),
                "vars" => json!({ "type": "object", "description": "values for ${vars.NAME}" }),
                "step" => json!({ "type": "array", "items": step }),
                other => json!({ "description": format!("section `{other}`") }),
            };
            (s.to_string(), v)
        })
        .collect();
    json!({
        "$schema": DRAFT,
        "title": "drconsole runbook",
        "description": "A drconsole runbook (docs/runbook.md). `drconsole check` validates it fully.",
        "type": "object",
        "properties": sections,
        "additionalProperties": false,
        // a runbook that extends another inherits what it leaves out; one that does not must say it all
        "if": { "not": { "properties": { "runbook": { "required": ["extends"] } }, "required": ["runbook"] } },
        "then": {
            "required": ["runbook", "target", "step"],
            "properties": {
                "runbook": { "required": ["name", "title", "app", "rto", "rpo"] },
                "target": { "required": ["primary", "secondary"] },
                "step": { "minItems": 1, "items": { "required": ["id", "title", "action"] } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_the_loader_accepts_is_described() {
        assert_eq!(undescribed_fields(), Vec::<String>::new());
    }

    #[test]
    fn a_runbook_without_extends_must_name_its_fields() {
        let registry = crate::actions::Registry::builtin();
        let s = runbook(&registry);
        assert_eq!(s["then"]["properties"]["runbook"]["required"][0], "name");
        assert!(s["properties"]["step"]["items"]["allOf"].as_array().is_some_and(|a| a.len() >= 10));
    }
}
