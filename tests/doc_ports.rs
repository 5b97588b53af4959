//! Every `curl` command in the documentation (`README.md`, `docs/*.md`) calls
//! the port of the listener that serves its path by default.
//!
//! Exists because examples and defaults drift apart silently: a purge example
//! once called the metrics port instead of the admin API. The defaults are
//! read from the crate itself (the listener addresses of a minimal
//! configuration, and the proxy's own answers to `/health` and `/ready`), so
//! a default changed without the docs, or a doc changed without the code,
//! fails here.
//!
//! Rules, by the URL's path: `/admin…` → `admin.address`, `/metrics` →
//! `metrics.address`, `/health` and `/ready` → the listener that answers them
//! (the main one), anything else → `server.address`. A code block that runs
//! `cargo run --example NAME` calls the address that example binds (read from
//! `examples/NAME.rs`). A URL on a loopback host must name its port. A command
//! aimed on purpose at a non-default configuration is exempted by the line
//! `<!-- ports: custom -->` right before it, or right before its code block.

use std::path::{Path, PathBuf};

use http::{Request, StatusCode};
use tower::ServiceExt;
use yatagarasu::{Config, Proxy};

/// The marker that exempts the next command (or the next code block).
const MARKER: &str = "<!-- ports: custom -->";

/// The smallest configuration that validates: every listener at its default.
const MINIMAL: &str = "
buckets:
  - name: docs
    path_prefix: /docs
    s3:
      bucket: docs
      region: us-east-1
      anonymous: true
";

/// The listeners of a running Yatagarasu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Proxy,
    Admin,
    Metrics,
}

/// The default port of each listener, and which listener answers the probes.
#[derive(Debug)]
struct Defaults {
    proxy: u16,
    admin: u16,
    metrics: u16,
    probes: Listener,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Proxy => "main",
            Listener::Admin => "admin",
            Listener::Metrics => "metrics",
        }
    }
}

impl Defaults {
    fn port(&self, listener: Listener) -> u16 {
        match listener {
            Listener::Proxy => self.proxy,
            Listener::Admin => self.admin,
            Listener::Metrics => self.metrics,
        }
    }

    /// The listener that serves `path` in a default configuration.
    fn listener_for(&self, path: &str) -> Listener {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
        };
        if under("/admin") {
            Listener::Admin
        } else if under("/metrics") {
            Listener::Metrics
        } else if under("/health") || under("/ready") {
            self.probes
        } else {
            Listener::Proxy
        }
    }
}

/// One `curl` command as written in a document.
#[derive(Debug)]
struct Command {
    /// 1-based line of its first line.
    line: usize,
    /// The command, continuation lines (`\` at the end) joined.
    text: String,
    /// The example its code block runs (`cargo run --example NAME`), if any.
    example: Option<String>,
    /// Preceded by the marker, or inside a code block preceded by it.
    exempt: bool,
}

/// A URL found in a command.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    /// The URL as written.
    text: String,
    host: String,
    /// The port as written, when the URL has one.
    port: Option<String>,
    path: String,
}

/// True when `curl` at byte `at` of `line` is the word, not part of another
/// (`curl/8.5.0` as a user agent, `libcurl`).
fn is_curl_word(line: &str, at: usize) -> bool {
    let before = line[..at].chars().next_back();
    let after = line[at + 4..].chars().next();
    before.is_none_or(|c| !(c.is_alphanumeric() || "_-/.".contains(c)))
        && after.is_none_or(char::is_whitespace)
}

fn mentions_curl(line: &str) -> bool {
    line.match_indices("curl")
        .any(|(at, _)| is_curl_word(line, at))
}

/// The example a `cargo run --example NAME` line runs.
fn example_run(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().skip_while(|w| *w != "--example");
    words.next()?;
    words.next().map(str::to_owned)
}

