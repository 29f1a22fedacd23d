//! The one HTTP listener: Alertmanager webhook, heartbeat URLs, incident API, the web
//! view, ack links, config reload, metrics and health.

mod ack_page;
mod api;
mod auth;
mod chunked;
mod cross_site;
mod hooks;
pub mod kannel_inbound;
pub mod listener;
mod maintenance;
pub(crate) mod schedules;
mod silences;
mod sms;
mod throttle;
pub mod twilio_inbound;
pub mod twilio_signature;
mod twilio_voice;
mod web;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::ack_link::AckKey;
use crate::config::{Config, HookAuth};
use crate::metrics::Metrics;
use crate::runtime::{EngineHandle, Health, Supervisor};
use crate::source::sms_reply::Numbers;
use crate::store::Store;
use crate::time::Clock;
use crate::watchdog::Watchdog;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) engine: EngineHandle,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Arc<Health>,
    pub(crate) clock: Arc<dyn Clock>,
    /// tocsin's own names and origin: requests other sites' pages send are refused.
    pub(crate) site: Arc<cross_site::Site>,
    /// Body cap in bytes; bigger requests get 413 without being read.
    pub(crate) max_body: usize,
    /// Name of the Alertmanager heartbeat alert, which never opens incidents.
    pub(crate) heartbeat: Option<Arc<str>>,
    pub(crate) started: Instant,
    /// Verifies `/ack/{token}` links.
    pub(crate) ack_key: AckKey,
    /// What a config reload replaces for the handlers.
    pub(crate) live: Arc<std::sync::RwLock<Arc<Live>>>,
    /// `POST /-/reload` asks it to re-read alerts.toml.
    pub(crate) reloader: Option<crate::runtime::ReloadHandle>,
    /// Channel health: heartbeats are reported to it, `/api/v1/channels` shows it.
    pub(crate) watchdog: Arc<Watchdog>,
    /// The daemon's tasks: `/healthz` fails while an essential one is down.
    pub(crate) tasks: Supervisor,
    /// Voice calls in progress, whose callbacks `/hooks/voice/*` answers.
    pub(crate) calls: Arc<crate::notify::voice_calls::CallBook>,
    /// Addresses that failed authentication lately; kept across reloads.
    pub(crate) throttle: Arc<std::sync::Mutex<throttle::Throttle>>,
    /// Whether acks reach Alertmanager as silences (`silence_on_ack`); the channel board
    /// shows it.
    pub(crate) silence_health: Arc<crate::runtime::SilenceHealth>,
    /// With a shared store: this instance, the lease and the others, for status.
    pub(crate) cluster: Option<crate::runtime::Cluster>,
}

/// The parts of the config handlers read that a reload may change.
pub(crate) struct Live {
    /// The config the daemon runs with (inbound SMS endpoints read their notifier's secrets).
    pub(crate) config: Arc<Config>,
    /// Who may act by SMS reply, by phone number.
    pub(crate) sms_numbers: Arc<Numbers>,
    /// The credentials every route but `/healthz` checks, with their scopes, as read from
    /// their files at the last (re)load: a rotated token works from the reload on, the
    /// old one no more.
    pub(crate) auth: Arc<HookAuth>,
}

impl Live {
    pub(crate) fn new(cfg: &Config) -> Self {
        Live {
            config: Arc::new(cfg.clone()),
            sms_numbers: Arc::new(Numbers::from_config(cfg)),
            auth: Arc::new(cfg.hook_auth.clone()),
        }
    }
}

impl AppState {
    /// The config as of the last (re)load.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().expect("live config lock").clone()
    }

    /// The credentials in force.
    pub(crate) fn auth(&self) -> Arc<HookAuth> {
        self.live().auth.clone()
    }

    /// The failed-authentication table.
    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        // A panic while holding it leaves a table that is still consistent enough.
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs a reloaded config for the handlers.
    pub(crate) fn reload(&self, cfg: &Config) {
        *self.live.write().expect("live config lock") = Arc::new(Live::new(cfg));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &Config,
        engine: EngineHandle,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        clock: Arc<dyn Clock>,
        ack_key: AckKey,
        watchdog: Arc<Watchdog>,
        tasks: Supervisor,
    ) -> Self {
        AppState {
            engine,
            store,
            metrics,
            health,
            clock,
            site: Arc::new(cross_site::Site::new(&cfg.file.server.public_url)),
            max_body: cfg.file.server.max_body.0 as usize,
            heartbeat: cfg
                .file
                .sources
                .alertmanager
                .as_ref()
                .and_then(|a| a.heartbeat.as_ref())
                .map(|h| Arc::from(h.alertname.as_str())),
            started: Instant::now(),
            ack_key,
            live: Arc::new(std::sync::RwLock::new(Arc::new(Live::new(cfg)))),
            reloader: None,
            watchdog,
            tasks,
            calls: Arc::default(),
            throttle: Arc::default(),
            silence_health: Arc::default(),
            cluster: None,
        }
    }
}

