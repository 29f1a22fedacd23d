//! `type = "http_sms"`: any SMS gateway with an HTTP API, described by templates.
//!
//! The method, URL, headers and body come from alerts.toml with the placeholders `{to}`,
//! `{text}`, `{token}`, `{incident}` and `{page_id}`. Each value is encoded for where it
//! stands, so nothing from an alert can change the request's shape: percent-encoded in
//! the URL, JSON-string-escaped in a JSON body (and the result must still parse), form-
//! encoded in form fields, and with control characters removed in headers. Templates are
//! parsed and checked once, when the notifier is built.

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use super::webhook::classify_status;
use super::{Message, Notifier, NotifyError, sms_text};
use crate::config::types::normalize_phone;
use crate::config::{HttpSmsBody, HttpSmsConfig, Secret};
use crate::notify::message::clean;

/// Sends pages as SMS through a templated HTTP request.
pub struct HttpSmsNotifier {
    method: reqwest::Method,
    /// The URL template as written in alerts.toml: named in errors instead of the rendered
    /// URL, which may carry the token.
    url_text: String,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Option<BodyTemplate>,
    /// Whether a header template sets `Content-Type` (then the body's default is not sent).
    has_content_type: bool,
    /// Statuses that mean "sent"; `None`: any 2xx.
    success_status: Option<Vec<u16>>,
    /// The value of `{token}`.
    token: Option<Secret>,
    /// How many segments the text may take.
    segments: u8,
    /// Bounded by the notifier's `timeout`.
    client: reqwest::Client,
}

/// The body template, parsed.
enum BodyTemplate {
    Json(Template),
    /// Field names are literal; values are templates.
    Form(Vec<(String, Template)>),
}

/// A placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    To,
    Text,
    Token,
    Incident,
    PageId,
}

impl Var {
    const ALL: [(&'static str, Var); 5] = [
        ("{to}", Var::To),
        ("{text}", Var::Text),
        ("{token}", Var::Token),
        ("{incident}", Var::Incident),
        ("{page_id}", Var::PageId),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// A string with placeholders. Anything in braces that is not a known placeholder is
/// literal text, so JSON templates need no escaping of their own braces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Piece>);

/// Where a rendered value lands, which decides how it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Percent-encoded: everything but RFC 3986's unreserved characters, so a value can
    /// stand in a path segment or a query parameter alike.
    Url,
    /// Escaped as the inside of a JSON string.
    Json,
    /// As is; the form serializer encodes the whole field afterwards.
    Form,
    /// As is, with control characters removed (no header splitting).
    Header,
}

/// The values of one message.
struct Values<'a> {
    to: &'a str,
    text: &'a str,
    token: &'a str,
    incident: String,
    page_id: String,
}

impl Template {
    fn parse(s: &str) -> Template {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some((name, var)) = Var::ALL.iter().find(|(n, _)| rest.starts_with(n)) {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Var(*var));
                rest = &rest[name.len()..];
            } else {
                let c = rest.chars().next().expect("rest is not empty");
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Template(pieces)
    }

    fn uses(&self, v: Var) -> bool {
        self.0.contains(&Piece::Var(v))
    }

    fn render(&self, values: &Values<'_>, place: Place) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => {
                    let raw = match v {
                        Var::To => values.to,
                        Var::Text => values.text,
                        Var::Token => values.token,
                        Var::Incident => &values.incident,
                        Var::PageId => &values.page_id,
                    };
                    encode_into(&mut out, raw, place);
                }
            }
        }
        out
    }
}

