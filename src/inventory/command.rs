//! `drconsole inventory [RUNBOOK...]`: shows the DR inventory of each runbook (default: every one in the state
//! directory), where it was read from and its age. Exit 0 when every inventory asked for exists, 1 when one is
//! missing (run `drconsole preflight` while the primary answers), 2 for an invalid runbook.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::{Inventory, load_newest};
use crate::actions::Registry;

/// Runs the command; returns the exit code.
pub fn main(runbooks: &[PathBuf], json: bool, state_dir: Option<&Path>, registry: &Registry) -> u8 {
    let root = match crate::journal::StateDir::resolve(state_dir) {
        Ok(s) => s.root,
        Err(e) => {
            eprintln!("drconsole: {e}");
            return 2;
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut code = 0u8;
    if runbooks.is_empty() {
        let dir = root.join("inventory");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if let Some(stem) = n.strip_suffix(".json") {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        if names.is_empty() && crate::journal::shared::configured().is_none() {
            eprintln!(
                "drconsole: no DR inventory in {}: `drconsole preflight RUNBOOK` writes one while the primary answers",
                dir.display()
            );
            return 1;
        }
    }
    for path in runbooks {
        match crate::runbook::load(path, registry) {
            Ok(rb) => names.push(rb.meta.name.clone()),
            Err(d) => {
                eprint!("{d}");
                code = code.max(2);
            }
        }
    }
    let now = Timestamp::now();
    let mut out = Vec::new();
    for name in &names {
        let (found, notes) = load_newest(Some(&root), name);
        for n in notes {
            eprintln!("drconsole: {name}: {n}");
        }
        match found {
            Some((inv, from)) => {
                if json {
                    let age = crate::run::clock::secs_between(inv.taken, now).max(0);
                    out.push(serde_json::json!({ "runbook": name, "from": from, "age_secs": age, "inventory": inv }));
                } else {
                    print!("{}", text(&inv, &from, now));
                }
            }
            None => {
                eprintln!(
                    "drconsole: {name}: no DR inventory: run `drconsole preflight` on its runbook while the primary \
                     region answers"
                );
                if code == 0 {
                    code = 1;
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    code
}

/// The inventory as text.
pub fn text(inv: &Inventory, from: &str, now: Timestamp) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} (app {}): {}", inv.runbook, inv.app, inv.describe_age(now));
    let _ = writeln!(o, "  read from {from}");
    let _ = writeln!(
        o,
        "  primary {}, secondary {}{}",
        inv.primary,
        inv.secondary,
        inv.account.as_ref().map(|a| format!(", account {a}")).unwrap_or_default()
    );
    for set in &inv.volume_sets {
        let _ = writeln!(o, "  volumes tagged {} in {}: {}", set.tag, inv.primary, set.volumes.len());
        for v in &set.volumes {
            let at = match (&v.instance, &v.device) {
                (Some(i), Some(d)) => format!(", {d} on {i}"),
                _ => String::new(),
            };
            let name = v.tags.get("Name").map(|n| format!(" ({n})")).unwrap_or_default();
            let _ = writeln!(o, "    {}{name}: {} GiB {} in {}{at}", v.id, v.size_gib, v.volume_type, v.az);
            let mut pts: Vec<&super::Point> =
                inv.points.iter().filter(|p| p.volume.as_deref() == Some(v.id.as_str())).collect();
            pts.sort_by_key(|p| std::cmp::Reverse(p.time));
            for p in pts.iter().take(3) {
                let _ = writeln!(
                    o,
                    "      {} in {}: data of {}{} ({})",
                    p.id,
                    p.region,
                    if p.time_is_bound { "before " } else { "" },
                    p.time.strftime("%Y-%m-%d %H:%M:%SZ"),
                    p.by
                );
            }
            if pts.len() > 3 {
                let _ = writeln!(o, "      … {} more", pts.len() - 3);
            }
        }
    }
    for d in &inv.databases {
        let _ = writeln!(
            o,
            "  database {}: {} {}, {} GiB, subnet group {}, security groups {}",
            d.id,
            d.engine,
            d.class,
            d.storage_gib,
            d.subnet_group.as_deref().unwrap_or("-"),
            if d.security_groups.is_empty() { "-".to_string() } else { d.security_groups.join(", ") }
        );
        let n = inv.points.iter().filter(|p| p.instance.as_deref() == Some(d.id.as_str())).count();
        let _ = writeln!(o, "    {n} recovery point(s) of it in {} and {}", inv.primary, inv.secondary);
    }
    for i in &inv.images {
        let _ =
            writeln!(o, "  image {} {} in {} ({})", i.id, i.name, i.region, i.created.strftime("%Y-%m-%d %H:%M:%SZ"));
    }
    for n in &inv.notes {
        let _ = writeln!(o, "  note: {n}");
    }
    o
}
