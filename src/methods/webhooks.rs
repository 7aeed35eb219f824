//! Webhook subscriptions (`webhooks/add|get|edit|delete`), their delivery log (`webhooks/deliveries`) and
//! `webhooks/redeliver`. The deliveries themselves are `Ctx::log`'s outbox rows, sent by `src/webhooks.rs`.

use crate::db::{params, Row};
use serde_json::json;

use crate::error::{Code, Error, Result};
use crate::handler::{Action, Change, Ctx, ObjectKind, Params};
use crate::methods::{deleted, IdParam, OptIdParam, MAX_RECORDS, UNPAGED_LIMIT};
use crate::model::{Deleted, Delivery, Records, Webhook};
use crate::params::{Data, Patch};
use crate::store::cached_sql;
use crate::webhooks::{new_secret, target, Allow};

/// The object types and actions a filter may name (`handler::ObjectKind`, `handler::Action`).
const OBJECT_TYPES: &[&str] = &[
    "org",
    "user",
    "appkey",
    "token",
    "group",
    "subnet",
    "field",
    "ipaddress",
    "dhcprange",
    "backup",
    "webhook",
];
const ACTIONS: &[&str] = &["added", "edited", "deleted", "split", "joined", "restored"];

/// Most subscriptions one org may have.
const MAX_WEBHOOKS: i64 = 50;

/// The fields of a subscription, as `webhooks/add` and `webhooks/edit` take them.
pub struct Fields {
    url: Option<String>,
    description: Option<String>,
    objecttypes: Option<Vec<String>>,
    actions: Option<Vec<String>>,
    subnet: Patch<i64>,
    group: Patch<i64>,
    enabled: Option<bool>,
}

impl Fields {
    fn decode(d: &mut Data) -> Result<Fields> {
        let names = |d: &mut Data, key: &str, known: &[&str]| -> Result<Option<Vec<String>>> {
            let Some(items) = d.list(key)? else {
                return Ok(None);
            };
            let mut names = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(name) if known.contains(&name) => names.push(name.to_string()),
                    _ => return Err(Error::param(key, format!("must list some of: {}", known.join(", ")))),
                }
            }
            Ok(Some(names))
        };
        Ok(Fields {
            url: d.str("url")?,
            description: d.str("description")?,
            objecttypes: names(d, "objecttypes", OBJECT_TYPES)?,
            actions: names(d, "actions", ACTIONS)?,
            subnet: d.patch_int("subnet")?,
            group: d.patch_int("group")?,
            enabled: d.bool("enabled")?,
        })
    }

    /// Checks what is set: the URL's form and destination (a literal address must be allowed; a name is
    /// checked when resolved, at every delivery), and that the subnet and group filters name the org's own.
    fn check(&self, ctx: &Ctx) -> Result<()> {
        if let Some(url) = &self.url {
            let t = target(url).map_err(|e| Error::param("url", e))?;
            let allow = Allow::parse(&ctx.settings.webhook_allow).map_err(Error::internal)?;
            if let Ok(ip) = t.host.parse() {
                if !allow.permits(&t.host, ip) {
                    return Err(Error::param(
                        "url",
                        "is not an allowed destination (IPAMD_WEBHOOK_ALLOW)",
                    ));
                }
            }
        }
        for (patch, table, what) in [(&self.subnet, "subnets", "subnet"), (&self.group, "groups", "group")] {
            if let Patch::Set(id) = patch {
                let found: Option<i64> = ctx.tx.query_opt(
                    &format!("SELECT id FROM {table} WHERE id = ?1 AND org_id = ?2"),
                    params![id, ctx.org()],
                    |r| r.get(0),
                )?;
                if found.is_none() {
                    return Err(Error::not_found(what));
                }
            }
        }
        Ok(())
    }
}

pub struct AddParams(Fields);

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let fields = Fields::decode(d)?;
        if fields.url.is_none() {
            return Err(Error::param("url", "is required"));
        }
        Ok(AddParams(fields))
    }
}

const COLS: &str = "id, url, description, objecttypes, actions, subnet_id, group_id, enabled, created";

