//! Pass 3: the checks that need more than one entry, or the outside world: the shared name
//! space, references, step order, matchers, addresses, (through `secrets.rs`) secrets, and
//! each notifier built offline ([`crate::notify::build`]) and dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::IrcSecrets;
use super::irc::is_channel;
use super::load::Loader;
use super::locate::{KeyPath, line_of, span_of};
use super::notifier::IrcNotifierConfig;
use super::schema::{AlertmanagerSourceConfig, BasicAuthConfig, ServerConfig, TokenConfig};
use super::sections::Parsed;
use super::types::Secret;
use super::{BASIC_AUTH, Credential, HookAuth, MASTER_TOKEN, Presented, Route, Scope, Scopes};
use crate::engine::Matcher;
use crate::notify::BuildContext;

impl Loader<'_, '_> {
    /// Pass 3: everything that needs more than one entry, or the outside world.
    pub(super) fn check(
        &mut self,
        p: &Parsed,
    ) -> (
        HookAuth,
        BTreeMap<String, BTreeMap<&'static str, Secret>>,
        Vec<Route>,
    ) {
        self.check_names(p);
        self.check_contacts(p);
        self.check_policies(p);
        let routes = self.check_routes(p);
        let hook_auth = self.check_server(&p.file.server);
        self.check_watchdog(p);
        self.check_storage(p);
        let mut secrets = BTreeMap::new();
        for (name, n) in &p.file.notifiers {
            let at = KeyPath::default().key("notifiers").key(name);
            let errors_before = self.errors.len();
            for problem in n.problems() {
                self.err(&at.key(problem.key), problem.message);
            }
            let mut mine = BTreeMap::new();
            for r in n.secrets() {
                match self.secret(&at, r.base, r.file, r.env) {
                    Some(s) => {
                        mine.insert(r.base, s);
                    }
                    None if r.required && r.file.is_none() && r.env.is_none() => {
                        let msg = format!(
                            "a {} notifier needs {base}_file (a file holding it) or {base}_env (an environment variable)",
                            n.type_name(),
                            base = r.base
                        );
                        self.err(&at.key(&format!("{}_file", r.base)), msg);
                    }
                    None => {}
                }
            }
            // What only the notifier can judge (a template that renders no request, a TLS
            // setup): it is built here as the daemon builds it, without the network, and
            // dropped. Only a notifier that is otherwise fine, so nothing is said twice.
            if self.errors.len() == errors_before
                && let Err(e) = crate::notify::build(name, n, &mine, &BuildContext::offline(), None)
            {
                self.err(&at, e.message);
            }
            secrets.insert(name.clone(), mine);
        }
        if let Some(AlertmanagerSourceConfig {
            heartbeat: Some(hb),
            ..
        }) = &p.file.sources.alertmanager
        {
            let at = KeyPath::default()
                .key("sources")
                .key("alertmanager")
                .key("heartbeat");
            if hb.alertname.trim().is_empty() {
                self.err(
                    &at.key("alertname"),
                    "alertname is empty: write the always-firing alert's name, like \"Watchdog\"",
                );
            }
            if hb.within.0.is_zero() {
                self.err(
                    &at.key("within"),
                    "within must be more than 0s, like \"10m\"",
                );
            }
        }
        (hook_auth, secrets, routes)
    }

    /// Contacts, notifiers, policies and schedules share one name space (a step names
    /// any of the first, second and last), and names are plain.
    fn check_names(&mut self, p: &Parsed) {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let sections = [
            ("notifiers", &p.notifier_names),
            ("contacts", &p.contact_names),
            ("policies", &p.policy_names),
            ("schedules", &p.schedule_names),
        ];
        for name in &p.rotation_names {
            if !is_plain(name) {
                let at = KeyPath::default().key("rotations").key(name);
                self.err(
                    &at,
                    format!("name {name:?} may only have letters, digits, '_', '.' and '-'"),
                );
            }
        }
        for (section, names) in sections {
            for name in names {
                let at = KeyPath::default().key(section).key(name);
                if !is_plain(name) {
                    self.err(
                        &at,
                        format!("name {name:?} may only have letters, digits, '_', '.' and '-'"),
                    );
                }
                match seen.get(name.as_str()) {
                    Some(first) => {
                        let first_at = KeyPath::default().key(first).key(name);
                        let line = span_of(self.root.get_ref(), &first_at)
                            .map(|s| format!(" (line {})", line_of(self.text, s.start)))
                            .unwrap_or_default();
                        let msg = format!(
                            "name {name:?} is used by both {first_at}{line} and {at}: contacts, notifiers, policies and schedules share one name space, so rename one"
                        );
                        self.err(&at, msg);
                    }
                    None => {
                        seen.insert(name, section);
                    }
                }
            }
        }
    }

