//! The `/1.0` envelope door: decodes `{reqid, appkey, userdata, data}` (raw JSON or the form field `data=`) into
//! the call the server dispatches, and renders the manageips way: every scalar a string, record lists keyed by id.
//! Typed records, no guessing: a list is keyed by id because its type says so (`model::Records`), never because its
//! items look like records.

use serde::ser::Serializer;
use serde::Serialize;
use serde_json::Value;

use crate::door::{to_json, Door, Rendered};
use crate::error::{Code, Error};
use crate::handler::{Call, Credentials, Method, Outcome, RequestKey};
use crate::metrics::Endpoint;
use crate::model::{Replayed, Reply as Answer};

mod by_hand;
mod manageips;
pub use manageips::Manageips;

/// The envelope door for one request to `/1.0/<method>`.
pub struct EnvelopeDoor {
    method: String,
    /// The method's line in the method table, for the metrics; `None` for a name the table does not hold.
    index: Option<usize>,
    /// Whether the body is `application/x-www-form-urlencoded`.
    form: bool,
    /// The `reqid` to echo, once the body is decoded (`null` until then, or when it cannot be read).
    reqid: Value,
}

impl EnvelopeDoor {
    /// The door for a call of `method`, one of `methods` (the app's table) or not.
    pub fn new(method: String, form: bool, methods: &[Method]) -> EnvelopeDoor {
        EnvelopeDoor {
            index: methods.iter().position(|m| m.name == method),
            method,
            form,
            reqid: Value::Null,
        }
    }
}

impl Door for EnvelopeDoor {
    fn name(&self) -> &str {
        &self.method
    }

    fn door(&self) -> &'static str {
        "1.0"
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Envelope(self.index)
    }

    fn decode(&mut self, body: &[u8]) -> Result<Call, Error> {
        match decode(&self.method, body, self.form) {
            Ok(envelope) => {
                self.reqid = envelope.reqid;
                Ok(envelope.call)
            }
            Err(rejected) => {
                let (reqid, e) = *rejected;
                self.reqid = reqid;
                Err(e)
            }
        }
    }

    fn render(&self, outcome: Outcome) -> Rendered {
        let body = render(&self.reqid, &self.method, &outcome);
        let error = outcome.result.err();
        Rendered {
            status: error.as_ref().map_or(200, |e| e.code.http_status()),
            body: Some(body),
            headers: Vec::new(),
            error,
            respid: outcome.respid,
            caller: outcome.caller,
            more: None,
        }
    }
}

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
    let json_text: std::borrow::Cow<str> = if form && !raw_json {
        form_field(body, "data")
            .ok_or_else(|| {
                reject(
                    &Value::Null,
                    Error::new(Code::BadRequest, "the form has no 'data' field"),
                )
            })?
            .into()
    } else {
        std::str::from_utf8(body)
            .map_err(|_| reject(&Value::Null, Error::new(Code::BadRequest, "the body is not UTF-8")))?
            .into()
    };
    let raw: Raw = serde_json::from_str(&json_text).map_err(|e| {
        // A body that is not an object fails before it is all read: only one that is valid JSON is "not an object".
        let message = match (e.classify(), serde_json::from_str::<Value>(&json_text)) {
            (serde_json::error::Category::Data, Ok(_)) => "the envelope must be a JSON object".to_string(),
            (serde_json::error::Category::Data, Err(syntax)) => format!("the body is not valid JSON: {syntax}"),
            _ => format!("the body is not valid JSON: {e}"),
        };
        reject(&Value::Null, Error::new(Code::BadRequest, message))
    })?;
    let reqid = raw.reqid;
    let text = |key: &str, v: Value| match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(reject(
            &reqid,
            Error::new(Code::BadRequest, format!("'{key}' must be a string")),
        )),
    };
    let appkey = text("appkey", raw.appkey)?;
    let userdata = text("userdata", raw.userdata)?;
    let key = text("requestkey", raw.requestkey)?.map(|key| {
        let (reqid, method) = (reqid.clone(), method.to_string());
        RequestKey {
            key,
            target: format!("/1.0/{method}"),
            render: Box::new(move |respid: &str, answer: &Answer| {
                Ok(Replayed {
                    status: 200,
                    body: render_answer(&reqid, respid, &method, answer),
                    etag: None,
                })
            }),
        }
    });
    let data = raw.data;
    Ok(Envelope {
        reqid,
        call: Call {
            method: method.to_string(),
            credentials: Credentials::Envelope { appkey, userdata },
            data,
            key,
        },
    })
}

