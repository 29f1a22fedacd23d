//! `GET|POST /hooks/sms/kannel`: the query, the headers Kannel's post-url sets and the
//! body, each as a stranger might send them.
#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use tocsin::http::kannel_inbound::read_request;
use tocsin_fuzz::split_at_byte;

fuzz_target!(|data: &[u8]| {
    let (query, rest) = split_at_byte(data, b'\n');
    let (content_type, rest) = split_at_byte(rest, b'\n');
    let (from, rest) = split_at_byte(rest, b'\n');
    let (coding, body) = split_at_byte(rest, b'\n');
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (header::CONTENT_TYPE.as_str(), content_type),
        ("x-kannel-from", from),
        ("x-kannel-coding", coding),
    ] {
        // Only what hyper would have let through as a header value.
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    for body in [None, Some(body)] {
        if let Ok(m) = read_request(query, &headers, body) {
            assert!(!m.from.is_empty(), "a reply without a sender");
            if let Some(id) = &m.id {
                assert!(id.bytes().all(|b| b.is_ascii_graphic()), "{id:?}");
            }
        }
    }
});
