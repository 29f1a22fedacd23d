//! The web view: `/` lists open incidents and every channel's health, `/incidents/{id}`
//! shows one incident with buttons that acknowledge, unacknowledge or resolve it, and
//! `/schedules` who is on call, with the overrides that change it ([`schedules`]), and
//! `/silences` the known noise that opens no incident ([`silences`]), and `/maintenance`
//! the planned work whose incidents page nobody while it lasts ([`maintenance`]).
//! Server-rendered HTML from one shell ([`crate::html::app_page`]), no JavaScript.
//!
//! Without credentials configured, looking and acting are open. Acting is a form `POST`
//! answered with `303 See Other` back to the incident (a GET never changes anything),
//! and it must come from tocsin's own pages under one of its own names
//! ([`Site::check_form`]: 403 from another site, 421 under a name that is not tocsin's).
//! When credentials are configured, the pages need a login session (`/login` takes any
//! configured token with the `read` scope, or the basic-auth password), acting needs a
//! session whose credential has the `act` scope and the session's CSRF value in the
//! form; see [`guard`].

mod guard;
pub(crate) mod maintenance;
pub(crate) mod schedules;
pub(crate) mod silences;
mod view;
mod windows;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use tracing::{info, warn};

use self::view::Viewer;
use super::cross_site::{NotOurs, Site};
use super::hooks::read_capped;
use super::status_of;
use super::{AppState, auth};
use crate::config::Scope;
use crate::engine::{Actor, IncidentState, Input, Refusal, Via};
use crate::html::{PAGE_HEADERS, app_page, html_escape};
use crate::runtime::SubmitError;
use crate::store::{Detail, EventId, IncidentView, ListQuery};

/// Open incidents listed on one page of `/` (older ones are a link away).
const LIST_LIMIT: usize = 100;
/// Resolved incidents listed on one page of `/?state=resolved`.
const RESOLVED_LIMIT: usize = 50;
/// A form is a few short fields.
const FORM_MAX: usize = 16 * 1024;

fn reply(code: StatusCode, title: &str, viewer: &Viewer, body: &str) -> Response {
    (
        code,
        PAGE_HEADERS,
        Html(app_page(title, &view::nav(viewer), body)),
    )
        .into_response()
}

/// A page that only says what went wrong, with a way back.
fn problem(code: StatusCode, title: &str, viewer: &Viewer, msg: &str, back: &str) -> Response {
    let body = format!(
        "<p>{}</p><p><a href=\"{back}\">Back</a></p>",
        html_escape(msg)
    );
    reply(code, title, viewer, &body)
}

/// `303 See Other` to `to`, setting `cookies`.
fn see_other(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(to).expect("redirects go to paths built here"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    r
}

/// Cookies get `Secure` when people reach tocsin over https.
fn secure(s: &AppState) -> bool {
    s.live()
        .config
        .file
        .server
        .public_url
        .starts_with("https://")
}

fn viewer(s: &AppState, headers: &HeaderMap) -> (Viewer, Option<guard::Session>) {
    let locked = !s.auth().is_open();
    let session = if locked {
        guard::session(headers, &s.ack_key, &s.auth(), s.clock.now())
    } else {
        None
    };
    let viewer = Viewer {
        locked,
        logged_in: session.is_some(),
        reads: !locked || session.as_ref().is_some_and(|x| x.may(Scope::Read)),
        acts: !locked || session.as_ref().is_some_and(|x| x.may(Scope::Act)),
        csrf: session.as_ref().map(|x| x.csrf(&s.ack_key)),
        name: guard::remembered_name(headers).unwrap_or_else(|| "web".to_string()),
    };
    (viewer, session)
}

/// Once credentials are configured, the pages show nothing before a login: incidents
/// carry contacts' numbers and addresses. (An ack link is its own credential.) A login
/// whose token lost the `read` scope since sees nothing either.
fn login_first(viewer: &Viewer) -> Option<Response> {
    if viewer.locked && !viewer.logged_in {
        return Some(
            (
                StatusCode::SEE_OTHER,
                [(axum::http::header::LOCATION, "/login")],
            )
                .into_response(),
        );
    }
    (!viewer.reads).then(|| {
        problem(
            StatusCode::FORBIDDEN,
            "Not allowed",
            viewer,
            "Your login may not read incidents: log in with a token that has the read scope.",
            "/login",
        )
    })
}

fn store_down(viewer: &Viewer, e: &impl std::fmt::Display) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "tocsin cannot read its store",
        viewer,
        &format!("{e}. Try again in a moment."),
        "/",
    )
}

