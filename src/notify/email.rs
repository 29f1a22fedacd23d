//! `type = "email"`: a page as a mail (plain text and HTML alternatives) through an
//! SMTP relay.
//!
//! One connection per page (pages are rare and a relay may drop idle connections), so
//! a relay that restarts between two pages costs nothing. Everything from an alert is
//! cleaned of CR/LF and control characters before it reaches a header, and HTML-escaped
//! before it reaches the HTML part. The subject starts with the incident id and every
//! mail about one incident carries the same `References`, so mail clients thread them.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::Severity;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::{clean, kind_word};
use super::{Message, Notifier, NotifyError};
use crate::config::{EmailConfig, Secret, SmtpSecurity};
use crate::engine::IncidentState;
use crate::html::html_escape;
use crate::store::IncidentView;

/// Longest subject, in characters; the headline of a bundle lists many incidents.
const MAX_SUBJECT: usize = 200;

/// Longest text taken from one label, annotation or title into the HTML part.
const MAX_FIELD: usize = 1000;

/// Alerts listed per incident, as in [`Message::body_text`].
const ALERTS_SINGLE: usize = 50;
const ALERTS_BUNDLE: usize = 3;

pub struct EmailNotifier {
    /// Connects, upgrades to TLS and logs in anew for every page.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The From header (and envelope sender).
    from: Mailbox,
    /// `smtp://host:port` without credentials, for error messages.
    relay: String,
    /// The user that logs in, to name it when the relay refuses the login.
    username: Option<String>,
    /// Bound on one whole send: connect, TLS, AUTH, the mail and its DATA.
    timeout: Duration,
}

