//! drconsole: a terminal console for disaster recovery on AWS.
//!
//! A runbook (TOML) is parsed and validated ([`runbook`]), run by the [`engine`] through the action catalogue
//! ([`actions`]) against a cloud, and shown by a frontend ([`headless`]).

pub mod actions;
pub mod cli;
pub mod cloud;
pub mod engine;
pub mod headless;
pub mod plan;
pub mod runbook;
pub mod util;
