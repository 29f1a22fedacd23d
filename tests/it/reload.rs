//! Editing alerts.toml on a live daemon: a good file takes effect without a restart,
//! a broken one is refused and the running config keeps paging, and open incidents keep
//! the policy they opened with.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::alerts::firing;
use crate::catcher::{PageCatcher, describe};
use crate::daemon::Daemon;
use crate::harness::{PEOPLE, eventually, init, metric_value, spawn_app_from_file, webhook_config};

/// Generous bound for a page that is due now.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The on-call rota before the edit: alice, then carol after 2 s.
fn before(hook: &str) -> String {
    webhook_config(
        hook,
        &format!(
            "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}, {{ after = \"2s\", notify = [\"carol\"] }}]\n"
        ),
    )
}

/// After the edit: bob only.
fn after(hook: &str) -> String {
    webhook_config(
        hook,
        &format!(
            "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"bob\"] }}]\n"
        ),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_edit_takes_effect_a_broken_one_is_refused_and_open_incidents_keep_their_policy() {
    let hook = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    write(&path, &before(&hook.url()));
    let app = spawn_app_from_file(&path).await;
    let reload = || app.reload();
    let reload_ok = || async { app.metric("tocsin_config_last_reload_successful").await };
    assert_eq!(reload_ok().await, Some(1.0));

    // An incident opened under the old rota: alice now, carol in 2 s.
    assert_eq!(app.post_alerts(&firing("Old")).await.status, 200);
    hook.wait_for_pages(1, PROMPTLY).await;

    write(&path, &after(&hook.url()));
    let r = reload().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["reloaded"]["restart_needed"], Value::Array(vec![]));

    // A new incident follows the new rota.
    assert_eq!(app.post_alerts(&firing("New")).await.status, 200);
    let pages = hook
        .wait_until(
            "carol for the old incident, bob for the new",
            PROMPTLY,
            |p| p.len() >= 3,
        )
        .await;
    let who = |alertname: &str| -> Vec<String> {
        pages
            .iter()
            .filter(|p| {
                p.body["incident"]["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(alertname))
            })
            .map(|p| p.target().to_string())
            .collect()
    };
    assert_eq!(who("Old"), ["alice", "carol"], "{}", describe(&pages));
    assert_eq!(who("New"), ["bob"], "{}", describe(&pages));

    // A broken edit: refused, saying why, and the running config keeps paging.
    write(
        &path,
        &after(&hook.url()).replace("[contacts.bob]", "[contacts.bob]\nphone = \"typo\""),
    );
    let r = reload().await;
    assert_eq!(r.status, 400, "{}", r.body);
    let error = r.error();
    assert!(
        error.contains("running config stays") && error.contains("contacts.bob.phone"),
        "{error}"
    );
    assert_eq!(reload_ok().await, Some(0.0));
    assert_eq!(app.post_alerts(&firing("AfterTypo")).await.status, 200);
    let pages = hook
        .wait_until("the page under the kept config", PROMPTLY, |p| p.len() >= 4)
        .await;
    assert_eq!(pages[3].target(), "bob", "{}", describe(&pages));

    // Fixed again: reloaded, and the metric says so. A section only a restart applies
    // is named.
    write(
        &path,
        &format!("{}\n[watchdog]\nhold_down = \"5s\"\n", after(&hook.url())),
    );
    let r = reload().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["reloaded"]["restart_needed"],
        serde_json::json!(["[watchdog]"])
    );
    assert_eq!(reload_ok().await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_config_of_the_running_binary() {
    init();
    let hook = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    write(&path, &before(&hook.url()));
    let client = reqwest::Client::new();
    let mut daemon = Daemon::start(&path, &dir.path().join("data"), dir.path().join("log"));
    daemon.wait_ready(&client).await;

    write(&path, &after(&hook.url()));
    daemon.signal("HUP");
    let reloaded_at = eventually("the SIGHUP reload", PROMPTLY, || async {
        let m = client
            .get(daemon.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        daemon
            .log()
            .contains("config reloaded")
            .then(|| metric_value(&m, "tocsin_config_last_reload_success_timestamp_seconds"))
            .flatten()
    })
    .await;
    assert!(reloaded_at > 0.0);
    let r = client
        .post(daemon.url("/hooks/alertmanager"))
        .json(&firing("AfterHup"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pages = hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "bob", "{}", describe(&pages));

    // A broken file on SIGHUP: logged, refused, still running.
    write(&path, "[server\n");
    daemon.signal("HUP");
    eventually("the refusal in the log", PROMPTLY, || async {
        daemon.log().contains("config reload refused").then_some(())
    })
    .await;
    let health = client.get(daemon.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{}", daemon.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_a_notifier_tocsin_cannot_build_and_a_watchdog_that_pages_nobody() {
    let hook = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    write(&path, &before(&hook.url()));
    let app = spawn_app_from_file(&path).await;

    // A relay URL the mailer cannot use: named by notifier, key and line.
    let text = format!(
        "{}\n[notifiers.mail]\ntype = \"email\"\nsmtp_url = \"smtp://h?tls=maybe\"\nfrom = \"tocsin@example.com\"\n",
        before(&hook.url())
    );
    write(&path, &text);
    let r = app.reload().await;
    assert_eq!(r.status, 400, "{}", r.body);
    let line = text.lines().position(|l| l.contains("tls=maybe")).unwrap() + 1;
    let at = format!(
        ":{line}: notifiers.mail.smtp_url: smtp_url \"smtp://h?tls=maybe\": tls=\"maybe\" is unknown"
    );
    assert!(r.error().contains(&at), "expected {at:?} in {}", r.error());

    // Watchdog incidents that would reach nobody.
    write(
        &path,
        &format!(
            "{}\n[policies.machines]\nsteps = [{{ after = \"0s\", notify = [\"hook\"] }}]\n[watchdog]\npolicy = \"machines\"\n",
            before(&hook.url())
        ),
    );
    let r = app.reload().await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error()
            .contains("watchdog.policy: watchdog incidents page nobody: policy \"machines\"")
            && r.error().contains("name a contact with methods"),
        "{}",
        r.error()
    );

    // Both refused: the running config still pages alice.
    assert_eq!(app.post_alerts(&firing("StillPaging")).await.status, 200);
    let pages = hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "alice", "{}", describe(&pages));
}

/// The token leaked and was rotated: after the reload the old one must stop working and
/// the new one (already given to Alertmanager) must work, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_takes_effect_on_reload_and_the_old_token_stops_working() {
    let hook = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("webhook-token");
    write(&token, "old-token-0123456789\n");
    let path = dir.path().join("alerts.toml");
    write(
        &path,
        &format!(
            "[server]\nauth_token_file = \"{}\"\n{}",
            token.display(),
            after(&hook.url())
        ),
    );
    let app = spawn_app_from_file(&path).await;
    let post_as = |bearer: &'static str| {
        let req = app
            .client
            .post(app.url("/hooks/alertmanager"))
            .bearer_auth(bearer)
            .json(&firing("Rotated"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post_as("old-token-0123456789").await, 200);
    assert_eq!(post_as("new-token-9876543210").await, 401);

    write(&token, "new-token-9876543210\n");
    let r = crate::harness::Reply::from(
        app.client
            .post(app.url("/-/reload"))
            .header("content-type", "application/json")
            .bearer_auth("old-token-0123456789")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["reloaded"]["credentials_changed"], true,
        "{}",
        r.body
    );
    assert_eq!(
        r.body["reloaded"]["restart_needed"],
        Value::Array(vec![]),
        "{}",
        r.body
    );

    assert_eq!(
        post_as("old-token-0123456789").await,
        401,
        "the leaked token is dead"
    );
    assert_eq!(
        post_as("new-token-9876543210").await,
        200,
        "the new one works"
    );

    // Reloading again with nothing changed says so.
    let r = crate::harness::Reply::from(
        app.client
            .post(app.url("/-/reload"))
            .header("content-type", "application/json")
            .bearer_auth("new-token-9876543210")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.body["reloaded"]["credentials_changed"], false,
        "{}",
        r.body
    );
}
