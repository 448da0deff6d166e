//! Tests that need nothing outside this machine: the runbook format and `check`, the engine, headless runs,
//! the journal, reports, the simulator, drills, incidents, preflight, the IAM policy, console snapshots and
//! recorded AWS responses. One test binary (each module was a binary of its own before).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/crash.rs"]
mod crash;
#[path = "../support/replay.rs"]
mod replay;

mod arc_recorded;
mod aws_recorded;
mod check;
mod drill;
mod ecosystem;
mod engine;
mod forecast;
mod headless;
mod hostile;
mod iam_policy;
mod incident;
mod journal_cli;
mod journal_crash;
mod journal_lib;
mod journal_reports;
mod notify;
mod parity;
mod preflight;
mod preflight_recorded;
mod region_health;
mod sim_actions;
mod sim_crash;
mod sim_runbooks;
mod tui_snapshots;