pub fn router(state: AppState) -> Router {
    let locked = axum::middleware::from_fn_with_state(state.clone(), auth::reads);
    let reads = Router::new()
        .route("/api/v1/incidents", get(api::list))
        .route("/api/v1/incidents/{id}", get(api::show))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/channels", get(api::channels))
        .route("/api/v1/silences", get(silences::list))
        .route("/api/v1/maintenance", get(maintenance::list))
        .route("/api/v1/schedules", get(schedules::list))
        .route("/api/v1/schedules/{name}/oncall", get(schedules::oncall))
        .route("/api/v1/schedules/{name}/shifts", get(schedules::shifts))
        .route("/api/v1/schedules/{name}/check", get(schedules::check))
        .route(
            "/api/v1/schedules/{name}/overrides",
            get(schedules::overrides),
        )
        .route("/schedules/{file}", get(schedules::feed::schedule))
        .route("/schedules/{name}/{file}", get(schedules::feed::contact));
    let metrics = Router::new().route("/metrics", get(api::metrics));
    let metrics_public = state.live().config.file.server.metrics_public;
    Router::new()
        .route("/hooks/alertmanager", post(hooks::alertmanager))
        .route(
            "/hooks/heartbeat/{name}",
            get(hooks::heartbeat).post(hooks::heartbeat),
        )
        .route(
            "/hooks/sms/kannel",
            get(kannel_inbound::receive).post(kannel_inbound::receive),
        )
        .route(
            "/hooks/sms/twilio/{notifier}",
            post(twilio_inbound::receive),
        )
        .route(
            "/hooks/voice/twilio/{notifier}/test",
            post(twilio_voice::test_call),
        )
        .route(
            "/hooks/voice/twilio/{notifier}/{token}",
            post(twilio_voice::answered),
        )
        .route(
            "/hooks/voice/twilio/{notifier}/{token}/gather",
            post(twilio_voice::gathered),
        )
        .route(
            "/hooks/voice/twilio/{notifier}/{token}/status",
            post(twilio_voice::status),
        )
        .route("/ack/{token}", get(ack_page::show).post(ack_page::ack))
        .route("/", get(web::index))
        .route("/incidents/{id}", get(web::incident))
        .route("/incidents/{id}/{action}", post(web::act))
        .route("/schedules", get(web::schedules::page))
        .route("/schedules/{name}/overrides", post(web::schedules::create))
        .route(
            "/schedules/{name}/overrides/{id}/delete",
            post(web::schedules::delete),
        )
        .route(
            "/silences",
            get(web::silences::page).post(web::silences::create),
        )
        .route("/silences/{id}/expire", post(web::silences::expire))
        .route(
            "/maintenance",
            get(web::maintenance::page).post(web::maintenance::start),
        )
        .route("/maintenance/{id}/end", post(web::maintenance::end))
        .route("/maintenance/{id}/extend", post(web::maintenance::extend))
        .route("/login", get(web::login_form).post(web::login))
        .route("/logout", post(web::logout))
        .route("/api/v1/incidents/{id}/{action}", post(api::act))
        .route(
            "/api/v1/schedules/{name}/overrides",
            post(schedules::create),
        )
        .route("/api/v1/silences", post(silences::create))
        .route("/api/v1/maintenance", post(maintenance::start))
        .route(
            "/api/v1/maintenance/{id}",
            axum::routing::delete(maintenance::end),
        )
        .route("/api/v1/maintenance/{id}/extend", post(maintenance::extend))
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(silences::expire),
        )
        .route(
            "/api/v1/schedules/{name}/overrides/{id}",
            axum::routing::delete(schedules::delete),
        )
        .route("/-/reload", post(api::reload))
        .route("/healthz", get(api::healthz))
        .merge(reads.route_layer(locked.clone()))
        .merge(if metrics_public {
            metrics
        } else {
            metrics.route_layer(locked)
        })
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; see the README for the API",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// A JSON error body: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// The HTTP status of an input the engine refused or could not record: the one mapping
/// every HTTP path uses.
pub(crate) fn status_of(e: &crate::runtime::SubmitError) -> StatusCode {
    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON error body for an input the engine refused or could not record. A refusal
/// because the incident is acked already names who acked it and when, as data.
pub(crate) fn refused(e: &crate::runtime::SubmitError) -> Response {
    use crate::engine::Refusal;
    use crate::runtime::SubmitError;
    let mut body = json!({ "error": e.to_string() });
    if let SubmitError::Refused(Refusal::AlreadyAcked { by, at, .. }) = e {
        body["acked_by"] = json!(by);
        body["acked_at"] = json!(at.to_rfc3339());
    }
    (status_of(e), Json(body)).into_response()
}
