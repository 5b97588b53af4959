//! The `yatagarasu` binary: `serve` (default), `check`, `probe` and `demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// mimalloc: fewer CPU cycles per request than glibc's allocator on the
/// proxy's many small, short-lived allocations, and memory returned promptly
/// after bursts of large downloads (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use yatagarasu::Config;
use yatagarasu::server::{self, ServeOptions};

/// A streaming, signing S3 proxy.
#[derive(Debug, Parser)]
#[command(name = "yatagarasu", version, about)]
struct Cli {
    /// Configuration file (YAML) for `serve` (the default) and `check`.
    #[arg(short, long, env = "YATAGARASU_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (alias of `check`, kept for older docs).
    #[arg(long)]
    test: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Serve,
    /// Validate a configuration: exit 0, or print every problem and exit 1.
    Check,
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise (with the reason on
    /// stderr): a health check for images without a shell or curl.
    Probe {
        /// An `http://` URL, such as http://127.0.0.1:8080/health.
        url: String,
        /// Seconds to wait for the connection and the answer's status.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Start an embedded S3-compatible store with sample objects and the proxy in front.
    #[cfg(feature = "demo")]
    Demo {
        /// Port for the proxy (falls back to a free port when taken).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

fn main() -> ExitCode {
    // Before anything signs or verifies a token (the demo signs its own).
    yatagarasu::auth::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        #[cfg(feature = "demo")]
        Some(Command::Demo { port }) => demo(port),
        Some(Command::Check) => check(cli.config.as_deref()),
        Some(Command::Probe { url, timeout }) => probe(&url, Duration::from_secs(timeout)),
        _ if cli.test => check(cli.config.as_deref()),
        Some(Command::Serve) | None => serve(cli.config.as_deref()),
    }
}

fn require_config(path: Option<&Path>) -> Result<&Path, ExitCode> {
    path.ok_or_else(|| {
        eprintln!("error: --config FILE is required (or set YATAGARASU_CONFIG)");
        ExitCode::from(2)
    })
}

fn print_errors(errors: &yatagarasu::ConfigErrors) {
    for error in &errors.0 {
        eprintln!("{error}");
    }
}

fn check(path: Option<&Path>) -> ExitCode {
    let path = match require_config(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::FAILURE;
        }
    };
    // Building the stack also loads CA files and resolves endpoints. It
    // starts the audit outputs' writer tasks, so it runs on a runtime (whose
    // end stops them again).
    let buckets = config.buckets.len();
    let runtime = match runtime(1) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(async { yatagarasu::Proxy::builder(config).build() }) {
        Ok(_) => {
            println!("configuration OK ({buckets} bucket(s))");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `probe URL`: exit 0 when `url` answers 2xx within `timeout`.
fn probe(url: &str, timeout: Duration) -> ExitCode {
    let runtime = match runtime(1) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // The timer is made inside the runtime.
    match runtime.block_on(async { tokio::time::timeout(timeout, probe_status(url)).await }) {
        Ok(Ok(status)) if status.is_success() => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("probe: {url} answered {status}");
            ExitCode::FAILURE
        }
        Ok(Err(reason)) => {
            eprintln!("probe: {url}: {reason}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("probe: {url}: no answer within {}s", timeout.as_secs());
            ExitCode::FAILURE
        }
    }
}

/// The status of `GET url` over one HTTP/1.1 connection.
async fn probe_status(url: &str) -> Result<http::StatusCode, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs are supported".to_owned());
    }
    let authority = uri.authority().ok_or("the URL has no host")?.clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("cannot start HTTP/1.1: {e}"))?;
    tokio::spawn(connection);
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::USER_AGENT, "yatagarasu-probe")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("cannot make the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    Ok(response.status())
}

/// The async runtime, with `threads` threads serving requests.
///
/// One thread gets tokio's current-thread scheduler: on one CPU it serves a
/// proxied 1 KiB GET with about 27 % less CPU than the multi-thread
/// scheduler with one worker, whose `block_on` caller is a second thread
/// competing for that CPU (docs/PERFORMANCE.md).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

fn serve(path: Option<&Path>) -> ExitCode {
    let path = match require_config(path) {
        Ok(p) => p.to_owned(),
        Err(code) => return code,
    };
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("error: invalid configuration {}:", path.display());
            print_errors(&errors);
            return ExitCode::FAILURE;
        }
    };
    let loader: server::ConfigLoader = Arc::new(move || Config::load(&path));
    match runtime(config.server.runtime_threads()) {
        Ok(runtime) => run(&runtime, config, Some(loader)),
        Err(code) => code,
    }
}

/// Starts logging and metrics, then runs the server to completion on `runtime`.
fn run(
    runtime: &tokio::runtime::Runtime,
    config: Config,
    loader: Option<server::ConfigLoader>,
) -> ExitCode {
    let (trace_export, tracer) = match start_tracing(runtime, &config) {
        Ok(Some((guard, tracer))) => (Some(guard), Some(tracer)),
        Ok(None) => (None, None),
        Err(code) => return code,
    };
    // The slow-request log (`observability.slow_query`), fixed at start.
    yatagarasu::telemetry::otel::slow::configure(config.observability.slow_query);
    // The guard lives until `run` returns, so queued log lines are flushed on exit.
    let logging = yatagarasu::telemetry::logging::init_with_tracer(&config.logging, tracer);
    let (log_level, _log_guard) = match logging {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let metrics = if config.metrics.enabled {
            match yatagarasu::telemetry::metrics::install_prometheus() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the metrics recorder");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            buckets = config.buckets.len(),
            "starting"
        );
        let options = ServeOptions {
            loader,
            log_level: Some(log_level),
            metrics,
        };
        let served = server::run(config, options).await;
        if let Some(trace_export) = trace_export {
            // The spans still queued are exported (blocking, on a blocking
            // thread) while this runtime carries the export's requests.
            let _ = tokio::task::spawn_blocking(move || trace_export.shutdown()).await;
        }
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// The OpenTelemetry tracer provider, when `observability.tracing` is enabled.
fn start_tracing(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<
    Option<(
        yatagarasu::telemetry::otel::TracingGuard,
        opentelemetry_sdk::trace::SdkTracer,
    )>,
    ExitCode,
> {
    let Some(tracing) = &config.observability.tracing else {
        return Ok(None);
    };
    yatagarasu::telemetry::otel::install(tracing, &config.upstream, runtime.handle().clone())
        .map(Some)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })
}

#[cfg(feature = "demo")]
fn demo(port: u16) -> ExitCode {
    // The demo's configuration is made on the runtime, so it cannot set the count.
    let runtime = match runtime(yatagarasu::config::ServerConfig::default_threads()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // The embedded S3 store runs on this runtime for as long as the proxy does.
    let demo = match runtime.block_on(yatagarasu::demo::Demo::start(port)) {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("error: cannot start the demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.spawn(demo.announce_when_listening());
    run(&runtime, demo.config.clone(), Some(demo.loader.clone()))
}
