//! Verifying one token against one `jwt:` configuration.
//!
//! The algorithm is fixed by the configured keys, never by the token: the
//! header's `alg` only selects among keys configured for it, so `alg: none`,
//! an HS256 token against an RSA key, or any other algorithm is refused
//! before any cryptography runs. A header with `crit` is refused
//! ([`super::critical`]). `jsonwebtoken` does the verification.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::claims_rules;
use super::critical::refuse_critical;
use super::jwks::JwksCache;
use super::keys::{KeySet, VerifyKey};
use super::token_cache::TokenCache;
use crate::config::ranges::MAX_LEEWAY_SECONDS;
use crate::config::{ClaimRule, JwtConfig, KeySource};
use crate::error::TokenProblem;

/// The claims of a token that verified, and the key that verified it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Every claim of the token.
    pub claims: Arc<Map<String, Value>>,
    /// The `kid` of the key used, when it had one.
    pub key_id: Option<String>,
    /// The token's payload segment, which the claims were decoded from.
    pub payload: Option<Arc<str>>,
    /// Whether the claims satisfy every `claims_verification` rule
    /// (evaluated once per token, like the signature).
    pub rules_hold: bool,
    /// Whether this came from the verified-token cache (the token verified
    /// on an earlier request and is still within its validity).
    pub cached: bool,
}

/// Why a token was not accepted.
#[derive(Debug, Clone)]
pub enum VerifyError {
    /// The token is not valid (401).
    Invalid(TokenProblem),
    /// The token's `kid` is not in the JWKS (or no JWKS is loaded): a
    /// refresh may be worth trying before answering.
    RefreshKeys(Arc<JwksCache>, TokenProblem),
}

/// Where a verifier's keys come from.
#[derive(Debug, Clone)]
enum Keys {
    Static(Arc<KeySet>),
    Jwks(Arc<JwksCache>),
}

/// Verifies tokens for one `jwt:` configuration (one per bucket, or admin).
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: Keys,
    /// One validation per algorithm (exp/nbf with leeway, iss, aud).
    validations: Arc<[(Algorithm, Validation)]>,
    rules: Arc<[ClaimRule]>,
    /// Tokens that already verified (`None` when `token_cache_size` is 0).
    cache: Option<Arc<TokenCache>>,
}

const ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl JwtVerifier {
    /// A verifier with keys in hand (a secret, PEM files, `keys:`).
    pub fn with_keys(config: &JwtConfig, keys: Arc<KeySet>) -> Self {
        Self::new(config, Keys::Static(keys))
    }

    /// A verifier whose keys come from a shared JWKS cache.
    pub(crate) fn with_jwks(config: &JwtConfig, cache: Arc<JwksCache>) -> Self {
        Self::new(config, Keys::Jwks(cache))
    }

    /// A verifier for a configuration with static keys; `None` for JWKS.
    pub fn from_static_config(config: &JwtConfig) -> Option<Self> {
        match &config.keys {
            KeySource::Static(keys) => {
                Some(Self::with_keys(config, Arc::new(KeySet::from_config(keys))))
            }
            KeySource::Jwks { .. } => None,
        }
    }

    fn new(config: &JwtConfig, keys: Keys) -> Self {
        super::prepared_keys::install_crypto_provider();
        let leeway = config.leeway.as_secs().min(MAX_LEEWAY_SECONDS);
        let validations = ALGORITHMS
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                // Bounded: the library computes `now - leeway` unchecked.
                v.leeway = leeway;
                v.validate_nbf = true;
                let mut required = vec!["exp"];
                if let Some(issuer) = &config.issuer {
                    v.set_issuer(&[issuer]);
                    required.push("iss");
                }
                if config.audience.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&config.audience);
                    required.push("aud");
                }
                v.set_required_spec_claims(&required);
                (alg, v)
            })
            .collect();
        let cache = (config.token_cache_size > 0)
            .then(|| Arc::new(TokenCache::new(config.token_cache_size, leeway)));
        Self {
            keys,
            validations,
            rules: config.claim_rules.clone().into(),
            cache,
        }
    }

    /// The JWKS cache behind this verifier, if any.
    pub(crate) fn jwks(&self) -> Option<&Arc<JwksCache>> {
        match &self.keys {
            Keys::Jwks(cache) => Some(cache),
            Keys::Static(_) => None,
        }
    }

    /// Verifies signature, algorithm, `exp`/`nbf` (with leeway), `iss` and
    /// `aud`, and evaluates the claim rules ([`Verified::rules_hold`]). A
    /// token that verified before with the current keys and is still within
    /// its validity is answered from the verified-token cache.
    pub fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        // The keys in use, or the JWKS cache that has none loaded yet.
        let current = match &self.keys {
            Keys::Static(set) => Ok(set.clone()),
            Keys::Jwks(cache) => cache.current().ok_or(cache),
        };
        if let (Some(cache), Ok(set)) = (&self.cache, &current)
            && let Some(verified) = cache.get(token, set, unix_now())
        {
            return Ok(verified);
        }
        // Before any key is tried, so a token naming extensions this verifier
        // does not understand is never verified, nor cached.
        refuse_critical(token).map_err(VerifyError::Invalid)?;
        if let Ok(set) = &current
            && let Some(answer) = self.verify_with_sole_key(token, set)
        {
            return answer;
        }
        self.verify_by_header(token, current)
    }

    /// One key without an id (a `secret:` or a key file): `jsonwebtoken`
    /// reads the header itself, so it is not read here. `None` when the
    /// set is not that, or the token is refused for its header: the full
    /// path then names the problem exactly as for any other key set.
    fn verify_with_sole_key(
        &self,
        token: &str,
        set: &Arc<KeySet>,
    ) -> Option<Result<Verified, VerifyError>> {
        let key = set.sole_unnamed()?;
        let validation = self.validation(key.algorithm)?;
        match self.decode(token, key, set, validation) {
            Ok(verified) => Some(Ok(verified)),
            Err(e) if !header_error(e.kind()) => Some(Err(VerifyError::Invalid(
                signature_or_claims_problem(e.kind()),
            ))),
            Err(_) => None,
        }
    }

    /// Picks the keys by the token's `kid` and algorithm and tries each;
    /// a JWKS set without the key (or without keys yet) asks for a refresh.
    fn verify_by_header(
        &self,
        token: &str,
        current: Result<Arc<KeySet>, &Arc<JwksCache>>,
    ) -> Result<Verified, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| VerifyError::Invalid(header_problem(&e)))?;
        let kid = header.kid.as_deref();
        let set = current.map_err(|jwks| {
            VerifyError::RefreshKeys(jwks.clone(), TokenProblem::KeysUnavailable)
        })?;
        let selection = match set.select(kid, header.alg) {
            Ok(selection) => selection,
            Err(TokenProblem::UnknownKey) => {
                return Err(match &self.keys {
                    Keys::Jwks(cache) => {
                        VerifyError::RefreshKeys(cache.clone(), TokenProblem::UnknownKey)
                    }
                    Keys::Static(_) => VerifyError::Invalid(TokenProblem::UnknownKey),
                });
            }
            Err(problem) => return Err(VerifyError::Invalid(problem)),
        };
        let validation = self
            .validation(header.alg)
            .ok_or(VerifyError::Invalid(TokenProblem::WrongAlgorithm))?;
        let mut problem = TokenProblem::BadSignature;
        for key in selection.keys() {
            match self.decode(token, key, &set, validation) {
                Ok(verified) => return Ok(verified),
                // Another key of the same algorithm may verify it.
                Err(e) if signature_error(e.kind()) => problem = TokenProblem::BadSignature,
                Err(e) => return Err(VerifyError::Invalid(claims_problem(e.kind()))),
            }
        }
        Err(VerifyError::Invalid(problem))
    }

    /// The validation (exp/nbf, iss, aud) for tokens of this algorithm.
    fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }

    /// Verifies the token with one key; on success evaluates the claim rules
    /// and remembers the token in the verified-token cache.
    fn decode(
        &self,
        token: &str,
        key: &VerifyKey,
        set: &Arc<KeySet>,
        validation: &Validation,
    ) -> Result<Verified, jsonwebtoken::errors::Error> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)?;
        let verified = Verified {
            rules_hold: self.claims_allowed(&data.claims),
            claims: Arc::new(data.claims),
            key_id: key.id.clone(),
            payload: token.split('.').nth(1).map(Arc::from),
            cached: false,
        };
        if let Some(cache) = &self.cache {
            cache.insert(token, set, &verified);
        }
        Ok(verified)
    }

    /// Whether the verified claims satisfy every `claims_verification` rule.
    pub fn claims_allowed(&self, claims: &Map<String, Value>) -> bool {
        claims_rules::all_hold(&self.rules, claims)
    }
}