/// Every `curl` command of a Markdown document, with its context.
fn commands(doc: &str) -> Vec<Command> {
    let lines: Vec<&str> = doc.lines().collect();
    let (mut found, mut i) = (Vec::new(), 0);
    let (mut in_block, mut block_exempt, mut marker) = (false, false, false);
    let mut example: Option<String> = None;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let start = i;
        i += 1;
        if trimmed.starts_with(MARKER) {
            marker = true;
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_block = !in_block;
            block_exempt = in_block && marker;
            example = None;
        } else if in_block && let Some(name) = example_run(line) {
            example = Some(name);
        } else if mentions_curl(line) {
            let mut text = line.to_owned();
            while text.trim_end().ends_with('\\') && i < lines.len() {
                text = format!("{} {}", text.trim_end().trim_end_matches('\\'), lines[i]);
                i += 1;
            }
            found.push(Command {
                line: start + 1,
                text,
                example: example.clone(),
                exempt: marker || block_exempt,
            });
        }
        marker = false;
    }
    found
}

/// Every `http://` and `https://` URL in `text`.
fn urls(text: &str) -> Vec<Url> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("://") {
        let scheme = &text[..at];
        if !(scheme.ends_with("http") || scheme.ends_with("https")) {
            continue;
        }
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || "\"'`()<>".contains(c))
            .unwrap_or(rest.len());
        let scheme = if scheme.ends_with("https") {
            "https"
        } else {
            "http"
        };
        found.extend(parse_url(scheme, &rest[..end]));
    }
    found
}

