//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "drconsole",
    version,
    about = "A terminal console for disaster recovery on AWS",
    long_about = "drconsole walks an on-call engineer through an AWS disaster recovery, step by step, from a TOML runbook: \
pick a recovery point, restore RDS and EBS, rebuild the secondary region, verify — with live progress, an RTO \
countdown and a projected finish.\n\nRun a runbook:   drconsole --headless runbook.toml\nRehearse it:      drconsole --headless --sim runbook.toml\nValidate it:      drconsole check runbook.toml",
    after_help = "Exit codes: 0 recovered; 1 a step failed or the run was aborted; 2 invalid runbook or usage; \
3 headless run stopped at an approval or choice it was not given; 4 refused by a guard (account or region); 130 interrupted.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate runbooks without running them; prints every error with file:line:col
    Check {
        /// Runbook files
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print diagnostics as JSON
        #[arg(long)]
        json: bool,
    },
    /// List every action with its parameters and outputs
    Actions {
        /// Print the catalogue as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show what a runbook will do, step by step, with the critical path and projected RTO; touches nothing
    Plan { runbook: PathBuf },
    /// Print the least-privilege IAM policy a runbook needs
    IamPolicy { runbook: PathBuf },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The runbook to run (opens the console; add --headless for automation)
    pub runbook: Option<PathBuf>,

    /// Run without the interactive console: one line per event on stdout
    #[arg(long)]
    pub headless: bool,

    /// With --headless: write NDJSON events instead of text
    #[arg(long)]
    pub json: bool,

    /// Run on the built-in simulator (no AWS account needed)
    #[arg(long)]
    pub sim: bool,

    /// Simulator: a world/scenario file (resources, faults, outages); implies --sim
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,

    /// Simulator only: run simulated time N times faster than real time
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub speed: f64,

    /// Seed for retry jitter and the simulator, for reproducible runs
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Approve these confirmations in advance: `all` or step ids (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "all|ID,ID")]
    pub approve: Vec<String>,

    /// Approve every confirmation and manual task (same as --approve all)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Recovery point for `ask` policies in headless runs: an id, or `latest`
    #[arg(long, value_name = "ID|latest")]
    pub recovery_point: Option<String>,

    /// When the incident started (RFC 3339, or a duration ago such as 45m); default: now
    #[arg(long, value_name = "TIME|AGO")]
    pub incident_start: Option<String>,

    /// Most steps running at once
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_parallel: usize,

    /// Override a runbook variable: NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// AWS: the shared-config profile to use (SSO and assume-role profiles work); default: AWS_PROFILE or default
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS: send every API call to this endpoint (an emulator, a proxy, VPC endpoints); also AWS_ENDPOINT_URL
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}