/// Seconds since the epoch, as `jsonwebtoken` reads the clock.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why the header could not be read: an `alg` the library does not know
/// (`none` included) is a wrong algorithm, anything else is malformed.
fn header_problem(error: &jsonwebtoken::errors::Error) -> TokenProblem {
    match error.kind() {
        // serde's message for an `alg` outside the `Algorithm` enum.
        ErrorKind::Json(e) if e.to_string().contains("unknown variant") => {
            TokenProblem::WrongAlgorithm
        }
        _ => TokenProblem::Malformed,
    }
}

/// Errors `jsonwebtoken::decode` reports for the token's shape or header
/// (before any signature check), including an algorithm the key does not
/// take.
fn header_error(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
    )
}

/// A signature that does not verify with the key (or a key that cannot
/// verify it): another key of the same algorithm may still verify it.
fn signature_error(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat
    )
}

/// What is wrong with a token one key did not accept.
fn signature_or_claims_problem(kind: &ErrorKind) -> TokenProblem {
    if signature_error(kind) {
        TokenProblem::BadSignature
    } else {
        claims_problem(kind)
    }
}

fn claims_problem(kind: &ErrorKind) -> TokenProblem {
    match kind {
        ErrorKind::ExpiredSignature => TokenProblem::Expired,
        ErrorKind::ImmatureSignature => TokenProblem::NotYetValid,
        ErrorKind::InvalidIssuer => TokenProblem::WrongIssuer,
        ErrorKind::InvalidAudience => TokenProblem::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => TokenProblem::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => TokenProblem::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenProblem::WrongAlgorithm,
        _ => TokenProblem::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{DecodingKey, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::keys::VerifyKey;
    use crate::config::{ClaimOperator, TokenSource};

    const SECRET: &[u8] = b"unit-test-secret-0123456789abcdef";

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn config() -> JwtConfig {
        JwtConfig {
            keys: KeySource::Static(Vec::new()),
            issuer: Some("https://issuer/".into()),
            audience: vec!["api".into()],
            leeway: Duration::from_secs(10),
            token_sources: vec![TokenSource::Bearer],
            claim_rules: vec![ClaimRule {
                claim: "role".into(),
                path: vec!["role".into()],
                operator: ClaimOperator::Equals(json!("admin")),
            }],
            token_cache_size: 0,
        }
    }

    fn hs_verifier(id: Option<&str>) -> JwtVerifier {
        let keys = KeySet::new(vec![VerifyKey {
            id: id.map(str::to_owned),
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(SECRET),
        }]);
        JwtVerifier::with_keys(&config(), Arc::new(keys))
    }

    fn token(alg: Algorithm, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        signed(&header, claims)
    }

    fn signed(header: &Header, claims: Value) -> String {
        let mut c = json!({"sub": "u", "iss": "https://issuer/", "aud": "api", "exp": now() + 60});
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        jsonwebtoken::encode(header, &c, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn problem(v: &JwtVerifier, token: &str) -> TokenProblem {
        match v.verify(token) {
            Err(VerifyError::Invalid(p)) => p,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn valid_token_and_its_claims() {
        let v = hs_verifier(Some("k"));
        let verified = v
            .verify(&token(
                Algorithm::HS256,
                Some("k"),
                json!({"role": "admin"}),
            ))
            .unwrap();
        assert_eq!(verified.key_id.as_deref(), Some("k"));
        assert!(v.claims_allowed(&verified.claims));
        let verified = v
            .verify(&token(Algorithm::HS256, None, json!({"role": "user"})))
            .unwrap();
        assert!(!v.claims_allowed(&verified.claims));
    }

    #[test]
    fn a_token_sent_again_is_answered_by_the_cache() {
        let mut cached_config = config();
        cached_config.token_cache_size = 10;
        let keys = KeySet::new(vec![VerifyKey {
            id: None,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(SECRET),
        }]);
        let v = JwtVerifier::with_keys(&cached_config, Arc::new(keys));
        let t = token(Algorithm::HS256, None, json!({"role": "admin"}));
        let first = v.verify(&t).unwrap();
        assert!(!first.cached && first.rules_hold);
        let again = v.verify(&t).unwrap();
        assert!(again.cached && again.rules_hold);
        assert_eq!(again.claims, first.claims);
        assert_eq!(again.payload, first.payload);
        // The rules' outcome is remembered with the token, a denial too.
        let user = token(Algorithm::HS256, None, json!({"role": "user"}));
        assert!(!v.verify(&user).unwrap().rules_hold);
        let user_again = v.verify(&user).unwrap();
        assert!(user_again.cached && !user_again.rules_hold);
        // Without the cache (`token_cache_size: 0`), every call verifies.
        let uncached = hs_verifier(None);
        assert!(!uncached.verify(&t).unwrap().cached);
        assert!(!uncached.verify(&t).unwrap().cached);
    }

    /// The same refusals whether the token goes through the key set's
    /// selection (a named key) or straight to the sole unnamed key.
    #[test]
    fn refusals_name_the_problem() {
        for id in [Some("k"), None] {
            let v = hs_verifier(id);
            let cases = [
                (json!({"exp": now() - 60}), TokenProblem::Expired),
                (json!({"nbf": now() + 120}), TokenProblem::NotYetValid),
                (json!({"iss": "https://other/"}), TokenProblem::WrongIssuer),
                (json!({"aud": "other"}), TokenProblem::WrongAudience),
            ];
            for (claims, expected) in cases {
                let t = token(Algorithm::HS256, None, claims.clone());
                assert_eq!(problem(&v, &t), expected, "{id:?} {claims}");
            }
            // Within the leeway.
            let t = token(Algorithm::HS256, None, json!({"exp": now() - 2}));
            assert!(v.verify(&t).is_ok());
            assert_eq!(problem(&v, "a.b"), TokenProblem::Malformed);
            assert_eq!(problem(&v, "a.b.c"), TokenProblem::Malformed);
            assert_eq!(
                problem(&v, &token(Algorithm::HS384, None, json!({}))),
                TokenProblem::WrongAlgorithm
            );
            // A kid naming no key: refused when the key has an id, verified
            // by the key without one.
            let other_kid = token(Algorithm::HS256, Some("other"), json!({}));
            match id {
                Some(_) => assert_eq!(problem(&v, &other_kid), TokenProblem::UnknownKey),
                None => assert!(v.verify(&other_kid).is_ok()),
            }
            assert_eq!(
                problem(&v, &token(Algorithm::HS384, Some("other"), json!({}))),
                TokenProblem::UnknownKey
            );
            let t = token(Algorithm::HS256, None, json!({}));
            let payload = t.split('.').nth(1).unwrap();
            // {"alg":"none"}
            assert_eq!(
                problem(&v, &format!("eyJhbGciOiJub25lIn0.{payload}.")),
                TokenProblem::WrongAlgorithm
            );
            let (signed, signature) = t.rsplit_once('.').unwrap();
            let first = if signature.starts_with('A') { 'B' } else { 'A' };
            let tampered = format!("{signed}.{first}{}", &signature[1..]);
            assert_eq!(problem(&v, &tampered), TokenProblem::BadSignature);
        }
    }

    /// RFC 7515 §4.1.11: no extension is understood, so any `crit` is
    /// refused, by either path, and such a token never enters the cache.
    #[test]
    fn a_token_with_crit_is_refused_and_never_cached() {
        let mut cached_config = config();
        cached_config.token_cache_size = 10;
        for id in [Some("k"), None] {
            let keys = KeySet::new(vec![VerifyKey {
                id: id.map(str::to_owned),
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(SECRET),
            }]);
            let v = JwtVerifier::with_keys(&cached_config, Arc::new(keys));
            for crit in [vec!["exp2".to_owned()], vec!["b64".to_owned()], Vec::new()] {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = id.map(str::to_owned);
                header.crit = Some(crit);
                header.extras.insert("b64", false);
                let t = signed(&header, json!({"role": "admin"}));
                for _ in 0..2 {
                    assert_eq!(problem(&v, &t), TokenProblem::UnsupportedCritical);
                }
            }
            let cache = v.cache.as_ref().unwrap();
            assert_eq!(cache.len(), 0);
            let mut header = Header::new(Algorithm::HS256);
            header.kid = id.map(str::to_owned);
            let t = signed(&header, json!({"role": "admin"}));
            assert!(v.verify(&t).is_ok());
            assert_eq!(cache.len(), 1);
        }
    }
}
