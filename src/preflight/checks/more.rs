//! The checks of resources the cloud layer reads with ACM, Service Quotas and IAM, and of security groups and DB
//! subnet groups: the listener's certificate, the groups a step names, quotas an API can tell (NAT gateways per AZ,
//! application load balancers, on-demand vCPUs), and the runbook's least-privilege policy simulated for the
//! caller. Like the others, each is one finding (or one "not checked" with why), through the read-only view only.

use std::collections::BTreeMap;

use super::{Checks, Status};
use crate::cloud::{Filter, Subnet};

/// Service Quotas codes (AWS's documented quota codes).
pub(crate) const NAT_PER_AZ: (&str, &str) = ("vpc", "L-FE5A380F");
pub(crate) const ON_DEMAND_STANDARD_VCPUS: (&str, &str) = ("ec2", "L-1216C47A");

/// Instance families counted under "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances".
fn standard_family(instance_type: &str) -> bool {
    instance_type.chars().next().is_some_and(|c| "acdhimrtz".contains(c))
}

/// The IAM principal a policy simulation takes for a caller: an assumed role's session is simulated as its role.
pub(crate) fn principal_of(caller_arn: &str) -> String {
    // arn:aws:sts::123456789012:assumed-role/ROLE/SESSION → arn:aws:iam::123456789012:role/ROLE
    let parts: Vec<&str> = caller_arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[2] == "sts" {
        let mut rest = parts[5].split('/');
        if rest.next() == Some("assumed-role")
            && let Some(role) = rest.next()
        {
            return format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]);
        }
    }
    caller_arn.to_string()
}

