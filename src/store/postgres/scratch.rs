//! A throwaway PostgreSQL 15 cluster for tests and benches: a temp dir, a free
//! 127.0.0.1 port, Debian's server binaries run as the `postgres` user (initdb refuses
//! root), trust authentication for the `tocsin` user. Durable like production
//! (`fsync`, `synchronous_commit` on), so benches measure real commits.
//!
//! ```no_run
//! # async fn f() {
//! use tocsin::store::postgres::scratch::ScratchServer;
//! let server = ScratchServer::shared();      // one per test process
//! let url = server.fresh_url().await;        // an empty database of its own
//! # }
//! ```
//!
//! A helper process stops the server and removes its directory once the process that
//! started it is gone, so a test that panics (or a shared server, never dropped) leaves
//! nothing running.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// Where Debian's `postgresql-15` package puts the server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

static SHARED: OnceLock<ScratchServer> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL cluster of its own; stopped and removed on drop.
#[derive(Debug)]
pub struct ScratchServer {
    dir: PathBuf,
    port: u16,
    running: Mutex<bool>,
    /// Serves TLS with `server.crt` and `server.key` in its data dir.
    tls: Mutex<bool>,
    /// The processes [`ScratchServer::pause`] stopped.
    paused: Mutex<Vec<u32>>,
}

