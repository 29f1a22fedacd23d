//! Starts and stops the daemon under test, in a temp dir of its own.

use super::*;

pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    /// The binary and address, to start it again on the same data dir.
    bin: PathBuf,
    listen: String,
    /// `ulimit -n` for the daemon, kept for a restart.
    open_files: Option<u32>,
    /// Holds config, data dir and log; removed on drop unless kept after a failure.
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    log_path: PathBuf,
    /// Set once the process is reaped, so drop does not signal a recycled pid.
    exited: bool,
}

impl Daemon {
    /// Writes the ingest config, starts `tocsin run` and waits for /healthz.
    pub async fn start(bin: &Path, client: &reqwest::Client) -> Result<Daemon> {
        Daemon::start_on(bin, client, &Storage::DataDir).await
    }

    /// Like [`Daemon::start`], keeping the daemon's state in `storage`.
    pub async fn start_on(
        bin: &Path,
        client: &reqwest::Client,
        storage: &Storage,
    ) -> Result<Daemon> {
        let config = |listen: &str, data_dir: &Path| config_toml(listen, &storage.toml(data_dir));
        Daemon::start_with(bin, client, &config, None).await
    }

    /// Like [`Daemon::start`], with the config `config(listen, data_dir)` writes, and
    /// with `open_files`, at most that many file descriptors (soft and hard, as
    /// `ulimit -n` sets them).
    pub async fn start_with(
        bin: &Path,
        client: &reqwest::Client,
        config: &dyn Fn(&str, &Path) -> String,
        open_files: Option<u32>,
    ) -> Result<Daemon> {
        let dir = tempfile::Builder::new().prefix("tocsin-bench-").tempdir()?;
        let root = dir.path().to_path_buf();
        let data_dir = root.join("data");
        std::fs::create_dir(&data_dir)?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        std::fs::write(root.join("alerts.toml"), config(&listen, &data_dir))?;
        let log_path = root.join("tocsin.log");
        let child = spawn(bin, &root, &listen, &log_path, open_files)?;
        let mut daemon = Daemon {
            pid: child.id(),
            child,
            base_url: format!("http://{listen}"),
            bin: bin.to_path_buf(),
            listen,
            open_files,
            dir: Some(dir),
            root,
            log_path,
            exited: false,
        };
        println!(
            "started {} (pid {}) in {}",
            bin.display(),
            daemon.pid,
            daemon.root.display()
        );
        daemon.wait_healthy(client, Duration::from_secs(30)).await?;
        Ok(daemon)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Starts tocsin again on the same config, address and data dir, after
    /// [`Daemon::stop`]; its log goes on in the same file.
    pub async fn restart(&mut self, client: &reqwest::Client) -> Result<()> {
        if !self.exited {
            bail!("restart needs the daemon stopped first");
        }
        self.child = spawn(
            &self.bin,
            &self.root,
            &self.listen,
            &self.log_path,
            self.open_files,
        )?;
        self.pid = self.child.id();
        self.exited = false;
        self.wait_healthy(client, Duration::from_secs(60)).await
    }

    /// The daemon's memory now, and its peak since it started.
    pub fn rss(&self) -> Option<Rss> {
        Rss::read(self.pid)
    }

    /// The log so far, for figures the daemon logs about itself.
    pub fn log_text(&self) -> String {
        self.log()
    }

    /// Polls /healthz; on timeout or early exit the daemon's log says why.
    async fn wait_healthy(&mut self, client: &reqwest::Client, timeout: Duration) -> Result<()> {
        let url = format!("{}/healthz", self.base_url);
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if let Ok(resp) = client.get(&url).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "tocsin did not answer {url} with 200 within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails, with the log, when the daemon has died under load.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.exited = true;
            bail!(
                "tocsin exited unexpectedly ({status}); its log:\n{}",
                self.log()
            );
        }
        Ok(())
    }

