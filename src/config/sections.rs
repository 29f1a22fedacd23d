//! Pass 2: deserialize each section and each named entry on its own, so one bad entry
//! does not hide another, and every unknown key is reported in one run.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::load::{ConfigError, Loader};
use super::locate::{KeyPath, line_of, path_to_span, remove_key_at};
use super::messages::{unknown_field, unknown_key_message, value_message, with_article};
use super::notifier::{Kind, NotifierConfig, notifier_types};
use super::schema::{
    ConfigFile, ContactConfig, DefaultsConfig, PolicyConfig, RouteConfig, ServerConfig,
    SourcesConfig, StorageConfig,
};

/// The sections `alerts.toml` may have; anything else at the top level is an error.
const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "defaults",
    "notifiers",
    "contacts",
    "policies",
    "rotations",
    "schedules",
    "routes",
    "sources",
    "watchdog",
    "heartbeats",
];

/// What pass 2 produced: the entries that deserialized, and the names that exist at all
/// (so a reference to a broken entry is not reported a second time as dangling).
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) file: ConfigFile,
    /// Original index of each route in `file.routes`.
    pub(super) route_index: Vec<usize>,
    /// Whether `routes` was given at all (a missing or empty list is its own error).
    pub(super) route_count: usize,
    pub(super) notifier_names: BTreeSet<String>,
    pub(super) contact_names: BTreeSet<String>,
    pub(super) policy_names: BTreeSet<String>,
    pub(super) rotation_names: BTreeSet<String>,
    pub(super) schedule_names: BTreeSet<String>,
}

impl<'a, 'i> Loader<'a, 'i> {
    /// Deserializes one entry; reports each unknown key (retrying without it) and the
    /// first other error.
    pub(super) fn entry<T: DeserializeOwned>(
        &mut self,
        at: &KeyPath,
        value: &Spanned<DeValue<'i>>,
    ) -> Option<T> {
        let mut value = value.clone();
        loop {
            let e = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let Some(span) = e.span() else {
                self.err(at, e.message());
                return None;
            };
            let mut path = at.clone();
            path.0
                .extend(path_to_span(value.get_ref(), &span).unwrap_or_default());
            let key_path = path.to_string();
            let message = match unknown_field(e.message()) {
                Some((name, expected)) => unknown_key_message(&name, &expected, &key_path),
                None => value_message(e.message(), &path),
            };
            self.errors.push(ConfigError {
                key_path,
                line: Some(line_of(self.text, span.start)),
                message,
            });
            let retry =
                unknown_field(e.message()).is_some() && remove_key_at(value.get_mut(), &span);
            if !retry {
                return None;
            }
        }
    }

    /// The named entries of a `[section.NAME]` table.
    fn named(&mut self, section: &str) -> Vec<(String, KeyPath, &'a Spanned<DeValue<'i>>)> {
        let at = KeyPath::default().key(section);
        let root: &'a DeValue<'i> = self.root.get_ref();
        let DeValue::Table(root) = root else {
            return Vec::new();
        };
        match root.get(section).map(Spanned::get_ref) {
            None => Vec::new(),
            Some(DeValue::Table(t)) => t
                .iter()
                .map(|(k, v)| (k.get_ref().to_string(), at.key(k.get_ref()), v))
                .collect(),
            Some(other) => {
                let msg = format!(
                    "`{section}` must be a table of named entries, not {}: write [{section}.NAME]",
                    with_article(other.type_str())
                );
                self.err(&at, msg);
                Vec::new()
            }
        }
    }

