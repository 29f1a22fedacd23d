//! `GET|POST /hooks/sms/kannel`: SMS replies (`42A` acks incident 42) received by Kannel.
//!
//! Kannel's smsbox calls this URL for every mobile-originated SMS of the service below
//! and sends the response body back to the sender as the reply SMS. Add to kannel.conf
//! (`%p` is the sender, `%b` the text as received, `%C` its charset, so a reply typed
//! in UCS-2 arrives intact, and `%I` the message's id, a UUID):
//!
//! ```text
//! group = sms-service
//! keyword = default
//! get-url = "http://127.0.0.1:9797/hooks/sms/kannel?from=%p&text=%b&charset=%C&id=%I&token=TOKEN"
//! omit-empty = true
//! max-messages = 1
//! ```
//!
//! - `id=%I` makes a reply act once: smsbox fetches the URL again, with the same id,
//!   when it thinks the first try failed (`http-request-retry`, a timeout), and a
//!   message whose id tocsin has seen does nothing and is answered with an empty body.
//!   Without `id` every fetch acts (and a warning is logged). `%t`, when the message
//!   was sent, is no id: two replies in one second share it.
//! - `TOKEN` is a token with the `sms` scope (`[server.tokens.kannel] scopes =
//!   ["sms"]`), percent-encoded if it has characters other than letters, digits and
//!   `-._~`; leave `&token=...` out when tocsin has no credentials. Kannel cannot send
//!   an `Authorization` header, so the token is accepted as this query parameter, on
//!   this route only and only for a token with that scope: a token in a URL ends up in
//!   kannel.conf and proxy logs, so it should be able to do nothing else. The master
//!   token (`server.auth_token_file`) has every scope and still works here, as it did
//!   before scopes; `check-config` warns about it. Basic auth also works, with
//!   `server.basic_auth` and `http://user:password@127.0.0.1:9797/...` (Kannel sends
//!   the password as written, without percent-decoding it). Either way the secret is
//!   in kannel.conf: keep that file readable only by Kannel.
//! - `omit-empty = true` matters: tocsin answers a number that is no contact's with an
//!   empty body, and Kannel must then send nothing (an answer would confirm to a
//!   stranger that the number reaches an on-call system).
//! - `keyword = default` hands tocsin every SMS that no other sms-service of the
//!   gateway claims by its keyword; replies (`42A`, `ack 42`) are answered by tocsin,
//!   anything else gets the help line.
//! - `max-messages = 1`: tocsin's answers fit one SMS.
//!
//! When tocsin cannot record a reply it answers 503; by default Kannel then replies
//! "Could not fetch content, sorry." to the sender, and tries again first if the
//! `smsbox` group has `http-request-retry = 3` and `http-queue-delay = 5`.
//!
//! `post-url` works too: Kannel POSTs the text as a `text/plain` body with its
//! charset; set `send-sender = true` in the sms-service group so that the sender comes
//! as `X-Kannel-From` (or put `from=%p` in the URL's query), and put `id=%I` in the
//! URL's query. A form body with `from`, `text` and `id` fields is read as well.
//!
//! What the reply does is [`super::sms::act_on_reply`]'s business: the sender must be
//! a phone number that belongs to a contact with an SMS method, or nothing happens (and
//! the attempt is recorded on the incident it named).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::sms::{ReplyOutcome, act_on_reply, message_id};
use super::{AppState, auth, error};
use crate::config::{HookAuth, Scope};

/// A reply SMS is short; a body this big is not one (Kannel's post-url sends the text).
const MAX_BODY: usize = 64 * 1024;

pub(crate) async fn receive(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fields = Fields::from_query(uri.query().unwrap_or("").as_bytes());
    if let Err(r) = authorized(&s.auth(), &headers, fields.token.as_deref()) {
        return *r;
    }
    let body = if method == Method::POST {
        match super::hooks::read_capped(&headers, body, s.max_body.min(MAX_BODY)).await {
            Ok(b) => Some(b),
            Err(r) => return *r,
        }
    } else {
        None
    };
    let msg = match fields.finish(&headers, body.as_deref()) {
        Ok(v) => v,
        Err(msg) => {
            warn!(error = %msg, "refused an inbound SMS from Kannel");
            return error(StatusCode::BAD_REQUEST, msg);
        }
    };
    if msg.id.is_none() {
        warn!(
            "SMS reply from Kannel without an id: a retry of it would act again; add &id=%I to the sms-service get-url"
        );
    }
    match act_on_reply(&s, "kannel", msg.id.as_deref(), &msg.from, &msg.text).await {
        ReplyOutcome::Done(t) | ReplyOutcome::Refused(t) | ReplyOutcome::NotUnderstood(t) => {
            reply(StatusCode::OK, t)
        }
        // Empty: with `omit-empty = true` Kannel answers a stranger nothing at all.
        ReplyOutcome::UnknownSender => reply(StatusCode::OK, String::new()),
        // Empty too: the first arrival of the message was answered.
        ReplyOutcome::Replayed => reply(StatusCode::OK, String::new()),
        ReplyOutcome::Unavailable(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the reply could not be recorded, try again: {e}"),
        ),
    }
}

