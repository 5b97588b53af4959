//! Process, runtime and connection metrics, read from a running proxy's
//! `/metrics`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

const BKT: &str = "procmetrics";

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    sample_value(samples, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} not exported"))
}

/// The soft `Max open files` limit in `/proc/<pid>/limits`.
fn max_open_files(pid: u32) -> f64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()
        .unwrap();
    soft.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_and_runtime_metrics_describe_the_running_process() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut config = Config::new(vec![BucketCfg::new("files", &s3, BKT)]);
    config.worker_threads = Some(3);
    let proxy = Proxy::start(&config).await;
    let (text, samples) = scrape(&proxy).await;

    for name in yatagarasu::telemetry::metrics::PROCESS_METRICS {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} not exported:\n{text}"
        );
    }
    let rss_kib = proxy.proc_status_kib("VmRSS") as f64;
    let rss = value(&samples, "process_resident_memory_bytes", &[]);
    assert!(
        rss > rss_kib * 1024.0 / 4.0 && rss < rss_kib * 1024.0 * 4.0,
        "RSS {rss} B, /proc says {rss_kib} KiB"
    );
    assert_eq!(
        value(&samples, "process_max_fds", &[]),
        max_open_files(proxy.pid())
    );
    let open_fds = value(&samples, "process_open_fds", &[]);
    assert!(open_fds >= 3.0, "open fds {open_fds}");
    assert!(value(&samples, "process_threads", &[]) >= 3.0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let started = value(&samples, "process_start_time_seconds", &[]);
    assert!(
        started <= now.as_secs_f64() && started > now.as_secs_f64() - 86_400.0,
        "start time {started}, now {now:?}"
    );
    assert!(value(&samples, "process_cpu_seconds_total", &[]) >= 0.0);

    assert_eq!(value(&samples, "yatagarasu_runtime_workers", &[]), 3.0);
    assert!(value(&samples, "yatagarasu_runtime_alive_tasks", &[]) >= 1.0);
    assert!(value(&samples, "yatagarasu_runtime_global_queue_depth", &[]) >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_gauges_follow_clients_and_downloads() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_pattern_object(BKT, "big.bin", 64 << 20).await;
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("files", &s3, BKT)])).await;
    let clients = |s: &[Sample]| {
        value(
            s,
            "yatagarasu_client_connections_open",
            &[("listener", "main")],
        )
    };
    let upstream = |s: &[Sample]| {
        value(
            s,
            "yatagarasu_upstream_connections_active",
            &[("bucket", "files")],
        )
    };

    let (_, before) = scrape(&proxy).await;
    assert_eq!(clients(&before), 0.0, "no client yet");
    assert_eq!(upstream(&before), 0.0, "exported before any request");
    assert!(
        value(
            &before,
            "yatagarasu_client_connections_open",
            &[("listener", "metrics")]
        ) >= 1.0,
        "the scrape's own connection is open while it is answered"
    );

    // A download that has started but is not read: its client connection and
    // its connection to S3 stay busy.
    let mut download = Download::start(proxy.main, "/files/big.bin", &[]).await;
    assert_eq!(download.status, 200);
    download.read_at_least(1, |_| {}).await.unwrap();
    let (_, during) = scrape(&proxy).await;
    assert_eq!(clients(&during), 1.0);
    assert_eq!(upstream(&during), 1.0);

    // Read to the end: the exchange with S3 is over.
    assert_eq!(download.read_to_end(|_| {}).await.unwrap(), 64 << 20);
    eventually("the upstream exchange ends", DEADLINE, || async {
        let (_, s) = scrape(&proxy).await;
        match upstream(&s) {
            0.0 => Ok(()),
            other => Err(format!("upstream = {other}")),
        }
    })
    .await;

    drop(download);
    eventually("the client connection closes", DEADLINE, || async {
        let (_, s) = scrape(&proxy).await;
        match clients(&s) {
            0.0 => Ok(()),
            other => Err(format!("clients = {other}")),
        }
    })
    .await;
}
