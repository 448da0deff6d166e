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
countdown and a projected finish.\n\nRun a runbook:    drconsole --headless runbook.toml\nRehearse it:      drconsole --headless --sim runbook.toml\nValidate it:      drconsole check runbook.toml",
    after_help = "Exit codes: 0 recovered; 1 a step failed or the run was aborted; 2 invalid runbook or usage; \
3 headless run stopped at an approval or choice it was not given; 4 refused by a guard (account or region); 130 interrupted.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub run: RunArgs,

    /// Where runs are journalled (runs/, locks/); default: $XDG_STATE_HOME/drconsole or ~/.local/state/drconsole
    #[arg(long, global = true, env = "DRCONSOLE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
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
    /// Resume a run that stopped (lost session, crash, interrupt) from its journal; succeeded steps are not repeated
    Resume(ResumeArgs),
    /// List journalled runs: id, runbook, status, start, outcome
    Runs {
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a run's reports again (report.md, report.json, junit.xml in its directory) and print one
    Report {
        /// Run id (or a unique prefix, `last`, or a run directory)
        run: String,
        /// Which report to print
        #[arg(long, value_parser = ["md", "json", "junit"], default_value = "md")]
        format: String,
    },
    /// Follow a live run from its journal, read-only (any number of watchers)
    Watch {
        /// Run id (or a unique prefix, `last`, or a run directory)
        run: String,
        /// Print NDJSON events instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// Run id (or a unique prefix, `last`, or a run directory)
    pub run: String,
    /// Run without the interactive console: one line per event on stdout
    #[arg(long)]
    pub headless: bool,
    /// With --headless: write NDJSON events instead of text
    #[arg(long)]
    pub json: bool,
    /// Approve these confirmations in advance: `all` or step ids (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "all|ID,ID")]
    pub approve: Vec<String>,
    /// Approve every confirmation and manual task (same as --approve all)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Recovery point for `ask` policies not answered before the run stopped: an id, or `latest`
    #[arg(long, value_name = "ID|latest")]
    pub recovery_point: Option<String>,
    /// The runbook, if it moved since the run started (it must still have the same sha256, unless --force)
    #[arg(long, value_name = "PATH")]
    pub runbook: Option<PathBuf>,
    /// Resume even though the runbook changed since the run started (recorded in the journal)
    #[arg(long)]
    pub force: bool,
    /// Take over a run lock left by a process that is no longer running (recorded in the journal)
    #[arg(long)]
    pub take_over_lock: bool,
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

    /// Take over a run lock left by a process that is no longer running (recorded in the journal)
    #[arg(long)]
    pub take_over_lock: bool,

    /// Console theme: dark, light, high-contrast, monochrome, or a path to a theme file (default: dark;
    /// monochrome when NO_COLOR is set)
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,

    /// AWS: the shared-config profile to use (SSO and assume-role profiles work); default: AWS_PROFILE or default
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS: send every API call to this endpoint (an emulator, a proxy, VPC endpoints); also AWS_ENDPOINT_URL
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}
