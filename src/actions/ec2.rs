//! EBS and EC2: copy a snapshot across regions, create a volume, swap a volume on an instance, restore a set of
//! volumes by tag; copy an AMI across regions, put a new AMI into a launch template.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::kit::{POLL, c, copy_route, outs, region, s, source_region, tag_pair, token, wait_state};
use super::spec::{ActionSpec, Effect, ParamKind as K, ParamSpec as P, out};
use super::{Action, ActionCtx, ActionError, Outputs, Params};
use crate::cloud::{
    Cloud, CopyImage, CopySnapshot as CopySnapshotReq, CreateVolume as CreateVolumeReq, Filter, Snapshot, Volume,
};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![
        Arc::new(CopySnapshot),
        Arc::new(CreateVolume),
        Arc::new(SwapVolume),
        Arc::new(RestoreSet),
        Arc::new(CopyImageA),
        Arc::new(LaunchTemplateVersion),
    ]
}

use super::ebs_points::TimeFrom;
use super::recovery_point::{
    EbsFound, EbsOpts, EbsPoint, EbsWanted, TAG_SOURCE_SNAPSHOT, TAG_SOURCE_TIME, TAG_SOURCE_VOLUME, find_ebs,
    resolve_set, say_found, set_from_text,
};

/// The set `recovery_point.select` judged (`ebs_snapshots`: `volume=snapshot@region,…`), as points of `found`; a
/// snapshot the operator attributed by hand (not attributed here) counts with its own start as an upper bound.
fn chosen_set(found: &EbsFound, given: &str) -> Result<Vec<(String, EbsPoint)>, ActionError> {
    let mut picks = Vec::new();
    for item in given.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = item.split_once('=').and_then(|(v, rest)| rest.rsplit_once('@').map(|(s, r)| (v, s, r)));
        let Some((vol, snap, region)) = parsed else {
            return Err(ActionError::fatal(format!("parameter `snapshots`: `{item}` is not volume=snapshot@region")));
        };
        let pt = found.points.iter().find(|p| p.snapshot.id == snap && p.region == region).cloned().or_else(|| {
            found.unattributed.iter().find(|s| s.id == snap && found.target == region).map(|s| EbsPoint {
                snapshot: s.clone(),
                region: region.to_string(),
                volume: vol.to_string(),
                copied_from: None,
                time: s.start_time,
                time_from: TimeFrom::CopyStart,
                by: "the operator".into(),
            })
        });
        match pt {
            Some(pt) => picks.push((vol.to_string(), pt)),
            None => {
                return Err(ActionError::fatal(format!(
                    "snapshot {snap} chosen for {vol} is no longer in {region} (or no longer attributable); the \
                     recovery point step must choose again"
                )));
            }
        }
    }
    Ok(picks)
}

