//! The error accumulator every validation step writes to.
//!
//! Validation never stops at the first problem: each step records what it
//! finds at its YAML path (`buckets[2].s3.region`) and goes on, so one run of
//! `yatagarasu check` lists everything to fix.

use super::ConfigError;

/// The violations found so far.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    /// Records one violation at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// How many violations so far (compare before/after to see if a section failed).
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}
