//! The retry budget of one bucket: `budget_percent` of its recent requests,
//! plus a small reserve so a quiet bucket can still retry.

use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::TpsBudget;

use super::RetryConfig;

/// How far back "recent requests" reaches.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Retries per second allowed whatever the traffic (the reserve is this
/// times [`BUDGET_WINDOW`]: 100 retries), Finagle's and linkerd's default.
pub const BUDGET_MIN_PER_SECOND: u32 = 10;

/// A fresh budget for one bucket (shared by its targets).
pub fn bucket_budget(config: &RetryConfig) -> Arc<TpsBudget> {
    // Validation keeps the percentage within 0..=100, inside TpsBudget's range.
    let ratio = config.budget_percent.min(100) as f32 / 100.0;
    Arc::new(TpsBudget::new(BUDGET_WINDOW, BUDGET_MIN_PER_SECOND, ratio))
}
