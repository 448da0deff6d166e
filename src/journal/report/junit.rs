//! `junit.xml`: the report for CI — one testsuite (the runbook), one testcase per step.

use std::fmt::Write as _;

use super::Report;

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

/// The report for CI: one testsuite (the runbook), one testcase per step. A failed step is a `<failure>`; a
/// step the operator skipped is `<skipped>`; a step that did not complete in a run that did not recover is a
/// `<failure>` too, so CI goes red whenever the recovery did not happen.
pub fn junit(r: &Report) -> String {
    let recovered = r.outcome.as_deref() == Some("recovered");
    let mut failures = 0;
    let mut skipped = 0;
    let mut cases = String::new();
    for s in &r.steps {
        let time = s.duration_secs.unwrap_or(0);
        let _ = write!(
            cases,
            "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{time}\"",
            xml(&s.id),
            xml(&r.runbook.name),
            xml(&s.action)
        );
        let detail = s.detail.clone().unwrap_or_default();
        match s.outcome.as_str() {
            "succeeded" => cases.push_str("/>\n"),
            "skipped" => {
                skipped += 1;
                let _ = write!(cases, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(&detail));
            }
            "failed" => {
                failures += 1;
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"step_failed\">step `{}` failed after {} attempt(s): {}</failure>\n    </testcase>\n",
                    xml(&detail),
                    xml(&s.id),
                    s.attempts,
                    xml(&detail)
                );
            }
            other if !recovered => {
                failures += 1;
                let msg = if detail.is_empty() {
                    format!("{other}: the run did not recover")
                } else {
                    format!("{other}: {detail}")
                };
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"not_completed\">{}</failure>\n    </testcase>\n",
                    xml(&msg),
                    xml(&msg)
                );
            }
            other => {
                skipped += 1;
                let _ = write!(cases, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(other));
            }
        }
    }
    let tests = r.steps.len();
    let time = match (r.started, r.ended) {
        (Some(a), Some(b)) => u64::try_from(b.duration_since(a).as_secs()).unwrap_or(0),
        _ => 0,
    };
    let stamp = r.started.map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"drconsole\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">"
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{stamp}\" hostname=\"{}\">",
        xml(&r.runbook.name),
        xml(&r.operator.host)
    );
    let _ = writeln!(o, "    <properties>");
    let mut prop = |k: &str, v: &str| {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
    };
    prop("run_id", &r.run_id);
    prop("runbook_sha256", &r.runbook.sha256);
    prop("operator", &format!("{}@{}", r.operator.user, r.operator.host));
    prop("backend", &r.backend);
    prop("account", r.account.as_deref().unwrap_or(""));
    prop("regions", &format!("{} -> {}", r.primary, r.secondary));
    prop("outcome", r.outcome.as_deref().unwrap_or("not finished"));
    prop("rto_target_secs", &r.rto.target_secs.to_string());
    prop("rto_achieved_secs", &r.rto.achieved_secs.map(|s| s.to_string()).unwrap_or_default());
    prop("rto_met", &r.rto.met.map(|m| m.to_string()).unwrap_or_default());
    prop("rpo_target_secs", &r.rpo.target_secs.to_string());
    prop("rpo_achieved_secs", &r.rpo.achieved_secs.map(|s| s.to_string()).unwrap_or_default());
    prop("rpo_met", &r.rpo.met.map(|m| m.to_string()).unwrap_or_default());
    let _ = writeln!(o, "    </properties>");
    o.push_str(&cases);
    let summary = format!(
        "{}: {}",
        r.outcome.as_deref().unwrap_or("not finished"),
        if r.message.is_empty() { "-" } else { r.message.as_str() }
    );
    let _ = writeln!(o, "    <system-out>{}</system-out>", xml(&summary));
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}
