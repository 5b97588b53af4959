//! `yatagarasu probe URL`: exit 0 on a 2xx answer, 1 with a one-line reason
//! otherwise (the image's Docker health check).

mod common;

use std::process::{Command, Output};

use common::*;

fn probe(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("probe")
        .args(args)
        .env_remove("YATAGARASU_CONFIG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn probe_succeeds_on_2xx_and_explains_anything_else() {
    let s3 = S3Server::start(&["probe-bkt"]).await;
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new(
        "files",
        &s3,
        "probe-bkt",
    )]))
    .await;
    let health = format!("http://{}/health", proxy.main);
    let out = probe(&[&health]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty() && out.stdout.is_empty());

    let missing = format!("http://{}/nothing-here", proxy.main);
    let out = probe(&[&missing, "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&format!("{missing} answered 404")), "{text}");
}

#[test]
fn probe_fails_on_a_closed_port_a_silent_server_and_a_bad_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", closed.local_addr().unwrap());
    drop(closed);
    let out = probe(&[&url]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with(&format!("probe: {url}: cannot connect")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    // Accepts, never answers: the timeout ends the probe.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", silent.local_addr().unwrap());
    let out = probe(&[&url, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no answer within 1s"),
        "{}",
        stderr(&out)
    );
    drop(silent);

    let out = probe(&["ftp://127.0.0.1/health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only http:// URLs"),
        "{}",
        stderr(&out)
    );
    let out = probe(&["http://127.0.0.1:1/", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses a zero timeout");
}
