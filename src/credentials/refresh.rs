use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;

use super::LiveCredentials;
use super::provider;
use crate::health::Readiness;

/// Refresh at the latest this long before expiry (earlier for short-lived
/// credentials: at half their remaining life).
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry (keys from a profile or the environment)
/// are read again this often, so an edited file is picked up.
const NO_EXPIRY_REFRESH: Duration = Duration::from_secs(15 * 60);
/// The first retry after a failed refresh; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two failed refreshes.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Keeps `live` fresh until nothing uses it any more: asks the provider, then
/// sleeps until shortly before expiry (or, after a failure, for a growing
/// delay that never outlasts the current credentials). Asks the readiness
/// probe to run whenever the bucket gains or loses usable credentials.
pub(crate) async fn run(live: Weak<LiveCredentials>, readiness: Arc<Readiness>) {
    let Some(source) = live.upgrade().map(|l| l.source().clone()) else {
        return;
    };
    let provider = provider::build(&source).await;
    let mut failures: u32 = 0;
    let mut was_valid = false;
    loop {
        let Some(strong) = live.upgrade() else {
            return;
        };
        let wait = match provider.provide_credentials().await {
            Ok(credentials) => {
                failures = 0;
                let expires = strong.store(credentials);
                let until = expires.map_or_else(|| "never".to_owned(), unix_seconds);
                tracing::info!(source = ?source.provider, expires = %until, "credentials refreshed");
                next_refresh(expires, SystemTime::now())
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let error = error_chain(&e);
                tracing::warn!(source = ?source.provider, %error, failures, "credentials refresh failed");
                strong.set_error(Some(error));
                retry_delay(failures, strong.expiry().flatten(), SystemTime::now())
            }
        };
        let valid = strong.with_current(SystemTime::now(), |_| ()).is_ok();
        drop(strong);
        if valid != was_valid {
            readiness.request_probe();
            was_valid = valid;
        }
        tokio::time::sleep(wait).await;
    }
}

/// `error` and its sources, `: `-separated (the SDK's top-level message
/// alone rarely says what went wrong).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// When to refresh credentials that expire at `expires`: [`REFRESH_BEFORE`]
/// before, or at half their remaining life when that is sooner; at least a
/// second from now.
fn next_refresh(expires: Option<SystemTime>, now: SystemTime) -> Duration {
    let Some(expires) = expires else {
        return NO_EXPIRY_REFRESH;
    };
    let remaining = expires.duration_since(now).unwrap_or_default();
    let early = REFRESH_BEFORE.min(remaining / 2);
    (remaining - early).max(Duration::from_secs(1))
}

/// The wait after `failures` failed refreshes in a row: doubling from
/// [`RETRY_MIN`] to [`RETRY_MAX`], but waking at the expiry of the current
/// credentials so readiness changes then.
fn retry_delay(failures: u32, expires: Option<SystemTime>, now: SystemTime) -> Duration {
    let doubling = RETRY_MIN.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let backoff = doubling.min(RETRY_MAX);
    match expires.and_then(|e| e.duration_since(now).ok()) {
        Some(until_expiry) if !until_expiry.is_zero() => backoff.min(until_expiry),
        _ => backoff,
    }
}

/// `expires` as Unix seconds for the log (`httpdate` panics on dates
/// before 1970 or after 9999, which a provider could send).
fn unix_seconds(expires: SystemTime) -> String {
    match expires.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => format!("{} (Unix seconds)", since.as_secs()),
        Err(_) => "before 1970".to_owned(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn any_expiry_can_be_logged() {
        use std::time::{Duration, UNIX_EPOCH};
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(super::unix_seconds(far), "400000000000 (Unix seconds)");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(super::unix_seconds(before), "before 1970");
    }

    use super::*;

    #[test]
    fn refresh_well_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(next_refresh(Some(now + hour), now), hour - REFRESH_BEFORE);
        assert_eq!(
            next_refresh(Some(now + Duration::from_secs(8)), now),
            Duration::from_secs(4)
        );
        assert_eq!(next_refresh(Some(now), now), Duration::from_secs(1));
        assert_eq!(next_refresh(None, now), NO_EXPIRY_REFRESH);
    }

    #[test]
    fn retries_back_off_but_wake_at_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_delay(1, None, now), RETRY_MIN);
        assert_eq!(retry_delay(3, None, now), Duration::from_secs(4));
        assert_eq!(retry_delay(40, None, now), RETRY_MAX);
        let soon = now + Duration::from_millis(1500);
        assert_eq!(retry_delay(9, Some(soon), now), Duration::from_millis(1500));
        assert_eq!(retry_delay(9, Some(now), now), RETRY_MAX);
    }
}
