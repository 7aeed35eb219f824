//! Decoding of method parameters from a JSON object, lenient the way PHP clients send them, strict about keys.
//!
//! Numbers may arrive as strings, booleans as `true/"true"/"1"/1/"yes"` (and their opposites), lists as arrays,
//! objects of items or comma-separated strings. Every getter removes its key; [`Data::finish`] then refuses
//! whatever is left, so a typo never passes silently.

use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};

/// The `data` object of a call.
#[derive(Debug, Default)]
pub struct Data {
    map: Map<String, Value>,
}

/// An optional field of an edit: absent (leave it), cleared (`null` or `""`), or set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch<T> {
    Keep,
    Clear,
    Set(T),
}

impl Data {
    /// `null`, `[]` and `{}` are an empty object; any other non-object is refused.
    pub fn new(v: Value) -> Result<Data> {
        match v {
            Value::Object(map) => Ok(Data { map }),
            Value::Null => Ok(Data::default()),
            Value::Array(a) if a.is_empty() => Ok(Data::default()),
            _ => Err(Error::new(Code::BadRequest, "data must be an object")),
        }
    }

    /// Refuses every key no getter took, naming each.
    pub fn finish(&mut self) -> Result<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self.map.keys().cloned().collect();
        let data: Map<String, Value> = names
            .iter()
            .map(|k| (k.clone(), Value::String("unknown parameter".into())))
            .collect();
        Err(
            Error::new(Code::InvalidParams, format!("unknown parameter: {}", names.join(", ")))
                .with_data(Value::Object(data)),
        )
    }

    /// Takes a key; `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.shift_remove(key).filter(|v| !v.is_null())
    }

    /// Whether every key has been taken.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` (not `null`) is the one key left.
    pub fn only(&self, key: &str) -> bool {
        self.map.len() == 1 && self.has(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// A text value; numbers and booleans are accepted as their text. `""` counts as absent.
    pub fn str(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => scalar_text(&v)
                .map(|s| Some(s).filter(|s| !s.is_empty()))
                .ok_or_else(|| bad(key, "a string")),
        }
    }

    pub fn req_str(&mut self, key: &str) -> Result<String> {
        self.str(key)?.ok_or_else(|| Error::param(key, "is required"))
    }

    /// An optional text field of an edit: absent keeps, `null` or `""` clears.
    pub fn patch_str(&mut self, key: &str) -> Result<Patch<String>> {
        match self.map.shift_remove(key) {
            None => Ok(Patch::Keep),
            Some(Value::Null) => Ok(Patch::Clear),
            Some(v) => match scalar_text(&v) {
                Some(s) if s.is_empty() => Ok(Patch::Clear),
                Some(s) => Ok(Patch::Set(s)),
                None => Err(bad(key, "a string")),
            },
        }
    }

    /// An integer, from a JSON integer or a decimal string.
    pub fn int(&mut self, key: &str) -> Result<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(v) => as_int(&v).map(Some).ok_or_else(|| bad(key, "an integer")),
        }
    }

    pub fn req_int(&mut self, key: &str) -> Result<i64> {
        self.int(key)?.ok_or_else(|| Error::param(key, "is required"))
    }

    /// An optional integer of an edit: absent keeps, `null` or `""` clears.
    pub fn patch_int(&mut self, key: &str) -> Result<Patch<i64>> {
        match self.map.shift_remove(key) {
            None => Ok(Patch::Keep),
            Some(Value::Null) => Ok(Patch::Clear),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(Patch::Clear),
            Some(v) => as_int(&v).map(Patch::Set).ok_or_else(|| bad(key, "an integer")),
        }
    }

    /// A record id: a positive integer.
    pub fn id(&mut self, key: &str) -> Result<Option<i64>> {
        match self.int(key)? {
            Some(id) if id <= 0 => Err(bad(key, "a positive integer id")),
            other => Ok(other),
        }
    }

    pub fn req_id(&mut self, key: &str) -> Result<i64> {
        self.id(key)?.ok_or_else(|| Error::param(key, "is required"))
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => as_bool(&v).map(Some).ok_or_else(|| bad(key, "a boolean")),
        }
    }

    /// A page number: 1 or more, 1 when absent.
    pub fn page(&mut self, key: &str) -> Result<i64> {
        match self.int(key)? {
            None => Ok(1),
            Some(n) if n >= 1 => Ok(n),
            Some(_) => Err(bad(key, "1 or more")),
        }
    }

    /// A page size from 1 to `max`, `default` when absent; values out of range are refused, never clamped.
    pub fn per_page(&mut self, key: &str, default: i64, max: i64) -> Result<i64> {
        match self.int(key)? {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(_) => Err(bad(key, &format!("from 1 to {max}"))),
        }
    }

    /// A list: a JSON array, an object whose values are the items, or a comma-separated string.
    pub fn list(&mut self, key: &str) -> Result<Option<Vec<Value>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(Value::Object(o)) => Ok(Some(o.into_iter().map(|(_, v)| v).collect())),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )),
            Some(v @ Value::Number(_)) => Ok(Some(vec![v])),
            Some(_) => Err(bad(key, "a list")),
        }
    }

    /// A list of positive ids.
    pub fn ids(&mut self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        let ids = items
            .iter()
            .map(|v| as_int(v).filter(|id| *id > 0))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| bad(key, "a list of positive integer ids"))?;
        if ids.is_empty() {
            return Err(Error::param(key, "must name at least one id"));
        }
        Ok(Some(ids))
    }
}