impl EmailNotifier {
    pub fn new(cfg: &EmailConfig, password: Option<Secret>) -> Result<Self, NotifyError> {
        let relay = cfg.relay().map_err(NotifyError::permanent)?;
        let from = cfg.mailbox().map_err(NotifyError::permanent)?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_string()).map_err(|e| {
                NotifyError::permanent(format!("cannot set up TLS for {}: {e}", cfg.smtp_url))
            })
        };
        let tls = match relay.security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls(&relay.host)?),
            SmtpSecurity::Implicit => Tls::Wrapper(tls(&relay.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host)
            .port(relay.port)
            .tls(tls)
            .timeout(Some(cfg.connect_timeout.0));
        match (&cfg.username, password) {
            (Some(user), Some(pass)) => {
                builder =
                    builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
            }
            (Some(user), None) => {
                return Err(NotifyError::permanent(format!(
                    "username {user:?} is set but no password: add password_file or password_env"
                )));
            }
            (None, Some(_)) => {
                return Err(NotifyError::permanent(
                    "a password is set but no username: add username, or drop the password",
                ));
            }
            (None, None) => {}
        }
        let scheme = if relay.security == SmtpSecurity::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        Ok(EmailNotifier {
            transport: builder.build(),
            from,
            relay: format!("{scheme}://{}:{}", relay.host, relay.port),
            username: cfg.username.clone(),
            timeout: cfg.timeout.0,
        })
    }

    /// The mail for `msg` to `to`.
    fn build(&self, msg: &Message, to: Mailbox) -> Result<lettre::Message, NotifyError> {
        let domain = self.from.email.domain();
        let ids = msg
            .items()
            .map(|(_, i)| thread_id(i, domain))
            .collect::<Vec<_>>()
            .join(" ");
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(msg))
            // The same page sent again (a retry whose answer was lost, a re-send after a
            // restart) keeps its Message-ID, so mail systems can drop the duplicate.
            .message_id(Some(format!(
                "<page-{}.{}@{domain}>",
                msg.page.id,
                secs(&msg.incident)
            )))
            .in_reply_to(thread_id(&msg.incident, domain))
            .references(ids)
            // RFC 3834: vacation responders must not answer a page.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Tocsin-Incident"),
                msg.incident.id.to_string(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                text_body(msg),
                html_body(msg),
            ))
            .map_err(|e| NotifyError::permanent(format!("cannot build the mail: {e}")))
    }

    /// Says what went wrong with the relay, and whether another attempt may pass.
    fn classify(&self, e: &lettre::transport::smtp::Error, to: &str) -> NotifyError {
        let relay = &self.relay;
        if let Some(code) = e.status() {
            let auth = matches!(code.to_string().as_str(), "530" | "534" | "535" | "538");
            let kind = if auth {
                super::FailureKind::Auth
            } else {
                super::FailureKind::Smtp(code.to_string().parse().unwrap_or(0))
            };
            let msg = match (&self.username, auth) {
                (Some(user), true) => format!(
                    "SMTP relay {relay} refused the login of {user:?}: {e}; check username \
                     and the password in password_file/password_env"
                ),
                (None, true) => format!(
                    "SMTP relay {relay} requires a login: {e}; set username and password_file"
                ),
                _ => format!("SMTP relay {relay} refused mail to {to}: {e}"),
            };
            let transient = code.severity == Severity::TransientNegativeCompletion;
            return NotifyError::new(kind, transient, msg);
        }
        if e.is_client() {
            // Our side cannot do what the relay asks (no common AUTH mechanism, a bad
            // envelope): the next attempt would fail the same way.
            return NotifyError::permanent(format!(
                "cannot send through SMTP relay {relay}: {e} (many relays offer AUTH only \
                 after STARTTLS: try ?tls=starttls or smtps://)"
            ));
        }
        // Refused or reset connections, timeouts, TLS handshakes, garbled replies.
        let kind = if e.is_timeout() {
            super::FailureKind::Timeout
        } else if e.is_tls() {
            super::FailureKind::Tls
        } else {
            super::FailureKind::Refused
        };
        NotifyError::new(
            kind,
            true,
            format!("cannot talk to SMTP relay {relay}: {e}"),
        )
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    /// Connects, says EHLO (and STARTTLS or TLS as configured), and quits: the relay
    /// answers without a mail being sent.
    async fn check(&self) -> Result<String, NotifyError> {
        let relay = &self.relay;
        match tokio::time::timeout(self.timeout, self.transport.test_connection()).await {
            Ok(Ok(true)) => Ok(format!("{relay} answered EHLO")),
            Ok(Ok(false)) => Err(NotifyError::transient(format!(
                "{relay} accepted the connection but did not answer EHLO"
            ))),
            Ok(Err(e)) => Err(NotifyError::transient(format!(
                "cannot talk to SMTP relay {relay}: {e}"
            ))),
            Err(_) => Err(NotifyError::transient(format!(
                "{relay} did not answer within {}s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let Some(to) = msg.page.to.as_deref() else {
            return Err(NotifyError::permanent(format!(
                "no mail address for {:?}: the email notifier sends to the `to` of a \
                 contact method, like {{ notifier = {:?}, to = \"alice@example.com\" }}",
                msg.page.target, msg.page.notifier
            )));
        };
        let to_clean = clean(to);
        let mailbox: Mailbox = to_clean.parse().map_err(|e| {
            NotifyError::permanent(format!(
                "{to_clean:?} is not a mail address ({e}): fix `to` of {:?}'s method",
                msg.page.target
            ))
        })?;
        let mail = self.build(msg, mailbox)?;
        match tokio::time::timeout(self.timeout, self.transport.send(mail)).await {
            Ok(Ok(_)) => Ok(super::Sent::Delivered),
            Ok(Err(e)) => Err(self.classify(&e, &to_clean)),
            Err(_) => Err(NotifyError::transient(format!(
                "SMTP relay {} did not take the mail to {to_clean} within {} (timeout)",
                self.relay,
                crate::time::human(self.timeout)
            ))),
        }
    }
}

/// A stable id for an incident's mails to refer to, so clients thread them; the
/// creation time keeps incident 1 of a fresh install apart from an old incident 1.
fn thread_id(i: &IncidentView, domain: &str) -> String {
    format!("<incident-{}.{}@{domain}>", i.id, secs(i))
}

/// When the incident was created, in whole seconds.
fn secs(i: &IncidentView) -> i64 {
    i.created_at.0.max(0) / 1000
}

/// The headline on one line, without control characters, at most [`MAX_SUBJECT`] chars.
fn subject(msg: &Message) -> String {
    bounded(&clean(&msg.headline()), MAX_SUBJECT)
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Alert text for the HTML part: cleaned, bounded, escaped.
fn esc(s: &str) -> String {
    html_escape(&bounded(&clean(s), MAX_FIELD))
}

/// `a=b, c=d` on one line.
fn labels_line(i: &IncidentView) -> String {
    i.labels
        .iter()
        .map(|(k, v)| format!("{}={}", clean(k), clean(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shared plain text, then the labels of every incident.
fn text_body(msg: &Message) -> String {
    let mut s = msg.body_text();
    s.push('\n');
    for (_, inc) in msg.items() {
        if msg.is_bundle() {
            s.push_str(&format!("Labels of #{}: {}\n", inc.id, labels_line(inc)));
        } else {
            s.push_str(&format!("Labels: {}\n", labels_line(inc)));
        }
    }
    s
}

/// The same content as [`text_body`] as HTML with inline styles (mail clients drop
/// style sheets), every interpolated string escaped, and the ack link as a button.
fn html_body(msg: &Message) -> String {
    let ack = html_escape(&msg.ack_url);
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html>\n<html lang=\"en\">\n\
         <head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1b1b1b;\
         line-height:1.45;max-width:42rem;margin:0 auto;padding:1rem\">\n",
        html_escape(&subject(msg))
    ));
    if msg.wants_ack() {
        h.push_str(&format!(
            "<p><a href=\"{ack}\" style=\"display:inline-block;padding:.7rem 1.4rem;\
             background:#c62828;color:#ffffff;text-decoration:none;border-radius:.4rem;\
             font-weight:bold\">Acknowledge</a></p>\n"
        ));
    }
    let limit = if msg.is_bundle() {
        ALERTS_BUNDLE
    } else {
        ALERTS_SINGLE
    };
    for (page, inc) in msg.items() {
        let color = match inc.state {
            IncidentState::Triggered => "#c62828",
            IncidentState::Acknowledged => "#f9a825",
            IncidentState::Resolved => "#2e7d32",
        };
        h.push_str(&format!(
            "<div style=\"border:1px solid #cccccc;border-left:.4rem solid {color};\
             border-radius:.4rem;padding:.6rem .8rem;margin:.8rem 0\">\n\
             <h2 style=\"font-size:1.2rem;margin:0 0 .4rem\">[#{}] {} {}</h2>\n\
             <p style=\"margin:.2rem 0\">state: <b>{}</b>; {}/{} alerts firing; step {} ({})</p>\n",
            inc.id,
            kind_word(page.kind),
            esc(&inc.title),
            inc.state.as_str(),
            inc.alerts_firing,
            inc.alerts_total,
            page.step,
            esc(&page.reason),
        ));
        if let Some(ms) = page.late_by_ms {
            h.push_str(&format!(
                "<p style=\"margin:.2rem 0;color:#c62828\"><b>LATE by {}</b> (tocsin was down \
                 when it came due)</p>\n",
                crate::time::human(Duration::from_millis(ms))
            ));
        }
        if !inc.labels.is_empty() {
            h.push_str(
                "<table style=\"border-collapse:collapse;margin:.4rem 0;font-size:.9rem\">\n",
            );
            for (k, v) in &inc.labels {
                h.push_str(&format!(
                    "<tr><td style=\"padding:0 .8rem 0 0;color:#555555\">{}</td>\
                     <td><code>{}</code></td></tr>\n",
                    esc(k),
                    esc(v)
                ));
            }
            h.push_str("</table>\n");
        }
        h.push_str("<ul style=\"margin:.4rem 0;padding-left:1.2rem\">\n");
        for a in inc.alerts.iter().take(limit) {
            h.push_str(&format!(
                "<li><b>{}</b> {}",
                a.status.as_str(),
                esc(&a.summary())
            ));
            if let Some(d) = a.annotations.get("description") {
                h.push_str(&format!(
                    "<br><span style=\"color:#555555\">{}</span>",
                    esc(d)
                ));
            }
            // Only web links: a `javascript:` URL from an alert must not become clickable.
            let g = clean(&a.generator_url);
            if g.starts_with("https://") || g.starts_with("http://") {
                h.push_str(&format!(" <a href=\"{}\">source</a>", esc(&g)));
            }
            h.push_str("</li>\n");
        }
        if inc.alerts_total as usize > inc.alerts.len().min(limit) {
            h.push_str("<li>...</li>\n");
        }
        h.push_str("</ul>\n</div>\n");
    }
    if msg.wants_ack() {
        h.push_str(&format!(
            "<p style=\"color:#555555;font-size:.9rem\">Opening the link shows the incident; \
             it is acknowledged only when you press the button there. Link: \
             <a href=\"{ack}\">{ack}</a></p>\n"
        ));
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::types::HumanDuration;
    use crate::engine::{AlertStatus, PageKind};
    use crate::notify::message::fixtures;
    use crate::store::AlertView;

    /// Page 7 to alice@example.com about incident 42 with one alert carrying `summary`
    /// (and a generator URL no mail may turn into a link).
    fn message(title: &str, summary: &str) -> Message {
        let mut m = fixtures::message(42, PageKind::Triggered, title);
        m.page.id = 7;
        m.page.notifier = "mail".into();
        m.page.to = Some("alice@example.com".into());
        m.ack_url = "https://tocsin.example/ack/abc".into();
        let at = m.incident.created_at;
        let labels = BTreeMap::from([
            ("alertname".to_string(), "DiskFull".to_string()),
            ("instance".to_string(), "db1".to_string()),
        ]);
        m.incident.group_key = "{}:{alertname=\"DiskFull\"}".into();
        m.incident.labels = BTreeMap::from([("alertname".to_string(), "DiskFull".to_string())]);
        m.incident.alerts = vec![AlertView {
            fingerprint: "0123456789abcdef".into(),
            status: AlertStatus::Firing,
            starts_at: at,
            ends_at: None,
            labels,
            annotations: BTreeMap::from([("summary".to_string(), summary.to_string())]),
            generator_url: "javascript:alert(1)".into(),
            received_at: at,
        }];
        m
    }

    fn config(smtp_url: &str) -> EmailConfig {
        EmailConfig {
            smtp_url: smtp_url.into(),
            from: "tocsin <tocsin@example.com>".into(),
            username: None,
            password_file: None,
            password_env: None,
            connect_timeout: HumanDuration::from_secs(2),
            timeout: HumanDuration::from_secs(2),
            max_attempts: 1,
            limits: Default::default(),
        }
    }

    #[test]
    fn a_title_with_crlf_cannot_add_a_bcc_header() {
        let msg = message("DiskFull\r\nBcc: evil@x", "x\r\nBcc: victim@example.com");
        let s = subject(&msg);
        assert!(s.starts_with("[#42] TRIGGERED DiskFull"), "{s}");
        assert!(!s.contains(['\r', '\n']), "{s:?}");

        let notifier = EmailNotifier::new(&config("smtp://127.0.0.1:25"), None).unwrap();
        let mail = notifier
            .build(&msg, "alice@example.com".parse().unwrap())
            .unwrap();
        let raw = String::from_utf8(mail.formatted()).unwrap();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert!(
            headers.contains("In-Reply-To: <incident-42.1795255200@example.com>"),
            "threading header missing: {headers}"
        );
        assert!(
            headers.contains("Message-ID: <page-7.1795255200@example.com>"),
            "a re-sent page must keep its Message-ID: {headers}"
        );
    }

    #[test]
    fn a_bundle_subject_is_bounded() {
        let mut msg = message("DiskFull", "x");
        for n in 0..40 {
            let mut i = msg.clone();
            i.incident.id = 100 + n;
            i.incident.title = "a rather long incident title for a bundle".into();
            msg.more.push(crate::notify::Item {
                page: i.page,
                incident: i.incident,
            });
        }
        let s = subject(&msg);
        assert!(s.starts_with("41 incidents need you: #42 "), "{s}");
        assert!(s.chars().count() <= MAX_SUBJECT, "{} chars", s.len());
    }

    #[test]
    fn markup_in_an_alert_is_escaped_in_the_html_part() {
        let msg = message("<script>alert(1)</script>", "<img src=x onerror=alert(2)>");
        let h = html_body(&msg);
        assert!(!h.contains("<script>"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
        assert!(
            !h.contains("javascript:"),
            "generator URL became a link: {h}"
        );
        assert!(
            h.contains("<a href=\"https://tocsin.example/ack/abc\""),
            "no ack button: {h}"
        );
        assert!(h.contains("alertname") && h.contains("DiskFull"), "{h}");
    }

    /// A relay that answers RCPT TO with `rcpt_reply` and everything else with success.
    async fn scripted_relay(rcpt_reply: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let cmd = line.to_ascii_uppercase();
                let reply = if cmd.starts_with("EHLO") {
                    "250 fake"
                } else if cmd.starts_with("RCPT") {
                    rcpt_reply
                } else if cmd.starts_with("QUIT") {
                    "221 bye"
                } else {
                    "250 ok"
                };
                if w.write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        format!("smtp://{addr}")
    }

    #[tokio::test]
    async fn a_busy_mailbox_is_retried_and_an_unknown_one_is_not() {
        let msg = message("DiskFull", "x");
        let busy = scripted_relay("450 4.2.1 mailbox busy, try later").await;
        let e = EmailNotifier::new(&config(&busy), None)
            .unwrap()
            .send(&msg)
            .await
            .unwrap_err();
        assert!(e.transient, "450 must be retried: {e}");
        assert!(e.message.contains("450"), "{e}");

        let gone = scripted_relay("550 5.1.1 no such user").await;
        let e = EmailNotifier::new(&config(&gone), None)
            .unwrap()
            .send(&msg)
            .await
            .unwrap_err();
        assert!(!e.transient, "550 must fail over at once: {e}");
        assert!(e.message.contains("alice@example.com"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_and_a_page_without_address_is_not() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let n = EmailNotifier::new(&config(&format!("smtp://127.0.0.1:{port}")), None).unwrap();
        let mut msg = message("DiskFull", "x");
        let e = n.send(&msg).await.unwrap_err();
        assert!(e.transient, "{e}");

        msg.page.to = None;
        let e = n.send(&msg).await.unwrap_err();
        assert!(!e.transient && e.message.contains("to = "), "{e}");

        msg.page.to = Some("not an address".into());
        let e = n.send(&msg).await.unwrap_err();
        assert!(!e.transient, "{e}");
    }
}
