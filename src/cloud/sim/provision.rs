//! Provisioning the simulated world: from a runbook (what its steps refer to) or a world file's `[[resource]]`s.
//! Each provisioned resource comes with its history: hourly backups for the retention period, cross-region copies
//! in the other region, a point-in-time window.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{RegionState, Sim, Timed, Timeline, World, add, sub};
use crate::cloud::*;
use crate::runbook::Runbook;

/// A resource to provision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// `db`, `backup` (a db backed up by AWS Backup), `volume`, `volumes_by_tag`, `instance`, `image`, `vpc`,
    /// `zone`, `failover_zone` (a failover record pair: `record`, the SECONDARY aliasing load balancer `id`),
    /// `secret`, `s3`, `launch_template`, `asg`, `web_acl`, `routing_control` (a Route 53 ARC routing control:
    /// its ARN `id`, optional `name`, its state `value`, `On` or `Off` (default))
    pub kind: String,
    /// Default: the primary region.
    pub region: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub engine: Option<String>,
    pub size_gib: Option<u64>,
    /// `key=value`
    pub tag: Option<String>,
    pub count: Option<u32>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub vault: Option<String>,
    pub launch_template: Option<String>,
    /// `volume`: the instance it is attached to (created if missing).
    pub instance: Option<String>,
    /// `secret`: its value (default: derived from the world's seed); `routing_control`: its state, `On` or `Off`.
    pub value: Option<String>,
    /// `zone`: a record in it (the name customers use today), an alias to the primary region's load balancer.
    pub record: Option<String>,
}

impl Seed {
    fn new(kind: &str) -> Self {
        Self { kind: kind.into(), ..Self::default() }
    }
}

