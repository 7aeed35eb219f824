//! The envelope's rendering of the lists most often read, written by hand: byte for byte what [`Manageips`] makes of
//! the same `List` (groups and address records), at a fraction of the cost. Through serde every key and every value
//! is one escaped string written by `serde_json` through the adapter (and a record's flattened stamps make it a map
//! of entries); here a key is one copy of a constant, a number its digits between quotes, and only a string that
//! needs escaping goes to `serde_json`. A tree of groups (issue 15's `groups-sort`: 40 groups, a dozen members each)
//! and a point read of an address record (`rpc-get`) are the envelope's answers these serve.
//!
//! A record's members are named here in its derived `Serialize`'s order; the tests below compare this writer with
//! the adapter on every shape a record takes, so a member added to `Group`, `Host` or `Stamps` fails them until it
//! is written here too.
//!
//! [`Manageips`]: super::Manageips

use super::Manageips;
use crate::model::{Group, Host, List, Records, Stamps};

/// A record this module writes.
pub trait ByHand {
    /// The bytes a record takes, about (its members' names and typical values): the buffer is reserved once for
    /// the whole answer.
    const BYTES: usize;
    /// The id it is keyed by in a list.
    fn id(&self) -> i64;
    /// Appends the record as the adapter writes it.
    fn write(&self, out: &mut Vec<u8>);
    /// How many records it is, those it holds included.
    fn count(&self) -> usize {
        1
    }
}

/// Whether [`write_list`] renders `list`: a list that carries a subnet (`List::within`, a page of one subnet's
/// address records) goes through the adapter.
pub fn handles<T>(list: &List<T>) -> bool {
    list.within.is_none()
}

/// Appends `list` to `out` as `Manageips(list)` serialised by `serde_json`: its records keyed by id (`[]` for none),
/// or with paging the page's place beside them, every scalar a string.
pub fn write_list<T: ByHand>(out: &mut Vec<u8>, list: &List<T>) {
    out.reserve(count(&list.records) * T::BYTES + 128);
    let Some(p) = list.page else {
        return records(out, &list.records);
    };
    out.extend_from_slice(b"{\"page\":");
    int(out, p.page);
    out.extend_from_slice(b",\"perpage\":");
    int(out, p.perpage);
    out.extend_from_slice(b",\"pages\":");
    int(out, p.pages);
    out.extend_from_slice(b",\"total\":");
    int(out, p.total);
    out.push(b',');
    text(out, list.key);
    out.push(b':');
    records(out, &list.records);
    out.push(b'}');
}

fn count<T: ByHand>(r: &Records<T>) -> usize {
    r.0.iter().map(ByHand::count).sum()
}

/// Records keyed by id, in order; none is `[]`.
fn records<T: ByHand>(out: &mut Vec<u8>, r: &Records<T>) {
    if r.0.is_empty() {
        return out.extend_from_slice(b"[]");
    }
    out.push(b'{');
    for (i, record) in r.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        int(out, record.id());
        out.push(b':');
        record.write(out);
    }
    out.push(b'}');
}

/// Appends members to an object begun with its first: each `,"name":` as one constant, then its value written by
/// the function named before it (`int`, `opt_int`, `text`, `opt_text`, or any writer of that shape).
macro_rules! members {
    ($out:expr; $($write:ident $name:literal $value:expr),* $(,)?) => {$(
        $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes());
        $write($out, $value);
    )*};
}

impl ByHand for Group {
    const BYTES: usize = 320;

    fn id(&self) -> i64 {
        self.id
    }

    /// Its members in the order of its derived `Serialize` (the stamps flattened in their place).
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        int(out, self.id);
        members!(out; text "description" &self.description);
        stamps(out, &self.stamps);
        members!(out;
            opt_int "parent" self.parent,
            int "subnetcount" self.subnetcount,
            int "childcount" self.childcount,
        );
        if let Some(children) = &self.children {
            members!(out; records "children" children);
        }
        out.push(b'}');
    }

    fn count(&self) -> usize {
        1 + self.children.as_ref().map_or(0, count)
    }
}

impl ByHand for Host {
    const BYTES: usize = 480;

