//! Configuration files of the original Yatagarasu (the Pingora-based proxy)
//! against this one, with `tests/fixtures/original-full.yaml` (every
//! documented key of the original, in four documents) and the key table of
//! `docs/migration.md`:
//!
//! - the keys that keep their meaning load (`yatagarasu check` passes);
//! - every refused key fails `check`, in one run, with a message naming the
//!   key the table gives as its replacement;
//! - the table and the fixture list the same keys, each in the document its
//!   status says, so neither can drift from the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The fixture's documents, in order.
const LOADS: usize = 0;
const REFUSED: usize = 1;
const TLS_AND_TRACING: usize = 2;
const AUDIT_OUTPUTS: usize = 3;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The fixture's documents, as text.
fn documents() -> Vec<String> {
    let text = std::fs::read_to_string(repo("tests/fixtures/original-full.yaml")).unwrap();
    let docs: Vec<String> = text.split("\n---\n").map(str::to_owned).collect();
    assert_eq!(docs.len(), 4, "the fixture has four documents");
    docs
}

/// One row of the table in docs/migration.md.
#[derive(Debug)]
struct Row {
    new: String,
    status: String,
}

/// The key table of docs/migration.md: original key → row.
fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(repo("docs/migration.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "a row has four cells: {line}");
        let key = cells[0].trim_matches('`').to_owned();
        let row = Row {
            new: cells[1].trim_matches('`').to_owned(),
            status: cells[2].to_owned(),
        };
        assert!(
            ["same", "renamed", "refused"].contains(&row.status.as_str()),
            "{line}"
        );
        assert!(rows.insert(key, row).is_none(), "a key twice: {line}");
    }
    assert!(rows.len() > 100, "only {} rows", rows.len());
    rows
}

/// The dotted paths of every leaf of a document (`[]` for each element of a
/// list of mappings; a list of scalars is a leaf).
fn leaves(doc: &str) -> BTreeSet<String> {
    fn walk(v: &Value, path: String, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(child, p, out);
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                for item in items {
                    walk(item, format!("{path}[]"), out);
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
    let value: Value = serde_norway::from_str(doc).unwrap();
    let mut out = BTreeSet::new();
    walk(&value, String::new(), &mut out);
    out
}

/// The row that covers `key`: the key itself, or the section holding it.
fn covering<'a>(table: &'a BTreeMap<String, Row>, key: &str) -> Option<(&'a str, &'a Row)> {
    let mut prefix = key;
    loop {
        if let Some((k, row)) = table.get_key_value(prefix) {
            return Some((k, row));
        }
        prefix = &prefix[..prefix.rfind(['.', '['])?];
    }
}

/// `yatagarasu check` of `text`, written into a fresh directory; the
/// fixture's `${CACHE_DIR}` and `${AUDIT_DIR}` point into it, and
/// `${TLS_CERT}` / `${TLS_KEY}` to a self-signed certificate made there.
fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("original.yaml");
    std::fs::write(&path, text).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_yatagarasu"))
        .args(["check", "--config"])
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("CACHE_DIR", dir.path().join("cache"))
        .env("AUDIT_DIR", dir.path())
        .env("TLS_CERT", cert)
        .env("TLS_KEY", key)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether `key` is inside the section `section` (`a.b.c` or `a.b[].c` in `a.b`).
fn within(key: &str, section: &str) -> bool {
    key.strip_prefix(section)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// `buckets[3].s3.timeout` → `buckets[].s3.timeout`; `buckets[i]` likewise.
fn generic(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn the_keys_that_keep_their_meaning_load() {
    let out = check(&documents()[LOADS]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration OK (7 bucket(s))"),
        "{}",
        describe(&out)
    );
}

/// `check` builds the syslog and S3 audit outputs (on a runtime: they start
/// writer tasks); it once refused them ("needs a tokio runtime").
#[test]
fn check_accepts_the_audit_outputs() {
    let out = check(&documents()[AUDIT_OUTPUTS]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn tls_tracing_and_slow_request_keys_load() {
    let out = check(&documents()[TLS_AND_TRACING]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn every_refused_key_is_refused_with_its_new_key_named() {
    let table = table();
    let out = check(&documents()[REFUSED]);
    assert!(!out.status.success(), "{}", describe(&out));
    const MARK: &str = ": a key of the original Yatagarasu: ";
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut errors = BTreeMap::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let (path, message) = line
            .split_once(MARK)
            .unwrap_or_else(|| panic!("not a refusal of an original key: {line}"));
        errors.insert(generic(path), message.to_owned());
    }
    for (key, row) in table.iter().filter(|(_, r)| r.status == "refused") {
        let (path, message) = errors
            .iter()
            .find(|(path, _)| *path == key || within(key, path))
            .unwrap_or_else(|| panic!("{key} is not refused:\n{stderr}"));
        let message = generic(message);
        let named = if row.new == "—" {
            message.starts_with("remove it")
        } else {
            let token = message
                .strip_prefix("use ")
                .and_then(|rest| rest.split([' ', ',', '(']).next())
                .unwrap_or_default();
            message.contains(&row.new) || (!token.is_empty() && row.new.contains(token))
        };
        assert!(named, "{path}: `{message}` does not name {}", row.new);
    }
    for path in errors.keys() {
        let refused = table
            .iter()
            .any(|(k, r)| r.status == "refused" && (k == path || within(k, path)));
        assert!(refused, "{path} is refused but the table does not say so");
    }
}

#[test]
fn the_table_and_the_fixture_list_the_same_keys() {
    let table = table();
    let docs = documents();
    let expected = [
        (LOADS, "same"),
        (REFUSED, "refused"),
        (TLS_AND_TRACING, "same"),
        (AUDIT_OUTPUTS, "same"),
    ];
    let mut used = BTreeSet::new();
    let mut loaded = BTreeSet::new();
    for (index, status) in expected {
        for leaf in leaves(&docs[index]) {
            let (key, row) = covering(&table, &leaf)
                .unwrap_or_else(|| panic!("{leaf} (document {}) is not in the table", index + 1));
            // Around the keys under test, a document holds what a valid file
            // needs (names, buckets), which load as they are.
            assert!(
                row.status == status
                    || row.status == "same"
                    || (status == "same" && row.status == "renamed"),
                "{leaf} is in document {} but the table says {}",
                index + 1,
                row.status
            );
            used.insert(key.to_owned());
            // A section's row (`buckets[].authorization`) is used by the keys in it.
            used.extend(table.keys().filter(|k| within(&leaf, k)).cloned());
            if status == "same" {
                loaded.insert(key.to_owned());
            }
        }
    }
    let unused: Vec<&String> = table.keys().filter(|k| !used.contains(*k)).collect();
    assert!(
        unused.is_empty(),
        "in the table but not in the fixture: {unused:?}"
    );
    let unloaded: Vec<&String> = table
        .iter()
        .filter(|(k, r)| (r.status == "same" || r.status == "renamed") && !loaded.contains(*k))
        .map(|(k, _)| k)
        .collect();
    assert!(
        unloaded.is_empty(),
        "\"same\" but in no document that loads: {unloaded:?}"
    );
}
