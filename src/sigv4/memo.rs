//! Reuse of a request's signature within its second.
//!
//! A SigV4 signature depends only on the method, the URI, the signed
//! headers, the credentials, the region and the time to the second
//! (`x-amz-date`). Requests for the same object within one second, which is
//! what a hot object under load produces, would all be signed alike, so
//! each backend remembers the signing headers it made during the current
//! second and puts the same ones on the next such request instead of
//! running the signer (about 6 µs) again. The memo forgets everything when
//! the second changes and holds at most [`MAX_ENTRIES`] requests. Only
//! requests whose sole signed header is `Host` are remembered; a request
//! carrying `x-amz-*` headers is always signed afresh. Run-time credentials
//! carry a generation: when they are refreshed, the memo forgets what was
//! signed with the previous ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Request, header};

use aws_smithy_runtime_api::client::identity::Identity;

use super::sign::{SigningHeaders, apply, is_signed, signing_headers};
use crate::backend::S3Backend;
use crate::error::ProxyError;

/// How many distinct requests one backend remembers within one second.
const MAX_ENTRIES: usize = 256;

/// The signatures one backend made during the current second.
#[derive(Debug, Default)]
pub struct SignatureMemo {
    current: Mutex<Second>,
}

#[derive(Debug, Default)]
struct Second {
    at: u64,
    /// The credentials' generation the signatures were made with (0 for
    /// configured keys).
    generation: u64,
    signed: HashMap<MemoKey, Arc<SigningHeaders>>,
}

/// Everything a remembered signature covers besides the backend's
/// credentials and region and the second.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MemoKey {
    method: Method,
    uri: String,
    host: Option<HeaderValue>,
}

/// How a request got its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The bucket is anonymous: nothing to sign.
    Anonymous,
    /// The signer ran.
    Fresh,
    /// The same request was signed earlier in this second; its signing
    /// headers were reused.
    Reused,
}

impl SignatureMemo {
    /// Signs `request` for `backend` at `time`, reusing this second's
    /// signature of the same request when there is one. With run-time
    /// credentials, fails with [`ProxyError::CredentialsUnavailable`] when
    /// none are valid at `time`.
    pub fn sign<B>(
        &self,
        request: &mut Request<B>,
        backend: &S3Backend,
        time: SystemTime,
    ) -> Result<Signed, ProxyError> {
        if let Some(live) = &backend.credentials {
            return live.with_current(time, |current| {
                self.sign_with(
                    request,
                    backend,
                    &current.identity,
                    current.generation,
                    time,
                )
            })?;
        }
        let Some(identity) = &backend.identity else {
            return Ok(Signed::Anonymous);
        };
        self.sign_with(request, backend, identity, 0, time)
    }

    fn sign_with<B>(
        &self,
        request: &mut Request<B>,
        backend: &S3Backend,
        identity: &Identity,
        generation: u64,
        time: SystemTime,
    ) -> Result<Signed, ProxyError> {
        let second = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let key = MemoKey {
            method: request.method().clone(),
            uri: request.uri().to_string(),
            host: request.headers().get(header::HOST).cloned(),
        };
        let memorable = request
            .headers()
            .keys()
            .all(|name| name == header::HOST || !is_signed(name));
        if memorable && let Some(signing) = self.lookup(second, generation, &key) {
            apply(request, &signing);
            return Ok(Signed::Reused);
        }
        let signing = signing_headers(
            identity,
            &backend.region,
            &key.method,
            &key.uri,
            request.headers(),
            time,
        )?;
        apply(request, &signing);
        if memorable {
            self.remember(second, generation, key, Arc::new(signing));
        }
        Ok(Signed::Fresh)
    }

    fn lookup(&self, second: u64, generation: u64, key: &MemoKey) -> Option<Arc<SigningHeaders>> {
        let current = self.current.lock().ok()?;
        if current.at != second || current.generation != generation {
            return None;
        }
        current.signed.get(key).cloned()
    }

