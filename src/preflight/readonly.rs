//! A read-only view of the cloud port: every describe/list/get call goes through to the cloud it wraps; every call
//! that would create, change or delete something is refused here, before anything is sent, with a `Refused`
//! [`CloudError`] (code [`CODE_READ_ONLY`]). Preflight only ever holds a [`ReadOnlyCloud`], so whatever a check (or
//! a helper shared with the actions) calls, it cannot change the account.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::cloud::*;

/// `CloudError::code` of a mutating call refused by the read-only view.
pub const CODE_READ_ONLY: &str = "PreflightReadOnly";

/// The only cloud a preflight gets: reads go through, changes are refused (and counted, so a test can say none
/// was attempted).
#[derive(Clone)]
pub struct ReadOnlyCloud {
    cloud: Cloud,
    view: Arc<ReadOnly>,
}

impl ReadOnlyCloud {
    /// Wraps a cloud (the simulator or AWS) so that only its read calls can be reached.
    pub fn new(inner: Cloud) -> Self {
        let view = Arc::new(ReadOnly { inner, refused: Mutex::new(BTreeMap::new()) });
        Self { cloud: Cloud::from_all(view.inner.backend, view.clone()), view }
    }
    /// The port, as the actions' read helpers take it; its mutating methods answer [`CODE_READ_ONLY`].
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }
    pub fn backend(&self) -> &'static str {
        self.cloud.backend
    }
    /// Mutating calls attempted through this view (and refused), by `service:Operation`.
    pub fn refused(&self) -> BTreeMap<String, u64> {
        self.view.refused.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for ReadOnlyCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyCloud").field("backend", &self.cloud.backend).finish_non_exhaustive()
    }
}

struct ReadOnly {
    inner: Cloud,
    refused: Mutex<BTreeMap<String, u64>>,
}

impl ReadOnly {
    // the port's result type, as every method of the traits returns it
    #[allow(clippy::result_large_err)]
    fn refuse<T>(&self, service: &str, op: &str, region: &str) -> CloudResult<T> {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(format!("{service}:{op}")).or_insert(0) += 1;
        }
        Err(CloudError::new(
            service,
            op,
            region,
            CODE_READ_ONLY,
            "refused: preflight is read-only and never changes anything; nothing was sent",
        )
        .with_kind(ErrorKind::Refused))
    }
}

#[async_trait]
impl Rds for ReadOnly {
    async fn describe_db_instance(&self, region: &str, id: &str) -> CloudResult<Option<DbInstance>> {
        self.inner.rds.describe_db_instance(region, id).await
    }
    async fn describe_db_snapshots(&self, region: &str, q: &DbSnapshotQuery) -> CloudResult<Vec<DbSnapshot>> {
        self.inner.rds.describe_db_snapshots(region, q).await
    }
    async fn restore_window(&self, region: &str, instance_id: &str) -> CloudResult<RestoreWindow> {
        self.inner.rds.restore_window(region, instance_id).await
    }
    async fn copy_db_snapshot(&self, region: &str, _: &CopyDbSnapshot) -> CloudResult<DbSnapshot> {
        self.refuse("rds", "CopyDBSnapshot", region)
    }
    async fn restore_db_from_snapshot(&self, region: &str, _: &RestoreDbFromSnapshot) -> CloudResult<DbInstance> {
        self.refuse("rds", "RestoreDBInstanceFromDBSnapshot", region)
    }
    async fn restore_db_to_point_in_time(&self, region: &str, _: &RestoreDbToPointInTime) -> CloudResult<DbInstance> {
        self.refuse("rds", "RestoreDBInstanceToPointInTime", region)
    }
    async fn modify_db_instance(&self, region: &str, _: &ModifyDbInstance) -> CloudResult<DbInstance> {
        self.refuse("rds", "ModifyDBInstance", region)
    }
    async fn start_export_task(&self, region: &str, _: &StartExportTask) -> CloudResult<ExportTask> {
        self.refuse("rds", "StartExportTask", region)
    }
    async fn describe_export_task(&self, region: &str, id: &str) -> CloudResult<Option<ExportTask>> {
        self.inner.rds.describe_export_task(region, id).await
    }
    async fn describe_db_subnet_group(&self, region: &str, name: &str) -> CloudResult<Option<DbSubnetGroup>> {
        self.inner.rds.describe_db_subnet_group(region, name).await
    }
}