/// Every action the policy document grants, sorted and once each.
pub(crate) fn policy_actions(policy: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|st| st["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Checks<'_> {
    /// The listener's certificate: in the load balancer's region (from its ARN), then described there: it exists,
    /// is ISSUED, and covers the names the runbook moves (its Route 53 records).
    pub(super) async fn certificate(&mut self, region: &str, arn: &str) {
        let key = format!("cert:{arn}");
        let arn_region = arn.split(':').nth(3).unwrap_or_default();
        let todo = "request or import the certificate in the secondary region and set `certificate_arn` to it";
        if arn_region != region {
            self.add(
                &key,
                Status::Fail,
                format!("ACM certificate {arn} is in {region}"),
                format!("the ARN is in `{arn_region}`: a load balancer in {region} cannot use it"),
                todo,
            );
            return;
        }
        self.add(
            &key,
            Status::Ok,
            format!("ACM certificate {arn} is in {region}"),
            format!("the ARN is in {region}"),
            "",
        );
        let names = self.records.clone();
        let check = if names.is_empty() {
            format!("ACM certificate {arn} exists in {region} and is issued")
        } else {
            format!("ACM certificate {arn} exists in {region}, is issued and covers {}", names.join(", "))
        };
        let key = format!("acm:{arn}");
        match self.cloud().acm.describe_certificate(region, arn).await {
            Ok(None) => self.add(&key, Status::Fail, check, "no such certificate".into(), todo),
            Ok(Some(c)) => {
                let uncovered: Vec<&String> = names.iter().filter(|n| !c.covers(n)).collect();
                let expired = c.not_after.is_some_and(|t| t <= self.now);
                let (s, found) = if c.status != "ISSUED" {
                    (Status::Fail, format!("it is {} (a listener needs an issued certificate)", c.status))
                } else if expired {
                    (Status::Fail, "it has expired".to_string())
                } else if !uncovered.is_empty() {
                    let list: Vec<&str> = uncovered.iter().map(|s| s.as_str()).collect();
                    (Status::Fail, format!("it covers {} but not {}", c.names.join(", "), list.join(", ")))
                } else {
                    let until = c.not_after.map(|t| format!(", valid until {}", super::stamp(t))).unwrap_or_default();
                    (Status::Ok, format!("ISSUED for {}{until}", c.names.join(", ")))
                };
                self.add(
                    &key,
                    s,
                    check,
                    found,
                    "issue (validate) a certificate in the secondary region for the names customers use",
                );
            }
            Err(e) => self.add(&key, Status::Fail, check, e.to_string(), "check acm:DescribeCertificate access"),
        }
    }

    /// The VPC id of the VPC tagged `Name=name`, if the region has it.
    pub(super) async fn vpc_id(&self, region: &str, name: &str) -> Option<String> {
        self.cloud().ec2.describe_vpcs(region, &Filter::tag("Name", name)).await.ok()?.first().map(|v| v.id.clone())
    }

    /// Security groups a step names (or its launch template uses) exist in the region and, when `within` names
    /// the VPC the instances, load balancer or database will be in (`(what, its id if found)`), are in that VPC.
    pub(super) async fn security_groups(
        &mut self,
        region: &str,
        groups: &[String],
        within: Option<(String, Option<String>)>,
    ) {
        if groups.is_empty() {
            return;
        }
        let what = within.as_ref().map(|(w, _)| format!(" in {w}")).unwrap_or_default();
        let key = format!("sg:{region}:{}:{what}", groups.join(","));
        let check = format!("security groups {} in {region}{what}", groups.join(", "));
        let found = match self.cloud().ec2.describe_security_groups(region, groups).await {
            Ok(v) => v,
            Err(e) => {
                self.add(&key, Status::Fail, check, e.to_string(), "check ec2:DescribeSecurityGroups access");
                return;
            }
        };
        let missing: Vec<&String> =
            groups.iter().filter(|g| !found.iter().any(|f| f.id == **g || f.name == **g)).collect();
        let elsewhere: Vec<String> = match within.as_ref().and_then(|(_, id)| id.as_ref()) {
            Some(id) => {
                found.iter().filter(|f| f.vpc_id != *id).map(|f| format!("{} (in {})", f.id, f.vpc_id)).collect()
            }
            None => Vec::new(),
        };
        let (s, text) = if !missing.is_empty() {
            let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            (Status::Fail, format!("not found: {}", m.join(", ")))
        } else if !elsewhere.is_empty() {
            (Status::Fail, format!("in another VPC: {}", elsewhere.join(", ")))
        } else {
            let mut t = found.iter().map(|f| format!("{} ({})", f.id, f.name)).collect::<Vec<_>>().join(", ");
            if let Some((w, None)) = &within {
                t.push_str(&format!("; their VPC not compared: {w} was not found"));
            }
            (Status::Ok, t)
        };
        self.add(
            &key,
            s,
            check,
            text,
            "create the security groups in the secondary region's VPC (same rules as the primary's) and name their ids",
        );
    }

    /// A DB subnet group exists and spans at least two AZs; returns its VPC id (for the security groups).
    pub(super) async fn subnet_group(&mut self, region: &str, name: &str) -> Option<String> {
        let key = format!("dbsubnet:{region}:{name}");
        let check = format!("DB subnet group {name} in {region} (at least two AZs)");
        let todo = "create the DB subnet group in the secondary region over private subnets in two or more AZs";
        match self.cloud().rds.describe_db_subnet_group(region, name).await {
            Ok(Some(g)) => {
                let mut azs: Vec<&str> = g.subnets.iter().map(|(_, az)| az.as_str()).collect();
                azs.sort();
                azs.dedup();
                let s = if azs.len() >= 2 { Status::Ok } else { Status::Fail };
                let found =
                    format!("{} subnet(s) of {} in {} AZ(s): {}", g.subnets.len(), g.vpc_id, azs.len(), azs.join(", "));
                self.add(&key, s, check, found, todo);
                Some(g.vpc_id)
            }
            Ok(None) => {
                self.add(&key, Status::Fail, check, "not found".into(), todo);
                None
            }
            Err(e) => {
                self.add(&key, Status::Fail, check, e.to_string(), "check rds:DescribeDBSubnetGroups access");
                None
            }
        }
    }

    /// The launch template's security groups are in the VPC the auto scaling group launches into.
    pub(super) async fn launch_template_groups(&mut self, region: &str, lt: &str, vpc: &str) {
        let Ok(Some(t)) = self.cloud().ec2.describe_launch_template(region, lt).await else { return };
        if t.security_groups.is_empty() {
            return;
        }
        let id = self.vpc_id(region, vpc).await;
        self.security_groups(region, &t.security_groups, Some((format!("VPC {vpc}"), id))).await;
    }

    /// NAT gateways per AZ (Service Quotas): where nat.ensure would create one (no live NAT gateway of the VPC
    /// to reuse), the AZ must have room under the quota.
    pub(super) async fn nat_quota(&mut self, region: &str, vpc: &str, per_az: bool) {
        let key = format!("quota:nat:{region}:{vpc}");
        let check = format!("NAT gateways per AZ in {region} (Service Quotas {})", NAT_PER_AZ.1);
        let c = self.cloud().clone();
        let (Some(vpc_id), Ok(subnets), Ok(nats)) = (
            self.vpc_id(region, vpc).await,
            c.ec2.describe_subnets(region, &Filter::default()).await,
            c.ec2.describe_nat_gateways(region, &Filter::default()).await,
        ) else {
            // the VPC's own check says what is missing
            return;
        };
        let live = |s: &str| s == "available" || s == "pending";
        let az_of = |id: &str| subnets.iter().find(|s| s.id == id).map(|s| s.az.clone());
        let mine: Vec<&Subnet> = subnets.iter().filter(|s| s.vpc_id == vpc_id).collect();
        let mut zones: Vec<String> = if per_az {
            mine.iter().filter(|s| !s.public).map(|s| s.az.clone()).collect()
        } else {
            mine.iter().find(|s| s.public).map(|s| s.az.clone()).into_iter().collect()
        };
        zones.sort();
        zones.dedup();
        let vpc_nats: Vec<String> = nats
            .iter()
            .filter(|n| live(&n.state) && mine.iter().any(|s| s.id == n.subnet_id))
            .filter_map(|n| az_of(&n.subnet_id))
            .collect();
        let needed: Vec<&String> =
            zones.iter().filter(|z| if per_az { !vpc_nats.contains(z) } else { vpc_nats.is_empty() }).collect();
        if needed.is_empty() {
            self.add(&key, Status::Ok, check, format!("{vpc} has its NAT gateway(s) already: none to create"), "");
            return;
        }
        let Some(quota) = self.quota(&key, &check, region, NAT_PER_AZ).await else { return };
        let mut per: BTreeMap<String, u32> = BTreeMap::new();
        for n in nats.iter().filter(|n| live(&n.state)) {
            if let Some(az) = az_of(&n.subnet_id) {
                *per.entry(az).or_insert(0) += 1;
            }
        }
        let full: Vec<String> = needed
            .iter()
            .filter(|z| f64::from(per.get(**z).copied().unwrap_or(0)) >= quota)
            .map(|z| (*z).clone())
            .collect();
        let uses: Vec<String> =
            needed.iter().map(|z| format!("{z}: {} of {quota}", per.get(*z).copied().unwrap_or(0))).collect();
        let s = if full.is_empty() { Status::Ok } else { Status::Fail };
        self.add(
            &key,
            s,
            check,
            format!("{} in use", uses.join(", ")),
            "delete unused NAT gateways in that AZ or raise the quota (Service Quotas: NAT gateways per Availability Zone)",
        );
    }

    /// Application load balancers per region (elbv2 DescribeAccountLimits), when elb.ensure would create one.
    pub(super) async fn alb_quota(&mut self, region: &str, name: &str) {
        let key = format!("quota:alb:{region}");
        let check = format!("application load balancers in {region} (DescribeAccountLimits)");
        let c = self.cloud().clone();
        if let Ok(Some(lb)) = c.elb.describe_load_balancer(region, name).await {
            self.add(&key, Status::Ok, check, format!("{} exists already: none to create", lb.name), "");
            return;
        }
        match (
            c.limits.elb_limit(region, "application-load-balancers").await,
            c.limits.load_balancers_in_use(region, "application").await,
        ) {
            (Ok(Some(limit)), Ok(used)) => {
                let s = if used < limit { Status::Ok } else { Status::Fail };
                self.add(
                    &key,
                    s,
                    check,
                    format!("{used} of {limit} in use"),
                    "delete unused load balancers or raise the quota (Service Quotas: Application Load Balancers per Region)",
                );
            }
            (Ok(None), _) => self.not_checked(&key, check, "not checked: DescribeAccountLimits does not list it"),
            (Err(e), _) | (_, Err(e)) => {
                self.add(&key, Status::Fail, check, e.to_string(), "check that the region answers")
            }
        }
    }

    /// A Service Quotas value (`(service, quota code)`), or `None` after listing the check as not checked: the
    /// quota is unknown in the region, or Service Quotas did not answer.
    async fn quota(&mut self, key: &str, check: &str, region: &str, (service, code): (&str, &str)) -> Option<f64> {
        let c = self.cloud().clone();
        let why = match c.limits.service_quota(region, service, code).await {
            Ok(Some(q)) => return Some(q),
            Ok(None) => "not checked: Service Quotas does not know this quota here".to_string(),
            Err(e) => format!("not checked: Service Quotas did not answer ({})", e.code),
        };
        self.not_checked(key, check.to_string(), &why);
        None
    }

    /// On-demand standard vCPUs (Service Quotas L-1216C47A): the region's running standard instances plus what the
    /// auto scaling group may launch (its max × the launch template's instance type) must fit.
    pub(super) async fn vcpu_quota(&mut self, region: &str, lt: &str, max: Option<u32>) {
        let key = format!("quota:vcpu:{region}");
        let check = format!("on-demand standard vCPUs in {region} (Service Quotas {})", ON_DEMAND_STANDARD_VCPUS.1);
        let c = self.cloud().clone();
        let Ok(Some(t)) = c.ec2.describe_launch_template(region, lt).await else { return };
        let Some(max) = max else { return };
        if t.instance_type.is_empty() {
            self.not_checked(&key, check, "not checked: the launch template names no instance type");
            return;
        }
        let Some(quota) = self.quota(&key, &check, region, ON_DEMAND_STANDARD_VCPUS).await else { return };
        let mut vcpus: BTreeMap<String, Option<u32>> = BTreeMap::new();
        let running = match c.ec2.describe_instances(region, &Filter::default()).await {
            Ok(v) => v,
            Err(e) => {
                self.add(&key, Status::Fail, check, e.to_string(), "check that the region answers");
                return;
            }
        };
        let mut types: Vec<String> = running
            .iter()
            .filter(|i| (i.state == "running" || i.state == "pending") && standard_family(&i.instance_type))
            .map(|i| i.instance_type.clone())
            .collect();
        types.push(t.instance_type.clone());
        for ty in &types {
            if !vcpus.contains_key(ty) {
                let n = c.ec2.instance_type_vcpus(region, ty).await.ok().flatten();
                vcpus.insert(ty.clone(), n);
            }
        }
        let Some(per) = vcpus.get(&t.instance_type).copied().flatten() else {
            self.not_checked(
                &key,
                check,
                &format!("not checked: EC2 does not describe instance type {}", t.instance_type),
            );
            return;
        };
        let used: u32 = types[..types.len() - 1].iter().filter_map(|ty| vcpus.get(ty).copied().flatten()).sum();
        let need = max * per;
        let s = if f64::from(used + need) <= quota { Status::Ok } else { Status::Fail };
        self.add(
            &key,
            s,
            check,
            format!("{used} in use + {need} for the group (max {max} × {per} of {}) against {quota}", t.instance_type),
            "raise the quota (Service Quotas: Running On-Demand Standard instances) before the failover",
        );
    }

    /// The runbook's least-privilege policy (`drconsole iam-policy`) simulated for the caller.
    pub(super) async fn permissions(&mut self) {
        let key = "iam";
        let Some(caller) = self.identity.clone() else { return };
        let policy = crate::iam::policy(self.rb, self.registry);
        let actions = policy_actions(&policy);
        let principal = principal_of(&caller);
        let check = format!(
            "the caller {principal} may make every call of the runbook ({} actions of `drconsole iam-policy`)",
            actions.len()
        );
        if actions.is_empty() {
            self.add(key, Status::Ok, check, "the runbook makes no AWS call".into(), "");
            return;
        }
        let region = self.rb.target.secondary.clone();
        match self.cloud().iam.simulate_principal_policy(&principal, &actions, &region).await {
            Ok(decisions) => {
                let denied: Vec<String> = decisions
                    .iter()
                    .filter(|d| d.decision != "allowed")
                    .map(|d| format!("{} ({})", d.action, d.decision))
                    .collect();
                let unanswered: Vec<&String> =
                    actions.iter().filter(|a| !decisions.iter().any(|d| d.action.eq_ignore_ascii_case(a))).collect();
                if !denied.is_empty() {
                    self.add(
                        key,
                        Status::Fail,
                        check,
                        format!("denied: {}", denied.join(", ")),
                        "grant the caller the runbook's policy (`drconsole iam-policy RUNBOOK`), or run as a role that has it",
                    );
                } else if !unanswered.is_empty() {
                    let u: Vec<&str> = unanswered.iter().map(|s| s.as_str()).collect();
                    self.not_checked(
                        key,
                        check,
                        &format!("not checked: the simulation did not answer for {}", u.join(", ")),
                    );
                } else {
                    self.add(key, Status::Ok, check, format!("all {} allowed", actions.len()), "");
                }
            }
            Err(e) if e.is_refusal() => self.not_checked(key, check, &format!("not checked: {}", e.message)),
            Err(e) => {
                let why = if e.code.contains("AccessDenied") {
                    format!("not checked: the caller may not simulate its own policies ({}: {})", e.code, e.message)
                } else {
                    format!("not checked: the API is not available ({}: {})", e.code, e.message)
                };
                self.not_checked(key, check, &why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_role_session_is_simulated_as_its_role() {
        assert_eq!(
            principal_of("arn:aws:sts::123456789012:assumed-role/DrOperator/alice"),
            "arn:aws:iam::123456789012:role/DrOperator"
        );
        assert_eq!(principal_of("arn:aws:iam::123456789012:user/bob"), "arn:aws:iam::123456789012:user/bob");
    }

    #[test]
    fn the_standard_families_are_the_quota_s() {
        assert!(standard_family("m5.large") && standard_family("t3.micro") && standard_family("r6g.xlarge"));
        assert!(!standard_family("p4d.24xlarge") && !standard_family("g5.xlarge") && !standard_family("x2idn.large"));
    }

    #[test]
    fn policy_actions_are_every_granted_action_once() {
        let p = serde_json::json!({"Statement": [
            {"Action": ["ec2:DescribeVpcs", "ec2:CreateNatGateway"]},
            {"Action": ["ec2:CreateNatGateway", "kms:Decrypt"]}
        ]});
        assert_eq!(policy_actions(&p), vec!["ec2:CreateNatGateway", "ec2:DescribeVpcs", "kms:Decrypt"]);
    }
}
