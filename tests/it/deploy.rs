//! `deploy/`: the systemd unit, the container image, the compose demo stack and the
//! Prometheus rules for tocsin's own health.
//!
//! Containers cannot run here (no Docker daemon, no registry), so the stack is checked by
//! everything short of starting it: each service's files are laid out as its container
//! sees them (bind mounts and secrets copied into a temp root) and fed to the checker of
//! the program that reads them (`tocsin check-config`, `promtool check config`, `amtool
//! check-config`); the services' addresses, ports and passwords must agree with each
//! other; and the image's healthcheck command is run against a live tocsin. The unit is
//! checked by `systemd-analyze verify` and `security --offline`, the rules by `promtool
//! check rules`, their unit tests and the names on a live `/metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tocsin::config::Config;
use tocsin::config::notifier::{EmailConfig, NotifierConfig};

use crate::alerts::{alert, payload};
use crate::harness::{TOCSIN, eventually, free_port, spawn_app};

/// The highest `systemd-analyze security` exposure accepted for deploy/tocsin.service.
/// Measured 1.1 with systemd 252 (Debian 12); 0 is a service that can do nothing, 10 one
/// with no sandbox at all.
const MAX_EXPOSURE: f64 = 1.5;

/// Where the unit expects the binary; the tests point it at the built one.
const INSTALLED_BINARY: &str = "/usr/local/bin/tocsin";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs a checker that must be installed; says how to install it when it is not.
fn run(program: &str, package: &str, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install it with `apt-get install {package}`")
    })
}

/// `tocsin check-config FILE` of the built binary.
fn check_config(file: &Path) -> Output {
    Command::new(TOCSIN)
        .arg("check-config")
        .arg(file)
        .output()
        .expect("run tocsin check-config")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

// --- systemd -------------------------------------------------------------------------

/// The unit with every path to the binary pointed at the built one, in a temp dir, so
/// `systemd-analyze` finds the executables it checks.
fn unit_with_built_binary(unit: &str, dir: &TempDir) -> PathBuf {
    assert!(
        unit.contains(INSTALLED_BINARY),
        "deploy/tocsin.service no longer runs {INSTALLED_BINARY}: update this test"
    );
    let path = dir.path().join("tocsin.service");
    std::fs::write(&path, unit.replace(INSTALLED_BINARY, TOCSIN)).unwrap();
    path
}

/// What `systemd-analyze verify` has to say about a unit: nothing, or its complaints.
/// It exits 0 on unknown keys and unparsable values and only prints them, so both the
/// exit status and stderr count.
fn verify_problems(unit: &Path) -> Option<String> {
    let out = run(
        "systemd-analyze",
        "systemd",
        &["verify", "--man=no", unit.to_str().unwrap()],
        None,
    );
    let stderr = text(&out.stderr);
    if out.status.success() && stderr.trim().is_empty() {
        None
    } else {
        Some(format!("exit status {}:\n{stderr}", out.status))
    }
}

/// `key=value` lines of the unit's `[Service]` section, in order.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = read(&deploy().join("tocsin.service"));
    let dir = tempfile::tempdir().unwrap();
    let path = unit_with_built_binary(&unit, &dir);
    if let Some(problems) = verify_problems(&path) {
        panic!("systemd-analyze verify deploy/tocsin.service: {problems}");
    }

    // The check is not blind: the same unit with a typo and a bad value is refused.
    let broken = dir.path().join("broken.service");
    let mut bad = read(&path).replace("ProtectSystem=strict", "ProtectSystem=bogus");
    bad = bad.replace("[Service]\n", "[Service]\nProtectSistem=strict\n");
    std::fs::write(&broken, bad).unwrap();
    let problems = verify_problems(&broken).expect("a broken unit must be reported");
    assert!(
        problems.contains("ProtectSistem") && problems.contains("bogus"),
        "{problems}"
    );

    // What the unit promises, setting by setting.
    let settings = service_settings(&unit);
    let has = |k: &str, v: &str| settings.iter().any(|(sk, sv)| sk == k && sv == v);
    for (k, v) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30s"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "always"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "tocsin"),
        ("ReadOnlyPaths", "/etc/tocsin"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallFilter", "~@privileged @resources"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("UMask", "0077"),
        ("LimitNOFILE", "65536"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert!(has(k, v), "deploy/tocsin.service lacks {k}={v}");
    }
    // The reload checks the file first, so `systemctl reload` fails on a bad edit.
    let reloads: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| k == "ExecReload")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        reloads,
        [
            "/usr/local/bin/tocsin check-config /etc/tocsin/alerts.toml",
            "/bin/kill -HUP $MAINPID"
        ]
    );
}

