//! EBS recovery points: which volumes the primary had, and which snapshot in either region holds whose data and from
//! when. Evidence, most trusted first: the DR inventory (recorded by `preflight` while the primary answered); AWS's
//! own metadata (AWS Backup recovery points, the `[Copied snap-… from …]` description CopySnapshot and DLM write, the
//! source snapshot itself while the primary answers); the customer's copy convention declared in the runbook
//! (`copy_source_tag`, `copy_time_tag`, `copy_description`); drconsole's own tags on the copies it made.
//!
//! Rules: the set of volumes is the primary's (live, else the inventory's); a snapshot is never a volume of its own
//! (no grouping by `Name`: a per-hour `Name` would make every copy a volume); a copy whose volume cannot be told is
//! listed as unattributed and the caller stops and asks ([`plan_set`] names what resolves it); a time known only as
//! an upper bound (a copy's own start) stays a bound.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::points::backup_points;
use super::{ActionCtx, ActionError, Params};
use crate::cloud::{Cloud, CloudError, Filter, Snapshot, Tags, Volume};
use crate::inventory::Inventory;
use crate::run::Candidate;

/// Tag on a snapshot copy made by drconsole: when its source snapshot was taken (RFC 3339).
pub(crate) const TAG_SOURCE_TIME: &str = "drconsole:source-time";
/// Tag on a snapshot copy made by drconsole: the volume its source snapshot was taken of.
pub(crate) const TAG_SOURCE_VOLUME: &str = "drconsole:source-volume";
/// Tag on a snapshot copy made by drconsole: the snapshot it was copied from.
pub(crate) const TAG_SOURCE_SNAPSHOT: &str = "drconsole:source-snapshot";

/// How the question (and a headless stop) about an EBS set that cannot be told begins.
pub const SET_UNKNOWN: &str = "The EBS set cannot be restored as the primary had it";

/// The runbook parameters that declare the customer's copy convention (README: "When the primary region is down").
pub(crate) const CONVENTION_KEYS: &str = "copy_source_tag, copy_time_tag, copy_description";

/// `[Copied snap-0123 from us-east-1]`, as CopySnapshot (and Data Lifecycle Manager, and a Lambda calling it
/// without a description of its own) writes at the start of a copy's description: `(snapshot, region)`.
pub(crate) fn copied_from_description(description: &str) -> Option<(String, String)> {
    let rest = &description[description.find("[Copied ")? + "[Copied ".len()..];
    let (snap, rest) = rest.split_once(" from ")?;
    let (region, _) = rest.split_once(']')?;
    let ok = snap.starts_with("snap-") && !region.is_empty() && !region.contains(' ');
    ok.then(|| (snap.to_string(), region.to_string()))
}

/// The volume id in an EBS volume ARN (`arn:aws:ec2:us-east-1:111111111111:volume/vol-0abc`).
pub(crate) fn volume_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":volume/").map(|(_, v)| v)
}

/// The snapshot id in an EBS recovery point ARN (`arn:aws:ec2:us-west-2::snapshot/snap-0abc`).
pub(crate) fn snapshot_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":snapshot/").map(|(_, s)| s)
}

/// A time as customers' tooling writes it: RFC 3339, `2026-12-07 09:00:00` (UTC, optionally ` UTC` or `Z`),
/// `2026-12-07T09:00:00`, or seconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if !s.is_empty() && s.len() <= 12 && s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(|n| Timestamp::from_second(n).ok());
    }
    let core = s.strip_suffix(" UTC").or_else(|| s.strip_suffix('Z')).unwrap_or(s).replace(' ', "T");
    let dt: jiff::civil::DateTime = core.parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Matches `text` against a pattern with `{snapshot}`, `{volume}`, `{time}` and `{*}` holes (each ends at the first
/// occurrence of the literal text after it); the whole text must match. The captured values by hole name.
pub(crate) fn match_pattern(pattern: &str, text: &str) -> Option<BTreeMap<String, String>> {
    let mut toks: Vec<(bool, &str)> = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        if i > 0 {
            toks.push((false, &rest[..i]));
        }
        toks.push((true, &rest[i + 1..i + j]));
        rest = &rest[i + j + 1..];
    }
    if !rest.is_empty() {
        toks.push((false, rest));
    }
    let mut caps = BTreeMap::new();
    let mut pos = 0;
    for (k, (hole, t)) in toks.iter().enumerate() {
        if !hole {
            if !text[pos..].starts_with(t) {
                return None;
            }
            pos += t.len();
            continue;
        }
        let end = match toks.get(k + 1) {
            Some((false, lit)) => pos + text[pos..].find(lit)?,
            Some((true, _)) => return None,
            None => text.len(),
        };
        if end == pos {
            return None;
        }
        if *t != "*" {
            caps.insert((*t).to_string(), text[pos..end].to_string());
        }
        pos = end;
    }
    (pos == text.len()).then_some(caps)
}

/// The customer's copy convention, declared in the runbook: which tag (or description pattern) of a copy names its
/// source snapshot or volume, and which tag holds its source time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CopyConvention {
    /// A tag whose value is the source snapshot id (`snap-…`), the source volume id (`vol-…`), or an ARN of one.
    pub source_tag: Option<String>,
    /// A tag whose value is the source snapshot's time ([`parse_time`]).
    pub time_tag: Option<String>,
    /// A description pattern with `{snapshot}`, `{volume}`, `{time}`, `{*}` holes.
    pub description: Option<String>,
}

