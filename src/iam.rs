//! The least-privilege IAM policy of a runbook (`drconsole iam-policy`): only the IAM actions its steps' actions
//! declare, each on the resources the step's parameters determine (ARN patterns with the runbook's regions, its
//! account and the names it uses), with the conditions AWS documents: `aws:RequestedRegion` on reads (most
//! Describe/List calls have no resource-level permissions), `aws:RequestTag/drconsole:runbook` on what the run
//! creates, `iam:PassRole` only with `iam:PassedToService`, KMS only via the EC2/RDS services of the runbook's
//! regions (`kms:ViaService`) and grants only for AWS resources (`kms:GrantIsForAWSResource`).
//!
//! Where a step copies or restores encrypted data (its action declares `kms:CreateGrant`), the KMS statement also
//! grants what AWS documents for encrypted EBS/RDS copies and restores under a customer-managed key:
//! `kms:Decrypt` (the source key) and `kms:GenerateDataKeyWithoutPlaintext` (the target key).
//!
//! Statements with the same resources and conditions are merged; everything is sorted, so the output is stable.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::actions::Registry;
use crate::runbook::Runbook;

/// One grant before merging: IAM actions on resources under a condition (JSON, or `Null` for none).
#[derive(Debug, Clone)]
struct Grant {
    /// The statement's name when not its first action's service.
    label: Option<&'static str>,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Value,
}

/// The IAM actions an action's spec declares are reads: no resource-level scoping, only the region.
fn is_read(iam: &str) -> bool {
    let op = iam.split_once(':').map_or(iam, |(_, o)| o);
    ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)) && iam != "secretsmanager:GetSecretValue"
}

fn global(service: &str) -> bool {
    // (Route 53 ARC's cluster data plane answers in five regions: a region condition would refuse its endpoints)
    matches!(service, "route53" | "iam" | "sts" | "route53-recovery-cluster")
}

struct StepScope<'a> {
    account: String,
    runbook: &'a str,
    /// Where the step acts.
    regions: Vec<String>,
    /// Where it reads from (copies: the source region).
    sources: Vec<String>,
    p: serde_json::Map<String, Value>,
}

impl StepScope<'_> {
    fn known(&self, k: &str) -> Option<String> {
        match self.p.get(k) {
            Some(Value::String(s)) if !(s.is_empty() || s.contains('<') && s.contains('>')) => Some(s.clone()),
            _ => None,
        }
    }
    fn name_or_any(&self, k: &str) -> String {
        self.known(k).unwrap_or_else(|| "*".into())
    }
    /// `arn:aws:SERVICE:REGION:ACCOUNT:REST` for each region the step acts in.
    fn arns(&self, service: &str, rest: &str) -> Vec<String> {
        self.regions.iter().map(|r| format!("arn:aws:{service}:{r}:{}:{rest}", self.account)).collect()
    }
    fn source_arns(&self, service: &str, rest: &str) -> Vec<String> {
        self.sources.iter().map(|r| format!("arn:aws:{service}:{r}:{}:{rest}", self.account)).collect()
    }
    /// EC2 snapshot and image ARNs have no account.
    fn ec2_public(&self, rest: &str, with_sources: bool) -> Vec<String> {
        let mut v: Vec<String> = self.regions.iter().map(|r| format!("arn:aws:ec2:{r}::{rest}")).collect();
        if with_sources {
            v.extend(self.sources.iter().map(|r| format!("arn:aws:ec2:{r}::{rest}")));
        }
        v
    }
    fn tagged(&self) -> Value {
        json!({ "StringEquals": { "aws:RequestTag/drconsole:runbook": self.runbook } })
    }
}

fn grant(actions: &[&str], resources: Vec<String>, condition: Value) -> Grant {
    Grant { label: None, actions: actions.iter().map(|a| (*a).to_string()).collect(), resources, condition }
}

