//! `yatagarasu demo` as a newcomer runs it: start it, read the commands it
//! prints, and check that each one does what its comment says.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{DEADLINE, binary, send};

/// The demo process; stopped on drop like a user stops it (Ctrl-C), so it
/// removes its sample files.
struct Demo {
    child: Child,
    /// Everything it printed up to "Press Ctrl-C".
    banner: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let interrupted = Command::new("kill")
            .args(["-s", "INT", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + DEADLINE;
        while interrupted && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(binary())
            .args(["demo", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut banner = Vec::new();
        loop {
            let line = rx
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("the demo printed no banner; got {banner:#?}"));
            let done = line.contains("Press Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        // Keep draining so the demo never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Demo { child, banner }
    }

    /// The proxy address, from the first curl line.
    fn proxy(&self) -> SocketAddr {
        let line = self
            .banner
            .iter()
            .find(|l| l.contains("/assets/hello.txt"))
            .expect("a curl line for /assets/hello.txt");
        let start = line.find("http://").expect("a URL") + "http://".len();
        let rest = &line[start..];
        let end = rest.find('/').expect("a path after the address");
        rest[..end].parse().expect("an address")
    }

    /// The admin API address, from the cache stats line.
    fn admin(&self) -> SocketAddr {
        let line = self
            .banner
            .iter()
            .find(|l| l.contains("/admin/cache/stats"))
            .expect("a curl line for the cache stats");
        let start = line.find("http://").expect("a URL") + "http://".len();
        let rest = &line[start..];
        rest[..rest.find('/').expect("a path")]
            .parse()
            .expect("an address")
    }

    /// The bearer token on the curl line whose comment contains `marker`.
    fn token(&self, marker: &str) -> String {
        let at = self
            .banner
            .iter()
            .position(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no line mentions {marker:?}: {:#?}", self.banner));
        // The comment sits on the line after the (long) curl command.
        let line = &self.banner[at - 1];
        let start = line.find("Bearer ").expect("a bearer token") + "Bearer ".len();
        let rest = &line[start..];
        rest[..rest.find('\'').expect("closing quote")].to_owned()
    }
}

#[tokio::test]
async fn the_printed_commands_do_what_they_say() {
    let demo = Demo::start();
    let proxy = demo.proxy();
    let pid = demo.child.id();

    let hello = send(proxy, "GET", "/assets/hello.txt", &[]).await;
    assert_eq!(hello.status, 200);
    assert_eq!(
        hello.text(),
        "Hello from Yatagarasu, the three-legged crow!\n"
    );
    assert_eq!(hello.header("x-cache"), Some("MISS"));
    let again = send(proxy, "GET", "/assets/hello.txt", &[]).await;
    assert_eq!(again.body, hello.body);
    assert_eq!(again.header("x-cache"), Some("HIT memory"));

    let admin = demo.admin();
    let stats = send(admin, "GET", "/admin/cache/stats", &[]).await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["buckets"]["assets"]["hits"], 1);
    let purge = send(
        admin,
        "POST",
        "/admin/cache/purge/assets",
        &[("x-yatagarasu-admin", "1")],
    )
    .await;
    assert_eq!(purge.status, 200, "{}", purge.text());
    let after = send(proxy, "GET", "/assets/hello.txt", &[]).await;
    assert_eq!(after.header("x-cache"), Some("MISS"));

    let range = send(proxy, "GET", "/assets/hello.txt", &[("range", "bytes=0-4")]).await;
    assert_eq!(range.status, 206);
    assert_eq!(range.text(), "Hello");

    let spaced = send(proxy, "GET", "/assets/hello%20world.txt", &[]).await;
    assert_eq!(spaced.status, 200);

    let missing = send(proxy, "GET", "/assets/missing.txt", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "NoSuchKey");

    let delete = send(proxy, "DELETE", "/assets/hello.txt", &[]).await;
    assert_eq!(delete.status, 405);

    let anonymous = send(proxy, "GET", "/private/report.txt", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"yatagarasu\"")
    );

    let reader = demo.token("200: role reader");
    let allowed = send(
        proxy,
        "GET",
        "/private/report.txt",
        &[("authorization", &format!("Bearer {reader}"))],
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert!(allowed.text().starts_with("Quarterly report"));

    let guest = demo.token("403: valid token, role guest");
    let refused = send(
        proxy,
        "GET",
        "/private/report.txt",
        &[("authorization", &format!("Bearer {guest}"))],
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"]["code"], "AccessDenied");

    // Ctrl-C stops the demo and removes its sample files.
    let root = std::env::temp_dir().join(format!("yatagarasu-demo-{pid}"));
    assert!(root.is_dir(), "the demo keeps its objects in {root:?}");
    drop(demo);
    assert!(!root.exists(), "{root:?} is left behind after Ctrl-C");
}