/// What a convention reads from one copy.
#[derive(Debug, Default)]
struct Read {
    snapshot: Option<String>,
    volume: Option<String>,
    time: Option<Timestamp>,
}

impl CopyConvention {
    /// From the step's `copy_source_tag`, `copy_time_tag`, `copy_description` (an empty value declares nothing).
    pub fn from_params(p: &Params) -> Result<Self, ActionError> {
        let g = |k: &str| -> Result<Option<String>, ActionError> {
            Ok(p.opt_str(k)?.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
        };
        Ok(Self {
            source_tag: g("copy_source_tag")?,
            time_tag: g("copy_time_tag")?,
            description: g("copy_description")?,
        })
    }

    pub fn is_declared(&self) -> bool {
        self.source_tag.is_some() || self.time_tag.is_some() || self.description.is_some()
    }

    fn read(&self, s: &Snapshot) -> Read {
        let mut r = Read::default();
        let id = |v: &str, r: &mut Read| {
            let v = v.trim();
            let v = snapshot_of_arn(v).or_else(|| volume_of_arn(v)).unwrap_or(v);
            if v.starts_with("snap-") {
                r.snapshot.get_or_insert_with(|| v.to_string());
            } else if v.starts_with("vol-") {
                r.volume.get_or_insert_with(|| v.to_string());
            }
        };
        if let Some(v) = self.source_tag.as_ref().and_then(|k| s.tags.get(k)) {
            id(v, &mut r);
        }
        if let Some(caps) = self.description.as_ref().and_then(|p| match_pattern(p, &s.description)) {
            if let Some(v) = caps.get("snapshot") {
                id(v, &mut r);
            }
            if let Some(v) = caps.get("volume") {
                id(v, &mut r);
            }
            r.time = caps.get("time").and_then(|t| parse_time(t));
        }
        if let Some(t) = self.time_tag.as_ref().and_then(|k| s.tags.get(k)).and_then(|t| parse_time(t)) {
            r.time = Some(t);
        }
        r
    }
}

/// How the time of an EBS recovery point is known, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeFrom {
    /// The AWS Backup recovery point's creation date.
    Backup,
    /// The snapshot is the original: its own start time.
    Own,
    /// The source snapshot's start time (found in the source region).
    Source,
    /// The DR inventory (the source's time, as established while the primary answered).
    Inventory,
    /// The customer's declared convention (a tag or the description).
    Convention,
    /// The `drconsole:source-time` tag drconsole put on its own copy.
    Tag,
    /// The copy's own start time: nothing records its source's time, so this is an upper bound (the data is older).
    CopyStart,
}

impl TimeFrom {
    pub fn describe(self) -> &'static str {
        match self {
            TimeFrom::Backup => "the AWS Backup recovery point's creation date",
            TimeFrom::Own => "its start time",
            TimeFrom::Source => "its source snapshot's start time",
            TimeFrom::Inventory => "the DR inventory",
            TimeFrom::Convention => "the declared copy convention",
            TimeFrom::Tag => "the drconsole:source-time tag",
            TimeFrom::CopyStart => "the copy's start time (an upper bound: its data is older)",
        }
    }
}

/// A snapshot holding a volume's data, in either region, with where its data came from and when it was taken.
#[derive(Debug, Clone)]
pub(crate) struct EbsPoint {
    pub snapshot: Snapshot,
    pub region: String,
    /// The primary's volume whose data it holds.
    pub volume: String,
    /// For a copy: `(region, snapshot)` it was copied from, when known.
    pub copied_from: Option<(String, String)>,
    /// When its data was taken (an upper bound when `time_from` is [`TimeFrom::CopyStart`]).
    pub time: Timestamp,
    pub time_from: TimeFrom,
    /// What attributed it: `AWS Backup recovery point`, `CopySnapshot description`, `DR inventory`...
    pub by: String,
}

impl EbsPoint {
    /// Its time is only an upper bound on its data's time.
    pub fn bound(&self) -> bool {
        self.time_from == TimeFrom::CopyStart
    }

    /// One line for candidate lists and error messages.
    pub fn describe(&self) -> String {
        let what = match &self.copied_from {
            Some((r, s)) => format!("copy of {s} from {r}"),
            None if self.time_from == TimeFrom::Own => "original".to_string(),
            None => "copy".to_string(),
        };
        format!(
            "{} in {} ({what}, of {}, attributed by {}; time {}{} from {}, {})",
            self.snapshot.id,
            self.region,
            self.volume,
            self.by,
            if self.bound() { "≤ " } else { "" },
            self.time,
            self.time_from.describe(),
            self.snapshot.state
        )
    }
}

/// One line about a copy that could not be attributed.
pub(crate) fn describe_unattributed(s: &Snapshot, region: &str) -> String {
    let name = s.tags.get("Name").map(|n| format!(", Name {n}")).unwrap_or_default();
    let desc = if s.description.is_empty() { String::new() } else { format!(", description \"{}\"", s.description) };
    format!("{} in {region} (started {}{name}{desc})", s.id, s.start_time)
}