#[derive(Deserialize)]
pub(crate) struct IndexQuery {
    state: Option<String>,
    /// Only incidents older than this one: the "older" link of the page before.
    before: Option<u64>,
}

/// `GET /` (open incidents and channels) and `GET /?state=resolved`, a page at a time,
/// newest first. The lists show no alerts, so none are read.
pub(crate) async fn index(
    State(s): State<AppState>,
    Query(q): Query<IndexQuery>,
    headers: HeaderMap,
) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if let Some(r) = login_first(&viewer) {
        return r;
    }
    let now = s.clock.now();
    match q.state.as_deref() {
        None | Some("" | "open") => {}
        Some("resolved") => {
            let query = ListQuery {
                before: q.before,
                ..ListQuery::newest(Some(IncidentState::Resolved), RESOLVED_LIMIT)
            };
            return match s.store.incidents(query).await {
                Ok(page) => reply(
                    StatusCode::OK,
                    "Recently resolved incidents",
                    &viewer,
                    &view::resolved(&page.incidents, page.next, now),
                ),
                Err(e) => store_down(&viewer, &e),
            };
        }
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "No such list",
                &viewer,
                &format!("There is no list of {other:?} incidents: use open or resolved."),
                "/",
            );
        }
    }
    // A page of each open state, merged newest first: the page is the newest of both.
    let mut open: Vec<IncidentView> = Vec::new();
    let mut more = false;
    for state in [IncidentState::Triggered, IncidentState::Acknowledged] {
        let query = ListQuery {
            before: q.before,
            ..ListQuery::newest(Some(state), LIST_LIMIT)
        };
        match s.store.incidents(query).await {
            Ok(page) => {
                more |= page.next.is_some();
                open.extend(page.incidents);
            }
            Err(e) => return store_down(&viewer, &e),
        }
    }
    open.sort_by_key(|v| std::cmp::Reverse(v.id));
    more |= open.len() > LIST_LIMIT;
    open.truncate(LIST_LIMIT);
    let next = if more {
        open.last().map(|v| v.id)
    } else {
        None
    };
    let total = match s.store.counts().await {
        Ok(c) => {
            c.get(&IncidentState::Triggered).copied().unwrap_or(0)
                + c.get(&IncidentState::Acknowledged).copied().unwrap_or(0)
        }
        Err(e) => return store_down(&viewer, &e),
    };
    let title = match total {
        0 => "Open incidents: none".to_string(),
        n => format!("Open incidents: {n}"),
    };
    let board = super::api::with_schedules(&s).await;
    let body = view::index(&open, next, &board, now);
    reply(StatusCode::OK, &title, &viewer, &body)
}

fn not_found(viewer: &Viewer, id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "No such incident",
        viewer,
        &format!("There is no incident {id}."),
        "/",
    )
}

#[derive(Deserialize)]
pub(crate) struct IncidentQuery {
    /// Only history older than this entry: the "older history" link.
    history_before: Option<EventId>,
}

/// `GET /incidents/{id}`: the last 100 history entries and pages, older history a link
/// away.
pub(crate) async fn incident(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<IncidentQuery>,
    headers: HeaderMap,
) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if let Some(r) = login_first(&viewer) {
        return r;
    }
    let Ok(n) = id.parse::<u64>() else {
        return not_found(&viewer, &id);
    };
    let detail = Detail {
        history_before: q.history_before,
        ..Detail::FULL
    };
    match s.store.incident(n, detail).await {
        Ok(Some(v)) => {
            let body = view::incident(&v, &viewer, s.clock.now());
            reply(
                StatusCode::OK,
                &format!("#{} {}", v.id, v.title),
                &viewer,
                &body,
            )
        }
        Ok(None) => not_found(&viewer, &format!("#{n}")),
        Err(e) => store_down(&viewer, &e),
    }
}