impl ScratchServer {
    /// The server shared by every test of this process (started on first use).
    pub fn shared() -> &'static ScratchServer {
        SHARED.get_or_init(ScratchServer::new)
    }

    /// Makes a cluster in a new temp dir, starts it and creates the database `tocsin`.
    /// Panics when PostgreSQL 15 is not installed or does not start.
    pub fn new() -> ScratchServer {
        let bin = Path::new(PG_BIN);
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL 15 is not installed ({PG_BIN}/initdb is missing): install Debian's \
             postgresql package (scripts/test.sh does: apt-get install -y postgresql)"
        );
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tocsin-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("create the scratch dir");
        std::fs::create_dir_all(dir.join("sock")).expect("create the scratch socket dir");
        // postgres must reach its data through the temp dir (mktemp-like dirs are 0700).
        set_mode(&dir, 0o755);
        if as_root() {
            run(
                Command::new("chown").arg("-R").arg("postgres").arg(&dir),
                "chown the scratch dir to postgres",
            );
        }
        let data = dir.join("data");
        // A copy of a cluster made once per machine: initdb costs seconds on a busy
        // machine, and every test process would pay it.
        let _ = std::fs::remove_dir(&data);
        run(
            Command::new("cp").arg("-a").arg(template()).arg(&data),
            "copy the template cluster",
        );
        reap_when_gone(&dir);
        let server = ScratchServer {
            port: free_port(),
            dir,
            running: Mutex::new(false),
            tls: Mutex::new(false),
            paused: Mutex::new(Vec::new()),
        };
        server.start();
        run(
            pg(bin.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &server.port.to_string(),
                    "-U",
                    "tocsin",
                ])
                .arg("tocsin"),
            "createdb tocsin",
        );
        server
    }

    /// `postgres://tocsin@127.0.0.1:PORT/tocsin`.
    pub fn url(&self) -> String {
        self.url_of("tocsin")
    }

    /// The url of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://tocsin@127.0.0.1:{}/{name}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database (`t_<n>`) on this server: tests sharing the server do not
    /// see each other's rows.
    pub async fn fresh_url(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("t_{}_{n}", std::process::id());
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the scratch server");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a scratch database");
        drop(client);
        let _ = driver.await;
        self.url_of(&name)
    }

    /// A config for a new, empty database (see [`ScratchServer::fresh_url`]).
    pub async fn fresh_config(&self) -> super::PgConfig {
        super::PgConfig::parse(&self.fresh_url().await, None).expect("scratch url")
    }

    /// Starts the server (again, on the same data dir after
    /// [`ScratchServer::stop_immediate`]); waits until it accepts connections.
    pub fn start(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            return;
        }
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
             -c max_connections=300",
            self.port,
            self.dir.join("sock").display()
        );
        if *self.tls.lock().unwrap_or_else(|e| e.into_inner()) {
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        run(
            pg(Path::new(PG_BIN).join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-w", "-o", &options, "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        );
        *running = true;
    }

    /// Stops the server as a crash or a pulled cable would look to clients: at once,
    /// connections cut, no shutdown checkpoint.
    pub fn stop_immediate(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if !*running {
            return;
        }
        run(
            pg(Path::new(PG_BIN).join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null()),
            "pg_ctl stop",
        );
        *running = false;
    }

    /// Restarts the server serving TLS with `cert` (PEM, the chain) and `key` (PEM).
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let data = self.dir.join("data");
        std::fs::copy(cert, data.join("server.crt")).expect("copy the certificate");
        std::fs::copy(key, data.join("server.key")).expect("copy the key");
        set_mode(&data.join("server.key"), 0o600);
        if as_root() {
            for f in ["server.crt", "server.key"] {
                run(
                    Command::new("chown").arg("postgres").arg(data.join(f)),
                    "chown the TLS files to postgres",
                );
            }
        }
        self.stop_immediate();
        *self.tls.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.start();
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend): connections
    /// stay open and the kernel still acknowledges packets, but nothing answers, as with
    /// a host that hangs.
    pub fn pause(&self) {
        let data = self.dir.join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(&data).expect("the server is running");
        let postmaster: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("postmaster.pid starts with the pid");
        let mut pids = children_of(postmaster);
        pids.push(postmaster);
        signal("-STOP", &pids);
        *self.paused.lock().unwrap_or_else(|e| e.into_inner()) = pids;
    }

    /// Lets a paused server run on.
    pub fn resume(&self) {
        let pids = std::mem::take(&mut *self.paused.lock().unwrap_or_else(|e| e.into_inner()));
        signal("-CONT", &pids);
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Default for ScratchServer {
    fn default() -> Self {
        ScratchServer::new()
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        self.resume();
        self.stop_immediate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An empty cluster (`initdb -A trust -U tocsin`) that scratch servers start from as
/// copies; made by the first process that needs it and kept in the temp dir. It is made
/// aside and renamed into place, so a process never copies a half-made one.
fn template() -> PathBuf {
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
    };
    let root = std::env::temp_dir();
    let done = root.join(format!("tocsin-pg15-template-{uid}"));
    if done.join("PG_VERSION").exists() {
        return done;
    }
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    let aside = root.join(format!("tocsin-pg15-making-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::create_dir_all(&aside).expect("create the template dir");
    set_mode(&aside, 0o700);
    if as_root() {
        run(
            Command::new("chown").arg("postgres").arg(&aside),
            "chown the template dir to postgres",
        );
    }
    run(
        pg(Path::new(PG_BIN).join("initdb"))
            .arg("-D")
            .arg(&aside)
            .args(["-A", "trust", "-U", "tocsin", "--no-sync"])
            .stdout(Stdio::null()),
        "initdb",
    );
    // Another process may have won the race: its template is as good as this one.
    if std::fs::rename(&aside, &done).is_err() {
        let _ = std::fs::remove_dir_all(&aside);
    }
    assert!(
        done.join("PG_VERSION").exists(),
        "the template cluster {} was not made",
        done.display()
    );
    done
}

/// A command for a PostgreSQL binary, as the `postgres` user when we are root.
fn pg(binary: PathBuf) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(binary);
        c
    } else {
        Command::new(binary)
    }
}

fn as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The processes whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

fn signal(which: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(which)
        .args(pids.iter().map(u32::to_string))
        .status();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a shell that waits for this process to end, then stops the server in `dir`
/// and removes the dir.
fn reap_when_gone(dir: &Path) {
    let data = dir.join("data");
    let stop = if as_root() {
        format!(
            "runuser -u postgres -- {PG_BIN}/pg_ctl -D '{}' -m immediate stop",
            data.display()
        )
    } else {
        format!("{PG_BIN}/pg_ctl -D '{}' -m immediate stop", data.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
