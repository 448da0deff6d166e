//! Names the commit in `drconsole --version` when built from a git checkout (`0.1.0 (c0c328b 2026-12-02)`); a
//! build from a source archive says only the package version.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let full = match git(&["log", "-1", "--format=%h %cs"]) {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    };
    println!("cargo:rustc-env=DRCONSOLE_VERSION={full}");
    // rebuild when the checked-out commit changes: HEAD, the branch it names, and packed refs
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = PathBuf::from(dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from).unwrap_or(dir.clone());
            println!("cargo:rerun-if-changed={}", common.join(&head_ref).display());
            println!("cargo:rerun-if-changed={}", common.join("packed-refs").display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