    fn check_contacts(&mut self, p: &Parsed) {
        for (name, c) in &p.file.contacts {
            let at = KeyPath::default().key("contacts").key(name);
            if c.methods.is_empty() && c.irc_account.is_none() && c.irc_mask.is_none() {
                self.err(&at, format!("contact {name} has no methods: nobody can be paged; add methods = [{{ notifier = \"...\", to = \"...\" }}]"));
            }
            for (i, m) in c.methods.iter().enumerate() {
                if !p.notifier_names.contains(&m.notifier) {
                    let what = what_is(p, &m.notifier);
                    let msg = format!(
                        "unknown notifier {:?}{what} (notifiers: {})",
                        m.notifier,
                        list(&p.notifier_names)
                    );
                    self.err(&at.key("methods").index(i).key("notifier"), msg);
                } else if let Some(n) = p.file.notifiers.get(&m.notifier) {
                    let m_at = at.key("methods").index(i);
                    if let Err((key, msg)) = n.check_method(m.to.as_deref(), m.topic.as_deref()) {
                        self.err(&m_at.key(key), msg);
                    }
                }
            }
        }
    }

    fn check_policies(&mut self, p: &Parsed) {
        for (name, policy) in &p.file.policies {
            let at = KeyPath::default().key("policies").key(name);
            if policy.steps.is_empty() {
                self.err(&at.key("steps"), "a policy needs at least one step, like { after = \"0s\", notify = [\"oncall\"] }");
                continue;
            }
            for (i, step) in policy.steps.iter().enumerate() {
                let step_at = at.key("steps").index(i);
                if step.notify.is_empty() {
                    self.err(
                        &step_at.key("notify"),
                        "this step notifies nobody: name contacts or notifiers",
                    );
                }
                for (j, target) in step.notify.iter().enumerate() {
                    if !p.contact_names.contains(target)
                        && !p.notifier_names.contains(target)
                        && !p.schedule_names.contains(target)
                    {
                        let what = what_is(p, target);
                        let msg = format!(
                            "unknown contact, schedule or notifier {target:?}{what} (contacts: {}; schedules: {}; notifiers: {})",
                            list(&p.contact_names),
                            list(&p.schedule_names),
                            list(&p.notifier_names)
                        );
                        self.err(&step_at.key("notify").index(j), msg);
                    } else if let Some(n) = p.file.notifiers.get(target)
                        && !n.address().may_be_named_alone()
                    {
                        // Named directly, it has no `to` or `topic` to send to.
                        let msg = format!(
                            "{target:?} is a {} notifier, which needs an address: name a contact whose methods use it instead",
                            n.type_name()
                        );
                        self.err(&step_at.key("notify").index(j), msg);
                    }
                }
                if i > 0 && step.after < policy.steps[i - 1].after {
                    let msg = format!(
                        "after = {:?} is earlier than the previous step's {:?}: `after` is counted from the start of the pass, so steps must not go back in time",
                        step.after,
                        policy.steps[i - 1].after
                    );
                    self.err(&step_at.key("after"), msg);
                }
            }
            let last = policy.steps.last().map(|s| s.after).unwrap_or_default();
            let gap = policy.repeat_after.unwrap_or(last);
            if policy.repeat > 0 && gap.0.is_zero() {
                let (key, why) = match policy.repeat_after {
                    Some(_) => ("repeat_after", "repeat_after is 0s"),
                    None => ("repeat", "the last step's `after` is 0s"),
                };
                let msg = format!(
                    "the policy would repeat with no pause between passes ({why}): set repeat_after to the pause, like \"30m\""
                );
                self.err(&at.key(key), msg);
            }
        }
    }

    fn check_routes(&mut self, p: &Parsed) -> Vec<Route> {
        let at = KeyPath::default().key("routes");
        if p.route_count == 0 {
            self.err(&at, "no routes: add a [[routes]] with policy = \"default\" (a route without matchers catches every incident)");
        }
        let mut routes = Vec::new();
        let mut catch_all: Option<usize> = None;
        for (route, &i) in p.file.routes.iter().zip(&p.route_index) {
            let route_at = at.index(i);
            if let Some(c) = catch_all {
                let msg = format!(
                    "this route is never used: routes[{c}] has no matchers and catches every incident first; move the catch-all route last"
                );
                self.err(&route_at, msg);
            }
            if route.matchers.is_empty() && catch_all.is_none() {
                catch_all = Some(i);
            }
            if !p.policy_names.contains(&route.policy) {
                let what = what_is(p, &route.policy);
                let msg = format!(
                    "unknown policy {:?}{what} (policies: {})",
                    route.policy,
                    list(&p.policy_names)
                );
                self.err(&route_at.key("policy"), msg);
            }
            let mut matchers = Vec::new();
            for (j, m) in route.matchers.iter().enumerate() {
                match Matcher::parse(m) {
                    Ok(m) => matchers.push(m),
                    Err(e) => self.err(&route_at.key("matchers").index(j), e),
                }
            }
            routes.push(Route {
                matchers,
                policy: route.policy.clone(),
            });
        }
        routes
    }

