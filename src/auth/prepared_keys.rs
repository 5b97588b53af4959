//! A `jsonwebtoken` crypto provider that verifies with keys prepared once.
//!
//! `jsonwebtoken`'s own `aws_lc_rs` provider rebuilds the key on every
//! verification: it copies the `DecodingKey`, parses the public key's DER
//! into a fresh aws-lc key (for RSA that includes the Montgomery set-up of
//! the modulus), and derives a fresh HMAC key from the secret. On this
//! project's bench machine that is about a quarter of an RS256 verification.
//!
//! This provider keeps the parsed form of each key it has seen in a small
//! bounded cache keyed by the key's exact bytes and algorithm, and verifies
//! with aws-lc-rs's [`ParsedPublicKey`] and [`hmac::Key`]: the same
//! primitives the stock provider calls, minus the repeated parsing. Token
//! parsing, the algorithm check and claim validation stay `jsonwebtoken`'s.
//! Anything it cannot prepare (a key of another family than the algorithm,
//! bytes aws-lc rejects) goes to the stock provider, so errors are the
//! stock provider's errors. Signing and JWK utilities are the stock ones.
//!
//! The provider is process-wide: the binary installs it first thing, and
//! building a [`JwtVerifier`](super::JwtVerifier) installs it too. When the
//! embedding application installed its own provider first, or signed or
//! verified a token before (which fixes `jsonwebtoken`'s choice), that
//! provider stays and verification keeps the stock cost.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Once};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self as lc, ParsedPublicKey, VerificationAlgorithm};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, aws_lc};
use jsonwebtoken::errors::Result as JwtResult;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use quick_cache::Equivalent;
use quick_cache::sync::Cache;

/// How many prepared keys are kept: far more than any deployment's live
/// keys (configured keys plus the current JWKS of every bucket). An evicted
/// key is prepared again on its next use; nothing is ever verified with a
/// key other than the one asked for.
const CAPACITY: usize = 1024;

static PREPARED: LazyLock<Cache<OwnedKey, Arc<PreparedKey>>> =
    LazyLock::new(|| Cache::new(CAPACITY));

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: aws_lc::DEFAULT_PROVIDER.signer_factory,
    verifier_factory: prepared_verifier,
    key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Makes Yatagarasu's provider (keys parsed once, see the module docs) the
/// process's `jsonwebtoken` crypto provider. `jsonwebtoken` fixes its
/// provider at its first signature or verification, so call this before
/// any; building a verifier calls it too. Calling it again, or after the
/// application installed a provider of its own, changes nothing.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if CryptoProvider::install_default(&PROVIDER).is_err() {
            tracing::debug!(
                "a jsonwebtoken crypto provider was installed before; keys are parsed per verification"
            );
        }
    });
}

/// A key in the form aws-lc verifies with directly.
enum PreparedKey {
    /// Boxed: an aws-lc HMAC key holds both hash states (over 1 KiB).
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

/// What the provider hands `jsonwebtoken` for one verification.
struct PreparedVerifier {
    algorithm: Algorithm,
    key: Arc<PreparedKey>,
}

impl signature::Verifier<Vec<u8>> for PreparedVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        match &*self.key {
            PreparedKey::Hmac(key) => hmac::verify(key, message, signature),
            PreparedKey::Public(key) => key.verify_sig(message, signature),
        }
        .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for PreparedVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The provider's `verifier_factory`.
fn prepared_verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    let lookup = KeyRef {
        algorithm: *algorithm,
        material: Material::of(key.kind()),
    };
    let prepared = match PREPARED.get(&lookup) {
        Some(prepared) => prepared,
        None => match prepare(*algorithm, key) {
            Some(prepared) => {
                let prepared = Arc::new(prepared);
                PREPARED.insert(lookup.into_owned(), prepared.clone());
                prepared
            }
            None => return (aws_lc::DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
        },
    };
    Ok(Box::new(PreparedVerifier {
        algorithm: *algorithm,
        key: prepared,
    }))
}

/// The parsed key, or `None` when the stock provider should handle it
/// (and report whatever is wrong with it).
fn prepare(algorithm: Algorithm, key: &DecodingKey) -> Option<PreparedKey> {
    if key.family() != algorithm.family() {
        return None;
    }
    if let Some(hmac_algorithm) = hmac_algorithm(algorithm) {
        let secret = key.try_get_as_bytes().ok()?;
        return Some(PreparedKey::Hmac(Box::new(hmac::Key::new(
            hmac_algorithm,
            secret,
        ))));
    }
    let verification = verification_algorithm(algorithm)?;
    let parsed = match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => ParsedPublicKey::new(verification, bytes),
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            let der = PublicKeyComponents { n, e }.as_der().ok()?;
            ParsedPublicKey::new(verification, der.as_ref())
        }
    };
    parsed.ok().map(PreparedKey::Public)
}

