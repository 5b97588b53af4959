//! `audit_log:` (the original Yatagarasu's keys): as written, validated, and
//! the settings the audit outputs are built from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{Bool, Errors, Secret, Str, U64, count, seconds_within};

/// The queue bound of an output whose section has no `buffer_size`.
pub const DEFAULT_QUEUE: usize = 10_000;
/// Largest queue bound: records are only allocated when queued, so this
/// bounds memory under a stalled output, not at rest.
const MAX_QUEUE: usize = 10_000_000;

/// `audit_log:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the audit log section (a mapping)"
)]
pub(crate) struct RawAuditLog {
    enabled: Option<Bool>,
    outputs: Option<Vec<Str>>,
    log_level: Option<Str>,
    include_claims: Option<Vec<Str>>,
    file: Option<RawFile>,
    syslog: Option<RawSyslog>,
    s3_export: Option<RawS3Export>,
}

/// `audit_log.file:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the audit file output (a mapping)"
)]
struct RawFile {
    path: Option<Str>,
    max_file_size_mb: Option<U64>,
    max_backup_files: Option<U64>,
    rotation_policy: Option<Str>,
    buffer_size: Option<U64>,
}

/// `audit_log.syslog:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the audit syslog output (a mapping)"
)]
struct RawSyslog {
    address: Option<Str>,
    protocol: Option<Str>,
    facility: Option<Str>,
    buffer_size: Option<U64>,
}

/// `audit_log.s3_export:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the audit S3 export (a mapping)"
)]
struct RawS3Export {
    bucket: Option<Str>,
    region: Option<Str>,
    path_prefix: Option<Str>,
    export_interval_seconds: Option<U64>,
    endpoint: Option<Str>,
    access_key: Option<Str>,
    secret_key: Option<Str>,
    buffer_size: Option<U64>,
}

/// The validated audit log: present in [`crate::Config`] only when enabled.
#[derive(Debug, Clone)]
pub struct AuditLogConfig {
    /// Records below this level are not written (probes are `debug`,
    /// ordinary requests `info`, refusals `warn`, server errors `error`).
    pub log_level: AuditLevel,
    /// Claims of the verified token copied into each record besides `sub`.
    pub include_claims: Vec<String>,
    /// The file output, when `outputs` lists `file`.
    pub file: Option<AuditFileConfig>,
    /// The syslog output, when `outputs` lists `syslog`.
    pub syslog: Option<AuditSyslogConfig>,
    /// The S3 export, when `outputs` lists `s3`.
    pub s3_export: Option<AuditS3Config>,
}

/// The level of one audit record, and the threshold `log_level` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuditLevel {
    /// Health and readiness probes.
    Debug,
    /// Ordinary requests.
    Info,
    /// Refusals: 401, 403, 429.
    Warn,
    /// Server-side failures (5xx).
    Error,
}

/// How the audit file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationPolicy {
    /// When the next record would take the file past `max_file_size_mb`.
    Size,
    /// At the first record of a new UTC day (and past `max_file_size_mb`).
    Daily,
}

