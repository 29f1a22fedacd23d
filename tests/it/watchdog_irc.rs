//! The meta-watchdog on the IRC link, against real servers: InspIRCd with Anope, ZNC 1.8
//! between tocsin and the network, and a real SMTP server (aiosmtpd) for the pages.
//!
//! tocsin reaches IRC through ZNC; the channel `source:irc` has three checks
//! (`connection` to the bouncer, `network` behind it, the end-to-end `probe`). Each test
//! breaks one part of the path the way it breaks in production and times the page that
//! reaches alice by mail. Every test prints one line `TIME-TO-PAGE <outage>: ...` (and
//! `TIME-TO-RECOVERY-PAGE` where it recovers) for the README.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::NamedTempFile;

use crate::harness::{TestApp, eventually, free_port, spawn_app};
use crate::ircnet::{ALERTS, IrcNet, Znc};
use crate::smtp::{Mail, SmtpCapture};

/// The IRC link's channel on the watchdog board.
const CHANNEL: &str = "source:irc";

/// A state change through real servers on a busy 2-core machine.
const SOON: Duration = Duration::from_secs(10);

/// How long a test keeps waiting for a page past its bound, so that a late page fails
/// the bound with its measured time instead of a bare timeout.
const OVERTIME: Duration = Duration::from_secs(10);

/// Link timers of a small deployment tuned to notice a dead bouncer within seconds.
const FAST_LINK: &str = r#"
ping_interval = "1s"
ping_timeout = "3s"
register_timeout = "3s"
reconnect_max = "2s"
"#;

struct Setup {
    app: TestApp,
    smtp: SmtpCapture,
    _password: NamedTempFile,
}

/// InspIRCd + Anope with the account `agent` that ZNC logs in as upstream.
async fn network() -> IrcNet {
    let net = IrcNet::start().await;
    net.register("agent", "agentpass").await;
    net
}

/// tocsin linked to IRC through `znc` (`extra_irc` added to `[sources.irc]`), with
/// `[watchdog] hold_down`, and alice paged by mail; returns once the link is up.
async fn tocsin(znc: &Znc, extra_irc: &str, hold_down: &str) -> Setup {
    let smtp = SmtpCapture::start(free_port(), None).await;
    let mut password = NamedTempFile::new().unwrap();
    write!(password, "{}", znc.pass_line()).unwrap();
    let config = format!(
        r#"
[sources.irc]
server = "127.0.0.1:{port}"
nick = "agent"
password_file = "{path}"
channels = ["{ALERTS}"]
{extra_irc}

[notifiers.mail]
type = "email"
smtp_url = "{smtp}"
from = "tocsin <tocsin@example.com>"
connect_timeout = "1s"
timeout = "2s"
max_attempts = 2
limits = {{ enabled = false }}

[contacts.alice]
methods = [{{ notifier = "mail", to = "alice@example.com" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"

[watchdog]
hold_down = "{hold_down}"
"#,
        port = znc.port(),
        path = password.path().display(),
        smtp = smtp.url(),
    );
    let app = spawn_app(&config).await;
    wait_link_up(&app).await;
    assert!(
        smtp.mails().is_empty(),
        "mail before anything broke: {:?}",
        smtp.mails().iter().map(subject).collect::<Vec<_>>()
    );
    Setup {
        app,
        smtp,
        _password: password,
    }
}

/// `source:irc` as `GET /api/v1/channels` shows it.
async fn channel_at(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.expect("GET /api/v1/channels");
    assert_eq!(r.status().as_u16(), 200, "GET /api/v1/channels");
    let body: Value = r.json().await.expect("channels JSON");
    body["channels"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == CHANNEL))
        .cloned()
        .unwrap_or_else(|| panic!("no {CHANNEL} channel in {body}"))
}

async fn channel(app: &TestApp) -> Value {
    channel_at(&app.client, &app.url("/api/v1/channels")).await
}

/// One check of a channel (`connection`, `network`, `probe`).
fn check<'a>(channel: &'a Value, name: &str) -> &'a Value {
    channel["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {channel}"))
}

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or("")
}

