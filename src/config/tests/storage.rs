//! `[storage]` with `url`: PostgreSQL instead of a data dir.

use std::time::Duration;

use super::*;

fn with_storage(storage: &str) -> String {
    edit(
        "[storage]\ndata_dir = \"tocsin-data\"\n",
        &format!("[storage]\n{storage}\n"),
    )
}

fn load_env(text: &str, var: &'static str, value: &'static str) -> Result<Config, ConfigErrors> {
    let env = move |name: &str| {
        if name == var {
            Ok(value.to_string())
        } else {
            Err(VarError::NotPresent)
        }
    };
    load_with_env(text, None, &env)
}

#[test]
fn a_postgres_url_with_its_password_from_the_environment_makes_a_postgres_config() {
    let text = with_storage(
        "url = \"postgres://tocsin@db1:5432/tocsin?sslmode=verify-full\"\npassword_env = \"PGPASS\"\nlease = \"15s\"\ninstance = \"pager-a\"",
    );
    let c = load_env(&text, "PGPASS", "hunter2").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.summary()
            .contains("store: postgres://tocsin@db1:5432/tocsin?sslmode=verify-full"),
        "{}",
        c.summary()
    );
    let pg = c.postgres.expect("PostgreSQL configured");
    assert_eq!(pg.lease, Duration::from_secs(15));
    assert_eq!(pg.instance, "pager-a");
    assert_eq!(pg.password.as_ref().map(|p| p.expose()), Some("hunter2"));
    let shown = format!("{:?} {:?}", pg, c.file.storage);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        load(DESIGN_EXAMPLE).unwrap().postgres.is_none(),
        "SQLite stays the default"
    );
}

#[test]
fn storage_mistakes_are_named_by_their_key() {
    let cases = [
        (
            "data_dir = \"d\"\nurl = \"postgres://tocsin@db1/tocsin\"",
            "storage.data_dir",
            "only one of data_dir",
        ),
        (
            "url = \"postgres://tocsin:hunter2@db1/tocsin\"",
            "storage.url",
            "password_file",
        ),
        (
            "url = \"postgres://tocsin@db1/tocsin?sslmode=prefer\"",
            "storage.url",
            "verify-full",
        ),
        (
            "url = \"postgres://tocsin@db1/tocsin\"\nlease = \"1s\"",
            "storage.lease",
            "3s..5m",
        ),
        (
            "url = \"postgres://tocsin@db1/tocsin?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem\"",
            "storage.url",
            "sslrootcert",
        ),
        (
            "password_file = \"pw\"",
            "storage.password_file",
            "only read with url",
        ),
        (
            "url = \"postgres://tocsin@db1/tocsin\"\npassword_file = \"/nonexistent/pw\"",
            "storage.password_file",
            "cannot read",
        ),
    ];
    for (storage, key, says) in cases {
        let errs = errors(&with_storage(storage));
        assert!(
            errs.iter()
                .any(|e| e.key_path == key && e.message.contains(says)),
            "{storage}: {errs:?}"
        );
        assert!(
            !format!("{errs:?}").contains("hunter2"),
            "an error never repeats the password"
        );
    }
}

#[test]
fn a_plain_connection_to_another_host_is_warned_about() {
    let text = with_storage("url = \"postgres://tocsin@db1/tocsin?sslmode=disable\"");
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.key_path == "storage.url" && w.message.contains("in clear")),
        "{:?}",
        c.warnings
    );
}