/// `audit_log.file`.
#[derive(Debug, Clone)]
pub struct AuditFileConfig {
    /// The live file; rotated copies are `path.1` (newest) … `path.N`.
    pub path: PathBuf,
    /// Size that triggers a rotation, in bytes.
    pub max_file_size: u64,
    /// Rotated files kept (0: the full file is discarded).
    pub max_backup_files: usize,
    /// Size or daily rotation.
    pub rotation_policy: RotationPolicy,
    /// Records queued for the writer before new ones are dropped.
    pub buffer_size: usize,
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogProtocol {
    /// One record per datagram.
    Udp,
    /// Octet-counted frames (RFC 6587) on one connection, reopened on failure.
    Tcp,
}

/// `audit_log.syslog`.
#[derive(Debug, Clone)]
pub struct AuditSyslogConfig {
    /// `host:port` of the receiver.
    pub address: String,
    /// UDP or TCP.
    pub protocol: SyslogProtocol,
    /// `local0` … `local7` as its number (16 … 23).
    pub facility: u8,
    /// Records queued for the sender before new ones are dropped.
    pub buffer_size: usize,
}

/// `audit_log.s3_export`.
#[derive(Debug, Clone)]
pub struct AuditS3Config {
    /// The bucket the batches are written to.
    pub bucket: String,
    /// Its region (signing scope).
    pub region: String,
    /// Prepended to every object name (`yatagarasu/` → `yatagarasu/2026/…`).
    pub path_prefix: String,
    /// How often a batch is uploaded.
    pub export_interval: Duration,
    /// A custom endpoint (MinIO, a test server); AWS when absent.
    pub endpoint: Option<String>,
    /// Access key and secret; the standard `AWS_*` variables when absent.
    pub credentials: Option<(Secret, Secret)>,
    /// Records queued for the exporter before new ones are dropped.
    pub buffer_size: usize,
}

/// Validates `audit_log`; `None` when absent or disabled.
pub(crate) fn audit_log(raw: Option<RawAuditLog>, errs: &mut Errors) -> Option<AuditLogConfig> {
    let raw = raw?;
    let enabled = raw.enabled.is_some_and(|Bool(b)| b);
    let outputs = outputs(raw.outputs, enabled, errs);
    let log_level = match raw
        .log_level
        .as_ref()
        .map(|Str(s)| s.trim().to_ascii_lowercase())
    {
        None => AuditLevel::Info,
        Some(level) => level_named(&level).unwrap_or_else(|| {
            errs.push("audit_log.log_level", "must be debug, info, warn or error");
            AuditLevel::Info
        }),
    };
    let include_claims = names(raw.include_claims, "audit_log.include_claims", errs);
    let file = section(outputs[0], raw.file, "file", errs, file);
    let syslog = section(outputs[1], raw.syslog, "syslog", errs, syslog);
    let s3_export = section(outputs[2], raw.s3_export, "s3_export", errs, s3_export);
    enabled.then_some(AuditLogConfig {
        log_level,
        include_claims,
        file,
        syslog,
        s3_export,
    })
}

fn level_named(level: &str) -> Option<AuditLevel> {
    Some(match level {
        "debug" => AuditLevel::Debug,
        "info" => AuditLevel::Info,
        "warn" | "warning" => AuditLevel::Warn,
        "error" => AuditLevel::Error,
        _ => return None,
    })
}

/// Which of file, syslog and s3 `outputs` lists.
fn outputs(raw: Option<Vec<Str>>, enabled: bool, errs: &mut Errors) -> [bool; 3] {
    let mut listed = [false; 3];
    for (i, Str(name)) in raw.unwrap_or_default().iter().enumerate() {
        match name.trim().to_ascii_lowercase().as_str() {
            "file" => listed[0] = true,
            "syslog" => listed[1] = true,
            "s3" => listed[2] = true,
            _ => errs.push(
                format!("audit_log.outputs[{i}]"),
                "must be file, syslog or s3",
            ),
        }
    }
    if enabled && listed == [false; 3] {
        errs.push(
            "audit_log.outputs",
            "must list at least one of file, syslog, s3 when the audit log is enabled",
        );
    }
    listed
}

/// Validates an output's section (always, when present); `Some` only when
/// `outputs` lists it.
fn section<R, T>(
    listed: bool,
    raw: Option<R>,
    key: &str,
    errs: &mut Errors,
    validate: fn(R, &str, &mut Errors) -> Option<T>,
) -> Option<T> {
    let at = format!("audit_log.{key}");
    match raw {
        Some(raw) => validate(raw, &at, errs).filter(|_| listed),
        None if listed => {
            errs.push(at, "required when outputs lists it");
            None
        }
        None => None,
    }
}

/// A required, non-empty string at `path`.
fn required(raw: Option<Str>, path: String, errs: &mut Errors) -> Option<String> {
    match raw.map(|Str(s)| s.trim().to_owned()) {
        Some(s) if !s.is_empty() => Some(s),
        Some(_) => {
            errs.push(path, "must not be empty");
            None
        }
        None => {
            errs.push(path, "missing");
            None
        }
    }
}

fn names(raw: Option<Vec<Str>>, path: &str, errs: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for (i, Str(name)) in raw.unwrap_or_default().into_iter().enumerate() {
        match name.trim() {
            "" => errs.push(format!("{path}[{i}]"), "must not be empty"),
            name => out.push(name.to_owned()),
        }
    }
    out
}

fn queue(raw: Option<U64>, at: &str, errs: &mut Errors) -> usize {
    count(
        raw,
        DEFAULT_QUEUE,
        1,
        MAX_QUEUE,
        &format!("{at}.buffer_size"),
        errs,
    )
}

fn file(raw: RawFile, at: &str, errs: &mut Errors) -> Option<AuditFileConfig> {
    let before = errs.count();
    let path = required(raw.path, format!("{at}.path"), errs);
    let size_mb = count(
        raw.max_file_size_mb,
        50,
        1,
        1 << 20,
        &format!("{at}.max_file_size_mb"),
        errs,
    );
    let max_backup_files = count(
        raw.max_backup_files,
        5,
        0,
        1000,
        &format!("{at}.max_backup_files"),
        errs,
    );
    let rotation_policy = match raw
        .rotation_policy
        .map(|Str(s)| s.trim().to_ascii_lowercase())
    {
        None => RotationPolicy::Size,
        Some(p) if p == "size" => RotationPolicy::Size,
        Some(p) if p == "daily" => RotationPolicy::Daily,
        Some(_) => {
            errs.push(format!("{at}.rotation_policy"), "must be size or daily");
            RotationPolicy::Size
        }
    };
    let buffer_size = queue(raw.buffer_size, at, errs);
    (errs.count() == before).then(|| AuditFileConfig {
        path: PathBuf::from(path.unwrap_or_default()),
        max_file_size: (size_mb as u64) << 20,
        max_backup_files,
        rotation_policy,
        buffer_size,
    })
}

fn syslog(raw: RawSyslog, at: &str, errs: &mut Errors) -> Option<AuditSyslogConfig> {
    let before = errs.count();
    let address = required(raw.address, format!("{at}.address"), errs);
    if address.as_ref().is_some_and(|a| !has_port(a)) {
        errs.push(format!("{at}.address"), "must be host:port");
    }
    let protocol = match raw.protocol.map(|Str(s)| s.trim().to_ascii_lowercase()) {
        None => SyslogProtocol::Udp,
        Some(p) if p == "udp" => SyslogProtocol::Udp,
        Some(p) if p == "tcp" => SyslogProtocol::Tcp,
        Some(_) => {
            errs.push(format!("{at}.protocol"), "must be udp or tcp");
            SyslogProtocol::Udp
        }
    };
    let facility = match raw.facility.map(|Str(s)| s.trim().to_ascii_lowercase()) {
        None => 16,
        Some(f) => match f.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()) {
            Some(n @ 0..=7) => 16 + n,
            _ => {
                errs.push(format!("{at}.facility"), "must be local0 … local7");
                16
            }
        },
    };
    let buffer_size = queue(raw.buffer_size, at, errs);
    (errs.count() == before).then(|| AuditSyslogConfig {
        address: address.unwrap_or_default(),
        protocol,
        facility,
        buffer_size,
    })
}

