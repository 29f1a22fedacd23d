//! Acks that silence Alertmanager, against a real Alertmanager (`promstack`): the silence
//! an ack makes is the one Alertmanager lists, an extension moves its end without leaving
//! copies behind, an expiry ends it, an HA pair with a dead peer still works, and a dead
//! Alertmanager is a quick error worth retrying, never a hang.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tocsin::config::{Presented, Secret, SilenceOnAck};
use tocsin::notify::FailureKind;
use tocsin::source::am_silence::{AmSilencer, CREATED_BY, SilenceId};
use tocsin::time::{Clock, SystemClock, Timestamp};

use crate::harness::free_port;
use crate::promstack::Alertmanager;

/// Where the test Alertmanager sends notifications: nothing listens, and nothing here
/// reads them.
const NOWHERE: &str = "http://127.0.0.1:9/unused";

fn silencer(urls: &[String], timeout: Duration, auth: Option<Presented>) -> AmSilencer {
    AmSilencer::new(&SilenceOnAck {
        urls: urls.iter().map(|u| u.parse().unwrap()).collect(),
        duration: Duration::from_secs(2 * 3600),
        timeout,
        auth,
    })
    .unwrap()
}

fn group() -> BTreeMap<String, String> {
    [("alertname", "DiskFull"), ("instance", "db-1:9100")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn started(client: &reqwest::Client) -> Alertmanager {
    let mut am = Alertmanager::start(NOWHERE);
    am.wait_ready(client).await;
    am
}

/// Every silence Alertmanager holds, expired ones included.
async fn silences(client: &reqwest::Client, am: &Alertmanager) -> Vec<Value> {
    let r = client.get(am.url("/api/v2/silences")).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Vec<Value>>().await.unwrap()
}

fn by_id<'a>(all: &'a [Value], id: &SilenceId) -> &'a Value {
    all.iter()
        .find(|s| s["id"] == id.0)
        .unwrap_or_else(|| panic!("silence {id} is not listed: {all:#?}"))
}

