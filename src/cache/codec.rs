//! The binary encoding of one cache entry, shared by the disk and Redis tiers.
//!
//! Both tiers store bytes that outlive the process (files across restarts,
//! Redis values across instances and versions), so the encoding is versioned,
//! self-describing and checksummed: a torn write, a flipped bit or an entry
//! written by an incompatible version decodes to [`TierError::Corrupt`],
//! never to wrong bytes and never to a panic.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic      4   b"YTGC"
//! version    2   FORMAT_VERSION
//! meta_len   4   length of the metadata section
//! body_len   8   length of the body
//! metadata   meta_len
//!   stored_at      time      (u64 seconds + u32 nanoseconds since the epoch)
//!   fresh_until    time
//!   last_modified  option<time>   (u8 0/1, then the time)
//!   content_length u64
//!   etag           option<bytes>  (u8 0/1, then u32 length + bytes)
//!   bucket         bytes
//!   backend        16   the backend fingerprint (`BackendId`)
//!   object         bytes
//!   version_id     option<bytes>
//!   header_count   u32
//!   headers        header_count × (name bytes, value bytes)
//! body       body_len
//! checksum   32  SHA-256 of everything before it
//! ```
//!
//! The key (bucket, backend, object, version) is stored so a tier can rebuild its
//! index from the entries alone and purge by bucket or object, and so a
//! lookup can verify that the entry really is the one asked for.
//!
//! SHA-256 rather than a CRC: `sha2` is already a dependency (the key
//! digests) and it detects any corruption rather than most. It is the main
//! cost of encoding and decoding a large entry (see `benches/cache_tiers.rs`
//! and docs/PERFORMANCE.md); the version field allows a cheaper checksum
//! later without misreading old entries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::key::BackendId;
use super::{CacheKey, CachedObject, ObjectMeta, TierError};

/// The first bytes of every encoded entry.
pub const MAGIC: [u8; 4] = *b"YTGC";

/// The version of the layout written by [`encode`]; other versions are rejected.
///
/// Version 2 added the backend fingerprint to the key: version 1 entries,
/// written without it, may belong to another backend and are never served
/// (the disk scan deletes them, Redis lets them expire).
pub const FORMAT_VERSION: u16 = 2;

/// Length of the fixed part before the metadata (magic, version, lengths).
pub const FIXED_LEN: usize = 4 + 2 + 4 + 8;

/// Length of the trailing checksum.
pub const CHECKSUM_LEN: usize = 32;

/// Largest metadata section accepted when decoding (headers are small; this
/// bounds what a corrupt length field can make a reader allocate).
pub const MAX_META_LEN: u32 = 1 << 20;

/// A decoded entry: which key it was stored under, and the object.
#[derive(Debug, Clone)]
pub struct DecodedEntry {
    /// The key the entry was written for.
    pub key: CacheKey,
    /// The replayable response.
    pub object: CachedObject,
}

/// The metadata of an entry without its body, as read by an index scan.
#[derive(Debug, Clone)]
pub struct EntryHead {
    /// The key the entry was written for.
    pub key: CacheKey,
    /// Headers and validators.
    pub meta: ObjectMeta,
    /// Total encoded length (fixed part, metadata, body, checksum).
    pub encoded_len: u64,
}

/// The lengths announced by the fixed part of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Length of the metadata section.
    pub meta_len: u32,
    /// Length of the body.
    pub body_len: u64,
}

impl FixedHeader {
    /// Total encoded length of the entry these lengths describe.
    pub fn encoded_len(&self) -> u64 {
        (FIXED_LEN as u64)
            .saturating_add(u64::from(self.meta_len))
            .saturating_add(self.body_len)
            .saturating_add(CHECKSUM_LEN as u64)
    }
}

/// An entry encoded in two parts, so a writer can send the body without
/// copying it: `prefix`, then the object's body, then `checksum`.
#[derive(Debug, Clone)]
pub struct EncodedParts {
    /// Fixed part and metadata.
    pub prefix: Vec<u8>,
    /// The body (shared with the cached object, not copied).
    pub body: Bytes,
    /// SHA-256 of `prefix` followed by `body`.
    pub checksum: [u8; CHECKSUM_LEN],
}

impl EncodedParts {
    /// Total encoded length.
    pub fn len(&self) -> u64 {
        (self.prefix.len() + self.body.len() + CHECKSUM_LEN) as u64
    }

    /// Whether the encoding is empty (never: the fixed part is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole entry in one buffer (for stores that take one value).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&self.checksum);
        out
    }
}

