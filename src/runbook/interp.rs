//! `${...}` interpolation: parsing templates, and rendering them against a run's values.
//!
//! References: `${vars.NAME}`, `${target.primary}`, `${target.secondary}`, `${target.account}`,
//! `${target.backend}`, `${runbook.FIELD}`, `${steps.ID.OUTPUT}`, `${run.id}`, `${run.incident_start}`.
//! `$${` writes a literal `${`.

use serde_json::{Map, Value};
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Lit(String),
    /// A reference, its dotted path, and its byte range inside the template string (from `$` to `}`).
    Ref(Vec<String>, Range<usize>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub range: Range<usize>,
}

/// Splits a template string into literal text and references.
pub fn parse(s: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    let mut pos = 0;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i..];
        if after.starts_with("$${") {
            lit.push_str("${");
            pos += i + 3;
            rest = &rest[i + 3..];
        } else if after.starts_with("${") {
            let start = pos + i;
            let Some(end) = after.find('}') else {
                return Err(TemplateError {
                    message: "unterminated `${`: add a closing `}`".into(),
                    range: start..s.len(),
                });
            };
            let inner = after[2..end].trim();
            let range = start..start + end + 1;
            if inner.is_empty() {
                return Err(TemplateError { message: "empty reference `${}`".into(), range });
            }
            let path: Vec<String> = inner.split('.').map(str::to_string).collect();
            if path
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            {
                return Err(TemplateError { message: format!("malformed reference `${{{inner}}}`"), range });
            }
            if !lit.is_empty() {
                out.push(Segment::Lit(std::mem::take(&mut lit)));
            }
            out.push(Segment::Ref(path, range));
            pos = start + end + 1;
            rest = &after[end + 1..];
        } else {
            lit.push('$');
            pos += i + 1;
            rest = &rest[i + 1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Segment::Lit(lit));
    }
    Ok(out)
}

/// Resolves a reference path to a value; `None` means unknown.
pub trait Scope {
    fn lookup(&self, path: &[String]) -> Option<Value>;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot resolve `${{{reference}}}`: {why}")]
pub struct ResolveError {
    pub reference: String,
    pub why: String,
}

/// Renders a template. A template that is exactly one reference keeps the referenced value's JSON type.
pub fn render(s: &str, scope: &dyn Scope) -> Result<Value, ResolveError> {
    let segs = parse(s).map_err(|e| ResolveError { reference: s.to_string(), why: e.message })?;
    if let [Segment::Ref(path, _)] = segs.as_slice() {
        return lookup(scope, path);
    }
    let mut out = String::new();
    for seg in segs {
        match seg {
            Segment::Lit(l) => out.push_str(&l),
            Segment::Ref(path, _) => match lookup(scope, &path)? {
                Value::String(v) => out.push_str(&v),
                v => out.push_str(&v.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

fn lookup(scope: &dyn Scope, path: &[String]) -> Result<Value, ResolveError> {
    scope.lookup(path).ok_or_else(|| ResolveError {
        reference: path.join("."),
        why: "no such value at run time (was the step skipped or did it not produce this output?)".into(),
    })
}

/// Renders every string inside a JSON value (tables and lists included).
pub fn render_value(v: &Value, scope: &dyn Scope) -> Result<Value, ResolveError> {
    Ok(match v {
        Value::String(s) => render(s, scope)?,
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, scope)).collect::<Result<_, _>>()?),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| Ok((k.clone(), render_value(x, scope)?))).collect::<Result<_, _>>()?)
        }
        other => other.clone(),
    })
}

/// Every reference inside a JSON value, for validation.
pub fn references(v: &Value) -> Vec<Result<Vec<String>, TemplateError>> {
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn walk(v: &Value, out: &mut Vec<Result<Vec<String>, TemplateError>>) {
    match v {
        Value::String(s) => match parse(s) {
            Ok(segs) => out.extend(segs.into_iter().filter_map(|s| match s {
                Segment::Ref(p, _) => Some(Ok(p)),
                Segment::Lit(_) => None,
            })),
            Err(e) => out.push(Err(e)),
        },
        Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        Value::Object(m) => m.values().for_each(|x| walk(x, out)),
        _ => {}
    }
}

/// Whether a string contains any `${...}` reference (its type is then known only at run time).
pub fn is_template(s: &str) -> bool {
    parse(s).map(|segs| segs.iter().any(|s| matches!(s, Segment::Ref(..)))).unwrap_or(true)
}

/// Resolves what is known before a run; step outputs and the run id show as placeholders.
pub struct PlanScope<'a>(pub &'a super::Runbook);

impl Scope for PlanScope<'_> {
    fn lookup(&self, path: &[String]) -> Option<Value> {
        let rb = self.0;
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let s = |x: &str| Some(Value::String(x.to_string()));
        match p.as_slice() {
            ["vars", name] => rb.vars.get(*name).map(|v| render_value(v, self).unwrap_or_else(|_| v.clone())),
            ["target", "primary"] => s(&rb.target.primary),
            ["target", "secondary"] => s(&rb.target.secondary),
            ["target", "account"] => rb.target.account.as_deref().and_then(s),
            ["target", "backend"] => s(rb.target.backend.as_str()),
            ["runbook", "name"] => s(&rb.meta.name),
            ["runbook", "title"] => s(&rb.meta.title),
            ["runbook", "app"] => s(&rb.meta.app),
            ["runbook", "owner"] => rb.meta.owner.as_deref().and_then(s),
            ["runbook", "description"] => rb.meta.description.as_deref().and_then(s),
            ["runbook", "rto"] => s(&crate::util::fmt_duration(rb.meta.rto)),
            ["runbook", "rpo"] => s(&crate::util::fmt_duration(rb.meta.rpo)),
            _ => s(&format!("<{}>", path.join("."))),
        }
    }
}

/// A step's parameters as far as they can be known before the run (`plan`, `iam-policy`, the simulator's
/// provisioning); unknowns show as `<steps.ID.OUTPUT>` placeholders.
pub fn planned_with(rb: &super::Runbook, i: usize) -> Map<String, Value> {
    let scope = PlanScope(rb);
    rb.steps[i].with.iter().map(|(k, v)| (k.clone(), render_value(v, &scope).unwrap_or_else(|_| v.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct S;
    impl Scope for S {
        fn lookup(&self, path: &[String]) -> Option<Value> {
            match path.join(".").as_str() {
                "vars.db" => Some(json!("crosssell")),
                "steps.a.port" => Some(json!(5432)),
                _ => None,
            }
        }
    }

    #[test]
    fn parses_refs_and_escapes() {
        let segs = parse("x-${vars.db}-$${literal}").unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Lit("x-".into()),
                Segment::Ref(vec!["vars".into(), "db".into()], 2..12),
                Segment::Lit("-${literal}".into())
            ]
        );
        assert!(parse("${vars.db").is_err());
        assert!(parse("${}").is_err());
        assert!(parse("${a..b}").is_err());
        assert_eq!(parse("cost $5").unwrap(), vec![Segment::Lit("cost $5".into())]);
    }

    #[test]
    fn renders_keeping_types_for_whole_refs() {
        assert_eq!(render("${steps.a.port}", &S).unwrap(), json!(5432));
        assert_eq!(render("${vars.db}-dr:${steps.a.port}", &S).unwrap(), json!("crosssell-dr:5432"));
        assert!(render("${vars.nope}", &S).is_err());
    }
}
