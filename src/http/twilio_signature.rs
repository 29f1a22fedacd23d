//! `X-Twilio-Signature`: how every request from Twilio (SMS replies, call callbacks) is
//! told from a forgery.
//!
//! Twilio signs each request with base64 of HMAC-SHA1, keyed with the account's auth
//! token, over the full URL it called followed by every POST parameter's name and value,
//! sorted by name. Only a request carrying a valid signature for the named notifier's
//! token is acted on.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tracing::warn;

use super::hooks::read_capped;
use super::{AppState, Live, error};

/// The header Twilio signs its requests in.
const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Why a request from "Twilio" is not acted on.
pub(crate) enum SignedFormError {
    /// No signature, or not the account's: a forgery or a misconfigured `public_url`.
    BadSignature(Box<Response>),
    /// Anything else (unknown notifier, body too large): the response says what.
    Other(Box<Response>),
}

/// The form parameters of a request to `notifier`'s endpoint, once its signature has been
/// checked against that notifier's auth token and the URL under `server.public_url`.
pub(crate) async fn signed_form(
    s: &AppState,
    live: &Live,
    notifier: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, SignedFormError> {
    let Some(token) = live
        .config
        .notifier_secrets
        .get(notifier)
        .and_then(|m| m.get("auth_token"))
    else {
        // The loader requires the token; without it nothing can be verified.
        return Err(SignedFormError::Other(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("twilio notifier {notifier:?} has no auth token"),
        ))));
    };
    let bytes = read_capped(headers, body, s.max_body)
        .await
        .map_err(SignedFormError::Other)?;
    // The URL Twilio was given: ours, as the public sees it, with the query as received.
    let mut url = format!(
        "{}{}",
        live.config.file.server.public_url.trim_end_matches('/'),
        uri.path()
    );
    if let Some(q) = uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(params) = verified_form(token.expose().as_bytes(), &url, &bytes, signature) else {
        warn!(
            notifier,
            path = uri.path(),
            signature_present = !signature.is_empty(),
            "request with a missing or wrong X-Twilio-Signature; refused (is server.public_url the URL Twilio calls?)"
        );
        return Err(SignedFormError::BadSignature(Box::new(error(
            StatusCode::FORBIDDEN,
            "missing or invalid X-Twilio-Signature",
        ))));
    };
    Ok(params)
}

/// The form parameters of `body`, if `signature` is Twilio's for it at `url` under
/// `token`; `None` for a forgery. Public so that the fuzz targets (`fuzz/`) feed it
/// what a stranger could send.
pub fn verified_form(
    token: &[u8],
    url: &str,
    body: &[u8],
    signature: &str,
) -> Option<Vec<(String, String)>> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    signed_by_twilio(token, url, &params, signature).then_some(params)
}

/// The value of form field `name`, if present.
pub(crate) fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Twilio's signature of a form POST: base64(HMAC-SHA1(token, url + name1 value1 + ...)),
/// the parameters sorted by name, then value, each distinct pair once (as Twilio's own
/// validators do).
fn signing_mac(token: &[u8], url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(token).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// Whether `signature` (the header's base64) is Twilio's for this request, compared in
/// constant time. The URL is tried as given and with the scheme's default port added or
/// removed, since Twilio signs whichever form was configured in its console.
fn signed_by_twilio(token: &[u8], url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(sig) = BASE64.decode(signature.trim()) else {
        return false;
    };
    if sig.is_empty() {
        return false;
    }
    url_forms(url)
        .iter()
        .any(|u| signing_mac(token, u, params).verify_slice(&sig).is_ok())
}

/// `url`, and the same URL with its scheme's default port toggled (`:443` for https,
/// `:80` for http): added when absent, removed when present.
fn url_forms(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    // A colon after the last `]` (IPv6 literal) starts the port.
    let host_end = authority
        .rfind(':')
        .filter(|&i| !authority[i..].contains(']'));
    match host_end {
        Some(i) if authority[i + 1..] == *default => {
            out.push(format!("{scheme}://{}{tail}", &authority[..i]));
        }
        Some(_) => {}
        None => out.push(format!("{scheme}://{authority}:{default}{tail}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sign(token: &str, url: &str, p: &[(String, String)]) -> String {
        BASE64.encode(
            signing_mac(token.as_bytes(), url, p)
                .finalize()
                .into_bytes(),
        )
    }

    /// The example of Twilio's webhook-security docs and of its SDKs' tests.
    const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const DOC_SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn doc_params() -> Vec<(String, String)> {
        // Deliberately not in sorted order: the algorithm sorts.
        params(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ])
    }

    #[test]
    fn the_signature_matches_twilios_documented_example() {
        assert_eq!(sign("12345", DOC_URL, &doc_params()), DOC_SIGNATURE);
        assert!(signed_by_twilio(
            b"12345",
            DOC_URL,
            &doc_params(),
            DOC_SIGNATURE
        ));
    }

    #[test]
    fn a_repeated_parameter_is_signed_sorted_and_once_as_twilios_sdks_do() {
        let p = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(sign("12345", DOC_URL, &p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn a_tampered_request_fails_the_check() {
        let mut tampered = doc_params();
        tampered[0].1 = "9999".into();
        assert!(!signed_by_twilio(
            b"12345",
            DOC_URL,
            &tampered,
            DOC_SIGNATURE
        ));
        let mut added = doc_params();
        added.push(("Body".into(), "1A".into()));
        assert!(!signed_by_twilio(b"12345", DOC_URL, &added, DOC_SIGNATURE));
        let other_url = format!("{DOC_URL}&x=1");
        assert!(!signed_by_twilio(
            b"12345",
            &other_url,
            &doc_params(),
            DOC_SIGNATURE
        ));
        assert!(!signed_by_twilio(
            b"54321",
            DOC_URL,
            &doc_params(),
            DOC_SIGNATURE
        ));
        for forged in ["", "not base64!", "AAAA", "RSOYDt4T1cUTdK1PDd93/VVr8B8"] {
            assert!(
                !signed_by_twilio(b"12345", DOC_URL, &doc_params(), forged),
                "{forged:?}"
            );
        }
    }

    #[test]
    fn the_default_port_may_be_written_or_not() {
        let p = params(&[("Body", "1A")]);
        let with_port = sign("t0k", "https://a.example:443/hooks/sms/twilio/sms", &p);
        assert!(signed_by_twilio(
            b"t0k",
            "https://a.example/hooks/sms/twilio/sms",
            &p,
            &with_port
        ));
        let without = sign("t0k", "http://a.example/x?y=1", &p);
        assert!(signed_by_twilio(
            b"t0k",
            "http://a.example:80/x?y=1",
            &p,
            &without
        ));
        assert_eq!(
            url_forms("https://[::1]:8443/x"),
            vec!["https://[::1]:8443/x".to_string()]
        );
        assert_eq!(
            url_forms("https://[::1]/x"),
            vec![
                "https://[::1]/x".to_string(),
                "https://[::1]:443/x".to_string()
            ]
        );
    }
}