/// Encodes `object` stored under `key` into its parts.
pub fn encode_parts(key: &CacheKey, object: &CachedObject) -> EncodedParts {
    let meta = &object.meta;
    let mut m = Vec::with_capacity(256);
    put_time(&mut m, meta.stored_at);
    put_time(&mut m, meta.fresh_until);
    match meta.last_modified {
        Some(t) => {
            m.push(1);
            put_time(&mut m, t);
        }
        None => m.push(0),
    }
    m.extend_from_slice(&meta.content_length.to_le_bytes());
    put_opt_bytes(&mut m, meta.etag.as_deref().map(str::as_bytes));
    put_bytes(&mut m, key.bucket.as_bytes());
    m.extend_from_slice(&key.backend.0);
    put_bytes(&mut m, key.object.as_bytes());
    put_opt_bytes(&mut m, key.version_id.as_deref().map(str::as_bytes));
    m.extend_from_slice(&(meta.headers.len() as u32).to_le_bytes());
    for (name, value) in &meta.headers {
        put_bytes(&mut m, name.as_str().as_bytes());
        put_bytes(&mut m, value.as_bytes());
    }

    let mut prefix = Vec::with_capacity(FIXED_LEN + m.len());
    prefix.extend_from_slice(&MAGIC);
    prefix.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    prefix.extend_from_slice(&(m.len() as u32).to_le_bytes());
    prefix.extend_from_slice(&(object.body.len() as u64).to_le_bytes());
    prefix.extend_from_slice(&m);

    let mut hasher = Sha256::new();
    hasher.update(&prefix);
    hasher.update(&object.body);
    EncodedParts {
        prefix,
        body: object.body.clone(),
        checksum: hasher.finalize().into(),
    }
}

/// Encodes `object` stored under `key` into one buffer.
pub fn encode(key: &CacheKey, object: &CachedObject) -> Vec<u8> {
    encode_parts(key, object).to_vec()
}

/// Decodes a whole entry, verifying its checksum; the body shares `bytes`.
pub fn decode(bytes: Bytes) -> Result<DecodedEntry, TierError> {
    let fixed = decode_fixed(&bytes)?;
    if fixed.encoded_len() != bytes.len() as u64 {
        return Err(corrupt(format!(
            "length {} but the header announces {}",
            bytes.len(),
            fixed.encoded_len()
        )));
    }
    let checksum_at = bytes.len() - CHECKSUM_LEN;
    let computed: [u8; CHECKSUM_LEN] = Sha256::digest(&bytes[..checksum_at]).into();
    if computed[..] != bytes[checksum_at..] {
        return Err(corrupt("checksum mismatch"));
    }
    let meta_end = FIXED_LEN + fixed.meta_len as usize;
    let (key, meta) = decode_meta(&bytes[FIXED_LEN..meta_end])?;
    if meta.content_length != fixed.body_len {
        return Err(corrupt("content length differs from the body length"));
    }
    Ok(DecodedEntry {
        key,
        object: CachedObject {
            meta: Arc::new(meta),
            body: bytes.slice(meta_end..checksum_at),
        },
    })
}

/// Reads the fixed part at the start of `bytes` (at least [`FIXED_LEN`] long).
pub fn decode_fixed(bytes: &[u8]) -> Result<FixedHeader, TierError> {
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return Err(corrupt("not a cache entry (bad magic)"));
    }
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("unsupported format version {version}")));
    }
    let meta_len = r.u32()?;
    if meta_len > MAX_META_LEN {
        return Err(corrupt(format!("metadata length {meta_len} too large")));
    }
    let body_len = r.u64()?;
    Ok(FixedHeader { meta_len, body_len })
}

/// Decodes the key and metadata from the start of an entry without reading
/// or verifying the body (index scans); `prefix` must hold at least the
/// fixed part and the metadata section. The checksum is verified later, when
/// the entry is read in full.
pub fn decode_head(prefix: &[u8], encoded_len: u64) -> Result<EntryHead, TierError> {
    let fixed = decode_fixed(prefix)?;
    if fixed.encoded_len() != encoded_len {
        return Err(corrupt(format!(
            "length {encoded_len} but the header announces {}",
            fixed.encoded_len()
        )));
    }
    let meta_end = FIXED_LEN + fixed.meta_len as usize;
    let meta_bytes = prefix
        .get(FIXED_LEN..meta_end)
        .ok_or_else(|| corrupt("truncated metadata"))?;
    let (key, meta) = decode_meta(meta_bytes)?;
    if meta.content_length != fixed.body_len {
        return Err(corrupt("content length differs from the body length"));
    }
    Ok(EntryHead {
        key,
        meta,
        encoded_len,
    })
}

fn decode_meta(bytes: &[u8]) -> Result<(CacheKey, ObjectMeta), TierError> {
    let mut r = Reader::new(bytes);
    let stored_at = r.time()?;
    let fresh_until = r.time()?;
    let last_modified = match r.u8()? {
        0 => None,
        1 => Some(r.time()?),
        other => return Err(corrupt(format!("bad option tag {other}"))),
    };
    let content_length = r.u64()?;
    let etag = r.opt_string()?;
    let bucket = r.string()?;
    let backend = BackendId(
        r.take(16)?
            .try_into()
            .map_err(|_| corrupt("truncated backend"))?,
    );
    let object = r.string()?;
    let version_id = r.opt_string()?;
    let count = r.u32()?;
    let mut headers = HeaderMap::with_capacity((count as usize).min(bytes.len() / 8));
    for _ in 0..count {
        let name =
            HeaderName::from_bytes(r.bytes()?).map_err(|_| corrupt("invalid header name"))?;
        let value =
            HeaderValue::from_bytes(r.bytes()?).map_err(|_| corrupt("invalid header value"))?;
        headers.append(name, value);
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes after the metadata"));
    }
    Ok((
        CacheKey {
            bucket: Arc::from(bucket),
            backend,
            object,
            version_id,
        },
        ObjectMeta {
            headers,
            content_length,
            etag,
            last_modified,
            stored_at,
            fresh_until,
        },
    ))
}

