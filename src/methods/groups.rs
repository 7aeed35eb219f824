//! `groups/*`: the tree of groups that subnets are filed in, one tree per org, never a cycle.

use std::collections::BTreeMap;

use serde_json::json;

use crate::db::{params, Ids, Row, Sql};
use crate::error::{Code, Error, Result};
use crate::handler::Action::{Added, Deleted, Edited};
use crate::handler::{Change, Ctx, ObjectKind, Params};
use crate::methods::{
    capped, check_version, deleted, list_reply, listed, stamp_cols, stamps_at, too_many_deleted, List, ListParams,
    Table, MAX_RECORDS, UNPAGED_LIMIT,
};
use crate::model::{self, Group, Records, Stamps};
use crate::params::{Data, Patch};
use crate::store::cached_sql;

/// The columns [`record`] reads, from groups `t` and their last modifiers `m` ([`FROM`]), each group's children
/// counted.
fn columns() -> &'static str {
    cached_sql!(format!(
        "t.id, t.description, t.parent_id, t.subnet_count, (SELECT count(*) FROM groups c WHERE c.parent_id = t.id), \
         {stamps}",
        stamps = stamp_cols("t", "m")
    ))
}

const FROM: &str = "groups t LEFT JOIN users m ON m.id = t.modby_id";

fn select() -> &'static str {
    cached_sql!(format!("SELECT {} FROM {FROM}", columns()))
}

fn record(r: &Row) -> Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        description: r.get(1)?,
        stamps: stamps_at(r, 5)?,
        parent: r.get(2)?,
        subnetcount: r.get(3)?,
        childcount: r.get(4)?,
        children: None,
    })
}

/// The columns [`tree_record`] reads: a group's own, without its last modifier's email and real name, which [`all`]
/// reads once per modifier ([`modifiers`]) rather than by a join once per group, nor its children, which
/// [`Forest::nest`] counts as it attaches them.
const TREE_COLUMNS: &str =
    "t.id, t.description, t.parent_id, t.subnet_count, t.modby_id, t.modifiedat, t.modby_name, t.created, t.version";

/// A group from [`TREE_COLUMNS`], its modifier's email and real name and its child count not known yet (zero).
fn tree_record(r: &Row) -> Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        description: r.get(1)?,
        stamps: Stamps {
            userid: r.get(4)?,
            modifiedat: r.get(5)?,
            user: r.get(6)?,
            email: None,
            realname: None,
            created: r.get(7)?,
            version: r.get(8)?,
        },
        parent: r.get(2)?,
        subnetcount: r.get(3)?,
        childcount: 0,
        children: None,
    })
}

/// One group of the caller's org.
pub fn load(ctx: &Ctx, id: i64) -> Result<Group> {
    ctx.tx
        .query_opt(
            &format!("{} WHERE t.id = ?1 AND t.org_id = ?2", select()),
            params![id, ctx.org()],
            record,
        )?
        .ok_or_else(|| Error::not_found("group"))
}

/// Checks that `id` names a group of the caller's org (used by subnets too).
pub fn exists(ctx: &Ctx, id: i64) -> Result<()> {
    let found: bool = ctx.tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM groups WHERE id = ?1 AND org_id = ?2)",
        params![id, ctx.org()],
        |r| r.get(0),
    )?;
    if found {
        Ok(())
    } else {
        Err(Error::not_found("group"))
    }
}

/// A `parent` (or `group`) parameter: `null`, `""` and `"0"` mean the top level.
pub fn parent_param(d: &mut Data, key: &str) -> Result<Patch<i64>> {
    match d.patch_int(key)? {
        Patch::Set(0) => Ok(Patch::Clear),
        Patch::Set(n) if n < 0 => Err(Error::param(key, "must be a group id")),
        other => Ok(other),
    }
}

pub struct GetParams {
    list: ListParams,
    sort: bool,
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(GetParams {
            list: ListParams::decode(d)?,
            sort: d.bool("sort")?.unwrap_or(false),
        })
    }
}

