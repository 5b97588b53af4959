use super::outcome::Outcome;
use super::state::Permit;
use crate::body::{BodyEnd, BodyWatcher};

/// Tells the breaker how a response body ended: success at its end, failure
/// on an error mid-body, nothing if the client drops it early (the target
/// did nothing wrong: the permit, dropped unreported, says "nothing learnt").
#[derive(Debug)]
pub(super) struct Reported(pub(super) Permit);

impl BodyWatcher for Reported {
    fn on_end(self, end: BodyEnd<'_>) {
        match end {
            BodyEnd::Complete => self.0.finish(Outcome::Success),
            BodyEnd::Failed(_) => self.0.finish(Outcome::Failure),
            BodyEnd::Abandoned => {}
        }
    }
}
