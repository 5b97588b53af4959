//! A real `redis-server` child process on a free local port.
//!
//! No persistence (`--save ''`, `--appendonly no`), its own temp directory,
//! killed on drop. It can be stopped and started again on the same port, to
//! test a Redis that goes away and comes back, or created without starting
//! it, to test a Redis that is down when the proxy starts.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// A `redis-server` child process (or the port reserved for one).
pub(crate) struct RedisServer {
    /// The port it listens (or will listen) on, on 127.0.0.1.
    pub(crate) port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts a server requiring `password` (`--requirepass`).
    pub(crate) async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password)).await
    }

    async fn start_with(password: Option<&str>) -> Self {
        // A freed port can be taken by someone else before redis binds it:
        // try a few fresh ports.
        for _ in 0..5 {
            let mut server = Self::reserve_with(password);
            if server.try_run().await.is_ok() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Picks a free port without starting the server (Redis "down").
    pub(crate) fn reserve() -> Self {
        Self::reserve_with(None)
    }

    fn reserve_with(password: Option<&str>) -> Self {
        let port = super::closed_port().port();
        Self {
            port,
            password: password.map(str::to_owned),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    /// `redis://127.0.0.1:<port>` (no password in it).
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts (or restarts) the server on its port and waits until it answers.
    pub(crate) async fn run(&mut self) {
        if let Err(e) = self.try_run().await {
            panic!("{e}");
        }
    }

    async fn try_run(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "redis-server already running");
        let binary = which_redis_server();
        let mut cmd = Command::new(&binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            cmd.args(["--requirepass", password]);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "redis-server exited with {status} (port {} taken?)",
                    self.port
                ));
            }
            if self.ping().await {
                return Ok(());
            }
            if start.elapsed() > DEADLINE {
                self.stop();
                return Err(format!(
                    "redis-server on port {} not answering within {DEADLINE:?}",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server (its data is gone: nothing is persisted).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A direct connection (database `db`) for inspecting what the tier wrote.
    pub(crate) async fn connection(&self, db: i64) -> ::redis::aio::MultiplexedConnection {
        let mut url = self.url();
        if let Some(password) = &self.password {
            url = format!("redis://:{password}@127.0.0.1:{}", self.port);
        }
        let client = ::redis::Client::open(format!("{url}/{db}")).unwrap();
        tokio::time::timeout(DEADLINE, client.get_multiplexed_async_connection())
            .await
            .expect("connecting to the test redis-server timed out")
            .expect("connecting to the test redis-server")
    }

    async fn ping(&self) -> bool {
        let mut url = self.url();
        if let Some(password) = &self.password {
            url = format!("redis://:{password}@127.0.0.1:{}", self.port);
        }
        let Ok(client) = ::redis::Client::open(url) else {
            return false;
        };
        let attempt = async {
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            ::redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), attempt).await,
            Ok(Some(pong)) if pong == "PONG"
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `redis-server` binary; fails the test clearly when it is missing.
fn which_redis_server() -> String {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => path.display().to_string(),
        None => panic!(
            "redis-server is not installed (not found on PATH); the Redis tier tests need a real \
             server: install the Debian package with `apt-get install -y redis-server`"
        ),
    }
}