/// Where the set of volumes to restore comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum SetFrom {
    /// The primary answered: its volumes with the tag.
    Live,
    /// The primary did not answer: the DR inventory's volumes with the tag.
    Inventory,
    /// One volume named by id.
    Given,
    /// Neither: the volumes the attributed copies name (the primary may have had more).
    Copies,
    /// Nothing tells.
    #[default]
    Unknown,
}

/// What EBS recovery-point discovery found.
#[derive(Debug, Default)]
pub(crate) struct EbsFound {
    /// The attributed points of the volumes in `volumes`, in both regions.
    pub points: Vec<EbsPoint>,
    /// The volumes to restore: the primary's set.
    pub volumes: Vec<String>,
    pub set_from: SetFrom,
    /// The primary's volumes as it answered (for the inventory).
    pub volume_info: Vec<Volume>,
    /// Copies in the target region that carry the volumes' tag but whose volume could not be told.
    pub unattributed: Vec<Snapshot>,
    /// `snapshot in region: reason`, for "nothing found" messages.
    pub excluded: Vec<String>,
    /// The source region did not answer: only the target region's points are listed.
    pub unreachable: Option<String>,
    pub notes: Vec<String>,
    /// The DR inventory that attributed points or gave the set: when it was taken.
    pub inventory_used: Option<Timestamp>,
    /// The copy convention seen while the primary answered, as lines to add to the runbook.
    pub proposals: Vec<String>,
    pub source: String,
    pub target: String,
    /// `volumes tagged app=x` / `volume vol-1`
    pub what: String,
}

/// What to look for: the volumes with a tag, or one volume by id.
#[derive(Debug, Clone)]
pub(crate) enum EbsWanted {
    Tag(String, String),
    Volume(String),
}

impl EbsWanted {
    pub fn describe(&self) -> String {
        match self {
            EbsWanted::Tag(k, v) => format!("volumes tagged {k}={v}"),
            EbsWanted::Volume(v) => format!("volume {v}"),
        }
    }
}

/// What a search may use beyond the live regions.
#[derive(Debug, Clone, Default)]
pub(crate) struct EbsOpts {
    pub convention: CopyConvention,
    pub inventory: Option<Inventory>,
}

impl EbsOpts {
    /// The step's declared convention and the newest DR inventory of the run's runbook (state dir or shared).
    pub fn for_step(ctx: &ActionCtx, p: &Params) -> Result<Self, ActionError> {
        let convention = CopyConvention::from_params(p)?;
        let root = ctx.run_dir.as_deref().and_then(|d| d.parent()).and_then(|d| d.parent());
        let (inv, notes) = crate::inventory::load_newest(root, &ctx.runbook);
        for n in notes {
            ctx.warn(format!("DR inventory: {n}"));
        }
        Ok(Self { convention, inventory: inv.map(|(i, _)| i) })
    }
}

/// The evidence about one copy in the target region.
#[derive(Default)]
struct Attribution {
    volume: Option<String>,
    copied_from: Option<(String, String)>,
    time: Option<(Timestamp, TimeFrom)>,
    by: Vec<&'static str>,
}

