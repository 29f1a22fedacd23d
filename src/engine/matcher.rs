//! Alertmanager label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//!
//! Same semantics as Alertmanager: regexes are anchored at both ends, and a label that
//! is absent matches as the empty string (so `team!="db"` matches alerts with no team).

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    op: Op,
    value: String,
    regex: Option<Regex>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Matcher {
    /// Parses one matcher as written in `routes.matchers`.
    pub fn parse(input: &str) -> Result<Matcher, String> {
        let s = input.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| {
                format!("matcher {input:?} has no operator: write it like severity=\"critical\"")
            })?;
        let name = &s[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "matcher {input:?} must start with a label name: write it like severity=\"critical\""
            ));
        }
        let rest = s[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (Op::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Eq, r)
        } else {
            return Err(format!(
                "matcher {input:?}: expected one of =, !=, =~, !~ after {name:?}"
            ));
        };
        let value = unquote(rest.trim()).map_err(|e| format!("matcher {input:?}: {e}"))?;
        let regex = match op {
            Op::Re | Op::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("matcher {input:?}: invalid regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.contains(['"', ',', '{', '}']) {
            return Err(format!(
                "unquoted value {v:?} contains quotes, commas or braces"
            ));
        }
        return Ok(v.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| format!("value {v:?} has no closing quote"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(o) => {
                    // Regexes need their backslashes (`\d`); keep unknown escapes verbatim.
                    out.push('\\');
                    out.push(o);
                }
                None => return Err("value ends with a lone backslash".into()),
            },
            '"' => return Err(format!("value {v:?} has an unescaped quote inside")),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn all_four_operators_behave_like_alertmanager() {
        let l = labels(&[("severity", "critical"), ("instance", "db1:9100")]);
        assert!(
            Matcher::parse(r#"severity="critical""#)
                .unwrap()
                .matches(&l)
        );
        assert!(Matcher::parse("severity=critical").unwrap().matches(&l));
        assert!(
            !Matcher::parse(r#"severity!="critical""#)
                .unwrap()
                .matches(&l)
        );
        assert!(
            Matcher::parse(r#"instance=~"db\d:.*""#)
                .unwrap()
                .matches(&l)
        );
        // anchored: a substring does not match
        assert!(!Matcher::parse(r#"instance=~"db1""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"instance!~"web.*""#).unwrap().matches(&l));
        // an absent label is the empty string
        assert!(Matcher::parse(r#"team!="db""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"team="""#).unwrap().matches(&l));
    }

    #[test]
    fn malformed_matchers_say_what_is_wrong() {
        assert!(Matcher::parse("severity").unwrap_err().contains("operator"));
        assert!(
            Matcher::parse(r#"severity=~"(""#)
                .unwrap_err()
                .contains("regex")
        );
        assert!(
            Matcher::parse(r#"severity="crit"#)
                .unwrap_err()
                .contains("closing quote")
        );
        assert!(
            Matcher::parse(r#"=critical"#)
                .unwrap_err()
                .contains("label name")
        );
    }
}