fn hmac_algorithm(algorithm: Algorithm) -> Option<hmac::Algorithm> {
    match algorithm {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// The aws-lc algorithm the stock provider verifies each JWT algorithm with.
fn verification_algorithm(algorithm: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match algorithm {
        Algorithm::RS256 => &lc::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &lc::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &lc::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &lc::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &lc::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &lc::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &lc::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &lc::ED25519,
        // HMAC, and whatever a later jsonwebtoken adds: the stock provider.
        _ => return None,
    })
}

/// A key's bytes, borrowed from a `DecodingKey`.
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
enum Material<'a> {
    Bytes(&'a [u8]),
    Rsa { n: &'a [u8], e: &'a [u8] },
}

impl<'a> Material<'a> {
    fn of(kind: &'a DecodingKeyKind) -> Self {
        match kind {
            DecodingKeyKind::SecretOrDer(bytes) => Self::Bytes(bytes),
            DecodingKeyKind::RsaModulusExponent { n, e } => Self::Rsa { n, e },
        }
    }
}

/// The cache lookup: no copy of the key on a hit.
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
struct KeyRef<'a> {
    algorithm: Algorithm,
    material: Material<'a>,
}

impl KeyRef<'_> {
    fn into_owned(self) -> OwnedKey {
        OwnedKey {
            algorithm: self.algorithm,
            kind: match self.material {
                Material::Bytes(bytes) => DecodingKeyKind::SecretOrDer(bytes.to_vec()),
                Material::Rsa { n, e } => DecodingKeyKind::RsaModulusExponent {
                    n: n.to_vec(),
                    e: e.to_vec(),
                },
            },
        }
    }
}

/// The cache key: exactly the algorithm and the bytes that were prepared.
struct OwnedKey {
    algorithm: Algorithm,
    kind: DecodingKeyKind,
}

impl OwnedKey {
    fn borrowed(&self) -> KeyRef<'_> {
        KeyRef {
            algorithm: self.algorithm,
            material: Material::of(&self.kind),
        }
    }
}

// Hashes exactly as its `KeyRef` does, so a borrowed lookup finds it.
impl Hash for OwnedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.borrowed().hash(state);
    }
}

impl PartialEq for OwnedKey {
    fn eq(&self, other: &Self) -> bool {
        self.borrowed() == other.borrowed()
    }
}

impl Eq for OwnedKey {}