/// The fields of a urlencoded form; the first of a repeated name wins.
async fn form(headers: &HeaderMap, body: Body) -> Result<HashMap<String, String>, Response> {
    let bytes = read_capped(headers, body, FORM_MAX).await.map_err(|r| *r)?;
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    Ok(fields)
}

/// The page for a form that did not come from tocsin's own page, or came under a name
/// that is not tocsin's.
fn not_ours(viewer: &Viewer, site: &Site, r: &NotOurs) -> Response {
    match r {
        NotOurs::CrossSite { .. } => problem(
            StatusCode::FORBIDDEN,
            "Refused: not from tocsin's own page",
            viewer,
            "This form was sent from another site, so nothing was changed. Use the buttons on tocsin's own pages.",
            "/",
        ),
        NotOurs::Misdirected { .. } => problem(
            r.status(),
            "Refused: not tocsin's address",
            viewer,
            &r.explain(site),
            "/",
        ),
    }
}

/// The fields of a form that changes state, once it is allowed: it came from tocsin's
/// own page and, with credentials configured, from a login whose CSRF value it carries
/// and whose credential may act. Otherwise the page that says why nothing changed.
/// `what` names the change in the logs; `back` is where the page's link goes.
async fn acting_form(
    s: &AppState,
    viewer: &Viewer,
    session: Option<guard::Session>,
    headers: &HeaderMap,
    body: Body,
    what: &str,
    back: &str,
) -> Result<HashMap<String, String>, Response> {
    if let Err(r) = s.site.check_form(headers) {
        warn!(what, refusal = ?r, "form post from another site refused");
        return Err(not_ours(viewer, &s.site, &r));
    }
    let fields = form(headers, body).await?;
    if !viewer.locked {
        return Ok(fields);
    }
    let Some(session) = session else {
        return Err(reply(
            StatusCode::FORBIDDEN,
            "Log in first",
            viewer,
            "<p>Nothing was changed: acting needs a login.</p><p><a href=\"/login\">Log in</a></p>",
        ));
    };
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or("");
    if !session.csrf_ok(&s.ack_key, csrf, s.clock.now()) {
        warn!(what, "web form with a wrong CSRF value refused");
        return Err(problem(
            StatusCode::FORBIDDEN,
            "Refused: the form is stale",
            viewer,
            "This form does not belong to your login, so nothing was changed. Reload the page and try again.",
            back,
        ));
    }
    if !session.may(Scope::Act) {
        warn!(what, "web action by a login without the act scope refused");
        return Err(problem(
            StatusCode::FORBIDDEN,
            "Not allowed",
            viewer,
            "Your login may only look, so nothing was changed: acting needs a token with the act scope.",
            back,
        ));
    }
    Ok(fields)
}

/// Who acts, from the form's "Your name" field: `web` when it is empty.
fn actor_name(fields: &HashMap<String, String>) -> String {
    let name = guard::clean_name(fields.get("by").map(String::as_str).unwrap_or(""));
    if name.is_empty() {
        "web".to_string()
    } else {
        name
    }
}