/// What a runbook refers to, from its steps' parameters (values known before the run only).
pub fn seeds_from_runbook(rb: &Runbook) -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, step) in rb.steps.iter().enumerate() {
        let p = crate::runbook::interp::planned_with(rb, i);
        let get = |k: &str| -> Option<String> {
            match p.get(k) {
                Some(Value::String(s)) if !s.contains('<') && !s.is_empty() => Some(s.clone()),
                _ => None,
            }
        };
        let region = |k: &str| get(k).or_else(|| Some(rb.target.primary.clone()));
        let mut push = |kind: &str, f: &dyn Fn(&mut Seed)| {
            let mut s = Seed::new(kind);
            f(&mut s);
            out.push(s);
        };
        if let Some(secret) = get("master_secret") {
            push("secret", &|s| s.id = Some(secret.clone()));
        }
        match step.action.as_str() {
            "recovery_point.select" => {
                let source = get("source").unwrap_or_default();
                let resource = get("resource");
                let engine = get("engine");
                let home = get("source_region").or_else(|| Some(rb.target.primary.clone()));
                match source.as_str() {
                    "rds" | "rds_pitr" => push("db", &|s| {
                        s.id.clone_from(&resource);
                        s.engine.clone_from(&engine);
                        s.region.clone_from(&home);
                    }),
                    "backup" => push("backup", &|s| {
                        s.id.clone_from(&resource);
                        s.engine.clone_from(&engine);
                        s.vault = get("vault");
                        s.region.clone_from(&home);
                    }),
                    "ebs" => match (&resource, get("tag")) {
                        (Some(_), _) => push("volume", &|s| {
                            s.id.clone_from(&resource);
                            s.region.clone_from(&home);
                        }),
                        (None, Some(tag)) => push("volumes_by_tag", &|s| {
                            s.tag = Some(tag.clone());
                            s.region.clone_from(&home);
                        }),
                        _ => {}
                    },
                    "ami" => push("image", &|s| {
                        s.name.clone_from(&resource);
                        s.region.clone_from(&home);
                    }),
                    "s3" => {
                        let regions = match p.get("regions") {
                            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                            _ => vec![rb.target.primary.clone(), rb.target.secondary.clone()],
                        };
                        for r in regions.into_iter().filter(|r| !r.contains('<')) {
                            push("s3", &|s| {
                                s.bucket = get("bucket");
                                s.prefix = get("prefix");
                                s.region = Some(r.clone());
                            });
                        }
                    }
                    _ => {}
                }
            }
            "rds.restore_pitr" => push("db", &|s| {
                s.id = get("source");
                s.region = region("region");
            }),
            "ebs.swap_volume" => push("instance", &|s| {
                s.id = get("instance");
                s.region = region("region");
            }),
            "ebs.restore_set" => push("volumes_by_tag", &|s| {
                s.tag = get("tag");
                s.region = region("source_region");
            }),
            "ec2.copy_image" => push("image", &|s| {
                s.name = get("image");
                s.region = region("source_region");
            }),
            "ec2.launch_template_version" => push("launch_template", &|s| {
                s.name = get("launch_template");
                s.region = region("region");
            }),
            "asg.rollout" => push("asg", &|s| {
                s.name = get("asg");
                s.launch_template = get("launch_template");
                s.region = region("region");
            }),
            "waf.associate" => push("web_acl", &|s| {
                s.name = get("web_acl");
                s.region = region("region");
            }),
            "route53.failover" => {
                // the failover pair made beforehand: its SECONDARY aliases the load balancer of the step whose
                // dns_name `secondary_dns` names (the simulator's load balancer names are deterministic)
                let alb = match p.get("secondary_dns") {
                    Some(Value::String(v)) => v
                        .split("steps.")
                        .nth(1)
                        .and_then(|x| x.split('.').next())
                        .and_then(|id| rb.steps.iter().position(|s| s.id == id))
                        .and_then(|j| match crate::runbook::interp::planned_with(rb, j).get("name") {
                            Some(Value::String(n)) if !n.contains('<') => Some(n.clone()),
                            _ => None,
                        })
                        .or_else(|| (!v.contains('<')).then(|| v.clone())),
                    _ => None,
                };
                push("failover_zone", &|s| {
                    s.name = get("zone");
                    s.record = get("record");
                    s.id.clone_from(&alb);
                    s.region = Some(rb.target.secondary.clone());
                })
            }
            "route53.routing_control" => {
                // the routing controls as they are before the failover: those the step turns on are off, and the
                // other way round
                for (param, before) in [("on", "Off"), ("off", "On")] {
                    let arns = match p.get(param) {
                        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                        Some(Value::String(one)) => vec![one.clone()],
                        _ => Vec::new(),
                    };
                    for arn in arns.into_iter().filter(|a| !a.contains('<')) {
                        push("routing_control", &|s| {
                            s.id = Some(arn.clone());
                            s.value = Some(before.to_string());
                        });
                    }
                }
            }
            "route53.upsert" | "check.record_points_to_alb" => push("zone", &|s| {
                s.name = get("zone");
                s.record = get("record");
            }),
            _ => {}
        }
        if matches!(step.action.as_str(), "nat.ensure" | "elb.ensure" | "asg.ensure") {
            push("vpc", &|s| {
                s.name = get("vpc");
                s.region = region("region");
            });
        }
        if step.action == "asg.ensure" {
            push("launch_template", &|s| {
                s.name = get("launch_template");
                s.region = region("region");
            });
        }
    }
    out.retain(|s| s.id.is_some() || s.name.is_some() || s.tag.is_some() || s.bucket.is_some());
    // a volume swap restores the instance's own volume: attach the picked volume to that instance
    let swapped: Vec<(Option<String>, Option<String>)> =
        out.iter().filter(|s| s.kind == "instance").map(|s| (s.id.clone(), s.region.clone())).collect();
    if let Some((inst, region)) = swapped.first() {
        for s in out.iter_mut().filter(|s| s.kind == "volume" && s.region == *region && s.instance.is_none()) {
            s.instance.clone_from(inst);
        }
    }
    out
}

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d-%H-%M").to_string()
}

impl World {
    /// Backup times, newest first: every interval for the retention period, the newest a little after the hour.
    fn backup_times(&self, now: jiff::Timestamp, key: &str) -> Vec<jiff::Timestamp> {
        let s = &self.settings;
        let offset = Duration::from_secs(300 + super::hash_of(&(self.seed, key, "offset")) % 1200);
        let newest = sub(now, s.backups_stopped + offset);
        let n = (s.backup_retention.as_secs() / s.backup_interval.as_secs().max(1)).max(1);
        (0..n).map(|k| sub(newest, s.backup_interval * u32::try_from(k).unwrap_or(0))).collect()
    }

