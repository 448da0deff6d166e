//! drconsole: a terminal console for disaster recovery on AWS.
//!
//! A runbook (TOML) is parsed and validated ([`runbook`]), run by the [`engine`] through the action catalogue
//! ([`actions`]) against a cloud, and shown by a frontend ([`headless`], [`tui`]).

/// The version `--version` prints: the package version and, when built from git, the commit and its date.
pub const VERSION: &str = env!("DRCONSOLE_VERSION");

pub mod actions;
pub mod app;
pub mod cleanup;
pub mod cli;
pub mod cloud;
pub mod drill;
pub mod drill_names;
pub mod engine;
pub mod exit;
pub mod forecast;
pub mod headless;
pub mod iam;
pub mod incident;
pub mod inventory;
pub mod journal;
pub mod notify;
pub mod plan;
pub mod preflight;
pub mod run;
pub mod runbook;
pub mod schema;
pub mod tui;
pub mod util;
