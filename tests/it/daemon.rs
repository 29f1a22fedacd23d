//! `tocsin run` of the built binary as a child process: for outages that need a real
//! process to die (`kill -9` mid-storm, a peer instance gone).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{LEASE, TOCSIN, free_port};

/// How long a daemon may take to answer `/healthz` after its start.
const READY: Duration = Duration::from_secs(10);

/// A running `tocsin run`, SIGKILLed and reaped when dropped.
pub struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Starts `tocsin run --config CONFIG --data-dir DATA_DIR` on a free port, appending
    /// its output to `log`.
    pub fn start(config: &Path, data_dir: &Path, log: PathBuf) -> Daemon {
        Self::spawn_with(Command::new(TOCSIN), config, data_dir, log)
    }

    /// Like [`Daemon::start`], with the process's umask set to `umask` (like `0022`, what
    /// a login shell or a container usually has), as a bare run outside systemd gets it.
    pub fn start_under_umask(umask: &str, config: &Path, data_dir: &Path, log: PathBuf) -> Daemon {
        let mut sh = Command::new("sh");
        // `exec` keeps the pid: the daemon is the child that is killed and reaped.
        sh.arg("-c")
            .arg("umask \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(umask)
            .arg(TOCSIN);
        Self::spawn_with(sh, config, data_dir, log)
    }

    /// Like [`Daemon::start`], with at most `open_files` file descriptors (soft and hard,
    /// as `ulimit -n` sets them).
    pub fn start_limited(config: &Path, data_dir: &Path, log: PathBuf, open_files: u32) -> Daemon {
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(TOCSIN);
        Self::spawn_with(bash, config, data_dir, log)
    }

    fn spawn_with(mut command: Command, config: &Path, data_dir: &Path, log: PathBuf) -> Daemon {
        let port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start tocsin run");
        Daemon { child, port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The last 40 lines of its output, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until `/healthz` answers 200; panics with the log if it exits or is slow.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tocsin exited with {status}:\n{}", self.log());
            }
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tocsin not ready after {READY:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until it leads and pages: as soon as it serves on a store of its own; on a
    /// shared store once the lease is its own, which after a `kill -9` of the instance
    /// that held it takes up to [`LEASE`] (it follows meanwhile, then starts again as the
    /// leader on the same socket). Returns how long it took from this call; panics with
    /// the log if it exits or is slow.
    pub async fn wait_leading(&mut self, client: &reqwest::Client) -> Duration {
        let start = Instant::now();
        self.wait_ready(client).await;
        let within = READY + LEASE;
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tocsin exited with {status}:\n{}", self.log());
            }
            // Refused or cut off while it starts again in its new role: ask again.
            if let Ok(r) = client.get(self.url("/api/v1/status")).send().await
                && let Ok(status) = r.json::<serde_json::Value>().await
                && (status["cluster"].is_null() || status["cluster"]["role"] == "leader")
            {
                return start.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "tocsin does not lead after {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no flush, no goodbye (the machine died).
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL tocsin");
        self.child.wait().expect("reap tocsin");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Sends `signal` (like `HUP`) to the daemon with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}