/// The members of an envelope, read straight into their places: no map of the envelope is built. A member given
/// twice counts as its last (as a JSON object read into a map would have it); other members are ignored.
#[derive(Default)]
struct Raw {
    reqid: Value,
    appkey: Value,
    userdata: Value,
    data: Value,
    requestkey: Value,
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Raw, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Raw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Raw, A::Error> {
                let mut raw = Raw::default();
                while let Some(key) = map.next_key::<Member>()? {
                    match key {
                        Member::Reqid => raw.reqid = map.next_value()?,
                        Member::Appkey => raw.appkey = map.next_value()?,
                        Member::Userdata => raw.userdata = map.next_value()?,
                        Member::Data => raw.data = map.next_value()?,
                        Member::Requestkey => raw.requestkey = map.next_value()?,
                        // Read, not skipped: a member's text is checked as every member's was (a lone surrogate
                        // escape is refused).
                        Member::Other => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(Members)
    }
}

/// The name of an envelope's member, read without copying it (serde's field identifiers borrow the name).
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Reqid,
    Appkey,
    Userdata,
    Data,
    Requestkey,
    #[serde(other)]
    Other,
}

/// The response body for an outcome, serialised.
pub fn render(reqid: &Value, method: &str, outcome: &Outcome) -> Vec<u8> {
    match &outcome.result {
        Ok(answer) => render_answer(reqid, &outcome.respid, method, answer),
        Err(e) => to_json(&ErrorReply {
            reqid,
            respid: &outcome.respid,
            method,
            error: e.public_message(),
            error_code: e.code.as_str(),
            error_data: e.data.as_ref().filter(|_| e.code != Code::Internal).map(Manageips),
        }),
    }
}

/// The response body of a successful call, serialised. A list of groups or of address records is written by hand
/// ([`by_hand`]), the same bytes as through [`Manageips`].
fn render_answer(reqid: &Value, respid: &str, method: &str, answer: &Answer) -> Vec<u8> {
    match answer {
        Answer::Groups(list) if by_hand::handles(list) => {
            return render_by_hand(reqid, respid, method, |out| by_hand::write_list(out, list))
        }
        Answer::Hosts(list) if by_hand::handles(list) => {
            return render_by_hand(reqid, respid, method, |out| by_hand::write_list(out, list))
        }
        _ => {}
    }
    to_json(&Reply {
        reqid,
        respid,
        method,
        response: Response(answer),
    })
}

/// The bytes of a [`Reply`] whose response `write` appends: the members around it as `serde_json` writes them.
fn render_by_hand(reqid: &Value, respid: &str, method: &str, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"reqid\":");
    let head = serde_json::to_writer(&mut out, reqid)
        .and_then(|()| {
            out.extend_from_slice(b",\"respid\":");
            serde_json::to_writer(&mut out, respid)
        })
        .and_then(|()| {
            out.extend_from_slice(b",\"method\":");
            serde_json::to_writer(&mut out, method)
        });
    if head.is_err() {
        // Serialising into memory cannot fail; should it, the client still gets JSON (as `to_json` answers).
        return b"{}".to_vec();
    }
    out.extend_from_slice(b",\"response\":");
    write(&mut out);
    out.push(b'}');
    out
}

/// A successful answer.
#[derive(Serialize)]
struct Reply<'a> {
    reqid: &'a Value,
    respid: &'a str,
    method: &'a str,
    response: Response<'a>,
}

/// A handler's answer in the envelope: its typed records through [`Manageips`], keyed where their type says.
struct Response<'a>(&'a Answer);

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Manageips(self.0).serialize(s)
    }
}

/// A refused call, in the envelope's shape.
#[derive(Serialize)]
struct ErrorReply<'a> {
    reqid: &'a Value,
    respid: &'a str,
    method: &'a str,
    error: &'a str,
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    /// The error's detail (`Error::data`), scalars as strings; errors that list records key them where they are
    /// built (an object by id), nothing is keyed here.
    #[serde(rename = "errorData", skip_serializing_if = "Option::is_none")]
    error_data: Option<Manageips<'a, Value>>,
}