    fn other_region(&self, region: &str) -> String {
        if region == self.primary { self.secondary.clone() } else { self.primary.clone() }
    }

    fn r(&mut self, region: &str) -> &mut RegionState {
        self.now_region(region)
    }
}

impl Sim {
    /// Provisions one resource (and its history) unless it exists already.
    pub fn provision(&self, seed: &Seed) {
        let now = self.clock.now();
        let mut w = self.lock();
        let region = seed.region.clone().unwrap_or_else(|| w.primary.clone());
        match seed.kind.as_str() {
            "db" | "backup" => {
                let Some(id) = seed.id.clone() else { return };
                let engine = seed
                    .engine
                    .clone()
                    .unwrap_or_else(|| if seed.kind == "backup" { "mysql".into() } else { "postgres".into() });
                provision_db(&mut w, now, &region, &id, &engine, seed.size_gib.unwrap_or(500));
                if seed.kind == "backup" {
                    let vault = seed.vault.clone().unwrap_or_else(|| "Default".into());
                    provision_backup(&mut w, now, &region, &id, &vault);
                }
            }
            "volume" => {
                let id = seed.id.clone().unwrap_or_else(|| w.id("vol", &format!("{region}/seed")));
                let tags = seed.tag.as_deref().map(parse_tag).into_iter().collect();
                provision_volume(
                    &mut w,
                    now,
                    &region,
                    &id,
                    seed.size_gib.unwrap_or(1000),
                    tags,
                    seed.instance.as_deref(),
                );
            }
            "volumes_by_tag" => {
                let Some(tag) = seed.tag.as_deref().map(parse_tag) else { return };
                let f = Filter::tag(tag.0.clone(), tag.1.clone());
                if w.r(&region).volumes.values().any(|v| f.matches(&v.item.id, None, &v.item.tags)) {
                    return;
                }
                for k in 0..seed.count.unwrap_or(2) {
                    let id = w.id("vol", &format!("{region}/{}={}/{k}", tag.0, tag.1));
                    let tags = vec![tag.clone(), ("Name".into(), format!("{}-data-{k}", tag.1))];
                    provision_volume(&mut w, now, &region, &id, seed.size_gib.unwrap_or(1000), tags, None);
                }
            }
            "instance" => {
                let Some(id) = seed.id.clone() else { return };
                if w.r(&region).instances.contains_key(&id) {
                    return;
                }
                let vol = w.id("vol", &format!("{region}/{id}/data"));
                provision_volume(&mut w, now, &region, &vol, seed.size_gib.unwrap_or(1000), Vec::new(), Some(&id));
            }
            "image" => {
                let Some(name) = seed.name.clone().or(seed.id.clone()) else { return };
                match name.strip_suffix('*') {
                    // a family of images built daily: name-YYYY-MM-DD
                    Some(prefix) => {
                        for d in 1..=3u64 {
                            let t = sub(now, Duration::from_secs(86400 * d));
                            let n = format!("{prefix}{}", t.strftime("%Y-%m-%d"));
                            provision_image(&mut w, t, &region, &n);
                        }
                    }
                    None => {
                        let id = provision_image(&mut w, sub(now, Duration::from_secs(86400 * 3)), &region, &name);
                        // `tag = "key=value"`: an image a build pipeline tagged
                        if let Some((k, v)) = seed.tag.as_deref().and_then(|t| t.split_once('='))
                            && let Some(i) = w.r(&region).images.get_mut(&id)
                        {
                            i.item.tags.insert(k.into(), v.into());
                        }
                    }
                }
            }
            "vpc" => {
                let Some(name) = seed.name.clone() else { return };
                provision_vpc(&mut w, &region, &name);
            }
            "zone" => {
                let Some(name) = seed.name.clone() else { return };
                let fqdn = fqdn(&name);
                if !w.zones.values().any(|z| z.name == fqdn) {
                    let id = format!("Z{:019X}", super::hash_of(&(w.seed, &fqdn)) & 0xffff_ffff_ffff);
                    w.zones.insert(id.clone(), HostedZone { id: id.clone(), name: fqdn.clone(), private: false });
                    w.records.insert(id, Vec::new());
                }
                // the record as it is before a failover: an alias to the primary region's load balancer
                let record = seed.record.as_deref().map(self::fqdn);
                let zone_id = w.zones.values().find(|z| z.name == fqdn).map(|z| z.id.clone());
                if let (Some(name), Some(zone_id)) = (record, zone_id)
                    && (name == fqdn || name.ends_with(&format!(".{fqdn}")))
                {
                    let primary = w.primary.clone();
                    let recs = w.records.entry(zone_id).or_default();
                    if !recs.iter().any(|r| r.name == name) {
                        recs.push(RecordSet {
                            name,
                            rtype: "A".into(),
                            alias: Some(AliasTarget {
                                dns_name: format!("app-primary-alb.{primary}.elb.amazonaws.com."),
                                hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
                                evaluate_target_health: true,
                            }),
                            ..RecordSet::default()
                        });
                    }
                }
            }
            "routing_control" => {
                let Some(arn) = seed.id.clone() else { return };
                let name = seed.name.clone().unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(&arn).to_string());
                let state = match seed.value.as_deref() {
                    Some("On" | "on") => "On",
                    _ => "Off",
                };
                w.routing_controls.entry(arn.clone()).or_insert_with(|| RoutingControl {
                    arn,
                    name,
                    state: state.to_string(),
                });
            }
            "failover_zone" => {
                let (Some(name), Some(record)) = (seed.name.clone(), seed.record.as_deref().map(self::fqdn)) else {
                    return;
                };
                let zone = fqdn(&name);
                let zone_id = match w.zones.values().find(|z| z.name == zone) {
                    Some(z) => z.id.clone(),
                    None => {
                        let id = format!("Z{:019X}", super::hash_of(&(w.seed, &zone)) & 0xffff_ffff_ffff);
                        w.zones.insert(id.clone(), HostedZone { id: id.clone(), name: zone.clone(), private: false });
                        id
                    }
                };
                // the SECONDARY's target: a load balancer's name (its DNS name as the simulator will make it) or a
                // DNS name as given
                let target = match seed.id.as_deref() {
                    Some(n) if !n.contains('.') => {
                        let h = super::hash_of(&(w.seed, region.as_str(), &n.to_string()));
                        format!("{n}-{}.{region}.elb.amazonaws.com.", h % 1_000_000_000)
                    }
                    Some(d) => self::fqdn(d),
                    None => format!("app-dr-alb.{region}.elb.amazonaws.com."),
                };
                // the primary's health check fails (the primary is why there is a failover); the secondary's passes
                let hc = format!("{:08x}-0000-4000-8000-{:012x}", super::hash_of(&(w.seed, &record)) as u32, 1);
                w.health_checks.insert(
                    hc.clone(),
                    HealthCheck {
                        id: hc.clone(),
                        caller_reference: format!("{record}primary"),
                        config: HealthCheckConfig {
                            check_type: "HTTPS".into(),
                            fqdn: format!("primary.{zone}"),
                            port: 443,
                            path: Some("/health".into()),
                            failure_threshold: 3,
                        },
                    },
                );
                w.failing_health_checks.insert(hc.clone());
                let recs = w.records.entry(zone_id).or_default();
                if !recs.iter().any(|r| r.name == record && r.failover.is_some()) {
                    recs.retain(|r| r.name != record);
                    recs.push(RecordSet {
                        name: record.clone(),
                        rtype: "A".into(),
                        ttl: Some(60),
                        values: vec!["192.0.2.10".into()],
                        set_identifier: Some("primary".into()),
                        failover: Some("PRIMARY".into()),
                        health_check_id: Some(hc),
                        ..RecordSet::default()
                    });
                    recs.push(RecordSet {
                        name: record,
                        rtype: "A".into(),
                        alias: Some(AliasTarget {
                            dns_name: target,
                            hosted_zone_id: "Z1H1FL5HABSF5".into(),
                            evaluate_target_health: true,
                        }),
                        set_identifier: Some("secondary".into()),
                        failover: Some("SECONDARY".into()),
                        ..RecordSet::default()
                    });
                }
            }
            "secret" => {
                let Some(id) = seed.id.clone() else { return };
                let value = seed
                    .value
                    .clone()
                    .unwrap_or_else(|| format!("sim-{:016x}", super::hash_of(&(w.seed, &id, "secret"))));
                let name = id.rsplit(':').next().unwrap_or(&id).to_string();
                for r in [w.primary.clone(), w.secondary.clone()] {
                    let arn = if id.starts_with("arn:") {
                        id.clone()
                    } else {
                        w.arn("secretsmanager", &r, &format!("secret:{name}"))
                    };
                    let sv = SecretValue { arn, name: name.clone(), value: value.clone() };
                    w.r(&r).secrets.entry(id.clone()).or_insert(sv);
                }
            }
            "s3" => {
                let (Some(bucket), prefix) = (seed.bucket.clone(), seed.prefix.clone().unwrap_or_default()) else {
                    return;
                };
                if w.r(&region).buckets.get(&bucket).is_some_and(|o| o.iter().any(|x| x.key.starts_with(&prefix))) {
                    return;
                }
                let lag = if region == w.primary { Duration::ZERO } else { Duration::from_secs(600) };
                let times = w.backup_times(now, &format!("s3/{bucket}/{prefix}"));
                let mut objs = Vec::new();
                for t in times {
                    let t = add(t, lag + Duration::from_secs(900));
                    if t > now {
                        continue;
                    }
                    let dir = format!("{prefix}{}/", t.strftime("%Y-%m-%dT%H-%MZ"));
                    for part in 0..2 {
                        objs.push(S3Object {
                            key: format!("{dir}data/part-{part:05}.json.gz"),
                            size_bytes: 1_800_000_000,
                            last_modified: t,
                            encrypted: true,
                        });
                    }
                    objs.push(S3Object {
                        key: format!("{dir}manifest.json"),
                        size_bytes: 2048,
                        last_modified: t,
                        encrypted: true,
                    });
                }
                w.r(&region).buckets.entry(bucket).or_default().extend(objs);
            }
            "launch_template" => {
                let Some(name) = seed.name.clone() else { return };
                if w.r(&region).launch_templates.contains_key(&name) {
                    return;
                }
                let image = provision_image(
                    &mut w,
                    sub(now, Duration::from_secs(86400 * 30)),
                    &region,
                    &format!("base-{name}"),
                );
                let id = w.id("lt", &format!("{region}/{name}"));
                let lt = LaunchTemplate {
                    id,
                    name: name.clone(),
                    default_version: 1,
                    latest_version: 1,
                    image_id: image.clone(),
                    version_images: vec![image],
                    version_descriptions: vec![String::new()],
                    tags: Tags::new(),
                    security_groups: Vec::new(),
                    instance_type: "m5.large".into(),
                };
                w.r(&region).launch_templates.insert(name, lt);
            }
            "asg" => {
                let Some(name) = seed.name.clone() else { return };
                if w.r(&region).asgs.contains_key(&name) {
                    return;
                }
                let lt_name = seed.launch_template.clone().unwrap_or_else(|| format!("{name}-lt"));
                drop(w);
                self.provision(&Seed {
                    kind: "launch_template".into(),
                    name: Some(lt_name.clone()),
                    region: Some(region.clone()),
                    ..Seed::default()
                });
                self.provision(&Seed {
                    kind: "vpc".into(),
                    name: Some(format!("{name}-vpc")),
                    region: Some(region.clone()),
                    ..Seed::default()
                });
                let mut w = self.lock();
                let subnets: Vec<String> =
                    w.r(&region).subnets.values().filter(|s| !s.public).map(|s| s.id.clone()).take(2).collect();
                let mut instances = Vec::new();
                for k in 0..2 {
                    let id = w.id("i", &format!("{region}/{name}/{k}"));
                    instances.push(super::SimAsgInstance {
                        id,
                        az: format!("{region}{}", if k == 0 { 'a' } else { 'b' }),
                        version: 1,
                        tl: Timeline::fixed(sub(now, Duration::from_secs(86400)), "InService"),
                    });
                }
                let arn = w.arn("autoscaling", &region, &format!("autoScalingGroup:sim:autoScalingGroupName/{name}"));
                let group = AutoScalingGroup {
                    name: name.clone(),
                    arn,
                    launch_template_name: lt_name,
                    launch_template_version: "$Default".into(),
                    min: 2,
                    max: 4,
                    desired: 2,
                    subnets,
                    target_group_arns: Vec::new(),
                    instances: Vec::new(),
                    tags: Tags::new(),
                };
                w.r(&region)
                    .asgs
                    .insert(name, super::SimAsg { group, instances, refreshes: Vec::new(), deleted_at: None });
            }
            "web_acl" => {
                let Some(name) = seed.name.clone() else { return };
                let id = format!("{:032x}", super::hash_of(&(w.seed, &region, &name)));
                let arn = w.arn("wafv2", &region, &format!("regional/webacl/{name}/{id}"));
                w.r(&region).web_acls.entry(name.clone()).or_insert(WebAcl { id, name, arn, scope: "REGIONAL".into() });
            }
            _ => {}
        }
    }
}

