//! Where things are in the spanned TOML tree: key paths like
//! `policies.default.steps[1].after`, the span (and so the line) a path points at, and the
//! path to the key serde stopped at.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A key path like `policies.default.steps[1].after`.
#[derive(Clone, Default)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

#[derive(Clone)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub(super) fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub(super) fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Span of the last key (or array item) of `at` that exists in the file.
pub(super) fn span_of(root: &DeValue<'_>, at: &KeyPath) -> Option<Range<usize>> {
    let mut cur = root;
    let mut best = None;
    for seg in &at.0 {
        let next = match (cur, seg) {
            (DeValue::Table(t), Seg::Key(k)) => {
                t.get_key_value(k.as_str()).map(|(k, v)| (k.span(), v))
            }
            (DeValue::Array(a), Seg::Index(i)) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((span, v)) = next else { break };
        best = Some(span);
        cur = v.get_ref();
    }
    best
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The path, below `value`, of the deepest key or item whose span holds `span`.
pub(super) fn path_to_span(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    let below = |seg: Seg, v: &Spanned<DeValue<'_>>| {
        if let Some(mut deeper) = path_to_span(v.get_ref(), span) {
            deeper.insert(0, seg);
            return Some(deeper);
        }
        contains(&v.span(), span).then(|| vec![seg])
    };
    match value {
        DeValue::Table(t) => t.iter().find_map(|(k, v)| {
            let seg = Seg::Key(k.get_ref().to_string());
            if contains(&k.span(), span) {
                Some(vec![seg])
            } else {
                below(seg, v)
            }
        }),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| below(Seg::Index(i), v)),
        _ => None,
    }
}

/// Drops the key whose span is `span` (an unknown key serde stopped at), anywhere below `value`.
pub(super) fn remove_key_at(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(t) => {
            let hit = t
                .iter()
                .find(|(k, _)| k.span() == *span)
                .map(|(k, _)| k.get_ref().to_string());
            if let Some(name) = hit {
                t.remove(name.as_str());
                return true;
            }
            t.iter_mut().any(|(_, v)| remove_key_at(v.get_mut(), span))
        }
        DeValue::Array(a) => a.iter_mut().any(|v| remove_key_at(v.get_mut(), span)),
        _ => false,
    }
}