/// Finds (a copy of `snapshot` already in `region`: by the `drconsole:source-snapshot` tag or the
/// `[Copied snap-… from …]` description) or starts a copy of `snapshot` into `region`; waits until completed.
/// drconsole's copy carries the source's tags (as customers' tooling copies them) and its own:
/// `drconsole:source-snapshot`, `drconsole:source-volume`, `drconsole:source-time`.
async fn ensure_snapshot_copy(
    ctx: &ActionCtx,
    cloud: &Cloud,
    source: &Snapshot,
    src_region: &str,
    region: &str,
    kms: Option<&str>,
) -> Result<Snapshot, ActionError> {
    let snapshot = source.id.as_str();
    let mine = Filter::tag(TAG_SOURCE_SNAPSHOT, snapshot);
    // a copy another drill made is that drill's (its cleanup deletes it): never this run's
    let found = c(cloud.ec2.describe_snapshots(region, &mine))
        .await?
        .into_iter()
        .find(|s| s.state != "error" && !crate::drill_names::of_another_drill(&s.tags, &ctx.run_id));
    let snap = match found {
        Some(s) => {
            ctx.resource("found", "ebs-snapshot", &s.id, region, &s.state);
            s
        }
        None => {
            ctx.resource("creating", "ebs-snapshot", &format!("copy of {snapshot}"), region, "");
            let mut tags: crate::cloud::Tags = source
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("aws:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            tags.extend(ctx.tags());
            tags.insert(TAG_SOURCE_SNAPSHOT.into(), snapshot.into());
            tags.insert(TAG_SOURCE_VOLUME.into(), source.volume_id.clone());
            tags.insert(TAG_SOURCE_TIME.into(), source.start_time.to_string());
            let req = CopySnapshotReq {
                source_region: src_region.into(),
                source_snapshot_id: snapshot.into(),
                kms_key_id: kms.map(str::to_string),
                // what CopySnapshot writes by default, so other tooling recognises the copy too
                description: format!("[Copied {snapshot} from {src_region}] drconsole {}", ctx.run_id),
                tags,
            };
            let s = c(cloud.ec2.copy_snapshot(region, &req)).await?;
            ctx.resource("created", "ebs-snapshot", &s.id, region, &s.state);
            s
        }
    };
    if snap.state == "completed" {
        return Ok(snap);
    }
    let id = snap.id.clone();
    wait_state(ctx, "ebs-snapshot", &id, region, POLL, &["completed"], &["error"], || async {
        match cloud.ec2.poll_snapshot(region, &id).await? {
            Some(s) => Ok((s.state, Some(s.progress_pct))),
            None => Ok(("missing".into(), None)),
        }
    })
    .await?;
    Ok(snap)
}

/// Finds (by `Name` tag) or creates a volume from a snapshot; waits until available (or in use).
#[allow(clippy::too_many_arguments)]
async fn ensure_volume(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    name: &str,
    snapshot: &str,
    az: &str,
    volume_type: &str,
    kms: Option<&str>,
    extra_tags: &[(String, String)],
) -> Result<Volume, ActionError> {
    let existing = c(cloud.ec2.describe_volumes(region, &Filter::tag("Name", name)))
        .await?
        .into_iter()
        .find(|v| v.state != "deleting" && v.state != "deleted");
    let vol = match existing {
        Some(v) => {
            ctx.resource("found", "ebs-volume", &v.id, region, &v.state);
            v
        }
        None => {
            ctx.resource("creating", "ebs-volume", name, region, "");
            let mut tags = ctx.tags();
            tags.insert("Name".into(), name.into());
            tags.extend(extra_tags.iter().cloned());
            let req = CreateVolumeReq {
                az: az.into(),
                snapshot_id: Some(snapshot.into()),
                volume_type: volume_type.into(),
                size_gib: None,
                iops: None,
                kms_key_id: kms.map(str::to_string),
                tags,
            };
            let v = c(cloud.ec2.create_volume(region, &req)).await?;
            ctx.resource("created", "ebs-volume", &v.id, region, &v.state);
            v
        }
    };
    if vol.state == "available" || vol.state == "in-use" {
        // as found, or as CreateVolume answered: nothing to wait for
        return Ok(vol);
    }
    let id = vol.id.clone();
    wait_state(ctx, "ebs-volume", &id, region, POLL, &["available", "in-use"], &["error"], || async {
        match cloud.ec2.poll_volume(region, &id).await? {
            Some(v) => Ok((v.state, None)),
            None => Ok(("missing".into(), None)),
        }
    })
    .await?;
    Ok(vol)
}

struct CopySnapshot;
static COPY_SNAPSHOT: ActionSpec = ActionSpec {
    name: "ebs.copy_snapshot",
    summary: "Copy an EBS snapshot to another region (re-encrypted with the target KMS key); wait until completed",
    params: &[
        P::req("snapshot", K::Str, "the snapshot id"),
        P::opt("source_region", K::Region, "default: primary"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("kms_key", K::Str, "KMS key in the target region"),
    ],
    outputs: &[out("id", "the snapshot id in the target region")],
    iam: &[
        "ec2:CopySnapshot",
        "ec2:DescribeSnapshots",
        "ec2:CreateTags",
        "kms:CreateGrant",
        "kms:ReEncrypt*",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeKey",
    ],
    expected_secs: 900,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for CopySnapshot {
    fn spec(&self) -> &'static ActionSpec {
        &COPY_SNAPSHOT
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "ec2:CopySnapshot {} {} (KMS {}); wait until completed",
            p.text("snapshot").unwrap_or_default(),
            copy_route(p),
            p.text("kms_key").unwrap_or_else(|_| "default".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let (src, region) = (source_region(ctx, p)?, region(ctx, p)?);
        let snapshot = p.str("snapshot")?;
        let source = c(cloud.ec2.describe_snapshots(&src, &Filter::id(snapshot)))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ActionError::fatal(format!("snapshot {snapshot} not found in {src}")))?;
        if src == region {
            ctx.resource("found", "ebs-snapshot", &source.id, &region, &source.state);
            return Ok(outs(&[("id", s(source.id))]));
        }
        let s0 = ensure_snapshot_copy(ctx, cloud, &source, &src, &region, p.opt_str("kms_key")?).await?;
        Ok(outs(&[("id", s(s0.id))]))
    }
}

struct CreateVolume;
static CREATE_VOLUME: ActionSpec = ActionSpec {
    name: "ebs.create_volume",
    summary: "Create an EBS volume from a snapshot (AZ, type, KMS), named so a second run finds it; wait until available",
    params: &[
        P::req("snapshot", K::Str, "the snapshot id, in `region`"),
        P::req("name", K::Str, "the volume's Name tag (its idempotency key)"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("az", K::Str, "availability zone (default: the region's first, `<region>a`)"),
        P::opt("volume_type", K::Str, "gp3 (default), io2, ..."),
        P::opt("kms_key", K::Str, "KMS key"),
    ],
    outputs: &[out("volume_id", "the volume id"), out("az", "its availability zone")],
    iam: &["ec2:CreateVolume", "ec2:DescribeVolumes", "ec2:CreateTags", "kms:CreateGrant", "kms:DescribeKey"],
    expected_secs: 120,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for CreateVolume {
    fn spec(&self) -> &'static ActionSpec {
        &CREATE_VOLUME
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "ec2:CreateVolume {} from {} in {} ({}); wait until available",
            p.text("name").unwrap_or_default(),
            p.text("snapshot").unwrap_or_default(),
            p.text("az").or_else(|_| p.text("region").map(|r| format!("{r}a"))).unwrap_or_default(),
            p.text("volume_type").unwrap_or_else(|_| "gp3".into())
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = region(ctx, p)?;
        let az = p.opt_str("az")?.map_or_else(|| format!("{region}a"), str::to_string);
        let v = ensure_volume(
            ctx,
            cloud,
            &region,
            p.str("name")?,
            p.str("snapshot")?,
            &az,
            p.opt_str("volume_type")?.unwrap_or("gp3"),
            p.opt_str("kms_key")?,
            &[],
        )
        .await?;
        Ok(outs(&[("volume_id", s(v.id)), ("az", s(v.az))]))
    }
}

struct SwapVolume;
static SWAP_VOLUME: ActionSpec = ActionSpec {
    name: "ebs.swap_volume",
    summary: "Replace a volume on an instance with one restored from a snapshot: create it, stop the instance if \
              needed, detach the old volume, attach the new one, start the instance",
    params: &[
        P::req("instance", K::Str, "the instance id"),
        P::req("device", K::Str, "the device name, e.g. /dev/sdf"),
        P::req("snapshot", K::Str, "the snapshot to restore (in `region`)"),
        P::req("name", K::Str, "the new volume's Name tag (its idempotency key)"),
        P::opt("region", K::Region, "default: primary"),
        P::opt("volume_type", K::Str, "gp3 (default)"),
        P::opt("kms_key", K::Str, "KMS key"),
        P::opt("stop", K::Bool, "stop the instance during the swap (default true)"),
    ],
    outputs: &[out("volume_id", "the new volume"), out("old_volume_id", "the volume it replaced (kept, detached)")],
    iam: &[
        "ec2:CreateVolume",
        "ec2:DescribeVolumes",
        "ec2:DescribeInstances",
        "ec2:StopInstances",
        "ec2:StartInstances",
        "ec2:DetachVolume",
        "ec2:AttachVolume",
        "ec2:CreateTags",
        "kms:CreateGrant",
    ],
    expected_secs: 420,
    effect: Effect::Destructive,
};

async fn instance_state(cloud: &Cloud, region: &str, id: &str) -> Result<crate::cloud::Instance, ActionError> {
    c(cloud.ec2.describe_instances(region, &Filter::id(id)))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ActionError::fatal(format!("instance {id} not found in {region}")))
}

async fn wait_instance(ctx: &ActionCtx, cloud: &Cloud, region: &str, id: &str, want: &str) -> Result<(), ActionError> {
    wait_state(ctx, "ec2-instance", id, region, POLL, &[want], &["terminated"], || async {
        let i = cloud.ec2.poll_instance(region, id).await?;
        Ok((i.map_or_else(|| "missing".into(), |i| i.state), None))
    })
    .await
    .map(|_| ())
}

async fn wait_volume(ctx: &ActionCtx, cloud: &Cloud, region: &str, id: &str, want: &str) -> Result<(), ActionError> {
    wait_state(ctx, "ebs-volume", id, region, POLL, &[want], &["error"], || async {
        let v = cloud.ec2.poll_volume(region, id).await?;
        Ok((v.map_or_else(|| "missing".into(), |v| v.state), None))
    })
    .await
    .map(|_| ())
}

#[async_trait]
impl Action for SwapVolume {
    fn spec(&self) -> &'static ActionSpec {
        &SWAP_VOLUME
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "ec2:CreateVolume {} from {}; ec2:StopInstances {}; ec2:DetachVolume (old {}); ec2:AttachVolume {} at {}; ec2:StartInstances",
            p.text("name").unwrap_or_default(),
            p.text("snapshot").unwrap_or_default(),
            p.text("instance").unwrap_or_default(),
            p.text("device").unwrap_or_default(),
            p.text("name").unwrap_or_default(),
            p.text("device").unwrap_or_default(),
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = p.opt_str("region")?.map_or_else(|| ctx.target.primary.clone(), str::to_string);
        let (iid, device, name) = (p.str("instance")?, p.str("device")?, p.str("name")?);
        let inst = instance_state(cloud, &region, iid).await?;
        let current = inst.block_devices.get(device).cloned();
        let mut extra = Vec::new();
        if let Some(old) = &current {
            extra.push(("drconsole:replaces".to_string(), old.clone()));
        }
        let new = ensure_volume(
            ctx,
            cloud,
            &region,
            name,
            p.str("snapshot")?,
            &inst.az,
            p.opt_str("volume_type")?.unwrap_or("gp3"),
            p.opt_str("kms_key")?,
            &extra,
        )
        .await?;
        let old = current.clone().filter(|v| *v != new.id).or_else(|| new.tags.get("drconsole:replaces").cloned());
        if current.as_deref() == Some(new.id.as_str()) {
            ctx.resource("found", "ebs-attachment", &format!("{iid}:{device}"), &region, "already swapped");
        } else {
            let was_running = inst.state == "running" || inst.state == "pending";
            if was_running && p.bool_or("stop", true)? {
                ctx.resource("changing", "ec2-instance", iid, &region, "stopping");
                c(cloud.ec2.stop_instances(&region, &[iid.to_string()])).await?;
                wait_instance(ctx, cloud, &region, iid, "stopped").await?;
            }
            if let Some(o) = &current {
                ctx.resource("changing", "ebs-volume", o, &region, "detaching");
                c(cloud.ec2.detach_volume(&region, o, iid)).await?;
                wait_volume(ctx, cloud, &region, o, "available").await?;
            }
            ctx.resource("changing", "ebs-volume", &new.id, &region, "attaching");
            c(cloud.ec2.attach_volume(&region, &new.id, iid, device)).await?;
            wait_volume(ctx, cloud, &region, &new.id, "in-use").await?;
            ctx.resource("changed", "ebs-attachment", &format!("{iid}:{device}"), &region, &new.id);
        }
        let now = instance_state(cloud, &region, iid).await?;
        if now.state == "stopped" || now.state == "stopping" {
            if now.state == "stopping" {
                wait_instance(ctx, cloud, &region, iid, "stopped").await?;
            }
            ctx.resource("changing", "ec2-instance", iid, &region, "starting");
            c(cloud.ec2.start_instances(&region, &[iid.to_string()])).await?;
            wait_instance(ctx, cloud, &region, iid, "running").await?;
        }
        Ok(outs(&[("volume_id", s(new.id)), ("old_volume_id", s(old.unwrap_or_default()))]))
    }
}

struct RestoreSet;
static RESTORE_SET: ActionSpec = ActionSpec {
    name: "ebs.restore_set",
    summary: "Restore every volume with a tag: the newest snapshot of each (at or before a time, for a consistent \
              set), copied to the target region if needed, into new volumes",
    params: &[
        P::req("tag", K::Str, "the volumes' tag, key=value"),
        P::req("name", K::Str, "name prefix of the new volumes (<name>-1, <name>-2...: their idempotency keys)"),
        P::opt("before", K::Time, "use snapshots taken at or before this time (e.g. the database's recovery point)"),
        P::opt("source_region", K::Region, "where the volumes are (default: primary)"),
        P::opt("region", K::Region, "where to restore (default: secondary)"),
        P::opt("az", K::Str, "availability zone (default: <region>a)"),
        P::opt("kms_key", K::Str, "KMS key in the target region"),
        P::opt("volume_type", K::Str, "gp3 (default)"),
        P::opt(
            "tolerance",
            K::Duration,
            "how far apart the volumes' snapshots may be for a consistent set (default 15m; wider is a warning)",
        ),
        P::opt(
            "snapshots",
            K::Str,
            "the set recovery_point.select judged (its ebs_snapshots output): restored exactly, no other volume",
        ),
        P::opt(
            "copy_source_tag",
            K::Str,
            "the tag on a copy naming its source snapshot or volume (the customer's convention)",
        ),
        P::opt("copy_time_tag", K::Str, "the tag on a copy holding its source snapshot's time"),
        P::opt(
            "copy_description",
            K::Str,
            "a copy's description pattern, with {snapshot}, {volume}, {time} and {*} holes",
        ),
    ],
    outputs: &[
        out("volume_ids", "the new volumes, comma-separated"),
        out("count", "how many"),
        out("snapshot_time", "the oldest snapshot used"),
    ],
    iam: &[
        "ec2:DescribeVolumes",
        "ec2:DescribeSnapshots",
        "backup:ListBackupVaults",
        "backup:ListRecoveryPointsByBackupVault",
        "ec2:CopySnapshot",
        "ec2:CreateVolume",
        "ec2:CreateTags",
        "kms:CreateGrant",
        "kms:ReEncrypt*",
        "kms:DescribeKey",
    ],
    expected_secs: 1200,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for RestoreSet {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_SET
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "for each volume tagged {} in {}: newest snapshot{} → ec2:CopySnapshot to {} (unless a copy is there) → ec2:CreateVolume {}-N",
            p.text("tag").unwrap_or_default(),
            p.text("source_region").unwrap_or_else(|_| "primary".into()),
            p.text("before").map(|b| format!(" at or before {b}")).unwrap_or_default(),
            p.text("region").unwrap_or_else(|_| "secondary".into()),
            p.text("name").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let (src, region) = (source_region(ctx, p)?, region(ctx, p)?);
        let (k, v) = tag_pair(p.str("tag")?);
        let before = p.opt_time("before")?;
        let az = p.opt_str("az")?.map_or_else(|| format!("{region}a"), str::to_string);
        let kms = p.opt_str("kms_key")?;
        let opts = EbsOpts::for_step(ctx, p)?;
        let mut found: EbsFound =
            c(find_ebs(cloud, &EbsWanted::Tag(k.clone(), v.clone()), &src, &region, &ctx.run_id, &opts)).await?;
        say_found(ctx, &found);
        if let Some(u) = &found.unreachable {
            ctx.progress(format!("{u}; using only the snapshot copies in {region}"), None);
        }
        ctx.progress(
            format!(
                "{} recovery point(s) of {} ({}): {}",
                found.points.len(),
                found.volumes.join(", "),
                set_from_text(&found),
                super::kit::summary(&found.points.iter().map(EbsPoint::describe).collect::<Vec<_>>(), 5)
            ),
            None,
        );
        // every volume's point first: nothing is created unless the whole set is known and can be restored
        let given = p.opt_str("snapshots")?.map(str::trim).filter(|g| !g.is_empty());
        let picks: Vec<(String, EbsPoint)> = match given {
            Some(g) => chosen_set(&found, g)?,
            None => resolve_set(ctx, &mut found, before, &region).await?.picks,
        };
        let mut ids = Vec::new();
        let mut oldest: Option<jiff::Timestamp> = None;
        let mut times = Vec::new();
        let total = picks.len();
        for (n, (vol, pt)) in picks.into_iter().enumerate() {
            let name = format!("{}-{}", p.str("name")?, n + 1);
            let snap = if pt.region == region {
                ctx.resource("found", "ebs-snapshot", &pt.snapshot.id, &region, &pt.snapshot.state);
                pt.snapshot.clone()
            } else {
                ensure_snapshot_copy(ctx, cloud, &pt.snapshot, &pt.region, &region, kms).await?
            };
            if pt.bound() {
                ctx.warn(format!(
                    "{} has no recorded source time; its data is older than {} (an upper bound)",
                    pt.snapshot.id, pt.time
                ));
            }
            oldest = Some(oldest.map_or(pt.time, |o| o.min(pt.time)));
            times.push((pt.time, pt.bound()));
            ctx.progress(
                format!("volume {}/{total}: {vol} from {}", n + 1, pt.describe()),
                Some(100.0 * n as f64 / total as f64),
            );
            let extra = [(TAG_SOURCE_VOLUME.to_string(), vol.clone())];
            let nv = ensure_volume(
                ctx,
                cloud,
                &region,
                &name,
                &snap.id,
                &az,
                p.opt_str("volume_type")?.unwrap_or("gp3"),
                kms,
                &extra,
            )
            .await?;
            ids.push(nv.id);
        }
        // the set counts in the run's RPO by its oldest volume
        let tolerance = p.opt_duration("tolerance")?.unwrap_or(std::time::Duration::from_secs(15 * 60));
        ctx.recovery_set_used("ebs-set", &format!("EBS set {k}={v}"), &region, &times, tolerance);
        Ok(outs(&[
            ("volume_ids", s(ids.join(","))),
            ("count", Value::from(ids.len())),
            ("snapshot_time", s(oldest.map(|t| t.to_string()).unwrap_or_default())),
        ]))
    }
}

struct CopyImageA;
static COPY_IMAGE: ActionSpec = ActionSpec {
    name: "ec2.copy_image",
    summary: "Find an AMI by id, name, name pattern or tags in either region (newest first) and copy it to the \
              target region unless a copy is there; wait until available",
    params: &[
        P::req("image", K::Str, "an AMI id, an exact name, or a name pattern with * (newest match), e.g. app-web-*"),
        P::opt("image_tag", K::Str, "only AMIs with this tag, key=value (with image = * for tags alone)"),
        P::opt("name", K::Str, "the copy's name (default: the source's name)"),
        P::opt("source_region", K::Region, "default: primary"),
        P::opt("region", K::Region, "default: secondary"),
        P::opt("kms_key", K::Str, "KMS key in the target region"),
    ],
    outputs: &[
        out("image_id", "the AMI id in the target region"),
        out("name", "its name"),
        out("source_image_id", "the AMI it was copied from (itself when it was already in the target region)"),
        out("size_gib", "the image's size in GiB (its snapshots'; the forecast scales by it)"),
    ],
    iam: &[
        "ec2:CopyImage",
        "ec2:DescribeImages",
        "ec2:CreateTags",
        "kms:CreateGrant",
        "kms:ReEncrypt*",
        "kms:DescribeKey",
    ],
    expected_secs: 900,
    effect: Effect::Mutating,
};

/// What `image` (and `image_tag`) select, as a port filter: an id, a name, or a name pattern.
fn image_filter(image: &str, tag: Option<&str>) -> Filter {
    let mut f = if image.starts_with("ami-") {
        Filter::id(image)
    } else if image == "*" {
        Filter::default()
    } else {
        Filter::name(image)
    };
    if let Some(t) = tag {
        let (k, v) = tag_pair(t);
        f = f.and_tag(k, v);
    }
    f
}

#[async_trait]
impl Action for CopyImageA {
    fn spec(&self) -> &'static ActionSpec {
        &COPY_IMAGE
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "newest AMI matching {}{} {}",
            p.text("image").unwrap_or_default(),
            p.text("image_tag").map(|t| format!(" tagged {t}")).unwrap_or_default(),
            {
                let src = p.text("source_region").unwrap_or_else(|_| "primary".into());
                let dst = p.text("region").unwrap_or_else(|_| "secondary".into());
                if src == dst {
                    format!("in {dst}")
                } else {
                    format!("in {dst} or {src}; ec2:CopyImage to {dst} unless a copy is there; wait until available")
                }
            }
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let (src, region) = (source_region(ctx, p)?, region(ctx, p)?);
        let image = p.str("image")?;
        let name = p.opt_str("name")?.filter(|n| !n.contains(['*', '?'])).map(str::to_string);
        let filter = image_filter(image, p.opt_str("image_tag")?);
        let exact = image.starts_with("ami-") || !image.contains(['*', '?']) && p.opt_str("image_tag")?.is_none();
        // the target region first: a copy made earlier (or by the customer's pipeline) needs no source region. An id
        // is only valid in its own region; a copy there is found by its name.
        let here_filter = if image.starts_with("ami-") {
            name.clone().map(Filter::name)
        } else if exact {
            Some(Filter::name(name.clone().unwrap_or_else(|| image.to_string())))
        } else {
            Some(filter.clone())
        };
        let mut here = match &here_filter {
            Some(f) if src != region || !image.starts_with("ami-") => c(cloud.ec2.describe_images(&region, f)).await?,
            _ if src == region => c(cloud.ec2.describe_images(&region, &filter)).await?,
            _ => Vec::new(),
        };
        // a copy another drill made is that drill's (its cleanup deregisters it): never this run's
        here.retain(|i| !crate::drill_names::of_another_drill(&i.tags, &ctx.run_id));
        let usable = |i: &crate::cloud::Image| i.state != "failed" && i.state != "error" && i.state != "deregistered";
        let mut seen: Vec<String> =
            here.iter().map(|i| format!("{} {} in {region} ({})", i.id, i.name, i.state)).collect();
        let best_here = here.iter().filter(|i| usable(i)).max_by_key(|i| i.created).cloned();
        // an exact id or name found in the target region is the answer; a pattern also asks the source region for
        // a newer build
        let (img, source_id) = match best_here {
            Some(i) if exact || src == region => {
                ctx.resource("found", "ami", &i.id, &region, &i.state);
                let id = i.id.clone();
                (i, id)
            }
            here_best => {
                let there = if src == region { Ok(Vec::new()) } else { cloud.ec2.describe_images(&src, &filter).await };
                let there = match there {
                    Ok(v) => v,
                    Err(e) if e.is_retryable() && here_best.is_some() => {
                        ctx.progress_error(
                            format!("{src} does not answer ({e}); using the newest AMI in {region}"),
                            &e,
                        );
                        Vec::new()
                    }
                    Err(e) => return Err(super::kit::cerr(e)),
                };
                seen.extend(there.iter().map(|i| format!("{} {} in {src} ({})", i.id, i.name, i.state)));
                let best_there = there.into_iter().filter(|i| i.state == "available").max_by_key(|i| i.created);
                match (here_best, best_there) {
                    (Some(h), Some(t)) if h.created >= t.created || h.name == t.name => {
                        ctx.resource("found", "ami", &h.id, &region, &h.state);
                        let id = h.id.clone();
                        (h, id)
                    }
                    (Some(h), None) => {
                        ctx.resource("found", "ami", &h.id, &region, &h.state);
                        let id = h.id.clone();
                        (h, id)
                    }
                    (_, Some(srci)) => {
                        let name = name.clone().unwrap_or(srci.name.clone());
                        // a copy under that name already (a re-run, or the customer's pipeline)? `here` holds every
                        // match in the target region
                        let copy = here.iter().find(|i| i.name == name && usable(i)).cloned();
                        match copy {
                            Some(i) => {
                                ctx.resource("found", "ami", &i.id, &region, &i.state);
                                (i, srci.id.clone())
                            }
                            None => {
                                ctx.resource("creating", "ami", &name, &region, "");
                                let req = CopyImage {
                                    source_region: src.clone(),
                                    source_image_id: srci.id.clone(),
                                    name: name.clone(),
                                    kms_key_id: p.opt_str("kms_key")?.map(str::to_string),
                                    client_token: token(&[&srci.id, &region, &name]),
                                    tags: ctx.tags(),
                                };
                                let i = c(cloud.ec2.copy_image(&region, &req)).await?;
                                ctx.resource("created", "ami", &i.id, &region, &i.state);
                                (i, srci.id.clone())
                            }
                        }
                    }
                    (None, None) => {
                        return Err(ActionError::fatal(format!(
                            "no available AMI matching {image}{} in {region} or {src}; found {}",
                            p.opt_str("image_tag")?.map(|t| format!(" tagged {t}")).unwrap_or_default(),
                            if seen.is_empty() { "nothing".to_string() } else { seen.join("; ") }
                        )));
                    }
                }
            }
        };
        if img.state != "available" {
            let id = img.id.clone();
            wait_state(ctx, "ami", &id, &region, POLL, &["available"], &["failed", "error"], || async {
                let i = cloud.ec2.poll_image(&region, &id).await?;
                Ok((i.map_or_else(|| "missing".into(), |i| i.state), None))
            })
            .await?;
        }
        // the size it worked on, for the forecast's size scaling (`crate::forecast`)
        let size = serde_json::Value::from(img.size_gib);
        Ok(outs(&[
            ("image_id", s(img.id)),
            ("name", s(img.name)),
            ("source_image_id", s(source_id)),
            ("size_gib", size),
        ]))
    }
}

