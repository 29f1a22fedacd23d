//! `POST /hooks/sms/twilio/{notifier}`: the URL it was called at, the
//! `X-Twilio-Signature` header and the form body, each as a stranger might send them,
//! and the same body correctly signed, as Twilio would send it.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use tocsin::http::twilio_inbound::read_reply;
use tocsin::http::twilio_signature::verified_form;
use tocsin_fuzz::split_at_byte;

const TOKEN: &[u8] = b"12345678901234567890123456789012";

/// Twilio's signature, written from its documentation rather than from tocsin's code.
fn twilio_signs(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(TOKEN).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fuzz_target!(|data: &[u8]| {
    let (url, rest) = split_at_byte(data, b'\n');
    let (signature, body) = split_at_byte(rest, b'\n');
    let url = String::from_utf8_lossy(url);
    let signature = String::from_utf8_lossy(signature);

    let _ = verified_form(TOKEN, &url, body, &signature);

    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let signed = twilio_signs(&url, &params);
    let verified = verified_form(TOKEN, &url, body, &signed);
    assert_eq!(
        verified.as_ref(),
        Some(&params),
        "Twilio's own signature was refused"
    );
    if let Ok(reply) = read_reply(&params) {
        assert!(
            reply.sid.bytes().all(|b| b.is_ascii_graphic()),
            "{:?}",
            reply.sid
        );
    }
    // One more parameter, and the signature no longer holds (Twilio signs each distinct
    // pair once, so a copy of a pair already there changes nothing).
    let extra = ("Body".to_string(), "1A".to_string());
    if !params.contains(&extra) {
        let mut tampered = body.to_vec();
        tampered.extend_from_slice(b"&Body=1A");
        assert!(
            verified_form(TOKEN, &url, &tampered, &signed).is_none(),
            "a signature held for a tampered body"
        );
    }
});