fn encode_into(out: &mut String, raw: &str, place: Place) {
    match place {
        Place::Url => {
            for b in raw.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        Place::Json => {
            let quoted = serde_json::to_string(raw).expect("a string serializes");
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
        Place::Form => out.push_str(raw),
        Place::Header => out.extend(raw.chars().filter(|c| !c.is_control())),
    }
}

/// The rendered parts of one request.
struct Rendered {
    url: reqwest::Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Content type and bytes.
    body: Option<(&'static str, String)>,
}

impl HttpSmsNotifier {
    pub fn new(cfg: &HttpSmsConfig, token: Option<Secret>) -> Result<Self, NotifyError> {
        let bad = |msg: String| NotifyError::permanent(format!("http_sms: {msg}"));
        let method = reqwest::Method::from_bytes(cfg.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| bad(format!("method {:?} is invalid: {e}", cfg.method)))?;
        let url = Template::parse(&cfg.url);
        let mut headers = Vec::new();
        for (name, value) in &cfg.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("header name {name:?} is invalid: {e}")))?;
            headers.push((name, Template::parse(value)));
        }
        let has_content_type = headers.iter().any(|(n, _)| n == CONTENT_TYPE);
        let body = cfg.body.as_ref().map(|b| match b {
            HttpSmsBody::Json(t) => BodyTemplate::Json(Template::parse(t)),
            HttpSmsBody::Form(fields) => BodyTemplate::Form(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Template::parse(v)))
                    .collect(),
            ),
        });
        let client = super::http_client(cfg.timeout.0)?;
        let n = HttpSmsNotifier {
            method,
            url_text: cfg.url.clone(),
            url,
            headers,
            body,
            has_content_type,
            success_status: cfg.success_status.clone(),
            token,
            segments: cfg.segments,
            client,
        };
        if n.token.is_none() && n.templates().any(|t| t.uses(Var::Token)) {
            return Err(bad(
                "the templates use {token} but neither token_file nor token_env is set".into(),
            ));
        }
        // Catch a template that can never make a valid request now, not at 3 a.m.
        let sample = Values {
            to: "+15550100",
            text: "[#1] TRIGGERED \"sample\" & <text> Reply 1A to ack",
            token: "sample-token",
            incident: "1".into(),
            page_id: "1".into(),
        };
        n.render(&sample).map_err(|e| bad(e.message))?;
        Ok(n)
    }

    fn templates(&self) -> impl Iterator<Item = &Template> {
        let body: Vec<&Template> = match &self.body {
            None => Vec::new(),
            Some(BodyTemplate::Json(t)) => vec![t],
            Some(BodyTemplate::Form(f)) => f.iter().map(|(_, t)| t).collect(),
        };
        std::iter::once(&self.url)
            .chain(self.headers.iter().map(|(_, t)| t))
            .chain(body)
    }

    /// Every part of the request for `values`; an error means the templates are wrong.
    fn render(&self, values: &Values<'_>) -> Result<Rendered, NotifyError> {
        let url_str = self.url.render(values, Place::Url);
        let url = reqwest::Url::parse(&url_str).map_err(|e| {
            NotifyError::permanent(format!(
                "url {:?} does not render to a valid URL: {e}",
                self.url_text
            ))
        })?;
        let mut headers = Vec::new();
        for (name, t) in &self.headers {
            let v = t.render(values, Place::Header);
            let v = HeaderValue::from_str(&v).map_err(|e| {
                NotifyError::permanent(format!(
                    "header {name} does not render to a valid value: {e}"
                ))
            })?;
            headers.push((name.clone(), v));
        }
        let body = match &self.body {
            None => None,
            Some(BodyTemplate::Json(t)) => {
                let s = t.render(values, Place::Json);
                serde_json::from_str::<serde_json::Value>(&s).map_err(|e| {
                    NotifyError::permanent(format!(
                        "body.json does not render to valid JSON ({e}); put each placeholder inside a JSON string, like \"{{text}}\""
                    ))
                })?;
                Some(("application/json", s))
            }
            Some(BodyTemplate::Form(fields)) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, t) in fields {
                    ser.append_pair(k, &t.render(values, Place::Form));
                }
                Some(("application/x-www-form-urlencoded", ser.finish()))
            }
        };
        Ok(Rendered { url, headers, body })
    }

    fn succeeded(&self, status: reqwest::StatusCode) -> bool {
        match &self.success_status {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        }
    }
}

