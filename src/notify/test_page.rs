//! `tocsin test-notify CONTACT [--via NOTIFIER]`: a real test page through each of a
//! contact's methods (or through one notifier), with the outcome of each.
//!
//! It runs without the daemon, straight from alerts.toml, so it also works when the
//! daemon is down, which is when one most wants to know whether paging works.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{BuildContext, Message, NotifierEntry, build_all};
use crate::config::Config;
use crate::engine::{IncidentState, Page, PageKind};
use crate::store::IncidentView;
use crate::time::{Clock, SystemClock};

/// How one test page went.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub notifier: String,
    pub kind: &'static str,
    pub to: Option<String>,
    pub took: Duration,
    /// `None` when delivered.
    pub error: Option<String>,
    /// A call placed (its id): it is confirmed by answering it and pressing 4.
    pub placed: Option<String>,
}

impl std::fmt::Display for TestResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = self
            .to
            .as_deref()
            .map(|t| format!(" to {t}"))
            .unwrap_or_default();
        match &self.error {
            None if self.placed.is_some() => write!(
                f,
                "ok      {} ({}){to}: call placed in {:.1} s ({}); answer it and press 4, the daemon confirms",
                self.notifier,
                self.kind,
                self.took.as_secs_f64(),
                self.placed.as_deref().unwrap_or_default()
            ),
            None => write!(
                f,
                "ok      {} ({}){to}: delivered in {:.1} s",
                self.notifier,
                self.kind,
                self.took.as_secs_f64()
            ),
            Some(e) => write!(
                f,
                "FAILED  {} ({}){to} after {:.1} s: {e}",
                self.notifier,
                self.kind,
                self.took.as_secs_f64()
            ),
        }
    }
}

/// What to test: the methods of `target` (a contact), or `target` itself (a notifier).
fn plan(cfg: &Config, target: &str, via: Option<&str>) -> Result<Vec<Page>, String> {
    let page = |i: usize,
                notifier: &str,
                to: Option<&String>,
                topic: Option<&String>,
                contact: Option<&str>| Page {
        id: 0,
        incident: 0,
        at: SystemClock.now(),
        kind: PageKind::Test,
        step: 0,
        cycle: 0,
        target: target.to_string(),
        contact: contact.map(str::to_string),
        notifier: notifier.to_string(),
        method: contact.map(|_| i as u32),
        to: to.cloned(),
        topic: topic.cloned(),
        late_by_ms: None,
        reason: "test page (tocsin test-notify)".to_string(),
        retry_until: None,
        hold_until: None,
    };
    if let Some(c) = cfg.file.contacts.get(target) {
        let pages: Vec<Page> = c
            .methods
            .iter()
            .enumerate()
            .filter(|(_, m)| via.is_none_or(|v| v == m.notifier))
            .map(|(i, m)| {
                page(
                    i,
                    &m.notifier,
                    m.to.as_ref(),
                    m.topic.as_ref(),
                    Some(target),
                )
            })
            .collect();
        if pages.is_empty() {
            return Err(match via {
                Some(v) => format!("contact {target} has no method through notifier {v:?}"),
                None => format!("contact {target} has no methods"),
            });
        }
        return Ok(pages);
    }
    if cfg.file.notifiers.contains_key(target) {
        return Ok(vec![page(0, target, None, None, None)]);
    }
    let names: Vec<&String> = cfg
        .file
        .contacts
        .keys()
        .chain(cfg.file.notifiers.keys())
        .collect();
    Err(format!(
        "{target:?} is neither a contact nor a notifier in {} (there are: {})",
        cfg.path
            .as_ref()
            .map_or("the config".into(), |p| p.display().to_string()),
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn test_incident() -> IncidentView {
    IncidentView::about_tocsin(
        "Test page from tocsin: paging works".to_string(),
        "tocsin-test",
        IncidentState::Triggered,
        SystemClock.now(),
    )
}

/// Sends one test page per planned method, one attempt each, and reports every outcome.
pub async fn test_notify(
    cfg: &Config,
    target: &str,
    via: Option<&str>,
) -> Result<Vec<TestResult>, String> {
    let pages = plan(cfg, target, via)?;
    let notifiers: BTreeMap<String, NotifierEntry> = build_all(
        cfg,
        &BuildContext {
            public_url: cfg.file.server.public_url.clone(),
            ..BuildContext::offline()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for page in pages {
        let entry = &notifiers[&page.notifier];
        let msg = Message {
            ack_url: format!("{}/", cfg.file.server.public_url.trim_end_matches('/')),
            incident: test_incident(),
            more: Vec::new(),
            page: page.clone(),
        };
        let started = Instant::now();
        let r = entry.notifier.send(&msg).await;
        out.push(TestResult {
            notifier: page.notifier.clone(),
            kind: entry.notifier.kind(),
            to: page.to.clone().or(page.topic.clone()),
            took: started.elapsed(),
            placed: match &r {
                Ok(super::Sent::Placed { reference }) => Some(reference.clone()),
                _ => None,
            },
            error: r.err().map(|e| {
                format!(
                    "{} ({})",
                    e.message,
                    if e.transient {
                        "transient: may work on retry"
                    } else {
                        "permanent: fix the config or address"
                    }
                )
            }),
        });
    }
    Ok(out)
}
