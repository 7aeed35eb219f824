//! The envelope's rendering of a list of groups (`groups/*`), written by hand: byte for byte what [`Manageips`] makes
//! of the same `List<Group>`, at a fraction of the cost. A tree of groups is the envelope's largest answer of many
//! small records (issue 15's `groups-sort`: 40 groups, a dozen members each), and through serde every key and every
//! value is one escaped string written by `serde_json` through the adapter; here a key is one copy of a constant,
//! a number its digits between quotes, and only a string that needs escaping goes to `serde_json`.
//!
//! The record's members are named here in the derived `Serialize`'s order; the tests below compare this writer with
//! the adapter on every shape a group takes, so a member added to `Group` or `Stamps` fails them until it is written
//! here too.
//!
//! [`Manageips`]: super::Manageips

use crate::model::{Group, List, Records};

/// The bytes a group list takes per group, about (the members' names and typical values): the buffer is reserved
/// once for the whole answer.
const GROUP_BYTES: usize = 320;

/// Whether [`write_list`] renders `list`: a group list carries no subnet (`List::within`), but should one ever do,
/// it goes through the adapter.
pub fn handles(list: &List<Group>) -> bool {
    list.within.is_none()
}

/// Appends `list` to `out` as `Manageips(list)` serialised by `serde_json`: its records keyed by id (`[]` for none),
/// or with paging the page's place beside them, every scalar a string.
pub fn write_list(out: &mut Vec<u8>, list: &List<Group>) {
    out.reserve(count(&list.records) * GROUP_BYTES + 128);
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

/// The groups of a tree, children included.
fn count(r: &Records<Group>) -> usize {
    r.0.iter().map(|g| 1 + g.children.as_ref().map_or(0, count)).sum()
}

/// Groups keyed by id, in order; none is `[]`.
fn records(out: &mut Vec<u8>, r: &Records<Group>) {
    if r.0.is_empty() {
        return out.extend_from_slice(b"[]");
    }
    out.push(b'{');
    for (i, g) in r.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        int(out, g.id);
        out.push(b':');
        group(out, g);
    }
    out.push(b'}');
}

/// One group, its members in the order of its derived `Serialize` (the stamps flattened in their place).
fn group(out: &mut Vec<u8>, g: &Group) {
    let s = &g.stamps;
    out.extend_from_slice(b"{\"id\":");
    int(out, g.id);
    out.extend_from_slice(b",\"description\":");
    text(out, &g.description);
    out.extend_from_slice(b",\"userid\":");
    opt_int(out, s.userid);
    out.extend_from_slice(b",\"modifiedat\":");
    int(out, s.modifiedat);
    out.extend_from_slice(b",\"user\":");
    text(out, &s.user);
    out.extend_from_slice(b",\"email\":");
    opt_text(out, s.email.as_deref());
    out.extend_from_slice(b",\"realname\":");
    opt_text(out, s.realname.as_deref());
    out.extend_from_slice(b",\"created\":");
    int(out, s.created);
    out.extend_from_slice(b",\"version\":");
    int(out, s.version);
    out.extend_from_slice(b",\"parent\":");
    opt_int(out, g.parent);
    out.extend_from_slice(b",\"subnetcount\":");
    int(out, g.subnetcount);
    out.extend_from_slice(b",\"childcount\":");
    int(out, g.childcount);
    if let Some(children) = &g.children {
        out.extend_from_slice(b",\"children\":");
        records(out, children);
    }
    out.push(b'}');
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
    use crate::model::{Page, Stamps};
    use crate::rpc::Manageips;
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
        }
    }
}
