//! The customer's world, built in moto with plain AWS SDK clients (not drconsole's code), and an independent view
//! of it for the checks: five applications in the primary region (VPC, subnets, route tables, RDS PostgreSQL with
//! snapshots, EC2 + EBS with snapshots, AMIs, launch templates, an ALB behind Route 53, KMS keys, secrets) and
//! the secondary region as it stands before a regional failover (network without NAT, cross-region copies of the
//! snapshots and AMIs, launch templates, a WAF web ACL, a replicated secret).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::support::moto::{fake_sigv4_authorization, http_request};

pub const PRIMARY: &str = "us-east-1";
pub const SECONDARY: &str = "us-west-2";
pub const ZONE: &str = "example-fin.com.";

/// One of the customer's applications, named as in runbooks/*.toml.
#[derive(Debug, Clone)]
pub struct App {
    /// `cross-sell` (the runbook's `app`)
    pub name: &'static str,
    /// The runbook file under runbooks/.
    pub runbook: &'static str,
    /// RDS PostgreSQL instance in the primary region.
    pub db: &'static str,
    /// Data volume size of its EC2 instance.
    pub data_gib: i32,
}

pub const APPS: &[App] = &[
    App { name: "cross-sell", runbook: "cross-sell.toml", db: "crosssell-prod", data_gib: 200 },
    App { name: "inventory-management", runbook: "inventory-management.toml", db: "inventory-prod", data_gib: 100 },
    App { name: "agent-payment", runbook: "agent-payment.toml", db: "agentpay-prod", data_gib: 100 },
    App { name: "customer-assistance", runbook: "customer-assistance.toml", db: "custassist-prod", data_gib: 50 },
    App { name: "vendor-assistance", runbook: "vendor-assistance.toml", db: "vendorassist-prod", data_gib: 50 },
];

/// The secondary-region network of one app (VPC `<app>-dr-vpc`).
#[derive(Debug, Clone, Default)]
pub struct AppNet {
    pub vpc: String,
    /// public subnets (a, b), MapPublicIpOnLaunch, routed to an internet gateway
    pub public: Vec<String>,
    /// private subnets (a, b)
    pub private: Vec<String>,
    /// route tables of the private subnets (no default route before the failover)
    pub private_rts: Vec<String>,
    pub sg: String,
}

/// What the fixture made, for the runbook variables and the checks.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub account: String,
    pub primary_vpc: String,
    /// Per app: its network in the secondary region.
    pub net: BTreeMap<String, AppNet>,
    pub kms_primary: String,
    pub kms_secondary: String,
    pub zone_id: String,
    /// Per app: the ACM certificate in the secondary region (for the HTTPS listener).
    pub certificate: BTreeMap<String, String>,
    /// Per app: primary ALB DNS name (what Route 53 points at before the failover).
    pub primary_alb_dns: BTreeMap<String, String>,
    /// Per app: the data-volume snapshot copied to the secondary region.
    pub dr_volume_snapshot: BTreeMap<String, String>,
    /// Per app: the DB snapshot copied to the secondary region.
    pub dr_db_snapshot: BTreeMap<String, String>,
}

pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// Plain SDK clients for one region.
pub struct Sdk {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub waf: aws_sdk_wafv2::Client,
    pub r53: aws_sdk_route53::Client,
    pub sm: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Sdk {
    pub async fn new(endpoint: &str, region: &str) -> Sdk {
        let c = sdk_config(endpoint, region).await;
        Sdk {
            ec2: aws_sdk_ec2::Client::new(&c),
            rds: aws_sdk_rds::Client::new(&c),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
            asg: aws_sdk_autoscaling::Client::new(&c),
            waf: aws_sdk_wafv2::Client::new(&c),
            r53: aws_sdk_route53::Client::new(&c),
            sm: aws_sdk_secretsmanager::Client::new(&c),
            sts: aws_sdk_sts::Client::new(&c),
        }
    }
}

pub fn tags(kind: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut b = TagSpecification::builder().resource_type(kind);
    for (k, v) in pairs {
        b = b.tags(Tag::builder().key(*k).value(*v).build());
    }
    b.build()
}

/// A hand-made awsJson call (KMS and ACM are not among drconsole's SDK crates).
fn aws_json(endpoint: &str, region: &str, service: &str, target: &str, body: &str) -> serde_json::Value {
    let auth = fake_sigv4_authorization(service, region);
    let headers =
        [("Authorization", auth.as_str()), ("X-Amz-Target", target), ("Content-Type", "application/x-amz-json-1.1")];
    let resp = http_request(endpoint, "POST", "/", &headers, body.as_bytes()).expect(target);
    assert_eq!(resp.status, 200, "{target}: {}", resp.body);
    serde_json::from_str(&resp.body).unwrap_or(serde_json::Value::Null)
}

/// A KMS key with an alias; returns its ARN.
pub fn create_kms_key(endpoint: &str, region: &str, alias: &str) -> String {
    let v = aws_json(endpoint, region, "kms", "TrentService.CreateKey", &format!(r#"{{"Description":"{alias}"}}"#));
    let arn = v["KeyMetadata"]["Arn"].as_str().expect("key arn").to_string();
    aws_json(
        endpoint,
        region,
        "kms",
        "TrentService.CreateAlias",
        &format!(r#"{{"AliasName":"alias/{alias}","TargetKeyId":"{arn}"}}"#),
    );
    arn
}

/// An ACM certificate for `domain`; returns its ARN.
pub fn create_certificate(endpoint: &str, region: &str, domain: &str) -> String {
    let v = aws_json(
        endpoint,
        region,
        "acm",
        "CertificateManager.RequestCertificate",
        &format!(r#"{{"DomainName":"{domain}","ValidationMethod":"DNS"}}"#),
    );
    v["CertificateArn"].as_str().expect("certificate arn").to_string()
}

/// A VPC made by [`network`]: two public subnets (a, b) on one route table to an internet gateway, two private
/// subnets each with its own route table (no default route), a security group.
pub struct Net {
    pub vpc: String,
    pub public: Vec<String>,
    pub private: Vec<String>,
    pub private_rts: Vec<String>,
    pub sg: String,
}

pub async fn network(ec2: &aws_sdk_ec2::Client, region: &str, cidr16: &str, name: &str) -> Net {
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("{cidr16}.0.0/16"))
        .tag_specifications(tags(ResourceType::Vpc, &[("Name", name)]))
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let igw =
        ec2.create_internet_gateway().send().await.unwrap().internet_gateway.unwrap().internet_gateway_id.unwrap();
    ec2.attach_internet_gateway().vpc_id(&vpc).internet_gateway_id(&igw).send().await.unwrap();
    let public_rt =
        ec2.create_route_table().vpc_id(&vpc).send().await.unwrap().route_table.unwrap().route_table_id.unwrap();
    ec2.create_route()
        .route_table_id(&public_rt)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let (mut public, mut private, mut private_rts) = (Vec::new(), Vec::new(), Vec::new());
    for (i, az) in ["a", "b"].iter().enumerate() {
        let p = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("{cidr16}.{}.0/24", i + 1))
            .availability_zone(format!("{region}{az}"))
            .tag_specifications(tags(ResourceType::Subnet, &[("Name", &format!("public-{az}")), ("tier", "public")]))
            .send()
            .await
            .unwrap()
            .subnet
            .unwrap()
            .subnet_id
            .unwrap();
        ec2.associate_route_table().route_table_id(&public_rt).subnet_id(&p).send().await.unwrap();
        ec2.modify_subnet_attribute()
            .subnet_id(&p)
            .map_public_ip_on_launch(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap();
        public.push(p);
        let q = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("{cidr16}.{}.0/24", i + 11))
            .availability_zone(format!("{region}{az}"))
            .tag_specifications(tags(ResourceType::Subnet, &[("Name", &format!("private-{az}")), ("tier", "private")]))
            .send()
            .await
            .unwrap()
            .subnet
            .unwrap()
            .subnet_id
            .unwrap();
        let rt = ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tags(
                ResourceType::RouteTable,
                &[("Name", &format!("private-{az}")), ("tier", "private")],
            ))
            .send()
            .await
            .unwrap()
            .route_table
            .unwrap()
            .route_table_id
            .unwrap();
        ec2.associate_route_table().route_table_id(&rt).subnet_id(&q).send().await.unwrap();
        private.push(q);
        private_rts.push(rt);
    }
    let sg = ec2
        .create_security_group()
        .group_name("app")
        .description("app tier")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    Net { vpc, public, private, private_rts, sg }
}

/// Builds the whole world. Takes a few seconds against moto.
pub async fn build(endpoint: &str) -> World {
    let p = Sdk::new(endpoint, PRIMARY).await;
    let s = Sdk::new(endpoint, SECONDARY).await;
    let mut w = World {
        account: p.sts.get_caller_identity().send().await.unwrap().account.unwrap(),
        kms_primary: create_kms_key(endpoint, PRIMARY, "prod-data"),
        kms_secondary: create_kms_key(endpoint, SECONDARY, "drconsole-dr"),
        ..World::default()
    };
    let pn = network(&p.ec2, PRIMARY, "10.0", "prod").await;
    w.primary_vpc = pn.vpc.clone();

    // Route 53: the public zone
    let zone = p
        .r53
        .create_hosted_zone()
        .name(ZONE)
        .caller_reference("fixture-zone")
        .send()
        .await
        .unwrap()
        .hosted_zone
        .unwrap();
    w.zone_id = zone.id.rsplit('/').next().unwrap().to_string();

    let base_ami = p
        .ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .image_id
        .unwrap();
    for (n, app) in APPS.iter().enumerate() {
        // the secondary region's network for the app, kept ready (no NAT gateway: it costs money idle)
        let sn = network(&s.ec2, SECONDARY, &format!("10.{}", 101 + n), &format!("{}-dr-vpc", app.name)).await;
        w.net.insert(
            app.name.into(),
            AppNet {
                vpc: sn.vpc.clone(),
                public: sn.public.clone(),
                private: sn.private.clone(),
                private_rts: sn.private_rts.clone(),
                sg: sn.sg.clone(),
            },
        );
        w.certificate
            .insert(app.name.into(), create_certificate(endpoint, SECONDARY, &format!("{}.example-fin.com", app.name)));

        // the DB master credentials, replicated to the secondary region
        p.sm.create_secret()
            .name(format!("prod/{}/db-master", app.name))
            .secret_string(r#"{"username":"dbadmin","password":"Sup3r-s3cret-pw"}"#)
            .add_replica_regions(aws_sdk_secretsmanager::types::ReplicaRegionType::builder().region(SECONDARY).build())
            .send()
            .await
            .unwrap();

        // the WAF web ACL waiting in the secondary region
        s.waf
            .create_web_acl()
            .name(format!("{}-dr-acl", app.name))
            .scope(aws_sdk_wafv2::types::Scope::Regional)
            .default_action(
                aws_sdk_wafv2::types::DefaultAction::builder()
                    .allow(aws_sdk_wafv2::types::AllowAction::builder().build())
                    .build(),
            )
            .visibility_config(
                aws_sdk_wafv2::types::VisibilityConfig::builder()
                    .sampled_requests_enabled(false)
                    .cloud_watch_metrics_enabled(false)
                    .metric_name(app.name.replace('-', ""))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        // EC2 instance with a data volume tagged app=<app>, hourly snapshots, the latest copied across
        let inst = p
            .ec2
            .run_instances()
            .image_id(&base_ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
            .min_count(1)
            .max_count(1)
            .subnet_id(&pn.private[0])
            .tag_specifications(tags(ResourceType::Instance, &[("Name", app.name), ("app", app.name)]))
            .send()
            .await
            .unwrap()
            .instances
            .unwrap()
            .remove(0);
        let inst_id = inst.instance_id.unwrap();
        let az = inst.placement.unwrap().availability_zone.unwrap();
        let vol = p
            .ec2
            .create_volume()
            .availability_zone(&az)
            .size(app.data_gib)
            .volume_type(aws_sdk_ec2::types::VolumeType::Gp3)
            .encrypted(true)
            .kms_key_id(&w.kms_primary)
            .tag_specifications(tags(
                ResourceType::Volume,
                &[("Name", &format!("{}-data", app.name)), ("app", app.name)],
            ))
            .send()
            .await
            .unwrap()
            .volume_id
            .unwrap();
        p.ec2.attach_volume().volume_id(&vol).instance_id(&inst_id).device("/dev/sdf").send().await.unwrap();
        let mut last_snap = String::new();
        for hour in 0..2 {
            last_snap = p
                .ec2
                .create_snapshot()
                .volume_id(&vol)
                .description(format!("{} hourly {hour}", app.name))
                .tag_specifications(tags(ResourceType::Snapshot, &[("app", app.name), ("backup", "hourly")]))
                .send()
                .await
                .unwrap()
                .snapshot_id
                .unwrap();
        }
        let copy = s
            .ec2
            .copy_snapshot()
            .source_region(PRIMARY)
            .source_snapshot_id(&last_snap)
            .encrypted(true)
            .kms_key_id(&w.kms_secondary)
            .description(format!("{} hourly, DR copy", app.name))
            .tag_specifications(tags(
                ResourceType::Snapshot,
                &[("app", app.name), ("backup", "dr-copy"), ("drconsole:source-volume", &vol)],
            ))
            .send()
            .await
            .unwrap()
            .snapshot_id
            .unwrap();
        w.dr_volume_snapshot.insert(app.name.into(), copy);

        // the app server's AMI (by name, as the runbooks know it); launch templates in both regions
        let ami = p
            .ec2
            .create_image()
            .instance_id(&inst_id)
            .name(format!("{}-web", app.name))
            .send()
            .await
            .unwrap()
            .image_id
            .unwrap();
        let templates = [
            (&p.ec2, format!("{}-web", app.name), ami.clone(), &pn.sg),
            // the DR template starts on a stock image; the failover gives it the copied AMI
            (&s.ec2, format!("{}-web-dr", app.name), base_ami.clone(), &sn.sg),
        ];
        for (c, name, image, sg) in templates {
            c.create_launch_template()
                .launch_template_name(name)
                .launch_template_data(
                    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                        .image_id(image)
                        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                        .security_group_ids(sg)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }

        // the primary ALB, its ASG, and the DNS name pointing at it
        let lb = p
            .elb
            .create_load_balancer()
            .name(format!("{}-alb", app.name))
            .subnets(&pn.public[0])
            .subnets(&pn.public[1])
            .send()
            .await
            .unwrap()
            .load_balancers
            .unwrap()
            .remove(0);
        let tg = p
            .elb
            .create_target_group()
            .name(format!("{}-tg", app.name))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&pn.vpc)
            .send()
            .await
            .unwrap()
            .target_groups
            .unwrap()
            .remove(0);
        p.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(format!("{}-asg", app.name))
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name(format!("{}-web", app.name))
                    .version("$Default")
                    .build(),
            )
            .min_size(1)
            .max_size(2)
            .desired_capacity(1)
            .vpc_zone_identifier(pn.private.join(","))
            .target_group_arns(tg.target_group_arn.clone().unwrap())
            .send()
            .await
            .unwrap();
        let dns = lb.dns_name.clone().unwrap();
        upsert_alias(
            &p.r53,
            &w.zone_id,
            &format!("{}.{ZONE}", app.name),
            &dns,
            lb.canonical_hosted_zone_id.as_deref().unwrap(),
        )
        .await;
        w.primary_alb_dns.insert(app.name.into(), dns);

        // RDS PostgreSQL with hourly snapshots, the latest copied across
        p.rds
            .create_db_instance()
            .db_instance_identifier(app.db)
            .db_instance_class("db.r6g.large")
            .engine("postgres")
            .master_username("dbadmin")
            .master_user_password("Sup3r-s3cret-pw")
            .allocated_storage(500)
            .storage_encrypted(true)
            .kms_key_id(&w.kms_primary)
            .backup_retention_period(1)
            .send()
            .await
            .unwrap();
        let mut last = None;
        for hour in 0..2 {
            let snap = p
                .rds
                .create_db_snapshot()
                .db_instance_identifier(app.db)
                .db_snapshot_identifier(format!("{}-hourly-{hour}", app.db))
                .send()
                .await
                .unwrap()
                .db_snapshot
                .unwrap();
            last = snap.db_snapshot_arn;
        }
        let copy = s
            .rds
            .copy_db_snapshot()
            .source_db_snapshot_identifier(last.unwrap())
            .target_db_snapshot_identifier(format!("{}-hourly-1-copy", app.db))
            .kms_key_id(&w.kms_secondary)
            .send()
            .await
            .unwrap()
            .db_snapshot
            .unwrap();
        w.dr_db_snapshot.insert(app.name.into(), copy.db_snapshot_identifier.unwrap());
    }
    w
}

/// UPSERT an A alias record.
pub async fn upsert_alias(r53: &aws_sdk_route53::Client, zone_id: &str, name: &str, dns: &str, dns_zone: &str) {
    use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder().dns_name(dns).hosted_zone_id(dns_zone).evaluate_target_health(true).build().unwrap(),
        )
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// The drconsole binary with the emulator's test credentials and nothing of the developer's own AWS setup (no
/// profile, config or credentials file, no instance metadata): every drconsole a moto test starts.
pub fn drconsole_cmd() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_drconsole"));
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", PRIMARY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        // moto makes everything final at once: polls and waits 50x shorter (honoured with --endpoint-url only)
        .env("DRCONSOLE_EMULATOR_PACE", "50");
    c
}

/// A summary of a region's resources, to prove a run left it unchanged (or to count what a run made).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub db_instances: Vec<(String, String)>,
    pub db_snapshots: Vec<String>,
    pub instances: Vec<(String, String)>,
    pub volumes: Vec<(String, String)>,
    pub snapshots: Vec<String>,
    pub images: Vec<String>,
    pub nat_gateways: Vec<(String, String)>,
    pub addresses: Vec<String>,
    /// route table → routes `dest->target`
    pub routes: BTreeMap<String, Vec<String>>,
    pub load_balancers: Vec<String>,
    pub target_groups: Vec<String>,
    pub listeners: Vec<String>,
    pub asgs: Vec<(String, i32)>,
    pub launch_template_versions: BTreeMap<String, i64>,
}

impl Inventory {
    /// A region's shape: names where AWS lets the runbook choose them, counts where ids are random (so a duplicate
    /// shows as a difference from an uninterrupted run).
    pub fn shape(&self) -> Vec<String> {
        let mut dbs: Vec<String> = self.db_instances.iter().map(|(id, _)| id.clone()).collect();
        dbs.sort();
        let mut lbs = self.load_balancers.clone();
        lbs.sort();
        let mut tgs = self.target_groups.clone();
        tgs.sort();
        let mut asgs: Vec<String> = self.asgs.iter().map(|(n, _)| n.clone()).collect();
        asgs.sort();
        let routes: usize = self.routes.values().map(Vec::len).sum();
        vec![
            format!("dbs {dbs:?}"),
            format!("db_snapshots {}", self.db_snapshots.len()),
            format!("instances {}", self.instances.iter().filter(|(_, s)| s != "terminated").count()),
            format!("volumes {}", self.volumes.len()),
            format!("snapshots {}", self.snapshots.len()),
            format!("images {}", self.images.len()),
            format!("nat_gateways {}", self.nat_gateways.iter().filter(|(_, s)| s != "deleted").count()),
            format!("addresses {}", self.addresses.len()),
            format!("routes {routes}"),
            format!("lbs {lbs:?}"),
            format!("tgs {tgs:?}"),
            format!("listeners {}", self.listeners.len()),
            format!("asgs {asgs:?}"),
            format!("launch_template_versions {:?}", self.launch_template_versions),
        ]
    }
}

/// Reads a region with plain SDK calls.
pub async fn inventory(endpoint: &str, region: &str) -> Inventory {
    let c = Sdk::new(endpoint, region).await;
    let mut inv = Inventory::default();
    for d in c.rds.describe_db_instances().send().await.unwrap().db_instances.unwrap_or_default() {
        inv.db_instances.push((d.db_instance_identifier.unwrap(), d.db_instance_status.unwrap_or_default()));
    }
    for s in c.rds.describe_db_snapshots().send().await.unwrap().db_snapshots.unwrap_or_default() {
        inv.db_snapshots.push(s.db_snapshot_identifier.unwrap());
    }
    for r in c.ec2.describe_instances().send().await.unwrap().reservations.unwrap_or_default() {
        for i in r.instances.unwrap_or_default() {
            let state = i.state.and_then(|s| s.name).map(|n| n.as_str().to_string()).unwrap_or_default();
            inv.instances.push((i.instance_id.unwrap(), state));
        }
    }
    for v in c.ec2.describe_volumes().send().await.unwrap().volumes.unwrap_or_default() {
        inv.volumes.push((v.volume_id.unwrap(), v.state.map(|s| s.as_str().to_string()).unwrap_or_default()));
    }
    for s in c.ec2.describe_snapshots().owner_ids("self").send().await.unwrap().snapshots.unwrap_or_default() {
        inv.snapshots.push(s.snapshot_id.unwrap());
    }
    for i in c.ec2.describe_images().owners("self").send().await.unwrap().images.unwrap_or_default() {
        inv.images.push(i.image_id.unwrap());
    }
    for n in c.ec2.describe_nat_gateways().send().await.unwrap().nat_gateways.unwrap_or_default() {
        inv.nat_gateways.push((n.nat_gateway_id.unwrap(), n.state.map(|s| s.as_str().to_string()).unwrap_or_default()));
    }
    for a in c.ec2.describe_addresses().send().await.unwrap().addresses.unwrap_or_default() {
        inv.addresses.push(a.allocation_id.unwrap_or_default());
    }
    for t in c.ec2.describe_route_tables().send().await.unwrap().route_tables.unwrap_or_default() {
        let routes = t
            .routes
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                format!(
                    "{}->{}",
                    r.destination_cidr_block.unwrap_or_default(),
                    r.nat_gateway_id.or(r.gateway_id).unwrap_or_default()
                )
            })
            .collect();
        inv.routes.insert(t.route_table_id.unwrap(), routes);
    }
    for l in c.elb.describe_load_balancers().send().await.unwrap().load_balancers.unwrap_or_default() {
        let arn = l.load_balancer_arn.unwrap();
        for li in c.elb.describe_listeners().load_balancer_arn(&arn).send().await.unwrap().listeners.unwrap_or_default()
        {
            inv.listeners.push(li.listener_arn.unwrap());
        }
        inv.load_balancers.push(l.load_balancer_name.unwrap());
    }
    for g in c.elb.describe_target_groups().send().await.unwrap().target_groups.unwrap_or_default() {
        inv.target_groups.push(g.target_group_name.unwrap());
    }
    for g in c.asg.describe_auto_scaling_groups().send().await.unwrap().auto_scaling_groups.unwrap_or_default() {
        inv.asgs.push((g.auto_scaling_group_name.unwrap(), g.desired_capacity.unwrap_or(0)));
    }
    for t in c.ec2.describe_launch_templates().send().await.unwrap().launch_templates.unwrap_or_default() {
        inv.launch_template_versions.insert(t.launch_template_name.unwrap(), t.latest_version_number.unwrap_or(0));
    }
    for v in inv.routes.values_mut() {
        v.sort();
    }
    inv.db_instances.sort();
    inv.db_snapshots.sort();
    inv.instances.sort();
    inv.volumes.sort();
    inv.snapshots.sort();
    inv.images.sort();
    inv.nat_gateways.sort();
    inv.addresses.sort();
    inv.load_balancers.sort();
    inv.target_groups.sort();
    inv.listeners.sort();
    inv.asgs.sort();
    inv
}

