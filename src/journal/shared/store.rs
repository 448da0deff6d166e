//! The S3 side of shared state: a bucket and prefix reached through the project's AWS clients
//! (`cloud::aws::Clients`: the standard credential chain, `--profile`, an endpoint URL), on a runtime of its own.
//!
//! Rules:
//! - Every S3 call runs on a dedicated thread with its own tokio runtime. The journal sink is synchronous and is
//!   called from inside the engine's runtime (any flavour, even current-thread): it hands a call to this runtime
//!   and waits on a plain channel, so it never nests a runtime, never needs a worker of the engine's runtime, and
//!   cannot deadlock it. Async callers (watch) await the same calls instead.
//! - Journal records are written once: `PutObject` with `If-None-Match: *`. A 412 is answered by reading the
//!   object: the same bytes mean our own earlier attempt landed (the answer was lost), other bytes mean another
//!   writer owns that record.
//! - The SDK retries each call (standard mode, [`SDK_ATTEMPTS`] attempts); what still fails is classified here as
//!   permanent (access denied, no such bucket: retrying cannot help) or transient (throttling, 5xx, timeouts,
//!   dropped connections), and the caller decides how long to wait for a transient failure.
//! - Objects are sent with a SHA-256 checksum that S3 verifies, and encrypted with SSE-KMS when a key is given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use aws_smithy_types::error::display::DisplayErrorContext;
use jiff::Timestamp;

use crate::cloud::aws::{AwsOptions, Clients};

/// SDK attempts per S3 call (the standard retry mode's backoff between them).
pub const SDK_ATTEMPTS: u32 = 4;
/// Longest one S3 call (all its SDK attempts) may take before it counts as a transient failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with an S3 call.
#[derive(Debug, Clone)]
pub struct StoreError {
    pub op: &'static str,
    pub key: String,
    pub message: String,
    /// Retrying cannot help (access denied, no such bucket, a bad request).
    pub permanent: bool,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3 {} {}: {}", self.op, self.key, self.message)
    }
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Put {
    /// Written; its new ETag.
    Written(String),
    /// The condition did not hold (the object exists, or its ETag changed).
    Refused,
}

/// An object read back.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
    pub last_modified: Option<Timestamp>,
}

/// The S3 calls, on a client built for the state bucket's region. Cheap to clone (tasks of the store's runtime
/// hold clones).
#[derive(Clone)]
pub struct Ops {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    kms_key: Option<String>,
}

fn classify<E>(
    op: &'static str,
    key: &str,
    e: &aws_sdk_s3::error::SdkError<E, HttpResponse>,
) -> (Option<u16>, StoreError)
where
    E: std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    // throttling, server errors, timeouts and dropped connections may pass; a 4xx answer will not change
    let permanent = status.is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429 && s != 409);
    (status, StoreError { op, key: key.to_string(), message: DisplayErrorContext(e).to_string(), permanent })
}

fn timeout_error(op: &'static str, key: &str) -> StoreError {
    StoreError {
        op,
        key: key.to_string(),
        message: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
        permanent: false,
    }
}

impl Ops {
    fn put_request(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(k) = &self.kms_key {
            req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
        }
        req
    }