/// Without `sort`: every group (or the one `id`), flat, by id; with `page` or `perpage`, a page of them. With
/// `sort`: the tree (rooted at `id` when given), each group's `children` nested, siblings ordered by description;
/// paging pages its top-level groups. A tree is read whole: at most [`MAX_RECORDS`] groups, nested at most
/// [`MAX_DEPTH`] deep: more is `too_large`, found after reading one group more.
pub fn get(ctx: &Ctx, p: GetParams) -> Result<model::List<Group>> {
    let paging = &p.list.paging;
    if !p.sort {
        let table = Table {
            cols: columns(),
            from: FROM,
            order: "t.id",
            key: "groups",
            what: "group",
        };
        return listed(ctx, List::new("t.org_id = ?", ctx.org()), &table, &p.list, record);
    }
    // `groups_sorted` (schema.sql, migration 10) holds the groups in this order: no sorter.
    let sql = cached_sql!(format!(
        "SELECT {TREE_COLUMNS} FROM groups t WHERE t.org_id = ?1 ORDER BY t.description COLLATE NOCASE, t.id\
         {UNPAGED_LIMIT}"
    ));
    let mut forest = Forest::new(all(ctx, sql)?);
    let roots = match p.list.id {
        Some(id) => vec![load(ctx, id)?],
        None => forest.take_children(None),
    };
    let total = roots.len() as i64;
    let (skip, take) = match paging.paged {
        true => ((paging.page - 1).saturating_mul(paging.perpage), paging.perpage),
        false => (0, total),
    };
    let roots = roots
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(take).unwrap_or(usize::MAX))
        .map(|g| forest.nest(g, 1))
        .collect::<Result<_>>()?;
    Ok(list_reply(paging, total, "groups", roots))
}

/// The deepest a group tree is answered: replies are nested JSON, which is written and read recursively, so a
/// chain of thousands of groups would overflow a stack; each level is two levels of JSON, and JSON parsers commonly
/// stop at 128 (serde_json does).
pub const MAX_DEPTH: usize = 32;

/// All the groups of the caller's org, by `sql` (a select of [`TREE_COLUMNS`] with `?1` the org, ending in
/// [`UNPAGED_LIMIT`]): at most [`MAX_RECORDS`], each with its last modifier's email and real name.
fn all(ctx: &Ctx, sql: &str) -> Result<Vec<Group>> {
    let mut groups = capped(ctx.tx, sql, params![ctx.org()], tree_record)?;
    let modifiers = modifiers(ctx, &groups)?;
    for g in &mut groups {
        if let Some((email, realname)) = g.stamps.userid.and_then(|id| modifiers.get(&id)) {
            g.stamps.email.clone_from(email);
            g.stamps.realname.clone_from(realname);
        }
    }
    Ok(groups)
}

/// A user's email and real name, as a group's stamps show them.
type Contact = (Option<String>, Option<String>);

/// The email and real name of the users who last changed `groups`, by id, as the join of [`FROM`] reads them for
/// one group: an org's groups are changed by a few users, read here once each. A user no longer there is absent
/// (the join's NULLs). The ids are one list parameter joined like a table ([`Ids`]): no temporary B-tree of them,
/// as `IN (SELECT value FROM json_each(?))` builds on SQLite.
fn modifiers(ctx: &Ctx, groups: &[Group]) -> Result<BTreeMap<i64, Contact>> {
    let mut ids: Vec<i64> = groups.iter().filter_map(|g| g.stamps.userid).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = ctx.tx.rows(
        Sql::Dialects(
            "SELECT u.id, u.email, u.realname FROM rarray(?1) a CROSS JOIN users u ON u.id = a.value",
            "SELECT u.id, u.email, u.realname FROM users u WHERE u.id = ANY(?1)",
        ),
        params![Ids::new(ids)],
        |r| Ok((r.get::<i64>(0)?, (r.get(1)?, r.get(2)?))),
    )?;
    Ok(rows.into_iter().collect())
}

