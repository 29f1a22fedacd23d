//! Bearer-token and basic auth for `/hooks/*`, the API and `/metrics`.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::config::HookAuth;

/// Compares without an early exit, so response time does not reveal how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Ok` when the request carries an accepted credential (or none is configured);
/// otherwise the 401 to send.
pub(crate) fn check(auth: &HookAuth, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if auth.is_open() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let (Some(token), Some(rest)) = (&auth.bearer, given.strip_prefix("Bearer "))
        && same(rest.trim().as_bytes(), token.expose().as_bytes())
    {
        return Ok(());
    }
    if let (Some((user, pass)), Some(rest)) = (&auth.basic, given.strip_prefix("Basic "))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim())
        && let Some(colon) = raw.iter().position(|b| *b == b':')
        && same(&raw[..colon], user.as_bytes())
        && same(&raw[colon + 1..], pass.expose().as_bytes())
    {
        return Ok(());
    }
    let msg = if given.is_empty() {
        "missing credentials: send Authorization: Bearer <token> (server.auth_token_file) or basic auth (server.basic_auth)"
    } else {
        "wrong credentials"
    };
    let mut resp = super::error(StatusCode::UNAUTHORIZED, msg);
    let challenge = if auth.basic.is_some() {
        "Basic realm=\"tocsin\""
    } else {
        "Bearer realm=\"tocsin\""
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        challenge.parse().expect("static header"),
    );
    Err(Box::new(resp.into_response()))
}

/// Once credentials are configured, reading needs one too: incidents carry contacts'
/// phone numbers and addresses, alert text and who acked; channels and status name the
/// links tocsin depends on. Routes under this layer answer 401 without one.
pub(crate) async fn reads(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(r) = check(&s.auth(), req.headers()) {
        return *r;
    }
    next.run(req).await
}

/// Every 401, counted and logged with the client's address and the path (for fail2ban
/// and the like): one layer over the whole router, whichever handler refused.
pub(crate) async fn count_failures(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let path = crate::notify::message::clean(req.uri().path());
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        s.metrics.auth_failures.inc();
        tracing::warn!(client = %peer, %path, "request refused: missing or wrong credentials");
    }
    resp
}