/// Whether `address` ends in `:port` (a name or an address, IPv6 in brackets).
fn has_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

fn s3_export(raw: RawS3Export, at: &str, errs: &mut Errors) -> Option<AuditS3Config> {
    let before = errs.count();
    let bucket = required(raw.bucket, format!("{at}.bucket"), errs);
    let region = required(raw.region, format!("{at}.region"), errs);
    let export_interval = seconds_within(
        raw.export_interval_seconds,
        60,
        1,
        86_400,
        &format!("{at}.export_interval_seconds"),
        errs,
    );
    let endpoint = raw
        .endpoint
        .map(|Str(s)| s.trim().trim_end_matches('/').to_owned());
    if endpoint
        .as_ref()
        .is_some_and(|e| !(e.starts_with("http://") || e.starts_with("https://")))
    {
        errs.push(
            format!("{at}.endpoint"),
            "must be an http:// or https:// URL",
        );
    }
    let credentials = match (raw.access_key, raw.secret_key) {
        (Some(Str(a)), Some(Str(s))) if !a.is_empty() && !s.is_empty() => {
            Some((Secret::new(a), Secret::new(s)))
        }
        (Some(_), Some(_)) => {
            errs.push(at, "access_key and secret_key must not be empty");
            None
        }
        (None, None) => None,
        _ => {
            errs.push(at, "access_key and secret_key go together");
            None
        }
    };
    let buffer_size = queue(raw.buffer_size, at, errs);
    (errs.count() == before).then(|| AuditS3Config {
        bucket: bucket.unwrap_or_default(),
        region: region.unwrap_or_default(),
        path_prefix: raw
            .path_prefix
            .map(|Str(s)| s.trim().trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        export_interval,
        endpoint,
        credentials,
        buffer_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{assert_error, load, with_section};

    /// The original Yatagarasu's full `audit_log` example, unchanged.
    const ORIGINAL: &str = "audit_log:
  enabled: true
  outputs:
    - file
    - syslog
    - s3
  log_level: warn
  file:
    path: /var/log/audit.log
    max_file_size_mb: 100
    max_backup_files: 10
    rotation_policy: daily
    buffer_size: 2097152
  syslog:
    address: \"localhost:514\"
    protocol: tcp
    facility: local3
  s3_export:
    bucket: audit-logs
    region: us-east-1
    path_prefix: /logs/
    export_interval_seconds: 120";

    #[test]
    fn the_original_section_loads() {
        let c = load(&with_section(ORIGINAL), &[]).unwrap();
        let audit = c.audit_log.unwrap();
        assert_eq!(audit.log_level, AuditLevel::Warn);
        let file = audit.file.unwrap();
        assert_eq!(file.max_file_size, 100 << 20);
        assert_eq!(file.max_backup_files, 10);
        assert_eq!(file.rotation_policy, RotationPolicy::Daily);
        assert_eq!(file.buffer_size, 2_097_152);
        let syslog = audit.syslog.unwrap();
        assert_eq!(
            (syslog.protocol, syslog.facility),
            (SyslogProtocol::Tcp, 19)
        );
        let s3 = audit.s3_export.unwrap();
        assert_eq!(s3.path_prefix, "logs/");
        assert_eq!(s3.export_interval, Duration::from_secs(120));
        assert!(s3.credentials.is_none() && s3.endpoint.is_none());
    }

    #[test]
    fn defaults_and_disabled() {
        let c = load(
            &with_section("audit_log:\n  enabled: true\n  outputs: [file]\n  file: {path: /tmp/a}"),
            &[],
        )
        .unwrap();
        let file = c.audit_log.unwrap().file.unwrap();
        assert_eq!(file.max_file_size, 50 << 20);
        assert_eq!(file.max_backup_files, 5);
        assert_eq!(file.rotation_policy, RotationPolicy::Size);
        assert_eq!(file.buffer_size, DEFAULT_QUEUE);
        let c = load(
            &with_section(
                "audit_log:\n  enabled: false\n  outputs: [file]\n  file: {path: /tmp/a}",
            ),
            &[],
        )
        .unwrap();
        assert!(c.audit_log.is_none());
        assert!(load(&with_section(""), &[]).unwrap().audit_log.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let on = "audit_log:\n  enabled: true\n";
        assert_error(&with_section(on), "audit_log.outputs", "at least one");
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [kafka, file]\n  file: {{path: /a}}"
            )),
            "audit_log.outputs[0]",
            "file, syslog or s3",
        );
        assert_error(
            &with_section(&format!("{on}  outputs: [file]")),
            "audit_log.file",
            "required",
        );
        assert_error(
            &with_section(&format!("{on}  outputs: [file]\n  file: {{}}")),
            "audit_log.file.path",
            "missing",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [file]\n  file: {{path: /a, rotation_policy: hourly}}"
            )),
            "audit_log.file.rotation_policy",
            "size or daily",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [file]\n  file: {{path: /a, buffer_size: 0}}"
            )),
            "audit_log.file.buffer_size",
            "between 1 and 10000000",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [syslog]\n  syslog: {{address: host}}"
            )),
            "audit_log.syslog.address",
            "host:port",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [syslog]\n  syslog: {{address: \"h:1\", facility: kern}}"
            )),
            "audit_log.syslog.facility",
            "local0",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [s3]\n  s3_export: {{bucket: b, region: r, access_key: a}}"
            )),
            "audit_log.s3_export",
            "go together",
        );
        assert_error(
            &with_section(&format!(
                "{on}  outputs: [s3]\n  s3_export: {{bucket: b, region: r, endpoint: ftp://x}}"
            )),
            "audit_log.s3_export.endpoint",
            "http",
        );
        assert_error(
            &with_section("audit_log:\n  log_level: loud"),
            "audit_log.log_level",
            "debug, info",
        );
        assert_error(
            &with_section("audit_log:\n  colour: red"),
            "audit_log.colour",
            "unknown field",
        );
    }
}
