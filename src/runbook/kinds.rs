//! Whether a value can be of a parameter's kind, judged before the run: literal values in `[step.with]`, and values
//! that are statically known through `${vars.*}` (`[vars]` and `--var`).
//!
//! Rules: a literal is judged by its TOML type (`min = "2"` is a string, not an integer); a value reached through a
//! variable is judged as the action will read it at run time (a `--var` is always a string, so `"2"` is a fine
//! integer there, `"two"` is not). A value that needs anything only the run knows (`${steps.*}`, `${run.*}`) is
//! judged at run time.

use serde_json::{Map, Value};

use super::catalog::ParamKind;
use super::interp::{self, Segment};
use super::valid_region;
use crate::util::parse_duration;

/// `Some(detail)` when `v` cannot be of `kind` (the detail follows "must be {kind}"). `lenient`: strings are read as
/// the actions read them (`"5432"` is an integer, `"true"` a boolean), as for values that came through a variable.
pub fn mismatch(kind: ParamKind, v: &Value, lenient: bool) -> Option<String> {
    if let Value::String(s) = v
        && interp::is_template(s)
    {
        return None;
    }
    let found = |v: &Value| match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a table".into(),
        Value::Null => "nothing".into(),
    };
    let int = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if lenient => s.parse::<i64>().ok(),
        _ => None,
    };
    match (kind, v) {
        (ParamKind::Str, Value::String(_)) => None,
        (ParamKind::Str, Value::Number(_) | Value::Bool(_)) if lenient => None,
        (ParamKind::Int, v) if int(v).is_some() => None,
        (ParamKind::Port, v) => match int(v) {
            Some(p) if (1..=65535).contains(&p) => None,
            Some(p) => Some(format!(", found {p}")),
            None => Some(format!(", found {}", found(v))),
        },
        (ParamKind::Bool, Value::Bool(_)) => None,
        (ParamKind::Bool, Value::String(s)) if lenient && (s == "true" || s == "false") => None,
        (ParamKind::Duration, Value::String(s)) => parse_duration(s).err().map(|e| format!(": {e}")),
        (ParamKind::Time, Value::String(s)) => s.parse::<jiff::Timestamp>().err().map(|_| format!(", found \"{s}\"")),
        (ParamKind::Region, Value::String(s)) => (!valid_region(s)).then(|| format!(", found \"{s}\"")),
        (ParamKind::Url, Value::String(s)) => url_problem(s),
        (ParamKind::OneOf(words), Value::String(s)) => {
            (!words.contains(&s.as_str())).then(|| match crate::util::suggest(s, words) {
                Some(h) => format!(", found \"{s}\" ({h})"),
                None => format!(", found \"{s}\""),
            })
        }
        (ParamKind::StrList, Value::Array(a)) if a.iter().all(Value::is_string) => None,
        (ParamKind::StrList, Value::String(_)) if lenient => None,
        (ParamKind::Table, Value::Object(m))
            if m.values().all(|x| x.is_string() || x.is_number() || x.is_boolean()) =>
        {
            None
        }
        (_, other) => Some(format!(", found {}", found(other))),
    }
}

fn url_problem(s: &str) -> Option<String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        None => {
            let scheme = s.split_once("://").map_or("no scheme", |(sc, _)| sc);
            Some(format!(", found \"{s}\" ({scheme}: only http and https are checked)"))
        }
        Some(r) if r.is_empty() || r.starts_with('/') || r.chars().any(char::is_whitespace) => {
            Some(format!(", found \"{s}\" (no host, or a space in it)"))
        }
        Some(_) => None,
    }
}

/// A parameter's kind by its name, for one step's action (`None`: no such parameter, or an unknown action).
pub type KindOf = Box<dyn Fn(&str) -> Option<ParamKind>>;

/// A parameter whose value, known before the run through variables, cannot be of its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct VarProblem {
    /// Index of the step, and the parameter.
    pub step: usize,
    pub param: String,
    /// The variable, when the parameter is exactly one `${vars.NAME}` (the problem is then the variable's value).
    pub var: Option<String>,
    /// Every variable the value used.
    pub vars: Vec<String>,
    pub message: String,
}