pub(crate) fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

pub(crate) fn parse_tag(t: &str) -> (String, String) {
    match t.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
        None => ("Name".into(), t.trim().to_string()),
    }
}

fn provision_db(w: &mut World, now: jiff::Timestamp, region: &str, id: &str, engine: &str, size: u64) {
    if w.r(region).dbs.contains_key(id) {
        return;
    }
    let port = if engine.contains("mysql") || engine.contains("maria") { 3306 } else { 5432 };
    let kms = w.arn("kms", region, &format!("key/{:032x}", super::hash_of(&(w.seed, region, "kms"))));
    let retention = w.settings.backup_retention;
    let db = DbInstance {
        id: id.into(),
        arn: w.arn("rds", region, &format!("db:{id}")),
        engine: engine.into(),
        class: "db.r6g.xlarge".into(),
        status: "available".into(),
        endpoint: Some(format!("{id}.c0sim.{region}.rds.amazonaws.com")),
        port,
        storage_gib: size,
        encrypted: true,
        kms_key_id: Some(kms.clone()),
        az: Some(format!("{region}a")),
        subnet_group: Some(format!("{id}-subnets")),
        security_groups: vec![format!("sg-{:017x}", super::hash_of(&(w.seed, id)) & 0xffff_ffff_ffff)],
        parameter_group: Some(format!("default.{engine}")),
        earliest_restorable_time: Some(sub(now, retention)),
        latest_restorable_time: None,
        tags: Tags::new(),
    };
    let created = sub(now, retention + Duration::from_secs(86400 * 30));
    w.r(region).dbs.insert(id.into(), Timed { item: db, tl: Timeline::fixed(created, "available") });
    let other = w.other_region(region);
    let other_kms = w.arn("kms", &other, &format!("key/{:032x}", super::hash_of(&(w.seed, &other, "kms"))));
    for t in w.backup_times(now, &format!("rds/{id}")) {
        let sid = format!("rds:{id}-{}", stamp(t));
        let snap = DbSnapshot {
            id: sid.clone(),
            arn: w.arn("rds", region, &format!("snapshot:{sid}")),
            instance_id: id.into(),
            snapshot_type: "automated".into(),
            status: "available".into(),
            progress_pct: 100,
            created: t,
            engine: engine.into(),
            storage_gib: size,
            encrypted: true,
            kms_key_id: Some(kms.clone()),
            source_arn: None,
            tags: Tags::new(),
        };
        // the customer's copy job puts a manual copy in the other region ~20 min later
        let copy_t = add(t, Duration::from_secs(1200));
        if copy_t <= sub(now, w.settings.copies_stopped) {
            let cid = format!("{id}-xr-{}", stamp(t));
            let mut copy = snap.clone();
            copy.id.clone_from(&cid);
            copy.arn = w.arn("rds", &other, &format!("snapshot:{cid}"));
            copy.snapshot_type = "manual".into();
            copy.kms_key_id = Some(other_kms.clone());
            copy.source_arn = Some(snap.arn.clone());
            copy.created = t;
            w.r(&other).db_snapshots.insert(cid, Timed { item: copy, tl: Timeline::fixed(copy_t, "available") });
        }
        w.r(region).db_snapshots.insert(sid, Timed { item: snap, tl: Timeline::fixed(t, "available") });
    }
}