fn reason(v: &Value) -> &str {
    v["reason"].as_str().unwrap_or("")
}

/// Up for real: every check starts "up" with reason "starting", so the connection must
/// say it is connected and the network that it is there.
fn link_is_up(ch: &Value) -> bool {
    let connection = check(ch, "connection");
    let network = check(ch, "network");
    state(ch) == "up"
        && state(connection) == "up"
        && reason(connection).starts_with("connected to ")
        && state(network) == "up"
        && reason(network) == "the network is connected"
}

async fn wait_link_up(app: &TestApp) {
    eventually(
        "source:irc up (connected to ZNC, its network connected)",
        SOON * 2,
        || async { link_is_up(&channel(app).await).then_some(()) },
    )
    .await;
}

/// The decoded `Subject` of a mail.
fn subject(mail: &Mail) -> String {
    mail.subject()
}

/// The mails about the IRC link (subject naming `source:irc`), oldest first.
fn irc_mails(smtp: &SmtpCapture) -> Vec<Mail> {
    smtp.mails()
        .into_iter()
        .filter(|m| subject(m).contains(CHANNEL))
        .collect()
}

/// Waits until `n` mails about the IRC link arrived, at most `timeout`.
async fn wait_irc_mails(smtp: &SmtpCapture, n: usize, timeout: Duration, what: &str) -> Vec<Mail> {
    let deadline = Instant::now() + timeout;
    loop {
        let mails = irc_mails(smtp);
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} ({n} mail(s) naming {CHANNEL}); \
             every subject so far: {:?}",
            smtp.mails().iter().map(subject).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The incidents the watchdog opened.
async fn watchdog_incidents(app: &TestApp) -> Vec<Value> {
    app.incidents(None)
        .await
        .into_iter()
        .filter(|i| i["source"] == "watchdog")
        .collect()
}

/// The one incident there is, which must be the watchdog's about `source:irc`.
async fn the_outage(app: &TestApp) -> Value {
    let all = app.incidents(None).await;
    assert_eq!(
        all.len(),
        1,
        "expected exactly one incident, the watchdog's: {all:#?}"
    );
    let inc = all.into_iter().next().unwrap();
    assert_eq!(inc["source"], "watchdog", "{inc}");
    assert_eq!(inc["group_key"], CHANNEL, "{inc}");
    assert_eq!(inc["labels"]["alertname"], "TocsinChannelDown", "{inc}");
    assert_eq!(inc["labels"]["channel"], CHANNEL, "{inc}");
    let title = inc["title"].as_str().unwrap_or("");
    assert!(title.starts_with("source:irc is down: "), "title {title:?}");
    inc
}

/// The first mail is alice's page about the outage.
fn assert_is_the_page(mail: &Mail) {
    eprintln!(
        "page subject: {} (raw: {:?})",
        subject(mail),
        mail.header("subject")
    );
    assert_eq!(
        mail.rcpt_tos(),
        ["alice@example.com"],
        "{:?}",
        mail.envelope
    );
    let s = subject(mail);
    assert!(
        s.contains("TRIGGERED source:irc is down: "),
        "subject {s:?}"
    );
}

/// The mail that says the outage is over: to alice again, RESOLVED, state resolved.
fn assert_is_the_recovery(mail: &Mail, id: u64) {
    assert_eq!(
        mail.rcpt_tos(),
        ["alice@example.com"],
        "{:?}",
        mail.envelope
    );
    let s = subject(mail);
    assert!(
        s.starts_with(&format!("[#{id}] RESOLVED source:irc is down: ")),
        "the second mail is not the recovery: subject {s:?}"
    );
    let text = mail.part("text/plain");
    assert!(text.contains("state: resolved"), "{text}");
    assert!(
        !text.contains("Acknowledge: "),
        "a recovery asks nobody to act:\n{text}"
    );
}

/// Waits until incident `id` is resolved.
async fn wait_resolved(app: &TestApp, id: u64) -> Value {
    eventually(&format!("incident {id} to resolve"), SOON, || async {
        let inc = app.incident(id).await;
        (inc["state"] == "resolved").then_some(inc)
    })
    .await
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Waits for the page about an outage that began at `began`: prints its time to page,
/// holds `bound`, and returns the mails and the watchdog incident.
async fn expect_page(
    s: &Setup,
    outage: &str,
    began: Instant,
    bound: Duration,
    why: &str,
) -> (Vec<Mail>, Value) {
    let mails = wait_irc_mails(
        &s.smtp,
        1,
        bound + OVERTIME,
        &format!("the page about {outage}"),
    )
    .await;
    let took = began.elapsed();
    eprintln!(
        "TIME-TO-PAGE {outage}: {:.1} s (bound {} s = {why})",
        secs(took),
        bound.as_secs()
    );
    assert!(
        took <= bound,
        "{outage} was paged after {took:?}, over {bound:?}"
    );
    assert_is_the_page(&mails[0]);
    let inc = the_outage(&s.app).await;
    assert_eq!(inc["state"], "triggered", "{inc}");
    (mails, inc)
}

/// Waits for the recovery mail after the channel came back at `back`: prints its time,
/// holds `bound`, and checks the incident resolved and the link is up.
async fn expect_recovery(
    s: &Setup,
    outage: &str,
    back: Instant,
    bound: Duration,
    after: &str,
    id: u64,
) {
    let mails = wait_irc_mails(
        &s.smtp,
        2,
        bound + OVERTIME,
        &format!("the recovery mail after {after}"),
    )
    .await;
    let took = back.elapsed();
    eprintln!(
        "TIME-TO-RECOVERY-PAGE {outage}: {:.1} s after {after} (bound {} s)",
        secs(took),
        bound.as_secs()
    );
    assert!(
        took <= bound,
        "recovery mail after {took:?}, over {bound:?}"
    );
    assert_eq!(mails.len(), 2, "one page and one recovery");
    assert_is_the_recovery(&mails[1], id);
    let inc = wait_resolved(&s.app, id).await;
    assert!(inc["resolved_at"].is_string(), "{inc}");
    let ch = channel(&s.app).await;
    assert!(link_is_up(&ch), "{ch}");
    assert_eq!(ch["paging"], false, "{ch}");
}

/// A hung bouncer (a frozen VM): the socket stays open and nothing answers, so only
/// the bot's own PING deadline can tell. alice gets a mail within the PONG timeout plus
/// 5 s, naming a hung bouncer, and a recovery mail once it thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncer_hang_pages_by_email_and_recovers() {
    let net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    // reconnect_max 1 s (not 2 s): the first retry then starts exactly when the hold-down
    // ends, so the page is decided while the bot is already reconnecting, every time,
    // instead of in about one run out of four (backoff 1-2 s, jittered). That is the
    // case where the page could forget why the link died.
    let link = FAST_LINK.replace(r#"reconnect_max = "2s""#, r#"reconnect_max = "1s""#);
    let s = tocsin(&znc, &link, "1s").await;

    znc.pause();
    let paused = Instant::now();
    // Worst case: paused just after a PONG, so the next PING goes 1 s later and its
    // deadline ends 3 s after that; hold_down 1 s, the board is evaluated every 0.5 s.
    let bound = Duration::from_secs(3 + 5);
    let (mails, inc) = expect_page(
        &s,
        "bouncer_hang",
        paused,
        bound,
        "ping_timeout 3 s + 5 s; ping_interval 1 s, hold_down 1 s",
    )
    .await;
    let id = inc["id"].as_u64().unwrap();
    // Checked last (after the recovery), so the recovery is measured either way.
    let title = inc["title"].as_str().unwrap().to_string();
    assert!(
        subject(&mails[0]).contains(&title[..title.len().min(60)]),
        "the mail's subject carries the incident's title: {:?} vs {title:?}",
        subject(&mails[0])
    );
    let ch = channel(&s.app).await;
    assert_eq!(state(&ch), "down", "{ch}");
    assert_eq!(ch["paging"], true, "{ch}");
    assert_eq!(state(check(&ch, "connection")), "down", "{ch}");

    znc.resume();
    let resumed = Instant::now();
    // The bot may be in its backoff (up to reconnect_max 2 s) or waiting for a welcome
    // on a connection ZNC now answers; then hold_down 1 s and the evaluation tick.
    let bound = Duration::from_secs(10);
    expect_recovery(&s, "bouncer_hang", resumed, bound, "SIGCONT", id).await;
    assert_eq!(
        s.smtp.mails().len(),
        2,
        "no other mail: {:?}",
        s.smtp.mails().iter().map(subject).collect::<Vec<_>>()
    );

    // What woke alice must say the bouncer hangs, not that tocsin was busy reconnecting.
    assert!(
        title.contains("no PONG") || title.contains("no welcome"),
        "the page must say why the link died (a hung bouncer: no PONG / no welcome), \
         not what the bot was doing when the hold-down ended: {title:?}"
    );
}

/// ZNC killed (OOM killer, a crash): the connection closes and reconnects are refused.
/// alice gets a mail within hold_down + 5 s naming the dead connection, and a recovery
/// mail once ZNC is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncer_killed_pages_within_seconds_plus_grace() {
    let net = network().await;
    let mut znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let s = tocsin(&znc, FAST_LINK, "2s").await;

    znc.kill().await;
    let killed = Instant::now();
    let bound = Duration::from_secs(2 + 5);
    let (_, inc) = expect_page(&s, "bouncer_killed", killed, bound, "hold_down 2 s + 5 s").await;
    let id = inc["id"].as_u64().unwrap();
    let title = inc["title"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        title.contains("no working connection to 127.0.0.1:")
            && ["refused", "reset", "closed"]
                .iter()
                .any(|w| title.contains(w)),
        "the page must say the connection to the bouncer is gone: {title:?}"
    );
    let ch = channel(&s.app).await;
    assert_eq!(state(check(&ch, "connection")), "down", "{ch}");
    assert_eq!(ch["paging"], true, "{ch}");

    znc.restart().await;
    let restarted = Instant::now();
    // reconnect_max 2 s; ZNC needs ~1-3 s to be back upstream (ConnectDelay 1 s, SASL,
    // InspIRCd's 1 s registration tick); then hold_down 2 s.
    let bound = Duration::from_secs(12);
    expect_recovery(
        &s,
        "bouncer_killed",
        restarted,
        bound,
        "ZNC listened again",
        id,
    )
    .await;
}

/// The IRC server dies behind a live ZNC: ZNC still answers the bot's PINGs, so only
/// ZNC's own *status says the network is gone. The page must name the network, not a
/// dead bouncer, and resolve when ZNC is back on the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_irc_server_killed_behind_a_live_znc_pages_naming_the_network() {
    let mut net = network().await;
    let znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    // Probes every 2 s, each given 30 s: a WHOIS swallowed during the outage is answered
    // by the first one after it, and no probe fails within the test.
    let link = format!("{FAST_LINK}probe_interval = \"2s\"\nprobe_timeout = \"30s\"\n");
    let s = tocsin(&znc, &link, "1s").await;

    net.kill_ircd().await;
    let killed = Instant::now();
    // ZNC reads EOF at once and says so on *status; hold_down 1 s + the 0.5 s tick.
    let bound = Duration::from_secs(1 + 5);
    let (mails, inc) = expect_page(
        &s,
        "upstream_ircd_killed",
        killed,
        bound,
        "hold_down 1 s + 5 s",
    )
    .await;
    let text = format!("{}\n{}", subject(&mails[0]), mails[0].part("text/plain"));
    assert!(
        text.contains("IRC network is not connected"),
        "the mail must name the network:\n{text}"
    );
    assert!(
        !text.contains("no working connection"),
        "the bouncer is alive; the mail blames it:\n{text}"
    );
    let id = inc["id"].as_u64().unwrap();
    let title = inc["title"].as_str().unwrap();
    assert!(
        title.contains(&format!(
            "the bouncer at 127.0.0.1:{} is up but its IRC network is not connected: ",
            znc.port()
        )),
        "{title:?}"
    );
    let ch = channel(&s.app).await;
    assert_eq!(state(&ch), "down", "{ch}");
    assert_eq!(ch["paging"], true, "{ch}");
    assert_eq!(state(check(&ch, "connection")), "up", "ZNC is alive: {ch}");
    assert_eq!(state(check(&ch, "network")), "down", "{ch}");

    // Anope relinks first, then the clients' port opens (see IrcNet::restart_ircd: else
    // ZNC's sasl module gives up), and ZNC, retrying every second, gets back in.
    let restarting = Instant::now();
    net.restart_ircd().await;
    let bound = Duration::from_secs(20);
    expect_recovery(
        &s,
        "upstream_ircd_killed",
        restarting,
        bound,
        "restarting InspIRCd",
        id,
    )
    .await;
}

