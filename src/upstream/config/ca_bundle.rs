//! `buckets[i].s3.ca_cert_path`: an extra CA bundle, read and checked once,
//! when the configuration is validated.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{Errors, Str};

/// An extra PEM CA bundle trusted for one bucket's HTTPS endpoint: the file's
/// path (for messages) and the bytes read from it at validation.
///
/// Exists so that the file is read once per load: the client is built from
/// [`CaBundle::pem`], never from the file again. Equal and hashed by path and
/// bytes; it dereferences to its path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CaBundle {
    path: PathBuf,
    pem: Arc<[u8]>,
}

impl CaBundle {
    /// Reads `path` and checks that it holds at least one PEM certificate.
    ///
    /// The message names the file but never quotes its content.
    pub(crate) fn read(path: PathBuf) -> Result<Self, String> {
        let shown = path.display();
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read CA bundle {shown}: {e}"))?;
        let mut certificates = 0usize;
        for item in CertificateDer::pem_slice_iter(&bytes) {
            match item {
                Ok(_) => certificates += 1,
                Err(_) => return Err(format!("{shown} is not a valid PEM file")),
            }
        }
        if certificates == 0 {
            return Err(format!("{shown} contains no PEM certificate"));
        }
        Ok(Self {
            path,
            pem: bytes.into(),
        })
    }

    /// The file the bundle was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's content as read at validation: one or more PEM certificates.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

impl Deref for CaBundle {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for CaBundle {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .field("pem_bytes", &self.pem.len())
            .finish()
    }
}

/// Validates `ca_cert_path` (found in the s3 section at `at`) and reads the bundle.
pub(super) fn ca_bundle(
    raw: Option<Str>,
    endpoint: Option<&http::Uri>,
    at: &str,
    errs: &mut Errors,
) -> Option<CaBundle> {
    let Str(file) = raw?;
    let path = format!("{at}.ca_cert_path");
    if endpoint.is_some_and(|e| e.scheme_str() == Some("http")) {
        errs.push(
            &path,
            "is only used with an https endpoint, and the endpoint is http",
        );
    }
    if file.is_empty() {
        errs.push(path, "must not be empty");
        return None;
    }
    match CaBundle::read(PathBuf::from(file)) {
        Ok(bundle) => Some(bundle),
        Err(message) => {
            errs.push(path, message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{load, one_error, self_signed_pem, with_s3};

    #[test]
    fn ca_cert_path() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, self_signed_pem()).unwrap();
        let with_ca = |endpoint: &str, path: &std::path::Path| {
            with_s3(&format!(
                "      anonymous: true\n      endpoint: \"{endpoint}\"\n      ca_cert_path: \"{}\"\n",
                path.display()
            ))
        };
        let c = load(&with_ca("https://minio.internal:9000", &good), &[]).unwrap();
        let bundle = c.buckets[0].s3.ca_cert_path.clone().unwrap();
        assert_eq!(bundle.path(), good.as_path());
        assert_eq!(
            c.buckets[0].s3.ca_cert_path.as_deref(),
            Some(good.as_path())
        );
        // Read once, at validation: the configuration no longer needs the file.
        let pem = std::fs::read(&good).unwrap();
        std::fs::remove_file(&good).unwrap();
        assert_eq!(bundle.pem(), pem.as_slice());
        assert!(!format!("{bundle:?}").contains("BEGIN"), "{bundle:?}");
        std::fs::write(&good, &pem).unwrap();
        // AWS (no endpoint) is https too.
        let text = with_s3(&format!(
            "      anonymous: true\n      ca_cert_path: \"{}\"\n",
            good.display()
        ));
        load(&text, &[]).unwrap();

        let missing = dir.path().join("missing.pem");
        let e = one_error(&with_ca("https://minio.internal:9000", &missing), &[]);
        assert_eq!(e.path, "buckets[0].s3.ca_cert_path");
        assert!(e.message.contains("missing.pem"), "{e}");

        let not_pem = dir.path().join("notpem.pem");
        std::fs::write(&not_pem, "TOP-SECRET-CONTENT\nmore text\n").unwrap();
        let e = one_error(&with_ca("https://minio.internal:9000", &not_pem), &[]);
        assert_eq!(e.path, "buckets[0].s3.ca_cert_path");
        assert!(e.message.contains("notpem.pem"), "{e}");
        assert!(e.message.contains("no PEM certificate"), "{e}");
        assert!(!e.message.contains("TOP-SECRET"), "{e}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nTOP-SECRET!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = one_error(&with_ca("https://minio.internal:9000", &broken), &[]);
        assert!(e.message.contains("broken.pem"), "{e}");
        assert!(!e.message.contains("TOP-SECRET"), "{e}");

        let key_only = dir.path().join("key.pem");
        std::fs::write(
            &key_only,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = one_error(&with_ca("https://minio.internal:9000", &key_only), &[]);
        assert!(e.message.contains("no PEM certificate"), "{e}");

        let e = one_error(&with_ca("http://minio.internal:9000", &good), &[]);
        assert_eq!(e.path, "buckets[0].s3.ca_cert_path");
        assert!(e.message.contains("https"), "{e}");
    }
}