/// A `text/plain` answer, which Kannel sends back to the sender as an SMS.
fn reply(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// `Ok` with a `token` parameter or an `Authorization` header whose credential has
/// the `sms` scope, or when the server has no credentials. The master token has every
/// scope, so a get-url written before scoped tokens keeps working.
fn authorized(
    auth: &HookAuth,
    headers: &HeaderMap,
    token: Option<&[u8]>,
) -> Result<(), Box<Response>> {
    if auth.is_open() {
        return Ok(());
    }
    let found = match token {
        Some(given) => auth
            .by_token(given)
            .ok_or_else(|| auth::unauthorized(auth, "wrong token")),
        None if headers.contains_key(header::AUTHORIZATION) => auth::credential(auth, headers),
        None => Err(auth::unauthorized(
            auth,
            "missing credentials: add token=<a token with the sms scope, [server.tokens.kannel]> to Kannel's get-url",
        )),
    };
    auth::allowed(found?, Scope::Sms)
}

/// The reply a Kannel request carries: its query, and for a POST its headers and body,
/// read as [`receive`] reads them once the token is checked. Public so that the fuzz
/// targets (`fuzz/`) feed it what a stranger could send.
pub fn read_request(
    query: &[u8],
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<Message, String> {
    Fields::from_query(query).finish(headers, body)
}

/// What Kannel sent, as raw bytes until the charset is known.
#[derive(Debug, Default)]
struct Fields {
    from: Option<Vec<u8>>,
    text: Option<Vec<u8>>,
    /// `%C` of get-url, or the charset of a post-url body.
    charset: Option<String>,
    /// `%c`: 2 means UCS-2 (UTF-16BE), for a get-url written with `coding=%c`.
    coding: Option<String>,
    /// `%I`: the message's id, the same on every retry of it.
    id: Option<Vec<u8>>,
    token: Option<Vec<u8>>,
}

/// One reply as Kannel sent it, decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub from: String,
    pub text: String,
    /// `None` when the get-url has no `id=%I` (or Kannel had no id to put there).
    pub id: Option<String>,
}

impl Fields {
    /// The fields of a get-url's query (the token among them, checked before any body
    /// is read).
    fn from_query(raw: &[u8]) -> Self {
        let mut fields = Fields::default();
        fields.fill_from_form(raw);
        fields
    }

    /// The message, once a POST's body (if any) has added what the query lacked.
    fn finish(mut self, headers: &HeaderMap, body: Option<&[u8]>) -> Result<Message, String> {
        if let Some(body) = body {
            self.fill_from_post(headers, body);
        }
        self.decode()
    }

    /// Reads `from`, `text`, `charset`, `coding`, `id` and `token` from a query string or
    /// form body; the first occurrence of a key wins, and fields already set stay.
    fn fill_from_form(&mut self, raw: &[u8]) {
        for pair in raw.split(|b| *b == b'&') {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            let slot = match percent_decode(k).as_slice() {
                b"from" => &mut self.from,
                b"text" => &mut self.text,
                b"token" => &mut self.token,
                b"id" => &mut self.id,
                b"charset" => {
                    if self.charset.is_none() {
                        self.charset = Some(String::from_utf8_lossy(&percent_decode(v)).into());
                    }
                    continue;
                }
                b"coding" => {
                    if self.coding.is_none() {
                        self.coding = Some(String::from_utf8_lossy(&percent_decode(v)).into());
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode(v));
            }
        }
    }

    /// A POST body: form fields, or (Kannel's post-url) the text itself, with the
    /// sender in `X-Kannel-From`.
    fn fill_from_post(&mut self, headers: &HeaderMap, body: &[u8]) {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            self.fill_from_form(body);
        } else if self.text.is_none() {
            self.text = Some(body.to_vec());
            if let Some(cs) = content_type
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("charset="))
                .next()
            {
                self.charset = Some(cs.trim_matches('"').to_string());
            }
            if let Some(c) = headers.get("x-kannel-coding").and_then(|v| v.to_str().ok()) {
                self.coding = Some(c.trim().to_string());
            }
        }
        if self.from.is_none()
            && let Some(f) = headers.get("x-kannel-from")
        {
            self.from = Some(f.as_bytes().to_vec());
        }
    }

    /// The sender, the text and the id, or what is wrong with the request.
    fn decode(self) -> Result<Message, String> {
        let from = self.from.filter(|f| !f.is_empty()).ok_or(
            "missing sender: Kannel's get-url needs from=%p (post-url: send-sender = true)",
        )?;
        let from = String::from_utf8(from)
            .map_err(|_| "the sender (from) is not valid UTF-8".to_string())?;
        let text = self
            .text
            .ok_or("missing text: Kannel's get-url needs text=%b (and charset=%C)")?;
        let text = decode_text(text, self.charset.as_deref(), self.coding.as_deref())?;
        // Empty when Kannel had no id for the message (%I of a null UUID).
        let id = match self.id.filter(|i| !i.is_empty()) {
            None => None,
            Some(raw) => {
                let raw = String::from_utf8(raw)
                    .map_err(|_| "the message id (id) is not valid UTF-8".to_string())?;
                Some(message_id("id", &raw)?.to_string())
            }
        };
        Ok(Message { from, text, id })
    }
}