#[async_trait]
impl Ec2 for ReadOnly {
    async fn describe_volumes(&self, region: &str, f: &Filter) -> CloudResult<Vec<Volume>> {
        self.inner.ec2.describe_volumes(region, f).await
    }
    async fn describe_snapshots(&self, region: &str, f: &Filter) -> CloudResult<Vec<Snapshot>> {
        self.inner.ec2.describe_snapshots(region, f).await
    }
    async fn describe_snapshots_of_volume(&self, region: &str, volume_id: &str) -> CloudResult<Vec<Snapshot>> {
        self.inner.ec2.describe_snapshots_of_volume(region, volume_id).await
    }
    async fn copy_snapshot(&self, region: &str, _: &CopySnapshot) -> CloudResult<Snapshot> {
        self.refuse("ec2", "CopySnapshot", region)
    }
    async fn create_volume(&self, region: &str, _: &CreateVolume) -> CloudResult<Volume> {
        self.refuse("ec2", "CreateVolume", region)
    }
    async fn attach_volume(&self, region: &str, _: &str, _: &str, _: &str) -> CloudResult<()> {
        self.refuse("ec2", "AttachVolume", region)
    }
    async fn detach_volume(&self, region: &str, _: &str, _: &str) -> CloudResult<()> {
        self.refuse("ec2", "DetachVolume", region)
    }
    async fn stop_instances(&self, region: &str, _: &[String]) -> CloudResult<()> {
        self.refuse("ec2", "StopInstances", region)
    }
    async fn start_instances(&self, region: &str, _: &[String]) -> CloudResult<()> {
        self.refuse("ec2", "StartInstances", region)
    }
    async fn describe_instances(&self, region: &str, f: &Filter) -> CloudResult<Vec<Instance>> {
        self.inner.ec2.describe_instances(region, f).await
    }
    async fn describe_images(&self, region: &str, f: &Filter) -> CloudResult<Vec<Image>> {
        self.inner.ec2.describe_images(region, f).await
    }
    async fn copy_image(&self, region: &str, _: &CopyImage) -> CloudResult<Image> {
        self.refuse("ec2", "CopyImage", region)
    }
    async fn describe_launch_template(&self, region: &str, name: &str) -> CloudResult<Option<LaunchTemplate>> {
        self.inner.ec2.describe_launch_template(region, name).await
    }
    async fn describe_security_groups(&self, region: &str, ids: &[String]) -> CloudResult<Vec<SecurityGroup>> {
        self.inner.ec2.describe_security_groups(region, ids).await
    }
    async fn instance_type_vcpus(&self, region: &str, instance_type: &str) -> CloudResult<Option<u32>> {
        self.inner.ec2.instance_type_vcpus(region, instance_type).await
    }
    async fn create_launch_template_version(
        &self,
        region: &str,
        _: &str,
        _: u64,
        _: &str,
        _: &str,
    ) -> CloudResult<u64> {
        self.refuse("ec2", "CreateLaunchTemplateVersion", region)
    }
    async fn set_default_launch_template_version(&self, region: &str, _: &str, _: u64) -> CloudResult<()> {
        self.refuse("ec2", "ModifyLaunchTemplate", region)
    }
    async fn describe_addresses(&self, region: &str, f: &Filter) -> CloudResult<Vec<Address>> {
        self.inner.ec2.describe_addresses(region, f).await
    }
    async fn allocate_address(&self, region: &str, _: &Tags) -> CloudResult<Address> {
        self.refuse("ec2", "AllocateAddress", region)
    }
    async fn describe_nat_gateways(&self, region: &str, f: &Filter) -> CloudResult<Vec<NatGateway>> {
        self.inner.ec2.describe_nat_gateways(region, f).await
    }
    async fn create_nat_gateway(&self, region: &str, _: &CreateNatGateway) -> CloudResult<NatGateway> {
        self.refuse("ec2", "CreateNatGateway", region)
    }
    async fn describe_route_tables(&self, region: &str, f: &Filter) -> CloudResult<Vec<RouteTable>> {
        self.inner.ec2.describe_route_tables(region, f).await
    }
    async fn set_route_to_nat(&self, region: &str, _: &str, _: &str, _: &str) -> CloudResult<()> {
        self.refuse("ec2", "ReplaceRoute", region)
    }
    async fn describe_subnets(&self, region: &str, f: &Filter) -> CloudResult<Vec<Subnet>> {
        self.inner.ec2.describe_subnets(region, f).await
    }
    async fn describe_vpcs(&self, region: &str, f: &Filter) -> CloudResult<Vec<Vpc>> {
        self.inner.ec2.describe_vpcs(region, f).await
    }
    async fn create_security_group(&self, region: &str, _: &CreateSecurityGroup) -> CloudResult<NamedSecurityGroup> {
        self.refuse("ec2", "CreateSecurityGroup", region)
    }
    async fn describe_vpc_security_group(
        &self,
        region: &str,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<NamedSecurityGroup>> {
        self.inner.ec2.describe_vpc_security_group(region, vpc_id, name).await
    }
    async fn delete_security_group(&self, region: &str, _: &str) -> CloudResult<()> {
        self.refuse("ec2", "DeleteSecurityGroup", region)
    }
    fn local_locks(&self) -> Option<Arc<LocalLocks>> {
        self.inner.ec2.local_locks()
    }
}

#[async_trait]
impl Elb for ReadOnly {
    async fn describe_load_balancer(&self, region: &str, name: &str) -> CloudResult<Option<LoadBalancer>> {
        self.inner.elb.describe_load_balancer(region, name).await
    }
    async fn create_load_balancer(&self, region: &str, _: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        self.refuse("elasticloadbalancing", "CreateLoadBalancer", region)
    }
    async fn describe_target_group(&self, region: &str, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.inner.elb.describe_target_group(region, name).await
    }
    async fn create_target_group(&self, region: &str, _: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        self.refuse("elasticloadbalancing", "CreateTargetGroup", region)
    }
    async fn describe_listeners(&self, region: &str, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        self.inner.elb.describe_listeners(region, load_balancer_arn).await
    }
    async fn create_listener(&self, region: &str, _: &CreateListener) -> CloudResult<Listener> {
        self.refuse("elasticloadbalancing", "CreateListener", region)
    }
    async fn register_targets(&self, region: &str, _: &str, _: &[String]) -> CloudResult<()> {
        self.refuse("elasticloadbalancing", "RegisterTargets", region)
    }
    async fn describe_target_health(&self, region: &str, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.inner.elb.describe_target_health(region, target_group_arn).await
    }
}

#[async_trait]
impl Asg for ReadOnly {
    async fn describe_auto_scaling_group(&self, region: &str, name: &str) -> CloudResult<Option<AutoScalingGroup>> {
        self.inner.asg.describe_auto_scaling_group(region, name).await
    }
    async fn list_auto_scaling_groups(&self, region: &str) -> CloudResult<Vec<AutoScalingGroup>> {
        self.inner.asg.list_auto_scaling_groups(region).await
    }
    async fn create_auto_scaling_group(&self, region: &str, _: &CreateAutoScalingGroup) -> CloudResult<()> {
        self.refuse("autoscaling", "CreateAutoScalingGroup", region)
    }
    async fn update_auto_scaling_group(&self, region: &str, _: &UpdateAutoScalingGroup) -> CloudResult<()> {
        self.refuse("autoscaling", "UpdateAutoScalingGroup", region)
    }
    async fn attach_target_groups(&self, region: &str, _: &str, _: &[String]) -> CloudResult<()> {
        self.refuse("autoscaling", "AttachLoadBalancerTargetGroups", region)
    }
    async fn start_instance_refresh(&self, region: &str, _: &str, _: u8) -> CloudResult<String> {
        self.refuse("autoscaling", "StartInstanceRefresh", region)
    }
    async fn describe_instance_refreshes(&self, region: &str, name: &str) -> CloudResult<Vec<InstanceRefresh>> {
        self.inner.asg.describe_instance_refreshes(region, name).await
    }
}

#[async_trait]
impl Waf for ReadOnly {
    async fn get_web_acl(&self, region: &str, name: &str) -> CloudResult<Option<WebAcl>> {
        self.inner.waf.get_web_acl(region, name).await
    }
    async fn get_web_acl_for_resource(&self, region: &str, resource_arn: &str) -> CloudResult<Option<WebAcl>> {
        self.inner.waf.get_web_acl_for_resource(region, resource_arn).await
    }
    async fn associate_web_acl(&self, region: &str, _: &str, _: &str) -> CloudResult<()> {
        self.refuse("wafv2", "AssociateWebACL", region)
    }
}

#[async_trait]
impl RoutingControls for ReadOnly {
    async fn routing_control_state(&self, endpoint: &ClusterEndpoint, arn: &str) -> CloudResult<RoutingControl> {
        self.inner.routing_controls.routing_control_state(endpoint, arn).await
    }
    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        _: &[(String, String)],
        _: &[String],
    ) -> CloudResult<()> {
        self.refuse("route53-recovery-cluster", "UpdateRoutingControlStates", &endpoint.region)
    }
}

