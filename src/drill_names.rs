//! Drill names and predicates: the names a drill gives what it makes, the drill record, and how a run recognises
//! another drill's copies. A leaf: it imports nothing of drconsole but `util`, so the actions, the runbook loader
//! and the clouds use it without depending on [`crate::drill`] (which reads the action catalogue and the runbook),
//! and no import circle goes through it.

use std::collections::BTreeMap;

/// The tag every resource a drill creates carries, with the drill's run id (re-exported as
/// [`crate::cloud::TAG_DRILL`]).
pub const TAG_DRILL: &str = "drconsole:drill";

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
pub fn of_another_drill(tags: &BTreeMap<String, String>, run_id: &str) -> bool {
    tags.get(TAG_DRILL).is_some_and(|d| d != run_id)
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

/// A record name compared case-insensitively, without its trailing dot.
pub fn norm(record: &str) -> String {
    record.trim_end_matches('.').to_ascii_lowercase()
}
