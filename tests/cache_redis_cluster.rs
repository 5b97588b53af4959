//! The shared cache tier on a real Redis Cluster (three masters from
//! Debian's `redis-server` on loopback) behind three proxy processes: a
//! fill through one is a hit in another, a bucket purge from the third
//! reaches all of them, an object's keys live in one hash slot, and a
//! master killed mid-test turns its objects into misses, never errors.
//! TLS (`rediss://`) is used end to end, for a cluster and for one server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use common::*;
use yatagarasu::cache::CacheKey;

const BKT: &str = "cluster-bkt";
const PREFIX: &str = "fleet:";
const ADMIN: (&str, &str) = ("x-yatagarasu-admin", "1");

/// One `redis-server --cluster-enabled yes` process.
struct Node {
    port: u16,
    /// With TLS: the certificate and key file (PEM, one self-signed
    /// certificate that is also the trusted CA of the cluster bus).
    tls: Option<(PathBuf, PathBuf)>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(tls: Option<(PathBuf, PathBuf)>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port().port();
        // The cluster bus port defaults to port + 10000, which may not exist.
        let bus = closed_port().port();
        let mut cmd = Command::new("redis-server");
        match &tls {
            None => cmd.args(["--port", &port.to_string()]),
            Some((cert, key)) => cmd
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(cert),
        };
        let child = cmd
            .args(["--cluster-port", &bus.to_string()])
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        Node {
            port,
            tls,
            child,
            _dir: dir,
        }
    }

    /// Its URL; with TLS, certificate checks off (a self-signed test certificate).
    fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://127.0.0.1:{}/#insecure", self.port),
        }
    }

    /// `redis-cli -p <port> <args>`'s output.
    fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut all = vec!["-p", &port];
        if self.tls.is_some() {
            all.extend(["--tls", "--insecure"]);
        }
        redis_cli(&[&all, args].concat())
    }

    /// A plain (not cluster-aware) connection to this node alone.
    async fn connection(&self) -> ::redis::aio::MultiplexedConnection {
        let client = ::redis::Client::open(self.url()).unwrap();
        tokio::time::timeout(DEADLINE, client.get_multiplexed_async_connection())
            .await
            .unwrap()
            .unwrap()
    }

    /// SIGKILL, no shutdown.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli (Debian package redis-tools) must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Three masters sharing the 16384 slots, once every node says `cluster_state:ok`.
async fn start_cluster(tls: Option<(PathBuf, PathBuf)>) -> Vec<Node> {
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(tls.clone())).collect();
    for node in &nodes {
        eventually("redis-server answers", DEADLINE, || async {
            match node.cli(&["ping"]) {
                out if out.trim() == "PONG" => Ok(()),
                out => Err(out),
            }
        })
        .await;
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let mut args = vec!["--cluster", "create"];
    if tls.is_some() {
        args.extend(["--tls", "--insecure"]);
    }
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    let out = redis_cli(&args);
    assert!(out.contains("All 16384 slots covered"), "{out}");
    for node in &nodes {
        eventually("cluster_state:ok", DEADLINE, || async {
            match node.cli(&["cluster", "info"]) {
                out if out.contains("cluster_state:ok") => Ok(()),
                out => Err(out),
            }
        })
        .await;
    }
    nodes
}

fn cluster_cache(nodes: &[Node]) -> String {
    let urls: Vec<String> = nodes.iter().map(|n| q(&n.url())).collect();
    format!(
        "cache:\n  enabled: true\n  cache_layers: [memory, redis]\n  redis:\n    cluster_nodes: [{}]\n    key_prefix: {}\n    timeout_ms: 500\n",
        urls.join(", "),
        q(PREFIX)
    )
}

