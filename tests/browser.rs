//! The proxy in a real browser: Debian's headless Chromium, driven by Python
//! Playwright (`tests/fixtures/browser/media_page.py`), on pages served from
//! other loopback ports (other origins) than the proxy's.
//!
//! A page whose origin a bucket's CORS rules allow plays an MP4 through the
//! proxy in `<video crossorigin>` (range requests only), seeks to two points
//! and reads a frame back from a canvas; it reads an object with a `Range`
//! `fetch` (exact bytes, 206) and a private object with `Authorization:
//! Bearer` (a preflight the proxy answers; S3 never sees it). A page of
//! another origin is refused. The MP4 is generated once per run by `ffmpeg`.
//!
//! Needs `chromium`, `ffmpeg` and a Python with `playwright`
//! (`YATAGARASU_BROWSER_PYTHON`, set by `scripts/test`, which installs them).
//! Without them the tests say so and pass, except under `CI` or when
//! `YATAGARASU_BROWSER_PYTHON` is set, where a missing tool fails them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get as route_get;
use common::jwks::{SECRET, claims, sign};
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const MEDIA: &str = "media-bkt";
const PRIVATE: &str = "private-bkt";
const VIDEO_KEY: &str = "clip.mp4";
const NOTE_KEY: &str = "notes.txt";
const NOTE: &[u8] = b"only for token holders\n";
/// Seconds of test video, and the points the page seeks to.
const VIDEO_SECONDS: f64 = 60.0;
const SEEKS: [f64; 2] = [20.0, 45.0];
/// The bytes the page asks for with `fetch` and a `Range` header.
const RANGE: (usize, usize) = (1000, 1099);
/// Upper bound for one run of the browser script (Chromium start included).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(90);
/// `HTMLMediaElement.HAVE_CURRENT_DATA`: the frame at `currentTime` is there.
const HAVE_CURRENT_DATA: u64 = 2;

/// The programs the browser tests run.
struct Tools {
    python: PathBuf,
    chromium: PathBuf,
}