#[async_trait]
impl Notifier for HttpSmsNotifier {
    fn kind(&self) -> &'static str {
        "http_sms"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        // The server part of the URL template: everything before the first placeholder.
        let fixed = self.url_text.split('{').next().unwrap_or_default();
        let url = reqwest::Url::parse(fixed).map_err(|e| {
            NotifyError::permanent(format!(
                "url {:?} has no fixed server part to check: {e}",
                self.url_text
            ))
        })?;
        crate::notify::reachable(&self.client, &url).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let raw_to = msg.page.to.as_deref().ok_or_else(|| {
            NotifyError::bad_address("the contact method has no `to` phone number for http_sms")
        })?;
        let to = normalize_phone(raw_to).ok_or_else(|| {
            NotifyError::permanent(format!(
                "{raw_to:?} is not a phone number in international form like +15550100"
            ))
        })?;
        let text = clean(&sms_text::render(msg, self.segments).text);
        let values = Values {
            to: &to,
            text: &text,
            token: self.token.as_ref().map(Secret::expose).unwrap_or(""),
            incident: msg.incident.id.to_string(),
            page_id: msg.page.id.to_string(),
        };
        let r = self.render(&values)?;
        let mut req = self.client.request(self.method.clone(), r.url);
        for (name, value) in r.headers {
            req = req.header(name, value);
        }
        if let Some((content_type, body)) = r.body {
            if !self.has_content_type {
                req = req.header(CONTENT_TYPE, content_type);
            }
            req = req.body(body);
        }
        // The rendered URL may hold the token: name the template instead.
        let resp = req.send().await.map_err(|e| {
            NotifyError::from_request(&format!("{} {}", self.method, self.url_text), &e)
        })?;
        let status = resp.status();
        if self.succeeded(status) {
            return Ok(super::Sent::Delivered);
        }
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return Err(NotifyError::permanent(format!(
                "the gateway answered HTTP {status}, which is not in success_status {:?}: {}",
                self.success_status.as_deref().unwrap_or_default(),
                clean(&body).chars().take(200).collect::<String>()
            )));
        }
        let mut e = classify_status(status, &body);
        e.message = format!("the gateway refused the SMS: {}", e.message);
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A text with everything that could break out of where it stands.
    const NASTY: &str = "a\"b\\c\nd&e=f?g#h/i j+k%l{to}\u{7}é";

    fn values(text: &str) -> Values<'_> {
        Values {
            to: "+15550100",
            text,
            token: "s3cr&t",
            incident: "42".into(),
            page_id: "7".into(),
        }
    }

    fn config(toml_text: &str) -> HttpSmsConfig {
        toml::from_str(toml_text).expect("valid http_sms config")
    }

    #[test]
    fn only_known_placeholders_are_replaced() {
        let t = Template::parse(r#"{"to": "{to}", "n": {incident}, "x": "{nope}"}"#);
        assert_eq!(
            t.render(&values("hi"), Place::Json),
            r#"{"to": "+15550100", "n": 42, "x": "{nope}"}"#
        );
    }

    #[test]
    fn a_quote_or_newline_in_the_text_cannot_break_the_json_body() {
        let t = Template::parse(r#"{"to": "{to}", "text": "{text}"}"#);
        let s = t.render(&values(NASTY), Place::Json);
        let v: serde_json::Value = serde_json::from_str(&s).expect("still valid JSON");
        assert_eq!(v["text"], NASTY, "the text arrives intact, as one string");
        assert_eq!(v.as_object().unwrap().len(), 2, "no field was added: {s}");
        assert!(!s.contains('\n'), "{s}");
    }

    #[test]
    fn an_ampersand_in_the_text_cannot_add_a_form_field() {
        let cfg = config(
            r#"
url = "http://gw.test/send"
body = { form = { to = "{to}", text = "{text}" } }
"#,
        );
        let n = HttpSmsNotifier::new(&cfg, None).unwrap();
        let (ct, body) = n.render(&values(NASTY)).unwrap().body.unwrap();
        assert_eq!(ct, "application/x-www-form-urlencoded");
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(fields.len(), 2, "{body}");
        assert_eq!(fields["text"], NASTY);
        assert_eq!(fields["to"], "+15550100");
    }

    #[test]
    fn url_values_are_percent_encoded_so_they_stay_one_parameter() {
        let cfg = config(r#"url = "http://gw.test/sms/{to}?text={text}&key={token}""#);
        let n = HttpSmsNotifier::new(&cfg, Some(Secret::new("s3cr&t"))).unwrap();
        let url = n.render(&values(NASTY)).unwrap().url;
        assert_eq!(url.path(), "/sms/%2B15550100");
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q,
            vec![
                ("text".to_string(), NASTY.to_string()),
                ("key".to_string(), "s3cr&t".to_string())
            ]
        );
        assert!(url.fragment().is_none());
    }

    #[test]
    fn headers_lose_control_characters_so_no_header_can_be_added() {
        let cfg = config(
            r#"
url = "http://gw.test/send"
headers = { Authorization = "Bearer {token}", X-Text = "{text}" }
"#,
        );
        let n = HttpSmsNotifier::new(&cfg, Some(Secret::new("tok\r\nX-Evil: 1"))).unwrap();
        let mut v = values("line1\r\nX-Injected: yes");
        v.token = "tok\r\nX-Evil: 1";
        let headers = n.render(&v).unwrap().headers;
        assert_eq!(headers.len(), 2);
        for (name, value) in &headers {
            let s = value.to_str().unwrap();
            assert!(!s.contains('\r') && !s.contains('\n'), "{name}: {s:?}");
        }
        assert_eq!(headers[0].1, "Bearer tokX-Evil: 1");
    }

    #[test]
    fn a_template_that_cannot_work_is_refused_when_built() {
        let token_missing = config(r#"url = "http://gw.test/send?key={token}""#);
        let e = HttpSmsNotifier::new(&token_missing, None).err().unwrap();
        assert!(e.message.contains("{token}"), "{}", e.message);

        let text_outside_a_string = config(
            r#"
url = "http://gw.test/send"
body = { json = '{"text": {text}}' }
"#,
        );
        let e = HttpSmsNotifier::new(&text_outside_a_string, None)
            .err()
            .unwrap();
        assert!(e.message.contains("valid JSON"), "{}", e.message);

        let bad_header = config(
            r#"
url = "http://gw.test/send"
headers = { "Bad Header" = "x" }
"#,
        );
        assert!(HttpSmsNotifier::new(&bad_header, None).is_err());
    }

    #[test]
    fn success_is_any_2xx_unless_listed() {
        let any = HttpSmsNotifier::new(&config(r#"url = "http://gw.test/""#), None).unwrap();
        assert!(any.succeeded(reqwest::StatusCode::OK));
        assert!(any.succeeded(reqwest::StatusCode::ACCEPTED));
        assert!(!any.succeeded(reqwest::StatusCode::FOUND));
        let listed = HttpSmsNotifier::new(
            &config(
                r#"
url = "http://gw.test/"
success_status = [202]
"#,
            ),
            None,
        )
        .unwrap();
        assert!(listed.succeeded(reqwest::StatusCode::ACCEPTED));
        assert!(!listed.succeeded(reqwest::StatusCode::OK));
    }
}
