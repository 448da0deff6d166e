//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The fastest simulated time `--speed` accepts: a day of simulated time in under a tenth of a second.
pub const MAX_SPEED: f64 = 1_000_000.0;
/// The most steps `--max-parallel` lets run at once.
pub const MAX_PARALLEL: usize = 1024;

#[derive(Debug, Parser)]
#[command(
    name = "drconsole",
    version = crate::VERSION,
    about = "A terminal console for disaster recovery on AWS",
    long_about = "drconsole walks an on-call engineer through an AWS disaster recovery, step by step, from a TOML runbook: \
pick a recovery point, restore RDS and EBS, rebuild the secondary region, verify — with live progress, an RTO \
countdown and a projected finish.\n\nRun a runbook:    drconsole --headless runbook.toml\nRehearse it:      drconsole --headless --sim runbook.toml\nValidate it:      drconsole check runbook.toml",
    after_help = "Exit codes: 0 recovered; 1 a step failed or the run was aborted; 2 invalid runbook or usage; \
3 headless run stopped at an approval or choice it was not given; 4 refused by a guard (account or region); 130 interrupted (docs/exit-codes.md).\n\nReference: docs/README.md in the source (runbook format: docs/runbook.md; console and keys: docs/console.md; NDJSON events: docs/events.md); `drconsole man` prints the manual page.",
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

    /// Keep runs' journals, locks and reports on S3 too, for the whole team (any host can run, watch, report on and
    /// resume them): s3://BUCKET/PREFIX
    #[arg(long, global = true, env = "DRCONSOLE_SHARED_STATE", value_name = "S3_URL")]
    pub shared_state: Option<String>,

    /// The shared-state bucket's region (default: the runbook's secondary region, else AWS_REGION)
    #[arg(long, global = true, env = "DRCONSOLE_SHARED_STATE_REGION", value_name = "REGION")]
    pub shared_state_region: Option<String>,

    /// Encrypt shared-state objects with SSE-KMS under this key (id or ARN)
    #[arg(long, global = true, env = "DRCONSOLE_SHARED_STATE_KMS_KEY", value_name = "KEY")]
    pub shared_state_kms_key: Option<String>,

    /// Send shared-state S3 calls to this endpoint (an emulator, a proxy, a VPC endpoint)
    #[arg(long, global = true, env = "DRCONSOLE_SHARED_STATE_ENDPOINT_URL", value_name = "URL")]
    pub shared_state_endpoint_url: Option<String>,

    /// POST a JSON notification to this webhook (Slack, Teams, any receiver) when the run starts, a step fails, it
    /// pauses, it waits for a person, the RTO is at risk or late, a region is unreachable, and when it finishes;
    /// repeatable; also `[notify] webhooks` in the runbook or incident file, and env DRCONSOLE_NOTIFY
    #[arg(long, global = true, value_name = "URL")]
    pub notify: Vec<String>,
}