/// The matchers of a listed silence as `name=value`, sorted.
fn matchers_of(s: &Value) -> Vec<String> {
    let mut out: Vec<String> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["isRegex"], false, "{m}");
            assert_eq!(m["isEqual"], true, "{m}");
            format!(
                "{}={}",
                m["name"].as_str().unwrap(),
                m["value"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_makes_the_silence_alertmanager_lists_with_those_matchers_and_that_comment() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let s = silencer(&[am.url("")], Duration::from_secs(5), None);
    let now = SystemClock.now();
    let ends = now.plus(Duration::from_secs(3600));
    let comment = "acked in tocsin #42 by alice";

    let id = s
        .create(&group(), now, ends, CREATED_BY, comment)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));

    let all = silences(&client, &am).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let listed = by_id(&all, &id);
    assert_eq!(listed["status"]["state"], "active", "{listed}");
    assert_eq!(
        matchers_of(listed),
        ["alertname=DiskFull", "instance=db-1:9100"]
    );
    assert_eq!(listed["comment"], comment);
    assert_eq!(listed["createdBy"], "tocsin");
    assert_eq!(
        Timestamp::parse_rfc3339(listed["endsAt"].as_str().unwrap()),
        Some(ends)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extending_moves_the_end_of_the_one_silence_and_its_id_still_expires_it() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let s = silencer(&[am.url("")], Duration::from_secs(5), None);
    let now = SystemClock.now();
    let comment = "acked in tocsin #7 by bob";
    let first = s
        .create(
            &group(),
            now,
            now.plus(Duration::from_secs(600)),
            CREATED_BY,
            comment,
        )
        .await
        .unwrap();

    // A minute later (as the engine would say), still acked and still firing: extended to
    // an hour from then. Alertmanager keeps a silence in place only while its startsAt
    // stays in the same second, so a client that sent its own `now` would fork it here.
    let later = now.plus(Duration::from_secs(60));
    let new_end = later.plus(Duration::from_secs(3600));
    let id = s
        .extend(&first, &group(), later, new_end, CREATED_BY, comment)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));

    let all = silences(&client, &am).await;
    // In place: no expired copy of the old silence is left behind in Alertmanager's list.
    assert_eq!(all.len(), 1, "one silence, updated in place: {all:#?}");
    let listed = by_id(&all, &id);
    assert_eq!(listed["status"]["state"], "active");
    assert_eq!(
        Timestamp::parse_rfc3339(listed["endsAt"].as_str().unwrap()),
        Some(new_end)
    );
    assert_eq!(
        matchers_of(listed),
        ["alertname=DiskFull", "instance=db-1:9100"]
    );

    s.expire(&id).await.unwrap();
    let all = silences(&client, &am).await;
    assert_eq!(by_id(&all, &id)["status"]["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_ends_the_silence_and_an_expired_one_extended_is_made_anew() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let s = silencer(&[am.url("")], Duration::from_secs(5), None);
    let now = SystemClock.now();
    let id = s
        .create(
            &group(),
            now,
            now.plus(Duration::from_secs(3600)),
            CREATED_BY,
            "x",
        )
        .await
        .unwrap();

    s.expire(&id).await.unwrap();
    let all = silences(&client, &am).await;
    assert_eq!(by_id(&all, &id)["status"]["state"], "expired", "{all:#?}");
    // Twice, or an id Alertmanager never had: nothing is silenced, which is what was asked.
    s.expire(&id).await.unwrap();
    s.expire(&SilenceId("4d2d1b2e-5b4b-4b0e-9d1c-0a0b0c0d0e0f".into()))
        .await
        .unwrap();

    // Someone expired it in Alertmanager while the incident stays acked: an extension
    // silences again, under a new id the caller must keep.
    let later = SystemClock.now();
    let again = s
        .extend(
            &id,
            &group(),
            later,
            later.plus(Duration::from_secs(3600)),
            CREATED_BY,
            "x",
        )
        .await
        .unwrap();
    assert_ne!(again, id);
    let all = silences(&client, &am).await;
    assert_eq!(by_id(&all, &again)["status"]["state"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_whose_first_peer_is_dead_silences_through_the_second() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let s = silencer(&[dead, am.url("")], Duration::from_secs(5), None);
    let now = SystemClock.now();

    let id = s
        .create(
            &group(),
            now,
            now.plus(Duration::from_secs(3600)),
            CREATED_BY,
            "x",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = silences(&client, &am).await;
    assert_eq!(by_id(&all, &id)["status"]["state"], "active");
    s.expire(&id).await.unwrap();
    let all = silences(&client, &am).await;
    assert_eq!(by_id(&all, &id)["status"]["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_alertmanager_is_a_quick_retryable_error_that_shows_no_password() {
    let client = reqwest::Client::new();
    let mut am = started(&client).await;
    let url = format!("http://ops:hunter2@127.0.0.1:{}", am.port());
    am.stop();
    let timeout = Duration::from_secs(2);
    let s = silencer(&[url], timeout, None);
    let now = SystemClock.now();

    let started = Instant::now();
    let e = s
        .create(
            &group(),
            now,
            now.plus(Duration::from_secs(3600)),
            CREATED_BY,
            "x",
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.kind(), Some(FailureKind::Refused), "{e:?}");
    // Refused at once, so only the backoff between rounds counts, which the timeout bounds.
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{}", am.port())), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_that_never_answers_times_out_within_the_bound() {
    // Takes the connection and says nothing, as a hung Alertmanager does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let timeout = Duration::from_secs(1);
    let s = silencer(&[format!("http://{addr}")], timeout, None);

    let started = Instant::now();
    let e = s.still_firing(&group()).await.unwrap_err();
    let took = started.elapsed();
    hold.abort();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.kind(), Some(FailureKind::Timeout), "{e:?}");
    // Three rounds of one timeout each, and backoff between them of at most one timeout.
    assert!(took >= timeout, "took {took:?}");
    assert!(took < 4 * timeout + Duration::from_secs(1), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_alert_still_fires_until_it_is_resolved() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let s = silencer(&[am.url("")], Duration::from_secs(5), None);
    let now = SystemClock.now();
    let began = now.minus(Duration::from_secs(60)).to_rfc3339();
    let labels = json!({"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"});
    am.post(&client, json!([{"labels": labels, "startsAt": began}]))
        .await;
    s.create(
        &group(),
        now,
        now.plus(Duration::from_secs(3600)),
        CREATED_BY,
        "x",
    )
    .await
    .unwrap();

    // Silenced, so Alertmanager will never send its resolved notification: asked instead.
    assert!(s.still_firing(&group()).await.unwrap(), "{}", am.log());
    let mut other = group();
    other.insert("instance".into(), "db-2:9100".into());
    assert!(!s.still_firing(&other).await.unwrap(), "another group");

    let ended = SystemClock.now().minus(Duration::from_secs(1)).to_rfc3339();
    am.post(
        &client,
        json!([{"labels": labels, "startsAt": began, "endsAt": ended}]),
    )
    .await;
    assert!(!s.still_firing(&group()).await.unwrap(), "{}", am.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_with_every_request() {
    // Alertmanager behind a proxy that wants credentials: what reaches the proxy.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/am/api/v2/silences",
        post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                record.lock().unwrap().push(auth);
                axum::Json(json!({"silenceID": "4d2d1b2e-5b4b-4b0e-9d1c-0a0b0c0d0e0f"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/am/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let now = SystemClock.now();
    let end = now.plus(Duration::from_secs(60));

    let bearer = Presented::Bearer(Secret::new("am-token-0123456789"));
    let s = silencer(
        std::slice::from_ref(&url),
        Duration::from_secs(5),
        Some(bearer),
    );
    s.create(&group(), now, end, CREATED_BY, "x").await.unwrap();
    let basic = Presented::Basic {
        username: "tocsin".into(),
        password: Secret::new("hunter2"),
    };
    let s = silencer(&[url], Duration::from_secs(5), Some(basic));
    s.create(&group(), now, end, CREATED_BY, "x").await.unwrap();
    server.abort();

    assert_eq!(
        *seen.lock().unwrap(),
        [
            "Bearer am-token-0123456789",
            // base64("tocsin:hunter2")
            "Basic dG9jc2luOmh1bnRlcjI=",
        ]
    );
}

/// The whole path: an incident from Alertmanager acked in tocsin makes the silence
/// Alertmanager lists and applies (its alert is suppressed, so it is not re-notified);
/// resolving it in tocsin expires the silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_in_tocsin_silences_the_group_in_alertmanager_and_resolve_expires_it() {
    let client = reqwest::Client::new();
    let am = started(&client).await;
    let labels = json!({"alertname": "DiskFull", "severity": "critical"});
    let began = SystemClock
        .now()
        .minus(Duration::from_secs(60))
        .to_rfc3339();
    am.post(&client, json!([{"labels": labels, "startsAt": began}]))
        .await;

    let config = crate::harness::webhook_config(
        "http://127.0.0.1:9/",
        &format!(
            "{}\n[sources.alertmanager]\nsilence_on_ack = {{ url = \"{}\", for = \"2h\" }}\n",
            crate::harness::page_alice(),
            am.url("")
        ),
    );
    let app = crate::harness::spawn_app(&config).await;
    let r = app.post_alerts(&crate::alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = app.only_incident().await["id"].as_u64().unwrap();
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let silence = crate::harness::eventually(
        "the silence in Alertmanager",
        Duration::from_secs(10),
        || {
            let (client, am) = (&client, &am);
            async move {
                silences(client, am)
                    .await
                    .into_iter()
                    .find(|s| s["status"]["state"] == "active")
            }
        },
    )
    .await;
    assert_eq!(
        matchers_of(&silence),
        ["alertname=DiskFull", "severity=critical"]
    );
    assert_eq!(
        silence["comment"],
        format!("acked in tocsin #{id} by alice")
    );
    assert_eq!(silence["createdBy"], CREATED_BY);
    // Alertmanager applies it: the alert is suppressed by that silence, so the group
    // is not notified again while the ack holds.
    let alerts: Vec<Value> = client
        .get(am.url("/api/v2/alerts?filter=alertname%3D%22DiskFull%22"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts[0]["status"]["state"], "suppressed", "{alerts:#?}");
    assert_eq!(alerts[0]["status"]["silencedBy"][0], silence["id"]);
    let incident = app.incident(id).await;
    assert!(
        crate::harness::history_kinds(&incident).contains(&"ack_silence".to_string()),
        "{incident}"
    );

    let r = app.act(id, "resolve", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    crate::harness::eventually("the silence expired", Duration::from_secs(10), || {
        let (client, am, sid) = (&client, &am, silence["id"].clone());
        async move {
            let all = silences(client, am).await;
            all.iter()
                .any(|s| s["id"] == sid && s["status"]["state"] == "expired")
                .then_some(())
        }
    })
    .await;
}

/// Alertmanager unreachable: the ack stands, the history says so, and the board shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_alertmanager_never_undoes_the_ack_and_shows_on_the_board() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = crate::harness::webhook_config(
        "http://127.0.0.1:9/",
        &format!(
            "{}\n[sources.alertmanager]\nsilence_on_ack = {{ url = \"{dead}\", for = \"2h\", timeout = \"1s\" }}\n",
            crate::harness::page_alice()
        ),
    );
    let app = crate::harness::spawn_app(&config).await;
    assert_eq!(
        app.post_alerts(&crate::alerts::firing("DiskFull"))
            .await
            .status,
        200
    );
    let id = app.only_incident().await["id"].as_u64().unwrap();
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let line = crate::harness::eventually(
        "the failure in the history",
        Duration::from_secs(15),
        || {
            let app = &app;
            async move {
                let inc = app.incident(id).await;
                inc["history"].as_array()?.iter().find_map(|e| {
                    (e["kind"] == "ack_silence")
                        .then(|| e["detail"].as_str().unwrap_or("").to_string())
                })
            }
        },
    )
    .await;
    assert!(line.contains("the ack stands"), "{line}");
    assert_eq!(app.incident(id).await["state"], "acknowledged");
    let board = app.channel("alertmanager-silences").await;
    assert_eq!(board["state"], "down", "{board}");
}
