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

/// What ChromeDriver answered instead of a value.
#[derive(Debug)]
struct DriverError {
    status: reqwest::StatusCode,
    /// The W3C error code: `no such element`, `stale element reference`, ...
    error: String,
    message: String,
}

impl DriverError {
    /// The element is not on the page (yet), or the page replaced it after it was found:
    /// finding it again may succeed. Anything else (a bad selector, a dead session) will
    /// not get better by waiting.
    fn look_again(&self) -> bool {
        matches!(
            self.error.as_str(),
            "no such element" | "stale element reference"
        )
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

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
        self.try_call(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    /// One WebDriver command: its `value`, or the error the driver answered with. A
    /// driver that cannot be reached or answers something other than JSON panics: no
    /// retry helps there.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
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
        if status.is_success() {
            return Ok(v["value"].clone());
        }
        Err(DriverError {
            status,
            error: v["value"]["error"].as_str().unwrap_or_default().to_string(),
            message: v["value"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
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

    /// The element matching `selector` now.
    async fn try_find(&self, using: &str, selector: &str) -> Result<Element, DriverError> {
        let v = self
            .try_call(
                reqwest::Method::POST,
                &self.at("/element"),
                Some(json!({ "using": using, "value": selector })),
            )
            .await?;
        // The W3C element reference is an object with one (oddly named) key.
        let id = v
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("WebDriver found {selector:?} but sent no element: {v}"));
        Ok(Element(id.to_string()))
    }

    /// Finds the element matching `selector` and reads `what` of it (`text`,
    /// `property/value`): two WebDriver calls, so the page may replace the element in
    /// between.
    async fn try_read(
        &self,
        using: &str,
        selector: &str,
        what: &str,
    ) -> Result<String, DriverError> {
        let e = self.try_find(using, selector).await?;
        let v = self
            .try_call(
                reqwest::Method::GET,
                &self.at(&format!("/element/{}/{what}", e.0)),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Finds and reads until what it reads is `want` (any text when `None`), for up to
    /// [`PATIENCE`]. An element not there yet, or replaced between finding and reading
    /// (a click that navigates, a script that re-renders), is looked for again; at the
    /// deadline it panics with what it last saw and the page.
    async fn read_until(
        &self,
        using: &str,
        selector: &str,
        what: &str,
        want: Option<&str>,
    ) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = match self.try_read(using, selector, what).await {
                Ok(got) if want.is_none_or(|w| got == w) => return got,
                Ok(got) => format!("it read {got:?}"),
                Err(e) if e.look_again() => e.to_string(),
                Err(e) => panic!("reading the {what} of {selector:?}: {e}"),
            };
            if Instant::now() >= deadline {
                let wanted = want.map_or(String::new(), |w| format!(" as {w:?}"));
                self.give_up(&format!(
                    "the {what} of {selector:?} was not read{wanted} within {PATIENCE:?}: \
                     last, {last}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Panics with `why`, the page's address and its source.
    async fn give_up(&self, why: &str) -> ! {
        let url = self.current_url().await;
        let source = self
            .call(reqwest::Method::GET, &self.at("/source"), None)
            .await;
        panic!("{why}\non {url}; the page:\n{source}");
    }

    async fn find_by(&self, using: &str, selector: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = match self.try_find(using, selector).await {
                Ok(e) => return e,
                Err(e) if e.look_again() => e,
                Err(e) => panic!("finding {selector:?}: {e}"),
            };
            if Instant::now() >= deadline {
                self.give_up(&format!(
                    "no element {selector:?} within {PATIENCE:?} (last answer: {last})"
                ))
                .await;
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

    /// The rendered text of the element matching `css`, found afresh (and again, should
    /// the page replace it before it is read), waiting up to [`PATIENCE`].
    pub async fn text_of(&self, css: &str) -> String {
        self.read_until("css selector", css, "text", None).await
    }

    /// Like [`Browser::text_of`], by XPath.
    pub async fn text_of_xpath(&self, xpath: &str) -> String {
        self.read_until("xpath", xpath, "text", None).await
    }

    /// The current value of the form field matching `css`, found afresh like
    /// [`Browser::text_of`].
    pub async fn value_of(&self, css: &str) -> String {
        self.read_until("css selector", css, "property/value", None)
            .await
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

    /// Waits until the element matching `css` reads `want`, looking it up afresh each
    /// time (the page after a click replaces it); panics after [`PATIENCE`] with what it
    /// read last.
    pub async fn wait_for_text(&self, css: &str, want: &str) {
        self.read_until("css selector", css, "text", Some(want))
            .await;
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