impl Cli {
    /// The shared state the options ask for, checked (`None`: none asked for).
    pub fn shared_state(&self) -> Result<Option<crate::journal::shared::SharedConfig>, String> {
        let Some(url) = &self.shared_state else { return Ok(None) };
        let mut c = crate::journal::shared::SharedConfig::new(url, "--shared-state")?;
        c.region = self.shared_state_region.clone();
        c.kms_key = self.shared_state_kms_key.clone();
        c.endpoint_url = self.shared_state_endpoint_url.clone();
        Ok(Some(c))
    }
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
    Plan {
        runbook: PathBuf,
        /// Show the plan of a drill (names, drill DNS record) as `--drill` would run it
        #[arg(long)]
        drill: bool,
    },
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
    /// Remove everything a run created (a drill; a real failover's with --force): from its journal, confirmed by a
    /// sweep of its drconsole:run-id tag in both regions; ends by listing what is left tagged (must be nothing)
    Cleanup {
        /// Run id (or a unique prefix, `last`, or a run directory)
        run: String,
        /// Do not ask for the typed confirmation (headless, scheduled jobs)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Clean up a run that was not a drill (its resources may serve customers; recorded)
        #[arg(long)]
        force: bool,
    },
    /// Check that runbooks will work before running them: read-only checks of every step's preconditions
    /// (recovery points against the RPO, resources in the right region, the projected RTO); exit 0 ready, 1 not
    /// ready, 2 invalid runbook, 4 wrong account
    Preflight(PreflightArgs),
    /// Show the DR inventory `preflight` records while the primary answers (per application: the primary's volumes,
    /// databases, images, and every recovery point's source and time) and its age; exit 1 when one is missing
    Inventory {
        /// Runbook files (default: every inventory in the state directory)
        runbooks: Vec<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List the past runs that feed a runbook's forecast and each step's P50/P90 from them, per backend
    /// (docs/forecast.md)
    History {
        runbook: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Follow a live run from its journal, read-only (any number of watchers)
    Watch {
        /// Run id (or a unique prefix, `last`, or a run directory)
        run: String,
        /// Print NDJSON events instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (docs/install.md says where to put it)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these definitions: `drconsole man | man -l -`
    Man,
    /// Print the JSON Schema of a file drconsole reads, for editors and CI (docs/install.md)
    Schema {
        /// Which file: a runbook, an incident file, a simulator world, a console theme
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

/// The files `drconsole schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    Runbook,
    Incident,
    World,
    Theme,
}

#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// Runbook files
    #[arg(required = true)]
    pub runbooks: Vec<PathBuf>,
    /// Check against the built-in simulator (a tabletop world) instead of AWS
    #[arg(long)]
    pub sim: bool,
    /// Simulator: a world/scenario file (a broken precondition shows as its finding); implies --sim
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,
    /// Print the reports as JSON instead of tables
    #[arg(long)]
    pub json: bool,
    /// Override a runbook variable: NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<String>,
    /// Seed of the simulated world
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the report files (<runbook>-<time>.md and .json); default: the state directory's preflight/
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// AWS: the shared-config profile to use; default: AWS_PROFILE or default
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS: send every API call to this endpoint (an emulator, a proxy, VPC endpoints); also AWS_ENDPOINT_URL
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
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
    /// Approve every confirmation (same as --approve all); manual tasks need --manual-done
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Headless: record these manual tasks as done without asking (`all` or step ids); the journal and the report
    /// say the flag answered, not a person
    #[arg(long, value_delimiter = ',', value_name = "all|ID,ID")]
    pub manual_done: Vec<String>,
    /// Recovery point for `ask` policies not answered before the run stopped: an id, or `latest`;
    /// `+ebs=newest|consistent|db:ID` answers the EBS-set question
    #[arg(long, value_name = "ID|latest[+ebs=…]")]
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
    /// Leave this run out of the forecast history (a deliberately broken tabletop exercise): its durations do not
    /// feed later runs' P50/P90 (docs/forecast.md)
    #[arg(long)]
    pub no_history: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The runbook to run (opens the console; add --headless for automation), or an incident file
    pub runbook: Option<PathBuf>,

    /// More runbooks: all of them run as one incident, one run per application
    #[arg(value_name = "RUNBOOK")]
    pub more: Vec<PathBuf>,

    /// Run without the interactive console: one line per event on stdout
    #[arg(long)]
    pub headless: bool,

    /// With --headless: write NDJSON events instead of text
    #[arg(long)]
    pub json: bool,

    /// Run on the built-in simulator (no AWS account needed)
    #[arg(long)]
    pub sim: bool,

    /// A recovery test: rehearse for real in the secondary region, changing nothing a customer reaches (drill names
    /// and tags, a drill DNS record, the primary region never written); same as `mode = "drill"` in [runbook]
    #[arg(long)]
    pub drill: bool,

    /// With a drill: run `drconsole cleanup` on the run when it ends, whatever its outcome
    #[arg(long)]
    pub cleanup_after: bool,

    /// Simulator: a world/scenario file (resources, faults, outages); implies --sim
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,

    /// Simulator only: run simulated time N times faster than real time (more than 0, at most 1000000)
    #[arg(long, default_value_t = 1.0, value_name = "N", value_parser = parse_speed)]
    pub speed: f64,

    /// Seed for retry jitter and the simulator, for reproducible runs
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Approve these confirmations in advance: `all` or step ids (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "all|ID,ID")]
    pub approve: Vec<String>,

    /// Approve every confirmation (same as --approve all); manual tasks need --manual-done
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Headless: record these manual tasks as done without asking (`all` or step ids); the journal and the report
    /// say the flag answered, not a person
    #[arg(long, value_delimiter = ',', value_name = "all|ID,ID")]
    pub manual_done: Vec<String>,

    /// Recovery point for `ask` policies in headless runs: an id, or `latest`; `+ebs=newest|consistent|db:ID`
    /// answers the EBS-set question (the set consistent with the database point misses the RPO it meets)
    #[arg(long, value_name = "ID|latest[+ebs=…]")]
    pub recovery_point: Option<String>,

    /// When the incident started (RFC 3339, or a duration ago such as 45m; not in the future); default: now
    #[arg(long, value_name = "TIME|AGO", value_parser = parse_incident_start)]
    pub incident_start: Option<String>,

    /// Most steps running at once (1 to 1024)
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = parse_max_parallel)]
    pub max_parallel: usize,