    fn id(&self) -> i64 {
        self.id
    }

    /// Its members in the order of its derived `Serialize`: the custom fields through the adapter (their values are
    /// any JSON), then the stamps, when it has them.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        int(out, self.id);
        members!(out;
            int "subnet" self.subnet,
            text "network" &self.network,
            text "ip" &self.ip,
            opt_text "hostname" self.hostname.as_deref(),
            opt_text "cname" self.cname.as_deref(),
            opt_text "mac_address" self.mac_address.as_deref(),
            text "status" &self.status,
            text "is_assigned" if self.is_assigned { "true" } else { "false" },
            opt_int "last_seen" self.last_seen,
            opt_text "discovery_source" self.discovery_source.as_deref(),
            opt_text "description" self.description.as_deref(),
            fields "fields" &self.fields,
        );
        if let Some(s) = &self.stamps {
            stamps(out, s);
        }
        out.push(b'}');
    }
}

/// The members of a record's last change, flattened into the record.
fn stamps(out: &mut Vec<u8>, s: &Stamps) {
    members!(out;
        opt_int "userid" s.userid,
        int "modifiedat" s.modifiedat,
        text "user" &s.user,
        opt_text "email" s.email.as_deref(),
        opt_text "realname" s.realname.as_deref(),
        int "created" s.created,
        int "version" s.version,
    );
}

/// A record's custom fields (any JSON values) through the adapter.
fn fields(out: &mut Vec<u8>, fields: &serde_json::Map<String, serde_json::Value>) {
    if fields.is_empty() {
        out.extend_from_slice(b"{}");
    } else if serde_json::to_writer(&mut *out, &Manageips(fields)).is_err() {
        // Writing into memory cannot fail; should it, the answer is still JSON.
        out.extend_from_slice(b"{}");
    }
}

/// An integer as the envelope writes every number: its decimal text, quoted (no character of it needs escaping).
fn int(out: &mut Vec<u8>, n: i64) {
    // The digits between their quotes, copied in one piece.
    let mut quoted = [b'"'; 22];
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    quoted[1..=digits.len()].copy_from_slice(digits);
    out.extend_from_slice(&quoted[..digits.len() + 2]);
}

fn opt_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: as it is when no byte of it needs escaping (no quote, backslash or control character), else
/// escaped by `serde_json` itself, so that the escapes are the adapter's.
fn text(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a string into memory cannot fail; should it, the answer is still JSON.
        out.extend_from_slice(b"\"\"");
    }
}