fn provision_backup(w: &mut World, now: jiff::Timestamp, region: &str, id: &str, vault: &str) {
    let Some(db) = w.r(region).dbs.get(id).map(|d| d.item.clone()) else { return };
    if w.r(region).recovery_points.values().any(|r| r.resource_arn == db.arn) {
        return;
    }
    let other = w.other_region(region);
    for t in w.backup_times(now, &format!("backup/{id}")) {
        let job = format!("{:016x}", super::hash_of(&(w.seed, id, t.as_second())));
        let arn = w.arn("rds", region, &format!("snapshot:awsbackup:job-{job}"));
        let rp = RecoveryPoint {
            arn: arn.clone(),
            vault: vault.into(),
            resource_arn: db.arn.clone(),
            resource_type: "RDS".into(),
            status: "COMPLETED".into(),
            created: t,
            size_bytes: db.storage_gib << 30,
            encrypted: true,
        };
        let snap = DbSnapshot {
            id: format!("awsbackup:job-{job}"),
            arn: arn.clone(),
            instance_id: id.into(),
            snapshot_type: "awsbackup".into(),
            status: "available".into(),
            progress_pct: 100,
            created: t,
            engine: db.engine.clone(),
            storage_gib: db.storage_gib,
            encrypted: true,
            kms_key_id: db.kms_key_id.clone(),
            source_arn: None,
            tags: Tags::new(),
        };
        w.r(region).db_snapshots.insert(snap.id.clone(), Timed { item: snap, tl: Timeline::fixed(t, "available") });
        if add(t, Duration::from_secs(1800)) <= sub(now, w.settings.copies_stopped) {
            let mut copy = rp.clone();
            copy.arn = w.arn("rds", &other, &format!("snapshot:awsbackup:copyjob-{job}"));
            w.r(&other).recovery_points.insert(copy.arn.clone(), copy);
        }
        w.r(region).recovery_points.insert(arn, rp);
    }
}

