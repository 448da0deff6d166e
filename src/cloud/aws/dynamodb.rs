//! DynamoDB: import a table from S3 (the restore path of an RDS export) and follow the import.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ImportTableDescription, InputFormat, KeySchemaElement, KeyType, S3BucketSource,
    ScalarAttributeType, SseSpecification, SseType, TableCreationParameters,
};

use super::Aws;
use super::error::from_sdk;
use crate::cloud::{CloudError, CloudResult, Dynamodb, ImportDescription, ImportTable, Table};

const SVC: &str = "dynamodb";

fn import(d: &ImportTableDescription) -> ImportDescription {
    ImportDescription {
        arn: d.import_arn().unwrap_or_default().to_string(),
        table_name: d
            .table_creation_parameters()
            .map(|p| p.table_name().to_string())
            .or_else(|| d.table_arn().and_then(|a| a.rsplit('/').next()).map(str::to_string))
            .unwrap_or_default(),
        status: d.import_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        imported_items: u64::try_from(d.imported_item_count()).unwrap_or(0),
        processed_bytes: d.processed_size_bytes().and_then(|b| u64::try_from(b).ok()).unwrap_or(0),
        failure: d.failure_message().or(d.failure_code()).map(str::to_string),
    }
}

fn invalid(op: &str, region: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(SVC, op, region, "InvalidInput", e.to_string())
}

#[async_trait]
impl Dynamodb for Aws {
    async fn import_table(&self, region: &str, req: &ImportTable) -> CloudResult<ImportDescription> {
        const OP: &str = "ImportTable";
        // the table exists already: find the import that made it (a re-run), rather than fail on the name
        if let Some(t) = self.describe_table(region, &req.table_name).await? {
            let imports = self
                .clients
                .dynamodb(region)
                .list_imports()
                .table_arn(&t.arn)
                .send()
                .await
                .map_err(|e| from_sdk(SVC, "ListImports", region, e))?;
            if let Some(arn) = imports.import_summary_list().iter().find_map(|s| s.import_arn()) {
                return self.describe_import(region, arn).await;
            }
        }
        self.allow_change(SVC, OP, region).await?;
        let mut attrs = vec![
            AttributeDefinition::builder()
                .attribute_name(&req.partition_key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| invalid(OP, region, e))?,
        ];
        let mut keys = vec![
            KeySchemaElement::builder()
                .attribute_name(&req.partition_key)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| invalid(OP, region, e))?,
        ];
        if let Some(sk) = &req.sort_key {
            attrs.push(
                AttributeDefinition::builder()
                    .attribute_name(sk)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| invalid(OP, region, e))?,
            );
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(sk)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(|e| invalid(OP, region, e))?,
            );
        }
        let mut params = TableCreationParameters::builder()
            .table_name(&req.table_name)
            .set_attribute_definitions(Some(attrs))
            .set_key_schema(Some(keys))
            .billing_mode(BillingMode::PayPerRequest);
        if let Some(k) = &req.kms_key_id {
            params = params.sse_specification(
                SseSpecification::builder().enabled(true).sse_type(SseType::Kms).kms_master_key_id(k).build(),
            );
        }
        let source = S3BucketSource::builder()
            .s3_bucket(&req.bucket)
            .set_s3_bucket_owner(req.bucket_owner.clone())
            .s3_key_prefix(&req.key_prefix)
            .build()
            .map_err(|e| invalid(OP, region, e))?;
        let out = self
            .clients
            .dynamodb(region)
            .import_table()
            .client_token(&req.client_token)
            .s3_bucket_source(source)
            .input_format(InputFormat::from(req.input_format.as_str()))
            .table_creation_parameters(params.build().map_err(|e| invalid(OP, region, e))?)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, OP, region, e))?;
        out.import_table_description()
            .map(import)
            .ok_or_else(|| CloudError::new(SVC, OP, region, "EmptyResponse", "no ImportTableDescription in the answer"))
    }

    async fn describe_import(&self, region: &str, arn: &str) -> CloudResult<ImportDescription> {
        let out = self
            .clients
            .dynamodb(region)
            .describe_import()
            .import_arn(arn)
            .send()
            .await
            .map_err(|e| from_sdk(SVC, "DescribeImport", region, e))?;
        out.import_table_description().map(import).ok_or_else(|| {
            CloudError::new(SVC, "DescribeImport", region, "EmptyResponse", "no ImportTableDescription in the answer")
        })
    }

    async fn describe_table(&self, region: &str, name: &str) -> CloudResult<Option<Table>> {
        let r = self.clients.dynamodb(region).describe_table().table_name(name).send().await;
        match r {
            Ok(out) => Ok(out.table().map(|t| Table {
                name: t.table_name().unwrap_or(name).to_string(),
                arn: t.table_arn().unwrap_or_default().to_string(),
                status: t.table_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                item_count: t.item_count().and_then(|c| u64::try_from(c).ok()).unwrap_or(0),
                import_arn: None,
            })),
            Err(e) => {
                let e = from_sdk(SVC, "DescribeTable", region, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }
}
