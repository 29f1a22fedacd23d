//! Credentials on every route that takes them: bearer tokens (the master token and
//! `[server.tokens.*]`) and basic auth, each allowed the scopes configured for it. No
//! credential or a wrong one is 401; a right one without the route's scope is 403.
//! One layer over the whole router counts and logs failures and throttles the
//! addresses they come from ([`super::throttle`]).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::config::{Credential, HookAuth, Scope};

/// Marks a response as a failed authentication (a 401, or a refused login page), for
/// the layer that counts and throttles them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BadCredentials;

/// The credential the `Authorization` header carries, or the 401 to send.
pub(crate) fn credential<'a>(
    auth: &'a HookAuth,
    headers: &HeaderMap,
) -> Result<&'a Credential, Box<Response>> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let found = if let Some(rest) = given.strip_prefix("Bearer ") {
        auth.by_token(rest.trim().as_bytes())
    } else if let Some(rest) = given.strip_prefix("Basic ")
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim())
        && let Some(colon) = raw.iter().position(|b| *b == b':')
    {
        auth.by_password(&raw[..colon], &raw[colon + 1..])
    } else {
        None
    };
    found.ok_or_else(|| {
        let msg = if given.is_empty() {
            "missing credentials: send Authorization: Bearer <token> (server.auth_token_file or a [server.tokens] entry) or basic auth (server.basic_auth)"
        } else {
            "wrong credentials"
        };
        unauthorized(auth, msg)
    })
}

/// A 401 with its challenge, marked as a failure.
pub(crate) fn unauthorized(auth: &HookAuth, msg: &str) -> Box<Response> {
    let mut resp = super::error(StatusCode::UNAUTHORIZED, msg);
    let challenge = if auth.has_basic() {
        "Basic realm=\"tocsin\""
    } else {
        "Bearer realm=\"tocsin\""
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        challenge.parse().expect("static header"),
    );
    resp.extensions_mut().insert(BadCredentials);
    Box::new(resp)
}

/// `Ok` when `c` may do what needs `scope`; otherwise the 403 that names the scope (and
/// nothing about the credential's secret).
pub(crate) fn allowed(c: &Credential, scope: Scope) -> Result<(), Box<Response>> {
    if c.scopes.contains(scope) {
        return Ok(());
    }
    let msg = format!(
        "this credential may not do this: it needs the scope \"{scope}\" (scopes of a [server.tokens] entry)"
    );
    Err(Box::new(super::error(StatusCode::FORBIDDEN, msg)))
}

/// `Ok` when the request carries a credential with `scope` (or none is configured);
/// otherwise the 401 or 403 to send.
pub(crate) fn check(
    auth: &HookAuth,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(), Box<Response>> {
    if auth.is_open() {
        return Ok(());
    }
    allowed(credential(auth, headers)?, scope)
}

/// Once credentials are configured, reading needs one with the `read` scope:
/// incidents carry contacts' phone numbers and addresses, alert text and who acked;
/// channels and status name the links tocsin depends on.
pub(crate) async fn reads(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(r) = check(&s.auth(), req.headers(), Scope::Read) {
        return *r;
    }
    next.run(req).await
}

/// Routes whose secret is their own (Twilio's signature, an ack link's token) rather
/// than a configured credential: their failures are not guesses at one, and a phone
/// behind a guesser's carrier NAT must still be able to ack. `/healthz` answers anyone.
fn throttled(path: &str) -> bool {
    !(path == "/healthz"
        || path.starts_with("/ack/")
        || path.starts_with("/hooks/sms/twilio/")
        || path.starts_with("/hooks/voice/"))
}

/// One layer over the whole router: refuses an address serving a penalty (429 with
/// `Retry-After`, its credentials never looked at), and counts and logs (with the
/// client's address and the path, for fail2ban and the like) every failure, and
/// throttles the address of every wrong credential.
pub(crate) async fn guard(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let path = crate::notify::message::clean(req.uri().path());
    // A guess is a credential that was presented: a request without one (a browser, a
    // scraper not yet given its token) is refused, counted, but not throttled.
    let guess = req.headers().contains_key(header::AUTHORIZATION)
        || path == "/login"
        || req.uri().query().is_some_and(|q| q.contains("token="));
    let watched = throttled(&path);
    if watched
        && let Some(ip) = peer
        && let Some(wait) = s.throttle().blocked(ip, s.clock.now())
    {
        s.metrics.auth_throttled.inc();
        return too_many(wait);
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED
        || resp.extensions().get::<BadCredentials>().is_some()
    {
        s.metrics.auth_failures.inc();
        let client = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        tracing::warn!(%client, %path, "request refused: missing or wrong credentials");
        if watched
            && guess
            && let Some(ip) = peer
            && let Some(penalty) = s.throttle().failed(ip, s.clock.now())
        {
            tracing::warn!(
                %client,
                penalty_s = penalty.as_secs(),
                "too many failed authentications from this address: its requests are refused (429) without a look until the penalty ends"
            );
        }
    }
    resp
}

/// 429 with `Retry-After` in whole seconds, rounded up.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    let mut resp = super::error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed authentications from this address: try again in {secs} s"),
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        secs.to_string().parse().expect("digits"),
    );
    resp.into_response()
}
