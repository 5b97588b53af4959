//! The disk tier's file operations (blocking; called from `spawn_blocking`).
//!
//! Layout under `cache_dir`: `<first two hex digits>/<64 hex digits>` per
//! entry (the fan-out keeps directories small), and `.tmp/` for writes in
//! progress. A write goes to a fresh temp file and is renamed into place, so
//! a reader sees the old entry or the new one, never a partial file; the
//! scan at startup empties `.tmp/` and ignores every name that is not an
//! entry.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::index::Digest;
use crate::cache::codec::{self, EncodedParts, EntryHead};

/// The directory of writes in progress.
const TEMP_DIR: &str = ".tmp";

/// How much of a file the scan reads first (most metadata fits).
const SCAN_READ: usize = 4096;

/// Where the entry with `digest` lives.
pub(crate) fn entry_path(dir: &Path, digest: &Digest) -> PathBuf {
    let hex = to_hex(digest);
    dir.join(&hex[..2]).join(hex)
}

/// Writes an entry to a temp file and renames it into place.
pub(crate) fn write_atomic(dir: &Path, digest: &Digest, parts: &EncodedParts) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let target = entry_path(dir, digest);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let temp_dir = dir.join(TEMP_DIR);
    fs::create_dir_all(&temp_dir)?;
    let temp = temp_dir.join(format!(
        "{}.{}.{}",
        to_hex(digest),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(&parts.prefix)?;
        file.write_all(&parts.body)?;
        file.write_all(&parts.checksum)?;
        drop(file);
        fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Deletes entry files; a file already gone is fine.
pub(crate) fn remove_entries(dir: &Path, digests: &[Digest]) {
    for digest in digests {
        let _ = remove_entry(dir, digest);
    }
}

/// Deletes one entry file; a file already gone is fine.
pub(crate) fn remove_entry(dir: &Path, digest: &Digest) -> io::Result<()> {
    match fs::remove_file(entry_path(dir, digest)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One entry found by [`scan`].
#[derive(Debug)]
pub(crate) struct ScannedEntry {
    pub(crate) digest: Digest,
    pub(crate) head: EntryHead,
    pub(crate) modified: SystemTime,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub(crate) struct ScanOutcome {
    /// Intact entries, oldest modification first.
    pub(crate) entries: Vec<ScannedEntry>,
    /// Entry files deleted because their header was unreadable or did not
    /// match their name, or because they were expired beyond `keep_until`.
    pub(crate) deleted: u64,
}

/// Lists the entries under `dir` (creating it if missing), deleting
/// leftovers of interrupted writes, undecodable entries and entries whose
/// `fresh_until` is before `expired_before`.
pub(crate) fn scan(dir: &Path, expired_before: SystemTime) -> io::Result<ScanOutcome> {
    fs::create_dir_all(dir)?;
    let temp_dir = dir.join(TEMP_DIR);
    if temp_dir.is_dir() {
        for leftover in fs::read_dir(&temp_dir)?.flatten() {
            let _ = fs::remove_file(leftover.path());
        }
    }
    let mut outcome = ScanOutcome::default();
    let mut buf = Vec::with_capacity(SCAN_READ);
    for fan in fs::read_dir(dir)?.flatten() {
        let fan_name = fan.file_name();
        let Some(fan_name) = fan_name.to_str() else {
            continue;
        };
        if fan_name.len() != 2 || !fan_name.bytes().all(is_lower_hex) {
            continue;
        }
        let Ok(files) = fs::read_dir(fan.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(digest) = name.to_str().and_then(from_hex) else {
                continue;
            };
            let path = file.path();
            match read_head(&path, &digest, &mut buf) {
                Ok(Some((head, modified))) if head.meta.fresh_until >= expired_before => {
                    outcome.entries.push(ScannedEntry {
                        digest,
                        head,
                        modified,
                    });
                }
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => {
                    if fs::remove_file(&path).is_ok() {
                        outcome.deleted += 1;
                    }
                }
            }
        }
    }
    outcome.entries.sort_by_key(|e| e.modified);
    Ok(outcome)
}

/// Reads the key and metadata of one entry file; `Ok(None)` when the file
/// vanished meanwhile, `Err` when it is not a valid entry for its name.
fn read_head(
    path: &Path,
    digest: &Digest,
    buf: &mut Vec<u8>,
) -> Result<Option<(EntryHead, SystemTime)>, ()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    let stat = file.metadata().map_err(drop)?;
    let len = stat.len();
    let modified = stat.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    buf.clear();
    (&mut file)
        .take(SCAN_READ as u64)
        .read_to_end(buf)
        .map_err(drop)?;
    let fixed = codec::decode_fixed(buf).map_err(drop)?;
    let head_len = (codec::FIXED_LEN as u64 + u64::from(fixed.meta_len)).min(len);
    if head_len > buf.len() as u64 {
        let missing = head_len - buf.len() as u64;
        (&mut file).take(missing).read_to_end(buf).map_err(drop)?;
    }
    let head = codec::decode_head(buf, len).map_err(drop)?;
    if head.key.digest() != *digest {
        return Err(());
    }
    Ok(Some((head, modified)))
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Lower-case hex of a digest.
pub(crate) fn to_hex(digest: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Parses a 64-digit lower-case hex file name.
fn from_hex(name: &str) -> Option<Digest> {
    let bytes = name.as_bytes();
    if bytes.len() != 64 || !bytes.iter().copied().all(is_lower_hex) {
        return None;
    }
    let nibble = |c: u8| {
        if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'a' + 10
        }
    };
    let mut digest = [0; 32];
    for (i, out) in digest.iter_mut().enumerate() {
        *out = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_other_names() {
        let digest: Digest = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(from_hex(&to_hex(&digest)), Some(digest));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex(&to_hex(&digest).to_uppercase()), None);
    }
}
