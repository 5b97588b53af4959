//! Replica failover against the real binary and two s3s-fs servers with
//! different credentials: a stopped primary is failed over to the backup
//! (signed with the backup's keys, which s3s-fs verifies) and counted; a
//! 404 or a 403 from the primary is the answer; `/ready` says `degraded`
//! while the primary is down; a reload that changes a replica's credentials
//! takes effect for new requests.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const PRIMARY_KEY: &str = "AKIAREPLICAPRIMARY01";
const PRIMARY_SECRET: &str = "primary/Secret+0123456789abcdefghijklmn";
const BACKUP_KEY: &str = "AKIAREPLICABACKUP002";
const BACKUP_SECRET: &str = "backup/Secret+0123456789abcdefghijklmno";
const PRIMARY_BKT: &str = "products-primary";
const BACKUP_BKT: &str = "products-backup";

/// A TCP forwarder in front of a server that can be closed (connects are
/// then refused, open connections cut) and opened again on the same port.
struct Gate {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Gate {
    async fn open(target: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Gate {
            addr,
            target,
            task: Some(forward(listener, target)),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn reopen(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.task = Some(forward(listener, self.target));
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts on `listener` and pipes each connection to `target`; aborting
/// the task drops the listener and every connection.
fn forward(listener: TcpListener, target: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { continue };
                    conns.spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

/// The two servers, the primary behind a gate.
struct World {
    primary: S3Server,
    backup: S3Server,
    gate: Gate,
}

impl World {
    async fn start() -> World {
        let primary =
            S3Server::start_with_keyring(PRIMARY_KEY, PRIMARY_SECRET, &[PRIMARY_BKT]).await;
        let backup = S3Server::start_with(BACKUP_KEY, BACKUP_SECRET, &[BACKUP_BKT]).await;
        primary.write_object(PRIMARY_BKT, "f.txt", b"from the primary");
        backup.write_object(BACKUP_BKT, "f.txt", b"from the backup");
        backup.write_object(BACKUP_BKT, "only-in-backup.txt", b"backup only");
        let gate = Gate::open(primary.addr()).await;
        World {
            primary,
            backup,
            gate,
        }
    }

    /// Bucket `products`: replicas `primary` (through the gate, with
    /// `primary_key`/`primary_secret`) and `backup`.
    fn config(&self, primary_key: &str, primary_secret: &str) -> Config {
        let mut bucket = BucketCfg::at(
            "products",
            &self.gate.endpoint(),
            PRIMARY_BKT,
            PRIMARY_KEY,
            PRIMARY_SECRET,
        );
        bucket.extra_yaml = format!(
            "      replicas:\n        - name: primary\n          bucket: {PRIMARY_BKT}\n          \
             region: {REGION}\n          endpoint: {}\n          access_key: {}\n          \
             secret_key: {}\n          priority: 1\n          timeout: 5\n        - name: backup\n          \
             bucket: {BACKUP_BKT}\n          region: {REGION}\n          endpoint: {}\n          \
             access_key: {}\n          secret_key: {}\n          priority: 2\n",
            q(&self.gate.endpoint()),
            q(primary_key),
            q(primary_secret),
            q(&self.backup.endpoint()),
            q(BACKUP_KEY),
            q(BACKUP_SECRET),
        );
        let mut cfg = Config::new(vec![bucket]);
        cfg.readiness_probe_interval_seconds = 1;
        cfg
    }
}

async fn failovers(proxy: &Proxy) -> f64 {
    let (_, samples) = scrape(proxy).await;
    sample_sum(
        &samples,
        "yatagarasu_replica_failovers_total",
        &[
            ("bucket", "products"),
            ("from", "primary"),
            ("to", "backup"),
        ],
    )
}

/// The `/ready` document once `products` is in `state`.
async fn ready_state(proxy: &Proxy, state: &str) -> (u16, Value) {
    eventually(&format!("products is {state}"), DEADLINE, || async {
        let r = get(proxy.main, "/ready").await;
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.describe()))?;
        if v["buckets"]["products"]["state"] == state {
            Ok((r.status, v))
        } else {
            Err(r.describe())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_primary_fails_over_to_the_backup_with_its_credentials() {
    let mut world = World::start().await;
    let proxy = Proxy::start(&world.config(PRIMARY_KEY, PRIMARY_SECRET)).await;
    let (status, v) = ready_state(&proxy, "ready").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["buckets"]["products"]["replicas"]["primary"]["up"], true);

    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"from the primary");
    assert_eq!(failovers(&proxy).await, 0.0);

    world.gate.close().await;
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"from the backup");
    // s3s-fs accepted it: it was signed with the backup's own keys.
    let asked = world.backup.requests_for(&format!("/{BACKUP_BKT}/f.txt"));
    assert_eq!(asked.len(), 1, "{asked:?}");
    let authorization = asked[0].header("authorization").unwrap_or_default();
    assert!(
        authorization.contains(&format!("Credential={BACKUP_KEY}/")),
        "{authorization}"
    );
    assert_eq!(failovers(&proxy).await, 1.0);

    // Degraded while the primary is down, and still ready for the balancer.
    let (status, v) = ready_state(&proxy, "degraded").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ready", "{v}");
    let replicas = &v["buckets"]["products"]["replicas"];
    assert_eq!(replicas["primary"]["up"], false, "{v}");
    assert_eq!(replicas["primary"]["state"], "unhealthy", "{v}");
    assert_eq!(replicas["backup"]["state"], "ready", "{v}");

    world.gate.reopen().await;
    let (status, v) = ready_state(&proxy, "ready").await;
    assert_eq!(status, 200, "{v}");
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.body.as_ref(), b"from the primary", "{}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replica_reachable_is_unhealthy() {
    let mut world = World::start().await;
    let mut cfg = world.config(PRIMARY_KEY, PRIMARY_SECRET);
    let dead = format!("http://{}", closed_port());
    cfg.buckets[0].extra_yaml = cfg.buckets[0]
        .extra_yaml
        .replace(&q(&world.backup.endpoint()), &q(&dead));
    let proxy = Proxy::start(&cfg).await;
    ready_state(&proxy, "ready").await;
    world.gate.close().await;
    let (status, v) = ready_state(&proxy, "unhealthy").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["buckets"]["products"]["up"], false, "{v}");
    // Both were tried: one failover, then the last replica's error.
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 502, "{}", r.describe());
    assert_eq!(failovers(&proxy).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_from_the_primary_is_the_answer() {
    let world = World::start().await;
    let proxy = Proxy::start(&world.config(PRIMARY_KEY, PRIMARY_SECRET)).await;
    ready_state(&proxy, "ready").await;
    let r = get(proxy.main, "/products/only-in-backup.txt").await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert!(
        world.backup.requests_for("only-in-backup").is_empty(),
        "a 404 is not failed over"
    );
    assert_eq!(failovers(&proxy).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_a_replicas_credentials_for_new_requests() {
    let world = World::start().await;
    let proxy = Proxy::start(&world.config(PRIMARY_KEY, PRIMARY_SECRET)).await;
    ready_state(&proxy, "ready").await;
    assert_eq!(get(proxy.main, "/products/f.txt").await.status, 200);

    // A wrong key: the primary refuses (403), which is the answer.
    let reload = |yaml: String| {
        proxy.write_config(&yaml);
        send_with_body(
            proxy.admin,
            "POST",
            "/admin/reload",
            &[("x-yatagarasu-admin", "1")],
            Bytes::new(),
        )
    };
    let r = reload(world.config("AKIAWRONGKEY00000003", "wrong").yaml()).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(
        world.backup.requests_for("f.txt").is_empty(),
        "a 403 is not failed over"
    );

    // Rotated keys: granted at the primary, then loaded by a reload.
    const ROTATED_KEY: &str = "AKIAREPLICAROTATED04";
    const ROTATED_SECRET: &str = "rotated/Secret+0123456789abcdefghijklm";
    world.primary.keyring().grant(ROTATED_KEY, ROTATED_SECRET);
    world.primary.keyring().revoke(PRIMARY_KEY);
    let r = reload(world.config(ROTATED_KEY, ROTATED_SECRET).yaml()).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"from the primary");
    let last = world.primary.requests_for("/f.txt").pop().unwrap();
    let authorization = last.header("authorization").unwrap_or_default();
    assert!(authorization.contains(ROTATED_KEY), "{authorization}");
    assert_eq!(failovers(&proxy).await, 0.0);
}
