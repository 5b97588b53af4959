use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::config::CredentialSource;
use crate::error::{CredentialsProblem, ProxyError};

/// The credentials one source handed out last.
#[derive(Debug)]
pub struct CurrentCredentials {
    /// What the signer signs with (session token included).
    pub identity: Identity,
    /// When they stop being valid (`None`: never, e.g. keys from a profile).
    pub expires: Option<SystemTime>,
    /// Changes with every new set of credentials, so signatures made with
    /// the previous ones are never reused (see `crate::sigv4::SignatureMemo`).
    pub generation: u64,
}

/// The live credentials of one source: read by every signed request,
/// written only by the refresh task.
#[derive(Debug)]
pub struct LiveCredentials {
    source: CredentialSource,
    current: ArcSwapOption<CurrentCredentials>,
    generation: AtomicU64,
    /// Why the last refresh failed, while it keeps failing (never a secret:
    /// the SDK's error texts name the provider and the cause).
    last_error: Mutex<Option<String>>,
}

impl LiveCredentials {
    /// Credentials of `source`, none loaded yet.
    pub(crate) fn new(source: CredentialSource) -> Self {
        Self {
            source,
            current: ArcSwapOption::empty(),
            // Above 0, the generation of static keys.
            generation: AtomicU64::new(1),
            last_error: Mutex::new(None),
        }
    }

    /// Where these credentials come from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// Runs `f` on the current credentials when they are valid at `now`:
    /// one atomic load, no lock, no wait.
    pub fn with_current<R>(
        &self,
        now: SystemTime,
        f: impl FnOnce(&CurrentCredentials) -> R,
    ) -> Result<R, ProxyError> {
        let current = self.current.load();
        match current.as_deref() {
            Some(c) if c.expires.is_none_or(|expires| now < expires) => Ok(f(c)),
            Some(_) => Err(ProxyError::CredentialsUnavailable(
                CredentialsProblem::Expired,
            )),
            None => Err(ProxyError::CredentialsUnavailable(
                CredentialsProblem::NotLoaded,
            )),
        }
    }

    /// Installs new credentials (the refresh task's success).
    pub(crate) fn store(&self, credentials: Credentials) -> Option<SystemTime> {
        let expires = credentials.expiry();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.current
            .store(Some(std::sync::Arc::new(CurrentCredentials {
                identity: credentials.into(),
                expires,
                generation,
            })));
        self.set_error(None);
        expires
    }

    /// The expiry of the current credentials, `None` when none are loaded.
    pub(crate) fn expiry(&self) -> Option<Option<SystemTime>> {
        self.current.load().as_ref().map(|c| c.expires)
    }

    /// Records why the last refresh failed (`None` after a success).
    pub(crate) fn set_error(&self, error: Option<String>) {
        let mut slot = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *slot = error;
    }

    /// Why the last refresh failed, while it keeps failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Provider;

    fn live() -> LiveCredentials {
        LiveCredentials::new(CredentialSource {
            provider: Provider::Ecs,
            region: "us-east-1".into(),
        })
    }

    #[test]
    fn not_loaded_then_valid_then_expired() {
        let live = live();
        let now = SystemTime::now();
        let err = live.with_current(now, |_| ()).unwrap_err();
        assert!(matches!(
            err,
            ProxyError::CredentialsUnavailable(CredentialsProblem::NotLoaded)
        ));
        let expires = now + Duration::from_secs(60);
        live.store(Credentials::new(
            "AK1",
            "SK1",
            Some("T1".into()),
            Some(expires),
            "t",
        ));
        let first = live.with_current(now, |c| c.generation).unwrap();
        assert!(first > 0);
        let err = live.with_current(expires, |_| ()).unwrap_err();
        assert!(matches!(
            err,
            ProxyError::CredentialsUnavailable(CredentialsProblem::Expired)
        ));
        assert!(!err.to_string().contains("SK1"));
        live.store(Credentials::new("AK2", "SK2", None, None, "t"));
        let second = live.with_current(expires, |c| c.generation).unwrap();
        assert_ne!(first, second);
    }
}
