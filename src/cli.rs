//! Client commands that talk to a running daemon over its HTTP API.

pub mod maintenance;
pub mod migrate;
pub mod schedules;
pub mod silences;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::{self, Config, schema::DEFAULT_LISTEN};

/// Whether two URLs have one scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// Which daemon a client command talks to: the options every such command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Base URL of the daemon (default: http:// + the config's server.listen). The
    /// config's token goes only to its own addresses; set TOCSIN_TOKEN to send one
    /// elsewhere (or a scoped one).
    #[arg(long)]
    pub url: Option<String>,
    /// Config to take the address and API token from.
    #[arg(long, default_value = "alerts.toml")]
    pub config: PathBuf,
}

impl Target {
    pub fn client(&self) -> anyhow::Result<Client> {
        // The config is optional for clients: without it, the defaults apply.
        let cfg = config::load_file(&self.config).ok();
        let token = std::env::var("TOCSIN_TOKEN").ok();
        Client::new(self.url.clone(), cfg.as_ref(), token)
    }
}

/// Where the daemon is and how to authenticate to it.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `url` wins; else the config's listen address; else the default address.
    ///
    /// The token sent is `token` (the caller's `TOCSIN_TOKEN`) when given, to whatever
    /// URL: the person asked for it. Otherwise the config's master token, but only to
    /// the config's own addresses (`server.listen`, `public_url`): a `--url` pointing
    /// elsewhere, mistyped or planted in a script, must not collect a token that can
    /// do everything.
    pub fn new(
        url: Option<String>,
        config: Option<&Config>,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        let base = match (&url, config) {
            (Some(u), _) => u.clone(),
            (None, Some(c)) => format!("http://{}", c.file.server.listen),
            (None, None) => format!("http://{DEFAULT_LISTEN}"),
        };
        let token = token.filter(|t| !t.is_empty()).or_else(|| {
            let c = config?;
            let own = [
                format!("http://{}", c.file.server.listen),
                c.file.server.public_url.clone(),
            ];
            own.iter()
                .any(|o| same_origin(o, &base))
                .then(|| c.hook_auth.master_token().map(|s| s.expose().to_string()))
                .flatten()
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach tocsin at {}: is it running? (set --url or --config)",
                self.base
            )
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error message");
            bail!("tocsin answered {status}: {msg}");
        }
        Ok(body)
    }

    /// One page of `GET /api/v1/incidents`.
    pub async fn incidents(&self, page: &Page<'_>) -> anyhow::Result<Value> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = page.state {
            query.push(("state", s.to_string()));
        }
        if let Some(n) = page.limit {
            query.push(("limit", n.to_string()));
        }
        if let Some(b) = page.before {
            query.push(("before", b.to_string()));
        }
        let url = format!("{}/api/v1/incidents", self.base);
        self.call(self.http.get(url).query(&query)).await
    }

    pub async fn incident(&self, id: u64) -> anyhow::Result<Value> {
        self.call(
            self.http
                .get(format!("{}/api/v1/incidents/{id}", self.base)),
        )
        .await
    }

    /// `action` is ack, unack, resolve or snooze (which needs `duration`).
    pub async fn act(
        &self,
        id: u64,
        action: &str,
        by: &str,
        duration: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut body = json!({ "by": by });
        if let Some(d) = duration {
            body["for"] = json!(d);
        }
        self.call(
            self.http
                .post(format!("{}/api/v1/incidents/{id}/{action}", self.base))
                .json(&body),
        )
        .await
    }

    /// `GET /healthz`: whether the engine loop turns (the answer's JSON either way).
    pub async fn healthz(&self) -> anyhow::Result<(bool, Value)> {
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .with_context(|| format!("cannot reach tocsin at {}: is it running?", self.base))?;
        let ok = resp.status().is_success();
        Ok((ok, resp.json().await.unwrap_or(Value::Null)))
    }

    pub async fn status(&self) -> anyhow::Result<Value> {
        self.call(self.http.get(format!("{}/api/v1/status", self.base)))
            .await
    }

    /// The URL of `/api/v1/` and `segments`, each escaped as one path segment (a
    /// schedule's name is written by people).
    fn api(&self, segments: &[&str]) -> anyhow::Result<url::Url> {
        let mut url = url::Url::parse(&self.base).with_context(|| {
            format!(
                "{:?} is not a URL: set --url like http://host:9797",
                self.base
            )
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                anyhow::anyhow!(
                    "{:?} cannot hold a path: set --url like http://host:9797",
                    self.base
                )
            })?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        Ok(url)
    }

    /// `GET /api/v1/{segments}?{query}`.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = self.api(segments)?;
        self.call(self.http.get(url).query(query)).await
    }

    /// `POST /api/v1/{segments}` with a JSON body.
    pub async fn post(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        let url = self.api(segments)?;
        self.call(self.http.post(url).json(body)).await
    }

    /// `DELETE /api/v1/{segments}`.
    pub async fn delete(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let url = self.api(segments)?;
        self.call(self.http.delete(url)).await
    }
}

/// Which page of the incident list `tocsin incidents` asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    pub state: Option<&'a str>,
    pub limit: Option<usize>,
    pub before: Option<u64>,
}