impl Equivalent<OwnedKey> for KeyRef<'_> {
    fn equivalent(&self, key: &OwnedKey) -> bool {
        *self == key.borrowed()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/jwt/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// A signed token's `header.payload` and raw signature.
    fn signed(alg: Algorithm, key: &EncodingKey) -> (String, Vec<u8>) {
        let claims = json!({"sub": "u", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        (
            message.to_owned(),
            URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
    }

    fn is_prepared(alg: Algorithm, key: &DecodingKey) -> bool {
        let lookup = KeyRef {
            algorithm: alg,
            material: Material::of(key.kind()),
        };
        PREPARED.get(&lookup).is_some()
    }

    /// Every algorithm family verifies through a prepared key, a second
    /// verification reuses it, and a tampered message or signature fails.
    #[test]
    fn prepared_keys_verify_like_the_stock_provider() {
        let hmac = b"prepared-keys-test-secret-0123456789";
        let cases = [
            (
                Algorithm::HS256,
                EncodingKey::from_secret(hmac),
                DecodingKey::from_secret(hmac),
            ),
            (
                Algorithm::HS512,
                EncodingKey::from_secret(hmac),
                DecodingKey::from_secret(hmac),
            ),
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
                DecodingKey::from_rsa_pem(&fixture("rsa_public.pem")).unwrap(),
            ),
            (
                Algorithm::PS384,
                EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
                DecodingKey::from_rsa_pem(&fixture("rsa_public.pem")).unwrap(),
            ),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&fixture("ec256_private.pem")).unwrap(),
                DecodingKey::from_ec_pem(&fixture("ec256_public.pem")).unwrap(),
            ),
            (
                Algorithm::ES384,
                EncodingKey::from_ec_pem(&fixture("ec384_private.pem")).unwrap(),
                DecodingKey::from_ec_pem(&fixture("ec384_public.pem")).unwrap(),
            ),
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).unwrap(),
                DecodingKey::from_ed_pem(&fixture("ed25519_public.pem")).unwrap(),
            ),
        ];
        for (alg, encoding, decoding) in cases {
            let (message, signature) = signed(alg, &encoding);
            let verifier = prepared_verifier(&alg, &decoding).unwrap();
            assert_eq!(verifier.algorithm(), alg);
            assert!(is_prepared(alg, &decoding), "{alg:?} was not prepared");
            assert!(
                verifier.verify(message.as_bytes(), &signature).is_ok(),
                "{alg:?}"
            );
            let again = prepared_verifier(&alg, &decoding).unwrap();
            assert!(
                again.verify(message.as_bytes(), &signature).is_ok(),
                "{alg:?} again"
            );
            let mut tampered = signature.clone();
            tampered[0] ^= 1;
            assert!(
                again.verify(message.as_bytes(), &tampered).is_err(),
                "{alg:?} signature"
            );
            let other_message = format!("{message}x");
            assert!(
                again.verify(other_message.as_bytes(), &signature).is_err(),
                "{alg:?} message"
            );
        }
    }

    /// Keys are told apart by algorithm and bytes: another secret, or the
    /// same RSA key under another algorithm, does not verify.
    #[test]
    fn prepared_keys_are_per_key_and_algorithm() {
        let (message, signature) = signed(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"prepared-keys-test-secret-one-0123"),
        );
        let other = DecodingKey::from_secret(b"prepared-keys-test-secret-two-0123");
        let verifier = prepared_verifier(&Algorithm::HS256, &other).unwrap();
        assert!(verifier.verify(message.as_bytes(), &signature).is_err());

        let rsa_private = EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap();
        let rsa = DecodingKey::from_rsa_pem(&fixture("rsa_public.pem")).unwrap();
        let (message, signature) = signed(Algorithm::RS256, &rsa_private);
        let pss = prepared_verifier(&Algorithm::PS256, &rsa).unwrap();
        assert!(pss.verify(message.as_bytes(), &signature).is_err());
        let pkcs1 = prepared_verifier(&Algorithm::RS256, &rsa).unwrap();
        assert!(pkcs1.verify(message.as_bytes(), &signature).is_ok());
    }

    /// A JWKS RSA key (modulus and exponent) is prepared from its components.
    #[test]
    fn rsa_components_are_prepared() {
        let encoding = EncodingKey::from_rsa_pem(&fixture("rsa2_private.pem")).unwrap();
        let (message, signature) = signed(Algorithm::RS256, &encoding);
        let der = DecodingKey::from_rsa_pem(&fixture("rsa2_public.pem")).unwrap();
        let (n, e) =
            (aws_lc::DEFAULT_PROVIDER
                .key_utils
                .rsa_pub_components_from_public_key)(der.try_get_as_bytes().unwrap())
            .unwrap();
        let components = DecodingKey::from_rsa_raw_components(&n, &e);
        let verifier = prepared_verifier(&Algorithm::RS256, &components).unwrap();
        assert!(is_prepared(Algorithm::RS256, &components));
        assert!(verifier.verify(message.as_bytes(), &signature).is_ok());
    }

    /// A key of the wrong family is left to the stock provider, which
    /// refuses it as before.
    #[test]
    fn wrong_family_goes_to_the_stock_provider() {
        let rsa = DecodingKey::from_rsa_pem(&fixture("rsa_public.pem")).unwrap();
        assert!(prepared_verifier(&Algorithm::HS256, &rsa).is_err());
        assert!(!is_prepared(Algorithm::HS256, &rsa));
        let secret = DecodingKey::from_secret(b"prepared-keys-test-secret-0123456789");
        assert!(prepared_verifier(&Algorithm::RS256, &secret).is_err());
    }

    #[test]
    fn the_provider_verifies_with_prepared_keys() {
        assert!(std::ptr::fn_addr_eq(
            PROVIDER.verifier_factory,
            prepared_verifier as fn(&Algorithm, &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>>
        ));
    }
}
