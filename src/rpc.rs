//! The `/1.0` envelope adapter: decodes `{reqid, appkey, userdata, data}` (raw JSON or the form field `data=`),
//! hands the call to the dispatcher, and renders the manageips way: every scalar a string, record lists keyed by id.

use serde_json::{json, Map, Value};

use crate::dispatch::{Call, Credentials, Outcome};
use crate::error::{Code, Error};

/// A decoded envelope.
pub struct Envelope {
    pub reqid: Value,
    pub call: Call,
}

/// An envelope refused before dispatch, with its `reqid` when it could be read, so the error echoes it.
pub type Rejected = Box<(Value, Error)>;

/// Decodes a request body for `method`. `form` is true for `application/x-www-form-urlencoded` bodies.
pub fn decode(method: &str, body: &[u8], form: bool) -> std::result::Result<Envelope, Rejected> {
    let reject = |reqid: &Value, e: Error| Box::new((reqid.clone(), e));
    // `curl -d '{...}'` labels raw JSON as a form: a "form" that is a JSON object and has no `data=` is JSON.
    let raw_json = body.trim_ascii_start().starts_with(b"{");
    let json_text = if form && !raw_json {
        form_field(body, "data").ok_or_else(|| {
            reject(
                &Value::Null,
                Error::new(Code::BadRequest, "the form has no 'data' field"),
            )
        })?
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| reject(&Value::Null, Error::new(Code::BadRequest, "the body is not UTF-8")))?
    };
    let v: Value = serde_json::from_str(&json_text).map_err(|e| {
        reject(
            &Value::Null,
            Error::new(Code::BadRequest, format!("the body is not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut env) = v else {
        return Err(reject(
            &Value::Null,
            Error::new(Code::BadRequest, "the envelope must be a JSON object"),
        ));
    };
    let reqid = env.remove("reqid").unwrap_or(Value::Null);
    let mut text = |key: &str| match env.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(reject(
            &reqid,
            Error::new(Code::BadRequest, format!("'{key}' must be a string")),
        )),
    };
    let appkey = text("appkey")?;
    let userdata = text("userdata")?;
    let data = env.remove("data").unwrap_or(Value::Null);
    Ok(Envelope {
        reqid,
        call: Call {
            method: method.to_string(),
            credentials: Credentials::Envelope { appkey, userdata },
            data,
        },
    })
}

/// The response body for an outcome.
pub fn render(reqid: Value, method: &str, outcome: Outcome) -> Value {
    match outcome.result {
        Ok(v) => json!({"reqid": reqid, "respid": outcome.respid, "method": method, "response": manageips(v)}),
        Err(e) => error_body(reqid, &outcome.respid, method, &e),
    }
}

/// An error body in the envelope's shape.
pub fn error_body(reqid: Value, respid: &str, method: &str, e: &Error) -> Value {
    let mut body = json!({
        "reqid": reqid,
        "respid": respid,
        "method": method,
        "error": e.public_message(),
        "errorCode": e.code.as_str(),
    });
    if let (Some(data), true) = (&e.data, e.code != Code::Internal) {
        body["errorData"] = manageips(data.clone());
    }
    body
}

/// manageips rendering: scalars become strings (`null` stays), and a non-empty array of records (objects with an
/// `id`) becomes an object keyed by id, in order. Other arrays stay arrays.
pub fn manageips(v: Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => Value::String(s),
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.get("id").is_some_and(|id| !id.is_null())) =>
        {
            let mut keyed = Map::new();
            for item in items {
                let key = match &item["id"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                keyed.insert(key, manageips(item));
            }
            Value::Object(keyed)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(manageips).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, manageips(v))).collect()),
    }
}

/// The decoded value of one field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_pairs(body)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The decoded pairs of a form body or query string; `None` when an escape is broken.
pub fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |b| *b == b'=');
            let key = percent_decode(kv.next().unwrap_or_default())?;
            Some((key, percent_decode(kv.next().unwrap_or_default())?))
        })
        .collect()
}

/// Decodes `+` and `%XX`; `None` for a broken escape or invalid UTF-8.
fn percent_decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_manageips_way() {
        let v =
            json!([{"id": 3, "ok": true, "n": null, "children": [], "kids": [{"id": 4, "x": 1.5}], "tags": [1, "a"]}]);
        assert_eq!(
            manageips(v),
            json!({"3": {"id": "3", "ok": "true", "n": null, "children": [], "kids": {"4": {"id": "4", "x": "1.5"}},
                          "tags": ["1", "a"]}})
        );
    }

    #[test]
    fn decodes_forms() {
        let body = b"x=1&data=%7B%22reqid%22%3A7%2C%22data%22%3A%7B%22a%22%3A%22b+c%22%7D%7D";
        let env = decode("ping", body, true).unwrap();
        assert_eq!(env.reqid, json!(7));
        assert_eq!(env.call.data, json!({"a": "b c"}));
        assert!(decode("ping", b"data=%ZZ", true).is_err());
        assert!(decode("ping", b"other=1", true).is_err());
    }

    #[test]
    fn refuses_malformed_envelopes_but_keeps_reqid() {
        assert_eq!(decode("ping", b"[1]", false).err().unwrap().1.code, Code::BadRequest);
        let (reqid, e) = *decode("ping", br#"{"reqid":"r1","appkey":5}"#, false).err().unwrap();
        assert_eq!((reqid, e.code), (json!("r1"), Code::BadRequest));
    }
}