/// An org's groups, in the tree's order, that [`Forest::nest`] takes out one by one into their places.
struct Forest {
    /// The groups in order; `None` once taken.
    groups: Vec<Option<Group>>,
    /// Each group's parent and its place in `groups`, sorted: a parent's children are together, in order.
    by_parent: Vec<(Option<i64>, usize)>,
}

impl Forest {
    /// The forest of `groups`.
    fn new(groups: Vec<Group>) -> Forest {
        let mut by_parent: Vec<(Option<i64>, usize)> = groups.iter().enumerate().map(|(i, g)| (g.parent, i)).collect();
        by_parent.sort_unstable();
        Forest {
            groups: groups.into_iter().map(Some).collect(),
            by_parent,
        }
    }

    /// The places in `by_parent` of the children of `parent` (`None`: the top level).
    fn children(&self, parent: Option<i64>) -> std::ops::Range<usize> {
        let start = self.by_parent.partition_point(|(p, _)| *p < parent);
        let len = self.by_parent[start..].partition_point(|(p, _)| *p == parent);
        start..start + len
    }

    /// Takes the children of `parent` out of the forest, in order.
    fn take_children(&mut self, parent: Option<i64>) -> Vec<Group> {
        let places = self.children(parent);
        let mut taken = Vec::with_capacity(places.len());
        for k in places {
            taken.extend(self.groups[self.by_parent[k].1].take());
        }
        taken
    }

    /// Attaches each group's children, depth first, `depth` being `g`'s, and counts them. The tree has no cycles, so
    /// this ends.
    fn nest(&mut self, mut g: Group, depth: usize) -> Result<Group> {
        let places = self.children(Some(g.id));
        if depth >= MAX_DEPTH && !places.is_empty() {
            return Err(Error::too_large(
                format!("the group tree is more than {MAX_DEPTH} levels deep: read it flat (without sort)"),
                MAX_DEPTH,
            ));
        }
        let mut children = Vec::with_capacity(places.len());
        for k in places {
            if let Some(child) = self.groups[self.by_parent[k].1].take() {
                children.push(self.nest(child, depth + 1)?);
            }
        }
        g.childcount = children.len() as i64;
        g.children = Some(Records(children));
        Ok(g)
    }
}

pub struct AddParams {
    description: String,
    parent: Option<i64>,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let description = d.req_str("description")?;
        let parent = match parent_param(d, "parent")? {
            Patch::Set(p) => Some(p),
            Patch::Keep | Patch::Clear => None,
        };
        Ok(AddParams { description, parent })
    }
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<Group>> {
    if let Some(parent) = p.parent {
        exists(ctx, parent).map_err(|_| Error::new(Code::NotFound, "parent group not found"))?;
    }
    let id = ctx.tx.query_row(
        "INSERT INTO groups (org_id, parent_id, description, created, modifiedat, modby_id, modby_name)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6) RETURNING id",
        params![
            ctx.org(),
            p.parent,
            p.description,
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username
        ],
        |r| r.get::<i64>(0),
    )?;
    let after = load(ctx, id)?;
    ctx.log(
        Change::new(
            ObjectKind::Group.id(id),
            Added,
            format!("group '{}' added", p.description),
        )
        .detail(json!({"parent": p.parent}))
        .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    description: Option<String>,
    parent: Patch<i64>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            description: d.str("description")?,
            parent: parent_param(d, "parent")?,
        })
    }
}

pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<Group>> {
    let before = load(ctx, p.id)?;
    check_version(ctx, "groups", p.id, p.version)?;
    if let Some(description) = &p.description {
        ctx.tx.execute(
            "UPDATE groups SET description = ?1 WHERE id = ?2",
            params![description, p.id],
        )?;
    }
    let parent = match p.parent {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(parent) => {
            exists(ctx, parent).map_err(|_| Error::new(Code::NotFound, "parent group not found"))?;
            // The new parent may not be the group itself or one of its descendants.
            let cycle: bool = ctx.tx.query_row(
                "WITH RECURSIVE up(id) AS (SELECT CAST(?1 AS BIGINT) UNION SELECT g.parent_id FROM groups g JOIN up ON g.id = up.id
                                           WHERE g.parent_id IS NOT NULL)
                 SELECT EXISTS(SELECT 1 FROM up WHERE id = ?2)",
                params![parent, p.id],
                |r| r.get(0),
            )?;
            if cycle {
                return Err(Error::param("parent", "would make the group its own ancestor"));
            }
            Some(Some(parent))
        }
    };
    if let Some(parent) = parent {
        ctx.tx
            .execute("UPDATE groups SET parent_id = ?1 WHERE id = ?2", params![parent, p.id])?;
    }
    ctx.tx.execute(
        "UPDATE groups SET modifiedat = ?1, modby_id = ?2, modby_name = ?3 WHERE id = ?4",
        params![ctx.now, ctx.caller.user_id, ctx.caller.username, p.id],
    )?;
    let after = load(ctx, p.id)?;
    let changes = json!({"description": [before.description, after.description],
                         "parent": [before.parent, after.parent]});
    ctx.log(
        Change::new(ObjectKind::Group.id(p.id), Edited, "group edited")
            .detail(changes)
            .before(&before)
            .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub struct DeleteParams {
    id: i64,
    version: Option<i64>,
    recursive: bool,
}

impl Params for DeleteParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(DeleteParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            recursive: d.bool("recursive")?.unwrap_or(false),
        })
    }
}

/// Deletes a group; with `recursive`, its whole subtree and every subnet in it.
pub fn delete(ctx: &Ctx, p: DeleteParams) -> Result<Records<model::Deleted>> {
    let group = load(ctx, p.id)?;
    check_version(ctx, "groups", p.id, p.version)?;
    let (children, subnets) = (group.childcount, group.subnetcount);
    if (children > 0 || subnets > 0) && !p.recursive {
        return Err(Error::new(
            Code::NotEmpty,
            "the group holds child groups or subnets; pass recursive to delete them too",
        )
        .with_data(json!({"children": children, "subnets": subnets})));
    }
    // The subtree, with each group's subnets and address records, read one group past the bound at most.
    let tree = ctx.tx.rows(
        "WITH RECURSIVE sub(id) AS (SELECT CAST(?1 AS BIGINT) UNION ALL SELECT g.id FROM groups g JOIN sub ON g.parent_id = sub.id)
         SELECT sub.id, (SELECT count(*) FROM subnets s WHERE s.group_id = sub.id),
                (SELECT CAST(coalesce(sum(s.used), 0) AS BIGINT) FROM subnets s WHERE s.group_id = sub.id)
         FROM sub LIMIT ?2",
        params![p.id, MAX_RECORDS as i64 + 1],
        |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?)),
    )?;
    let (groups, subnets, records) = tree.iter().fold((0, 0, 0), |(g, s, r), t| (g + 1, s + t.1, r + t.2));
    if groups > MAX_RECORDS || subnets > MAX_RECORDS as i64 || records > MAX_RECORDS as i64 {
        return Err(too_many_deleted());
    }
    // The subtree's groups whole, in one read, for the feed's `before`.
    let ids = json!(tree.iter().map(|t| t.0).collect::<Vec<_>>()).to_string();
    let sql = cached_sql!(format!("{} WHERE t.id IN (SELECT value FROM json_each(?1))", select()));
    let before: BTreeMap<i64, Group> = ctx
        .tx
        .rows(sql, params![ids], record)?
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    // The foreign keys cascade to the subtree, its subnets and their records.
    ctx.tx.execute("DELETE FROM groups WHERE id = ?1", params![p.id])?;
    for (id, subnets, _) in &tree {
        let mut change =
            Change::new(ObjectKind::Group.id(*id), Deleted, "group deleted").detail(json!({"subnets": subnets}));
        if let Some(group) = before.get(id) {
            change = change.before(group);
        }
        ctx.log(change)?;
    }
    Ok(deleted(&tree.iter().map(|t| t.0).collect::<Vec<_>>()))
}