/// Resources in a region carrying the tag `key=value`, by EC2 resource type (`volume`, `natgateway`, ...).
pub async fn ec2_tagged(endpoint: &str, region: &str, key: &str, value: &str) -> BTreeMap<String, usize> {
    let c = Sdk::new(endpoint, region).await;
    let out = c
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("key").values(key).build())
        .filters(Filter::builder().name("value").values(value).build())
        .send()
        .await
        .unwrap();
    let mut m = BTreeMap::new();
    for t in out.tags.unwrap_or_default() {
        *m.entry(t.resource_type.map(|r| r.as_str().to_string()).unwrap_or_default()).or_insert(0) += 1;
    }
    m
}

/// The runbooks as shipped, except that `check_db` (a TCP connection to the database endpoint, which moto does
/// not serve) is left out; and with `account` as the guard when given.
pub fn runbooks_for_moto(dir: &Path, account: Option<&str>) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    std::fs::create_dir_all(dir.join("procedures")).unwrap();
    let text = std::fs::read_to_string(root.join("procedures/regional-failover.toml")).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    if let Some(a) = account {
        doc["target"].as_table_mut().unwrap().insert("account".into(), toml::Value::String(a.into()));
    }
    let steps = doc["step"].as_array_mut().unwrap();
    steps.retain(|s| s["id"].as_str() != Some("check_db"));
    for s in steps.iter_mut() {
        if let Some(needs) = s.as_table_mut().unwrap().get_mut("needs") {
            needs.as_array_mut().unwrap().retain(|n| n.as_str() != Some("check_db"));
        }
    }
    std::fs::write(dir.join("procedures/regional-failover.toml"), toml::to_string(&doc).unwrap()).unwrap();
    for app in APPS {
        std::fs::copy(root.join(app.runbook), dir.join(app.runbook)).unwrap();
    }
    dir.to_path_buf()
}
