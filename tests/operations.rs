//! Health, readiness, metrics, reload (SIGHUP and admin API), and shutdown.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::Value;

const BKT: &str = "ops-bkt";
const TOKEN: &str = "admintoken-Zq81xv";

async fn reload(proxy: &Proxy, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("x-yatagarasu-admin", "1")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    send_with_body(proxy.admin, "POST", "/admin/reload", &headers, Bytes::new()).await
}

/// Asserts a successful reload answer and returns its generation.
#[track_caller]
fn reloaded_generation(r: &Resp) -> u64 {
    assert_eq!(r.status, 200, "reload: {}", r.describe());
    let v = r.json();
    assert_eq!(v["status"], "reloaded", "{v}");
    v["generation"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric generation in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_status_version_uptime() {
    let s3 = S3Server::start(&[BKT]).await;
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    let r = get(proxy.main, "/health").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert!(
        v["uptime_seconds"].is_number(),
        "uptime_seconds must be a number: {v}"
    );
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0, "{v}");
    assert!(r.header("x-request-id").is_some(), "{}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_lists_buckets_when_backends_answer() {
    let s3a = S3Server::start(&[BKT]).await;
    let s3b = S3Server::start_with("AKIAOTHERKEY00000002", "other/secret", &["second-bkt"]).await;
    let proxy = Proxy::start(&Config::new(vec![
        BucketCfg::new("products", &s3a, BKT),
        BucketCfg::new("second", &s3b, "second-bkt"),
    ]))
    .await;
    let v = proxy.wait_ready().await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["buckets"]["products"]["up"], true, "{v}");
    assert_eq!(v["buckets"]["second"]["up"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_when_a_backend_is_down() {
    let s3 = S3Server::start(&[BKT]).await;
    let dead = closed_port();
    let proxy = Proxy::start(&Config::new(vec![
        BucketCfg::new("products", &s3, BKT),
        BucketCfg::at(
            "broken",
            &format!("http://{dead}"),
            "broken-bkt",
            ACCESS_KEY,
            SECRET_KEY,
        ),
    ]))
    .await;
    let v: Value = eventually(
        "/ready reports products up and broken down",
        DEADLINE,
        || async {
            let r = get(proxy.main, "/ready").await;
            let v: Value =
                serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.describe()))?;
            if v["buckets"]["products"]["up"] == true && v["buckets"]["broken"]["up"] == false {
                if r.status != 503 {
                    return Err(format!(
                        "status must be 503 with a bucket down: {}",
                        r.describe()
                    ));
                }
                Ok(v)
            } else {
                Err(r.describe())
            }
        },
    )
    .await;
    assert_eq!(v["status"], "not_ready", "{v}");

    // The main path keeps working for the healthy bucket.
    s3.write_object(BKT, "f.txt", b"still served");
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_when_backend_stops() {
    let mut s3 = S3Server::start(&[BKT]).await;
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    proxy.wait_ready().await;
    s3.stop().await;
    eventually("/ready turns 503 with products down", DEADLINE, || async {
        let r = get(proxy.main, "/ready").await;
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.describe()))?;
        if r.status == 503 && v["status"] == "not_ready" && v["buckets"]["products"]["up"] == false
        {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    eventually(
        "yatagarasu_backend_up{bucket=products} = 0",
        DEADLINE,
        || async {
            let (text, samples) = scrape(&proxy).await;
            let up = sample_value(&samples, "yatagarasu_backend_up", &[("bucket", "products")]);
            if up == Some(0.0) {
                Ok(())
            } else {
                Err(format!("{up:?} in\n{text}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_requests() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(10_000);
    s3.write_object(BKT, "m.bin", &body);
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    proxy.wait_ready().await;

    for _ in 0..2 {
        let r = get(proxy.main, "/products/m.bin").await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_eq!(get(proxy.main, "/products/missing.bin").await.status, 404);
    assert_eq!(
        send(proxy.main, "HEAD", "/products/m.bin", &[])
            .await
            .status,
        200
    );
    assert_eq!(get(proxy.main, "/unmapped/x").await.status, 404);
    let generation = reloaded_generation(&reload(&proxy, None).await);

    let body_len = body.len() as f64;
    eventually("metrics reflect the requests", DEADLINE, || async {
        let (text, samples) = scrape(&proxy).await;
        let problems = metric_problems(&text, &samples, body_len, generation);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "missing or wrong metrics:\n{}\n---\n{text}",
                problems.join("\n")
            ))
        }
    })
    .await;
}

/// What `/metrics` must show after the requests of [`metrics_after_requests`].
fn metric_problems(text: &str, samples: &[Sample], body_len: f64, generation: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    let sum = |name: &str, labels: &[(&str, &str)]| sample_sum(samples, name, labels);
    let v = |name: &str, labels: &[(&str, &str)]| sample_value(samples, name, labels);
    want(
        sum(
            "yatagarasu_http_requests_total",
            &[("bucket", "products"), ("method", "GET"), ("status", "200")],
        ) >= 2.0,
        "yatagarasu_http_requests_total{bucket=products,method=GET,status=200} >= 2",
    );
    want(
        sum(
            "yatagarasu_http_requests_total",
            &[("bucket", "products"), ("method", "GET"), ("status", "404")],
        ) >= 1.0,
        "yatagarasu_http_requests_total{bucket=products,method=GET,status=404} >= 1",
    );
    want(
        sum(
            "yatagarasu_http_requests_total",
            &[
                ("bucket", "products"),
                ("method", "HEAD"),
                ("status", "200"),
            ],
        ) >= 1.0,
        "yatagarasu_http_requests_total{bucket=products,method=HEAD,status=200} >= 1",
    );
    want(
        text.contains("# TYPE yatagarasu_http_request_duration_seconds histogram"),
        "yatagarasu_http_request_duration_seconds is a histogram",
    );
    want(
        v(
            "yatagarasu_http_request_duration_seconds_bucket",
            &[("bucket", "products")],
        )
        .is_some(),
        "yatagarasu_http_request_duration_seconds_bucket{bucket=products}",
    );
    want(
        sum(
            "yatagarasu_http_request_duration_seconds_count",
            &[("bucket", "products")],
        ) >= 4.0,
        "yatagarasu_http_request_duration_seconds_count{bucket=products} sums to >= 4",
    );
    want(
        v("yatagarasu_http_requests_in_flight", &[]).is_some(),
        "yatagarasu_http_requests_in_flight",
    );
    want(
        sum(
            "yatagarasu_http_response_bytes_total",
            &[("bucket", "products")],
        ) >= 2.0 * body_len,
        "yatagarasu_http_response_bytes_total{bucket=products} >= 2 bodies",
    );
    want(
        sum(
            "yatagarasu_upstream_requests_total",
            &[("bucket", "products")],
        ) >= 4.0,
        "yatagarasu_upstream_requests_total{bucket=products} sums to >= 4",
    );
    // Two GETs and a HEAD found the object; one GET did not.
    want(
        sum(
            "yatagarasu_upstream_requests_total",
            &[("bucket", "products"), ("status", "200")],
        ) >= 3.0,
        "yatagarasu_upstream_requests_total{bucket=products,status=200} >= 3",
    );
    want(
        sum(
            "yatagarasu_upstream_requests_total",
            &[("bucket", "products"), ("status", "404")],
        ) >= 1.0,
        "yatagarasu_upstream_requests_total{bucket=products,status=404} >= 1",
    );
    want(
        samples.iter().any(|s| {
            s.name
                .starts_with("yatagarasu_upstream_request_duration_seconds")
        }),
        "yatagarasu_upstream_request_duration_seconds",
    );
    want(
        v("yatagarasu_backend_up", &[("bucket", "products")]) == Some(1.0),
        "yatagarasu_backend_up{bucket=products} == 1",
    );
    want(
        sum("yatagarasu_config_reloads_total", &[("result", "success")]) >= 1.0,
        "yatagarasu_config_reloads_total{result=success} >= 1",
    );
    want(
        v("yatagarasu_config_generation", &[]) == Some(generation as f64),
        &format!("yatagarasu_config_generation == {generation}"),
    );
    want(
        v(
            "yatagarasu_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
        ) == Some(1.0),
        "yatagarasu_build_info{version} == 1",
    );
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_adds_a_bucket() {
    let s3 = S3Server::start(&[BKT, "extra-bkt"]).await;
    s3.write_object(BKT, "p.txt", b"products object");
    s3.write_object("extra-bkt", "e.txt", b"extra object");
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    let proxy = Proxy::start(&cfg).await;

    assert_error(
        &get(proxy.main, "/extra/e.txt").await,
        404,
        Some("NoSuchRoute"),
    );

    cfg.buckets.push(BucketCfg::new("extra", &s3, "extra-bkt"));
    proxy.write_config(&cfg.yaml());
    let from = proxy.log_len();
    proxy.signal("HUP");
    let (at, ev) = proxy.wait_for_message(from, "configuration reloaded").await;
    let generation = log_field(&ev, "generation").and_then(Value::as_u64);
    assert!(
        generation.is_some(),
        "`configuration reloaded` must carry a numeric generation: {ev}"
    );

    let r = get(proxy.main, "/extra/e.txt").await;
    assert_eq!(r.status, 200, "new prefix after reload: {}", r.describe());
    assert_eq!(r.body.as_ref(), b"extra object");
    let r = get(proxy.main, "/products/p.txt").await;
    assert_eq!(r.status, 200, "old prefix after reload: {}", r.describe());

    // A bad file on SIGHUP: logged, and the running configuration stays.
    proxy.write_config("buckets: [ this is not valid yaml\n");
    proxy.signal("HUP");
    proxy
        .wait_for_message(at + 1, "configuration reload failed")
        .await;
    let r = get(proxy.main, "/extra/e.txt").await;
    assert_eq!(r.status, 200, "after a failed reload: {}", r.describe());

    // Another good reload increments the generation.
    proxy.write_config(&cfg.yaml());
    let from = proxy.log_len();
    proxy.signal("HUP");
    let (_, ev) = proxy.wait_for_message(from, "configuration reloaded").await;
    let next = log_field(&ev, "generation").and_then(Value::as_u64);
    assert_eq!(
        next,
        generation.map(|g| g + 1),
        "generation after the next good reload: {ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_good_and_bad_config() {
    const AK1: &str = "AKIAROTATEKEY0000001";
    const SK1: &str = "rotate/first+secret/000000000000000001";
    const AK2: &str = "AKIAROTATEKEY0000002";
    const SK2: &str = "rotate/second+secret/00000000000000002";
    let s3 = S3Server::start_with_keyring(AK1, SK1, &[BKT]).await;
    s3.write_object(BKT, "f.txt", b"rotating");
    let mut cfg = Config::new(vec![
        BucketCfg::new("products", &s3, BKT),
        BucketCfg::new("old", &s3, BKT),
    ]);
    cfg.admin_token = Some(TOKEN.to_owned());
    let proxy = Proxy::start(&cfg).await;
    assert_eq!(get(proxy.main, "/old/f.txt").await.status, 200);

    let g1 = reloaded_generation(&reload(&proxy, Some(TOKEN)).await);

    // Rotate the credentials at S3: the running config stops working...
    s3.keyring().grant(AK2, SK2);
    s3.keyring().revoke(AK1);
    assert_error(&get(proxy.main, "/products/f.txt").await, 403, None);
    // ...until the new ones are loaded. Also drop the `old` bucket.
    cfg.buckets = vec![BucketCfg::at("products", &s3.endpoint(), BKT, AK2, SK2)];
    proxy.write_config(&cfg.yaml());
    let from = proxy.log_len();
    let g2 = reloaded_generation(&reload(&proxy, Some(TOKEN)).await);
    assert_eq!(g2, g1 + 1, "generation must increment");
    proxy.wait_for_message(from, "configuration reloaded").await;
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(
        r.status,
        200,
        "new credentials after reload: {}",
        r.describe()
    );
    assert_eq!(r.body.as_ref(), b"rotating");
    assert_error(
        &get(proxy.main, "/old/f.txt").await,
        404,
        Some("NoSuchRoute"),
    );

    // A bad configuration: 400 with every problem, and the old one keeps serving.
    let mut bad = cfg.clone();
    bad.buckets[0].region = String::new();
    let bad_yaml = bad.yaml().replace("      region: \"\"\n", "");
    assert!(!bad_yaml.contains("region"), "{bad_yaml}");
    proxy.write_config(&bad_yaml);
    let from = proxy.log_len();
    let r = reload(&proxy, Some(TOKEN)).await;
    assert_eq!(r.status, 400, "{}", r.describe());
    let v = r.json();
    assert_eq!(v["error"]["code"], "InvalidConfig", "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    let details: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("error.details must be an array: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        details.contains(&"buckets[0].s3.region: missing"),
        "details must contain `buckets[0].s3.region: missing`: {details:?}"
    );
    assert!(
        !r.text().contains(SK2),
        "the reload error leaks the secret key"
    );
    proxy
        .wait_for_message(from, "configuration reload failed")
        .await;
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(
        r.status,
        200,
        "old config must keep serving: {}",
        r.describe()
    );

    // Unparsable YAML is also InvalidConfig.
    proxy.write_config("server: [\n");
    let r = reload(&proxy, Some(TOKEN)).await;
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "InvalidConfig");

    eventually("failed reloads are counted", DEADLINE, || async {
        let (text, samples) = scrape(&proxy).await;
        let failures = sample_value(
            &samples,
            "yatagarasu_config_reloads_total",
            &[("result", "failure")],
        );
        let generation = sample_value(&samples, "yatagarasu_config_generation", &[]);
        if failures.is_some_and(|f| f >= 2.0) && generation == Some(g2 as f64) {
            Ok(())
        } else {
            Err(format!(
                "failures {failures:?}, generation {generation:?} (want {g2})\n{text}"
            ))
        }
    })
    .await;

    // A good file again: the generation continues from the last good one.
    proxy.write_config(&cfg.yaml());
    assert_eq!(
        reloaded_generation(&reload(&proxy, Some(TOKEN)).await),
        g2 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_requires_the_token() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    cfg.admin_token = Some(TOKEN.to_owned());
    let proxy = Proxy::start(&cfg).await;
    let from = proxy.log_len();
    let (basic, longer, glued) = (
        format!("Basic {TOKEN}"),
        format!("Bearer {TOKEN}x"),
        format!("Bearer{TOKEN}"),
    );
    let wrong: [Vec<(&str, &str)>; 6] = [
        vec![],
        vec![("authorization", "Bearer wrong-token")],
        vec![("authorization", "Bearer")],
        vec![("authorization", basic.as_str())],
        vec![("authorization", longer.as_str())],
        vec![("authorization", glued.as_str())],
    ];
    for headers in &wrong {
        let mut headers = headers.clone();
        headers.push(("x-yatagarasu-admin", "1"));
        let headers = &headers;
        let r = send_with_body(proxy.admin, "POST", "/admin/reload", headers, Bytes::new()).await;
        assert_eq!(r.status, 401, "{headers:?}: {}", r.describe());
        assert!(!r.text().contains(TOKEN), "401 body leaks the token");
    }
    assert!(
        proxy.json_logs()[from..]
            .iter()
            .all(|v| log_message(v) != Some("configuration reloaded")),
        "a 401 must not reload"
    );
    reloaded_generation(&reload(&proxy, Some(TOKEN)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_during_download_lets_it_finish() {
    const SIZE: u64 = 64 << 20;
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_pattern_object(BKT, "big.bin", SIZE).await;
    s3.write_object(BKT, "small.txt", b"small");
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    let proxy = Proxy::start(&cfg).await;

    let (mut dl, mut checker) = download_first_mib(&proxy).await;

    // Remove the bucket while the download is paused mid-body.
    cfg.buckets = vec![BucketCfg::new("other", &s3, BKT)];
    proxy.write_config(&cfg.yaml());
    reloaded_generation(&reload(&proxy, None).await);
    assert_error(
        &get(proxy.main, "/products/small.txt").await,
        404,
        Some("NoSuchRoute"),
    );
    assert_eq!(get(proxy.main, "/other/small.txt").await.status, 200);

    let total = dl.read_to_end(|d| checker.feed(d)).await.unwrap();
    assert_eq!(total, SIZE, "the in-flight download must complete");
    assert_eq!(
        checker.first_mismatch, None,
        "the in-flight download must be intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_download_and_exits_0() {
    const SIZE: u64 = 64 << 20;
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_pattern_object(BKT, "big.bin", SIZE).await;
    let mut proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    proxy.wait_ready().await;

    let (mut dl, mut checker) = download_first_mib(&proxy).await;

    proxy.signal("TERM");
    // While draining, /ready is 503 or new connections are refused.
    let observed = eventually(
        "/ready stops answering 200 during the drain",
        DEADLINE,
        || async {
            match proxy.try_ready().await {
                Ok(r) if r.status == 200 => Err(r.describe()),
                Ok(r) if r.status == 503 => Ok(format!("503 {}", r.text())),
                Ok(r) => Err(format!("unexpected {}", r.describe())),
                Err(e) => Ok(format!("refused/closed: {e}")),
            }
        },
    )
    .await;
    eprintln!("during drain: {observed}");
    assert!(
        proxy.is_running(),
        "the proxy exited with a download in flight\n{}",
        proxy.log_dump()
    );

    let total = dl.read_to_end(|d| checker.feed(d)).await.unwrap();
    assert_eq!(total, SIZE, "the in-flight download must complete");
    assert_eq!(checker.first_mismatch, None);
    drop(dl);

    assert_clean_exit(&mut proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_when_idle_exits_0() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    let _ = get(proxy.main, "/health").await;
    proxy.signal("INT");
    assert_clean_exit(&mut proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_subcommand_runs_the_proxy() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "f.txt", b"via serve");
    let cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    let proxy = Proxy::start_yaml(&cfg.yaml(), &["serve"]).await;
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"via serve");
}

/// Waits for the process to exit and checks it stopped cleanly: exit code 0
/// and `shutdown complete` logged.
/// The process's tokio worker threads (the multi-thread scheduler names them
/// `tokio-rt-worker`; the current-thread scheduler has none).
fn tokio_workers(proxy: &Proxy) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", proxy.pid()))
        .expect("the proxy's /proc entry")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == "tokio-rt-worker")
        })
        .count()
}

/// `server.worker_threads: 1` runs the proxy on tokio's current-thread
/// scheduler (the default on a single CPU); downloads, a SIGHUP reload
/// during one, and the SIGTERM drain work there as with several threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_thread_serves_reloads_and_drains() {
    const SIZE: u64 = 16 << 20;
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_pattern_object(BKT, "big.bin", SIZE).await;
    s3.write_object(BKT, "small.txt", b"small");

    let mut two = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    two.worker_threads = Some(2);
    let proxy = Proxy::start(&two).await;
    assert_eq!(tokio_workers(&proxy), 2, "{}", proxy.log_dump());
    drop(proxy);

    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    cfg.worker_threads = Some(1);
    let mut proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    assert_eq!(tokio_workers(&proxy), 0, "{}", proxy.log_dump());

    let (mut dl, mut checker) = download_first_mib(&proxy).await;

    cfg.buckets.push(BucketCfg::new("other", &s3, BKT));
    proxy.write_config(&cfg.yaml());
    proxy.signal("HUP");
    eventually("the reloaded bucket answers", DEADLINE, || async {
        let r = get(proxy.main, "/other/small.txt").await;
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;

    let total = dl.read_to_end(|d| checker.feed(d)).await.unwrap();
    assert_eq!(total, SIZE, "the in-flight download must complete");
    assert_eq!(checker.first_mismatch, None);
    drop(dl);

    proxy.signal("TERM");
    assert_clean_exit(&mut proxy).await;
}

/// Starts a GET of `/products/big.bin` and reads (and checks) its first MiB,
/// leaving the rest of the download in flight.
async fn download_first_mib(proxy: &Proxy) -> (Download, PatternChecker) {
    let mut dl = Download::start(proxy.main, "/products/big.bin", &[]).await;
    assert_eq!(dl.status, 200);
    let mut checker = PatternChecker::default();
    dl.read_at_least(1 << 20, |d| checker.feed(d))
        .await
        .unwrap();
    (dl, checker)
}

async fn assert_clean_exit(proxy: &mut Proxy) {
    let status = proxy.wait_exit(DEADLINE).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status: {status}\n{}",
        proxy.log_dump()
    );
    assert!(
        proxy
            .json_logs()
            .iter()
            .any(|v| log_message(v) == Some("shutdown complete")),
        "`shutdown complete` must be logged\n{}",
        proxy.log_dump()
    );
}

/// A proxy (with the given grace period) in front of an endless object, and a
/// client that read 1 MiB of it and then stopped reading.
async fn proxy_with_stalled_download(grace_seconds: u64) -> (ScriptedUpstream, Proxy, Download) {
    let up = ScriptedUpstream::start(|req| {
        if req.path().ends_with("/endless.bin") {
            Reply::new(200).endless()
        } else {
            Reply::new(200)
        }
    })
    .await;
    let mut cfg = Config::new(vec![BucketCfg::at(
        "s",
        &up.endpoint(),
        "stall-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    )]);
    cfg.graceful_shutdown_timeout_seconds = grace_seconds;
    let proxy = Proxy::start(&cfg).await;
    let mut dl = Download::start(proxy.main, "/s/endless.bin", &[]).await;
    assert_eq!(dl.status, 200);
    dl.read_at_least(1 << 20, |_| {}).await.unwrap();
    (up, proxy, dl)
}

/// A download that never finishes (the client stopped reading) does not keep
/// the process alive past graceful_shutdown_timeout_seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stalled_download_exits_after_grace_period() {
    let (_up, mut proxy, dl) = proxy_with_stalled_download(1).await;
    // Stop reading, keep the connection open, and ask the proxy to stop.
    proxy.signal("TERM");
    assert_clean_exit(&mut proxy).await;
    drop(dl);
}

/// During the drain a second SIGTERM stops at once (nginx's fast shutdown),
/// even with a long grace period and a download still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigterm_during_drain_exits_without_waiting_for_the_grace_period() {
    // Far longer than the test's deadline: only the second signal can end the drain in time.
    let (_up, mut proxy, dl) = proxy_with_stalled_download(600).await;
    let from = proxy.log_len();
    proxy.signal("TERM");
    proxy
        .wait_for_message(from, "shutdown requested; draining in-flight requests")
        .await;
    proxy.signal("TERM");
    assert_clean_exit(&mut proxy).await;
    assert!(
        proxy.json_logs().iter().any(|v| {
            log_message(v) == Some("second stop signal; closing remaining connections now")
        }),
        "{}",
        proxy.log_dump()
    );
    drop(dl);
}

const DELAY_MESSAGE: &str =
    "shutdown requested; /ready answers 503, serving on until the shutdown delay ends";
const DRAIN_MESSAGE: &str = "shutdown requested; draining in-flight requests";

/// A proxy serving `f.txt` with `server.shutdown_delay_seconds: seconds`.
async fn proxy_with_shutdown_delay(s3: &S3Server, seconds: u64) -> Proxy {
    s3.write_object(BKT, "f.txt", b"still served");
    let mut cfg = Config::new(vec![BucketCfg::new("products", s3, BKT)]);
    cfg.server_extra_yaml = format!("  shutdown_delay_seconds: {seconds}\n");
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    proxy
}

/// With `server.shutdown_delay_seconds`, SIGTERM turns `/ready` to 503 while
/// new connections are still served; a second signal ends the delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_delay_serves_new_connections_while_ready_answers_503() {
    let s3 = S3Server::start(&[BKT]).await;
    // Far longer than the test: only the second signal can end it in time.
    let mut proxy = proxy_with_shutdown_delay(&s3, 600).await;
    let from = proxy.log_len();
    proxy.signal("TERM");
    proxy.wait_for_message(from, DELAY_MESSAGE).await;
    let ready = get(proxy.main, "/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.describe());
    let r = get(proxy.main, "/products/f.txt").await;
    assert_eq!((r.status, &r.body[..]), (200, &b"still served"[..]));
    proxy.signal("TERM");
    proxy.wait_for_message(from, DRAIN_MESSAGE).await;
    assert_clean_exit(&mut proxy).await;
}

/// A delay that runs out starts the drain by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_delay_that_runs_out_starts_the_drain() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut proxy = proxy_with_shutdown_delay(&s3, 1).await;
    let from = proxy.log_len();
    proxy.signal("TERM");
    let (delayed, _) = proxy.wait_for_message(from, DELAY_MESSAGE).await;
    proxy.wait_for_message(delayed, DRAIN_MESSAGE).await;
    assert_clean_exit(&mut proxy).await;
    let cut_short = proxy
        .json_logs()
        .iter()
        .any(|v| log_message(v) == Some("second stop signal; the shutdown delay is cut short"));
    assert!(!cut_short, "{}", proxy.log_dump());
}

/// Health and readiness probes are logged at DEBUG, not in the INFO access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_stay_out_of_the_info_access_log() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "seen.txt", b"x");
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    assert_eq!(get(proxy.main, "/health").await.status, 200);
    let _ = get(proxy.main, "/ready").await;
    assert_eq!(get(proxy.main, "/products/seen.txt").await.status, 200);
    let (_, last) = proxy
        .wait_for_log(0, "access log of /products/seen.txt", DEADLINE, |v| {
            log_field(v, "path").and_then(Value::as_str) == Some("/products/seen.txt")
        })
        .await;
    assert_eq!(
        log_field(&last, "status").and_then(Value::as_u64),
        Some(200)
    );
    let probe_lines: Vec<_> = proxy
        .json_logs()
        .into_iter()
        .filter(|v| {
            matches!(
                log_field(v, "path").and_then(Value::as_str),
                Some("/health" | "/ready")
            )
        })
        .collect();
    assert!(
        probe_lines.is_empty(),
        "probes were logged at INFO: {probe_lines:?}"
    );
}
