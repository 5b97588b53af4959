//! Verification keys and how a token's header selects among them.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::StaticKey;
use crate::error::TokenProblem;

/// One key and the only algorithm it verifies.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    /// The `kid` that selects it, when it has one.
    pub id: Option<String>,
    /// The algorithm fixed for it (never taken from the token).
    pub algorithm: Algorithm,
    /// The parsed key.
    pub key: DecodingKey,
}

/// The keys one verifier may use, indexed by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
    by_id: HashMap<String, usize>,
}

/// Which keys a token may be verified with.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// The token's `kid` names this key.
    Named(&'a VerifyKey),
    /// Every key of the token's algorithm (without a `kid` on the token), or
    /// every key without an id (when the token's `kid` names none).
    Each(&'a KeySet, Algorithm, bool),
}

impl<'a> Selection<'a> {
    /// The candidate keys, in configuration order.
    pub fn keys(self) -> impl Iterator<Item = &'a VerifyKey> {
        let (named, all) = match self {
            Self::Named(key) => (Some(key), None),
            Self::Each(set, alg, only_unnamed) => (
                None,
                Some(
                    set.keys
                        .iter()
                        .filter(move |k| k.algorithm == alg && (!only_unnamed || k.id.is_none())),
                ),
            ),
        };
        named.into_iter().chain(all.into_iter().flatten())
    }
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: Vec<VerifyKey>) -> Self {
        let by_id = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.id.clone().map(|id| (id, i)))
            .collect();
        Self { keys, by_id }
    }

    /// The keys of a `jwt:` section.
    pub(crate) fn from_config(keys: &[StaticKey]) -> Self {
        Self::new(
            keys.iter()
                .map(|k| VerifyKey {
                    id: k.id.clone(),
                    algorithm: k.algorithm,
                    key: k.key.clone(),
                })
                .collect(),
        )
    }

    /// The usable signature keys of a JWKS document: RSA, EC P-256/P-384 and
    /// Ed25519; symmetric keys, encryption keys (`use: enc`) and keys whose
    /// algorithm differs from `only` (when set) are left out.
    pub fn from_jwks(set: &JwkSet, only: Option<Algorithm>) -> Self {
        let keys = set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let natural = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                        EllipticCurve::P256 => Algorithm::ES256,
                        EllipticCurve::P384 => Algorithm::ES384,
                        _ => return None,
                    },
                    AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
                        EllipticCurve::Ed25519 => Algorithm::EdDSA,
                        _ => return None,
                    },
                    // Symmetric keys never come from a public key set.
                    _ => return None,
                };
                let declared = match jwk.common.key_algorithm {
                    Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
                    None => None,
                };
                let algorithm = match (only, declared) {
                    (Some(only), Some(declared)) if only != declared => return None,
                    (Some(only), _) => only,
                    (None, Some(declared)) => declared,
                    (None, None) => natural,
                };
                let family_matches = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => matches!(
                        algorithm,
                        Algorithm::RS256
                            | Algorithm::RS384
                            | Algorithm::RS512
                            | Algorithm::PS256
                            | Algorithm::PS384
                            | Algorithm::PS512
                    ),
                    _ => algorithm == natural,
                };
                if !family_matches {
                    return None;
                }
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(VerifyKey {
                    id: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                })
            })
            .collect();
        Self::new(keys)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key has this `kid`.
    pub fn has_id(&self, kid: &str) -> bool {
        self.by_id.contains_key(kid)
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.by_id.get(kid).map(|&i| &self.keys[i])
    }

    /// The keys a token with this header may be verified with.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<Selection<'_>, TokenProblem> {
        match kid {
            Some(kid) => match self.get(kid) {
                Some(key) if key.algorithm == alg => Ok(Selection::Named(key)),
                Some(_) => Err(TokenProblem::WrongAlgorithm),
                None if self
                    .keys
                    .iter()
                    .any(|k| k.id.is_none() && k.algorithm == alg) =>
                {
                    Ok(Selection::Each(self, alg, true))
                }
                None => Err(TokenProblem::UnknownKey),
            },
            None if self.keys.iter().any(|k| k.algorithm == alg) => {
                Ok(Selection::Each(self, alg, false))
            }
            None => Err(TokenProblem::WrongAlgorithm),
        }
    }

    /// The only key, when the set has exactly one and it has no `kid`: any
    /// token, with or without a `kid`, can only be verified with it.
    pub fn sole_unnamed(&self) -> Option<&VerifyKey> {
        match self.keys.as_slice() {
            [key] if key.id.is_none() => Some(key),
            _ => None,
        }
    }

    /// Whether some key verifies `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|k| k.algorithm == alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(id: Option<&str>) -> VerifyKey {
        VerifyKey {
            id: id.map(str::to_owned),
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        }
    }

    #[test]
    fn kid_selects_and_algorithm_must_match() {
        let set = KeySet::new(vec![hs(Some("a")), hs(Some("b"))]);
        assert!(matches!(
            set.select(Some("b"), Algorithm::HS256),
            Ok(Selection::Named(k)) if k.id.as_deref() == Some("b")
        ));
        assert_eq!(
            set.select(Some("b"), Algorithm::RS256).unwrap_err(),
            TokenProblem::WrongAlgorithm
        );
        assert_eq!(
            set.select(Some("zzz"), Algorithm::HS256).unwrap_err(),
            TokenProblem::UnknownKey
        );
        assert_eq!(
            set.select(None, Algorithm::HS256).unwrap().keys().count(),
            2
        );
        assert_eq!(
            set.select(None, Algorithm::ES256).unwrap_err(),
            TokenProblem::WrongAlgorithm
        );
    }

    #[test]
    fn unknown_kid_falls_back_to_keys_without_id() {
        let set = KeySet::new(vec![hs(Some("a")), hs(None)]);
        let keys: Vec<_> = set
            .select(Some("other"), Algorithm::HS256)
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].id.is_none());
    }

    #[test]
    fn jwks_keeps_signature_keys_only() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]});
        let set: JwkSet = serde_json::from_value(doc).unwrap();
        let keys = KeySet::from_jwks(&set, None);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("ed").unwrap().algorithm, Algorithm::EdDSA);
        assert!(KeySet::from_jwks(&set, Some(Algorithm::RS256)).is_empty());
    }
}