/// Judges each parameter whose value is built only from variables with known values (and literal text), as the
/// action will read it. `steps`: each step's action kinds (`None`: unknown action) and its `with`.
pub fn var_problems<'a>(
    vars: &Map<String, Value>,
    steps: impl IntoIterator<Item = (&'a str, &'a [(String, Value)], &'a dyn Fn(&str) -> Option<ParamKind>)>,
) -> Vec<VarProblem> {
    let mut out = Vec::new();
    for (i, (action, with, kind_of)) in steps.into_iter().enumerate() {
        for (name, v) in with {
            let Value::String(s) = v else { continue };
            let Some(kind) = kind_of(name) else { continue };
            let Ok(segs) = interp::parse(s) else { continue };
            let refs: Vec<&Vec<String>> = segs
                .iter()
                .filter_map(|g| match g {
                    Segment::Ref(p, _) => Some(p),
                    Segment::Lit(_) => None,
                })
                .collect();
            if refs.is_empty() {
                continue;
            }
            // only values made of variables with literal values are known before the run
            let mut used = Vec::new();
            let known = refs.iter().all(|p| match p.as_slice() {
                [ns, n] if ns == "vars" => match vars.get(n) {
                    Some(Value::String(x)) if interp::is_template(x) => false,
                    Some(_) => {
                        used.push(n.clone());
                        true
                    }
                    None => false,
                },
                _ => false,
            });
            if !known {
                continue;
            }
            let value = match segs.as_slice() {
                [Segment::Ref(p, _)] => vars.get(&p[1]).cloned().unwrap_or(Value::Null),
                _ => {
                    let mut t = String::new();
                    for g in &segs {
                        match g {
                            Segment::Lit(l) => t.push_str(l),
                            Segment::Ref(p, _) => match vars.get(&p[1]) {
                                Some(Value::String(x)) => t.push_str(x),
                                Some(x) => t.push_str(&x.to_string()),
                                None => {}
                            },
                        }
                    }
                    Value::String(t)
                }
            };
            if let Some(why) = mismatch(kind, &value, true) {
                let whole = matches!(segs.as_slice(), [Segment::Ref(..)]);
                let via = if whole {
                    format!("variable `{}`", used[0])
                } else {
                    format!("\"{s}\" (with {})", used.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "))
                };
                out.push(VarProblem {
                    step: i,
                    param: name.clone(),
                    var: whole.then(|| used[0].clone()),
                    vars: used.clone(),
                    message: format!(
                        "{via} is used as parameter `{name}` of `{action}`, which must be {}{why}",
                        kind.describe()
                    ),
                });
            }
        }
    }
    out
}

/// `--var` values judged as `check` judges `[vars]`: the first variable given on the command line whose value
/// cannot be of a parameter kind it reaches, as a message naming the flag.
pub fn check_overrides(rb: &super::Runbook, catalog: &dyn super::Catalog, overrides: &[String]) -> Result<(), String> {
    let given: Vec<&str> = overrides.iter().filter_map(|o| o.split_once('=').map(|(k, _)| k)).collect();
    let withs: Vec<Vec<(String, Value)>> =
        rb.steps.iter().map(|s| s.with.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).collect();
    let kind_fns: Vec<KindOf> = rb
        .steps
        .iter()
        .map(|s| {
            let spec = catalog.spec(&s.action);
            Box::new(move |name: &str| spec.and_then(|sp| sp.param(name)).map(|ps| ps.kind)) as KindOf
        })
        .collect();
    let steps =
        rb.steps.iter().enumerate().map(|(i, s)| (s.action.as_str(), withs[i].as_slice(), kind_fns[i].as_ref()));
    for p in var_problems(&rb.vars, steps) {
        if let Some(v) = p.vars.iter().find(|v| given.contains(&v.as_str())) {
            let value = rb.vars.get(v).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string));
            return Err(format!(
                "--var {v}={}: {} (step `{}`)",
                value.unwrap_or_default(),
                p.message,
                rb.steps[p.step].id
            ));
        }
    }
    Ok(())
}

/// The steps that will ask the operator to choose a recovery point (`recovery_point.select` with `policy = "ask"`,
/// the default, written or through a variable): a headless run without `--recovery-point` cannot finish them.
pub fn asking_steps(rb: &super::Runbook) -> Vec<String> {
    rb.steps
        .iter()
        .filter(|s| s.action == "recovery_point.select")
        .filter(|s| {
            let policy = match s.with.get("policy") {
                None => Some(Value::String("ask".into())),
                Some(Value::String(t)) => match interp::parse(t).as_deref() {
                    Ok([Segment::Ref(p, _)]) if p.len() == 2 && p[0] == "vars" => rb.vars.get(&p[1]).cloned(),
                    _ => Some(Value::String(t.clone())),
                },
                Some(other) => Some(other.clone()),
            };
            policy.is_some_and(|p| p == "ask")
        })
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_literals_and_lenient_variables() {
        assert!(mismatch(ParamKind::Int, &json!("2"), false).is_some());
        assert!(mismatch(ParamKind::Int, &json!("2"), true).is_none());
        assert!(mismatch(ParamKind::Int, &json!("two"), true).is_some());
        assert!(mismatch(ParamKind::Port, &json!(70000), false).is_some());
        assert!(mismatch(ParamKind::Port, &json!(-1), false).is_some());
        assert!(mismatch(ParamKind::Port, &json!("5432"), true).is_none());
        assert!(mismatch(ParamKind::Port, &json!("http"), true).is_some());
        assert!(mismatch(ParamKind::Bool, &json!("maybe"), true).is_some());
        assert!(mismatch(ParamKind::Bool, &json!("true"), true).is_none());
        assert!(mismatch(ParamKind::Url, &json!("ftp://x"), false).is_some());
        assert!(mismatch(ParamKind::Url, &json!("https://x/y"), false).is_none());
        assert!(mismatch(ParamKind::OneOf(&["rds", "ebs"]), &json!("rdss"), false).unwrap().contains("did you mean"));
    }
}