    /// `PutObject` with `If-None-Match: *` (`etag: None`) or `If-Match: etag`.
    pub async fn put_conditional(&self, key: &str, bytes: Vec<u8>, etag: Option<&str>) -> Result<Put, StoreError> {
        let req = self.put_request(key, bytes);
        let req = match etag {
            None => req.if_none_match("*"),
            Some(e) => req.if_match(e),
        };
        match tokio::time::timeout(CALL_TIMEOUT, req.send()).await {
            Err(_) => Err(timeout_error("PutObject", key)),
            Ok(Ok(out)) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_string())),
            Ok(Err(e)) => {
                let (status, err) = classify("PutObject", key, &e);
                // 412: the condition failed; 409: a concurrent conditional write to the same key won
                if matches!(status, Some(412 | 409)) { Ok(Put::Refused) } else { Err(err) }
            }
        }
    }

    /// A plain `PutObject` (snapshots that are replaced: meta.json, reports, the simulator's world).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<String, StoreError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.put_request(key, bytes).send()).await {
            Err(_) => Err(timeout_error("PutObject", key)),
            Ok(Ok(out)) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Ok(Err(e)) => Err(classify("PutObject", key, &e).1),
        }
    }

    /// The object, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let req = self.client.get_object().bucket(&self.bucket).key(key);
        let out = match tokio::time::timeout(CALL_TIMEOUT, req.send()).await {
            Err(_) => return Err(timeout_error("GetObject", key)),
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                let (status, err) = classify("GetObject", key, &e);
                if status == Some(404) || e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(None);
                }
                return Err(err);
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let last_modified = out.last_modified().and_then(|d| Timestamp::from_second(d.secs()).ok());
        let body = tokio::time::timeout(CALL_TIMEOUT, out.body.collect())
            .await
            .map_err(|_| timeout_error("GetObject", key))?
            .map_err(|e| StoreError {
                op: "GetObject",
                key: key.to_string(),
                message: format!("the body was cut off: {e}"),
                permanent: false,
            })?;
        Ok(Some(Object { bytes: body.into_bytes().to_vec(), etag, last_modified }))
    }

    /// Every key under `prefix` after `start_after`, in key order (the SDK's paginator).
    pub async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut req = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix);
        if let Some(s) = start_after {
            req = req.start_after(s);
        }
        let pages = tokio::time::timeout(CALL_TIMEOUT, req.into_paginator().send().collect::<Vec<_>>())
            .await
            .map_err(|_| timeout_error("ListObjectsV2", prefix))?;
        let mut keys = Vec::new();
        for p in pages {
            let p = p.map_err(|e| classify("ListObjectsV2", prefix, &e).1)?;
            keys.extend(p.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys.sort();
        Ok(keys)
    }

    /// The "folders" right under `prefix` (delimiter `/`), without the prefix and the slash.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let req = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).delimiter("/");
        let pages = tokio::time::timeout(CALL_TIMEOUT, req.into_paginator().send().collect::<Vec<_>>())
            .await
            .map_err(|_| timeout_error("ListObjectsV2", prefix))?;
        let mut dirs = Vec::new();
        for p in pages {
            let p = p.map_err(|e| classify("ListObjectsV2", prefix, &e).1)?;
            dirs.extend(
                p.common_prefixes()
                    .iter()
                    .filter_map(|c| c.prefix())
                    .filter_map(|c| c.strip_prefix(prefix))
                    .map(|c| c.trim_end_matches('/').to_string()),
            );
        }
        dirs.sort();
        Ok(dirs)
    }

    /// `DeleteObject` with `If-Match: etag` (a lock is removed only while it is still ours).
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), StoreError> {
        let req = self.client.delete_object().bucket(&self.bucket).key(key).if_match(etag);
        match tokio::time::timeout(CALL_TIMEOUT, req.send()).await {
            Err(_) => Err(timeout_error("DeleteObject", key)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let (status, err) = classify("DeleteObject", key, &e);
                if matches!(status, Some(412 | 404)) { Ok(()) } else { Err(err) }
            }
        }
    }
}

/// The dedicated runtime and the S3 operations. Dropping the last handle stops the runtime's thread.
pub struct Store {
    handle: tokio::runtime::Handle,
    pub ops: Ops,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("bucket", &self.ops.bucket).finish_non_exhaustive()
    }
}

/// How to reach the state bucket.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub bucket: String,
    pub region: String,
    pub kms_key: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

impl Store {
    /// Starts the runtime thread and builds the S3 client (nothing is called yet).
    pub fn connect(c: &Connect) -> Result<Arc<Store>, String> {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("drconsole-s3".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
                    Ok(rt) => {
                        let _ = htx.send(Ok(rt.handle().clone()));
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                        // the runtime is dropped here, on its own thread, never inside another runtime
                    }
                    Err(e) => {
                        let _ = htx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| format!("cannot start the shared-state thread: {e}"))?;
        let handle = hrx
            .recv()
            .map_err(|_| "the shared-state thread stopped at once".to_string())?
            .map_err(|e| format!("cannot start the shared-state runtime: {e}"))?;
        let opts = AwsOptions {
            profile: c.profile.clone(),
            endpoint_url: c.endpoint_url.clone(),
            max_attempts: Some(SDK_ATTEMPTS),
            // the store's own outage handling (DRCONSOLE_SHARED_STATE_WAIT) decides when S3 is unreachable
            no_circuits: true,
            ..AwsOptions::default()
        };
        let region = c.region.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let clients = Clients::load(&opts).await;
            let _ = tx.send(clients.s3(&region));
        });
        let client = rx.recv().map_err(|_| "the shared-state runtime stopped while loading the AWS configuration")?;
        let ops = Ops { client, bucket: c.bucket.clone(), kms_key: c.kms_key.clone() };
        Ok(Arc::new(Store { handle, ops, _stop: stop_tx }))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `f` on the store's runtime and waits for it, from any thread (a plain channel: safe inside another
    /// runtime's task, where `block_on` is not).
    pub fn block<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, E> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(E::from(StoreError {
                op: "call",
                key: String::new(),
                message: "the shared-state runtime stopped".into(),
                permanent: true,
            }))
        })
    }

    /// Runs `f` on the store's runtime and awaits it (for async callers on another runtime).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.handle.spawn(f).await.unwrap_or_else(|e| {
            Err(StoreError {
                op: "call",
                key: String::new(),
                message: format!("the call failed: {e}"),
                permanent: true,
            })
        })
    }
}