fn provision_volume(
    w: &mut World,
    now: jiff::Timestamp,
    region: &str,
    id: &str,
    size: u64,
    tags: Vec<(String, String)>,
    instance: Option<&str>,
) {
    if w.r(region).volumes.contains_key(id) {
        return;
    }
    let tags: Tags = tags.into_iter().collect();
    let instance_id = match instance {
        Some(i) => i.to_string(),
        None => w.id("i", &format!("{region}/{id}/owner")),
    };
    let az = format!("{region}a");
    let kms = w.arn("kms", region, &format!("key/{:032x}", super::hash_of(&(w.seed, region, "kms"))));
    let old = sub(now, Duration::from_secs(86400 * 60));
    let vol = Volume {
        id: id.into(),
        az: az.clone(),
        size_gib: size,
        volume_type: "gp3".into(),
        state: "in-use".into(),
        snapshot_id: None,
        encrypted: true,
        kms_key_id: Some(kms.clone()),
        attachments: vec![VolumeAttachment {
            instance_id: instance_id.clone(),
            device: "/dev/sdf".into(),
            state: "attached".into(),
        }],
        tags: tags.clone(),
    };
    w.r(region).volumes.insert(id.into(), Timed { item: vol, tl: Timeline::fixed(old, "in-use") });
    let r = w.r(region);
    let inst = r.instances.entry(instance_id.clone()).or_insert_with(|| Timed {
        item: Instance {
            id: instance_id.clone(),
            state: "running".into(),
            az,
            subnet_id: None,
            image_id: "ami-00000000000000000".into(),
            instance_type: "r6i.2xlarge".into(),
            private_ip: Some("10.0.1.10".into()),
            block_devices: std::collections::BTreeMap::new(),
            tags: tags.clone(),
        },
        tl: Timeline::fixed(old, "running"),
    });
    inst.item.block_devices.insert("/dev/sdf".into(), id.into());
    let other = w.other_region(region);
    for t in w.backup_times(now, &format!("ebs/{id}")) {
        let sid = w.id("snap", &format!("{region}/{id}/{}", t.as_second()));
        let mut stags = tags.clone();
        stags.insert("drconsole:source-volume".into(), id.into());
        let snap = Snapshot {
            id: sid.clone(),
            volume_id: id.into(),
            state: "completed".into(),
            progress_pct: 100,
            start_time: t,
            size_gib: size,
            encrypted: true,
            kms_key_id: Some(kms.clone()),
            description: format!("hourly backup of {id}"),
            tags: stags,
        };
        let copy_t = add(t, Duration::from_secs(1500));
        if copy_t <= sub(now, w.settings.copies_stopped) {
            let cid = w.id("snap", &format!("{other}/{sid}"));
            let mut c = snap.clone();
            c.id.clone_from(&cid);
            c.description = format!("[Copied {sid} from {region}] hourly backup of {id}");
            w.r(&other).snapshots.insert(cid, Timed { item: c, tl: Timeline::fixed(copy_t, "completed") });
        }
        w.r(region).snapshots.insert(sid, Timed { item: snap, tl: Timeline::fixed(t, "completed") });
    }
}

