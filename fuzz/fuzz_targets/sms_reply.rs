//! The text and sender of an SMS reply, whichever gateway brought it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::source::sms_reply::{parse, sender_digits};
use tocsin_fuzz::split_at_byte;

fuzz_target!(|data: &[u8]| {
    let (from, text) = split_at_byte(data, b'\n');
    let from = String::from_utf8_lossy(from);
    let text = String::from_utf8_lossy(text);
    if let Ok(command) = parse(&text) {
        let _ = command.incident();
    }
    if let Some(digits) = sender_digits(&from) {
        // Only a phone number is a sender (issue 13, finding 7).
        assert!(
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "{from:?} read as the number {digits:?}"
        );
    }
});