async fn start_proxy(s3: &S3Server, nodes: &[Node]) -> Proxy {
    let mut cfg = Config::new(vec![BucketCfg::new("products", s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cluster_cache(nodes);
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    proxy
}

fn s3_gets(s3: &S3Server, key: &str) -> usize {
    s3.requests_for(key)
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

/// The object index key of `object` (see `src/cache/redis/keys.rs`).
fn index_key(object: &str) -> String {
    let hex = CacheKey::object_hex("products", object);
    format!("{PREFIX}{{products:{hex}}}:keys")
}

/// The node serving `key`'s slot: the others answer `MOVED`.
async fn owner(nodes: &[Node], key: &str) -> usize {
    for (i, node) in nodes.iter().enumerate() {
        let mut conn = node.connection().await;
        let answer: Result<i64, _> = ::redis::cmd("EXISTS").arg(key).query_async(&mut conn).await;
        if answer.is_ok() {
            return i;
        }
    }
    panic!("no node serves {key}");
}

/// The entry keys listed in `object`'s index on `node`, once written
/// (the slower tiers are filled in the background).
async fn entries_of(node: &Node, object: &str) -> Vec<String> {
    let mut conn = node.connection().await;
    eventually("the entry written to the cluster", DEADLINE, || {
        let mut conn = conn.clone();
        async move {
            let listed: Vec<String> = ::redis::cmd("ZRANGE")
                .arg(index_key(object))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if listed.is_empty() {
                Err("not yet".into())
            } else {
                Ok(listed)
            }
        }
    })
    .await;
    ::redis::cmd("ZRANGE")
        .arg(index_key(object))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn purge_bucket(proxy: &Proxy) -> serde_json::Value {
    let r = send_with_body(
        proxy.admin,
        "POST",
        "/admin/cache/purge/products",
        &[ADMIN],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    r.json()
}

fn body_of(name: &str) -> Vec<u8> {
    format!("the bytes of {name} ").repeat(50).into_bytes()
}

fn write_objects(s3: &S3Server, names: &[String]) {
    for name in names {
        s3.write_object(BKT, name, &body_of(name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proxies_share_a_redis_cluster_and_survive_a_dead_master() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut nodes = start_cluster(None).await;
    let names: Vec<String> = (0..6).map(|i| format!("obj-{i}.txt")).collect();
    write_objects(&s3, &names);
    let a = start_proxy(&s3, &nodes).await;
    let b = start_proxy(&s3, &nodes).await;
    let c = start_proxy(&s3, &nodes).await;

    // Fill through A: one origin request per object; each object's entry
    // and index share a slot (both answer on the node owning the index).
    for name in &names {
        let r = get(a.main, &format!("/products/{name}")).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("x-cache"), Some("MISS"));
        assert_eq!(s3_gets(&s3, name), 1);
    }
    let mut owners = Vec::new();
    for name in &names {
        let node = owner(&nodes, &index_key(name)).await;
        for entry in entries_of(&nodes[node], name).await {
            assert!(entry.starts_with(PREFIX), "{entry}");
            assert_eq!(
                owner(&nodes, &entry).await,
                node,
                "{entry} in its object's slot"
            );
        }
        owners.push(node);
    }

    // B hits the shared tier: the origin sees nothing more.
    for name in &names {
        let r = get(b.main, &format!("/products/{name}")).await;
        assert_eq!(r.header("x-cache"), Some("HIT redis"), "{}", r.describe());
        assert!(r.body.as_ref() == body_of(name).as_slice());
        assert_eq!(s3_gets(&s3, name), 1, "B never went to the origin");
    }

    // Purge the bucket from C: C's next read goes to the origin (a new
    // bucket generation: the old entries are never asked for again)...
    let v = purge_bucket(&c).await;
    assert_eq!(v["broadcast"], true, "{v}");
    let first = &names[0];
    let r = get(c.main, &format!("/products/{first}")).await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert_eq!(s3_gets(&s3, first), 2);
    // ...and A and B drop their memory copies (the broadcast through the cluster).
    for proxy in [&a, &b] {
        eventually("the purge reached the other proxy", DEADLINE, || async {
            let r = get(proxy.main, &format!("/products/{}", names[1])).await;
            match r.header("x-cache") {
                Some("HIT memory") => {
                    // Published before this proxy subscribed: purge again.
                    purge_bucket(&c).await;
                    Err("still in memory".to_owned())
                }
                _ => Ok(()),
            }
        })
        .await;
    }

    // Kill the master owning obj-0's slot; new objects whose slot it held are misses.
    let dead = owners[0];
    nodes[dead].kill();
    let fresh: Vec<String> = (0..12).map(|i| format!("fresh-{i}.txt")).collect();
    write_objects(&s3, &fresh);
    let mut on_dead_node = 0;
    for (i, name) in fresh.iter().enumerate() {
        let proxy = [&a, &b, &c][i % 3];
        let r = get(proxy.main, &format!("/products/{name}")).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("x-cache"), Some("MISS"));
        assert!(r.body.as_ref() == body_of(name).as_slice(), "exact bytes");
        let live = nodes.iter().enumerate().filter(|(n, _)| *n != dead);
        let mut served_elsewhere = false;
        for (_, node) in live {
            let mut conn = node.connection().await;
            let answer: Result<i64, _> = ::redis::cmd("EXISTS")
                .arg(index_key(name))
                .query_async(&mut conn)
                .await;
            served_elsewhere |= answer.is_ok();
        }
        on_dead_node += usize::from(!served_elsewhere);
    }
    assert!(
        on_dead_node > 0,
        "some fresh objects belong to the dead master"
    );
    // Every object, cached or not, on every proxy: still the exact bytes.
    for proxy in [&a, &b, &c] {
        for name in names.iter().chain(&fresh) {
            let r = get(proxy.main, &format!("/products/{name}")).await;
            assert_eq!(r.status, 200, "{}", r.describe());
            assert!(r.body.as_ref() == body_of(name).as_slice(), "exact bytes");
        }
    }
    let (_, samples) = scrape(&a).await;
    let errors: f64 = samples
        .iter()
        .filter(|s| s.name == "yatagarasu_cache_errors_total")
        .filter(|s| s.labels.get("tier").map(String::as_str) == Some("redis"))
        .map(|s| s.value)
        .sum();
    assert!(
        errors > 0.0,
        "the dead master's failures were counted as misses"
    );
}

/// A self-signed certificate for 127.0.0.1 (also its own CA), as PEM files in `dir`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_shared_through_rediss_urls() {
    let s3 = S3Server::start(&[BKT]).await;
    let certs = tempfile::tempdir().unwrap();
    let nodes = start_cluster(Some(self_signed(certs.path()))).await;
    let names: Vec<String> = (0..3).map(|i| format!("tls-{i}.txt")).collect();
    write_objects(&s3, &names);
    let a = start_proxy(&s3, &nodes).await;
    let b = start_proxy(&s3, &nodes).await;
    for name in &names {
        let r = get(a.main, &format!("/products/{name}")).await;
        assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    }
    for name in &names {
        let node = owner(&nodes, &index_key(name)).await;
        entries_of(&nodes[node], name).await;
        let r = get(b.main, &format!("/products/{name}")).await;
        assert_eq!(r.header("x-cache"), Some("HIT redis"), "{}", r.describe());
        assert!(r.body.as_ref() == body_of(name).as_slice());
        assert_eq!(s3_gets(&s3, name), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tls_server_is_shared_through_a_rediss_url() {
    let s3 = S3Server::start(&[BKT]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let port = closed_port().port();
    let _server = KillOnDrop(
        Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .args(["--tls-auth-clients", "no", "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port_arg = port.to_string();
    eventually("the TLS redis-server answers", DEADLINE, || async {
        match redis_cli(&["--tls", "--insecure", "-p", &port_arg, "ping"]) {
            out if out.trim() == "PONG" => Ok(()),
            out => Err(out),
        }
    })
    .await;
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = format!(
        "cache:\n  enabled: true\n  cache_layers: [memory, redis]\n  redis:\n    redis_url: {}\n    timeout_ms: 500\n",
        q(&format!("rediss://127.0.0.1:{port}/#insecure"))
    );
    let a = Proxy::start(&cfg).await;
    let b = Proxy::start(&cfg).await;
    a.wait_ready().await;
    b.wait_ready().await;
    write_objects(&s3, &["one.txt".to_owned()]);
    let r = get(a.main, "/products/one.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    eventually("the entry written over TLS", DEADLINE, || async {
        match redis_cli(&["--tls", "--insecure", "-p", &port_arg, "dbsize"]) {
            out if out.trim() == "1" => Ok(()),
            out => Err(out),
        }
    })
    .await;
    let r = get(b.main, "/products/one.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT redis"), "{}", r.describe());
    assert!(r.body.as_ref() == body_of("one.txt").as_slice());
    assert_eq!(s3_gets(&s3, "one.txt"), 1);
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
