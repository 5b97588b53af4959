//! The open-file limit (RLIMIT_NOFILE) and the reserve kept below it.
//!
//! Every client connection is a descriptor, and so is every connection to S3,
//! cache file and log file. Once the process runs out, `accept` fails with
//! `EMFILE` on every listener at once and requests in flight cannot reach S3.
//! So:
//!
//! - at start the soft limit is raised to the hard limit (as nginx's
//!   `worker_rlimit_nofile` and most servers do) and both are logged;
//! - each accepted connection is checked against a reserve under the limit:
//!   the kernel hands out the lowest free descriptor, so an accepted
//!   descriptor numbered `n` proves that `n` others are open. The main
//!   listener refuses (closes at once) a connection that lands in the top
//!   two reserves, the admin and metrics listeners one that lands in the top
//!   reserve: near the limit, new clients are turned away first, the admin
//!   and metrics listeners keep answering, and the last reserve is left to
//!   requests already accepted (S3 connections, cache files).
//!
//! The limit is read at every accept (one system call), so a limit changed
//! while running (`prlimit`) is honoured.

use std::os::fd::RawFd;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// How close to the limit a listener may take descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    /// The main listener: stops two reserves short of the limit.
    Clients,
    /// The admin and metrics listeners: stop one reserve short.
    Operators,
}

/// Descriptors kept free above a listener's share: 1/16 of the limit,
/// between 16 and 1024, and never more than a quarter of it.
fn reserve(limit: u64) -> u64 {
    (limit / 16).clamp(16, 1024).min(limit / 4)
}

/// Whether `fd`, just accepted, leaves too few descriptors for `share`.
pub(super) fn too_close_to_limit(fd: RawFd, share: Share) -> bool {
    match getrlimit(Resource::Nofile).current {
        Some(limit) => is_over_share(fd, limit, share),
        None => false,
    }
}

fn is_over_share(fd: RawFd, limit: u64, share: Share) -> bool {
    let kept = match share {
        Share::Clients => 2 * reserve(limit),
        Share::Operators => reserve(limit),
    };
    u64::try_from(fd).is_ok_and(|fd| fd.saturating_add(kept) >= limit)
}

/// Raises the soft open-file limit to the hard one and logs the limit in force;
/// warns when `max_connections` cannot fit under it.
pub(super) fn raise_open_file_limit(max_connections: usize) {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let limit = match (current, maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(
                        from = soft,
                        to = hard,
                        "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
                    );
                    hard
                }
                Err(error) => {
                    tracing::warn!(soft, hard, %error, "cannot raise the open-file limit");
                    soft
                }
            }
        }
        (Some(soft), _) => {
            tracing::info!(limit = soft, "open-file limit (RLIMIT_NOFILE)");
            soft
        }
        (None, _) => return,
    };
    // A proxied request holds two descriptors: the client's and S3's.
    let usable = limit.saturating_sub(2 * reserve(limit)) / 2;
    if u64::try_from(max_connections).is_ok_and(|max| max > usable) {
        tracing::warn!(
            max_connections,
            open_file_limit = limit,
            "server.max_connections is more than the open-file limit can serve \
             (two descriptors per proxied connection); connections beyond the limit's \
             reserve are refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_scale_with_the_limit() {
        assert_eq!(reserve(64), 16);
        assert_eq!(reserve(1024), 64);
        assert_eq!(reserve(1 << 20), 1024);
        // Small limits keep most descriptors usable.
        assert_eq!(reserve(40), 10);
    }

    #[test]
    fn clients_stop_before_operators() {
        // Limit 1024, reserve 64: clients up to 895, operators up to 959.
        assert!(!is_over_share(895, 1024, Share::Clients));
        assert!(is_over_share(896, 1024, Share::Clients));
        assert!(!is_over_share(959, 1024, Share::Operators));
        assert!(is_over_share(960, 1024, Share::Operators));
    }
}
