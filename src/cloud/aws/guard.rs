//! The account guard: before the first call that changes anything, STS GetCallerIdentity must name the account
//! the runbook targets (`target.account`). The identity is asked once and remembered; every mutating adapter
//! call goes through [`AccountGuard::check`].

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::Clients;
use super::error::from_sdk;
use crate::cloud::CloudError;

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// Why the guard said no.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The credentials are for another account than the runbook's `target.account`: nothing may be changed.
    #[error(
        "refused: the credentials are for account {actual} ({arn}), but the runbook targets account {expected}; \
         nothing was changed (use credentials or a --profile for account {expected})"
    )]
    WrongAccount { expected: String, actual: String, arn: String },
    /// STS could not be asked.
    #[error("cannot check which account the credentials belong to: {0}")]
    Sts(CloudError),
}

/// Checks the account once per run, before the first change.
pub struct AccountGuard {
    clients: Arc<Clients>,
    /// Region whose STS endpoint is asked (the runbook's primary region).
    region: String,
    expected: Option<String>,
    identity: OnceCell<Identity>,
}

impl std::fmt::Debug for AccountGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountGuard")
            .field("region", &self.region)
            .field("expected", &self.expected)
            .field("identity", &self.identity.get())
            .finish_non_exhaustive()
    }
}

impl AccountGuard {
    pub fn new(clients: Arc<Clients>, region: impl Into<String>, expected: Option<String>) -> Self {
        Self { clients, region: region.into(), expected, identity: OnceCell::new() }
    }

    /// The caller identity (STS GetCallerIdentity, asked once; the engine shows it in an `identity` event).
    pub async fn identity(&self) -> Result<&Identity, CloudError> {
        self.identity
            .get_or_try_init(|| async {
                let out = self
                    .clients
                    .sts(&self.region)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| from_sdk("sts", "GetCallerIdentity", &self.region, e))?;
                let id = Identity {
                    account: out.account().unwrap_or_default().to_string(),
                    arn: out.arn().unwrap_or_default().to_string(),
                    user_id: out.user_id().unwrap_or_default().to_string(),
                };
                Ok(id)
            })
            .await
    }

    /// Ok when changes are allowed: no account is set in the runbook, or the credentials are for that account.
    pub async fn check(&self) -> Result<(), GuardError> {
        let id = self.identity().await.map_err(GuardError::Sts)?;
        match &self.expected {
            Some(want) if *want != id.account => Err(GuardError::WrongAccount {
                expected: want.clone(),
                actual: id.account.clone(),
                arn: id.arn.clone(),
            }),
            _ => Ok(()),
        }
    }
}