/// Incidents as an aligned table, newest first; when the list goes on, a last line
/// with the command for the next page.
pub fn incidents_table(v: &Value, page: &Page<'_>) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "STATE".to_string(),
        "STEP".to_string(),
        "ACKED BY".to_string(),
        "CREATED".to_string(),
        "TITLE".to_string(),
    ]];
    for i in v["incidents"].as_array().into_iter().flatten() {
        rows.push([
            i["id"].to_string(),
            i["state"].as_str().unwrap_or("").to_string(),
            i["step"].to_string(),
            i["acked_by"].as_str().unwrap_or("-").to_string(),
            i["created_at"].as_str().unwrap_or("").to_string(),
            i["title"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if rows.len() == 1 {
        return "no incidents\n".to_string();
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    let mut out = aligned(&rows);
    if let Some(next) = v["next"].as_u64() {
        out.push_str("more: tocsin incidents");
        if let Some(s) = page.state {
            out.push_str(&format!(" --state {s}"));
        }
        if let Some(n) = page.limit {
            out.push_str(&format!(" --limit {n}"));
        }
        out.push_str(&format!(" --before {next}\n"));
    }
    out
}

/// Rows as a table: every column but the last padded to its widest cell.
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            match widths.get(c) {
                Some(&w) => out.push_str(&format!("{cell:<w$}  ")),
                None => out.push_str(cell),
            }
        }
        out.push('\n');
    }
    out
}

/// A few lines about the daemon, the tasks that are down, then one line per channel,
/// worst first.
pub fn status_text(v: &Value) -> String {
    let mut out = format!(
        "tocsin {} up {}s, engine {} (last tick {})\nincidents: {} triggered, {} acknowledged, {} resolved\n",
        v["version"].as_str().unwrap_or("?"),
        v["uptime_seconds"],
        if v["engine"]["healthy"].as_bool() == Some(true) {
            "healthy"
        } else {
            "STALLED"
        },
        v["engine"]["last_tick"].as_str().unwrap_or("?"),
        v["incidents"]["triggered"],
        v["incidents"]["acknowledged"],
        v["incidents"]["resolved"],
    );
    if let Some(t) = v["engine"]["store"].as_object() {
        out.push_str(&format!(
            "STORE CANNOT BE WRITTEN since {} ({} failed writes): {}\n  nothing is recorded or paged until it can; next try {}\n",
            t.get("since").and_then(Value::as_str).unwrap_or("?"),
            t.get("failures").and_then(Value::as_u64).unwrap_or(0),
            t.get("error").and_then(Value::as_str).unwrap_or("?"),
            t.get("retry_at").and_then(Value::as_str).unwrap_or("?"),
        ));
    }
    out.push_str(&cluster_text(&v["cluster"]));
    let tasks = v["tasks"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !tasks.is_empty() {
        out.push_str("tasks down:\n");
    }
    for t in tasks {
        let when = match t["restart_at"].as_str() {
            Some(at) => format!("next start {at}"),
            None => "given up: tocsin is exiting".to_string(),
        };
        out.push_str(&format!(
            "  {}{}  {}  restarts {}, {when}  {}\n",
            t["name"].as_str().unwrap_or("?"),
            if t["essential"].as_bool() == Some(true) {
                " [essential]"
            } else {
                ""
            },
            t["state"].as_str().unwrap_or("?").to_uppercase(),
            t["restarts"],
            t["last_failure"].as_str().unwrap_or(""),
        ));
    }
    let mut channels: Vec<&Value> = v["channels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let rank = |c: &Value| match c["state"].as_str() {
        Some("down") => 0,
        Some("degraded") => 1,
        _ => 2,
    };
    channels.sort_by_key(|c| rank(c));
    if !channels.is_empty() {
        out.push_str("channels:\n");
    }
    let width = channels
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(0);
    for c in channels {
        let state = c["state"].as_str().unwrap_or("?");
        let paging = if c["paging"].as_bool() == Some(true) {
            " [paging]"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {:<width$}  {:<8}  since {}  {}{paging}\n",
            c["name"].as_str().unwrap_or("?"),
            state.to_uppercase(),
            c["since"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or(""),
        ));
    }
    out
}

/// With a shared store: this instance's role, who leads at which epoch, and each
/// instance with how long ago it was seen.
fn cluster_text(c: &Value) -> String {
    if !c.is_object() {
        return String::new();
    }
    let lease = &c["lease"];
    let leader = match lease["error"].as_str() {
        Some(e) => format!("the lease cannot be read: {e}"),
        None if lease["expires_in_ms"].as_i64().unwrap_or(-1) <= 0 => format!(
            "NO LEADER: the lease of epoch {} expired; an instance takes over within {}s",
            lease["epoch"], c["lease_seconds"]
        ),
        None => format!(
            "leader {} at epoch {}",
            lease["holder"].as_str().unwrap_or("?"),
            lease["epoch"]
        ),
    };
    let mut out = format!(
        "instance {}: {}{}; {leader}
",
        c["instance"].as_str().unwrap_or("?"),
        c["role"].as_str().unwrap_or("?").to_uppercase(),
        if c["role"] == "leader" && c["sending"] == false {
            " (NOT SENDING: its lease is not renewed)"
        } else {
            ""
        },
    );
    for i in c["instances"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push_str(&format!(
            "  {}  {}  {}  seen {}\n",
            i["name"].as_str().unwrap_or("?"),
            i["addr"].as_str().unwrap_or("?"),
            if i["epoch"].as_u64().unwrap_or(0) == 0 {
                "follower".to_string()
            } else {
                format!("leader at epoch {}", i["epoch"])
            },
            i["seen_at"].as_str().unwrap_or("?"),
        ));
    }
    out
}

/// Whether `tocsin status` should exit non-zero: the engine stalled, its store not
/// taking writes, an essential task down, a channel down, or (on a shared store) no
/// instance leading.
pub fn status_unhealthy(v: &Value) -> bool {
    v["engine"]["healthy"].as_bool() != Some(true)
        || v["engine"]["store"].is_object()
        || v["tasks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["essential"] == true))
        || v["channels"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["state"] == "down"))
        || (v["cluster"].is_object()
            && v["cluster"]["lease"]["expires_in_ms"]
                .as_i64()
                .unwrap_or(-1)
                <= 0)
}