struct LaunchTemplateVersion;
static LT_VERSION: ActionSpec = ActionSpec {
    name: "ec2.launch_template_version",
    summary: "Make a launch template's default version use an AMI (a new version from the current default)",
    params: &[
        P::req("launch_template", K::Str, "the launch template name"),
        P::req("image", K::Str, "the AMI id"),
        P::opt("region", K::Region, "default: primary"),
        P::opt("set_default", K::Bool, "make it the default version (default true)"),
    ],
    outputs: &[out("version", "the version using the image")],
    iam: &[
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
    ],
    expected_secs: 10,
    effect: Effect::Mutating,
};

#[async_trait]
impl Action for LaunchTemplateVersion {
    fn spec(&self) -> &'static ActionSpec {
        &LT_VERSION
    }
    fn plan(&self, p: &Params) -> String {
        format!(
            "ec2:CreateLaunchTemplateVersion {} with image {} from the default version; ec2:ModifyLaunchTemplate default = new version",
            p.text("launch_template").unwrap_or_default(),
            p.text("image").unwrap_or_default()
        )
    }
    async fn run(&self, ctx: &ActionCtx, p: &Params) -> Result<Outputs, ActionError> {
        let cloud = ctx.cloud()?;
        let region = p.opt_str("region")?.map_or_else(|| ctx.target.primary.clone(), str::to_string);
        let version = ensure_lt_image(
            ctx,
            cloud,
            &region,
            p.str("launch_template")?,
            p.str("image")?,
            p.bool_or("set_default", true)?,
        )
        .await?;
        Ok(outs(&[("version", Value::from(version))]))
    }
}

