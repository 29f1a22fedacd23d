//! A reload while a Pushover emergency page rings: the phone's acknowledgement still acks
//! the incident in tocsin, and an ack in tocsin still stops the phone ringing, whether
//! the edit left the pushover notifier alone (it is kept as it was) or changed it (the
//! new one takes over the receipts still ringing).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::fake_push::{self, PushoverAccount};
use crate::harness::{TestApp, spawn_app_from_file};
use crate::push::{
    ALICE_KEY, PROMPTLY, PUSHOVER_APP, Secrets, config, emergency_message, event,
    first_page_outcome, page_alice, pushover_account, pushover_notifier, routed, wait_acked,
};

/// Polls come every 5 s (Pushover's floor); the acknowledgement is seen by the next one.
const TWO_POLLS: Duration = Duration::from_secs(15);

/// An edit of alerts.toml and the notifiers the reload must rebuild for it.
struct Edit {
    what: &'static str,
    apply: fn(&str) -> String,
    rebuilt: &'static [&'static str],
}

const EDITS: [Edit; 2] = [
    Edit {
        what: "an edit elsewhere (the ack timeout)",
        apply: |text| format!("{text}\n[defaults]\nack_timeout = \"2h\"\n"),
        rebuilt: &[],
    },
    Edit {
        what: "an edit of the pushover notifier (its retry)",
        apply: |text| text.replace("retry = \"30s\"", "retry = \"45s\""),
        rebuilt: &["push"],
    },
];

/// tocsin reading its config from a file, alice paged by Pushover at emergency priority.
struct Ringing {
    app: TestApp,
    fake: FakeApi,
    account: Arc<PushoverAccount>,
    path: PathBuf,
    text: String,
    id: u64,
    receipt: String,
    _secrets: Secrets,
}

/// Starts tocsin with Pushover polling receipts every `poll`, pages alice and waits
/// until the emergency page is delivered with its receipt.
async fn ringing(poll: &str) -> Ringing {
    let account = pushover_account(0);
    let fake = fake_push::pushover(account.clone()).await;
    let secrets = Secrets::new();
    let token = secrets.file("pushover-app", PUSHOVER_APP);
    let text = routed(&config(
        &pushover_notifier(&fake.url(), &token, poll),
        &format!(", to = \"{ALICE_KEY}\""),
        "",
    ));
    let path = token.with_file_name("alerts.toml");
    std::fs::write(&path, &text).unwrap();
    let app = spawn_app_from_file(&path).await;
    let id = page_alice(&app).await;
    assert_eq!(emergency_message(&fake).await.form_map()["priority"], "2");
    assert_eq!(first_page_outcome(&app, id).await["status"], "delivered");
    let receipt = account.receipts().into_iter().next().expect("a receipt");
    Ringing {
        app,
        fake,
        account,
        path,
        text,
        id,
        receipt,
        _secrets: secrets,
    }
}

/// Writes `edit` into the config file and reloads it; the reload must pass and rebuild
/// exactly the notifiers the edit is about.
async fn reload(r: &Ringing, edit: &Edit) {
    write(&r.path, &(edit.apply)(&r.text));
    let reply = r.app.reload().await;
    assert_eq!(reply.status, 200, "{}: {}", edit.what, reply.body);
    assert_eq!(
        reply.body["reloaded"]["rebuilt_notifiers"],
        json!(edit.rebuilt),
        "{}: {}",
        edit.what,
        reply.body
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

async fn a_phone_ack_after(edit: &Edit) {
    let r = ringing("5s").await;
    reload(&r, edit).await;

    r.account.acknowledge(&r.receipt);
    let incident: Value = wait_acked(&r.app, r.id, TWO_POLLS).await;
    assert_eq!(incident["acked_by"], "alice", "{}: {incident}", edit.what);
    assert_eq!(event(&incident, "acked")["actor"], "alice via pushover");
    assert!(r.account.polls(&r.receipt) >= 1, "{}", r.fake.describe());
    assert!(
        !r.account.cancelled(&r.receipt),
        "an acknowledged receipt is not cancelled: {}",
        r.fake.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_ack_after_an_unrelated_reload_acks_the_incident() {
    a_phone_ack_after(&EDITS[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_ack_after_the_pushover_notifier_was_edited_acks_the_incident() {
    a_phone_ack_after(&EDITS[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_in_tocsin_after_a_reload_stops_the_phone_ringing() {
    for edit in &EDITS {
        // No poll comes within the test: only the cancel can stop the ringing.
        let r = ringing("1h").await;
        reload(&r, edit).await;

        let reply = r.app.act(r.id, "ack", json!({"by": "alice"})).await;
        assert_eq!(reply.status, 200, "{}: {}", edit.what, reply.body);
        let cancel_path = format!("/1/receipts/{}/cancel.json", r.receipt);
        let cancel = r
            .fake
            .wait_for(
                &format!("the receipt's cancel after {}", edit.what),
                PROMPTLY,
                |q| q.path == cancel_path,
            )
            .await;
        assert_eq!(cancel.form_map()["token"], PUSHOVER_APP);
        assert!(r.account.cancelled(&r.receipt), "{}", edit.what);
    }
}
