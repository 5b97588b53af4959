//! UTC calendar arithmetic for record timestamps and daily rotation, so the
//! audit log needs no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 (UTC) of `time`; times before 1970 count as day 0.
pub(super) fn day(time: SystemTime) -> u64 {
    seconds(time) / 86_400
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The civil date of a day number (Howard Hinnant's `civil_from_days`).
fn civil(day: u64) -> (u64, u64, u64) {
    let z = day + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-12-03T11:20:00.123Z`.
pub(super) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// `time` as a compact UTC stamp for object names: `20261203T112000.123Z`.
pub(super) fn compact(time: SystemTime) -> String {
    rfc3339(time).replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_796_297_999, 999)), "2026-12-03T11:39:59.999Z");
        assert_eq!(rfc3339(at(4_107_542_400, 0)), "2100-03-01T00:00:00.000Z");
        assert_eq!(compact(at(0, 0)), "19700101T000000.000Z");
        assert_eq!(day(at(86_399, 999)), 0);
        assert_eq!(day(at(86_400, 0)), 1);
    }
}
