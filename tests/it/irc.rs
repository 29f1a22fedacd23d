//! IRC as a two-way paging channel, against real servers: InspIRCd with Anope services
//! (SASL, accounts, account-tag), and ZNC 1.8 between tocsin and the network, as small
//! teams run it. Humans are scripted clients registered with NickServ.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::NamedTempFile;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::harness::{
    TestApp, eventually, history_kinds, spawn_app, spawn_app_from_file, time_of, webhook_config,
};
use crate::ircnet::{ALERTS, Human, IrcNet, Login, Znc};

/// A bot line or command to its effect, through real servers on a busy machine.
const SOON: Duration = Duration::from_secs(10);

/// bob's step: long enough for the impostor and alice to connect and speak first.
const BOB_AFTER_SECS: u64 = 12;

/// How tocsin reaches IRC in a test.
enum Via<'a> {
    /// Straight to InspIRCd, logged in with SASL as `agent`.
    Direct(&'a IrcNet),
    /// Through ZNC (which logs in upstream as `agent`).
    Znc(&'a Znc),
    /// Through ZNC's TLS listener, trusting the CA that signed its certificate.
    ZncTls(&'a Znc),
}

struct Setup {
    app: TestApp,
    catcher: PageCatcher,
    _password: NamedTempFile,
}

/// The relay's pattern in most tests: trusted by its nick mask alone.
const RELAY_BY_MASK: &str = r#"{ from = "relay!*@*", preset = "alertmanager-irc-relay" }"#;

/// The relay's pattern as the README advises: its lines count only from its account.
const RELAY_BY_ACCOUNT: &str =
    r#"{ from = "relay!*@*", from_account = "relaybot", preset = "alertmanager-irc-relay" }"#;

/// tocsin with the IRC link, an `irc` notifier for #alerts, alice (irc_account alice)
/// paged at once and bob after `bob_after`, both through the webhook catcher.
async fn tocsin(via: Via<'_>, bob_after: &str, extra_irc: &str) -> Setup {
    tocsin_reading(via, RELAY_BY_MASK, extra_irc, &alice_then_bob(bob_after)).await
}

/// Contacts and the policy of [`tocsin`]: #alerts and alice at once, bob after
/// `bob_after`.
fn alice_then_bob(bob_after: &str) -> String {
    format!(
        r#"
[contacts.alice]
irc_account = "alice"
methods = [{{ notifier = "hook", to = "alice@pager" }}]
[contacts.bob]
methods = [{{ notifier = "hook", to = "bob@pager" }}]

[policies.default]
steps = [
  {{ after = "0s", notify = ["chan", "alice"] }},
  {{ after = "{bob_after}", notify = ["bob"] }},
]
"#
    )
}

/// [`tocsin`] reading alert lines with `pattern`, paging `people` (contacts and
/// policies, which may use the `chan` and `hook` notifiers).
async fn tocsin_reading(via: Via<'_>, pattern: &str, extra_irc: &str, people: &str) -> Setup {
    tocsin_configured(via, pattern, extra_irc, people, None).await
}

/// [`tocsin_reading`], with the config written to `file` (to be edited and reloaded)
/// when given.
async fn tocsin_configured(
    via: Via<'_>,
    pattern: &str,
    extra_irc: &str,
    people: &str,
    file: Option<&std::path::Path>,
) -> Setup {
    let catcher = PageCatcher::start().await;
    let mut password = NamedTempFile::new().unwrap();
    let (server, secret, login) = match via {
        Via::Direct(net) => (
            net.port(),
            "agentpass",
            r#"sasl_username = "agent"
sasl_password_file"#,
        ),
        Via::Znc(znc) => (znc.port(), znc.pass_line(), "password_file"),
        Via::ZncTls(znc) => (znc.tls_port(), znc.pass_line(), "password_file"),
    };
    let tls = match via {
        Via::ZncTls(znc) => format!("tls = true\ntls_ca_file = \"{}\"", znc.ca_file().display()),
        _ => String::new(),
    };
    write!(password, "{secret}").unwrap();
    let rest = format!(
        r#"
[sources.irc]
server = "127.0.0.1:{server}"
nick = "agent"
{tls}
{login} = "{path}"
channels = ["{ALERTS}"]
ping_interval = "2s"
ping_timeout = "3s"
reconnect_max = "2s"
flood_interval = "500ms"
patterns = [{pattern}]
{extra_irc}

[notifiers.chan]
type = "irc"
channel = "{ALERTS}"
{people}"#,
        path = password.path().display()
    );
    let config = webhook_config(&catcher.url(), &rest);
    let app = match file {
        None => spawn_app(&config).await,
        Some(path) => {
            std::fs::write(path, &config).unwrap();
            spawn_app_from_file(path).await
        }
    };
    wait_link_up(&app).await;
    Setup {
        app,
        catcher,
        _password: password,
    }
}

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    app.metric(name).await
}

async fn wait_link_up(app: &TestApp) {
    eventually("tocsin's IRC link to be up", SOON, || async {
        (metric(app, "tocsin_irc_link_up").await == Some(1.0)).then_some(())
    })
    .await;
}

/// Lines tocsin (nick `agent`) said in #alerts, as `who` saw them.
fn said_by_agent(line: &str) -> bool {
    line.contains(":agent!") && line.contains(&format!("PRIVMSG {ALERTS} :"))
}

/// A person in #alerts: logged in to `account` when given.
async fn person(port: u16, nick: &str, account: Option<(&str, &str)>) -> Human {
    let login = match account {
        Some((a, p)) => Login::Sasl(a, p),
        None => Login::None,
    };
    let h = Human::connect(port, nick, login).await;
    h.join(ALERTS).await;
    h
}

async fn network() -> IrcNet {
    let net = IrcNet::start().await;
    net.register("agent", "agentpass").await;
    net.register("alice", "alicepass").await;
    net
}

/// The relay bot posts an alert; the incident opens and is announced in the channel.
async fn alert_from_the_relay(s: &Setup, relay: &Human, watcher: &Human) -> u64 {
    let mark = watcher.mark();
    relay
        .say(ALERTS, "Alert DiskFull on db1:9100 is firing")
        .await;
    let incident = eventually("the relay's alert to open an incident", SOON, || async {
        s.app.incidents(Some("triggered")).await.into_iter().next()
    })
    .await;
    let id = incident["id"].as_u64().unwrap();
    assert_eq!(incident["source"], "irc", "{incident}");
    assert_eq!(incident["labels"]["instance"], "db1:9100", "{incident}");
    let line = watcher
        .wait_since(mark, "the announcement", SOON, |l| {
            said_by_agent(l) && l.contains(&format!("[#{id}] FIRING"))
        })
        .await;
    assert!(line.contains(&format!("!ack {id}")), "{line}");
    id
}

/// The whole story: an impostor using alice's nick is refused, alice's account acks,
/// escalation to bob never happens.
async fn only_the_acker_account_stops_escalation(s: Setup, port: u16) {
    let relay = person(port, "relay", None).await;
    let id = alert_from_the_relay(&s, &relay, &relay).await;

    // Someone takes the nick "alice" without logging in.
    let impostor = person(port, "alice", None).await;
    let mark = impostor.mark();
    impostor.say(ALERTS, &format!("!ack {id}")).await;
    let answer = impostor
        .wait_since(mark, "tocsin's refusal", SOON, |l| {
            said_by_agent(l) && l.contains("alice: sorry")
        })
        .await;
    assert!(answer.contains("log in"), "{answer}");
    let inc = s.app.incident(id).await;
    assert_eq!(inc["state"], "triggered", "the impostor acked: {inc}");
    assert!(
        history_kinds(&inc).contains(&"refused".to_string()),
        "{inc}"
    );
    impostor.quit().await;

    // The real alice, identified with services, under the same nick.
    let alice = person(port, "alice", Some(("alice", "alicepass"))).await;
    let mark = alice.mark();
    alice.say(ALERTS, &format!("!ack {id}")).await;
    alice
        .wait_since(mark, "tocsin's confirmation", SOON, |l| {
            said_by_agent(l) && l.contains(&format!("#{id} acknowledged by alice"))
        })
        .await;
    let inc = s.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged", "{inc}");
    assert_eq!(inc["acked_by"], "alice", "{inc}");

    // bob's step passes: nobody pages him.
    let created = crate::harness::time_of(&inc["created_at"]);
    let bob_due = created + chrono::Duration::seconds(BOB_AFTER_SECS as i64 + 1);
    let wait = (bob_due - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(
        wait > Duration::ZERO,
        "alice acked after bob's step was due: the test is too slow"
    );
    tokio::time::sleep(wait).await;
    let pages = s.catcher.pages();
    assert!(
        pages.iter().all(|p| p.target() != "bob"),
        "bob was paged after alice acked: {}",
        crate::catcher::describe(&pages)
    );
    assert!(
        pages.iter().any(|p| p.target() == "alice"),
        "alice was never paged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_znc_an_alert_line_becomes_an_incident_and_only_alices_account_acks_it() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(Via::Znc(&znc), &format!("{BOB_AFTER_SECS}s"), "").await;
    only_the_acker_account_stops_escalation(s, net.port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_with_sasl_an_alert_line_becomes_an_incident_and_only_alices_account_acks_it() {
    let net = network().await;
    let s = tocsin(Via::Direct(&net), &format!("{BOB_AFTER_SECS}s"), "").await;
    only_the_acker_account_stops_escalation(s, net.port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_replayed_by_znc_after_a_restart_act_on_nothing() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let mut s = tocsin(Via::Znc(&znc), "1h", "").await;
    let relay = person(net.port(), "relay", None).await;
    let alice = person(net.port(), "alice", Some(("alice", "alicepass"))).await;
    let id = alert_from_the_relay(&s, &relay, &alice).await;

    // tocsin is away; ZNC keeps what is said for the next attach.
    s.app.stop().await;
    alice.say(ALERTS, &format!("!ack {id}")).await;
    alice.say("agent", &format!("ack {id}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    s.app.restart().await;
    wait_link_up(&s.app).await;
    // The playback has been read by now: a live command after it is answered.
    let mark = alice.mark();
    alice.say(ALERTS, "!status").await;
    alice
        .wait_since(mark, "the answer to !status", SOON, |l| {
            said_by_agent(l) && l.contains("alice: tocsin")
        })
        .await;
    let inc = s.app.incident(id).await;
    assert_eq!(inc["state"], "triggered", "a replayed !ack acted: {inc}");

    // The same words said live do act: the filter is about history, not the words.
    alice.say(ALERTS, &format!("!ack {id}")).await;
    eventually("the live !ack", SOON, || async {
        (s.app.incident(id).await["state"] == "acknowledged").then_some(())
    })
    .await;
    let acks = s.app.incident(id).await["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "acked")
        .count();
    assert_eq!(acks, 1, "one ack, once");

    // alice on her phone, in no channel tocsin shares: the account is asked with WHOIS.
    let phone = Human::connect(net.port(), "alice_phone", Login::Sasl("alice", "alicepass")).await;
    let mark = phone.mark();
    phone.say("agent", &format!("unack {id}")).await;
    phone
        .wait_since(mark, "the answer by private message", SOON, |l| {
            l.contains(":agent!") && l.contains(&format!("#{id} is triggered again"))
        })
        .await;
    assert_eq!(s.app.incident(id).await["state"], "triggered");
}

/// tocsin is stopped (an upgrade) while the relay posts; ZNC keeps the line and replays
/// it on the next attach, and tocsin started again on the same data dir reads it: how far
/// it had heard IRC before the restart is in the store, not only in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_posted_while_tocsin_restarts_opens_its_incident_from_znc_replay() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let mut s = tocsin(Via::Znc(&znc), "1h", "").await;
    let relay = person(net.port(), "relay", None).await;
    // The channel was quiet while tocsin listened: only the relay joining.
    tokio::time::sleep(Duration::from_secs(1)).await;

    s.app.stop().await;
    relay
        .say(ALERTS, "Alert DiskFull on db1:9100 is firing")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    s.app.restart().await;
    wait_link_up(&s.app).await;
    let incident = eventually(
        "the replayed alert line to open an incident",
        SOON,
        || async { s.app.incidents(Some("triggered")).await.into_iter().next() },
    )
    .await;
    assert_eq!(incident["source"], "irc", "{incident}");
    assert_eq!(incident["labels"]["instance"], "db1:9100", "{incident}");
}

/// The relay's recovery line said while tocsin restarts resolves the incident its firing
/// line opened; the firing line, replayed again, opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_posted_while_tocsin_restarts_resolves_its_incident_from_znc_replay() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let mut s = tocsin(Via::Znc(&znc), "1h", "").await;
    let relay = person(net.port(), "relay", None).await;
    let id = alert_from_the_relay(&s, &relay, &relay).await;

    s.app.stop().await;
    relay
        .say(ALERTS, "Alert DiskFull on db1:9100 is resolved")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    s.app.restart().await;
    wait_link_up(&s.app).await;
    eventually(
        "the replayed recovery to resolve the incident",
        SOON,
        || async { (s.app.incident(id).await["state"] == "resolved").then_some(()) },
    )
    .await;
    // The firing line, replayed too, was heard before the restart: it opens nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = s.app.incidents(None).await;
    assert_eq!(all.len(), 1, "{all:#?}");
}

/// The relay reports a second instance of the same alert: one incident, whose labels are
/// what both share (no `instance`), as Alertmanager's commonLabels would be; when the
/// second recovers, the first's instance is the incident's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incidents_labels_are_what_its_firing_irc_alerts_share() {
    let net = network().await;
    let s = tocsin(Via::Direct(&net), "1h", "").await;
    let relay = person(net.port(), "relay", None).await;
    let id = alert_from_the_relay(&s, &relay, &relay).await;

    relay
        .say(ALERTS, "Alert DiskFull on db2:9100 is firing")
        .await;
    let inc = eventually("db2 to join the incident", SOON, || async {
        let inc = s.app.incident(id).await;
        (inc["alerts"].as_array().map_or(0, Vec::len) == 2).then_some(inc)
    })
    .await;
    assert_eq!(
        inc["labels"],
        serde_json::json!({ "alertname": "DiskFull" }),
        "{inc}"
    );
    assert_eq!(
        s.app.incidents(None).await.len(),
        1,
        "one incident for the group"
    );

    relay
        .say(ALERTS, "Alert DiskFull on db2:9100 is resolved")
        .await;
    let inc = eventually("db2's recovery", SOON, || async {
        let inc = s.app.incident(id).await;
        (inc["labels"]["instance"] == "db1:9100").then_some(inc)
    })
    .await;
    assert_eq!(inc["state"], "triggered", "db1 still fires: {inc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn znc_killed_and_restarted_the_bot_is_back_and_sums_up_what_it_missed() {
    let net = network().await;
    let mut znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(Via::Znc(&znc), "1h", "").await;
    let watcher = person(net.port(), "watcher", None).await;

    znc.kill().await;
    eventually("tocsin to notice the bouncer is gone", SOON, || async {
        (metric(&s.app, "tocsin_irc_link_up").await == Some(0.0)).then_some(())
    })
    .await;
    // Two incidents open while the channel cannot be reached.
    for name in ["DiskFull", "LoadHigh"] {
        let r = s.app.post_alerts(&alerts::firing(name)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    eventually("both announcements to fail", SOON, || async {
        let mut failed = 0;
        for id in [1, 2] {
            let kinds = history_kinds(&s.app.incident(id).await);
            failed += usize::from(kinds.iter().any(|k| k == "page_failed"));
        }
        (failed == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mark = watcher.mark();
    let restarted = Instant::now();
    znc.restart().await;
    let line = watcher
        .wait_since(mark, "the summary of what was missed", SOON * 2, |l| {
            said_by_agent(l) && l.contains("missed")
        })
        .await;
    let back_after = restarted.elapsed();
    println!("bot back in {ALERTS} and summarizing {back_after:?} after ZNC restarted: {line}");
    // reconnect_max is 2 s; ZNC takes ~0.5 s to listen and ~1.5 s to be back upstream.
    assert!(back_after <= Duration::from_secs(8), "{back_after:?}");
    assert!(line.contains("missed 2 announcements"), "{line}");
    assert!(
        line.contains("DiskFull") && line.contains("LoadHigh"),
        "{line}"
    );
    // One summary line, not the announcements one by one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let agent_lines = watcher.lines()[mark..]
        .iter()
        .filter(|l| said_by_agent(l))
        .count();
    assert_eq!(agent_lines, 1, "{:#?}", &watcher.lines()[mark..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_bouncer_is_noticed_by_the_bots_own_ping_deadline() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(Via::Znc(&znc), "1h", "").await;
    let paused = Instant::now();
    znc.pause();
    eventually("the link to be declared dead", SOON, || async {
        (metric(&s.app, "tocsin_irc_link_up").await == Some(0.0)).then_some(())
    })
    .await;
    let took = paused.elapsed();
    println!("hung ZNC noticed after {took:?} (ping interval 2s + timeout 3s)");
    // Worst case: paused just after a PONG, so the next PING goes 2 s later and its
    // deadline ends 3 s after that; 2 s of slack for a loaded machine.
    assert!(took <= Duration::from_secs(7), "{took:?}");
    znc.resume();
    wait_link_up(&s.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_from_irc_and_alerts_is_refused_or_cleaned_and_nothing_is_lost() {
    let net = network().await;
    let s = tocsin(Via::Direct(&net), "1h", "").await;
    let port = net.port();
    let relay = person(port, "relay", None).await;
    let alice = person(port, "alice", Some(("alice", "alicepass"))).await;

    // A 600-byte alert line is cut by the server at 512 bytes (and then matches no
    // pattern); the longest line that arrives is read, with a capped title.
    relay
        .say(
            ALERTS,
            &format!("Alert Cut{} on db9 is firing", "y".repeat(600)),
        )
        .await;
    let long = "x".repeat(420);
    let mark = alice.mark();
    relay
        .say(ALERTS, &format!("Alert Long{long} on db2 is firing"))
        .await;
    let inc = eventually("the long alert's incident", SOON, || async {
        s.app.incidents(Some("triggered")).await.into_iter().next()
    })
    .await;
    let id = inc["id"].as_u64().unwrap();
    assert!(
        inc["title"].as_str().unwrap().chars().count() <= 201,
        "{inc}"
    );
    alice
        .wait_since(mark, "the long announcement", SOON, |l| {
            said_by_agent(l) && l.contains(&format!("[#{id}]"))
        })
        .await;

    // CR/LF in labels from a webhook alert: the announcement is one line, and the
    // injected command never reaches the server.
    let mut evil: Value = alerts::firing("Evil");
    evil["commonLabels"]["alertname"] = "Evil\r\nPRIVMSG #alerts :injected\r\nQUIT :pwned".into();
    evil["alerts"][0]["labels"]["alertname"] = evil["commonLabels"]["alertname"].clone();
    evil["groupLabels"]["alertname"] = evil["commonLabels"]["alertname"].clone();
    evil["commonAnnotations"] = serde_json::json!({ "summary": "z".repeat(600) });
    let mark = alice.mark();
    assert_eq!(s.app.post_alerts(&evil).await.status, 200);
    alice
        .wait_since(mark, "the Evil announcement", SOON, |l| {
            said_by_agent(l) && l.contains("Evil")
        })
        .await;
    // Invalid UTF-8 and unknown commands, then a command that must still be answered.
    alice
        .send_bytes(b"PRIVMSG #alerts :caf\xe9 \xff\xfe !ack 1\r\n")
        .await;
    alice.say(ALERTS, "!frobnicate").await; // another bot's command: silence
    alice.say(ALERTS, "agent: frobnicate").await;
    alice
        .wait_since(mark, "the unknown-command answer", SOON, |l| {
            said_by_agent(l) && l.contains("unknown command")
        })
        .await;
    alice.say(ALERTS, "!ack 99999").await;
    alice
        .wait_since(mark, "no such incident", SOON, |l| {
            said_by_agent(l) && l.contains("no incident #99999")
        })
        .await;
    alice.say(ALERTS, &format!("!snooze {id} banana")).await;
    alice
        .wait_since(mark, "the duration complaint", SOON, |l| {
            said_by_agent(l) && l.contains("\"banana\" is not a duration")
        })
        .await;
    alice.say(ALERTS, &format!("!snooze {id} 30m")).await;
    alice
        .wait_since(mark, "the snooze", SOON, |l| {
            said_by_agent(l) && l.contains(&format!("#{id} snoozed for 30m"))
        })
        .await;
    let after: Vec<String> = alice.lines()[mark..].to_vec();
    // The words arrive as text inside the one announcement line, never as commands.
    let injected = |l: &String| {
        // `... :agent!agent@host COMMAND params`: what the server relayed as our command.
        let Some((_, from_agent)) = l.split_once(":agent!") else {
            return false;
        };
        let command = from_agent.split_once(' ').map_or("", |(_, c)| c);
        command.starts_with("QUIT") || command.starts_with(&format!("PRIVMSG {ALERTS} :injected"))
    };
    assert!(
        !after.iter().any(injected),
        "an injected command reached the server: {after:#?}"
    );
    assert!(
        !after
            .iter()
            .any(|l| l.contains("frobnicate") && said_by_agent(l) && l.contains("!frobnicate")),
        "{after:#?}"
    );
    let unknown_answers = after
        .iter()
        .filter(|l| said_by_agent(l) && l.contains("unknown command"))
        .count();
    assert_eq!(
        unknown_answers, 1,
        "only the addressed one is answered: {after:#?}"
    );
    // The server relays `:agent!user@host PRIVMSG ...` plus CR LF within 512 bytes;
    // a longer line would have been cut, so every announcement must fit whole.
    for l in alice.lines().iter().filter(|l| said_by_agent(l)) {
        let (_, message) = l.split_once(" :agent!").unwrap();
        let relayed = ":agent!".len() + message.len() + 2;
        assert!(relayed <= 512, "over 512 bytes ({relayed}): {l}");
    }
    assert_eq!(
        metric(&s.app, "tocsin_irc_link_up").await,
        Some(1.0),
        "the link survived"
    );
    assert_eq!(
        s.app.incident(id).await["state"],
        "acknowledged",
        "snoozed = acked until then"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_to_znc_the_link_comes_up_and_an_alert_line_is_announced() {
    let net = network().await;
    let znc = Znc::start_tls(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(Via::ZncTls(&znc), "1h", "").await;
    let relay = person(net.port(), "relay", None).await;
    alert_from_the_relay(&s, &relay, &relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_storm_incidents_lists_what_is_open_and_ack_all_acks_every_triggered_one() {
    let net = network().await;
    let s = tocsin(Via::Direct(&net), "1h", "").await;
    let alice = person(net.port(), "alice", Some(("alice", "alicepass"))).await;
    for name in ["CpuHot", "MemLow", "DiskFull"] {
        assert_eq!(s.app.post_alerts(&alerts::firing(name)).await.status, 200);
    }
    let mark = alice.mark();
    alice.say(ALERTS, "!incidents").await;
    let list = alice
        .wait_since(mark, "the list of open incidents", SOON, |l| {
            said_by_agent(l) && l.contains("alice: 3 open:")
        })
        .await;
    for name in ["CpuHot", "MemLow", "DiskFull"] {
        assert!(list.contains(name), "{list}");
    }
    alice.say(ALERTS, "!ack all").await;
    let answer = alice
        .wait_since(mark, "the answer to !ack all", SOON, |l| {
            said_by_agent(l) && l.contains("acknowledged by alice:")
        })
        .await;
    assert!(answer.ends_with("#1 #2 #3"), "{answer}");
    for inc in s.app.incidents(None).await {
        assert_eq!(inc["state"], "acknowledged", "{inc}");
        assert_eq!(inc["acked_by"], "alice", "{inc}");
    }
    alice.say(ALERTS, "!ack all").await;
    alice
        .wait_since(mark, "nothing left to ack", SOON, |l| {
            said_by_agent(l) && l.contains("nothing to ack")
        })
        .await;
}

/// `!incidents`, `!oncall` and `!status` name incidents, who acked, who is on call and
/// the links tocsin depends on: once credentials are configured they answer ackers
/// only, in the channel and by private message, like the API's reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_set_incidents_oncall_and_status_answer_only_ackers() {
    const TOKEN: &str = "irc-test-master-token-0123456789";
    let net = network().await;
    let mut token = NamedTempFile::new().unwrap();
    write!(token, "{TOKEN}").unwrap();
    // /metrics stays open for the harness's wait for the link.
    let server = format!(
        "\n[server]\nauth_token_file = \"{}\"\nmetrics_public = true\n",
        token.path().display()
    );
    let mut s = tocsin(Via::Direct(&net), "1h", &server).await;
    s.app.authorization = Some(format!("Bearer {TOKEN}"));
    let relay = person(net.port(), "relay", None).await;
    let mallory = person(net.port(), "mallory", None).await;
    alert_from_the_relay(&s, &relay, &mallory).await;

    let mark = mallory.mark();
    mallory.say(ALERTS, "!incidents").await;
    let line = mallory
        .wait_since(mark, "the answer to mallory's !incidents", SOON, |l| {
            said_by_agent(l) && l.contains("mallory: ")
        })
        .await;
    assert!(
        line.contains("sorry") && !line.contains("DiskFull"),
        "{line}"
    );
    let mark = mallory.mark();
    mallory.say(ALERTS, "!oncall").await;
    let line = mallory
        .wait_since(mark, "the answer to mallory's !oncall", SOON, |l| {
            said_by_agent(l) && l.contains("mallory: ")
        })
        .await;
    assert!(line.contains("sorry"), "{line}");
    let mark = mallory.mark();
    mallory.say("agent", "status").await;
    let line = mallory
        .wait_since(mark, "the answer to mallory's private status", SOON, |l| {
            l.contains(":agent!") && l.contains("PRIVMSG mallory :")
        })
        .await;
    assert!(line.contains("sorry") && !line.contains("IRC"), "{line}");

    let alice = person(net.port(), "alice", Some(("alice", "alicepass"))).await;
    let mark = alice.mark();
    alice.say(ALERTS, "!incidents").await;
    alice
        .wait_since(mark, "alice's list", SOON, |l| {
            said_by_agent(l) && l.contains("alice: ") && l.contains("DiskFull")
        })
        .await;
}

/// The relay is logged in as relaybot and its pattern names that account. It quits;
/// mallory takes the nick `relay` without an account and posts the recovery: the
/// incident stays triggered (before `from_account`, the nick mask alone let her line
/// resolve it and stop paging), and the forged line is counted. The relay's own
/// recovery still resolves it.
async fn a_forged_resolve_from_the_relays_nick_resolves_nothing(s: Setup, port: u16) {
    let relay = person(port, "relay", Some(("relaybot", "relaypass"))).await;
    let id = alert_from_the_relay(&s, &relay, &relay).await;
    relay.quit().await;

    let mallory = person(port, "relay", None).await;
    mallory
        .say(ALERTS, "Alert DiskFull on db1:9100 is resolved")
        .await;
    mallory.quit().await;

    // Lines are read in order: once the relay's next line has opened its incident,
    // mallory's has been read too.
    let relay = person(port, "relay", Some(("relaybot", "relaypass"))).await;
    relay
        .say(ALERTS, "Alert Canary on web1:9100 is firing")
        .await;
    eventually(
        "the relay's next line to open its incident",
        SOON,
        || async {
            let open = s.app.incidents(Some("triggered")).await;
            open.iter()
                .any(|i| i["labels"]["alertname"] == "Canary")
                .then_some(())
        },
    )
    .await;
    let inc = s.app.incident(id).await;
    assert_eq!(inc["state"], "triggered", "a forged line resolved: {inc}");
    assert_eq!(
        metric(&s.app, "tocsin_irc_forged_lines_total").await,
        Some(1.0)
    );

    relay
        .say(ALERTS, "Alert DiskFull on db1:9100 is resolved")
        .await;
    eventually("the relay's own recovery", SOON, || async {
        (s.app.incident(id).await["state"] == "resolved").then_some(())
    })
    .await;
}

async fn network_with_relaybot() -> IrcNet {
    let net = network().await;
    net.register("relaybot", "relaypass").await;
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_znc_a_forged_resolve_from_someone_holding_the_relay_nick_resolves_nothing() {
    let net = network_with_relaybot().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin_reading(Via::Znc(&znc), RELAY_BY_ACCOUNT, "", &alice_then_bob("1h")).await;
    a_forged_resolve_from_the_relays_nick_resolves_nothing(s, net.port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_a_forged_resolve_from_someone_holding_the_relay_nick_resolves_nothing() {
    let net = network_with_relaybot().await;
    let s = tocsin_reading(
        Via::Direct(&net),
        RELAY_BY_ACCOUNT,
        "",
        &alice_then_bob("1h"),
    )
    .await;
    a_forged_resolve_from_the_relays_nick_resolves_nothing(s, net.port()).await;
}

/// Twelve clients flood the bot by private message (`status`, whose answers queued
/// ahead of pages, and `ack`, which cost a WHOIS each) just before the relay posts an
/// alert: the incident opens, its announcement is not stuck behind some sixty answers
/// (at 2 lines a second, half a minute), and the link stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pm_flood_does_not_hold_up_the_announcement_of_an_alert() {
    const FLOODERS: usize = 12;
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(Via::Znc(&znc), "1h", "").await;
    let port = net.port();
    let relay = person(port, "relay", None).await;
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..FLOODERS {
        connecting
            .spawn(async move { Human::connect(port, &format!("flood{i}"), Login::None).await });
    }
    let flooders = connecting.join_all().await;
    let registered = metric(&s.app, "tocsin_irc_registrations_total").await;

    for (i, f) in flooders.iter().enumerate() {
        for _ in 0..4 {
            f.say("agent", "status").await;
        }
        f.say("agent", &format!("ack {i}")).await;
    }
    // The answers are queued by the time the relay speaks.
    flooders[0]
        .wait_for("the first answer", SOON, |l| l.contains(":agent!"))
        .await;
    let t0 = Instant::now();
    alert_from_the_relay(&s, &relay, &relay).await;
    let took = t0.elapsed();
    assert!(took < SOON, "announced after {took:?}");
    assert_eq!(metric(&s.app, "tocsin_irc_link_up").await, Some(1.0));
    assert_eq!(
        metric(&s.app, "tocsin_irc_registrations_total").await,
        registered,
        "the link dropped"
    );
}

/// carol's first method is a PM to her nick, her second a page a minute later. She is
/// not on IRC: the server answers 401, and the page falls over to the next method at
/// once (it was counted as delivered to nobody, and the next method waited its minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_to_a_nick_nobody_holds_falls_over_at_once() {
    let net = network().await;
    let carol = r#"
[contacts.carol]
methods = [
  { notifier = "chan", to = "carol" },
  { notifier = "hook", to = "carol@pager", after = "1m" },
]
[policies.default]
steps = [{ after = "0s", notify = ["carol"] }]
"#;
    let s = tocsin_reading(Via::Direct(&net), RELAY_BY_MASK, "", carol).await;
    let relay = person(net.port(), "relay", None).await;
    relay
        .say(ALERTS, "Alert DiskFull on db1:9100 is firing")
        .await;
    let t0 = Instant::now();
    let pages = s.catcher.wait_for_pages(1, SOON).await;
    assert_eq!(
        pages[0].target(),
        "carol",
        "{}",
        crate::catcher::describe(&pages)
    );
    assert!(t0.elapsed() < SOON, "failed over after {:?}", t0.elapsed());
    let id = s.app.incidents(Some("triggered")).await[0]["id"]
        .as_u64()
        .unwrap();
    let inc = s.app.incident(id).await;
    let to_nick = inc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["to"] == "carol" && p["notifier"] == "chan")
        .cloned()
        .unwrap_or_else(|| panic!("no page to the nick: {inc}"));
    assert_ne!(to_nick["status"], "delivered", "{to_nick}");
    assert!(
        to_nick["error"].as_str().unwrap_or("").contains("401"),
        "{to_nick}"
    );
}

/// `!oncall` answers from the calendar the engine pages by and the overrides in the
/// store: bob is the only member of ops, until an override puts carol in his place; a
/// schedule added by a config reload is known from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_in_the_channel_names_who_is_on_call_and_follows_overrides_and_reloads() {
    let net = network().await;
    let schedule = r#"
[contacts.carol]
methods = [{ notifier = "hook", to = "carol@pager" }]

[rotations.ops]
time_zone = "America/Chicago"
type = "weekly"
start = "2020-01-06T09:00"
members = ["bob"]

[schedules.primary]
time_zone = "America/Chicago"
rules = [{ rotation = "ops" }]
"#;
    let people = format!("{}{schedule}", alice_then_bob("1h"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.toml");
    let s = tocsin_configured(Via::Direct(&net), RELAY_BY_MASK, "", &people, Some(&file)).await;
    let alice = person(net.port(), "alice", Some(("alice", "alicepass"))).await;

    let mark = alice.mark();
    alice.say(ALERTS, "!oncall").await;
    alice
        .wait_since(mark, "who is on call", SOON, |l| {
            said_by_agent(l) && l.ends_with("alice: primary: bob (rotation ops)")
        })
        .await;

    let to = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let made = s
        .app
        .client
        .post(s.app.url("/api/v1/schedules/primary/overrides"))
        .json(&serde_json::json!({
            "kind": "replace", "contact": "bob", "with": "carol", "to": to, "by": "alice",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{:?}", made.text().await);
    let mark = alice.mark();
    alice.say(ALERTS, "!oncall primary").await;
    let line = alice
        .wait_since(mark, "carol in bob's place", SOON, |l| {
            said_by_agent(l) && l.contains("alice: primary: carol (override 1) until ")
        })
        .await;
    assert!(line.ends_with(" CST") || line.ends_with(" CDT"), "{line}");

    let mark = alice.mark();
    alice.say(ALERTS, "!oncall secondary").await;
    alice
        .wait_since(mark, "the schedules there are", SOON, |l| {
            said_by_agent(l) && l.ends_with("alice: no schedule \"secondary\"; schedules: primary")
        })
        .await;

    let mut config = std::fs::read_to_string(&file).unwrap();
    config.push_str(
        "\n[schedules.secondary]\ntime_zone = \"Europe/Berlin\"\nrules = [{ contact = \"alice\" }]\n",
    );
    std::fs::write(&file, config).unwrap();
    let r = s.app.reload().await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mark = alice.mark();
    alice.say(ALERTS, "!oncall secondary").await;
    alice
        .wait_since(mark, "the schedule the reload added", SOON, |l| {
            said_by_agent(l) && l.ends_with("alice: secondary: alice (rule)")
        })
        .await;
    // Every schedule, a line each.
    let mark = alice.mark();
    alice.say(ALERTS, "!oncall").await;
    for (line, schedule) in [
        ("primary: carol (override 1) until ", "primary"),
        ("secondary: alice (rule)", "secondary"),
    ] {
        alice
            .wait_since(mark, schedule, SOON, |l| {
                said_by_agent(l) && l.contains(&format!("alice: {line}"))
            })
            .await;
    }
}

/// `!maint` from the channel: alice (an acker) starts a window whose quoted matcher
/// holds a space, lists it, extends it and ends it; mallory, who is no acker, may not
/// even list; a window that is gone is the engine's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_in_the_channel_starts_lists_extends_and_ends_a_window_for_ackers_only() {
    let net = network().await;
    let s = tocsin(Via::Direct(&net), "1h", "").await;
    let alice = person(net.port(), "alice", Some(("alice", "alicepass"))).await;
    let mallory = person(net.port(), "mallory", None).await;
    let answer =
        |who: &'static str| move |l: &str| said_by_agent(l) && l.contains(&format!(" :{who}: "));

    // alice gives five commands, as many as one sender may in 10 s.
    let mark = alice.mark();
    alice
        .say(
            ALERTS,
            "!maint start 2h alertname=\"DiskFull\" job=\"node exporter\" disk swap on db1",
        )
        .await;
    let line = alice
        .wait_since(mark, "the window started", SOON, answer("alice"))
        .await;
    assert!(
        line.contains("maintenance #1 started by alice until ")
            && line.contains(" for alertname=\"DiskFull\" job=\"node exporter\": "),
        "{line}"
    );
    let listed: serde_json::Value = s
        .app
        .client
        .get(s.app.url("/api/v1/maintenance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let w = &listed["maintenance"][0];
    assert_eq!(
        w["matchers"],
        serde_json::json!(["alertname=\"DiskFull\"", "job=\"node exporter\""]),
        "{listed}"
    );
    assert_eq!(w["comment"], "disk swap on db1");
    assert_eq!(w["by"], "alice");

    let mark = mallory.mark();
    mallory.say(ALERTS, "!maint").await;
    let line = mallory
        .wait_since(mark, "mallory refused", SOON, answer("mallory"))
        .await;
    assert!(
        line.contains("sorry") && !line.contains("disk swap"),
        "{line}"
    );
    let mark = mallory.mark();
    mallory.say(ALERTS, "!maint end 1").await;
    let line = mallory
        .wait_since(mark, "mallory may not end it", SOON, answer("mallory"))
        .await;
    assert!(line.contains("sorry"), "{line}");

    let mark = alice.mark();
    alice.say(ALERTS, "!maint").await;
    alice
        .wait_since(mark, "the window listed", SOON, |l| {
            answer("alice")(l)
                && l.contains("#1 alertname=\"DiskFull\" job=\"node exporter\" until ")
                && l.ends_with(" UTC by alice: disk swap on db1")
        })
        .await;

    let mark = alice.mark();
    alice.say(ALERTS, "!maint extend 1 1h").await;
    alice
        .wait_since(mark, "extended", SOON, |l| {
            answer("alice")(l) && l.contains("maintenance #1 extended by alice until ")
        })
        .await;
    let listed: serde_json::Value = s
        .app
        .client
        .get(s.app.url("/api/v1/maintenance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (from, to) = (
        time_of(&listed["maintenance"][0]["from"]),
        time_of(&listed["maintenance"][0]["to"]),
    );
    assert_eq!(to - from, chrono::Duration::hours(3), "{listed}");

    let mark = alice.mark();
    alice.say(ALERTS, "!maint end 1").await;
    alice
        .wait_since(mark, "ended", SOON, |l| {
            answer("alice")(l)
                && l.contains("maintenance #1 ended by alice; what it held pages from step 1")
        })
        .await;
    let mark = alice.mark();
    alice.say(ALERTS, "!maint end 1").await;
    alice
        .wait_since(mark, "the engine's refusal", SOON, |l| {
            answer("alice")(l) && l.ends_with("no maintenance window 1 in force or ahead")
        })
        .await;
}
