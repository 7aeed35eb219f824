//! The change feed: `changes/get`, the org's changes after a cursor in commit order, read from the `changes` table
//! `Ctx::log` writes with every change (schema.sql, migration 13).

use crate::db::{params, Sql};
use serde_json::Value;

use crate::error::{Code, Error, Result};
use crate::handler::{Ctx, Params};
use crate::model::{ChangeEntry, ChangePage};
use crate::params::Data;

pub struct FeedParams {
    after: Option<i64>,
    limit: i64,
    wait: u64,
}

impl Params for FeedParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let after = match d.int("after")? {
            Some(n) if n < 0 => return Err(Error::param("after", "must be a cursor (0 or more)")),
            after => after,
        };
        let limit = d.per_page("limit", 100, 1000)?;
        let wait = match d.int("wait")? {
            None => 0,
            Some(n) => u64::try_from(n).map_err(|_| Error::param("wait", "must be seconds (0 or more)"))?,
        };
        Ok(FeedParams { after, limit, wait })
    }
}

/// The org's changes after `after` (from the oldest kept when absent), at most `limit` of them. A cursor the feed
/// no longer covers (purged past the retention) or never gave (beyond the last change of this database, as after
/// the database file was replaced) is `cursor_expired`: the consumer must read the current state again and go on
/// from the cursor a call without `after` gives.
pub fn get(ctx: &Ctx, p: FeedParams) -> Result<ChangePage> {
    if let Some(after) = p.after {
        let purged: i64 = ctx
            .tx
            .query_row("SELECT id FROM changes_purged", params![], |r| r.get(0))?;
        let last: i64 = ctx
            .tx
            .query_opt(
                // The highest id the table ever gave, whether or not the change is still kept.
                Sql::Dialects(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
                    "SELECT coalesce(pg_sequence_last_value('changes_id_seq'), 0)",
                ),
                params![],
                |r| r.get(0),
            )?
            .unwrap_or(0);
        if after < purged || after > last {
            let why = match after < purged {
                true => "the changes after it are past the feed's retention",
                false => "it is not a cursor of this database",
            };
            return Err(Error::new(
                Code::CursorExpired,
                format!("cursor {after} has expired: {why}; read the current state again and follow the feed from a call without 'after'"),
            ));
        }
    }
    let after = p.after.unwrap_or(0);
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let mut changes = ctx.tx.rows(
        "SELECT id, time, objecttype, objectid, action, summary, before, after, detail, userid, \"user\", application,
                method, respid
         FROM changes WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        params![ctx.org(), after, p.limit + 1],
        |r| {
            Ok(ChangeEntry {
                cursor: r.get(0)?,
                time: r.get(1)?,
                objecttype: r.get(2)?,
                objectid: r.get(3)?,
                action: r.get(4)?,
                summary: r.get(5)?,
                before: json(r.get(6)?),
                after: json(r.get(7)?),
                detail: json(r.get(8)?),
                userid: r.get(9)?,
                user: r.get(10)?,
                application: r.get(11)?,
                method: r.get(12)?,
                respid: r.get(13)?,
            })
        },
    )?;
    let more = changes.len() as i64 > p.limit;
    changes.truncate(usize::try_from(p.limit).unwrap_or(0));
    Ok(ChangePage {
        cursor: changes.last().map_or(after, |c| c.cursor),
        more,
        wait: p.wait.min(ctx.settings.feed_max_wait),
        changes,
    })
}