/// Returns the image id.
fn provision_image(w: &mut World, now: jiff::Timestamp, region: &str, name: &str) -> String {
    if let Some(i) = w.r(region).images.values().find(|i| i.item.name == name || i.item.id == name) {
        return i.item.id.clone();
    }
    let id = if name.starts_with("ami-") { name.to_string() } else { w.id("ami", &format!("{region}/{name}")) };
    let t = now;
    let img = Image {
        id: id.clone(),
        name: name.into(),
        state: "available".into(),
        created: t,
        encrypted: true,
        size_gib: 50,
        snapshot_ids: Vec::new(),
        tags: Tags::new(),
    };
    w.r(region).images.insert(id.clone(), Timed { item: img, tl: Timeline::fixed(t, "available") });
    id
}

fn provision_vpc(w: &mut World, region: &str, name: &str) {
    if w.r(region).vpcs.values().any(|v| v.tags.get("Name").is_some_and(|n| n == name)) {
        return;
    }
    let vpc_id = w.id("vpc", &format!("{region}/{name}"));
    let mut tags = Tags::new();
    tags.insert("Name".into(), name.into());
    w.r(region).vpcs.insert(vpc_id.clone(), Vpc { id: vpc_id.clone(), cidr: "10.20.0.0/16".into(), tags });
    let igw = w.id("igw", &format!("{region}/{name}"));
    let public_rt = w.id("rtb", &format!("{region}/{name}/public"));
    let mut public_subnets = Vec::new();
    for (k, az) in ['a', 'b'].into_iter().enumerate() {
        for public in [true, false] {
            let kind = if public { "public" } else { "private" };
            let sid = w.id("subnet", &format!("{region}/{name}/{kind}/{az}"));
            let mut t = Tags::new();
            t.insert("Name".into(), format!("{name}-{kind}-{az}"));
            t.insert("tier".into(), kind.into());
            let cidr = format!("10.20.{}.0/24", k * 16 + usize::from(!public) * 8);
            w.r(region).subnets.insert(
                sid.clone(),
                Subnet { id: sid.clone(), vpc_id: vpc_id.clone(), az: format!("{region}{az}"), cidr, public, tags: t },
            );
            if public {
                public_subnets.push(sid);
            } else {
                let rt = w.id("rtb", &format!("{region}/{name}/private/{az}"));
                let mut t = Tags::new();
                t.insert("Name".into(), format!("{name}-private-{az}"));
                t.insert("tier".into(), "private".into());
                let table = RouteTable {
                    id: rt.clone(),
                    vpc_id: vpc_id.clone(),
                    subnet_ids: vec![sid],
                    routes: vec![Route {
                        destination: "10.20.0.0/16".into(),
                        nat_gateway_id: None,
                        gateway_id: Some("local".into()),
                    }],
                    tags: t,
                };
                w.r(region).route_tables.insert(rt, table);
            }
        }
    }
    let mut t = Tags::new();
    t.insert("Name".into(), format!("{name}-public"));
    t.insert("tier".into(), "public".into());
    let table = RouteTable {
        id: public_rt.clone(),
        vpc_id,
        subnet_ids: public_subnets,
        routes: vec![
            Route { destination: "10.20.0.0/16".into(), nat_gateway_id: None, gateway_id: Some("local".into()) },
            Route { destination: "0.0.0.0/0".into(), nat_gateway_id: None, gateway_id: Some(igw) },
        ],
        tags: t,
    };
    w.r(region).route_tables.insert(public_rt, table);
}