#[async_trait]
impl Route53 for ReadOnly {
    async fn find_hosted_zones(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        self.inner.route53.find_hosted_zones(name).await
    }
    async fn list_record_sets(&self, zone_id: &str, name: &str) -> CloudResult<Vec<RecordSet>> {
        self.inner.route53.list_record_sets(zone_id, name).await
    }
    async fn upsert_records(&self, _: &str, _: &[RecordSet], _: &str) -> CloudResult<ChangeInfo> {
        self.refuse("route53", "ChangeResourceRecordSets", "")
    }
    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        self.inner.route53.get_change(change_id).await
    }
    async fn find_health_check(&self, caller_reference: &str) -> CloudResult<Option<HealthCheck>> {
        self.inner.route53.find_health_check(caller_reference).await
    }
    async fn create_health_check(&self, _: &str, _: &HealthCheckConfig) -> CloudResult<HealthCheck> {
        self.refuse("route53", "CreateHealthCheck", "")
    }
    async fn health_check_status(&self, id: &str) -> CloudResult<String> {
        self.inner.route53.health_check_status(id).await
    }
}

#[async_trait]
impl S3 for ReadOnly {
    async fn list_objects(&self, region: &str, bucket: &str, prefix: &str) -> CloudResult<Vec<S3Object>> {
        self.inner.s3.list_objects(region, bucket, prefix).await
    }
}

