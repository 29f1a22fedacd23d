//! Small server-rendered HTML pages (ack links, the web view, mail bodies): escaping and
//! one page frame with an inline stylesheet, so nothing is fetched from elsewhere.

/// Escapes text for HTML element content and double-quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` is text (escaped here), `body` is HTML the caller built.
pub fn page(title: &str, body: &str) -> String {
    shell(title, "", "", body)
}

/// A page of the web view: wider, with `nav` (HTML) in a header above the title.
pub fn app_page(title: &str, nav: &str, body: &str) -> String {
    shell(
        title,
        " class=\"wide\"",
        &format!("<header>{nav}</header>\n"),
        body,
    )
}

fn shell(title: &str, body_attrs: &str, header: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body{body_attrs}>
{header}<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = html_escape(title)
    )
}

/// The one stylesheet, inline: nothing is fetched from elsewhere. Colour only repeats
/// what the text says (states are words); wide tables scroll inside `.scroll` on a phone.
const STYLE: &str = "
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.45; color: #1b1b1b; background: #fff; }
body.wide { max-width: 64rem; }
h1 { font-size: 1.35rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin-top: 1.8rem; }
a { color: #0b57d0; }
a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
header nav { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1.2rem; padding-bottom: .6rem; border-bottom: 1px solid #ddd; }
header nav form { margin: 0; }
.brand { font-weight: 700; color: #1b1b1b; text-decoration: none; }
.incident { border: 1px solid #ccc; border-radius: .4rem; padding: .6rem .8rem; margin: .6rem 0; }
.incident.state-triggered { border-left: .4rem solid #c62828; }
.incident.state-acknowledged { border-left: .4rem solid #f9a825; }
.incident.state-resolved { border-left: .4rem solid #2e7d32; }
button { font: inherit; font-size: 1.1rem; padding: .7rem 1.4rem; border-radius: .4rem; border: 0; background: #c62828; color: #fff; cursor: pointer; }
button.quiet { background: #455a64; }
button.small { font-size: .95rem; padding: .35rem .8rem; }
.note { color: #555; font-size: .9rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; }
th, td { text-align: left; vertical-align: top; padding: .45rem .5rem; border-bottom: 1px solid #e0e0e0; }
th { white-space: nowrap; }
td.title { min-width: 10rem; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .3rem; font-size: .85rem; font-weight: 600; white-space: nowrap; }
.s-triggered, .s-down { color: #a31515; background: #fdecea; }
.s-acknowledged, .s-degraded { color: #6d4600; background: #fff1c7; }
.s-resolved, .s-up { color: #1b5e20; background: #e6f4e7; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.labels { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: .25rem; }
code { font-size: .88em; background: #f1f3f4; padding: 0 .25rem; border-radius: .2rem; overflow-wrap: break-word; }
form.act { display: flex; flex-wrap: wrap; gap: .7rem; margin: 1.2rem 0; }
form.act .field { flex: 1 0 100%; }
form.login { display: grid; gap: .8rem; max-width: 22rem; }
label { display: block; font-weight: 600; }
input[type=text], input[type=password], textarea { display: block; box-sizing: border-box; width: 100%; max-width: 20rem; font: inherit; padding: .55rem .6rem; margin-top: .2rem; border: 1px solid #767676; border-radius: .3rem; }
@media (max-width: 40rem) {
  body { margin: 1rem auto; }
  th, td { padding: .4rem .35rem; }
  form.act button { flex: 1 1 auto; }
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  table.cards tr { display: block; padding: .5rem 0; border-bottom: 1px solid #e0e0e0; }
  table.cards td { display: inline-block; padding: .1rem .8rem .1rem 0; border: 0; }
  table.cards td.title { display: block; min-width: 0; }
  table.cards td[data-label]::before { content: attr(data-label) \": \"; color: #555; }
}
";

/// Sent with every page: never cached, never framed (the buttons act), nothing loaded
/// from elsewhere, forms only post back here. The referrer goes to tocsin only (an ack
/// link's token never leaves it): with none at all a browser would send `Origin: null`
/// with the page's own forms, and tocsin could not tell them from another site's.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_an_alert_is_shown_as_text() {
        assert_eq!(
            html_escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn both_frames_escape_the_title_and_fit_a_phone() {
        for html in [
            page("<b>x</b>", "<p>body</p>"),
            app_page("<b>x</b>", "<nav>n</nav>", "<p>body</p>"),
        ] {
            assert!(html.contains("<h1>&lt;b&gt;x&lt;/b&gt;</h1>"), "{html}");
            assert!(
                html.contains("<title>&lt;b&gt;x&lt;/b&gt;</title>"),
                "{html}"
            );
            assert!(html.contains(r#"<meta name="viewport""#), "{html}");
            assert!(html.contains("<main>\n<h1>"), "{html}");
            assert!(html.contains("<p>body</p>"), "{html}");
            assert!(html.contains(".incident.state-triggered"), "{html}");
        }
        assert!(app_page("t", "<nav>n</nav>", "").contains("<header><nav>n</nav></header>"));
    }
}