    /// SIGTERM through `kill(1)` (the crate forbids unsafe, so no libc), then waits up
    /// to 30 s for the graceful drain. A daemon that hangs is killed with SIGKILL and
    /// reported as such: the store must hold the answered alerts even then.
    pub async fn stop(&mut self) -> Result<Stopped> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed: {sent}", self.pid);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok(Stopped::Exited(status));
            }
            if Instant::now() >= deadline {
                self.child.kill().context("killing the hung daemon")?;
                self.child.wait()?;
                self.exited = true;
                return Ok(Stopped::Hung);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no goodbye (the machine died). [`Daemon::restart`] starts it
    /// again on the same config.
    pub fn kill_9(&mut self) -> Result<()> {
        self.child.kill().context("SIGKILL tocsin")?;
        self.child.wait()?;
        self.exited = true;
        Ok(())
    }

    /// The last lines of the daemon's log, to show why it misbehaved.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Keeps the temp dir on disk (store and log) for a look after a failed check.
    pub fn keep_dir(&mut self) -> PathBuf {
        match self.dir.take() {
            Some(dir) => dir.keep(),
            None => self.root.clone(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

/// How the daemon ended after SIGTERM.
pub enum Stopped {
    Exited(ExitStatus),
    /// Still running 30 s after SIGTERM; killed with SIGKILL.
    Hung,
}

impl Drop for Daemon {
    /// A bench that errors out must not leave a daemon running.
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `tocsin run` on the config and data dir under `root`, appending to `log_path`, with
/// at most `open_files` file descriptors when given.
fn spawn(
    bin: &Path,
    root: &Path,
    listen: &str,
    log_path: &Path,
    open_files: Option<u32>,
) -> Result<Child> {
    let log = File::options().create(true).append(true).open(log_path)?;
    let mut command = match open_files {
        None => Command::new(bin),
        Some(n) => {
            // `exec` keeps the pid: the one reported and signalled is tocsin's.
            let mut bash = Command::new("bash");
            bash.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(bin);
            bash
        }
    };
    command
        .arg("run")
        .arg("--config")
        .arg(root.join("alerts.toml"))
        .args(["--listen", listen])
        .arg("--data-dir")
        .arg(root.join("data"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// The daemon's memory from /proc: VmHWM is the peak since start, VmRSS the present.
#[derive(Clone, Copy)]
pub struct Rss {
    pub peak_kb: u64,
    pub now_kb: u64,
}

impl Rss {
    pub fn read(pid: u32) -> Option<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some(Rss {
            peak_kb: field("VmHWM:")?,
            now_kb: field("VmRSS:")?,
        })
    }
}

/// Asks the OS for a free port. The port is released before tocsin binds it; the race
/// is harmless on a bench machine and the health check would show it.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Where the daemon under test keeps its state.
pub enum Storage {
    /// SQLite in the temp dir's `data`.
    DataDir,
    /// A PostgreSQL database (`postgres://...`); the data dir then holds nothing.
    Postgres(String),
}

impl Storage {
    /// The body of the config's `[storage]` table.
    fn toml(&self, data_dir: &Path) -> String {
        match self {
            Storage::DataDir => format!("data_dir = {}", toml_string(data_dir)),
            Storage::Postgres(url) => format!("url = {}", toml_string(Path::new(url))),
        }
    }
}

/// Paging an hour out keeps notifiers idle: this measures ingest, not notification.
fn config_toml(listen: &str, storage: &str) -> String {
    format!(
        r#"[server]
listen = "{listen}"
max_body = "4MiB"

[storage]
{storage}

[notifiers.console]
type = "log"

[contacts.oncall]
methods = [{{ notifier = "console" }}]

[policies.bench]
steps = [{{ after = "1h", notify = ["console"] }}]

[[routes]]
policy = "bench"
"#
    )
}

/// `path` (or a url) as a TOML basic string for a bench's config: a JSON string is one,
/// so this escapes whatever the temp dir's name holds.
pub fn toml_string(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).expect("a string serializes")
}
