//! One verification key: an HMAC secret, or a public key read from a PEM
//! file (or given inline) and parsed here, once per load, so a bad key is a
//! configuration error naming the file, never its content.

use std::path::Path;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::{Errors, Secret, Str};

/// HMAC secrets shorter than this are refused.
const MIN_SECRET_BYTES: usize = 16;
/// HMAC secrets shorter than this are accepted with a warning.
const RECOMMENDED_SECRET_BYTES: usize = 32;

/// Whether `algorithm` verifies with a shared secret.
pub(super) fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// Parses an algorithm name, reporting an unknown one at `path`.
pub(super) fn parse_algorithm(name: &str, path: &str, errs: &mut Errors) -> Option<Algorithm> {
    const KNOWN: &str =
        "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
    match Algorithm::from_str(name) {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(path, format!("unknown algorithm; expected one of {KNOWN}"));
            None
        }
    }
}

/// The key options of one `jwt:` section or one `keys[i]` entry.
pub(super) struct RawMaterial {
    pub(super) secret: Option<Str>,
    pub(super) rsa_public_key_path: Option<Str>,
    pub(super) ecdsa_public_key_path: Option<Str>,
    pub(super) public_key_path: Option<Str>,
    pub(super) public_key: Option<Str>,
}

impl RawMaterial {
    /// The names of the key options that are set.
    pub(super) fn present(&self) -> Vec<&'static str> {
        [
            ("secret", self.secret.is_some()),
            ("rsa_public_key_path", self.rsa_public_key_path.is_some()),
            (
                "ecdsa_public_key_path",
                self.ecdsa_public_key_path.is_some(),
            ),
            ("public_key_path", self.public_key_path.is_some()),
            ("public_key", self.public_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }

    /// Reads and parses the one key for `algorithm`.
    pub(super) fn load(
        self,
        algorithm: Algorithm,
        at: &str,
        errs: &mut Errors,
    ) -> Option<DecodingKey> {
        let present = self.present();
        if present.len() > 1 {
            errs.push(
                at,
                format!(
                    "two key sources at once ({}): keep exactly one",
                    present.join(", ")
                ),
            );
            return None;
        }
        let name = format!("{algorithm:?}");
        if is_hmac(algorithm) {
            let Some(Str(secret)) = self.secret else {
                errs.push(format!("{at}.secret"), format!("{name} requires a secret"));
                return None;
            };
            return hmac_key(&secret, algorithm, &format!("{at}.secret"), errs);
        }
        if self.secret.is_some() {
            errs.push(
                format!("{at}.secret"),
                format!("{name} verifies with a public key, not a secret"),
            );
            return None;
        }
        let family = KeyFamily::of(algorithm);
        self.public_pem(family, &name, at, errs)?
            .parse(family, at, errs)
    }

    /// Reads the public key's PEM text from the one option that gives it,
    /// refusing an option of another key family than `family`'s.
    fn public_pem(
        self,
        family: KeyFamily,
        name: &str,
        at: &str,
        errs: &mut Errors,
    ) -> Option<PublicPem> {
        let from_file =
            |option: &'static str, path: String, errs: &mut Errors| -> Option<PublicPem> {
                let pem = read_pem(Path::new(&path), &format!("{at}.{option}"), errs)?;
                Some(PublicPem {
                    option,
                    pem,
                    shown: path,
                })
            };
        let wrong_family = |option: &str, label: &str, errs: &mut Errors| -> Option<PublicPem> {
            errs.push(
                format!("{at}.{option}"),
                format!("{name} does not use an {label} key"),
            );
            None
        };
        if let Some(Str(path)) = self.rsa_public_key_path {
            if family != KeyFamily::Rsa {
                return wrong_family("rsa_public_key_path", "RSA", errs);
            }
            from_file("rsa_public_key_path", path, errs)
        } else if let Some(Str(path)) = self.ecdsa_public_key_path {
            if family != KeyFamily::Ec {
                return wrong_family("ecdsa_public_key_path", "ECDSA", errs);
            }
            from_file("ecdsa_public_key_path", path, errs)
        } else if let Some(Str(path)) = self.public_key_path {
            from_file("public_key_path", path, errs)
        } else if let Some(Str(inline)) = self.public_key {
            Some(PublicPem {
                option: "public_key",
                pem: inline.into_bytes(),
                shown: "the inline public_key".to_owned(),
            })
        } else {
            errs.push(
                at,
                format!(
                    "{name} requires a key source: rsa_public_key_path, ecdsa_public_key_path, \
                     public_key_path, public_key, jwks_url or keys"
                ),
            );
            None
        }
    }
}

/// A public key's PEM text and where it came from (for messages).
struct PublicPem {
    /// The option that gave it.
    option: &'static str,
    pem: Vec<u8>,
    /// The file name, or "the inline public_key": never the content.
    shown: String,
}

impl PublicPem {
    /// Parses the key as one of `family`'s.
    fn parse(self, family: KeyFamily, at: &str, errs: &mut Errors) -> Option<DecodingKey> {
        let parsed = match family {
            KeyFamily::Rsa => DecodingKey::from_rsa_pem(&self.pem),
            KeyFamily::Ec => DecodingKey::from_ec_pem(&self.pem),
            KeyFamily::Ed => DecodingKey::from_ed_pem(&self.pem),
        };
        match parsed {
            Ok(key) => Some(key),
            Err(_) => {
                errs.push(
                    format!("{at}.{}", self.option),
                    format!(
                        "{} is not a valid PEM {} public key",
                        self.shown,
                        family.label()
                    ),
                );
                None
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    Ec,
    Ed,
}

impl KeyFamily {
    fn of(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => Self::Ec,
            Algorithm::EdDSA => Self::Ed,
            _ => Self::Rsa,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::Ed => "Ed25519",
        }
    }
}

fn hmac_key(
    secret: &str,
    algorithm: Algorithm,
    path: &str,
    errs: &mut Errors,
) -> Option<DecodingKey> {
    let len = secret.len();
    if len < MIN_SECRET_BYTES {
        errs.push(
            path,
            format!("is {len} bytes; HMAC secrets must be at least {MIN_SECRET_BYTES} bytes (32 or more recommended)"),
        );
        return None;
    }
    if len < RECOMMENDED_SECRET_BYTES {
        tracing::warn!(
            path,
            bytes = len,
            algorithm = ?algorithm,
            "HMAC secret is shorter than the recommended {RECOMMENDED_SECRET_BYTES} bytes"
        );
    }
    let secret = Secret::new(secret);
    Some(DecodingKey::from_secret(secret.expose().as_bytes()))
}

/// Reads a PEM file; the error names the file, never its content.
fn read_pem(path: &Path, at: &str, errs: &mut Errors) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            errs.push(at, format!("cannot read {}: {}", path.display(), e.kind()));
            None
        }
    }
}