/// `systemd 252 (252.38-1~deb12u1)` → 252.
fn systemd_version() -> u32 {
    let out = run("systemd-analyze", "systemd", &["--version"], None);
    let first = text(&out.stdout);
    first
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the version of systemd-analyze from {first:?}"))
}

#[test]
fn systemd_unit_exposure_score_is_low() {
    let version = systemd_version();
    if version < 250 {
        // `security --offline` (reading a unit file rather than asking PID 1) came in 250.
        eprintln!("systemd {version} has no `security --offline`: exposure not measured");
        return;
    }
    let unit = read(&deploy().join("tocsin.service"));
    let dir = tempfile::tempdir().unwrap();
    let path = unit_with_built_binary(&unit, &dir);
    let out = run(
        "systemd-analyze",
        "systemd",
        &["security", "--offline=true", path.to_str().unwrap()],
        None,
    );
    assert_success("systemd-analyze security --offline=true", &out);
    let report = text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level for tocsin.service"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    eprintln!("EXPOSURE deploy/tocsin.service: {score} (systemd {version}; bound {MAX_EXPOSURE})");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is over {MAX_EXPOSURE}; what is left:\n{}",
        report
            .lines()
            .filter(|l| l.starts_with('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// --- Dockerfile ----------------------------------------------------------------------

/// One Dockerfile instruction: `FROM`, `RUN`..., with its continuation lines joined.
#[derive(Debug)]
struct Instruction {
    op: String,
    args: String,
}

fn dockerfile() -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read(&deploy().join("Dockerfile")).lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (op, args) = current.split_once(' ').unwrap_or((current.as_str(), ""));
                out.push(Instruction {
                    op: op.to_uppercase(),
                    args: args.trim().to_string(),
                });
                current.clear();
            }
        }
    }
    out
}

/// The stages, each from its `FROM` up to the next.
fn stages(all: &[Instruction]) -> Vec<&[Instruction]> {
    let starts: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| i.op == "FROM")
        .map(|(n, _)| n)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &all[s..starts.get(k + 1).copied().unwrap_or(all.len())])
        .collect()
}

/// An exec-form (JSON array) argument, such as `ENTRYPOINT ["tocsin"]`.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args} is not a JSON array: {e}"))
}

/// The argv of the image's `HEALTHCHECK ... CMD [...]`.
fn healthcheck_command(all: &[Instruction]) -> Vec<String> {
    let hc = all
        .iter()
        .find(|i| i.op == "HEALTHCHECK")
        .expect("the image has a HEALTHCHECK");
    let (_, cmd) = hc
        .args
        .split_once("CMD ")
        .unwrap_or_else(|| panic!("HEALTHCHECK without CMD: {}", hc.args));
    exec_form(cmd.trim())
}