#[async_trait]
impl Backup for ReadOnly {
    async fn list_recovery_points_by_resource(&self, region: &str, arn: &str) -> CloudResult<Vec<RecoveryPoint>> {
        self.inner.backup.list_recovery_points_by_resource(region, arn).await
    }
    async fn list_recovery_points_by_vault(&self, region: &str, vault: &str) -> CloudResult<Vec<RecoveryPoint>> {
        self.inner.backup.list_recovery_points_by_vault(region, vault).await
    }
    async fn list_backup_vaults(&self, region: &str) -> CloudResult<Vec<String>> {
        self.inner.backup.list_backup_vaults(region).await
    }
    async fn start_restore_job(&self, region: &str, _: &StartRestoreJob) -> CloudResult<String> {
        self.refuse("backup", "StartRestoreJob", region)
    }
    async fn describe_restore_job(&self, region: &str, id: &str) -> CloudResult<RestoreJob> {
        self.inner.backup.describe_restore_job(region, id).await
    }
}

#[async_trait]
impl Dynamodb for ReadOnly {
    async fn import_table(&self, region: &str, _: &ImportTable) -> CloudResult<ImportDescription> {
        self.refuse("dynamodb", "ImportTable", region)
    }
    async fn describe_import(&self, region: &str, arn: &str) -> CloudResult<ImportDescription> {
        self.inner.dynamodb.describe_import(region, arn).await
    }
    async fn describe_table(&self, region: &str, name: &str) -> CloudResult<Option<Table>> {
        self.inner.dynamodb.describe_table(region, name).await
    }
}

#[async_trait]
impl SecretsManager for ReadOnly {
    async fn get_secret_value(&self, region: &str, id: &str) -> CloudResult<SecretValue> {
        self.inner.secrets.get_secret_value(region, id).await
    }
}

