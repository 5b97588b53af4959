//! The upper bounds of the numeric settings, shared by validation (which
//! refuses anything beyond them, naming the key) and by the runtime code that
//! adds a configured duration to a clock reading and must never overflow.
//!
//! Every key's own range is listed in docs/configuration.md; the bounds here
//! are the ones several keys share.

use std::time::Duration;

/// Longest duration any setting accepts, in seconds: 2^31 (about 68 years).
///
/// RFC 9111 §1.2.2 caps HTTP delta-seconds at the same value. Any clock
/// reading plus this much is still representable (`Instant`, `SystemTime`,
/// hyper's and tokio's timers), and in milliseconds it is far below Redis'
/// `PX` limit, so no configured duration can make a timer or an expiry
/// overflow.
pub const MAX_SECONDS: u64 = 1 << 31;

/// [`MAX_SECONDS`] as a [`Duration`], for runtime code that caps a duration
/// it did not validate itself.
pub const MAX_DURATION: Duration = Duration::from_secs(MAX_SECONDS);

/// Largest count any setting accepts: 2^31 − 1.
///
/// It fits every integer type the runtime converts counts to (`i32` for
/// Redis, `u32` for HTTP/2 and pool sizes, tokio's semaphore permits), and
/// is more than the file descriptors a Linux process can hold.
pub const MAX_COUNT: u64 = (1 << 31) - 1;

/// Largest `jwt.leeway_seconds`: one day.
///
/// The verifier subtracts the leeway from the current Unix time, so it must
/// stay far below the time since 1970; clock skew beyond a day is a broken
/// clock, not something to tolerate.
pub const MAX_LEEWAY_SECONDS: u64 = 86_400;

/// Largest in-memory size (`cache.memory.*_mb`, `buckets[i].cache.max_item_size_mb`): 1 TiB.
///
/// A cacheable body up to the item size is buffered in one allocation.
pub const MAX_MEMORY_BYTES: u64 = 1 << 40;

/// Largest `cache.disk.max_disk_cache_size_mb`: 1 PiB.
pub const MAX_DISK_BYTES: u64 = 1 << 50;

/// Largest `decision_cache_max_entries` and `token_cache_size`: one million entries.
pub const MAX_CACHE_ENTRIES: u64 = 1_000_000;
