//! `GET|POST /ack/{token}` and the web session cookies: a token as a stranger might
//! write it, and a payload signed with the key (so that what follows the MAC check is
//! reached too), must each be refused or read, never panic, and a link tocsin signs
//! must read back as signed.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use tocsin::ack_link::{AckKey, Claims};
use tocsin::time::Timestamp;

const KEY: [u8; 32] = [7; 32];

/// A token for `payload` under [`KEY`], as the link format is documented: base64url of
/// the payload, a dot, base64url of the first 16 bytes of its HMAC-SHA256.
fn signed(payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).unwrap();
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(&full[..16])
    )
}

fuzz_target!(|data: &[u8]| {
    let key = AckKey::from_bytes(KEY);
    let now = Timestamp::at("2026-11-21T20:00:00Z");
    let token = String::from_utf8_lossy(data);
    let _ = key.verify(&token, now);
    let _ = key.verify_value("session", &token, now);
    let _ = AckKey::token_id(&token);

    let forged = signed(data);
    if let Ok(claims) = key.verify(&forged, now) {
        assert!(!claims.incidents.is_empty());
        assert!(claims.expires > now, "an expired link was accepted");
    }
    if let Some((_, expires)) = key.verify_value("session", &forged, now) {
        assert!(expires > now, "an expired session was accepted");
    }

    // Claims made from the input: what tocsin signs, it reads back.
    let contact: String = token.chars().filter(|c| *c != '|').take(32).collect();
    let incidents: Vec<u64> = data
        .chunks(8)
        .take(16)
        .map(|c| c.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
        .collect();
    if !incidents.is_empty() {
        let claims = Claims {
            incidents,
            contact: (!contact.is_empty()).then_some(contact),
            expires: Timestamp(now.millis() + 3_600_000),
        };
        let back = key
            .verify(&key.sign(&claims), now)
            .expect("a signed link is read back");
        assert_eq!(back, claims);
    }
});