/// Splits `host[:port]/path` (host possibly `[IPv6]`) after `scheme://`.
fn parse_url(scheme: &str, url: &str) -> Option<Url> {
    let split = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(split);
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (format!("[{host}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    Some(Url {
        text: format!("{scheme}://{url}"),
        host: host.to_ascii_lowercase(),
        port: port.map(str::to_owned),
        path: if path.is_empty() { "/" } else { path }.to_owned(),
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "0.0.0.0"
}

/// What is wrong with `command`, one message per problem.
fn problems(
    command: &Command,
    defaults: &Defaults,
    example_port: &dyn Fn(&str) -> Result<u16, String>,
) -> Vec<String> {
    if command.exempt {
        return Vec::new();
    }
    let mut found = Vec::new();
    for url in urls(&command.text) {
        let (expected, listener) = match &command.example {
            Some(name) => match example_port(name) {
                Ok(port) => (port, format!("examples/{name}.rs listens")),
                Err(e) => {
                    found.push(e);
                    continue;
                }
            },
            None => {
                let listener = defaults.listener_for(&url.path);
                let name = listener.name();
                (defaults.port(listener), format!("the {name} listener is"))
            }
        };
        match url.port.as_deref().map(str::parse::<u16>) {
            Some(Ok(port)) if port == expected => {}
            Some(Ok(port)) => found.push(format!(
                "{}: port {port}, but {listener} on {expected} by default",
                url.text
            )),
            Some(Err(_)) => found.push(format!("{}: the port is not a number", url.text)),
            None if is_loopback(&url.host) => found.push(format!(
                "{}: no port, but {listener} on {expected} by default",
                url.text
            )),
            None => {}
        }
    }
    found
}

/// The port `examples/NAME.rs` binds (its `bind("host:port")`).
fn example_port(root: &Path, name: &str) -> Result<u16, String> {
    let path = root.join("examples").join(format!("{name}.rs"));
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    source
        .split("bind(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find_map(|address| address.parse::<std::net::SocketAddr>().ok())
        .map(|address| address.port())
        .ok_or_else(|| format!("{} binds no literal address", path.display()))
}

/// The listener addresses of a minimal configuration, and the listener whose
/// service answers `/health` and `/ready`.
async fn defaults() -> Defaults {
    let config = Config::from_yaml_str_with_env(MINIMAL, &|_| None).expect("minimal config");
    let admin = config
        .admin
        .address
        .expect("the admin API is on by default");
    let defaults = Defaults {
        proxy: config.server.address.port(),
        admin: admin.port(),
        metrics: config.metrics.address.port(),
        probes: Listener::Proxy,
    };
    // The main listener serves the `Proxy`: it must answer the probes itself.
    let proxy = Proxy::builder(config).build().expect("proxy");
    for path in ["/health", "/ready"] {
        let request = Request::get(path).body(()).expect("request");
        let Ok(response) = proxy.clone().oneshot(request).await;
        assert_ne!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{path} is no longer answered on the main listener: update this test and the docs"
        );
    }
    defaults
}

/// `README.md` and every `docs/*.md`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

#[tokio::test]
async fn every_curl_in_the_docs_calls_the_default_port_of_its_listener() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let defaults = defaults().await;
    let (mut report, mut checked) = (Vec::new(), 0);
    for path in documents(root) {
        let text = std::fs::read_to_string(&path).expect("readable document");
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for command in commands(&text) {
            checked += urls(&command.text).len();
            let example = |n: &str| example_port(root, n);
            for problem in problems(&command, &defaults, &example) {
                report.push(format!("{name}:{}: {problem}", command.line));
            }
        }
    }
    assert!(checked > 0, "no curl URL found: the scanner is broken");
    assert!(
        report.is_empty(),
        "curl examples that miss the default port ({defaults:?}):\n{}",
        report.join("\n")
    );
}

mod checker {
    use super::*;

    const DEFAULTS: Defaults = Defaults {
        proxy: 8080,
        admin: 9091,
        metrics: 9090,
        probes: Listener::Proxy,
    };

    fn no_example(name: &str) -> Result<u16, String> {
        Err(format!("unexpected example {name}"))
    }

    fn problems_in(doc: &str) -> Vec<String> {
        commands(doc)
            .iter()
            .flat_map(|c| problems(c, &DEFAULTS, &no_example))
            .collect()
    }

    #[test]
    fn a_purge_on_the_metrics_port_is_reported() {
        let doc = "```console\n$ curl -X POST -H \"Authorization: Bearer $ADMIN\" http://127.0.0.1:9090/admin/cache/purge\n```\n";
        let found = problems_in(doc);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("http://127.0.0.1:9090/admin/cache/purge: port 9090, but the admin listener is on 9091"), "{found:?}");
    }

    #[test]
    fn continuation_lines_are_part_of_the_command() {
        let doc = "```\n$ curl -X POST \\\n    -H 'X: 1' \\\n    http://127.0.0.1:8080/admin/reload\n```\n";
        let found = commands(doc);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        assert_eq!(problems_in(doc).len(), 1);
    }

    #[test]
    fn each_path_kind_goes_to_its_listener() {
        let doc = "\
`curl http://localhost:8080/bucket/key`, `curl http://127.0.0.1:8080/ready`
`curl -s http://127.0.0.1:9090/metrics`
`curl http://[::1]:9091/admin/status`
`curl http://127.0.0.1:8080/health?x=1`
";
        assert_eq!(problems_in(doc), Vec::<String>::new());
        let wrong = "curl http://127.0.0.1:9091/metrics http://127.0.0.1:9090/health\n";
        assert_eq!(problems_in(wrong).len(), 2);
    }

    #[test]
    fn the_marker_exempts_the_next_command_or_block_only() {
        let doc = "<!-- ports: custom -->\n```\ncurl http://127.0.0.1:1/a\ncurl http://127.0.0.1:2/b\n```\n\
                   <!-- ports: custom -->\ncurl http://127.0.0.1:3/c\ncurl http://127.0.0.1:4/d\n";
        let found = problems_in(doc);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(":4/d: port 4,"), "{found:?}");
    }

    #[test]
    fn loopback_needs_a_port_other_hosts_may_omit_it() {
        assert_eq!(problems_in("curl http://localhost/bucket/key\n").len(), 1);
        assert!(problems_in("curl https://auth.example.com/.well-known/jwks.json\n").is_empty());
    }

    #[test]
    fn an_example_block_uses_the_example_port() {
        let doc = "```\ncargo run --example embed -- x.yaml\ncurl http://127.0.0.1:3000/files/a\n```\ncurl http://127.0.0.1:3000/files/a\n";
        let found: Vec<String> = commands(doc)
            .iter()
            .flat_map(|c| problems(c, &DEFAULTS, &|_| Ok(3000)))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn curl_as_part_of_another_word_is_no_command() {
        assert!(commands("\"user-agent\": \"curl/8.5.0\" http://127.0.0.1:1/x\n").is_empty());
        assert_eq!(commands("`curl http://127.0.0.1:8080/x`").len(), 1);
    }
}
