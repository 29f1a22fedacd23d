//! Requests that other sites' pages make a browser send. By default tocsin listens on
//! loopback without credentials, and a page open in a browser on the same machine can
//! still POST to it: a form, or `fetch` in `no-cors` mode, needs nobody's permission as
//! long as its body is `text/plain`, a urlencoded form or `multipart/form-data` (the
//! "simple" types, which the browser sends without asking tocsin first). A page on a DNS
//! name of the attacker's that now resolves to tocsin's address (rebinding) is even
//! same-origin to the browser, and may send anything.
//!
//! Two checks keep those pages out, and neither gets in the way of a program (curl, the
//! CLI, Alertmanager, a cron job), which sends no `Origin`:
//!
//! - [`json_only`]: the API's actions, the Alertmanager hook and `/-/reload` act only on
//!   `Content-Type: application/json`, which a browser sends to another origin only
//!   after a CORS preflight that tocsin never grants. Anything else is 415.
//! - [`Site`]: where a request says it comes from. `Host` must be a name nobody else can
//!   point at tocsin: the host of `server.public_url`, `localhost`, or an IP address
//!   (the listen address is one); another name is 421 Misdirected Request. `Origin`, or
//!   the `Referer`'s origin when a browser sent no `Origin`, must be tocsin's own,
//!   scheme, host and port: public_url's origin, or `http://` and the `Host` asked for
//!   (tocsin itself serves plain http; https is public_url's proxy). Otherwise, or with
//!   `Sec-Fetch-Site: cross-site` or `same-site`, 403. The web view's forms and the ack
//!   page's button are checked always, the JSON endpoints and heartbeats when a browser
//!   made the request, so Alertmanager may call tocsin by any name (`http://tocsin:9797`
//!   in the compose stack).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tracing::warn;
use url::{Host, Origin, Url};

use super::error;

/// Why a request is refused as not tocsin's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotOurs {
    /// `Host` is a name that is not tocsin's (a rebound DNS name): 421.
    Misdirected { host: String },
    /// The browser says another site's page sent it: 403. `from` is what it said.
    CrossSite { from: String },
}

impl NotOurs {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            NotOurs::Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
            NotOurs::CrossSite { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// What happened and what to do, for someone whose own use of tocsin was refused.
    pub(crate) fn explain(&self, site: &Site) -> String {
        match self {
            NotOurs::Misdirected { host } => format!(
                "tocsin does not answer to the name {host:?}: open it at its server.public_url ({}), \
                 localhost or an IP address. A name that is none of these may have been pointed \
                 at tocsin by another site (DNS rebinding), so nothing was changed. Behind a \
                 proxy, pass the Host of public_url on, or set public_url to the address people use",
                site.public_url
            ),
            NotOurs::CrossSite { from } => format!(
                "this request came from another site ({from:?}), not from tocsin's own pages \
                 ({}), so nothing was changed. Use tocsin's pages, the CLI or the API from a \
                 program; a page elsewhere cannot act here",
                site.public_url
            ),
        }
    }
}

/// tocsin's own names and origin, from `server.public_url` (a restart applies a new one).
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// As configured, for messages.
    public_url: String,
    /// Parsed; `None` only if it is not a URL, which config validation refuses.
    public: Option<Url>,
}

impl Site {
    pub(crate) fn new(public_url: &str) -> Site {
        Site {
            public_url: public_url.to_string(),
            public: Url::parse(public_url).ok(),
        }
    }

    /// For the web view's forms and the ack page's button: the `Host` is checked on
    /// every request, where it comes from whenever the browser says.
    pub(crate) fn check_form(&self, headers: &HeaderMap) -> Result<(), NotOurs> {
        self.check(headers, true)
    }

    /// For JSON endpoints and heartbeats: like [`Site::check_form`] when a browser made
    /// the request (it sent `Origin`, `Referer` or `Sec-Fetch-Site`); a program's
    /// request passes, whatever name it used for tocsin.
    pub(crate) fn check_call(&self, headers: &HeaderMap) -> Result<(), NotOurs> {
        self.check(headers, false)
    }