/// The text in the charset Kannel named (`%C`: `UTF-8`, or `UTF-16BE` for UCS-2).
fn decode_text(
    bytes: Vec<u8>,
    charset: Option<&str>,
    coding: Option<&str>,
) -> Result<String, String> {
    let charset = charset.unwrap_or("").trim().to_ascii_lowercase();
    let ucs2 = matches!(
        charset.as_str(),
        "utf-16be" | "utf-16" | "ucs-2" | "ucs2" | "ucs-2be" | "unicode"
    ) || (charset.is_empty() && coding.map(str::trim) == Some("2"));
    if ucs2 {
        if !bytes.len().is_multiple_of(2) {
            return Err(format!(
                "the text is not UTF-16BE ({charset}): it has an odd number of bytes"
            ));
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        return String::from_utf16(&units)
            .map_err(|_| "the text is not valid UTF-16BE".to_string());
    }
    if matches!(
        charset.as_str(),
        "iso-8859-1" | "latin1" | "iso-8859-15" | "windows-1252" | "cp1252"
    ) {
        return Ok(bytes.into_iter().map(char::from).collect());
    }
    String::from_utf8(bytes).map_err(|_| {
        "the text is not valid UTF-8 (if Kannel sent UCS-2, add charset=%C to the get-url)"
            .to_string()
    })
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space, `%XX` a byte,
/// a malformed escape is kept as it is. (Decoding to `str` would hide invalid UTF-8
/// and UTF-16 behind replacement characters.)
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(query: &str) -> Fields {
        let mut f = Fields::default();
        f.fill_from_form(query.as_bytes());
        f
    }

    fn message(from: &str, text: &str, id: Option<&str>) -> Message {
        Message {
            from: from.to_string(),
            text: text.to_string(),
            id: id.map(str::to_string),
        }
    }

    #[test]
    fn a_get_url_reply_is_read() {
        let f = fields(
            "from=%2B15550100&text=42A&charset=UTF-8&id=20687837-e1f5-4b6b-916a-c23a3850bce0&token=s%26cret",
        );
        assert_eq!(f.token.as_deref(), Some(&b"s&cret"[..]));
        assert_eq!(
            f.decode(),
            Ok(message(
                "+15550100",
                "42A",
                Some("20687837-e1f5-4b6b-916a-c23a3850bce0")
            ))
        );
    }

    #[test]
    fn a_reply_without_a_usable_id_is_read_without_one_or_refused() {
        // A get-url from before id=%I, and %I of a message Kannel had no id for.
        for q in ["from=%2B15550100&text=42A", "from=%2B15550100&text=42A&id="] {
            assert_eq!(
                fields(q).decode(),
                Ok(message("+15550100", "42A", None)),
                "{q}"
            );
        }
        for q in [
            "from=%2B15550100&text=42A&id=%FF",
            "from=%2B15550100&text=42A&id=a+b",
            "from=%2B15550100&text=42A&id=%0A",
        ] {
            let e = fields(q).decode().unwrap_err();
            assert!(e.contains("id"), "{q}: {e}");
        }
    }

    #[test]
    fn a_ucs2_reply_is_decoded_not_mangled() {
        // What Kannel sent for a UCS-2 "Ü 42A" with text=%b&charset=%C.
        let f = fields("from=%2B15550100&text=%00%DC%00+%004%002%00A&charset=UTF-16BE");
        assert_eq!(f.decode().unwrap().text, "Ü 42A");
    }

    #[test]
    fn invalid_text_is_an_error_not_a_panic() {
        for q in [
            "from=1&text=%FF%FE",
            "from=1&text=%00%DC%00&charset=UTF-16BE",
            "from=1&text=%D8%00&charset=UTF-16BE",
            "from=%FF&text=42A",
            "from=&text=42A",
            "text=42A",
            "from=%2B15550100",
            "from=1&text=%",
            "from=1&text=%4",
            "%=%&&=&from",
        ] {
            let _ = fields(q).decode();
        }
        assert!(
            fields("from=1&text=%FF%FE")
                .decode()
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(fields("text=42A").decode().unwrap_err().contains("from=%p"));
        assert!(fields("from=1").decode().unwrap_err().contains("text=%b"));
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        assert_eq!(percent_decode(b"a%zzb%4"), b"a%zzb%4");
        assert_eq!(percent_decode(b"%41+%42%"), b"A B%");
    }

    #[test]
    fn a_post_url_body_with_kannel_headers_is_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "text/plain; charset=\"UTF-16BE\"".parse().unwrap(),
        );
        h.insert("x-kannel-from", "+15550100".parse().unwrap());
        h.insert("x-kannel-coding", "2".parse().unwrap());
        let mut f = Fields::default();
        f.fill_from_post(&h, &[0, b'4', 0, b'2', 0, b'A']);
        assert_eq!(f.decode(), Ok(message("+15550100", "42A", None)));
    }
}
