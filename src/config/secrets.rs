//! Reading secrets from `*_file` (relative to the config's directory) or `*_env`, so they
//! are never inline in `alerts.toml`.

use std::env::VarError;
use std::path::Path;

use super::load::Loader;
use super::locate::KeyPath;
use super::types::Secret;

impl Loader<'_, '_> {
    /// Reads `{base}_file` or `{base}_env` under `at`; `None` when neither is set or on error.
    pub(super) fn secret(
        &mut self,
        at: &KeyPath,
        base: &str,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Option<Secret> {
        let file_key = format!("{base}_file");
        let env_key = format!("{base}_env");
        match (file, env) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.err(
                    &at.key(&env_key),
                    format!("set only one of {file_key} and {env_key}"),
                );
                None
            }
            (Some(file), None) => {
                let full = self.base_dir.join(file);
                match std::fs::read_to_string(&full) {
                    Err(e) => {
                        let msg = format!(
                            "cannot read secret file {} ({e}): create it, or fix the path",
                            full.display()
                        );
                        self.err(&at.key(&file_key), msg);
                        None
                    }
                    Ok(s) => {
                        let s = s.trim_end_matches(['\r', '\n']);
                        if s.is_empty() {
                            self.err(
                                &at.key(&file_key),
                                format!("secret file {} is empty", full.display()),
                            );
                            return None;
                        }
                        Some(Secret::new(s))
                    }
                }
            }
            (None, Some(var)) => match (self.env)(var) {
                Ok(s) if !s.is_empty() => Some(Secret::new(s)),
                Ok(_) => {
                    self.err(
                        &at.key(&env_key),
                        format!("environment variable {var} is empty"),
                    );
                    None
                }
                Err(VarError::NotPresent) => {
                    let msg = format!(
                        "environment variable {var:?} is not set: export it before starting tocsin, or use {file_key}"
                    );
                    self.err(&at.key(&env_key), msg);
                    None
                }
                Err(VarError::NotUnicode(_)) => {
                    self.err(
                        &at.key(&env_key),
                        format!("environment variable {var} is not valid UTF-8"),
                    );
                    None
                }
            },
        }
    }
}