fn webhook(r: &Row) -> Result<Webhook> {
    let list = |s: String| -> Vec<String> { s.split(',').filter(|i| !i.is_empty()).map(str::to_string).collect() };
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        description: r.get(2)?,
        objecttypes: list(r.get(3)?),
        actions: list(r.get(4)?),
        subnet: r.get(5)?,
        group: r.get(6)?,
        enabled: r.get(7)?,
        created: r.get(8)?,
        secret: None,
    })
}

/// One of the org's subscriptions.
fn load(ctx: &Ctx, id: i64) -> Result<Webhook> {
    ctx.tx
        .query_opt(
            &format!("SELECT {COLS} FROM webhooks WHERE id = ?1 AND org_id = ?2"),
            params![id, ctx.org()],
            webhook,
        )?
        .ok_or_else(|| Error::not_found("webhook"))
}

/// A new subscription; its secret is in this reply only.
pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<Webhook>> {
    let f = p.0;
    f.check(ctx)?;
    // Every change of the org is matched against each subscription in its transaction: their number is bounded.
    let held: i64 = ctx.tx.query_row(
        "SELECT count(*) FROM webhooks WHERE org_id = ?1",
        params![ctx.org()],
        |r| r.get(0),
    )?;
    if held >= MAX_WEBHOOKS {
        return Err(Error::new(
            Code::QuotaExceeded,
            format!("an org may have at most {MAX_WEBHOOKS} webhooks; delete one first"),
        ));
    }
    let secret = new_secret()?;
    let patched = |p: &Patch<i64>| match p {
        Patch::Set(id) => Some(*id),
        Patch::Keep | Patch::Clear => None,
    };
    let id = ctx.tx.query_row(
        "INSERT INTO webhooks (org_id, url, description, objecttypes, actions, subnet_id, group_id, secret, enabled,
                               created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        params![
            ctx.org(),
            f.url,
            f.description.unwrap_or_default(),
            f.objecttypes.unwrap_or_default().join(","),
            f.actions.unwrap_or_default().join(","),
            patched(&f.subnet),
            patched(&f.group),
            secret,
            f.enabled.unwrap_or(true),
            ctx.now,
        ],
        |r| r.get::<i64>(0),
    )?;
    let record = load(ctx, id)?;
    ctx.log(
        Change::new(
            ObjectKind::Webhook.id(id),
            Action::Added,
            format!("webhook to {} added", record.url),
        )
        .after(&record),
    )?;
    // A subscription starts with the changes after its own creation.
    ctx.tx
        .execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", params![id])?;
    Ok(Records(vec![Webhook {
        secret: Some(secret),
        ..record
    }]))
}

/// One subscription, or all of the org's.
pub fn get(ctx: &Ctx, p: OptIdParam) -> Result<Records<Webhook>> {
    if let Some(id) = p.id {
        return Ok(Records(vec![load(ctx, id)?]));
    }
    let rows = crate::methods::capped(
        ctx.tx,
        cached_sql!(format!(
            "SELECT {COLS} FROM webhooks WHERE org_id = ?1 ORDER BY id{UNPAGED_LIMIT}"
        )),
        params![ctx.org()],
        webhook,
    )?;
    Ok(Records(rows))
}

pub struct EditParams {
    id: i64,
    fields: Fields,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            fields: Fields::decode(d)?,
        })
    }
}

/// Changes the fields given; `subnet` or `group` null clears the filter, empty lists send everything.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<Webhook>> {
    let before = load(ctx, p.id)?;
    let f = p.fields;
    f.check(ctx)?;
    let patched = |p: &Patch<i64>, old: Option<i64>| match p {
        Patch::Keep => old,
        Patch::Clear => None,
        Patch::Set(id) => Some(*id),
    };
    ctx.tx.execute(
        "UPDATE webhooks SET url = ?1, description = ?2, objecttypes = ?3, actions = ?4, subnet_id = ?5,
                             group_id = ?6, enabled = ?7
         WHERE id = ?8 AND org_id = ?9",
        params![
            f.url.as_ref().unwrap_or(&before.url),
            f.description.as_ref().unwrap_or(&before.description),
            f.objecttypes.as_ref().unwrap_or(&before.objecttypes).join(","),
            f.actions.as_ref().unwrap_or(&before.actions).join(","),
            patched(&f.subnet, before.subnet),
            patched(&f.group, before.group),
            f.enabled.unwrap_or(before.enabled),
            p.id,
            ctx.org(),
        ],
    )?;
    let after = load(ctx, p.id)?;
    ctx.log(
        Change::new(
            ObjectKind::Webhook.id(p.id),
            Action::Edited,
            format!("webhook to {} edited", after.url),
        )
        .before(&before)
        .after(&after),
    )?;
    Ok(Records(vec![after]))
}