    fn check(&self, headers: &HeaderMap, always: bool) -> Result<(), NotOurs> {
        let get = |name: header::HeaderName| headers.get(name).map(text);
        let origin = get(header::ORIGIN);
        let referer = get(header::REFERER);
        let fetch_site = headers.get("sec-fetch-site").map(text);
        if !always && origin.is_none() && referer.is_none() && fetch_site.is_none() {
            return Ok(());
        }
        // Without a Host (HTTP/1.0) there is no name to check: browsers always send one.
        let own = match get(header::HOST) {
            None => None,
            Some(host) => Some(
                self.own_origin(&host)
                    .ok_or(NotOurs::Misdirected { host })?,
            ),
        };
        let claimed = origin.clone().or(referer);
        if let Some(site @ ("cross-site" | "same-site")) = fetch_site.as_deref() {
            return Err(NotOurs::CrossSite {
                from: claimed.unwrap_or_else(|| format!("Sec-Fetch-Site: {site}")),
            });
        }
        let Some(claimed) = claimed else {
            // Neither Origin nor Referer: a program, or a browser that tells nothing
            // (a cross-site form post always carries an Origin in today's browsers).
            return Ok(());
        };
        // `null` is what a sandboxed frame sends, and what a page that sends no referrer
        // sends with its own form posts: tocsin's only when the browser says so too.
        if origin.as_deref() == Some("null") {
            return match fetch_site.as_deref() {
                Some("same-origin") => Ok(()),
                _ => Err(NotOurs::CrossSite { from: claimed }),
            };
        }
        let from = Url::parse(&claimed)
            .map(|u| u.origin())
            .map_err(|_| NotOurs::CrossSite {
                from: claimed.clone(),
            })?;
        let public = self.public.as_ref().map(Url::origin);
        if Some(&from) == public.as_ref() || Some(&from) == own.as_ref() {
            Ok(())
        } else {
            Err(NotOurs::CrossSite {
                from: from.ascii_serialization(),
            })
        }
    }

    /// The origin of a page of tocsin's asked for as `host`, or `None` when `host` is
    /// not a name of tocsin's. Only the name matters here, not the port: a DNS name is
    /// what rebinding lends, and a container may publish tocsin on another port.
    fn own_origin(&self, host: &str) -> Option<Origin> {
        // A Host is `name[:port]`; nothing that could make a URL mean another host.
        if host.is_empty() || host.contains(['@', '/', '\\', '?', '#']) {
            return None;
        }
        let asked = Url::parse(&format!("http://{host}/")).ok()?;
        let name = asked.host()?;
        let public = self.public.as_ref().and_then(|u| u.host());
        let scheme = if Some(&name) == public.as_ref() {
            // Through public_url's proxy: its scheme (https) is the page's.
            self.public.as_ref()?.scheme()
        } else {
            match name {
                Host::Ipv4(_) | Host::Ipv6(_) | Host::Domain("localhost") => "http",
                Host::Domain(_) => return None,
            }
        };
        Url::parse(&format!("{scheme}://{host}/"))
            .ok()
            .map(|u| u.origin())
    }
}

/// A header's text; bytes that are not visible ASCII are shown escaped, not dropped, so
/// a value cannot pass for another.
fn text(v: &HeaderValue) -> String {
    match v.to_str() {
        Ok(s) => s.to_string(),
        Err(_) => v.as_bytes().escape_ascii().to_string(),
    }
}

/// For a JSON endpoint: the 421 or 403 (JSON) when a browser sent the request from
/// another site or under a name that is not tocsin's.
pub(crate) fn same_site_call(
    site: &Site,
    headers: &HeaderMap,
    what: &str,
) -> Result<(), Box<Response>> {
    site.check_call(headers).map_err(|r| {
        warn!(endpoint = what, refusal = ?r, "refused a request from another site");
        Box::new(error(r.status(), r.explain(site)))
    })
}

