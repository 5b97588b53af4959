//! Embeds Yatagarasu in an axum application.
//!
//! The proxy is mounted under `/files` next to the application's own routes:
//!
//! ```text
//! GET /                       -> the application's own handler
//! GET /files/<prefix>/<key>   -> the proxy, which sees /<prefix>/<key>
//! GET /files/health           -> the proxy's liveness answer
//! GET /files/ready            -> the proxy's readiness answer (background probes)
//! ```
//!
//! Run it with a configuration file (default `configs/example.yaml`, which
//! needs credentials in the environment; see the comments at its top):
//!
//! ```text
//! cargo run --example embed_axum -- configs/minio.yaml
//! curl -i http://127.0.0.1:3000/
//! curl -i http://127.0.0.1:3000/files/minio/some/key.txt
//! ```
//!
//! `nest_service` strips the `/files` prefix, so `/files/minio/a.png` reaches
//! the proxy as `/minio/a.png` and is routed by the bucket's `path_prefix`.
//!
//! Only the proxy's request path is embedded: the file's `server` address,
//! `admin` and `metrics` listeners, SIGHUP and graceful-shutdown settings
//! belong to the `yatagarasu` binary and are not used here. The application
//! owns its listener (127.0.0.1:3000) and its lifecycle; it can reload the
//! proxy with `Proxy::reload(new_config)` and install its own metrics recorder.

use std::error::Error;
use std::path::PathBuf;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("configs/example.yaml"), PathBuf::from);
    // `Config::load` expands ${VAR} and validates; every problem is listed.
    let config = yatagarasu::Config::load(&path)
        .map_err(|errors| format!("invalid configuration {}:\n{errors}", path.display()))?;
    // The proxy's access log and error logs go through `tracing`; the guard
    // flushes queued lines when `main` returns.
    let (_log_level, _log_guard) = yatagarasu::telemetry::logging::init(&config.logging)?;

    let proxy = yatagarasu::Proxy::builder(config).build()?;
    // Keeps `/files/ready` up to date; aborted when `main` returns.
    let probes = proxy.spawn_probes();

    let app = Router::new()
        .route("/", get(index))
        .nest_service("/files", proxy);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    probes.abort();
    Ok(())
}

/// The application's own route, served by axum rather than the proxy.
async fn index() -> &'static str {
    "This is the application. Objects are served under /files/<prefix>/<key>.\n"
}
