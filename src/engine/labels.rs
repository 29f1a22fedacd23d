//! Label and annotation sets kept as the JSON text they arrived in.
//!
//! An alert's labels are read by people and stored, but the engine never looks inside
//! them. Keeping the validated JSON text (one allocation) instead of a map (one per key
//! and value) cuts the memory of a storm in flight several times and spares the store's
//! writer from re-serializing every alert.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object of strings to strings.
#[derive(Clone, PartialEq, Eq)]
pub struct LabelSet(Box<str>);

impl LabelSet {
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        LabelSet(
            serde_json::to_string(map)
                .expect("a map of strings always serializes")
                .into_boxed_str(),
        )
    }

    /// Checks that `raw` is an object of strings to strings and keeps its text.
    pub fn from_raw(raw: &RawValue) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_map(StringMapCheck)
            .map_err(|e| format!("must be an object of strings to strings ({e})"))?;
        Ok(LabelSet(raw.get().into()))
    }

    /// The JSON text, as stored.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// One value, found by walking the text: no map is built (the heartbeat check asks
    /// this of every alert of every webhook).
    pub fn get(&self, name: &str) -> Option<String> {
        let mut de = serde_json::Deserializer::from_str(&self.0);
        de.deserialize_map(FindKey(name)).ok().flatten()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

impl Default for LabelSet {
    fn default() -> Self {
        LabelSet("{}".into())
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Walks an object without building it: borrowed strings are dropped at once.
struct StringMapCheck;

impl<'de> Visitor<'de> for StringMapCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A key given twice would be read one way by `get` (the first) and another by
        // `to_map` (the last): a payload could pass the heartbeat check as `Watchdog`
        // and be shown and routed as something else.
        let mut seen = std::collections::HashSet::new();
        while let Some((k, _)) = map.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
            if seen.contains(&k) {
                return Err(de::Error::custom(format!("{k:?} appears twice")));
            }
            seen.insert(k);
        }
        Ok(())
    }
}

/// Walks an object and keeps only the value of one key.
struct FindKey<'n>(&'n str);

impl<'de> Visitor<'de> for FindKey<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut found = None;
        while let Some((k, v)) = map.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
            if found.is_none() && k == self.0 {
                found = Some(v.into_owned());
            }
        }
        Ok(found)
    }
}

/// Written back as the JSON object it holds (an input forwarded between instances).
impl serde::Serialize for LabelSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for LabelSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &RawValue = serde::Deserialize::deserialize(d)?;
        LabelSet::from_raw(raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_and_refuses_non_string_values() {
        let ok: LabelSet = serde_json::from_str(r#"{"a":"1","b":"x\ny"}"#).unwrap();
        assert_eq!(ok.json(), r#"{"a":"1","b":"x\ny"}"#);
        assert_eq!(ok.get("b").as_deref(), Some("x\ny"));
        assert_eq!(ok.get("a").as_deref(), Some("1"));
        assert_eq!(ok.get("c"), None);
        assert!(serde_json::from_str::<LabelSet>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<LabelSet>(r#"["a"]"#).is_err());
    }
}
