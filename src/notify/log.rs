//! `type = "log"`: pages printed to stderr, so a fresh install pages somewhere with no
//! servers at all.

use std::io::Write;

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};

pub struct LogNotifier {
    /// Where lines go; stderr in the daemon, a buffer in tests.
    out: std::sync::Mutex<Box<dyn Write + Send>>,
}

impl LogNotifier {
    pub fn stderr() -> Self {
        LogNotifier {
            out: std::sync::Mutex::new(Box::new(std::io::stderr())),
        }
    }

    pub fn to_writer(w: Box<dyn Write + Send>) -> Self {
        LogNotifier {
            out: std::sync::Mutex::new(w),
        }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn kind(&self) -> &'static str {
        "log"
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let to = match (&msg.page.contact, &msg.page.to) {
            (Some(c), Some(to)) => format!("{c} <{to}>"),
            (Some(c), None) => c.clone(),
            (None, _) => msg.page.target.clone(),
        };
        let line = format!("PAGE {to}: {}\n", msg.one_line());
        let mut out = self
            .out
            .lock()
            .map_err(|_| NotifyError::permanent("log output lock poisoned"))?;
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| NotifyError::transient(format!("cannot write the page to stderr: {e}")))?;
        Ok(super::Sent::Delivered)
    }
}
