//! Small server-rendered HTML pages (ack links, mail bodies): escaping and one page frame
//! with inline styles, so nothing is fetched from elsewhere.

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
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.45; color: #1b1b1b; }}
h1 {{ font-size: 1.35rem; }}
.incident {{ border: 1px solid #ccc; border-radius: .4rem; padding: .6rem .8rem; margin: .6rem 0; }}
.state-triggered {{ border-left: .4rem solid #c62828; }}
.state-acknowledged {{ border-left: .4rem solid #f9a825; }}
.state-resolved {{ border-left: .4rem solid #2e7d32; }}
button {{ font-size: 1.1rem; padding: .7rem 1.4rem; border-radius: .4rem; border: 0; background: #c62828; color: #fff; cursor: pointer; }}
.note {{ color: #555; font-size: .9rem; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = html_escape(title)
    )
}

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
}
