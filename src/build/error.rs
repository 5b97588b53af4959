/// Why a validated configuration could not be turned into a stack.
///
/// Exists so a failed reload names the configuration key to fix while the
/// previous generation keeps serving.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BuildError {
    /// The configuration path of the problem (e.g. `buckets[1].s3.ca_cert_path`).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl BuildError {
    /// A problem at configuration path `path`.
    pub(crate) fn new(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
