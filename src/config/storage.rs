//! `[storage]` with `url`: the PostgreSQL store's settings, read and checked into a
//! [`PgConfig`] (the password read from its file or variable, never from the url).

use super::load::Loader;
use super::locate::KeyPath;
use super::sections::Parsed;
use crate::store::postgres::{LEASE_RANGE, PgConfig, PgTls};

impl Loader<'_, '_> {
    /// The PostgreSQL store's settings when `url` is given; errors name the key.
    pub(super) fn check_postgres(&mut self, p: &Parsed) -> Option<PgConfig> {
        let s = &p.file.storage;
        let at = KeyPath::default().key("storage");
        let Some(url) = &s.url else {
            for (key, set) in [
                ("password_file", s.password_file.is_some()),
                ("password_env", s.password_env.is_some()),
                ("instance", s.instance.is_some()),
            ] {
                if set {
                    self.err(
                        &at.key(key),
                        format!("{key} is only read with url (the PostgreSQL store)"),
                    );
                }
            }
            return None;
        };
        if s.data_dir_set {
            self.err(
                &at.key("data_dir"),
                "set only one of data_dir (SQLite, one instance) and url (PostgreSQL, shared by instances)",
            );
        }
        let (min, max) = LEASE_RANGE;
        if s.lease.0 < min || s.lease.0 > max {
            let msg = format!(
                "lease = {:?} is outside 3s..5m: a shorter lease is lost to a slow query, a longer one leaves nobody paging for that long after the leader dies (default \"10s\")",
                s.lease
            );
            self.err(&at.key("lease"), msg);
        }
        let password = self.secret(
            &at,
            "password",
            s.password_file.as_deref(),
            s.password_env.as_deref(),
        );
        let mut cfg = match PgConfig::parse(url, password) {
            Ok(cfg) => cfg,
            Err(e) => {
                self.err(&at.key("url"), e.to_string());
                return None;
            }
        };
        if let PgTls::VerifyFull { root: Some(root) } = &mut cfg.tls
            && root.is_relative()
        {
            *root = self.base_dir.join(&*root);
        }
        if let Err(e) = cfg.check_tls() {
            self.err(&at.key("url"), e);
        }
        if cfg.tls == PgTls::Disable && !cfg.is_local() {
            self.warn(
                &at.key("url"),
                "sslmode=disable to a database on another host: the password and every alert cross the network in clear; use sslmode=verify-full",
            );
        }
        cfg.lease = s.lease.0;
        if let Some(instance) = &s.instance {
            if instance.trim().is_empty() {
                self.err(
                    &at.key("instance"),
                    "instance is empty: name this instance (default: the host name)",
                );
            }
            cfg.instance = instance.clone();
        }
        Some(cfg)
    }
}