/// What the board said about `source:irc`, polled every 50 ms.
#[derive(Debug, Clone)]
struct Seen {
    at: Duration,
    state: String,
    paging: bool,
    reason: String,
}

/// A link that drops and returns inside the hold-down (a bouncer restarted by its
/// supervisor) pages nobody: no mail, no incident. The test also proves the drop was
/// real (the board showed the channel down) and short (back before the hold-down), so
/// it fails if the hold-down stops damping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_link_inside_the_hold_down_pages_nobody() {
    const HOLD_DOWN: Duration = Duration::from_secs(10);
    let net = network().await;
    let mut znc = Znc::start(net.port(), Some(("agent", "agentpass"))).await;
    let link = r#"
ping_interval = "1s"
ping_timeout = "3s"
register_timeout = "3s"
reconnect_max = "1s"
"#;
    let s = tocsin(&znc, link, "10s").await;

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let dropped = Instant::now();
    znc.kill().await;
    let watcher = {
        let seen = seen.clone();
        let client = s.app.client.clone();
        let url = s.app.url("/api/v1/channels");
        tokio::spawn(async move {
            loop {
                let ch = channel_at(&client, &url).await;
                seen.lock().unwrap().push(Seen {
                    at: dropped.elapsed(),
                    state: state(&ch).to_string(),
                    paging: ch["paging"] == true,
                    reason: reason(&ch).to_string(),
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Back at once, like a supervisor restarting it.
    znc.restart().await;

    // Past the hold-down, with room for the evaluation tick and a page to be sent.
    let watch_until = HOLD_DOWN + Duration::from_secs(3);
    tokio::time::sleep(watch_until.saturating_sub(dropped.elapsed())).await;
    watcher.abort();
    let _ = watcher.await;
    let seen = seen.lock().unwrap().clone();

    let first_down = seen.iter().find(|s| s.state == "down").unwrap_or_else(|| {
        panic!("the channel was never seen down: the flap did not happen\n{seen:#?}")
    });
    let back = seen
        .iter()
        .filter(|s| s.at > first_down.at)
        .find(|s| s.state == "up")
        .unwrap_or_else(|| panic!("the link never came back: {seen:#?}"));
    eprintln!(
        "TIME-TO-PAGE flapping_link: no page (down {:.1} s from the kill, seen down after {:.2} s: {:?}; hold_down {} s, watched {} s)",
        secs(back.at),
        secs(first_down.at),
        first_down.reason,
        HOLD_DOWN.as_secs(),
        watch_until.as_secs()
    );
    assert!(
        back.at + Duration::from_secs(2) < HOLD_DOWN,
        "the link was down {:?}, not well inside the hold-down {HOLD_DOWN:?}: this test proves nothing",
        back.at
    );
    assert!(
        seen.iter().all(|s| !s.paging),
        "the board paged about the flap: {seen:#?}"
    );
    let mails = s.smtp.mails();
    assert!(
        mails.is_empty(),
        "a flap inside the hold-down paged: {:?}",
        mails.iter().map(subject).collect::<Vec<_>>()
    );
    let incidents = watchdog_incidents(&s.app).await;
    assert!(
        incidents.is_empty(),
        "the flap opened a watchdog incident: {incidents:#?}"
    );
    assert!(s.app.incidents(None).await.is_empty());
    let ch = channel(&s.app).await;
    assert!(link_is_up(&ch), "the channel is up after the flap: {ch}");
    assert_eq!(ch["paging"], false, "{ch}");
}