/// `Ok` when the request declares its body `application/json` (parameters such as
/// `; charset=utf-8` allowed); otherwise the 415 to send, saying what to send.
pub(crate) fn json_only(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let declared = headers.get(header::CONTENT_TYPE).map(text);
    let is_json = declared.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        return Ok(());
    }
    let what = match &declared {
        None => "the request declares no Content-Type".to_string(),
        Some(ct) => format!("Content-Type {ct:?} is not JSON"),
    };
    let mut resp = error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "{what}: send the JSON body with Content-Type: application/json \
             (curl: -H 'Content-Type: application/json', or --json). tocsin refuses other \
             types here because any web page can make a browser send them"
        ),
    );
    resp.headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Err(Box::new(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn misdirected(host: &str) -> Result<(), NotOurs> {
        Err(NotOurs::Misdirected { host: host.into() })
    }

    fn cross(from: &str) -> Result<(), NotOurs> {
        Err(NotOurs::CrossSite { from: from.into() })
    }

    #[test]
    fn a_form_counts_as_tocsins_own_only_from_tocsins_origin() {
        let site = Site::new("http://127.0.0.1:9797");
        let host = ("host", "127.0.0.1:9797");
        let ok = |h: &[(&'static str, &str)]| site.check_form(&headers(h));
        assert_eq!(ok(&[host]), Ok(()), "curl sends neither Origin nor Referer");
        assert_eq!(ok(&[host, ("origin", "http://127.0.0.1:9797")]), Ok(()));
        assert_eq!(ok(&[host, ("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(
            ok(&[host, ("referer", "http://127.0.0.1:9797/incidents/4")]),
            Ok(())
        );
        assert_eq!(
            ok(&[host, ("origin", "null"), ("sec-fetch-site", "same-origin")]),
            Ok(()),
            "tocsin's page with no-referrer, as a browser that says so"
        );
        assert_eq!(
            ok(&[host, ("origin", "http://evil.test")]),
            cross("http://evil.test")
        );
        assert_eq!(
            ok(&[host, ("origin", "http://127.0.0.1:8080")]),
            cross("http://127.0.0.1:8080"),
            "another port is another origin"
        );
        assert_eq!(
            ok(&[host, ("origin", "https://127.0.0.1:9797")]),
            cross("https://127.0.0.1:9797"),
            "another scheme is another origin"
        );
        assert_eq!(ok(&[host, ("origin", "null")]), cross("null"));
        assert_eq!(
            ok(&[host, ("referer", "http://evil.test/a?b")]),
            cross("http://evil.test")
        );
        assert_eq!(
            ok(&[host, ("sec-fetch-site", "cross-site")]),
            cross("Sec-Fetch-Site: cross-site")
        );
        assert_eq!(
            ok(&[
                host,
                ("sec-fetch-site", "same-site"),
                ("origin", "http://127.0.0.1:9797")
            ]),
            cross("http://127.0.0.1:9797"),
            "the browser's word wins over a matching Origin"
        );
    }

    #[test]
    fn only_names_nobody_else_can_point_at_tocsin_are_answered() {
        let site = Site::new("https://tocsin.example.com/");
        let form = |host: &str, origin: &str| {
            site.check_form(&headers(&[("host", host), ("origin", origin)]))
        };
        assert_eq!(
            form(
                "rebind.evil.example:9797",
                "http://rebind.evil.example:9797"
            ),
            misdirected("rebind.evil.example:9797")
        );
        assert_eq!(
            form("evil@127.0.0.1:9797", "http://127.0.0.1:9797"),
            misdirected("evil@127.0.0.1:9797")
        );
        assert_eq!(
            form("tocsin.example.com", "https://tocsin.example.com"),
            Ok(())
        );
        assert_eq!(
            form("TOCSIN.example.com:443", "https://tocsin.example.com"),
            Ok(())
        );
        assert_eq!(
            form("tocsin.example.com", "http://tocsin.example.com"),
            cross("http://tocsin.example.com"),
            "public_url is https: a plain-http page under its name is not tocsin's"
        );
        // A proxy that passes its own upstream address as Host; the page is public_url's.
        assert_eq!(form("127.0.0.1:9797", "https://tocsin.example.com"), Ok(()));
        assert_eq!(form("[::1]:9797", "http://[::1]:9797"), Ok(()));
        assert_eq!(
            form("localhost:8080", "http://localhost:8080"),
            Ok(()),
            "a container published on another port"
        );
        assert_eq!(
            form("10.0.0.5:9797", "http://10.0.0.5:9797"),
            Ok(()),
            "an address cannot be rebound"
        );
    }

    #[test]
    fn a_program_may_call_tocsin_by_any_name_a_browser_may_not() {
        let site = Site::new("http://127.0.0.1:9797");
        let am = headers(&[
            ("host", "tocsin:9797"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(site.check_call(&am), Ok(()), "Alertmanager in compose");
        assert_eq!(
            site.check_form(&am),
            misdirected("tocsin:9797"),
            "the web view answers only to its own names"
        );
        let rebound = headers(&[("host", "tocsin:9797"), ("origin", "http://tocsin:9797")]);
        assert_eq!(site.check_call(&rebound), misdirected("tocsin:9797"));
        let img = headers(&[("host", "127.0.0.1:9797"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(site.check_call(&img), cross("Sec-Fetch-Site: cross-site"));
    }

    #[test]
    fn only_a_body_declared_json_is_read_as_json() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
        ] {
            assert!(json_only(&headers(&[("content-type", ok)])).is_ok(), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "text/plain; application/json",
            "",
        ] {
            let r = json_only(&headers(&[("content-type", refused)])).unwrap_err();
            assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused}");
        }
        let r = json_only(&HeaderMap::new()).unwrap_err();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(r.headers()[header::ACCEPT], "application/json");
    }
}