    fn remember(&self, second: u64, generation: u64, key: MemoKey, signing: Arc<SigningHeaders>) {
        // A poisoned lock only costs the reuse.
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        if current.at != second || current.generation != generation {
            current.at = second;
            current.generation = generation;
            current.signed.clear();
        }
        if current.signed.len() < MAX_ENTRIES {
            current.signed.insert(key, signing);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::header::{AUTHORIZATION, HOST, RANGE};
    use http::{HeaderName, Request};

    use super::*;
    use crate::sigv4::sign_request;

    fn backend() -> S3Backend {
        super::super::backend_for_tests(Some("session-token"))
    }

    fn request(backend: &S3Backend, method: Method, key: &str) -> Request<()> {
        let mut request = Request::builder()
            .method(method)
            .uri(backend.object_uri(key, "").unwrap())
            .body(())
            .unwrap();
        request.headers_mut().insert(HOST, backend.host().clone());
        request
    }

    fn signing(request: &Request<()>) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers: Vec<_> = request
            .headers()
            .iter()
            .filter(|(name, _)| *name == AUTHORIZATION || name.as_str().starts_with("x-amz-"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        headers
    }

    /// What the signer alone puts on the request at `time`.
    fn fresh(
        backend: &S3Backend,
        method: Method,
        key: &str,
        time: SystemTime,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut request = request(backend, method, key);
        sign_request(&mut request, backend, time).unwrap();
        signing(&request)
    }

    #[test]
    fn the_same_request_in_the_same_second_reuses_the_signature() {
        let backend = backend();
        let memo = SignatureMemo::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_100);
        let mut first = request(&backend, Method::GET, "hot/object.bin");
        assert_eq!(memo.sign(&mut first, &backend, t).unwrap(), Signed::Fresh);
        assert_eq!(
            signing(&first),
            fresh(&backend, Method::GET, "hot/object.bin", t)
        );

        // Later in the same second, with an unsigned Range header.
        let later = t + Duration::from_millis(800);
        let mut again = request(&backend, Method::GET, "hot/object.bin");
        again
            .headers_mut()
            .insert(RANGE, HeaderValue::from_static("bytes=0-9"));
        assert_eq!(
            memo.sign(&mut again, &backend, later).unwrap(),
            Signed::Reused
        );
        assert_eq!(
            signing(&again),
            fresh(&backend, Method::GET, "hot/object.bin", later)
        );
        assert_eq!(again.headers()[RANGE], "bytes=0-9");
        assert!(again.headers()[AUTHORIZATION].is_sensitive());
        assert!(again.headers().contains_key("x-amz-security-token"));

        // The next second signs afresh, with its own date.
        let next = t + Duration::from_secs(1);
        let mut third = request(&backend, Method::GET, "hot/object.bin");
        assert_eq!(
            memo.sign(&mut third, &backend, next).unwrap(),
            Signed::Fresh
        );
        assert_eq!(
            signing(&third),
            fresh(&backend, Method::GET, "hot/object.bin", next)
        );
        assert_ne!(third.headers()["x-amz-date"], first.headers()["x-amz-date"]);
    }

    #[test]
    fn another_object_method_or_signed_header_is_signed_afresh() {
        let backend = backend();
        let memo = SignatureMemo::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut a = request(&backend, Method::GET, "a.bin");
        memo.sign(&mut a, &backend, t).unwrap();

        let mut b = request(&backend, Method::GET, "b.bin");
        assert_eq!(memo.sign(&mut b, &backend, t).unwrap(), Signed::Fresh);
        assert_eq!(signing(&b), fresh(&backend, Method::GET, "b.bin", t));
        assert_ne!(b.headers()[AUTHORIZATION], a.headers()[AUTHORIZATION]);

        let mut head = request(&backend, Method::HEAD, "a.bin");
        assert_eq!(memo.sign(&mut head, &backend, t).unwrap(), Signed::Fresh);
        assert_eq!(signing(&head), fresh(&backend, Method::HEAD, "a.bin", t));

        // A signed x-amz-* header is never remembered nor reused.
        for _ in 0..2 {
            let mut sse = request(&backend, Method::GET, "a.bin");
            sse.headers_mut().insert(
                "x-amz-server-side-encryption-customer-algorithm",
                HeaderValue::from_static("AES256"),
            );
            assert_eq!(memo.sign(&mut sse, &backend, t).unwrap(), Signed::Fresh);
            assert!(
                sse.headers()[AUTHORIZATION]
                    .to_str()
                    .unwrap()
                    .contains("x-amz-server-side-encryption-customer-algorithm")
            );
        }
        let mut a_again = request(&backend, Method::GET, "a.bin");
        assert_eq!(
            memo.sign(&mut a_again, &backend, t).unwrap(),
            Signed::Reused
        );
    }

    #[test]
    fn refreshed_credentials_are_never_signed_with_the_old_signature() {
        use crate::config::{CredentialSource, Provider};
        use crate::credentials::LiveCredentials;
        use aws_credential_types::Credentials;

        let live = Arc::new(LiveCredentials::new(CredentialSource {
            provider: Provider::Imds,
            region: "eu-west-1".into(),
        }));
        let backend = S3Backend::for_tests().with_live_credentials(live.clone());
        let memo = SignatureMemo::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut r = request(&backend, Method::GET, "a.bin");
        let err = memo.sign(&mut r, &backend, t).unwrap_err();
        assert_eq!(err.code(), "CredentialsUnavailable");
        assert!(!r.headers().contains_key(AUTHORIZATION));

        let expires = t + Duration::from_secs(60);
        live.store(Credentials::new(
            "AKIDA",
            "secret-a",
            Some("token-a".into()),
            Some(expires),
            "t",
        ));
        let mut a = request(&backend, Method::GET, "a.bin");
        assert_eq!(memo.sign(&mut a, &backend, t).unwrap(), Signed::Fresh);
        assert_eq!(a.headers()["x-amz-security-token"], "token-a");
        let mut again = request(&backend, Method::GET, "a.bin");
        assert_eq!(memo.sign(&mut again, &backend, t).unwrap(), Signed::Reused);

        live.store(Credentials::new(
            "AKIDB",
            "secret-b",
            Some("token-b".into()),
            None,
            "t",
        ));
        let mut b = request(&backend, Method::GET, "a.bin");
        assert_eq!(memo.sign(&mut b, &backend, t).unwrap(), Signed::Fresh);
        assert_eq!(b.headers()["x-amz-security-token"], "token-b");
        assert!(
            b.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .contains("Credential=AKIDB/")
        );

        // Expired credentials that could not be refreshed: nothing is signed.
        live.store(Credentials::new(
            "AKIDC",
            "secret-c",
            None,
            Some(expires),
            "t",
        ));
        let mut late = request(&backend, Method::GET, "a.bin");
        let err = memo.sign(&mut late, &backend, expires).unwrap_err();
        assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(!err.to_string().contains("secret-c"));
    }

    #[test]
    fn anonymous_buckets_are_not_signed() {
        let backend = S3Backend::for_tests();
        let memo = SignatureMemo::default();
        let mut r = request(&backend, Method::GET, "a.bin");
        assert_eq!(
            memo.sign(&mut r, &backend, SystemTime::now()).unwrap(),
            Signed::Anonymous
        );
        assert!(!r.headers().contains_key(AUTHORIZATION));
    }

    #[test]
    fn the_memo_is_bounded_within_a_second() {
        let backend = backend();
        let memo = SignatureMemo::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for i in 0..MAX_ENTRIES + 10 {
            let mut r = request(&backend, Method::GET, &format!("k{i}"));
            memo.sign(&mut r, &backend, t).unwrap();
        }
        assert_eq!(memo.current.lock().unwrap().signed.len(), MAX_ENTRIES);
        let mut last = request(&backend, Method::GET, &format!("k{}", MAX_ENTRIES + 5));
        assert_eq!(memo.sign(&mut last, &backend, t).unwrap(), Signed::Fresh);
    }
}