/// `POST /incidents/{id}/ack|unack|resolve`, from the incident page's form.
pub(crate) async fn act(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (viewer, session) = viewer(&s, &headers);
    let Ok(id) = id.parse::<u64>() else {
        return not_found(&viewer, &id);
    };
    let back = format!("/incidents/{id}");
    let what = format!("incident {id} {action}");
    let fields = match acting_form(&s, &viewer, session, &headers, body, &what, &back).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = actor_name(&fields);
    let by = Actor::new(name.clone(), Via::Web);
    let input = match action.as_str() {
        "ack" => Input::Ack { id, by },
        "unack" => Input::Unack { id, by },
        "resolve" => Input::Resolve { id, by },
        other => {
            return problem(
                StatusCode::NOT_FOUND,
                "No such action",
                &viewer,
                &format!("{other:?} is not an action: use ack, unack or resolve."),
                &back,
            );
        }
    };
    match s.engine.submit(input).await {
        Ok(()) => {
            info!(incident = id, action, by = %name, "acted from the web view");
            see_other(&back, [guard::name_cookie(&name, secure(&s))])
        }
        Err(SubmitError::Refused(Refusal::NotFound(_))) => not_found(&viewer, &format!("#{id}")),
        Err(e) => not_done(&viewer, &e, &what, &back),
    }
}

/// The page for an input the engine refused (its reason, as the API gives it) or could
/// not record.
fn not_done(viewer: &Viewer, e: &SubmitError, what: &str, back: &str) -> Response {
    match e {
        SubmitError::Queued(why) => problem(StatusCode::ACCEPTED, "Queued", viewer, why, back),
        SubmitError::Refused(_) | SubmitError::Forwarded { .. } => problem(
            status_of(e),
            "Nothing changed",
            viewer,
            &e.to_string(),
            back,
        ),
        SubmitError::Unavailable(err) => {
            warn!(what, error = %err, "web action not recorded");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not recorded",
                viewer,
                &format!("tocsin could not record this: {err}. Press the button again."),
                back,
            )
        }
    }
}

/// `GET /login`.
pub(crate) async fn login_form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if !viewer.locked {
        return problem(
            StatusCode::OK,
            "No login needed",
            &viewer,
            "No credentials are configured, so the buttons work without logging in.",
            "/",
        );
    }
    reply(
        StatusCode::OK,
        "Log in",
        &viewer,
        &view::login(&s.auth(), None),
    )
}

/// `POST /login`: checks the credentials as the API does and starts a session with
/// that credential's scopes. A credential that may not read (a hook's token) gets no
/// session: the pages would show it nothing.
pub(crate) async fn login(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if let Err(r) = s.site.check_form(&headers) {
        warn!(refusal = ?r, "login from another site refused");
        return not_ours(&viewer, &s.site, &r);
    }
    if !viewer.locked {
        return see_other("/", []);
    }
    let fields = match form(&headers, body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let authorization = if !field("token").is_empty() {
        format!("Bearer {}", field("token"))
    } else if !field("username").is_empty() {
        let pair = format!("{}:{}", field("username"), field("password"));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    } else {
        String::new()
    };
    let mut as_api = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&authorization) {
        as_api.insert(header::AUTHORIZATION, v);
    }
    let creds = s.auth();
    let found = auth::credential(&creds, &as_api)
        .ok()
        .filter(|_| !authorization.is_empty());
    let Some(c) = found else {
        warn!("web login with wrong credentials");
        let mut r = reply(
            StatusCode::FORBIDDEN,
            "Log in",
            &viewer,
            &view::login(&creds, Some("Wrong credentials: nothing was changed.")),
        );
        r.extensions_mut().insert(auth::BadCredentials);
        return r;
    };
    if !c.scopes.contains(Scope::Read) {
        warn!(credential = %c.name, "web login with a token that may not read refused");
        return reply(
            StatusCode::FORBIDDEN,
            "Log in",
            &viewer,
            &view::login(
                &creds,
                Some(
                    "This token may not read the web view (it needs the read scope): use another.",
                ),
            ),
        );
    }
    info!(credential = %c.name, "web login");
    let token = guard::new_session(&s.ack_key, c, s.clock.now());
    see_other("/", [guard::session_cookie(&token, secure(&s))])
}

/// `POST /logout`: forgets the session cookie.
pub(crate) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = s.site.check_form(&headers) {
        let (viewer, _) = viewer(&s, &headers);
        return not_ours(&viewer, &s.site, &r);
    }
    see_other("/", [guard::clear_session_cookie(secure(&s))])
}