    /// Retention may not delete what the engine still remembers as recently resolved (a
    /// late duplicate must find it), and an incident must keep at least one alert.
    fn check_storage(&mut self, p: &Parsed) {
        let retention = p.file.storage.retention.0;
        if !retention.is_zero() && retention < crate::engine::RECENT_WINDOW {
            let msg = format!(
                "retention = {:?} is shorter than the day tocsin remembers a resolved incident (so that a late duplicate of its alerts does not open a new one): write \"1d\" or more, or \"0s\" to keep everything",
                p.file.storage.retention
            );
            self.err(&KeyPath::default().key("storage").key("retention"), msg);
        }
        if p.file.defaults.max_alerts_per_incident == 0 {
            self.err(
                &KeyPath::default()
                    .key("defaults")
                    .key("max_alerts_per_incident"),
                "max_alerts_per_incident must be at least 1 (an incident keeps its first alerts; the default is 1000)",
            );
        }
    }

    fn check_server(&mut self, s: &ServerConfig) -> HookAuth {
        let at = KeyPath::default().key("server");
        if let Err(e) = s.listen.parse::<SocketAddr>() {
            let msg = format!(
                "listen = {:?} is not IP:PORT ({e}): write it like \"127.0.0.1:9797\" or \"[::]:9797\"",
                s.listen
            );
            self.err(&at.key("listen"), msg);
        }
        if !is_http_url(&s.public_url) {
            let msg = format!(
                "public_url {:?} must start with http:// or https:// (ack links are built from it)",
                s.public_url
            );
            self.err(&at.key("public_url"), msg);
        }
        if s.max_body.0 == 0 {
            self.err(
                &at.key("max_body"),
                "max_body must be more than 0, like \"1MiB\"",
            );
        }
        let mut credentials = Vec::new();
        let master = self.secret(
            &at,
            "auth_token",
            s.auth_token_file.as_deref(),
            s.auth_token_env.as_deref(),
        );
        if let Some(token) = master {
            credentials.push(Credential {
                name: MASTER_TOKEN.to_string(),
                presented: Presented::Bearer(token),
                scopes: Scopes::all(),
            });
        }
        if let Some(b) = &s.basic_auth
            && let Some(presented) = self.basic_auth(&at.key("basic_auth"), b)
        {
            credentials.push(Credential {
                name: BASIC_AUTH.to_string(),
                presented,
                scopes: Scopes::all(),
            });
        }
        for (name, t) in &s.tokens {
            if let Some(c) = self.check_token(&at.key("tokens").key(name), name, t) {
                credentials.push(c);
            }
        }
        // One secret, two entries: which scopes would it have? Refused rather than guessed.
        for (i, a) in credentials.iter().enumerate() {
            if let Some(b) = credentials[..i]
                .iter()
                .find(|b| b.material() == a.material())
            {
                let msg = format!(
                    "{} has the same token as {}: give each its own token (or one entry all the scopes it needs)",
                    a.name, b.name
                );
                self.err(&at.key("tokens"), msg);
            }
        }
        HookAuth { credentials }
    }

    /// A `basic_auth = { username, password_file | password_env }` table at `at`, read;
    /// `None` (with the errors said) when it is incomplete.
    pub(super) fn basic_auth(&mut self, at: &KeyPath, b: &BasicAuthConfig) -> Option<Presented> {
        if b.username.is_empty() {
            self.err(&at.key("username"), "username is empty");
        }
        if b.password_file.is_none() && b.password_env.is_none() {
            self.err(at, "basic_auth needs password_file or password_env");
        }
        let password = self.secret(
            at,
            "password",
            b.password_file.as_deref(),
            b.password_env.as_deref(),
        )?;
        Some(Presented::Basic {
            username: b.username.clone(),
            password,
        })
    }