fn bad(key: &str, what: &str) -> Error {
    Error::param(key, format!("must be {what}"))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer from a JSON integer or a decimal string (no floats, no exponents, within i64).
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        }
        _ => None,
    }
}

pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => crate::config::parse_bool(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Data {
        Data::new(v).unwrap()
    }

    #[test]
    fn envelopes_data_forms() {
        assert!(Data::new(Value::Null).is_ok());
        assert!(Data::new(json!([])).is_ok());
        assert_eq!(Data::new(json!([1])).unwrap_err().code, Code::BadRequest);
        assert_eq!(Data::new(json!("x")).unwrap_err().code, Code::BadRequest);
    }

    #[test]
    fn lenient_scalars() {
        let mut d = data(json!({"a": "12", "b": 7, "c": "yes", "d": 0, "e": "x", "f": 1.5, "g": "-3"}));
        assert_eq!(d.int("a").unwrap(), Some(12));
        assert_eq!(d.id("b").unwrap(), Some(7));
        assert_eq!(d.bool("c").unwrap(), Some(true));
        assert_eq!(d.bool("d").unwrap(), Some(false));
        assert_eq!(d.int("e").unwrap_err().code, Code::InvalidParams);
        assert!(d.int("f").is_err());
        assert_eq!(d.id("g").unwrap_err().code, Code::InvalidParams);
        d.finish().unwrap();
    }

    #[test]
    fn lists_in_three_forms() {
        let mut d = data(json!({"a": [1, "2"], "b": {"x": 3, "y": "4"}, "c": "5, 6", "d": [0]}));
        assert_eq!(d.ids("a").unwrap(), Some(vec![1, 2]));
        assert_eq!(d.ids("b").unwrap(), Some(vec![3, 4]));
        assert_eq!(d.ids("c").unwrap(), Some(vec![5, 6]));
        assert!(d.ids("d").is_err());
    }

    #[test]
    fn patches_and_unknown_keys() {
        let mut d = data(json!({"a": null, "b": "", "c": "v", "typo": 1, "other": 2}));
        assert_eq!(d.patch_str("a").unwrap(), Patch::Clear);
        assert_eq!(d.patch_str("b").unwrap(), Patch::Clear);
        assert_eq!(d.patch_str("c").unwrap(), Patch::Set("v".into()));
        assert_eq!(d.patch_str("z").unwrap(), Patch::Keep);
        let e = d.finish().unwrap_err();
        assert_eq!(e.code, Code::InvalidParams);
        assert_eq!(
            e.data.unwrap(),
            json!({"typo": "unknown parameter", "other": "unknown parameter"})
        );
    }

    #[test]
    fn required_fields_are_named() {
        let mut d = data(json!({}));
        let e = d.req_str("description").unwrap_err();
        assert_eq!(e.data.unwrap(), json!({"description": "is required"}));
    }
}