/// The grants of one mutating IAM action of a step.
fn scoped(iam: &str, step_action: &str, s: &StepScope) -> Vec<Grant> {
    let a = [iam];
    let acct = &s.account;
    match iam {
        "secretsmanager:GetSecretValue" => {
            let secret = s.name_or_any("master_secret");
            let res = if secret.starts_with("arn:") {
                vec![secret]
            } else {
                s.arns("secretsmanager", &format!("secret:{secret}-??????"))
            };
            vec![grant(&a, res, Value::Null)]
        }
        // RDS: the snapshot ids are picked at run time; the instances and copies are named by the runbook
        "rds:CopyDBSnapshot" => {
            let mut res = s.source_arns("rds", "snapshot:*");
            res.extend(s.arns("rds", &format!("snapshot:{}", s.name_or_any("target_id"))));
            vec![grant(&a, res, Value::Null)]
        }
        "rds:RestoreDBInstanceFromDBSnapshot" | "rds:RestoreDBInstanceToPointInTime" => {
            let mut res = s.arns("rds", &format!("db:{}", s.name_or_any("instance")));
            if iam.ends_with("PointInTime") {
                res.extend(s.arns("rds", &format!("db:{}", s.name_or_any("source"))));
            } else {
                res.extend(s.arns("rds", "snapshot:*"));
            }
            res.extend(s.arns("rds", &format!("subgrp:{}", s.name_or_any("subnet_group"))));
            res.extend(s.arns("rds", "og:*"));
            res.extend(s.arns("rds", "pg:*"));
            vec![grant(&a, res, Value::Null)]
        }
        "rds:ModifyDBInstance" => {
            let mut res = s.arns("rds", &format!("db:{}", s.name_or_any("instance")));
            if s.known("parameter_group").is_some() {
                res.extend(s.arns("rds", &format!("pg:{}", s.name_or_any("parameter_group"))));
            }
            vec![grant(&a, res, Value::Null)]
        }
        "rds:AddTagsToResource" => {
            let mut res = s.arns("rds", "db:*");
            res.extend(s.arns("rds", "snapshot:*"));
            vec![grant(&a, res, s.tagged())]
        }
        "rds:StartExportTask" => vec![grant(&a, s.arns("rds", "snapshot:*"), Value::Null)],
        // EC2: what the run creates carries the runbook's tag
        "ec2:CreateVolume" => vec![
            grant(&a, s.arns("ec2", "volume/*"), s.tagged()),
            grant(&a, s.ec2_public("snapshot/*", false), Value::Null),
        ],
        "ec2:CopySnapshot" => vec![grant(&a, s.ec2_public("snapshot/*", true), Value::Null)],
        "ec2:CopyImage" => vec![grant(&a, s.ec2_public("image/*", true), Value::Null)],
        "ec2:AttachVolume" | "ec2:DetachVolume" | "ec2:StopInstances" | "ec2:StartInstances" => {
            let mut res = s.arns("ec2", &format!("instance/{}", s.name_or_any("instance")));
            if iam.ends_with("Volume") {
                res.extend(s.arns("ec2", "volume/*"));
            }
            vec![grant(&a, res, Value::Null)]
        }
        "ec2:CreateLaunchTemplateVersion" | "ec2:ModifyLaunchTemplate" => {
            vec![grant(&a, s.arns("ec2", "launch-template/*"), Value::Null)]
        }
        "ec2:AllocateAddress" => vec![grant(&a, s.arns("ec2", "elastic-ip/*"), s.tagged())],
        "ec2:CreateNatGateway" => {
            let mut v = vec![grant(&a, s.arns("ec2", "natgateway/*"), s.tagged())];
            let mut res = s.arns("ec2", "subnet/*");
            res.extend(s.arns("ec2", "elastic-ip/*"));
            v.push(grant(&a, res, Value::Null));
            v
        }
        "ec2:CreateRoute" | "ec2:ReplaceRoute" => vec![grant(&a, s.arns("ec2", "route-table/*"), Value::Null)],
        // nat.ensure's claim on a zone: a rule-less security group in the VPC, tagged as it is created
        "ec2:CreateSecurityGroup" => vec![
            grant(&a, s.arns("ec2", "security-group/*"), s.tagged()),
            grant(&a, s.arns("ec2", "vpc/*"), Value::Null),
        ],
        "ec2:DeleteSecurityGroup" => vec![grant(&a, s.arns("ec2", "security-group/*"), Value::Null)],
        "ec2:RunInstances" => {
            let mut res = Vec::new();
            for r in [
                "instance/*",
                "volume/*",
                "network-interface/*",
                "subnet/*",
                "security-group/*",
                "launch-template/*",
                "key-pair/*",
            ] {
                res.extend(s.arns("ec2", r));
            }
            res.extend(s.ec2_public("image/*", false));
            vec![grant(&a, res, Value::Null)]
        }
        // ELB: named by the step
        "elasticloadbalancing:CreateLoadBalancer"
        | "elasticloadbalancing:CreateListener"
        | "elasticloadbalancing:AddTags"
        | "elasticloadbalancing:SetWebACL"
        | "elasticloadbalancing:CreateTargetGroup"
        | "elasticloadbalancing:RegisterTargets" => {
            let lb = if step_action == "elb.ensure" { s.name_or_any("name") } else { "*".into() };
            let tg = s.known("target_group").unwrap_or_else(|| if lb == "*" { "*".into() } else { format!("{lb}-tg") });
            let res = match iam {
                "elasticloadbalancing:CreateLoadBalancer" | "elasticloadbalancing:SetWebACL" => {
                    s.arns("elasticloadbalancing", &format!("loadbalancer/app/{lb}/*"))
                }
                "elasticloadbalancing:CreateListener" => {
                    let mut r = s.arns("elasticloadbalancing", &format!("loadbalancer/app/{lb}/*"));
                    r.extend(s.arns("elasticloadbalancing", &format!("listener/app/{lb}/*")));
                    r
                }
                "elasticloadbalancing:CreateTargetGroup" | "elasticloadbalancing:RegisterTargets" => {
                    s.arns("elasticloadbalancing", &format!("targetgroup/{tg}/*"))
                }
                _ => {
                    let mut r = s.arns("elasticloadbalancing", &format!("loadbalancer/app/{lb}/*"));
                    r.extend(s.arns("elasticloadbalancing", &format!("targetgroup/{tg}/*")));
                    r
                }
            };
            vec![grant(&a, res, Value::Null)]
        }
        "wafv2:AssociateWebACL" => {
            let mut res = s.arns("wafv2", &format!("regional/webacl/{}/*", s.name_or_any("web_acl")));
            res.extend(s.arns("elasticloadbalancing", "loadbalancer/app/*"));
            vec![grant(&a, res, Value::Null)]
        }
        _ if iam.starts_with("autoscaling:") => {
            let name = s.known("name").or_else(|| s.known("asg")).unwrap_or_else(|| "*".into());
            vec![grant(
                &a,
                s.arns("autoscaling", &format!("autoScalingGroup:*:autoScalingGroupName/{name}")),
                Value::Null,
            )]
        }
        "route53:ChangeResourceRecordSets" => {
            let cond = match s.known("record") {
                Some(r) => json!({ "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [r.trim_end_matches('.').to_ascii_lowercase()]
                } }),
                None => Value::Null,
            };
            vec![grant(&a, vec!["arn:aws:route53:::hostedzone/*".into()], cond)]
        }
        "route53:CreateHealthCheck" => vec![grant(&a, vec!["*".into()], Value::Null)],
        "route53-recovery-cluster:UpdateRoutingControlStates" => {
            // the routing controls the step sets (and the safety rules it overrides), when known before the run
            let list = |k: &str| -> Option<Vec<String>> {
                match s.p.get(k) {
                    None => Some(Vec::new()),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| v.as_str().filter(|x| !x.contains('<')).map(str::to_string))
                        .collect::<Option<Vec<_>>>(),
                    Some(_) => None,
                }
            };
            let mut res = match (list("on"), list("off")) {
                (Some(mut on), Some(off)) if !(on.is_empty() && off.is_empty()) => {
                    on.extend(off);
                    on
                }
                _ => vec![format!("arn:aws:route53-recovery-control::{acct}:controlpanel/*/routingcontrol/*")],
            };
            match list("override_safety_rules") {
                Some(rules) => res.extend(rules),
                None => res.push(format!("arn:aws:route53-recovery-control::{acct}:controlpanel/*/safetyrule/*")),
            }
            vec![grant(&a, res, Value::Null)]
        }
        "backup:StartRestoreJob" => vec![grant(&a, s.arns("backup", "recovery-point:*"), Value::Null)],
        "iam:PassRole" => {
            let (service, role) = match step_action {
                "backup.restore_rds" => ("backup.amazonaws.com", s.known("iam_role")),
                _ => ("ec2.amazonaws.com", None),
            };
            let role = match role {
                Some(r) if r.starts_with("arn:") => r,
                Some(r) => format!("arn:aws:iam::{acct}:role/{r}"),
                None => format!("arn:aws:iam::{acct}:role/*"),
            };
            vec![grant(&a, vec![role], json!({ "StringEquals": { "iam:PassedToService": service } }))]
        }
        _ if iam.starts_with("dynamodb:") => {
            let t = s.name_or_any("table");
            let mut res = s.arns("dynamodb", &format!("table/{t}"));
            if iam == "dynamodb:ImportTable" || iam == "dynamodb:DescribeImport" {
                res.extend(s.arns("dynamodb", &format!("table/{t}/import/*")));
            }
            vec![grant(&a, res, Value::Null)]
        }
        "s3:GetObject" => {
            let (b, pre) = (s.name_or_any("bucket"), s.known("prefix").unwrap_or_default());
            vec![grant(&a, vec![format!("arn:aws:s3:::{b}/{pre}*")], Value::Null)]
        }
        _ if iam.starts_with("logs:") => vec![grant(&a, s.arns("logs", "log-group:/aws-dynamodb/*"), Value::Null)],
        _ => vec![grant(&a, s.arns(iam.split(':').next().unwrap_or("*"), "*"), Value::Null)],
    }
}

