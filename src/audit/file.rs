//! The file output: JSON lines, rotated by size or by day, reopened on request.
//!
//! Written by hand rather than with a rotation crate: the crates checked
//! (`tracing-appender`'s rolling writer, `file-rotate`) rotate by time or by
//! size but not both with one backup count, and cannot be told to reopen
//! for an external logrotate. Rotation happens only between records, so
//! every rotated file holds complete lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::clock;
use super::sink::{Message, Writer};
use crate::config::{AuditFileConfig, RotationPolicy};

/// Opens the file and starts its writer thread (file I/O blocks, so it
/// stays off the runtime's threads).
pub(super) fn start(
    config: &AuditFileConfig,
    writer: Writer,
    reopen: Arc<AtomicBool>,
) -> io::Result<()> {
    let file = RotatingFile::open(config.clone())?;
    std::thread::Builder::new()
        .name("audit-file".into())
        .spawn(move || run(file, writer, &reopen))?;
    Ok(())
}

fn run(mut file: RotatingFile, mut writer: Writer, reopen: &AtomicBool) {
    let mut failing = false;
    while let Some(message) = writer.rx.blocking_recv() {
        let Message::Record(record) = message else {
            break;
        };
        if reopen.swap(false, Ordering::Relaxed) {
            report(file.reopen(), &mut failing);
        }
        report(
            file.write_line(&record.line(), SystemTime::now()),
            &mut failing,
        );
        // Flush once the queue is empty: lines appear promptly, and a burst
        // is written in large blocks.
        if writer.rx.is_empty() {
            report(file.flush(), &mut failing);
        }
    }
    report(file.flush(), &mut failing);
    let _ = writer.done.send(());
}

/// Logs the first failure of a run of failures, and the recovery.
fn report(result: io::Result<()>, failing: &mut bool) {
    match (result, *failing) {
        (Err(error), false) => {
            tracing::error!(%error, "cannot write the audit log file");
            *failing = true;
        }
        (Ok(()), true) => {
            tracing::info!("writing the audit log file again");
            *failing = false;
        }
        _ => {}
    }
}

/// The live file and its rotation state.
struct RotatingFile {
    config: AuditFileConfig,
    out: BufWriter<File>,
    /// Bytes in the live file.
    size: u64,
    /// The UTC day of the live file's first record (daily rotation).
    day: u64,
}

impl RotatingFile {
    fn open(config: AuditFileConfig) -> io::Result<Self> {
        let (out, size, day) = open_append(&config.path)?;
        Ok(Self {
            config,
            out,
            size,
            day,
        })
    }

    /// Appends one whole line, rotating first when it is due.
    fn write_line(&mut self, line: &[u8], now: SystemTime) -> io::Result<()> {
        let today = clock::day(now);
        let full = self.size > 0 && self.size + line.len() as u64 > self.config.max_file_size;
        let new_day = self.config.rotation_policy == RotationPolicy::Daily
            && self.size > 0
            && today != self.day;
        if full || new_day {
            self.rotate()?;
        }
        if self.size == 0 {
            self.day = today;
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Reopens the path (it may have been moved away).
    fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        (self.out, self.size, self.day) = open_append(&self.config.path)?;
        Ok(())
    }

    /// `path.N-1` → `path.N` … `path` → `path.1`, dropping what is beyond
    /// `max_backup_files`, then a fresh `path`.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let path = &self.config.path;
        let keep = self.config.max_backup_files;
        if keep == 0 {
            fs::remove_file(path)?;
        } else {
            remove_if_present(&backup(path, keep))?;
            for n in (1..keep).rev() {
                rename_if_present(&backup(path, n), &backup(path, n + 1))?;
            }
            fs::rename(path, backup(path, 1))?;
        }
        (self.out, self.size, self.day) = open_append(path)?;
        Ok(())
    }
}

/// `path.n`.
fn backup(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> io::Result<(BufWriter<File>, u64, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    let day = clock::day(meta.modified().unwrap_or_else(|_| SystemTime::now()));
    Ok((BufWriter::with_capacity(64 * 1024, file), meta.len(), day))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn config(dir: &Path, policy: RotationPolicy, keep: usize) -> AuditFileConfig {
        AuditFileConfig {
            path: dir.join("audit.jsonl"),
            max_file_size: 100,
            max_backup_files: keep,
            rotation_policy: policy,
            buffer_size: 10,
        }
    }

    #[test]
    fn size_rotation_keeps_whole_lines_and_the_backup_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::open(config(dir.path(), RotationPolicy::Size, 2)).unwrap();
        let now = SystemTime::now();
        for i in 0..20 {
            file.write_line(format!("{{\"n\":\"{i:038}\"}}\n").as_bytes(), now)
                .unwrap();
        }
        file.flush().unwrap();
        let base = dir.path().join("audit.jsonl");
        assert!(!backup(&base, 3).exists());
        for path in [base.clone(), backup(&base, 1), backup(&base, 2)] {
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.len() <= 100 && !text.is_empty());
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap();
            }
        }
        let newest = fs::read_to_string(&base).unwrap();
        assert!(newest.contains(&format!("{:038}", 19)));
    }

    #[test]
    fn daily_rotation_starts_a_file_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), RotationPolicy::Daily, 3);
        config.max_file_size = 1 << 20;
        let mut file = RotatingFile::open(config).unwrap();
        let day1 = UNIX_EPOCH + Duration::from_secs(86_400 * 20_000 + 10);
        let day2 = day1 + Duration::from_secs(86_400);
        file.write_line(b"{\"a\":1}\n", day1).unwrap();
        file.write_line(b"{\"a\":2}\n", day1).unwrap();
        file.write_line(b"{\"a\":3}\n", day2).unwrap();
        file.flush().unwrap();
        let base = dir.path().join("audit.jsonl");
        assert_eq!(
            fs::read_to_string(backup(&base, 1)).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(fs::read_to_string(&base).unwrap(), "{\"a\":3}\n");
    }
}