    /// Override a runbook variable: NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<String>,

    /// Take over a run lock left by a process that is no longer running (recorded in the journal)
    #[arg(long)]
    pub take_over_lock: bool,

    /// Leave this run out of the forecast history (a deliberately broken tabletop exercise): its durations do not
    /// feed later runs' P50/P90 (docs/forecast.md)
    #[arg(long)]
    pub no_history: bool,

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

/// `--speed N`: a finite number above 0 and at most [`MAX_SPEED`].
fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("\"{s}\" is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("{s} must be a number above 0 (e.g. 1, 60, 200)"));
    }
    if v > MAX_SPEED {
        return Err(format!("{s} is faster than the simulator can keep time; at most {MAX_SPEED}"));
    }
    Ok(v)
}

/// `--max-parallel N`: 1 to [`MAX_PARALLEL`] (0 would be a run that can never start a step).
fn parse_max_parallel(s: &str) -> Result<usize, String> {
    let v: usize = s.trim().parse().map_err(|_| format!("\"{s}\" is not a whole number"))?;
    if v == 0 {
        return Err("0 steps at once would never start a step; give at least 1".into());
    }
    if v > MAX_PARALLEL {
        return Err(format!("{v} is more than {MAX_PARALLEL}"));
    }
    Ok(v)
}

/// `--incident-start TIME|AGO`: checked here (an RFC 3339 time not in the future, or a duration ago), kept as
/// written so the run resolves it once.
fn parse_incident_start(s: &str) -> Result<String, String> {
    incident_start(s).map(|_| s.to_string())
}

/// When the incident started: an RFC 3339 time (not in the future: up to a minute of clock skew is allowed), or a
/// duration ago (`45m`).
pub fn incident_start(s: &str) -> Result<jiff::Timestamp, String> {
    let now = jiff::Timestamp::now();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        if t > now.saturating_add(jiff::SignedDuration::from_secs(60)).unwrap_or(now) {
            return Err(format!(
                "{s} is in the future (now is {}); the incident must have started already",
                now.strftime("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        return Ok(t);
    }
    let ago = crate::util::parse_duration(s)
        .map_err(|_| format!("\"{s}\" is neither an RFC 3339 time nor a duration ago (e.g. 45m)"))?;
    let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
    now.checked_sub(ago).map_err(|_| format!("{s} ago is before the earliest time drconsole can represent"))
}

/// `--var NAME=VALUE`: a name and an `=`.
fn parse_var(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_string()),
        _ => Err(format!("\"{s}\": write NAME=VALUE")),
    }
}