/// The tools, or `None` (after saying what is missing) where the tests may
/// be skipped; panics under `CI` or `YATAGARASU_BROWSER_PYTHON`.
fn tools() -> Option<Tools> {
    let explicit = std::env::var_os("YATAGARASU_BROWSER_PYTHON");
    let python = PathBuf::from(explicit.clone().unwrap_or_else(|| "python3".into()));
    let chromium = PathBuf::from(
        std::env::var_os("YATAGARASU_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    let mut missing = Vec::new();
    if !runs(&python, &["-c", "import playwright"]) {
        missing.push(format!("{} with playwright", python.display()));
    }
    if !runs(&chromium, &["--version"]) {
        missing.push(chromium.display().to_string());
    }
    if !runs(Path::new("ffmpeg"), &["-version"]) {
        missing.push("ffmpeg".to_owned());
    }
    if missing.is_empty() {
        return Some(Tools { python, chromium });
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let message = format!(
        "the browser tests need {}; `scripts/test` installs them",
        missing.join(", ")
    );
    assert!(!ci && explicit.is_none(), "{message}");
    eprintln!("SKIPPED: {message}");
    None
}

fn runs(program: &Path, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The test MP4 (H.264 + AAC, `faststart`), made once per run.
async fn video() -> &'static [u8] {
    static VIDEO: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(v) = VIDEO.get() {
        return v;
    }
    let made = tokio::task::spawn_blocking(make_video).await.unwrap();
    VIDEO.get_or_init(|| made)
}

fn make_video() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.mp4");
    let video = format!("testsrc=duration={VIDEO_SECONDS}:size=640x360:rate=25");
    let audio = format!("sine=duration={VIDEO_SECONDS}");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
        .arg(&video)
        .args(["-f", "lavfi", "-i"])
        .arg(&audio)
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        .args(["-movflags", "+faststart"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg failed: {status}");
    std::fs::read(out).unwrap()
}

/// The test's temporary directory (screenshots), kept and printed when the
/// test fails.
struct Artifacts(Option<tempfile::TempDir>);

impl Artifacts {
    fn new() -> Artifacts {
        Artifacts(Some(tempfile::tempdir().unwrap()))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Artifacts {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("browser test files kept in {}", dir.keep().display());
        }
    }
}

/// An HTTP server for the test page at `/`, one listener per origin.
async fn serve_page() -> (String, String) {
    let page = "<!doctype html><meta charset=utf-8><title>yatagarasu in a browser</title><body>";
    let app = Router::new().route("/", route_get(move || async move { Html(page) }));
    let mut origins = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        origins.push(format!("http://{}", listener.local_addr().unwrap()));
        let app = app.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let denied = origins.pop().unwrap();
    (origins.pop().unwrap(), denied)
}

/// S3 with the video (public bucket) and a note (private bucket), the proxy
/// in front with CORS for `origin` only and a memory cache, and a token.
struct Setup {
    s3: S3Server,
    proxy: Proxy,
    origin: String,
    denied: String,
    token: String,
    video: &'static [u8],
}

impl Setup {
    async fn start() -> Setup {
        let video = video().await;
        let s3 = S3Server::start(&[MEDIA, PRIVATE]).await;
        s3.put_object(MEDIA, VIDEO_KEY, video, Some("video/mp4"), &[])
            .await;
        s3.put_object(PRIVATE, NOTE_KEY, NOTE, Some("text/plain"), &[])
            .await;
        let (origin, denied) = serve_page().await;
        let cors = format!(
            "    cors:\n      allowed_origins: [{}]\n      allowed_headers: [range, authorization]\n      \
             expose_headers: [content-range, content-length, accept-ranges, etag]\n",
            q(&origin)
        );
        let mut media = BucketCfg::new("media", &s3, MEDIA);
        media.extra_yaml = cors.clone();
        let mut private = BucketCfg::new("private", &s3, PRIVATE);
        private.extra_yaml = format!("    auth:\n      enabled: true\n{cors}");
        let mut cfg = Config::new(vec![media, private]);
        cfg.readiness_probe_interval_seconds = 3600;
        cfg.extra_yaml = format!(
            "jwt:\n  algorithm: HS256\n  secret: {}\ncache:\n  enabled: true\n  memory:\n    \
             max_item_size_mb: 16\n    max_cache_size_mb: 64\n    default_ttl_seconds: 3600\n",
            q(SECRET)
        );
        let proxy = Proxy::start(&cfg).await;
        let token = sign(Algorithm::HS256, "", None, &claims(json!({})));
        Setup {
            s3,
            proxy,
            origin,
            denied,
            token,
            video,
        }
    }

    /// Runs the browser script's `steps`; its JSON report.
    async fn browse(&self, tools: &Tools, artifacts: &Artifacts, steps: &[&str]) -> Value {
        let base = format!("http://{}", self.proxy.main);
        let cfg = json!({
            "chromium": tools.chromium,
            "out_dir": artifacts.path(),
            "steps": steps,
            "page": format!("{}/", self.origin),
            "denied_page": format!("{}/", self.denied),
            "video": format!("{base}/media/{VIDEO_KEY}"),
            "seeks": SEEKS,
            "object": format!("{base}/media/{VIDEO_KEY}"),
            "range": format!("bytes={}-{}", RANGE.0, RANGE.1),
            "private": format!("{base}/private/{NOTE_KEY}"),
            "token": self.token,
        });
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser/media_page.py");
        let child = tokio::process::Command::new(&tools.python)
            .arg(script)
            .arg(cfg.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = tokio::time::timeout(SCRIPT_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("the browser script ran over {SCRIPT_DEADLINE:?}"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "browser script failed: {}\n{stderr}",
            out.status
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("browser script output is not JSON ({e}): {stderr}"));
        if let Some(error) = report.get("error") {
            panic!(
                "step {} failed in the browser: {error}\nscreenshot: {}\n{stderr}",
                report["failed_step"], report["screenshot"]
            );
        }
        report
    }

    /// `(method, path, status)` of every request the proxy logged.
    fn access(&self) -> Vec<(String, String, u64)> {
        let field = |v: &Value, name: &str| log_field(v, name).cloned().unwrap_or(Value::Null);
        (self.proxy.access_logs().iter())
            .map(|v| {
                (
                    field(v, "method").as_str().unwrap_or("").to_owned(),
                    field(v, "path").as_str().unwrap_or("").to_owned(),
                    field(v, "status").as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

/// Asserts what the page saw while playing and seeking.
fn assert_played(play: &Value) {
    assert_eq!(play["error"], Value::Null, "media error: {play}");
    let duration = play["duration"].as_f64().unwrap();
    assert!((duration - VIDEO_SECONDS).abs() < 0.5, "duration: {play}");
    assert!(
        play["started"].as_f64().unwrap() > 0.3,
        "did not play: {play}"
    );
    let seeks = play["seeks"].as_array().unwrap();
    assert_eq!(seeks.len(), SEEKS.len(), "{play}");
    for (seek, target) in seeks.iter().zip(SEEKS) {
        let at = seek["current_time"].as_f64().unwrap();
        assert!((at - target).abs() < 0.05, "seek to {target}: {seek}");
        assert!(
            seek["ready_state"].as_u64().unwrap() >= HAVE_CURRENT_DATA,
            "no frame after seeking to {target}: {seek}"
        );
        assert!(
            seek["played_to"].as_f64().unwrap() > target + 0.3,
            "did not play after seeking to {target}: {seek}"
        );
    }
    assert_eq!(
        play["canvas_readable"], true,
        "the frame is tainted: {play}"
    );
    // `<video>` asks only for ranges, and the proxy answers them.
    let responses = play["responses"].as_array().unwrap();
    assert!(!responses.is_empty(), "{play}");
    for r in responses {
        assert!(r["range"].is_string(), "a media request without Range: {r}");
        assert_eq!(r["status"], 206, "{r}");
    }
}

fn body_bytes(answer: &Value) -> Vec<u8> {
    (answer["body"].as_array().unwrap().iter())
        .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_plays_seeks_and_fetches_through_the_proxy() {
    let Some(tools) = tools() else { return };
    let artifacts = Artifacts::new();
    let setup = Setup::start().await;
    let report = setup
        .browse(&tools, &artifacts, &["play", "fetch", "refused"])
        .await;

    assert_played(&report["play"]);

    let fetched = &report["fetch"];
    let range = &fetched["range"];
    assert_eq!(range["status"], 206, "{range}");
    let expected = format!("bytes {}-{}/{}", RANGE.0, RANGE.1, setup.video.len());
    assert_eq!(range["content_range"], expected.as_str(), "{range}");
    assert_eq!(body_bytes(range), &setup.video[RANGE.0..=RANGE.1]);
    let private = &fetched["private"];
    assert_eq!(private["status"], 200, "{private}");
    assert_eq!(body_bytes(private), NOTE);
    // Without the token: the 401 reaches the page (it is readable).
    assert_eq!(fetched["private_without_token"]["status"], 401, "{fetched}");

    let refused = &report["refused"];
    assert_eq!(refused["range"]["rejected"], "TypeError", "{refused}");
    assert_eq!(refused["private"]["rejected"], "TypeError", "{refused}");
    assert!(
        refused["video"]["error"].is_u64(),
        "the video loaded: {refused}"
    );

    // The `Authorization` fetches were preflighted; the proxy answered the
    // preflights (allowed, then refused) and S3 saw none of them, and only
    // the allowed page's authorized GET.
    let access = setup.access();
    let private_path = format!("/private/{NOTE_KEY}");
    let preflights: Vec<u64> = (access.iter())
        .filter(|(m, p, _)| m == "OPTIONS" && *p == private_path)
        .map(|(_, _, status)| *status)
        .collect();
    assert_eq!(
        preflights,
        [204, 403],
        "preflights in the access log: {access:?}"
    );
    let upstream = setup.s3.requests();
    assert!(
        upstream.iter().all(|r| r.method != "OPTIONS"),
        "a preflight reached S3"
    );
    let note_gets = (setup.s3.requests_for(NOTE_KEY).iter())
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(note_gets, 1, "{access:?}");
}

/// `bytes=a-b` / `bytes=a-` of an upstream request as `[a, b]`; the whole
/// object without a `Range`.
fn upstream_span(r: &Recorded, len: u64) -> (u64, u64) {
    let Some(spec) = r.header("range").and_then(|v| v.strip_prefix("bytes=")) else {
        return (0, len - 1);
    };
    let (first, last) = spec.split_once('-').unwrap();
    let last = last.parse().map_or(len - 1, |l: u64| l.min(len - 1));
    (first.parse().unwrap(), last)
}

/// The GETs of the video that reached S3.
fn video_gets(s3: &S3Server) -> Vec<Recorded> {
    let mut gets = s3.requests_for(VIDEO_KEY);
    gets.retain(|r| r.method == "GET");
    gets
}

/// Whether `span` lies within the union of `seen`.
fn covered(span: (u64, u64), seen: &[(u64, u64)]) -> bool {
    let mut next = span.0;
    let mut sorted = seen.to_vec();
    sorted.sort_unstable();
    for (first, last) in sorted {
        if first <= next && last >= next {
            next = last + 1;
        }
    }
    next > span.1
}

/// Range requests fill the cache (the whole object here, below the item
/// limit): a second play, in a fresh browser context so Chromium's own cache
/// plays no part, asks S3 for nothing the first play fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_play_is_served_from_the_cache() {
    let Some(tools) = tools() else { return };
    let artifacts = Artifacts::new();
    let setup = Setup::start().await;
    let len = setup.video.len() as u64;

    let first = setup.browse(&tools, &artifacts, &["play"]).await;
    assert_played(&first["play"]);
    let before = video_gets(&setup.s3);
    let seen: Vec<(u64, u64)> = before.iter().map(|r| upstream_span(r, len)).collect();

    // A fresh browser context: nothing comes from Chromium's own cache.
    let second = setup.browse(&tools, &artifacts, &["play"]).await;
    assert_played(&second["play"]);
    let again: Vec<(u64, u64)> = (video_gets(&setup.s3)[before.len()..].iter())
        .map(|r| upstream_span(r, len))
        .filter(|span| covered(*span, &seen))
        .collect();
    assert!(
        again.is_empty(),
        "the second play fetched bytes the first had fetched: {again:?} (first: {seen:?})"
    );
}