fn corrupt(why: impl Into<String>) -> TierError {
    TierError::Corrupt(why.into())
}

fn put_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    out.extend_from_slice(&since.as_secs().to_le_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
        None => out.push(0),
    }
}

/// A bounds-checked cursor: every read past the end is `Corrupt`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TierError> {
        if n > self.rest.len() {
            return Err(corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TierError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, TierError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, TierError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, TierError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TierError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn time(&mut self) -> Result<SystemTime, TierError> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(corrupt("invalid time"));
        }
        UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .ok_or_else(|| corrupt("time out of range"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], TierError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, TierError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt("invalid UTF-8"))
    }

    fn opt_string(&mut self) -> Result<Option<String>, TierError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            other => Err(corrupt(format!("bad option tag {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (CacheKey, CachedObject) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-amz-meta-a", HeaderValue::from_static("1"));
        headers.append("x-amz-meta-a", HeaderValue::from_static("2"));
        let body = Bytes::from_static(b"hello, cache");
        let key = CacheKey {
            bucket: Arc::from("products"),
            backend: BackendId([7; 16]),
            object: "dir/ünïcode.txt".to_owned(),
            version_id: Some("v1".to_owned()),
        };
        let meta = ObjectMeta {
            headers,
            content_length: body.len() as u64,
            etag: Some("\"abc\"".to_owned()),
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            stored_at: UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
            fresh_until: UNIX_EPOCH + Duration::new(1_800_003_600, 5),
        };
        (
            key,
            CachedObject {
                meta: Arc::new(meta),
                body,
            },
        )
    }

    #[test]
    fn round_trip_is_exact() {
        let (key, object) = sample();
        let decoded = decode(Bytes::from(encode(&key, &object))).unwrap();
        assert_eq!(decoded.key, key);
        assert_eq!(*decoded.object.meta, *object.meta);
        assert_eq!(decoded.object.body, object.body);
        let values: Vec<_> = decoded
            .object
            .meta
            .headers
            .get_all("x-amz-meta-a")
            .iter()
            .collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn head_decodes_without_the_body() {
        let (key, object) = sample();
        let parts = encode_parts(&key, &object);
        let head = decode_head(&parts.prefix, parts.len()).unwrap();
        assert_eq!(head.key, key);
        assert_eq!(head.meta, *object.meta);
        assert_eq!(head.encoded_len, parts.len());
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let (key, object) = sample();
        let good = encode(&key, &object);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(
                matches!(decode(Bytes::from(bad)), Err(TierError::Corrupt(_))),
                "flipping byte {i} was not detected"
            );
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let (key, object) = sample();
        let good = encode(&key, &object);
        for len in 0..good.len() {
            assert!(
                matches!(
                    decode(Bytes::copy_from_slice(&good[..len])),
                    Err(TierError::Corrupt(_))
                ),
                "truncation to {len} bytes was not detected"
            );
            let _ = decode_head(&good[..len], good.len() as u64);
        }
    }

    #[test]
    fn other_versions_and_garbage_are_rejected() {
        let (key, object) = sample();
        // Version 1 (no backend in the key) and a future version 3.
        for version in [1u16, 3] {
            let mut other = encode(&key, &object);
            other[4..6].copy_from_slice(&version.to_le_bytes());
            assert!(
                matches!(decode(Bytes::from(other)), Err(TierError::Corrupt(m)) if m.contains("version"))
            );
        }

        // Huge announced lengths must not allocate or panic.
        let mut huge = Vec::from(MAGIC);
        huge.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(Bytes::from(huge.clone())),
            Err(TierError::Corrupt(_))
        ));
        assert!(decode_head(&huge, u64::MAX).is_err());

        // A checksum-valid entry whose metadata lies about its counts.
        let mut meta = Vec::new();
        put_time(&mut meta, UNIX_EPOCH);
        put_time(&mut meta, UNIX_EPOCH);
        meta.push(0);
        meta.extend_from_slice(&0u64.to_le_bytes());
        meta.push(0);
        put_bytes(&mut meta, b"b");
        put_bytes(&mut meta, b"o");
        meta.push(0);
        meta.extend_from_slice(&u32::MAX.to_le_bytes()); // header count, no headers
        let mut lying = Vec::from(MAGIC);
        lying.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        lying.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        lying.extend_from_slice(&0u64.to_le_bytes());
        lying.extend_from_slice(&meta);
        let sum: [u8; 32] = Sha256::digest(&lying).into();
        lying.extend_from_slice(&sum);
        assert!(matches!(
            decode(Bytes::from(lying)),
            Err(TierError::Corrupt(_))
        ));

        for junk in [&b""[..], b"YTGC", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"] {
            assert!(decode(Bytes::copy_from_slice(junk)).is_err());
        }
    }
}