/// Finds the primary's volumes and every attributed recovery point of them in `source` and `target`.
pub(crate) async fn find_ebs(
    cloud: &Cloud,
    wanted: &EbsWanted,
    source: &str,
    target: &str,
    run_id: &str,
    opts: &EbsOpts,
) -> Result<EbsFound, CloudError> {
    let mut found = EbsFound {
        source: source.to_string(),
        target: target.to_string(),
        what: wanted.describe(),
        ..EbsFound::default()
    };
    let inv = opts.inventory.as_ref();
    // the volumes, in the source region
    let mut live: Option<Vec<Volume>> = None;
    if let EbsWanted::Tag(k, v) = wanted {
        match cloud.ec2.describe_volumes(source, &Filter::tag(k.clone(), v.clone())).await {
            Ok(vs) => live = Some(vs),
            Err(e) if e.is_retryable() => found.unreachable = Some(format!("{source}: {e}")),
            Err(e) => return Err(e),
        }
    }
    let source_vols: Vec<String> = match wanted {
        EbsWanted::Volume(v) => vec![v.clone()],
        EbsWanted::Tag(..) => live.iter().flatten().map(|x| x.id.clone()).collect(),
    };
    // the source's snapshots of those volumes (one call per volume: the volume-id filter)
    let mut source_snaps: Vec<Snapshot> = Vec::new();
    if found.unreachable.is_none() {
        for v in &source_vols {
            match cloud.ec2.describe_snapshots_of_volume(source, v).await {
                Ok(l) => source_snaps.extend(l),
                Err(e) if e.is_retryable() => {
                    found.unreachable = Some(format!("{source}: {e}"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    // AWS Backup recovery points in the target region's vaults
    let mut backup: BTreeMap<String, crate::cloud::RecoveryPoint> = BTreeMap::new();
    for rp in backup_points(cloud, target, "EBS", &mut found.notes).await {
        if let Some(s) = snapshot_of_arn(&rp.arn) {
            backup.insert(s.to_string(), rp);
        }
    }
    let target_snaps =
        if source == target { Vec::new() } else { cloud.ec2.describe_snapshots(target, &Filter::default()).await? };
    let tag_match = |t: &Tags| match wanted {
        EbsWanted::Tag(k, v) => t.get(k) == Some(v),
        EbsWanted::Volume(_) => false,
    };
    // a source snapshot id → its volume and time: live, else the inventory
    let resolve = |snap: &str| -> Option<(String, Timestamp, TimeFrom)> {
        if let Some(x) = source_snaps.iter().find(|x| x.id == snap) {
            return Some((x.volume_id.clone(), x.start_time, TimeFrom::Source));
        }
        let p = inv?.point(snap)?;
        let tf = if p.time_is_bound { TimeFrom::CopyStart } else { TimeFrom::Inventory };
        Some((p.volume.clone()?, p.time, tf))
    };
    // what the copies carry that names their source, while the source answers: (key, count), for proposals
    let mut seen_source_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_time_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut described: Vec<String> = Vec::new();
    let mut points: Vec<EbsPoint> = Vec::new();
    for s in target_snaps {
        // a copy another drill made: that drill's cleanup deletes it
        if crate::drill_names::of_another_drill(&s.tags, run_id) {
            if tag_match(&s.tags) || s.tags.contains_key(TAG_SOURCE_VOLUME) {
                found.excluded.push(format!("{} in {target}: a drill's copy (its cleanup deletes it)", s.id));
            }
            continue;
        }
        let mut a = Attribution::default();
        let take = |a: &mut Attribution, vol: Option<String>, time: Option<(Timestamp, TimeFrom)>, by| {
            if a.volume.is_none() && vol.is_some() {
                a.volume = vol;
                a.by.push(by);
            } else if a.time.is_none() && time.is_some() {
                a.by.push(by);
            }
            if a.time.is_none() {
                a.time = time;
            }
        };
        // 1. the DR inventory
        if let Some(p) = inv.and_then(|i| i.point(&s.id)) {
            let tf = if p.time_is_bound { TimeFrom::CopyStart } else { TimeFrom::Inventory };
            if a.copied_from.is_none() {
                a.copied_from = p.source_snapshot.clone().map(|x| (source.to_string(), x));
            }
            take(&mut a, p.volume.clone(), (tf != TimeFrom::CopyStart).then_some((p.time, tf)), "the DR inventory");
        }
        // 2. AWS's metadata: a Backup recovery point, CopySnapshot's description
        if let Some(rp) = backup.get(&s.id) {
            let vol = volume_of_arn(&rp.resource_arn).map(str::to_string);
            take(&mut a, vol, Some((rp.created, TimeFrom::Backup)), "AWS Backup recovery point");
        }
        if let Some((snap, region)) = copied_from_description(&s.description) {
            let r = if region == source { resolve(&snap) } else { None };
            a.copied_from.get_or_insert((region, snap));
            if let Some((vol, t, tf)) = r {
                take(&mut a, Some(vol), Some((t, tf)), "CopySnapshot description");
            }
        }
        // 3. the customer's declared convention
        let read = opts.convention.read(&s);
        if read.snapshot.is_some() || read.volume.is_some() || read.time.is_some() {
            let r = read.snapshot.as_deref().and_then(resolve);
            if let Some(snap) = &read.snapshot {
                a.copied_from.get_or_insert((source.to_string(), snap.clone()));
            }
            let vol = read.volume.clone().or_else(|| r.as_ref().map(|x| x.0.clone()));
            let time = read.time.map(|t| (t, TimeFrom::Convention)).or_else(|| r.map(|x| (x.1, x.2)));
            take(&mut a, vol, time, "the declared copy convention");
        }
        // 4. drconsole's tags on its own copies
        if let Some(snap) = s.tags.get(TAG_SOURCE_SNAPSHOT) {
            a.copied_from.get_or_insert((source.to_string(), snap.clone()));
        }
        let tag_vol = s.tags.get(TAG_SOURCE_VOLUME).cloned();
        let tag_time = s.tags.get(TAG_SOURCE_TIME).and_then(|t| t.parse().ok()).map(|t| (t, TimeFrom::Tag));
        if tag_vol.is_some() || tag_time.is_some() {
            take(&mut a, tag_vol, tag_time, "drconsole tags");
        }
        // 5. while the source answers: a tag or the description naming one of its snapshots (an undeclared
        //    convention, proposed by preflight and recorded in the inventory)
        if a.volume.is_none() {
            let hit = source_snaps.iter().find_map(|x| {
                let in_tag = s.tags.iter().find(|(_, v)| v.contains(&x.id)).map(|(k, _)| format!("tag:{k}"));
                let key = in_tag.or_else(|| s.description.contains(&x.id).then(|| "description".to_string()))?;
                Some((key, x))
            });
            if let Some((key, x)) = hit {
                *seen_source_keys.entry(key.clone()).or_default() += 1;
                if key == "description" {
                    let mut pat = s.description.replace(&x.id, "{snapshot}");
                    if pat.contains(&x.volume_id) {
                        pat = pat.replace(&x.volume_id, "{volume}");
                    }
                    described.push(pat);
                }
                for (k, v) in &s.tags {
                    if parse_time(v).is_some_and(|t| (t.as_second() - x.start_time.as_second()).abs() <= 1) {
                        *seen_time_keys.entry(k.clone()).or_default() += 1;
                    }
                }
                a.copied_from.get_or_insert((source.to_string(), x.id.clone()));
                take(&mut a, Some(x.volume_id.clone()), Some((x.start_time, TimeFrom::Source)), "its source's id");
            }
        }
        let Some(volume) = a.volume.clone() else {
            if tag_match(&s.tags) {
                found.unattributed.push(s);
            }
            continue;
        };
        let (time, time_from) = a.time.unwrap_or((s.start_time, TimeFrom::CopyStart));
        if inv.is_some() && a.by.contains(&"the DR inventory") {
            found.inventory_used = inv.map(|i| i.taken);
        }
        points.push(EbsPoint {
            snapshot: s,
            region: target.to_string(),
            volume,
            copied_from: a.copied_from,
            time,
            time_from,
            by: a.by.join(" + "),
        });
    }
    for s in source_snaps {
        points.push(EbsPoint {
            volume: s.volume_id.clone(),
            region: source.to_string(),
            copied_from: None,
            time: s.start_time,
            time_from: TimeFrom::Own,
            by: "its volume id".into(),
            snapshot: s,
        });
    }
    // the set: the primary's, live, else the inventory's, else what the attributed copies name
    match (wanted, live) {
        (EbsWanted::Volume(v), _) => {
            found.volumes = vec![v.clone()];
            found.set_from = SetFrom::Given;
        }
        (EbsWanted::Tag(..), Some(vs)) => {
            found.volumes = vs.iter().map(|x| x.id.clone()).collect();
            found.volume_info = vs;
            found.set_from = SetFrom::Live;
        }
        (EbsWanted::Tag(k, v), None) => {
            if let Some(set) = inv.and_then(|i| i.volume_set(&format!("{k}={v}"))) {
                found.volumes = set.volumes.iter().map(|x| x.id.clone()).collect();
                found.set_from = SetFrom::Inventory;
                found.inventory_used = inv.map(|i| i.taken);
            } else {
                found.volumes =
                    points.iter().filter(|p| tag_match(&p.snapshot.tags)).map(|p| p.volume.clone()).collect();
                found.set_from = if found.volumes.is_empty() { SetFrom::Unknown } else { SetFrom::Copies };
            }
        }
    }
    found.volumes.sort();
    found.volumes.dedup();
    for p in points {
        if found.volumes.contains(&p.volume) {
            found.points.push(p);
        } else if tag_match(&p.snapshot.tags) {
            found.excluded.push(format!(
                "{} in {}: of volume {}, not one of the {}",
                p.snapshot.id,
                p.region,
                p.volume,
                wanted.describe()
            ));
        }
    }
    found.proposals = proposals(&seen_source_keys, &seen_time_keys, &described);
    Ok(found)
}

/// The convention lines preflight proposes from what the copies carried.
fn proposals(
    source_keys: &BTreeMap<String, usize>,
    time_keys: &BTreeMap<String, usize>,
    described: &[String],
) -> Vec<String> {
    let Some((key, n)) = source_keys.iter().max_by_key(|(_, n)| **n) else { return Vec::new() };
    let time = time_keys.iter().max_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
    let mut lines = Vec::new();
    let what = match key.strip_prefix("tag:") {
        Some(tag) => {
            lines.push(format!("copy_source_tag = \"{tag}\""));
            format!("their source snapshot in tag `{tag}`")
        }
        None => {
            let pat = described.first().cloned().unwrap_or_default();
            lines.push(format!("copy_description = \"{}\"", pat.replace('"', "\\\"")));
            "their source snapshot in their description".to_string()
        }
    };
    let when = match &time {
        Some(t) => {
            lines.push(format!("copy_time_tag = \"{t}\""));
            format!(" and their source time in tag `{t}`")
        }
        None => " (no tag holds their source time: with the primary gone only a bound is known)".to_string(),
    };
    vec![format!(
        "{n} cop{} carry {what}{when}: add these lines to the runbook's [vars]: {}",
        if *n == 1 { "y" } else { "ies" },
        lines.join("; ")
    )]
}

/// The newest completed point of a volume at or before `before`; on equal times the `prefer` region's (no copy
/// needed). A point whose time is only a bound is taken only when no point with a known time qualifies. Every point
/// it passes over is added to `excluded` with the condition that excluded it.
pub(crate) fn pick_ebs<'a>(
    points: &'a [EbsPoint],
    volume: &str,
    before: Option<Timestamp>,
    prefer: &str,
    excluded: &mut Vec<String>,
) -> Option<&'a EbsPoint> {
    let mut qualified: Vec<&EbsPoint> = Vec::new();
    for p in points.iter().filter(|p| p.volume == volume) {
        if p.snapshot.state != "completed" {
            excluded.push(format!("{}: state {}", p.describe(), p.snapshot.state));
            continue;
        }
        if let Some(b) = before
            && p.time > b
        {
            excluded.push(format!("{}: taken after {b}", p.describe()));
            continue;
        }
        qualified.push(p);
    }
    let known: Vec<&EbsPoint> = qualified.iter().copied().filter(|p| !p.bound()).collect();
    // the newest point with a known time; but when it would have to be copied from another region, a copy already
    // in the preferred region whose (upper-bound) time is not before it is not provably older data, and needs
    // neither a copy nor the other region: the closest such copy is taken (its time stays a bound)
    if let Some(k) = newest_of(&known, prefer)
        && k.region != prefer
        && let Some(b) = qualified
            .iter()
            .copied()
            .filter(|p| p.bound() && p.region == prefer && p.time >= k.time)
            .min_by_key(|p| p.time)
    {
        return Some(b);
    }
    let pool = if known.is_empty() { qualified } else { known };
    newest_of(&pool, prefer)
}

/// The newest of `pool`; on equal times the `prefer` region's (no copy needed).
fn newest_of<'a>(pool: &[&'a EbsPoint], prefer: &str) -> Option<&'a EbsPoint> {
    let mut best: Option<&EbsPoint> = None;
    for p in pool.iter().copied() {
        let better = match best {
            None => true,
            // a copy already in the target region of the same data needs no copy and no primary
            Some(b) => p.time > b.time || (p.time == b.time && p.region == prefer && b.region != prefer),
        };
        if better {
            best = Some(p);
        }
    }
    best
}

/// The set to restore: a point per volume, or the reasons it cannot be told (nothing may be created then).
#[derive(Debug, Default)]
pub(crate) struct SetPlan {
    pub picks: Vec<(String, EbsPoint)>,
    pub problems: Vec<String>,
}

impl SetPlan {
    /// The oldest member's time, and whether any member's time is only a bound.
    pub fn oldest(&self) -> Option<(Timestamp, bool)> {
        let t = self.picks.iter().map(|(_, p)| p.time).min()?;
        Some((t, self.picks.iter().any(|(_, p)| p.bound())))
    }
    pub fn spread_secs(&self) -> i64 {
        let ts: Vec<Timestamp> = self.picks.iter().map(|(_, p)| p.time).collect();
        match (ts.iter().min(), ts.iter().max()) {
            (Some(a), Some(b)) => crate::run::clock::secs_between(*a, *b),
            _ => 0,
        }
    }
}

/// What resolves an ambiguity, for messages.
pub(crate) fn how_to_resolve(found: &EbsFound) -> String {
    format!(
        "to resolve it: run `drconsole preflight` while {} answers (it records the DR inventory), or declare the \
         copies' convention in the runbook ({CONVENTION_KEYS}; README: \"When the primary region is down\")",
        found.source
    )
}

/// Judges the set: every volume of the primary's set has a point (at or before `before`), and no copy that could be
/// one of its volumes is left unexplained when the set itself is not known.
pub(crate) fn plan_set(found: &EbsFound, before: Option<Timestamp>, prefer: &str) -> SetPlan {
    let mut plan = SetPlan::default();
    let unattributed: Vec<String> =
        found.unattributed.iter().map(|s| describe_unattributed(s, &found.target)).collect();
    let cannot = if unattributed.is_empty() {
        String::new()
    } else {
        format!(
            "; {} cop{} cannot be attributed to a volume: {}",
            unattributed.len(),
            if unattributed.len() == 1 { "y" } else { "ies" },
            unattributed.join("; ")
        )
    };
    match found.set_from {
        SetFrom::Unknown => {
            plan.problems.push(format!(
                "the {} in {} are not known: {} and there is no DR inventory{cannot}",
                found.what,
                found.source,
                found
                    .unreachable
                    .clone()
                    .map_or_else(|| "none was found".to_string(), |u| format!("{u} does not answer")),
            ));
            return plan;
        }
        SetFrom::Copies if !unattributed.is_empty() => {
            plan.problems.push(format!(
                "which volumes {} had cannot be told ({} does not answer, no DR inventory): the attributed copies \
                 name {}{cannot}",
                found.source,
                found.source,
                found.volumes.join(", ")
            ));
        }
        _ => {}
    }
    for vol in &found.volumes {
        let mut excluded = Vec::new();
        match pick_ebs(&found.points, vol, before, prefer, &mut excluded) {
            Some(p) => plan.picks.push((vol.clone(), p.clone())),
            None => {
                let regions = if found.unreachable.is_some() {
                    found.target.clone()
                } else {
                    format!("{} or {}", found.source, found.target)
                };
                let cond = before.map(|b| format!(" at or before {b}")).unwrap_or_default();
                let seen =
                    if excluded.is_empty() { "nothing attributed to it".to_string() } else { excluded.join("; ") };
                plan.problems
                    .push(format!("no usable recovery point of {vol}{cond} in {regions}; found {seen}{cannot}"));
            }
        }
    }
    plan
}

/// The candidates an operator may attribute by hand: the unattributed copies (completed), as recovery points.
pub(crate) fn unattributed_candidates(found: &EbsFound, incident_start: Timestamp) -> Vec<Candidate> {
    found
        .unattributed
        .iter()
        .filter(|s| s.state == "completed")
        .map(|s| Candidate {
            id: s.id.clone(),
            kind: "ebs-snapshot".into(),
            region: found.target.clone(),
            time: s.start_time,
            age_secs: crate::run::clock::secs_between(s.start_time, incident_start).max(0),
            encrypted: s.encrypted,
            size_gib: Some(s.size_gib),
            rpo_met: false,
            arn: None,
            source: format!(
                "unattributed copy (its time is an upper bound): {}",
                describe_unattributed(s, &found.target)
            ),
        })
        .collect()
}

/// Resolves the set's problems by asking the operator (the console shows what is known; a headless run stops with
/// exit 3 before anything is created, naming the ambiguity and what resolves it). An answer naming an unattributed
/// copy attributes it to the first volume without a point (or, when the set is not known, makes it the one volume
/// restored); the decision is journalled as the answer and said in the step's log.
pub(crate) async fn resolve_set(
    ctx: &ActionCtx,
    found: &mut EbsFound,
    before: Option<Timestamp>,
    prefer: &str,
) -> Result<SetPlan, ActionError> {
    loop {
        let plan = plan_set(found, before, prefer);
        if plan.problems.is_empty() {
            return Ok(plan);
        }
        let cands = unattributed_candidates(found, ctx.incident_start);
        let message = format!(
            "{SET_UNKNOWN}: {}; {}. Choose the copy that holds the missing volume's data (its time counts as an upper \
             bound), or abort.",
            plan.problems.join("; "),
            how_to_resolve(found)
        );
        if cands.is_empty() {
            return Err(ActionError::fatal(message));
        }
        let answer = ctx.choose(message, cands).await?;
        // the console confirms a choice that does not meet the RPO with `accept-rpo-loss:ID`
        let answer = answer.strip_prefix(super::points::ACCEPT_RPO_LOSS).unwrap_or(&answer).to_string();
        let Some(i) = found.unattributed.iter().position(|s| s.id == answer) else {
            return Err(ActionError::fatal(format!("`{answer}` is not one of the unattributed copies offered")));
        };
        let s = found.unattributed.remove(i);
        let missing = found.volumes.iter().find(|v| !plan.picks.iter().any(|(pv, _)| pv == *v)).cloned();
        let volume = match missing {
            Some(v) => v,
            None => {
                // the set was not known: the operator's copy is the one volume restored
                let v = format!("{} (chosen by the operator)", s.id);
                found.volumes = vec![v.clone()];
                found.unattributed.clear();
                found.set_from = SetFrom::Given;
                v
            }
        };
        ctx.warn(format!(
            "the operator attributed copy {} to {volume}; its data is older than {} (the copy's start)",
            s.id, s.start_time
        ));
        found.points.push(EbsPoint {
            region: found.target.clone(),
            volume,
            copied_from: None,
            time: s.start_time,
            time_from: TimeFrom::CopyStart,
            by: "the operator".into(),
            snapshot: s,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_descriptions_name_their_source() {
        assert_eq!(
            copied_from_description("[Copied snap-0a1b2c3d4e5f60718 from us-east-1]"),
            Some(("snap-0a1b2c3d4e5f60718".into(), "us-east-1".into()))
        );
        assert_eq!(
            copied_from_description("[Copied snap-01 from eu-west-1] hourly backup of vol-9"),
            Some(("snap-01".into(), "eu-west-1".into()))
        );
        assert_eq!(copied_from_description("hourly backup"), None);
        assert_eq!(copied_from_description("[Copied ami-01 from us-east-1]"), None);
        assert_eq!(volume_of_arn("arn:aws:ec2:us-east-1:111111111111:volume/vol-0abc"), Some("vol-0abc"));
        assert_eq!(snapshot_of_arn("arn:aws:ec2:us-west-2::snapshot/snap-0abc"), Some("snap-0abc"));
    }

    #[test]
    fn a_declared_description_pattern_and_time_formats_are_read() {
        let caps = match_pattern(
            "DR copy of {snapshot} ({volume}) taken {time}",
            "DR copy of snap-1 (vol-2) taken 2026-12-07 09:00:00",
        )
        .unwrap_or_default();
        assert_eq!(caps.get("snapshot").map(String::as_str), Some("snap-1"));
        assert_eq!(caps.get("volume").map(String::as_str), Some("vol-2"));
        assert_eq!(match_pattern("DR copy of {snapshot}", "Other copy of snap-1"), None);
        assert_eq!(
            match_pattern("{*} of {snapshot}", "hourly copy of snap-9").and_then(|c| c.get("snapshot").cloned()),
            Some("snap-9".into())
        );
        let t: Timestamp = "2026-12-07T09:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        for s in [
            "2026-12-07T09:00:00Z",
            "2026-12-07 09:00:00",
            "2026-12-07 09:00:00 UTC",
            "2026-12-07T09:00:00",
            "1796634000",
        ] {
            assert_eq!(parse_time(s), Some(t), "{s}");
        }
        assert_eq!(parse_time("cross-sell-data-2026-12-07-09"), None);
        let conv = CopyConvention {
            source_tag: Some("source-snap".into()),
            time_tag: Some("taken-at".into()),
            description: None,
        };
        let mut s = snap("snap-c", "2026-12-07T10:30:00Z");
        s.tags.insert("source-snap".into(), "arn:aws:ec2:us-east-1::snapshot/snap-o".into());
        s.tags.insert("taken-at".into(), "2026-12-07 09:00:00".into());
        let r = conv.read(&s);
        assert_eq!((r.snapshot.as_deref(), r.volume, r.time), (Some("snap-o"), None, Some(t)));
    }

    fn snap(id: &str, time: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: "vol-ffffffff".into(),
            state: "completed".into(),
            progress_pct: 100,
            start_time: time.parse().unwrap_or_else(|e| panic!("{time}: {e}")),
            size_gib: 8,
            encrypted: false,
            kms_key_id: None,
            description: String::new(),
            tags: Tags::new(),
        }
    }

    fn point(id: &str, region: &str, state: &str, time: &str) -> EbsPoint {
        let mut s = snap(id, time);
        s.state = state.into();
        EbsPoint {
            time: s.start_time,
            snapshot: s,
            region: region.into(),
            volume: "vol-1".into(),
            copied_from: None,
            time_from: TimeFrom::Own,
            by: "its volume id".into(),
        }
    }

    // "no completed snapshot of vol-... in us-east-1 or us-west-2" hid 12 completed snapshots, all after the
    // database's time: every point passed over is listed with the condition that excluded it
    #[test]
    fn every_point_passed_over_is_listed_with_the_condition_that_excluded_it() {
        let points = vec![
            point("snap-late1", "us-east-1", "completed", "2026-12-01T21:10:00Z"),
            point("snap-late2", "us-west-2", "completed", "2026-12-01T21:20:00Z"),
            point("snap-pending", "us-west-2", "pending", "2026-12-01T20:50:00Z"),
        ];
        let before: Timestamp = "2026-12-01T21:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut excluded = Vec::new();
        assert!(pick_ebs(&points, "vol-1", Some(before), "us-west-2", &mut excluded).is_none());
        assert_eq!(excluded.len(), 3, "{excluded:?}");
        assert!(
            excluded[0].starts_with("snap-late1 in us-east-1")
                && excluded[0].ends_with("taken after 2026-12-01T21:00:00Z")
        );
        assert!(excluded[1].starts_with("snap-late2 in us-west-2") && excluded[1].contains("taken after"));
        assert!(excluded[2].starts_with("snap-pending in us-west-2") && excluded[2].ends_with("state pending"));
        let mut excluded = Vec::new();
        let best = pick_ebs(&points, "vol-1", None, "us-west-2", &mut excluded).map(|p| p.snapshot.id.clone());
        assert_eq!(best.as_deref(), Some("snap-late2"));
        assert_eq!(excluded.len(), 1, "{excluded:?}");
    }

    // the primary up, its newest original known; the customer's copy of it in the target region carries only its
    // own start (a bound, not before the original's time): not provably older, no copy needed — it is taken
    #[test]
    fn a_copy_in_the_target_region_not_provably_older_beats_copying_the_original() {
        let original = point("snap-o", "us-east-1", "completed", "2026-12-07T09:00:00Z");
        let mut copy = point("snap-c", "us-west-2", "completed", "2026-12-07T09:20:00Z");
        copy.time_from = TimeFrom::CopyStart;
        let mut older = point("snap-old", "us-west-2", "completed", "2026-12-07T08:50:00Z");
        older.time_from = TimeFrom::CopyStart;
        let points = vec![original.clone(), copy, older.clone()];
        let best = pick_ebs(&points, "vol-1", None, "us-west-2", &mut Vec::new()).map(|p| p.snapshot.id.clone());
        assert_eq!(best.as_deref(), Some("snap-c"));
        // a copy provably older than the original (its upper bound before the original's time) is not taken
        let points = vec![original, older];
        let best = pick_ebs(&points, "vol-1", None, "us-west-2", &mut Vec::new()).map(|p| p.snapshot.id.clone());
        assert_eq!(best.as_deref(), Some("snap-o"));
    }

    // twelve hourly copies, each with its own per-hour Name tag and no attribution: never twelve volumes
    #[test]
    fn unattributed_copies_are_never_volumes_and_an_unknown_set_is_a_problem_naming_them_and_the_keys() {
        let mut found = EbsFound {
            source: "us-east-1".into(),
            target: "us-west-2".into(),
            what: "volumes tagged app=cross-sell".into(),
            unreachable: Some("us-east-1: service unavailable".into()),
            ..EbsFound::default()
        };
        for h in 0..12 {
            let mut s = snap(&format!("snap-c{h}"), &format!("2026-12-07T{:02}:30:00Z", h));
            s.tags.insert("Name".into(), format!("cross-sell-data-2026-12-07-{h:02}"));
            found.unattributed.push(s);
        }
        let plan = plan_set(&found, None, "us-west-2");
        assert!(plan.picks.is_empty());
        assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
        assert!(plan.problems[0].contains("12 copies cannot be attributed"), "{}", plan.problems[0]);
        assert!(plan.problems[0].contains("snap-c11 in us-west-2"), "{}", plan.problems[0]);
        assert!(how_to_resolve(&found).contains("copy_source_tag"));
        // the set known (the inventory): one volume, one point, the copies do not add volumes
        found.volumes = vec!["vol-1".into()];
        found.set_from = SetFrom::Inventory;
        found.points.push(point("snap-a", "us-west-2", "completed", "2026-12-07T11:00:00Z"));
        let plan = plan_set(&found, None, "us-west-2");
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert_eq!(plan.picks.len(), 1);
    }
}
