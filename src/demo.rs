//! `yatagarasu demo`: an embedded S3-compatible store (s3s-fs, verifying
//! SigV4) seeded with sample objects, and the proxy in front of it.
//!
//! It runs the same code as production: the demo configuration is
//! `configs/demo.yaml`, expanded with the addresses and credentials chosen here.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use crate::config::{Config, ConfigErrors};
use crate::server::ConfigLoader;

const DEMO_CONFIG: &str = include_str!("../configs/demo.yaml");

/// A running demo store plus the configuration for the proxy in front of it.
pub struct Demo {
    /// The proxy configuration (from `configs/demo.yaml`).
    pub config: Config,
    /// Re-expands the embedded configuration (for SIGHUP / admin reload).
    pub loader: ConfigLoader,
    root: PathBuf,
    proxy: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    /// A token the private bucket accepts (role reader).
    reader_token: String,
    /// A validly signed token the private bucket refuses (role guest).
    guest_token: String,
}

/// Signs a demo token for `role`, valid for a day.
fn demo_token(secret: &str, role: &str) -> Result<String, DemoError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "sub": format!("demo-{role}"),
        "role": role,
        "iss": "yatagarasu-demo",
        "iat": now,
        "exp": now + 24 * 3600,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| DemoError::Store(format!("signing the demo token: {e}")))
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Creating the sample objects or a socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The embedded configuration did not load (a bug).
    #[error("demo configuration: {0}")]
    Config(#[from] ConfigErrors),
    /// The embedded store could not be created.
    #[error("embedded S3 store: {0}")]
    Store(String),
}

/// The preferred port when it is free, else any free port.
fn free_port(preferred: u16) -> Result<SocketAddr, std::io::Error> {
    let listener = StdListener::bind(("127.0.0.1", preferred))
        .or_else(|_| StdListener::bind(("127.0.0.1", 0)))?;
    listener.local_addr()
}

fn seed(root: &std::path::Path) -> Result<(), std::io::Error> {
    let assets = root.join("demo-assets");
    let docs = root.join("demo-docs");
    let private = root.join("demo-private");
    std::fs::create_dir_all(assets.join("data"))?;
    std::fs::create_dir_all(&docs)?;
    std::fs::create_dir_all(&private)?;
    std::fs::write(
        private.join("report.txt"),
        "Quarterly report: only readers with a valid token see this.\n",
    )?;
    std::fs::write(
        assets.join("hello.txt"),
        "Hello from Yatagarasu, the three-legged crow!\n",
    )?;
    std::fs::write(
        assets.join("hello world.txt"),
        "A key with a space, signed correctly.\n",
    )?;
    std::fs::write(
        assets.join("data/sample.json"),
        "{\"name\":\"yatagarasu\",\"kind\":\"s3 proxy\",\"legs\":3}\n",
    )?;
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(assets.join("big.bin"), big)?;
    std::fs::write(
        docs.join("readme.md"),
        "# Demo docs bucket\nServed through the `/docs` prefix.\n",
    )?;
    Ok(())
}

/// Serves the s3s-fs store at `root` on a free loopback port, verifying
/// SigV4 with the one key pair; returns its address.
async fn serve_store(
    root: &std::path::Path,
    access_key: &str,
    secret_key: &str,
) -> Result<std::net::SocketAddr, DemoError> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| DemoError::Store(format!("{e:?}")))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
    let s3 = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let s3_address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Without it, small answers wait for the client's delayed ACK (~40 ms).
            let _ = stream.set_nodelay(true);
            let s3 = s3.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), s3)
                    .await;
            });
        }
    });
    Ok(s3_address)
}

impl Demo {
    /// Seeds a temporary store, starts it on a free port and prepares the config.
    pub async fn start(port: u16) -> Result<Self, DemoError> {
        let root = std::env::temp_dir().join(format!("yatagarasu-demo-{}", std::process::id()));
        seed(&root)?;
        let access_key =
            format!("DEMO{}", &uuid::Uuid::new_v4().simple().to_string()[..16]).to_uppercase();
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        // 64 hex characters: a 32-byte HS256 secret, new for every run.
        let jwt_secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let reader_token = demo_token(&jwt_secret, "reader")?;
        let guest_token = demo_token(&jwt_secret, "guest")?;

        let s3_address = serve_store(&root, &access_key, &secret_key).await?;

        let proxy = free_port(port)?;
        let admin = free_port(9091)?;
        let metrics = free_port(9090)?;
        let vars: HashMap<&'static str, String> = HashMap::from([
            ("DEMO_ADDRESS", proxy.to_string()),
            ("DEMO_ADMIN_ADDRESS", admin.to_string()),
            ("DEMO_METRICS_ADDRESS", metrics.to_string()),
            ("DEMO_S3_ENDPOINT", format!("http://{s3_address}")),
            ("DEMO_ACCESS_KEY", access_key),
            ("DEMO_SECRET_KEY", secret_key),
            ("DEMO_JWT_SECRET", jwt_secret),
        ]);
        let vars = Arc::new(vars);
        let loader: ConfigLoader = Arc::new(move || {
            Config::from_yaml_str_with_env(DEMO_CONFIG, &|name| vars.get(name).cloned())
        });
        let config = loader()?;
        Ok(Self {
            config,
            loader,
            root,
            proxy,
            admin,
            metrics,
            reader_token,
            guest_token,
        })
    }

    /// Prints the curl lines once the proxy accepts connections.
    pub fn announce_when_listening(
        &self,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (proxy, admin, metrics) = (self.proxy, self.admin, self.metrics);
        let (reader, guest) = (self.reader_token.clone(), self.guest_token.clone());
        async move {
            for _ in 0..200 {
                if tokio::net::TcpStream::connect(proxy).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let p = format!("http://{proxy}");
            println!(
                "
Yatagarasu demo: an embedded S3 store (buckets demo-assets, demo-docs, demo-private) with the proxy in front.
Try:
  curl -i {p}/assets/hello.txt                          # GET, streamed and signed (X-Cache: MISS)
  curl -i {p}/assets/hello.txt                          # again: X-Cache: HIT memory
  curl -I {p}/assets/big.bin                            # HEAD: headers only
  curl -i -H 'Range: bytes=0-4' {p}/assets/hello.txt    # 206 Partial Content
  curl -s {p}/assets/hello%20world.txt                  # keys with spaces sign correctly
  curl -s {p}/docs/readme.md                            # a second bucket
  curl -i {p}/assets/missing.txt                        # 404 with a JSON error
  curl -i -X DELETE {p}/assets/hello.txt                # 405: read-only

Private bucket (JWT, HS256, claim role in [reader, admin]):
  curl -i {p}/private/report.txt                        # 401: no token
  curl -i -H 'Authorization: Bearer {reader}' {p}/private/report.txt
                                                        # 200: role reader
  curl -i -H 'Authorization: Bearer {guest}' {p}/private/report.txt
                                                        # 403: valid token, role guest

  curl -s {p}/ready                                     # readiness with per-bucket probes
  curl -s http://{metrics}/metrics | grep yatagarasu_    # Prometheus metrics
  curl -s -X POST -H 'X-Yatagarasu-Admin: 1' http://{admin}/admin/reload   # hot reload
  curl -s http://{admin}/admin/cache/stats              # cache hits, misses, bytes per tier
  curl -s -X POST -H 'X-Yatagarasu-Admin: 1' http://{admin}/admin/cache/purge/assets
                                                        # purge one bucket's entries
Press Ctrl-C to stop.
"
            );
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