/// The launch template's default version uses `image`: found, made default, or created.
pub(crate) async fn ensure_lt_image(
    ctx: &ActionCtx,
    cloud: &Cloud,
    region: &str,
    name: &str,
    image: &str,
    set_default: bool,
) -> Result<u64, ActionError> {
    let lt = c(cloud.ec2.describe_launch_template(region, name))
        .await?
        .ok_or_else(|| ActionError::fatal(format!("launch template {name} not found in {region}")))?;
    if lt.image_id == image {
        ctx.resource("found", "launch-template-version", &format!("{name}:{}", lt.default_version), region, image);
        return Ok(lt.default_version);
    }
    // a version another drill added is that drill's (its cleanup deletes it): never this run's
    let usable = |idx: usize| {
        let desc = lt.version_descriptions.get(idx).map_or("", String::as_str);
        !crate::drill_names::lt_version_of_another_drill(desc, &ctx.run_id)
    };
    let version = match lt.version_images.iter().enumerate().rposition(|(idx, i)| i == image && usable(idx)) {
        Some(idx) => {
            let v = u64::try_from(idx + 1).unwrap_or(1);
            ctx.resource("found", "launch-template-version", &format!("{name}:{v}"), region, image);
            v
        }
        None => {
            ctx.resource("creating", "launch-template-version", name, region, image);
            let description =
                crate::drill_names::lt_version_description(ctx.drill, &ctx.run_id, image, lt.default_version);
            let v = c(cloud.ec2.create_launch_template_version(region, name, lt.default_version, image, &description))
                .await?;
            ctx.resource("created", "launch-template-version", &format!("{name}:{v}"), region, image);
            v
        }
    };
    if set_default {
        c(cloud.ec2.set_default_launch_template_version(region, name, version)).await?;
        ctx.resource("changed", "launch-template", name, region, &format!("default version {version}"));
    }
    Ok(version)
}
