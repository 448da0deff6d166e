//! `drconsole iam-policy`: golden files for every runbook in runbooks/ (least privilege: scoped resources, the
//! documented conditions), every API call a simulated run of each runbook makes is allowed by its policy, and the
//! policy grants nothing the runbook's steps do not declare.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use drconsole::actions::Registry;
use serde_json::Value;

fn runbooks(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // worlds are simulator files, incidents name runbooks (each of which is here already)
            if p.file_name().is_some_and(|n| n != "worlds" && n != "incidents") {
                runbooks(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

fn all_runbooks() -> Vec<PathBuf> {
    let mut v = Vec::new();
    runbooks(&Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks"), &mut v);
    v.sort();
    v
}

fn policy_of(path: &Path) -> Value {
    let out = Command::cargo_bin("drconsole").unwrap().arg("iam-policy").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn snapshot_name(path: &Path) -> String {
    let rel = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")).unwrap();
    rel.with_extension("").to_string_lossy().replace('/', "__")
}

#[test]
fn golden_policies_for_every_runbook() {
    let files = all_runbooks();
    assert!(files.len() >= 13, "{files:?}");
    for f in files {
        let p = policy_of(&f);
        insta::assert_snapshot!(format!("iam_policy_{}", snapshot_name(&f)), serde_json::to_string_pretty(&p).unwrap());
    }
}

/// What `iam-policy` must never do again: grant a mutating action on every resource, pass any role to any
/// service, or grant an action the runbook's steps do not declare.
#[test]
fn policies_are_scoped_and_grant_only_what_the_steps_declare() {
    let registry = Registry::builtin();
    // AWS has no resource-level permissions for these
    let unscoped_ok = ["sts:GetCallerIdentity", "route53:CreateHealthCheck"];
    for f in all_runbooks() {
        let rb = drconsole::runbook::load(&f, &registry).unwrap_or_else(|d| panic!("{d}"));
        let declared: BTreeSet<String> = rb
            .steps
            .iter()
            .filter_map(|s| registry.get(&s.action))
            .flat_map(|a| a.spec().iam.iter().map(|x| (*x).to_string()))
            .collect();
        let p = policy_of(&f);
        let encrypted = declared.contains("kms:CreateGrant");
        for st in p["Statement"].as_array().unwrap() {
            let actions: Vec<&str> = st["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            let resources: Vec<&str> = st["Resource"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            for a in &actions {
                assert!(!a.ends_with(":*") && *a != "*", "{}: wildcard action {a}", f.display());
                let added_for_kms = encrypted && ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"].contains(a);
                assert!(
                    declared.contains(*a) || *a == "sts:GetCallerIdentity" || added_for_kms,
                    "{}: {a} is granted but no step declares it",
                    f.display()
                );
                let read = ["Describe", "List", "Get"].iter().any(|r| a.split(':').nth(1).unwrap().starts_with(r))
                    && *a != "secretsmanager:GetSecretValue";
                if resources == ["*"] && !read {
                    assert!(unscoped_ok.contains(a), "{}: {a} on every resource", f.display());
                }
                if *a == "iam:PassRole" {
                    assert!(
                        st["Condition"]["StringEquals"]["iam:PassedToService"].is_string(),
                        "{}: PassRole without iam:PassedToService",
                        f.display()
                    );
                }
                if *a == "kms:CreateGrant" {
                    assert_eq!(st["Condition"]["Bool"]["kms:GrantIsForAWSResource"], "true", "{}", f.display());
                }
            }
            if resources == ["*"] && actions.iter().any(|a| !a.starts_with("route53:") && !a.starts_with("sts:")) {
                let regions = &st["Condition"]["StringEquals"]["aws:RequestedRegion"];
                assert_eq!(
                    regions,
                    &serde_json::json!([rb.target.primary, rb.target.secondary]),
                    "{}: reads limited to the runbook's regions",
                    f.display()
                );
            }
        }
        if encrypted {
            let all: Vec<&str> = p["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()))
                .collect();
            for k in ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"] {
                assert!(all.contains(&k), "{}: encrypted copies/restores need {k}", f.display());
            }
        }
    }
}

/// Every API call a simulated run makes (the simulator counts them in the saved world) is an action its policy
/// grants, in the runbook's regions.
#[test]
fn every_call_of_a_simulated_run_is_allowed_by_the_policy() {
    for f in all_runbooks() {
        let state = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("drconsole")
            .unwrap()
            .env("DRCONSOLE_STATE_DIR", state.path())
            .args([
                "--headless",
                "--sim",
                "--speed",
                "3000",
                "--yes",
                "--manual-done",
                "all",
                "--recovery-point",
                "latest",
            ])
            .arg(&f)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        // the tabletop scenarios may end as their story says; their calls still count
        let runs: Vec<PathBuf> =
            std::fs::read_dir(state.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(runs.len(), 1, "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
        let world: Value = serde_json::from_slice(&std::fs::read(runs[0].join("world.json")).unwrap()).unwrap();
        let calls = world["calls"].as_object().unwrap();
        assert!(!calls.is_empty() || f.to_string_lossy().contains("engine-demo"), "{}", f.display());
        let policy = policy_of(&f);
        for key in calls.keys() {
            let (svc, op) = key.split_once(':').unwrap();
            let action = drconsole::iam::iam_action_of(svc, op);
            assert!(
                drconsole::iam::allows_action(&policy, &action, ""),
                "{}: the run called {action}, which its policy does not grant:\n{}",
                f.display(),
                serde_json::to_string_pretty(&policy).unwrap()
            );
        }
    }
}
