//! `Browser`: a real headless Chromium driven through ChromeDriver's W3C WebDriver HTTP
//! API with plain reqwest, for the web view's tests (`web.rs`).
//!
//! Chromium and ChromeDriver come from Debian (`apt-get install chromium
//! chromium-driver`, which scripts/test.sh does); a missing binary fails the test with
//! that hint instead of skipping it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::free_port;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The viewport's width in CSS pixels: a small phone.
pub const PHONE_WIDTH: u32 = 375;

/// ChromeDriver answers `/status` well within this after it starts.
const DRIVER_READY: Duration = Duration::from_secs(10);
/// Page loads and element waits on a busy CI machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A ChromeDriver process with one browser session, closed and killed on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    /// Chromium's profile: fresh for every browser.
    _profile: TempDir,
}

/// A WebDriver element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the web view tests drive a real headless Chromium through \
         ChromeDriver. Install them with `apt-get install chromium chromium-driver` \
         (scripts/test.sh does it); package {package} provides {path}."
    );
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium that renders like a phone:
    /// [`PHONE_WIDTH`] CSS pixels wide, at twice the pixel density.
    pub async fn start() -> Browser {
        require(CHROMIUM, "chromium");
        require(CHROMEDRIVER, "chromium-driver");
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let profile = tempfile::tempdir().expect("a Chromium profile dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            http,
            _profile: profile,
        };
        b.wait_for_driver().await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    format!("--user-data-dir={}", b._profile.path().display()),
                    "--window-size=390,844",
                ],
                // Headless windows are at least 500 px wide; a phone's viewport is not.
                "mobileEmulation": {
                    "deviceMetrics": {"width": PHONE_WIDTH, "height": 812, "pixelRatio": 2},
                },
            },
        }}});
        let v = b.call(reqwest::Method::POST, "/session", Some(caps)).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in the new session: {v}"))
            .to_string();
        b
    }

    async fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Some(status) = self.driver.try_wait().expect("chromedriver status") {
                panic!("{CHROMEDRIVER} exited at start: {status}");
            }
            if let Ok(r) = self
                .http
                .get(format!("http://127.0.0.1:{}/status", self.port))
                .send()
                .await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{CHROMEDRIVER} did not answer /status within {DRIVER_READY:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One WebDriver command; panics with the driver's error. Returns its `value`.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON: {e}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed ({status}): {} {}",
            v["value"]["error"],
            v["value"]["message"]
        );
        v["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.at("/url"),
            Some(json!({ "url": url })),
        )
        .await;
    }

    pub async fn current_url(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/url"), None)
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The element matching `selector` now, if any.
    async fn try_find(&self, using: &str, selector: &str) -> Option<Element> {
        let url = format!("http://127.0.0.1:{}{}", self.port, self.at("/element"));
        let resp = self
            .http
            .post(url)
            .json(&json!({ "using": using, "value": selector }))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: Value = resp.json().await.ok()?;
        // The W3C element reference is an object with one (oddly named) key.
        v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(|id| Element(id.to_string()))
    }

    async fn find_by(&self, using: &str, selector: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.try_find(using, selector).await {
                return e;
            }
            if Instant::now() >= deadline {
                let url = self.current_url().await;
                let source = self
                    .call(reqwest::Method::GET, &self.at("/source"), None)
                    .await;
                panic!("no element {selector:?} on {url} within {PATIENCE:?}; the page:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element matching a CSS selector, waiting up to [`PATIENCE`] for it.
    pub async fn find(&self, css: &str) -> Element {
        self.find_by("css selector", css).await
    }

    /// The element matching an XPath, waiting up to [`PATIENCE`] for it.
    pub async fn find_xpath(&self, xpath: &str) -> Element {
        self.find_by("xpath", xpath).await
    }

    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{}/click", e.0)),
            Some(json!({})),
        )
        .await;
    }

    /// The element's rendered text.
    pub async fn text(&self, e: &Element) -> String {
        let v = self
            .call(
                reqwest::Method::GET,
                &self.at(&format!("/element/{}/text", e.0)),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// A form field's current value.
    pub async fn value(&self, e: &Element) -> String {
        let v = self
            .call(
                reqwest::Method::GET,
                &self.at(&format!("/element/{}/property/value", e.0)),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Clears a text field and types `text` into it.
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{}/clear", e.0)),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{}/value", e.0)),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Waits until the element matching `css` reads `want`; returns what it read last.
    pub async fn wait_for_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = match self.try_find("css selector", css).await {
                Some(e) => self.text(&e).await,
                None => String::new(),
            };
            if got == want || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.at("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The widths of the viewport and of the page's content: a page that fits a phone
    /// never needs the whole page scrolled sideways (wide tables scroll by themselves).
    pub async fn widths(&self) -> (u64, u64) {
        let v = self
            .execute("return [window.innerWidth, document.documentElement.scrollWidth];")
            .await;
        (
            v[0].as_u64().expect("innerWidth"),
            v[1].as_u64().expect("scrollWidth"),
        )
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self
            .call(reqwest::Method::GET, &self.at("/screenshot"), None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("the screenshot is base64")
    }

    /// Ends the session (Chromium exits); the driver is killed on drop.
    pub async fn quit(mut self) {
        if !self.session.is_empty() {
            self.call(reqwest::Method::DELETE, &self.at(""), None).await;
            self.session.clear();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never called `quit`: end the session here (blocking, raw
        // HTTP, no runtime needed) so Chromium does not outlive the test.
        if !self.session.is_empty()
            && let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
