//! `/ack/{token}`: the signed links in pages.
//!
//! `GET` only shows what the link would ack, with a button; mail scanners and chat link
//! previews follow links, so a GET must never change anything. The button `POST`s to the
//! same URL, which acks every incident of the link that is still triggered, as the
//! link's contact. A link that was used once (its ack is in an incident's history as
//! "via link <id>") does nothing again, even after an unack.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tracing::{info, warn};

use super::AppState;
use crate::ack_link::{AckKey, Claims, LinkError};
use crate::engine::{Actor, IncidentState, Input, Via};
use crate::html::{PAGE_HEADERS, html_escape, page};
use crate::runtime::SubmitError;
use crate::store::{Detail, IncidentView};

fn reply(code: StatusCode, title: &str, body: &str) -> Response {
    // Never framed: the Ack button must not be clickjacked.
    (code, PAGE_HEADERS, Html(page(title, body))).into_response()
}

fn link_error(e: &LinkError) -> Response {
    let code = match e {
        LinkError::Expired(_) => StatusCode::GONE,
        LinkError::Malformed | LinkError::Forged => StatusCode::BAD_REQUEST,
    };
    reply(
        code,
        "This ack link does not work",
        &format!(
            "<p>{}</p><p class=\"note\">Nothing was acknowledged.</p>",
            html_escape(&e.to_string())
        ),
    )
}

/// The claims, the incidents as stored now, and whether this link already acked.
struct Looked {
    claims: Claims,
    incidents: Vec<IncidentView>,
    used_at: Option<String>,
    link_id: String,
}

async fn look(s: &AppState, token: &str) -> Result<Looked, Response> {
    let claims = s
        .ack_key
        .verify(token, s.clock.now())
        .map_err(|e| link_error(&e))?;
    let link_id = AckKey::token_id(token);
    let mut incidents = Vec::new();
    let mut used_at = None;
    for id in &claims.incidents {
        // Only what the page shows and whether this link acked already: an incident's
        // alerts and its (possibly very long) history are not read.
        let read = async {
            let used = s.store.acked_by_link(*id, &link_id).await?;
            let view = s.store.incident(*id, Detail::SUMMARY).await?;
            Ok::<_, crate::store::StoreError>((used, view))
        };
        match read.await {
            Ok((used, view)) => {
                if let Some(at) = used {
                    used_at.get_or_insert(at.to_rfc3339());
                }
                incidents.extend(view);
            }
            Err(e) => {
                return Err(reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tocsin cannot read its store",
                    &format!(
                        "<p>{}</p><p>Try again in a moment.</p>",
                        html_escape(&e.to_string())
                    ),
                ));
            }
        }
    }
    Ok(Looked {
        claims,
        incidents,
        used_at,
        link_id,
    })
}

fn describe(v: &IncidentView) -> String {
    let mut s = format!(
        "<div class=\"incident state-{state}\"><strong>#{id} {title}</strong><br>{state}",
        id = v.id,
        title = html_escape(&v.title),
        state = v.state.as_str(),
    );
    if let Some(by) = &v.acked_by {
        s.push_str(&format!(" by {}", html_escape(by)));
    }
    s.push_str(&format!(
        "; {}/{} alerts firing; step {}</div>",
        v.alerts_firing, v.alerts_total, v.step
    ));
    s
}

fn as_whom(c: &Claims) -> String {
    match &c.contact {
        Some(name) => format!(" as {}", html_escape(name)),
        None => String::new(),
    }
}

pub(crate) async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let l = match look(&s, &token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut body: String = l.incidents.iter().map(describe).collect();
    let open = l
        .incidents
        .iter()
        .filter(|v| v.state == IncidentState::Triggered)
        .count();
    if let Some(at) = &l.used_at {
        body.push_str(&format!(
            "<p>This link was already used at {}. It acks nothing again; use the API, the CLI or a newer page.</p>",
            html_escape(at)
        ));
        return reply(StatusCode::OK, "Ack link already used", &body);
    }
    if open == 0 {
        body.push_str("<p>Nothing here needs an ack any more.</p>");
        return reply(StatusCode::OK, "Nothing to acknowledge", &body);
    }
    body.push_str(&format!(
        "<form method=\"post\"><button type=\"submit\">Acknowledge {open} incident{s}{who}</button></form>\
         <p class=\"note\">Opening this page changed nothing; only the button acknowledges.</p>",
        s = if open == 1 { "" } else { "s" },
        who = as_whom(&l.claims),
    ));
    reply(StatusCode::OK, "Acknowledge?", &body)
}

pub(crate) async fn ack(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    // The token is the authority, but the button is a form like the web view's: from
    // another site, or under a rebound name, it acks nothing.
    if let Err(r) = s.site.check_form(&headers) {
        warn!(refusal = ?r, "ack link post from another site refused");
        s.metrics.sms_reply("link", "refused");
        return reply(
            r.status(),
            "Not acknowledged",
            &format!(
                "<p>{}</p><p class=\"note\">Open the link from the page you were sent, and press its button.</p>",
                html_escape(&r.explain(&s.site))
            ),
        );
    }
    let l = match look(&s, &token).await {
        Ok(l) => l,
        Err(r) => {
            s.metrics.sms_reply("link", "refused");
            return r;
        }
    };
    if let Some(at) = &l.used_at {
        s.metrics.sms_reply("link", "refused");
        let body = format!(
            "<p>This link was already used at {}; nothing was acknowledged again.</p>",
            html_escape(at)
        );
        return reply(StatusCode::CONFLICT, "Ack link already used", &body);
    }
    let name = l
        .claims
        .contact
        .clone()
        .unwrap_or_else(|| "someone".to_string());
    let by = Actor::with_reference(name, Via::Link, l.link_id.clone());
    let mut lines = String::new();
    let mut acked = 0;
    for v in &l.incidents {
        // The engine says what an ack of an incident acked or resolved meanwhile means.
        match s
            .engine
            .submit(Input::Ack {
                id: v.id,
                by: by.clone(),
            })
            .await
        {
            Ok(()) => {
                acked += 1;
                info!(incident = v.id, by = %by.name, link = %l.link_id, "acknowledged by link");
                lines.push_str(&format!(
                    "<li>#{} {} acknowledged</li>",
                    v.id,
                    html_escape(&v.title)
                ));
            }
            Err(
                e @ (SubmitError::Refused(_)
                | SubmitError::Forwarded { .. }
                | SubmitError::Queued(_)),
            ) => {
                lines.push_str(&format!("<li>{}</li>", html_escape(&e.to_string())));
            }
            Err(SubmitError::Unavailable(e)) => {
                warn!(incident = v.id, error = %e, "ack by link not recorded");
                s.metrics.sms_reply("link", "unavailable");
                return reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not acknowledged",
                    &format!(
                        "<p>tocsin could not record the ack: {}. Press the button again.</p>",
                        html_escape(&e)
                    ),
                );
            }
        }
    }
    s.metrics
        .sms_reply("link", if acked > 0 { "applied" } else { "refused" });
    let title = if acked > 0 {
        "Acknowledged"
    } else {
        "Nothing acknowledged"
    };
    reply(StatusCode::OK, title, &format!("<ul>{lines}</ul>"))
}