fn opt_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => text(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Page;
    use proptest::prelude::*;

    fn group(id: i64, description: &str, children: Option<Vec<Group>>) -> Group {
        Group {
            id,
            description: description.into(),
            stamps: Stamps {
                userid: Some(id * 3),
                modifiedat: 1_700_000_000 + id,
                user: format!("user {description}"),
                email: (id % 2 == 0).then(|| format!("{description}@example.org")),
                realname: (id % 3 == 0).then(|| description.to_string()),
                created: -id,
                version: i64::MAX - id,
            },
            parent: (id % 4 != 0).then_some(id - 1),
            subnetcount: id * 7,
            childcount: children.as_ref().map_or(0, |c| c.len() as i64),
            children: children.map(Records),
        }
    }

    fn host(id: i64, text: &str, fields: serde_json::Value, stamps: bool) -> Host {
        let some = |n: i64| (id % n != 0).then(|| format!("{text}{id}"));
        Host {
            id,
            subnet: id * 2,
            network: "10.0.0.0/24".into(),
            ip: format!("10.0.0.{id}"),
            hostname: some(2),
            cname: some(3),
            mac_address: some(5),
            status: text.into(),
            is_assigned: id % 2 == 0,
            last_seen: (id % 3 != 1).then_some(-id * 1_000_000_007),
            discovery_source: some(7),
            description: some(11),
            fields: match fields {
                serde_json::Value::Object(m) => m,
                _ => Default::default(),
            },
            has_fields: true,
            stamps: stamps.then(|| Stamps {
                userid: (id % 2 == 1).then_some(id),
                modifiedat: id,
                user: text.into(),
                email: some(2),
                realname: some(3),
                created: i64::MIN + id,
                version: id,
            }),
        }
    }

    fn hosts(texts: &[String]) -> Vec<Host> {
        let fields = [
            serde_json::json!({}),
            serde_json::json!({"rack": "r1", "u": 12, "pdu": true, "none": null, "x": 1.5, "list": [1, "a"]}),
            serde_json::json!({"é \" \n": "\u{0}"}),
        ];
        (0..texts.len() as i64 * 3)
            .map(|i| {
                let text = &texts[i as usize % texts.len()];
                host(i + 1, text, fields[i as usize % 3].clone(), i % 4 != 3)
            })
            .collect()
    }

    /// An address record list, written by hand, comes out as through the adapter, on every shape it takes.
    #[test]
    fn writes_address_records_as_the_adapter_does() {
        let odd = ["active", "", "quote \" backslash \\", "tab\tnul\u{0}", "日本 🦀"].map(String::from);
        let mut paged = List::of(hosts(&odd), "addresses");
        paged.page = Some(Page {
            page: 3,
            perpage: 2,
            pages: 8,
            total: 15,
        });
        for list in [
            List::of(hosts(&odd), "addresses"),
            List::of(Vec::new(), "addresses"),
            paged,
        ] {
            let adapter = serde_json::to_string(&Manageips(&list)).unwrap();
            let mut out = Vec::new();
            write_list(&mut out, &list);
            assert_eq!(String::from_utf8(out).unwrap(), adapter);
        }
    }

    /// What the generic adapter makes of `list`, and what this writer makes of it.
    fn both(list: &List<Group>) -> (String, String) {
        let adapter = serde_json::to_string(&Manageips(list)).unwrap();
        let mut out = Vec::new();
        write_list(&mut out, list);
        (adapter, String::from_utf8(out).unwrap())
    }

    fn tree(descriptions: &[String]) -> Vec<Group> {
        let mut id = 0;
        let mut next = |d: &String, children| {
            id += 1;
            group(id, d, children)
        };
        let leaves: Vec<Group> = descriptions.iter().map(|d| next(d, Some(Vec::new()))).collect();
        let flat: Vec<Group> = descriptions.iter().map(|d| next(d, None)).collect();
        let mut all = vec![next(&"root".to_string(), Some(leaves))];
        all.extend(flat);
        all
    }

    #[test]
    fn writes_what_the_adapter_writes() {
        let odd = [
            "Site A",
            "",
            "quote \" backslash \\ slash /",
            "tab\tnewline\ncr\rbell\u{7}nul\u{0}del\u{7f}",
            "é ü 日本 \u{2028} \u{fffd} 🦀",
        ]
        .map(String::from);
        let mut paged = List::of(tree(&odd), "groups");
        paged.page = Some(Page {
            page: 2,
            perpage: 25,
            pages: 9,
            total: 201,
        });
        let mut empty_page = List::of(Vec::new(), "groups");
        empty_page.page = Some(Page {
            page: 1,
            perpage: 10,
            pages: 0,
            total: 0,
        });
        for list in [
            List::of(tree(&odd), "groups"),
            List::of(Vec::new(), "groups"),
            paged,
            empty_page,
        ] {
            let (adapter, written) = both(&list);
            assert_eq!(written, adapter);
        }
        let (adapter, _) = both(&List::of(tree(&odd), "groups"));
        assert!(
            adapter.contains(r#""children":[]"#) && adapter.contains(r#""realname":null"#),
            "{adapter}"
        );
    }

    proptest! {
        #[test]
        fn writes_any_text_as_the_adapter_does(descriptions in proptest::collection::vec(any::<String>(), 0..6)) {
            let (adapter, written) = both(&List::of(tree(&descriptions), "groups"));
            prop_assert_eq!(written, adapter);
            if !descriptions.is_empty() {
                let list = List::of(hosts(&descriptions), "addresses");
                let mut out = Vec::new();
                write_list(&mut out, &list);
                prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&Manageips(&list)).unwrap());
            }
        }
    }
}