#[async_trait]
impl Sts for ReadOnly {
    async fn get_caller_identity(&self, region: &str) -> CloudResult<CallerIdentity> {
        self.inner.sts.get_caller_identity(region).await
    }
}

#[async_trait]
impl Kms for ReadOnly {
    async fn describe_key(&self, region: &str, key: &str) -> CloudResult<Option<KmsKey>> {
        self.inner.kms.describe_key(region, key).await
    }
}

#[async_trait]
impl Limits for ReadOnly {
    async fn elastic_ip_limit(&self, region: &str) -> CloudResult<Option<u32>> {
        self.inner.limits.elastic_ip_limit(region).await
    }
    async fn service_quota(&self, region: &str, service: &str, code: &str) -> CloudResult<Option<f64>> {
        self.inner.limits.service_quota(region, service, code).await
    }
    async fn elb_limit(&self, region: &str, name: &str) -> CloudResult<Option<u32>> {
        self.inner.limits.elb_limit(region, name).await
    }
    async fn load_balancers_in_use(&self, region: &str, kind: &str) -> CloudResult<u32> {
        self.inner.limits.load_balancers_in_use(region, kind).await
    }
}

#[async_trait]
impl Acm for ReadOnly {
    async fn describe_certificate(&self, region: &str, arn: &str) -> CloudResult<Option<Certificate>> {
        self.inner.acm.describe_certificate(region, arn).await
    }
}

#[async_trait]
impl Iam for ReadOnly {
    /// A simulation evaluates policies and changes nothing: it goes through.
    async fn simulate_principal_policy(
        &self,
        principal_arn: &str,
        actions: &[String],
        region: &str,
    ) -> CloudResult<Vec<SimulatedDecision>> {
        self.inner.iam.simulate_principal_policy(principal_arn, actions, region).await
    }
}

#[async_trait]
impl crate::cloud::cleanup::Cleanup for ReadOnly {
    async fn tagged(&self, region: &str, key: &str, value: &str) -> CloudResult<Vec<crate::cloud::cleanup::Found>> {
        self.inner.cleanup.tagged(region, key, value).await
    }
    async fn describe(&self, region: &str, kind: &str, id: &str) -> CloudResult<Option<crate::cloud::cleanup::Found>> {
        self.inner.cleanup.describe(region, kind, id).await
    }
    async fn delete(&self, region: &str, kind: &str, _id: &str) -> CloudResult<()> {
        self.refuse("cleanup", &format!("Delete {kind}"), region)
    }
    async fn route_target(&self, region: &str, table: &str, destination: &str) -> CloudResult<Option<String>> {
        self.inner.cleanup.route_target(region, table, destination).await
    }
    async fn restore_route(&self, region: &str, _table: &str, _dest: &str, previous: Option<&str>) -> CloudResult<()> {
        self.refuse("ec2", if previous.is_some() { "ReplaceRoute" } else { "DeleteRoute" }, region)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::cloud::sim::Sim;
    use crate::run::Clock;

    #[tokio::test]
    async fn mutating_calls_are_refused_before_they_reach_the_cloud_and_reads_go_through() {
        let sim = Arc::new(Sim::new(Clock::starting_at(jiff::Timestamp::now(), 1e6), 1, "us-east-1", "us-west-2"));
        let ro = ReadOnlyCloud::new(crate::cloud::sim::Sim::cloud_of(&sim));
        let c = ro.cloud();
        let e = c.ec2.allocate_address("us-west-2", &Tags::new()).await.unwrap_err();
        assert_eq!(e.code, CODE_READ_ONLY);
        assert!(e.is_refusal() && !e.is_retryable());
        let e = c.route53.upsert_records("Z1", &[], "x").await.unwrap_err();
        assert_eq!(e.operation, "ChangeResourceRecordSets");
        assert!(c.rds.copy_db_snapshot("us-west-2", &CopyDbSnapshot::default()).await.is_err());
        assert!(c.ec2.describe_vpcs("us-west-2", &Filter::default()).await.unwrap().is_empty());
        // the simulator saw the read, and none of the refused calls
        let calls = sim.calls();
        assert_eq!(calls.keys().cloned().collect::<Vec<_>>(), vec!["ec2:DescribeVpcs".to_string()]);
        assert_eq!(ro.refused().values().sum::<u64>(), 3);
    }
}