/// The decoded value of one field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_pairs(body)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The decoded pairs of a form body or query string, by the WHATWG rules (`form_urlencoded`): `+` is a space, a
/// broken escape such as `%ZZ` stays as written. `None` when a decoded name or value is not UTF-8: `form_urlencoded`
/// would hand it back with U+FFFD in place of the bad bytes, so it is refused rather than stored altered. A genuine
/// U+FFFD (`%EF%BF%BD`) is kept: when one shows, the pair's raw bytes are decoded again and checked.
pub fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    // The same pairs as `form_urlencoded::parse` splits, raw.
    let raw = body.split(|b| *b == b'&').filter(|pair| !pair.is_empty());
    form_urlencoded::parse(body)
        .zip(raw)
        .map(|((k, v), raw)| {
            let replaced = k.contains('\u{FFFD}') || v.contains('\u{FFFD}');
            // `=` and `+` are ASCII, so the pair is UTF-8 once decoded exactly when its name and value are.
            let utf8 =
                !replaced || std::str::from_utf8(&percent_encoding::percent_decode(raw).collect::<Vec<u8>>()).is_ok();
            utf8.then(|| (k.into_owned(), v.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_the_manageips_way() {
        let outcome = |result| Outcome {
            respid: "r".into(),
            caller: String::new(),
            result,
        };
        let rendered = |o: &Outcome| -> Value { serde_json::from_slice(&render(&json!(1), "m", o)).unwrap() };
        // A typed list is keyed by id; no records are `[]`.
        let deleted = |ids: &[i64]| Answer::Deleted(crate::methods::deleted(ids));
        assert_eq!(
            rendered(&outcome(Ok(deleted(&[3, 4]))))["response"],
            json!({"3": {"id": "3", "deleted": "true"}, "4": {"id": "4", "deleted": "true"}})
        );
        assert_eq!(rendered(&outcome(Ok(deleted(&[]))))["response"], json!([]));
        // Error data is no list of records: scalars become strings, arrays stay arrays whatever their items.
        let e =
            Error::new(Code::NotFound, "x").with_data(json!({"n": null, "kids": [{"id": 4, "x": 1.5}], "ok": true}));
        assert_eq!(
            rendered(&outcome(Err(e)))["errorData"],
            json!({"n": null, "kids": [{"id": "4", "x": "1.5"}], "ok": "true"})
        );
    }

    /// A list of groups, written by hand, comes out as through the adapter, whatever the `reqid`.
    #[test]
    fn renders_groups_as_the_adapter_does() {
        let mut g = crate::model::Group {
            id: 4,
            description: "a \"b\"".into(),
            stamps: crate::model::Stamps {
                userid: None,
                modifiedat: 5,
                user: "u".into(),
                email: None,
                realname: Some("r\n".into()),
                created: 6,
                version: 7,
            },
            parent: Some(2),
            subnetcount: 8,
            childcount: 0,
            children: Some(crate::model::Records(Vec::new())),
        };
        let leaf = g.clone();
        g.children = Some(crate::model::Records(vec![leaf]));
        let answer = Answer::Groups(crate::model::List::of(vec![g], "groups"));
        for reqid in [
            json!(null),
            json!(12345678901234567890u64),
            json!(-1.5e300),
            json!("r\"1\u{1}"),
            json!({"b": [1], "a": {}}),
        ] {
            let through_adapter = to_json(&Reply {
                reqid: &reqid,
                respid: "r\\",
                method: "groups/get",
                response: Response(&answer),
            });
            assert_eq!(
                String::from_utf8(render_answer(&reqid, "r\\", "groups/get", &answer)).unwrap(),
                String::from_utf8(through_adapter).unwrap()
            );
        }
    }

    #[test]
    fn decodes_forms() {
        let body = b"x=1&data=%7B%22reqid%22%3A7%2C%22data%22%3A%7B%22a%22%3A%22b+c%22%7D%7D";
        let env = decode("ping", body, true).unwrap();
        assert_eq!(env.reqid, json!(7));
        assert_eq!(env.call.data, json!({"a": "b c"}));
        assert!(decode("ping", b"data=%ZZ", true).is_err());
        assert!(
            decode("ping", b"data=%7B%7D&x=%FF", true).is_err(),
            "not UTF-8 once decoded"
        );
        assert_eq!(
            form_pairs(b"a=%ZZ&b=1+2&&c").unwrap(),
            [("a", "%ZZ"), ("b", "1 2"), ("c", "")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(decode("ping", b"other=1", true).is_err());
        // A genuine U+FFFD is a character like any other; bytes that are not UTF-8 once decoded are refused.
        assert_eq!(
            form_pairs(b"&&a=%EF%BF%BD&%ef%bf%bd=\xEF\xBF\xBD+").unwrap(),
            [("a", "\u{FFFD}"), ("\u{FFFD}", "\u{FFFD} ")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        for bad in [
            &b"a=%EF%BF"[..],
            b"a=%FF",
            b"%C3=1",
            b"a=\xFF",
            b"ok=1&a=%EF%BF%BD%FF",
            b"k%E2=%82%AC",
        ] {
            assert_eq!(form_pairs(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refuses_malformed_envelopes_but_keeps_reqid() {
        assert_eq!(decode("ping", b"[1]", false).err().unwrap().1.code, Code::BadRequest);
        let message = |body: &[u8]| decode("ping", body, false).err().unwrap().1.message;
        assert_eq!(message(b"[1]"), "the envelope must be a JSON object");
        assert_eq!(message(b"null"), "the envelope must be a JSON object");
        for broken in [&b"[1,"[..], b"[1] x", b"1 2", br#"{"x":"\ud800"}"#, b"{"] {
            assert!(
                message(broken).starts_with("the body is not valid JSON: "),
                "{}: {}",
                String::from_utf8_lossy(broken),
                message(broken)
            );
        }
        let twice = decode(
            "ping",
            br#"{"reqid":1,"data":{"a":1},"reqid":2.50,"data":{"b":2}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            (twice.reqid.to_string(), twice.call.data),
            ("2.50".to_string(), json!({"b": 2}))
        );
        let (reqid, e) = *decode("ping", br#"{"reqid":"r1","appkey":5}"#, false).err().unwrap();
        assert_eq!((reqid, e.code), (json!("r1"), Code::BadRequest));
    }
}