/// The EC2 create calls whose tagging (`ec2:CreateTags` with `ec2:CreateAction`) a step needs.
fn create_actions(step_action: &str) -> &'static [&'static str] {
    match step_action {
        "ebs.copy_snapshot" => &["CopySnapshot"],
        "ebs.create_volume" | "ebs.swap_volume" => &["CreateVolume"],
        "ebs.restore_set" => &["CopySnapshot", "CreateVolume"],
        "ec2.copy_image" => &["CopyImage"],
        "nat.ensure" => &["AllocateAddress", "CreateNatGateway", "CreateSecurityGroup"],
        _ => &[],
    }
}

/// The policy document.
pub fn policy(rb: &Runbook, registry: &Registry) -> Value {
    let account = rb.target.account.clone().unwrap_or_else(|| "*".into());
    let both = vec![rb.target.primary.clone(), rb.target.secondary.clone()];
    let mut reads: BTreeSet<String> = BTreeSet::new();
    let mut global_reads: BTreeSet<String> = BTreeSet::new();
    let mut grants: Vec<Grant> = Vec::new();
    let mut kms_regions: BTreeSet<String> = BTreeSet::new();
    let mut kms_actions: BTreeSet<String> = BTreeSet::new();
    let mut tag_regions: BTreeSet<String> = BTreeSet::new();
    let mut tag_creates: BTreeSet<String> = BTreeSet::new();
    let mut s3_list: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, step) in rb.steps.iter().enumerate() {
        let Some(action) = registry.get(&step.action) else { continue };
        let iam = action.spec().iam;
        if iam.is_empty() {
            continue;
        }
        let p = crate::runbook::interp::planned_with(rb, i);
        let mut sc =
            StepScope { account: account.clone(), runbook: &rb.meta.name, regions: Vec::new(), sources: Vec::new(), p };
        let default_region = if step.action == "rds.restore_pitr" { &rb.target.primary } else { &rb.target.secondary };
        sc.regions = match sc.p.get("region") {
            None => vec![default_region.clone()],
            Some(_) => sc.known("region").map_or_else(|| both.clone(), |r| vec![r]),
        };
        sc.sources = match sc.p.get("source_region") {
            None => vec![rb.target.primary.clone()],
            Some(_) => sc.known("source_region").map_or_else(|| both.clone(), |r| vec![r]),
        };
        sc.sources.retain(|r| !sc.regions.contains(r));
        for &a in iam {
            let service = a.split(':').next().unwrap_or(a);
            if a == "s3:ListBucket" {
                if let Some(b) = sc.known("bucket") {
                    s3_list.entry(b).or_default().insert(sc.known("prefix").unwrap_or_default());
                }
                continue;
            }
            if service == "kms" {
                kms_actions.insert(a.to_string());
                kms_regions.extend(sc.regions.iter().cloned());
                kms_regions.extend(sc.sources.iter().cloned());
                continue;
            }
            if is_read(a) {
                if global(service) {
                    global_reads.insert(a.to_string())
                } else {
                    reads.insert(a.to_string())
                };
                continue;
            }
            if a == "ec2:CreateTags" {
                tag_regions.extend(sc.regions.iter().cloned());
                tag_creates.extend(create_actions(&step.action).iter().map(|c| (*c).to_string()));
                continue;
            }
            grants.extend(scoped(a, &step.action, &sc));
        }
    }
    if reads.is_empty() && grants.is_empty() && global_reads.is_empty() && kms_regions.is_empty() && s3_list.is_empty()
    {
        return json!({ "Version": "2012-10-17", "Statement": [] });
    }
    global_reads.insert("sts:GetCallerIdentity".into());
    let mut out: Vec<Grant> = Vec::new();
    if !reads.is_empty() {
        out.push(Grant {
            label: Some("Read"),
            actions: reads.into_iter().collect(),
            resources: vec!["*".into()],
            condition: json!({ "StringEquals": { "aws:RequestedRegion": both } }),
        });
    }
    out.push(Grant {
        label: Some("GlobalRead"),
        actions: global_reads.into_iter().collect(),
        resources: vec!["*".into()],
        condition: Value::Null,
    });
    for (bucket, prefixes) in s3_list {
        let pre: Vec<String> = prefixes.into_iter().map(|p| format!("{p}*")).collect();
        out.push(Grant {
            label: None,
            actions: vec!["s3:ListBucket".into()],
            resources: vec![format!("arn:aws:s3:::{bucket}")],
            condition: json!({ "StringLike": { "s3:prefix": pre } }),
        });
    }
    if !kms_regions.is_empty() {
        let keys: Vec<String> = kms_regions.iter().map(|r| format!("arn:aws:kms:{r}:{account}:key/*")).collect();
        let via: Vec<String> = kms_regions
            .iter()
            .flat_map(|r| [format!("ec2.{r}.amazonaws.com"), format!("rds.{r}.amazonaws.com")])
            .collect();
        let grants_for_aws = kms_actions.remove("kms:CreateGrant");
        if grants_for_aws {
            // encrypted copies and restores under a customer-managed key (AWS's EBS/RDS encryption docs)
            kms_actions.insert("kms:Decrypt".into());
            kms_actions.insert("kms:GenerateDataKeyWithoutPlaintext".into());
        }
        if !kms_actions.is_empty() {
            out.push(Grant {
                label: None,
                actions: kms_actions.into_iter().collect(),
                resources: keys.clone(),
                condition: json!({ "StringEquals": { "kms:ViaService": via } }),
            });
        }
        if grants_for_aws {
            out.push(Grant {
                label: None,
                actions: vec!["kms:CreateGrant".into()],
                resources: keys,
                condition: json!({ "StringEquals": { "kms:ViaService": via }, "Bool": { "kms:GrantIsForAWSResource": "true" } }),
            });
        }
    }
    if !tag_regions.is_empty() {
        // tags only while creating what the runbook's steps create
        let mut res: Vec<String> = tag_regions.iter().map(|r| format!("arn:aws:ec2:{r}:{account}:*/*")).collect();
        res.extend(
            tag_regions
                .iter()
                .flat_map(|r| [format!("arn:aws:ec2:{r}::snapshot/*"), format!("arn:aws:ec2:{r}::image/*")]),
        );
        let cond = if tag_creates.is_empty() {
            Value::Null
        } else {
            json!({ "StringEquals": { "ec2:CreateAction": tag_creates.into_iter().collect::<Vec<_>>() } })
        };
        grants.push(Grant { label: None, actions: vec!["ec2:CreateTags".into()], resources: res, condition: cond });
    }
    // merge the scoped grants with the same resources and condition
    let mut merged: BTreeMap<(Vec<String>, String), BTreeSet<String>> = BTreeMap::new();
    for g in grants {
        let mut res = g.resources;
        res.sort();
        res.dedup();
        merged.entry((res, g.condition.to_string())).or_default().extend(g.actions);
    }
    for ((resources, cond), actions) in merged {
        out.push(Grant {
            label: None,
            actions: actions.into_iter().collect(),
            resources,
            condition: serde_json::from_str(&cond).unwrap_or(Value::Null),
        });
    }
    let base = "Drconsole".to_string() + &capitalize_words(&rb.meta.name);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let statements: Vec<Value> = out
        .into_iter()
        .map(|g| {
            let svc = g
                .label
                .map(str::to_string)
                .unwrap_or_else(|| g.actions.first().and_then(|a| a.split(':').next()).unwrap_or("x").to_string());
            let n = counts.entry(svc.clone()).or_insert(0);
            *n += 1;
            let sid = format!("{base}{}{}", capitalize_words(&svc), n);
            let mut st = json!({ "Sid": sid, "Effect": "Allow", "Action": g.actions, "Resource": g.resources });
            if !g.condition.is_null() {
                st["Condition"] = g.condition;
            }
            st
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn capitalize_words(s: &str) -> String {
    s.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

/// Whether `policy` allows the IAM action `action` (`service:Operation`) in `region` by some statement, ignoring
/// resource ARNs (the caller checks those separately when it knows them): action names match exactly or by a
/// trailing `*`, and a statement limited by `aws:RequestedRegion` must list the region.
pub fn allows_action(policy: &Value, action: &str, region: &str) -> bool {
    let Some(sts) = policy["Statement"].as_array() else { return false };
    sts.iter().any(|st| {
        let names = st["Action"].as_array().cloned().unwrap_or_default();
        let named = names.iter().filter_map(Value::as_str).any(|a| match a.strip_suffix('*') {
            Some(pre) => action.starts_with(pre),
            None => a == action,
        });
        let regions = &st["Condition"]["StringEquals"]["aws:RequestedRegion"];
        let region_ok =
            region.is_empty() || regions.is_null() || regions.as_array().is_some_and(|r| r.iter().any(|x| x == region));
        let arn_region_ok = region.is_empty()
            || st["Resource"].as_array().is_some_and(|rs| {
                rs.iter().filter_map(Value::as_str).any(|r| {
                    let parts: Vec<&str> = r.split(':').collect();
                    r == "*" || parts.len() < 4 || parts[3].is_empty() || parts[3] == region || parts[3] == "*"
                })
            });
        named && region_ok && arn_region_ok
    })
}

/// The IAM action that allows an API call (`service`, `Operation`, as the simulator and the fault proxy name
/// them): mostly the same name; `elbv2` is `elasticloadbalancing`, S3's ListObjectsV2 is `s3:ListBucket`.
pub fn iam_action_of(service: &str, operation: &str) -> String {
    match (service, operation) {
        ("elbv2", op) => format!("elasticloadbalancing:{op}"),
        ("s3", "ListObjectsV2" | "ListObjects") => "s3:ListBucket".into(),
        (svc, op) => format!("{svc}:{op}"),
    }
}