/// Top-level names `.dockerignore` keeps out of the build context (`target/` → `target`).
fn docker_ignored() -> BTreeSet<String> {
    read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_volume_and_healthcheck() {
    let all = dockerfile();
    let stages = stages(&all);
    assert!(stages.len() >= 2, "not a multi-stage build: {all:#?}");
    let (build, runtime) = (stages[0], stages[stages.len() - 1]);
    let build_from = &build[0].args;
    assert!(
        build_from.starts_with("rust:") && build_from.contains("bookworm"),
        "build stage: {build_from}"
    );
    let build_name = build_from
        .split_once(" AS ")
        .map(|(_, n)| n.trim().to_string())
        .expect("the build stage is named (FROM ... AS build)");
    assert!(
        build
            .iter()
            .any(|i| i.op == "RUN" && i.args.contains("cargo build --release --locked")),
        "the build stage runs cargo build --release --locked"
    );
    assert_eq!(runtime[0].args, "debian:bookworm-slim");
    let op = |op: &'static str| runtime.iter().filter(move |i| i.op == op);
    assert!(
        op("RUN").any(|i| i.args.contains("ca-certificates")),
        "the runtime has CA certificates"
    );

    // Not root: a numeric uid:gid (so `runAsNonRoot` can check it), created in the image.
    let user = op("USER").next_back().expect("a USER").args.clone();
    let (uid, gid) = user.split_once(':').unwrap_or((&user, ""));
    let uid: u32 = uid.parse().expect("USER is numeric");
    assert!(uid != 0 && gid != "0" && gid != "root", "USER {user}");
    assert!(
        op("RUN").any(|i| i.args.contains(&format!("--uid {uid}"))),
        "the user {uid} is created"
    );

    assert_eq!(
        op("VOLUME").map(|i| i.args.as_str()).collect::<Vec<_>>(),
        ["/var/lib/tocsin"]
    );
    assert_eq!(
        op("EXPOSE").map(|i| i.args.as_str()).collect::<Vec<_>>(),
        ["9797"]
    );
    let entrypoint = exec_form(&op("ENTRYPOINT").next_back().expect("ENTRYPOINT").args);
    assert_eq!(entrypoint, ["tocsin"]);
    let cmd = exec_form(&op("CMD").next_back().expect("CMD").args);
    assert_eq!(
        cmd,
        [
            "run",
            "--config",
            "/etc/tocsin/alerts.toml",
            "--listen",
            "0.0.0.0:9797",
            "--data-dir",
            "/var/lib/tocsin"
        ]
    );
    // The engine's health on the port CMD listens on, not `status` (which fails on any
    // down channel); container_healthcheck_passes_... runs it.
    let hc = healthcheck_command(&all);
    assert_eq!(
        hc,
        ["tocsin", "health", "--url", "http://127.0.0.1:9797"],
        "HEALTHCHECK CMD"
    );

    // Every COPY source exists and is in the build context; `--from` names a stage.
    let ignored = docker_ignored();
    let mut image_files = Vec::new();
    for copy in all.iter().filter(|i| i.op == "COPY") {
        let words: Vec<&str> = copy.args.split_whitespace().collect();
        let (dest, sources) = words.split_last().unwrap();
        if let Some(from) = sources.iter().find_map(|w| w.strip_prefix("--from=")) {
            assert_eq!(from, build_name, "COPY {}", copy.args);
            continue;
        }
        for src in sources.iter().filter(|w| !w.starts_with("--")) {
            assert!(
                repo().join(src).exists(),
                "COPY {src}: not in the repository"
            );
            let top = src.split('/').next().unwrap();
            assert!(
                !ignored.contains(top),
                "COPY {src}: .dockerignore keeps it out of the build context"
            );
            image_files.push((src.to_string(), dest.to_string()));
        }
    }
    for kept_out in ["target", ".git"] {
        assert!(
            ignored.contains(kept_out),
            ".dockerignore lists {kept_out}/"
        );
    }
    // The image starts as it is: CMD's config is in it and passes check-config.
    let (src, _) = image_files
        .iter()
        .find(|(_, dest)| dest == "/etc/tocsin/alerts.toml")
        .expect("the image carries /etc/tocsin/alerts.toml");
    let out = check_config(&repo().join(src));
    assert_success("tocsin check-config of the image's alerts.toml", &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_healthcheck_passes_on_a_live_tocsin_and_fails_without_one() {
    let hc = healthcheck_command(&dockerfile());
    let app = spawn_app(MINIMAL).await;
    let probe = |port: u16| {
        // The image's `tocsin` is the built binary here, and its port the test's.
        let argv: Vec<String> = hc
            .iter()
            .map(|a| match a.as_str() {
                "tocsin" => TOCSIN.to_string(),
                _ => a.replace("9797", &port.to_string()),
            })
            .collect();
        async move {
            tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .await
                .expect("run the healthcheck")
        }
    };
    let out = probe(app.addr.port()).await;
    assert_success("the healthcheck against a live tocsin", &out);
    let out = probe(free_port()).await;
    assert!(
        !out.status.success(),
        "the healthcheck passed with nothing listening"
    );
}

// --- Prometheus rules ---------------------------------------------------------------

/// A YAML file as JSON values (every YAML file here has string keys).
fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// `(alert, expr)` of every alerting rule in a rules file.
fn alert_rules(path: &Path) -> Vec<(String, String)> {
    let doc = yaml(path);
    let groups = doc["groups"].as_array().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| {
            Some((
                r["alert"].as_str()?.to_string(),
                r["expr"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn tocsin_rules_pass_promtool_check_and_their_unit_tests() {
    let rules = deploy().join("tocsin-rules.yml");
    let out = run(
        "promtool",
        "prometheus",
        &["check", "rules", rules.to_str().unwrap()],
        None,
    );
    assert_success("promtool check rules deploy/tocsin-rules.yml", &out);
    let out = run(
        "promtool",
        "prometheus",
        &["test", "rules", "tocsin-rules.test.yml"],
        Some(&deploy()),
    );
    assert_success("promtool test rules deploy/tocsin-rules.test.yml", &out);

    // Every alert has a case that makes it fire.
    let cases = yaml(&deploy().join("tocsin-rules.test.yml"));
    let fired: BTreeSet<&str> = cases["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .filter_map(|c| c["alertname"].as_str())
        .collect();
    for (alert, _) in alert_rules(&rules) {
        assert!(
            fired.contains(alert.as_str()),
            "deploy/tocsin-rules.test.yml never shows {alert} firing"
        );
    }
}

/// A daemon with one contact paged on the console and the Alertmanager heartbeat.
const MINIMAL: &str = r#"
[notifiers.console]
type = "log"
[contacts.oncall]
methods = [{ notifier = "console", to = "oncall" }]
[policies.default]
steps = [{ after = "0s", notify = ["oncall"] }]
[[routes]]
policy = "default"
[sources.alertmanager]
heartbeat = { alertname = "Watchdog", within = "2m" }
"#;

/// The sample names on a `/metrics` page (`tocsin_x_total{...} 1` → `tocsin_x_total`).
fn sample_names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tocsin_rules_use_only_metrics_tocsin_exports() {
    let re = regex::Regex::new(r"\btocsin_[a-z0-9_]+").unwrap();
    let used: BTreeSet<String> = alert_rules(&deploy().join("tocsin-rules.yml"))
        .iter()
        .flat_map(|(_, expr)| re.find_iter(expr).map(|m| m.as_str().to_string()))
        .collect();
    assert!(
        used.len() >= 8,
        "too few tocsin metrics in the rules: {used:?}"
    );

    // Some series appear only once used: a page (notifications_total), a webhook
    // (webhook_requests_total) and a notification Alertmanager truncated.
    let app = spawn_app(MINIMAL).await;
    let mut truncated = payload("DiskFull", vec![alert("DiskFull", "db1")]);
    truncated["truncatedAlerts"] = 3.into();
    let r = app.post_alerts(&truncated).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let missing = eventually(
        "every tocsin metric the rules use on /metrics",
        Duration::from_secs(10),
        || async {
            let page = app.metrics().await;
            let have = sample_names(&page);
            let missing: Vec<&String> = used.iter().filter(|n| !have.contains(*n)).collect();
            if missing.is_empty() {
                Some(Ok(()))
            } else if have.contains("tocsin_notifications_total") {
                // The page went out, the last of the series to appear: the rest never will.
                Some(Err(format!("{missing:?} not on /metrics:\n{page}")))
            } else {
                None
            }
        },
    )
    .await;
    if let Err(e) = missing {
        panic!("deploy/tocsin-rules.yml uses metrics tocsin does not export: {e}");
    }
}

// --- compose ------------------------------------------------------------------------

/// deploy/compose.yaml, parsed, with what the checks need to know about it.
struct Compose {
    doc: Value,
}

/// A file (or directory) of the repository as a container sees it.
#[derive(Debug)]
struct Mount {
    host: PathBuf,
    container: String,
}

impl Compose {
    fn load() -> Compose {
        Compose {
            doc: yaml(&deploy().join("compose.yaml")),
        }
    }

    fn service(&self, name: &str) -> &Value {
        let s = &self.doc["services"][name];
        assert!(s.is_object(), "compose.yaml has no service {name}");
        s
    }

    fn services(&self) -> BTreeMap<String, Value> {
        serde_json::from_value(self.doc["services"].clone()).expect("services")
    }

    /// The service's argv after the image's entrypoint (`command`).
    fn command(&self, name: &str) -> Vec<String> {
        match &self.service(name)["command"] {
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            Value::Null => Vec::new(),
            other => panic!("{name}: write command as a list, not {other}"),
        }
    }

    /// The value of `--flag=value` or `--flag value` in the service's command.
    fn flag(&self, name: &str, flag: &str) -> Option<String> {
        let cmd = self.command(name);
        cmd.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&format!("{flag}="))
                .map(str::to_string)
                .or_else(|| (a == flag).then(|| cmd.get(i + 1).cloned()).flatten())
        })
    }

    /// Bind mounts and secrets of a service (named volumes are the container's own).
    fn mounts(&self, name: &str) -> Vec<Mount> {
        let service = self.service(name);
        let mut out = Vec::new();
        for v in service["volumes"].as_array().into_iter().flatten() {
            let spec = v
                .as_str()
                .unwrap_or_else(|| panic!("{name}: write volumes as SOURCE:TARGET[:ro]"));
            let parts: Vec<&str> = spec.split(':').collect();
            let (source, target) = (parts[0], parts[1]);
            if source.starts_with('.') || source.starts_with('/') {
                out.push(Mount {
                    host: deploy().join(source),
                    container: target.to_string(),
                });
            } else {
                assert!(
                    self.doc["volumes"]
                        .as_object()
                        .is_some_and(|v| v.contains_key(source)),
                    "{name}: volume {source} is not declared under the top-level volumes"
                );
            }
        }
        for s in service["secrets"].as_array().into_iter().flatten() {
            let (source, target) = match s {
                Value::String(n) => (n.as_str(), format!("/run/secrets/{n}")),
                _ => {
                    let source = s["source"].as_str().expect("secret source");
                    let target = match s["target"].as_str() {
                        Some(t) if t.starts_with('/') => t.to_string(),
                        Some(t) => format!("/run/secrets/{t}"),
                        None => format!("/run/secrets/{source}"),
                    };
                    (source, target)
                }
            };
            let file = self.doc["secrets"][source]["file"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: secret {source} has no top-level file"));
            out.push(Mount {
                host: deploy().join(file),
                container: target,
            });
        }
        out
    }

    /// The service's mounts copied into a temp dir laid out like its filesystem, so a
    /// checker reading `root + /etc/x/config.yml` sees what the container will.
    fn materialize(&self, name: &str) -> TempDir {
        let root = tempfile::tempdir().unwrap();
        for m in self.mounts(name) {
            let dest = in_root(&root, &m.container);
            copy_tree(&m.host, &dest);
        }
        root
    }
}

fn in_root(root: &TempDir, container_path: &str) -> PathBuf {
    root.path().join(container_path.trim_start_matches('/'))
}

fn copy_tree(from: &Path, to: &Path) {
    assert!(from.exists(), "{} does not exist", from.display());
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// `host:port` → (host, port).
fn host_port(s: &str) -> (String, u16) {
    let (h, p) = s
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{s:?} is not host:port"));
    (h.to_string(), p.parse().expect("a port"))
}

/// The container port tocsin listens on (its `--listen`).
fn tocsin_port(compose: &Compose) -> u16 {
    let listen = compose
        .flag("tocsin", "--listen")
        .expect("tocsin's command sets --listen");
    host_port(&listen).1
}

/// tocsin's config as the container reads it, loaded by tocsin itself.
fn tocsin_config(compose: &Compose) -> (TempDir, Config) {
    let root = compose.materialize("tocsin");
    let config = compose
        .flag("tocsin", "--config")
        .expect("tocsin's command sets --config");
    let cfg = tocsin::config::load_file(&in_root(&root, &config))
        .unwrap_or_else(|e| panic!("compose's tocsin config does not load:\n{e}"));
    (root, cfg)
}

#[test]
fn compose_stack_references_only_files_that_exist() {
    let compose = Compose::load();
    let services = compose.services();
    let image = |name: &str| compose.service(name)["image"].as_str().unwrap_or("");

    // The expected cast, on images that exist on Docker Hub.
    for name in [
        "tocsin",
        "prometheus",
        "alertmanager",
        "ircd",
        "znc",
        "mailpit",
    ] {
        assert!(services.contains_key(name), "no service {name}");
    }
    assert!(image("prometheus").starts_with("prom/prometheus:"));
    assert!(image("alertmanager").starts_with("prom/alertmanager:"));
    assert!(
        image("ircd").starts_with("inspircd/inspircd-docker:") || image("ircd").contains("ngircd")
    );
    assert!(image("znc").starts_with("znc:1.8"));
    assert!(
        image("mailpit").starts_with("axllent/mailpit:")
            || image("mailpit").starts_with("mailhog/mailhog")
    );
    for (name, s) in &services {
        if s["build"].is_null() {
            let image = s["image"].as_str().unwrap_or("");
            assert!(
                image.contains(':') && !image.ends_with(":latest"),
                "{name}: pin the image's version ({image:?})"
            );
        }
    }

    // tocsin is built from deploy/Dockerfile with the repository as its context.
    let build = &compose.service("tocsin")["build"];
    let context = deploy().join(build["context"].as_str().expect("build.context"));
    assert!(
        context.join("Cargo.toml").exists(),
        "build context {context:?}"
    );
    let dockerfile_path = context.join(build["dockerfile"].as_str().expect("build.dockerfile"));
    assert_eq!(
        dockerfile_path.canonicalize().unwrap(),
        deploy().join("Dockerfile").canonicalize().unwrap()
    );

    // Every bind mount and secret is a file of the repository.
    for name in services.keys() {
        for m in compose.mounts(name) {
            assert!(
                m.host.exists(),
                "{name}: {} (mounted at {}) does not exist",
                m.host.display(),
                m.container
            );
        }
    }

    // tocsin: published on the host's loopback, data in a volume, a healthcheck.
    let port = tocsin_port(&compose);
    let tocsin = compose.service("tocsin");
    let ports: Vec<&str> = tocsin["ports"]
        .as_array()
        .expect("tocsin publishes its port")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ports.contains(&format!("127.0.0.1:{port}:{port}").as_str()),
        "tocsin's port {port} published on 127.0.0.1: {ports:?}"
    );
    let data_dir = compose.flag("tocsin", "--data-dir").expect("--data-dir");
    assert!(
        tocsin["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(&format!(":{data_dir}"))),
        "tocsin's data dir {data_dir} is a volume"
    );
    let test: Vec<String> = serde_json::from_value(tocsin["healthcheck"]["test"].clone())
        .expect("tocsin has a healthcheck test");
    // The image's own check (compose writes `$` as `$$`).
    let test: Vec<String> = test.iter().map(|a| a.replace("$$", "$")).collect();
    assert_eq!(test[0], "CMD");
    assert_eq!(test[1..], healthcheck_command(&dockerfile()));

    // Mounts the services' own commands name.
    let mounted = |name: &str, path: &str| {
        compose
            .mounts(name)
            .iter()
            .any(|m| path == m.container || path.starts_with(&format!("{}/", m.container)))
    };
    for (service, path) in [
        ("tocsin", compose.flag("tocsin", "--config").unwrap()),
        (
            "prometheus",
            compose.flag("prometheus", "--config.file").unwrap(),
        ),
        (
            "alertmanager",
            compose.flag("alertmanager", "--config.file").unwrap(),
        ),
        ("ircd", compose.flag("ircd", "--config").unwrap()),
    ] {
        assert!(mounted(service, &path), "{service}: {path} is not mounted");
    }
    let znc_entry = compose.service("znc")["entrypoint"].to_string();
    assert!(
        compose
            .mounts("znc")
            .iter()
            .any(|m| znc_entry.contains(&m.container)),
        "znc's entrypoint copies a mounted znc.conf: {znc_entry}"
    );
}

#[test]
fn compose_configs_pass_tocsin_promtool_and_amtool_checks() {
    let compose = Compose::load();

    let root = compose.materialize("tocsin");
    let config = in_root(&root, &compose.flag("tocsin", "--config").unwrap());
    let out = check_config(&config);
    assert_success("tocsin check-config of compose's alerts.toml", &out);

    let root = compose.materialize("prometheus");
    let config = in_root(&root, &compose.flag("prometheus", "--config.file").unwrap());
    let out = run(
        "promtool",
        "prometheus",
        &["check", "config", config.to_str().unwrap()],
        None,
    );
    assert_success("promtool check config of compose's prometheus.yml", &out);
    // Both rule files are loaded, tocsin's own among them.
    let prom = yaml(&config);
    let rule_files: Vec<PathBuf> = prom["rule_files"]
        .as_array()
        .expect("rule_files")
        .iter()
        .map(|f| config.parent().unwrap().join(f.as_str().unwrap()))
        .collect();
    let shipped = read(&deploy().join("tocsin-rules.yml"));
    assert!(
        rule_files.iter().any(|f| read(f) == shipped),
        "prometheus.yml does not load deploy/tocsin-rules.yml: {rule_files:?}"
    );

    let root = compose.materialize("alertmanager");
    let config = in_root(
        &root,
        &compose.flag("alertmanager", "--config.file").unwrap(),
    );
    let out = run(
        "amtool",
        "prometheus-alertmanager",
        &["check-config", config.to_str().unwrap()],
        None,
    );
    assert_success("amtool check-config of compose's alertmanager.yml", &out);
}

/// A znc.conf read line by line: `(sections, key, value)` for each `key = value`, where
/// `sections` is the path of `<Section name>` blocks it sits in (`["User tocsin",
/// "Network demo"]`); an opening line is listed with an empty key.
fn znc_settings(conf: &str) -> Vec<(Vec<String>, String, String)> {
    let mut sections: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in conf.lines().map(str::trim) {
        if line.starts_with("//") || line.is_empty() {
            continue;
        }
        if line.starts_with("</") {
            sections.pop();
        } else if let Some(open) = line.strip_prefix('<') {
            sections.push(open.trim_end_matches('>').to_string());
            out.push((sections.clone(), String::new(), String::new()));
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((sections.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// Every `<Section name>` block of a znc.conf, as its path.
fn znc_sections(conf: &str) -> Vec<Vec<String>> {
    znc_settings(conf)
        .into_iter()
        .filter(|(_, k, _)| k.is_empty())
        .map(|(s, _, _)| s)
        .collect()
}

#[test]
fn compose_services_point_at_each_other() {
    let compose = Compose::load();
    let services = compose.services();
    let (tocsin_root, cfg) = tocsin_config(&compose);
    let port = tocsin_port(&compose);
    let is_service = |host: &str| services.contains_key(host);

    // Alertmanager → tocsin's webhook, with the token tocsin requires.
    let am_root = compose.materialize("alertmanager");
    let am_config = in_root(
        &am_root,
        &compose.flag("alertmanager", "--config.file").unwrap(),
    );
    let am = yaml(&am_config);
    assert!(
        !cfg.hook_auth.is_open(),
        "tocsin requires a token on /hooks in the stack"
    );
    let receivers = am["receivers"].as_array().expect("receivers");
    let hooks: Vec<&Value> = receivers
        .iter()
        .flat_map(|r| r["webhook_configs"].as_array().into_iter().flatten())
        .collect();
    assert!(!hooks.is_empty(), "no webhook receiver in alertmanager.yml");
    for hook in &hooks {
        let url = url::Url::parse(hook["url"].as_str().unwrap()).unwrap();
        assert_eq!(url.host_str(), Some("tocsin"), "{url}");
        assert_eq!(url.port(), Some(port), "{url}");
        assert_eq!(url.path(), "/hooks/alertmanager", "{url}");
        assert_eq!(hook["send_resolved"], true, "{url}: send_resolved");
        let credentials = hook["http_config"]["authorization"]["credentials_file"]
            .as_str()
            .unwrap_or_else(|| panic!("{url}: no credentials_file"));
        let sent = read(&in_root(&am_root, credentials));
        let accepted = cfg
            .hook_auth
            .by_token(sent.trim().as_bytes())
            .unwrap_or_else(|| panic!("{url}: Alertmanager's token is none of tocsin's"));
        assert!(
            accepted.scopes.contains(tocsin::config::Scope::Hooks),
            "{url}: Alertmanager's token ({}) may not post alerts",
            accepted.name
        );
        assert!(
            !accepted.scopes.contains(tocsin::config::Scope::Act),
            "{url}: Alertmanager's token ({}) could resolve incidents: give it its own, hooks only",
            accepted.name
        );
    }
    // The root route ends at tocsin.
    let tocsin_receivers: BTreeSet<&str> = receivers
        .iter()
        .filter(|r| r["webhook_configs"].is_array())
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(tocsin_receivers.contains(am["route"]["receiver"].as_str().unwrap()));

    // The heartbeat: Prometheus has the always-firing rule tocsin waits for, and
    // Alertmanager resends it well inside tocsin's `within`.
    let heartbeat = cfg
        .file
        .sources
        .alertmanager
        .as_ref()
        .and_then(|a| a.heartbeat.as_ref())
        .expect("[sources.alertmanager] heartbeat");
    let prom_root = compose.materialize("prometheus");
    let prom_config = in_root(
        &prom_root,
        &compose.flag("prometheus", "--config.file").unwrap(),
    );
    let prom = yaml(&prom_config);
    let rules: Vec<(String, String)> = prom["rule_files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| alert_rules(&prom_config.parent().unwrap().join(f.as_str().unwrap())))
        .collect();
    assert!(
        rules
            .iter()
            .any(|(a, e)| a == &heartbeat.alertname && e == "vector(1)"),
        "no always-firing {} rule in Prometheus: {rules:?}",
        heartbeat.alertname
    );
    let route = am["route"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            r["matchers"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m == &Value::from(format!("alertname=\"{}\"", heartbeat.alertname)))
            })
        })
        .expect("a route of its own for the heartbeat");
    let duration = |key: &str| {
        let v = route[key].as_str().or(am["route"][key].as_str()).unwrap();
        humantime::parse_duration(v).unwrap()
    };
    // Alertmanager looks at repeat_interval only on group_interval ticks.
    let worst_gap = duration("repeat_interval") + duration("group_interval");
    assert!(
        worst_gap < heartbeat.within.0,
        "the heartbeat may come {worst_gap:?} apart, but tocsin pages after {:?}",
        heartbeat.within.0
    );
    let receiver = route["receiver"].as_str().unwrap();
    assert!(
        tocsin_receivers.contains(receiver),
        "heartbeat goes to {receiver}"
    );

    // Prometheus → Alertmanager, and scrapes tocsin as job "tocsin" (the rules use it).
    let am_port = compose
        .flag("alertmanager", "--web.listen-address")
        .map_or(9093, |l| host_port(&l).1);
    let targets = |v: &Value| -> Vec<String> {
        v["static_configs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["targets"].as_array().cloned().unwrap_or_default())
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    let am_targets = targets(&prom["alerting"]["alertmanagers"][0]);
    assert_eq!(am_targets, [format!("alertmanager:{am_port}")]);
    let jobs = prom["scrape_configs"].as_array().expect("scrape_configs");
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == "tocsin")
        .expect("a scrape job named tocsin");
    assert_eq!(targets(job), [format!("tocsin:{port}")]);
    for (_, expr) in alert_rules(&deploy().join("tocsin-rules.yml")) {
        if let Some(j) = expr.split("job=\"").nth(1) {
            assert!(j.starts_with("tocsin\""), "{expr}: job is not tocsin");
        }
    }

    // Mail: tocsin's email notifier and Alertmanager's direct mail reach the catcher.
    let smtp_urls: Vec<url::Url> = cfg
        .file
        .notifiers
        .values()
        .filter_map(NotifierConfig::get::<EmailConfig>)
        .map(|e| url::Url::parse(&e.smtp_url).unwrap())
        .collect();
    assert!(!smtp_urls.is_empty(), "tocsin has no email notifier");
    for u in smtp_urls {
        assert_eq!(u.host_str(), Some("mailpit"), "{u}");
        assert_eq!(u.port(), Some(1025), "{u}");
    }
    for r in receivers {
        for e in r["email_configs"].as_array().into_iter().flatten() {
            assert_eq!(e["smarthost"], "mailpit:1025");
        }
    }

    // IRC: tocsin → ZNC's listener with the user/network/password ZNC has → ircd.
    let irc = cfg.file.sources.irc.as_ref().expect("[sources.irc]");
    let (znc_host, znc_port) = host_port(&irc.server);
    assert_eq!(znc_host, "znc");
    assert!(!irc.tls, "the demo's ZNC listener is plain");
    let login = read(
        &in_root(&tocsin_root, "/etc/tocsin")
            .join(irc.password_file.as_ref().expect("password_file")),
    );
    let (user_network, password) = login.trim().split_once(':').expect("user/network:password");
    let (user, network) = user_network.split_once('/').expect("user/network");
    // ZNC's entrypoint copies its config from the mount it names.
    let znc_root = compose.materialize("znc");
    let entrypoint = compose.service("znc")["entrypoint"].to_string();
    let znc_conf = compose
        .mounts("znc")
        .into_iter()
        .find(|m| entrypoint.contains(&format!("cp {} ", m.container)))
        .map(|m| read(&in_root(&znc_root, &m.container)))
        .expect("znc's entrypoint copies a mounted znc.conf");
    let znc = znc_settings(&znc_conf);
    let setting = |path: &[&str], key: &str| -> Vec<String> {
        znc.iter()
            .filter(|(s, k, _)| k == key && s.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, _, v)| v.clone())
            .collect()
    };
    let listener_ports: Vec<u16> = znc
        .iter()
        .filter(|(s, k, _)| k == "Port" && s.len() == 1 && s[0].starts_with("Listener"))
        .map(|(_, _, v)| v.parse().unwrap())
        .collect();
    assert!(
        listener_ports.contains(&znc_port),
        "ZNC listens on {listener_ports:?}"
    );
    let user_section = format!("User {user}");
    let network_section = format!("Network {network}");
    assert_eq!(
        setting(&[&user_section], "Pass"),
        [format!("plain#{password}")],
        "znc.conf's Pass for {user} is not the password in tocsin's password_file"
    );
    let upstream = setting(&[&user_section, &network_section], "Server");
    assert_eq!(
        upstream.len(),
        1,
        "ZNC network {network} of {user}: {upstream:?}"
    );
    let (ircd_host, ircd_port) = upstream[0].split_once(' ').expect("Server = host port");
    assert!(
        is_service(ircd_host),
        "ZNC connects to {ircd_host}, not a service"
    );
    let ircd_root = compose.materialize("ircd");
    let ircd_conf = read(&in_root(
        &ircd_root,
        &compose.flag("ircd", "--config").unwrap(),
    ));
    assert!(
        ircd_conf.contains(&format!("port=\"{ircd_port}\" type=\"clients\"")),
        "InspIRCd does not take clients on {ircd_port}"
    );
    let sections = znc_sections(&znc_conf);
    for channel in &irc.channels {
        let chan = vec![
            user_section.clone(),
            network_section.clone(),
            format!("Chan {channel}"),
        ];
        assert!(
            sections.contains(&chan),
            "ZNC does not keep tocsin in {channel}"
        );
    }
    // InspIRCd's files are where its config says.
    for path in ircd_conf
        .split("motd=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
    {
        assert!(
            in_root(&ircd_root, path).exists(),
            "InspIRCd's {path} is not mounted"
        );
    }

    // Ack links open from the host: public_url is tocsin's published port.
    let public = url::Url::parse(&cfg.file.server.public_url).unwrap();
    assert_eq!(public.host_str(), Some("localhost"));
    assert_eq!(public.port(), Some(port));
}