    /// Pass 2: every section and entry on its own.
    pub(super) fn sections(&mut self) -> Parsed {
        let mut p = Parsed::default();
        let root: &'a DeValue<'i> = self.root.get_ref();
        let DeValue::Table(root) = root else { return p };
        for (k, _) in root.iter() {
            if !SECTIONS.contains(&k.get_ref().as_ref()) {
                let msg = format!(
                    "unknown section `{}` (the sections are: {})",
                    k.get_ref(),
                    SECTIONS.join(", ")
                );
                self.err(&KeyPath::default().key(k.get_ref()), msg);
            }
        }
        let section = |name: &str| root.get(name).map(|v| (KeyPath::default().key(name), v));
        if let Some((at, v)) = section("server") {
            p.file.server = self.entry::<ServerConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("storage") {
            p.file.storage = self.entry::<StorageConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("defaults") {
            p.file.defaults = self.entry::<DefaultsConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("sources") {
            p.file.sources = self.entry::<SourcesConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("watchdog") {
            p.file.watchdog = self
                .entry::<super::watchdog::WatchdogConfig>(&at, v)
                .unwrap_or_default();
        }
        for (name, at, v) in self.named("heartbeats") {
            if let Some(h) = self.entry::<super::watchdog::HeartbeatUrlConfig>(&at, v) {
                p.file.heartbeats.insert(name, h);
            }
        }
        for (name, at, v) in self.named("notifiers") {
            if let Some(n) = self.notifier(&at, v) {
                p.file.notifiers.insert(name.clone(), n);
            }
            p.notifier_names.insert(name);
        }
        for (name, at, v) in self.named("contacts") {
            if let Some(c) = self.entry::<ContactConfig>(&at, v) {
                p.file.contacts.insert(name.clone(), c);
            }
            p.contact_names.insert(name);
        }
        for (name, at, v) in self.named("policies") {
            if let Some(c) = self.entry::<PolicyConfig>(&at, v) {
                p.file.policies.insert(name.clone(), c);
            }
            p.policy_names.insert(name);
        }
        for (name, at, v) in self.named("rotations") {
            if let Some(r) = self.entry::<super::schedules::RotationConfig>(&at, v) {
                p.file.rotations.insert(name.clone(), r);
            }
            p.rotation_names.insert(name);
        }
        for (name, at, v) in self.named("schedules") {
            if let Some(s) = self.entry::<super::schedules::ScheduleConfig>(&at, v) {
                p.file.schedules.insert(name.clone(), s);
            }
            p.schedule_names.insert(name);
        }
        if let Some((at, v)) = section("routes") {
            match v.get_ref() {
                DeValue::Array(routes) => {
                    p.route_count = routes.len();
                    for (i, r) in routes.iter().enumerate() {
                        if let Some(route) = self.entry::<RouteConfig>(&at.index(i), r) {
                            p.file.routes.push(route);
                            p.route_index.push(i);
                        }
                    }
                }
                other => {
                    let msg = format!(
                        "`routes` is a list, not {}: write each route as [[routes]] (double brackets)",
                        with_article(other.type_str())
                    );
                    self.err(&at, msg);
                    p.route_count = 1; // reported already; do not also say "no routes"
                }
            }
        }
        p
    }

    /// Notifiers are read by hand (not through the `type`-tagged enum) so that errors
    /// inside one keep their spans and an unknown `type` gets a useful answer.
    fn notifier(&mut self, at: &KeyPath, v: &Spanned<DeValue<'i>>) -> Option<NotifierConfig> {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(
                at,
                format!(
                    "a notifier is a table, not {}: write [notifiers.NAME] with type = \"log\"",
                    with_article(v.get_ref().type_str())
                ),
            );
            return None;
        };
        let Some(ty) = t.get("type") else {
            self.err(
                at,
                format!(
                    "missing required key `type`: set it to one of {}",
                    notifier_types()
                ),
            );
            return None;
        };
        let Some(ty) = ty.get_ref().as_str() else {
            self.err(
                &at.key("type"),
                format!("`type` is a string, one of {}", notifier_types()),
            );
            return None;
        };
        let mut rest = t.clone();
        rest.remove("type");
        let rest = Spanned::new(v.span(), DeValue::Table(rest));
        match Kind::named(ty) {
            Some(kind) => (kind.read)(self, at, &rest).map(|c| NotifierConfig::new(kind, c)),
            None => {
                let msg = format!(
                    "unknown notifier type {ty:?}: the types are {}",
                    notifier_types()
                );
                self.err(&at.key("type"), msg);
                None
            }
        }
    }
}