/// Deletes a subscription with its delivery log (pending deliveries are not sent).
pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<Deleted>> {
    let before = load(ctx, p.id)?;
    ctx.tx.execute("DELETE FROM webhooks WHERE id = ?1", params![p.id])?;
    ctx.log(
        Change::new(
            ObjectKind::Webhook.id(p.id),
            Action::Deleted,
            format!("webhook to {} deleted", before.url),
        )
        .before(&before),
    )?;
    Ok(deleted(&[p.id]))
}

pub struct DeliveriesParams {
    webhook: Option<i64>,
    status: Option<String>,
    limit: i64,
}

impl Params for DeliveriesParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let webhook = d.id("id")?;
        let status = match d.str("status")? {
            Some(s) if !["pending", "delivered", "failed"].contains(&s.as_str()) => {
                return Err(Error::param("status", "must be pending, delivered or failed"))
            }
            s => s,
        };
        let limit = d.per_page("limit", 100, MAX_RECORDS as i64)?;
        Ok(DeliveriesParams { webhook, status, limit })
    }
}

const DELIVERY_COLS: &str = "d.id, d.webhook_id, d.change_id, d.event, d.status, d.attempts, d.last_status, \
                             d.last_error, d.next_attempt, d.created, d.updated";

fn delivery(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        webhook: r.get(1)?,
        change: r.get(2)?,
        event: r.get(3)?,
        status: r.get(4)?,
        attempts: r.get(5)?,
        last_status: r.get(6)?,
        last_error: r.get(7)?,
        next_attempt: r.get(8)?,
        created: r.get(9)?,
        updated: r.get(10)?,
    })
}

/// A subscription's delivery log (or that of all the org's), newest first.
pub fn deliveries(ctx: &Ctx, p: DeliveriesParams) -> Result<Records<Delivery>> {
    if let Some(id) = p.webhook {
        load(ctx, id)?;
    }
    let rows = ctx.tx.rows(
        &format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE w.org_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR d.webhook_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR d.status = ?3)
         ORDER BY d.id DESC LIMIT ?4"
        ),
        params![ctx.org(), p.webhook, p.status, p.limit],
        delivery,
    )?;
    Ok(Records(rows))
}

/// Sends a delivery again (one that failed, one delivered that the receiver lost, or one pending that should not
/// wait for its retry): pending, due now, its attempts counted afresh. It goes before the subscription's later
/// deliveries, which wait for it.
pub fn redeliver(ctx: &Ctx, p: IdParam) -> Result<Records<Delivery>> {
    let found: Option<i64> = ctx.tx.query_opt(
        "SELECT d.webhook_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.id = ?1 AND w.org_id = ?2",
        params![p.id, ctx.org()],
        |r| r.get(0),
    )?;
    let Some(webhook) = found else {
        return Err(Error::not_found("delivery"));
    };
    ctx.tx.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt = ?1, updated = ?2 WHERE id = ?3",
        params![ctx.now.saturating_mul(1000), ctx.now, p.id],
    )?;
    ctx.log(
        Change::new(
            ObjectKind::Webhook.id(webhook),
            Action::Edited,
            format!("delivery {} sent again", p.id),
        )
        .detail(json!({"redeliver": p.id})),
    )?;
    let rows = ctx.tx.rows(
        &format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries d WHERE d.id = ?1"),
        params![p.id],
        delivery,
    )?;
    Ok(Records(rows))
}