    /// `[server.tokens.NAME]`: its secret, long enough, and what it may do.
    fn check_token(&mut self, at: &KeyPath, name: &str, t: &TokenConfig) -> Option<Credential> {
        if t.token_file.is_none() && t.token_env.is_none() {
            self.err(
                at,
                "a token needs token_file (a file holding it) or token_env (an environment variable)",
            );
        }
        if t.scopes.is_empty() {
            let msg = format!(
                "scopes is empty: say what the token may do, from {}",
                Scope::ALL.map(Scope::as_str).join(", ")
            );
            self.err(&at.key("scopes"), msg);
        }
        let token = self.secret(at, "token", t.token_file.as_deref(), t.token_env.as_deref())?;
        let len = token.expose().chars().count();
        if len < MIN_TOKEN_CHARS {
            let key = if t.token_file.is_some() {
                "token_file"
            } else {
                "token_env"
            };
            let msg = format!(
                "the token is {len} characters long; a token needs at least {MIN_TOKEN_CHARS}, so that it cannot be guessed: make one with `openssl rand -hex 24`"
            );
            self.err(&at.key(key), msg);
            return None;
        }
        Some(Credential {
            name: format!("server.tokens.{name}"),
            presented: Presented::Bearer(token),
            scopes: t.scopes.iter().copied().collect(),
        })
    }
}

/// The shortest `[server.tokens.*]` token: 16 random characters are beyond guessing at
/// any rate the throttle lets through.
pub(super) const MIN_TOKEN_CHARS: usize = 16;

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty())
}

/// Whether a name is one a reference can be written with.
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub(super) fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none defined".to_string();
    }
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `", which is a contact"` when a reference names the wrong kind of thing.
pub(super) fn what_is(p: &Parsed, name: &str) -> &'static str {
    if p.contact_names.contains(name) {
        ", which is a contact"
    } else if p.notifier_names.contains(name) {
        ", which is a notifier"
    } else if p.policy_names.contains(name) {
        ", which is a policy"
    } else if p.schedule_names.contains(name) {
        ", which is a schedule"
    } else if p.rotation_names.contains(name) {
        ", which is a rotation"
    } else {
        ""
    }
}

impl Loader<'_, '_> {
    /// `[sources.irc]` on its own, its secrets, and what refers to it (`irc` notifiers,
    /// contacts' `irc_mask`).
    pub(super) fn check_irc(&mut self, p: &Parsed) -> IrcSecrets {
        let at = KeyPath::default().key("sources").key("irc");
        let Some(irc) = &p.file.sources.irc else {
            for (name, n) in &p.file.notifiers {
                if n.through_irc_link() {
                    self.err(
                        &KeyPath::default().key("notifiers").key(name),
                        "an irc notifier sends through the IRC link: add [sources.irc] with server, nick and channels",
                    );
                }
            }
            return IrcSecrets::default();
        };
        for problem in irc.problems() {
            self.err(&at.key(problem.key), problem.message);
        }
        for (i, pattern) in irc.patterns.iter().enumerate() {
            let p_at = at.key("patterns").index(i);
            match pattern.from_account.as_deref() {
                None => self.warn(
                    &p_at.key("from"),
                    format!(
                        "alert lines are trusted by the mask {:?} alone: anyone who holds that nick can post them, and a forged \"resolved\" stops a real incident's paging; add from_account = \"ACCOUNT\" (the relay's services account)",
                        pattern.from
                    ),
                ),
                Some(a) if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c.is_control()) => {
                    self.err(
                        &p_at.key("from_account"),
                        format!("{a:?} is not a services account name"),
                    )
                }
                Some(_) => {}
            }
        }
        for (name, n) in &p.file.notifiers {
            if let Some(c) = n.get::<IrcNotifierConfig>()
                && is_channel(&c.channel)
                && !irc
                    .channels
                    .iter()
                    .any(|ch| ch.eq_ignore_ascii_case(&c.channel))
            {
                let msg = format!(
                    "channel {:?} is not one of [sources.irc] channels ({}): tocsin only speaks where it has joined",
                    c.channel,
                    irc.channels.join(", ")
                );
                self.err(
                    &KeyPath::default().key("notifiers").key(name).key("channel"),
                    msg,
                );
            }
        }
        for (name, c) in &p.file.contacts {
            if let Some(mask) = &c.irc_mask {
                let c_at = KeyPath::default().key("contacts").key(name).key("irc_mask");
                if !irc.allow_masks {
                    self.err(&c_at, "irc_mask is only honoured with [sources.irc] allow_masks = true (for networks without services; prefer irc_account)");
                } else if !mask.contains('!') || !mask.contains('@') {
                    self.err(
                        &c_at,
                        format!(
                            "{mask:?} is not a nick!user@host mask, like \"alice!alice@10.0.0.5\""
                        ),
                    );
                }
            }
        }
        IrcSecrets {
            password: self.secret(
                &at,
                "password",
                irc.password_file.as_deref(),
                irc.password_env.as_deref(),
            ),
            sasl_password: self.secret(
                &at,
                "sasl_password",
                irc.sasl_password_file.as_deref(),
                irc.sasl_password_env.as_deref(),
            ),
        }
    }
}
