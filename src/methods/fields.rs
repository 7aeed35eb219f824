//! `subnets/fields/*`: custom columns for the address records of one subnet (text, number, boolean or select),
//! and the validation and storage of their values, shared with the address methods.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::db::{params, Row};
use crate::error::{Code, Error, Result};
use crate::handler::Action::{Added, Deleted, Edited};
use crate::handler::ObjectKind::Field;
use crate::handler::{Change, Ctx, Params};
use crate::methods::subnets;
use crate::methods::{capped, check_version, deleted, list_reply, stamp_cols, stamps_at, IdParam, List, Paging};
use crate::model::{self, FieldDef, Records};
use crate::params::{as_bool, Data, Patch};
use crate::store::cached_sql;

const TYPES: [&str; 4] = ["text", "number", "boolean", "select"];

/// A field definition as validation needs it: what a value is checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub options: Vec<String>,
    pub default: Option<String>,
    pub required: bool,
}

fn columns() -> &'static str {
    cached_sql!(format!(
        "t.id, t.subnet_id, t.name, t.description, t.type, t.options, t.dflt, t.required, t.position, {}",
        stamp_cols("t", "m")
    ))
}

const FROM: &str = "fields t LEFT JOIN users m ON m.id = t.modby_id";

fn select() -> &'static str {
    cached_sql!(format!("SELECT {} FROM {FROM}", columns()))
}

fn record(r: &Row) -> Result<FieldDef> {
    Ok(FieldDef {
        id: r.get(0)?,
        subnet: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        kind: r.get(4)?,
        options: options(r.get(5)?),
        default: r.get(6)?,
        required: r.get(7)?,
        position: r.get(8)?,
        stamps: stamps_at(r, 9)?,
    })
}

/// The options of a definition, stored as a JSON list (none for a field that is no `select`).
fn options(stored: Option<String>) -> Vec<String> {
    stored.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default()
}

/// The field definitions of a subnet, by position then id, as records.
pub fn list(ctx: &Ctx, subnet_id: i64) -> Result<Vec<FieldDef>> {
    capped(
        ctx.tx,
        &format!("{} WHERE t.subnet_id = ?1 ORDER BY t.position, t.id", select()),
        params![subnet_id],
        record,
    )
}

/// The field definitions of a subnet, for validation.
pub fn definitions(ctx: &Ctx, subnet_id: i64) -> Result<Vec<Rule>> {
    ctx.tx.rows(
        "SELECT id, name, type, options, dflt, required FROM fields WHERE subnet_id = ?1 ORDER BY position, id",
        params![subnet_id],
        |r| {
            Ok(Rule {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                options: options(r.get(3)?),
                default: r.get(4)?,
                required: r.get(5)?,
            })
        },
    )
}

/// Checks a value against its field's type and returns the text stored for it.
pub fn check_value(def: &Rule, v: &Value) -> std::result::Result<String, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(format!("must be a {} value", def.kind)),
    };
    match def.kind.as_str() {
        "number" => {
            let t = text.trim();
            match t.parse::<f64>() {
                Ok(n) if n.is_finite() && !t.is_empty() => Ok(t.to_string()),
                _ => Err("must be a number".into()),
            }
        }
        "boolean" => as_bool(v)
            .map(|b| b.to_string())
            .ok_or_else(|| "must be a boolean".into()),
        "select" if def.options.contains(&text) => Ok(text),
        "select" => Err(format!("must be one of: {}", def.options.join(", "))),
        _ => Ok(text),
    }
}

/// A stored value as typed JSON: numbers as numbers, booleans as booleans.
pub fn render_value(kind: &str, text: &str) -> Value {
    match kind {
        "number" => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .unwrap_or(json!(text)),
        "boolean" => json!(text == "true"),
        _ => json!(text),
    }
}

/// The field values of one address record, `{name: value}` in definition order.
pub fn values_of(ctx: &Ctx, address_id: i64) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    ctx.tx.each(
        "SELECT f.name, f.type, v.value FROM field_values v JOIN fields f ON f.id = v.field_id
         WHERE v.address_id = ?1 ORDER BY f.position, f.id",
        params![address_id],
        |r| {
            out.insert(r.get(0)?, render_value(r.text(1)?, r.text(2)?));
            Ok(true)
        },
    )?;
    Ok(out)
}

/// Stores the field values of an address record of `subnet_id`. Names match case-insensitively; `null` or `""`
/// clears. When `creating`, absent fields take their default, and a required field without one is refused.
/// `fields` names the parameter in errors.
pub fn set_values(
    ctx: &Ctx,
    subnet_id: i64,
    address_id: i64,
    values: &Map<String, Value>,
    creating: bool,
) -> Result<()> {
    let defs = definitions(ctx, subnet_id)?;
    let mut errors = Map::new();
    let mut given: HashMap<i64, Option<String>> = HashMap::new();
    for (name, v) in values {
        let Some(def) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
            errors.insert(format!("fields.{name}"), json!("no such field in this subnet"));
            continue;
        };
        if v.is_null() || v.as_str() == Some("") {
            given.insert(def.id, None);
            continue;
        }
        match check_value(def, v) {
            Ok(text) => {
                given.insert(def.id, Some(text));
            }
            Err(m) => {
                errors.insert(format!("fields.{name}"), json!(m));
            }
        }
    }
    for def in &defs {
        let value = match given.get(&def.id) {
            Some(v) => v.clone(),
            None if creating => def.default.clone(),
            None => continue,
        };
        match value {
            None if def.required => {
                errors.insert(format!("fields.{}", def.name), json!("is required"));
            }
            None => {
                ctx.tx.execute(
                    "DELETE FROM field_values WHERE address_id = ?1 AND field_id = ?2",
                    params![address_id, def.id],
                )?;
            }
            Some(text) => {
                ctx.tx.execute(
                    "INSERT INTO field_values (address_id, field_id, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (address_id, field_id) DO UPDATE SET value = excluded.value",
                    params![address_id, def.id, text],
                )?;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::new(Code::InvalidParams, "invalid field values").with_data(Value::Object(errors)))
    }
}

/// Copies the field definitions of subnet `from` to subnet `to`; returns (old id, new id) pairs.
pub fn copy_definitions(ctx: &Ctx, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
    let old: Vec<i64> = ctx.tx.rows(
        "SELECT id FROM fields WHERE subnet_id = ?1 ORDER BY id",
        params![from],
        |r| r.get(0),
    )?;
    let mut pairs = Vec::with_capacity(old.len());
    for id in old {
        let copy = ctx.tx.query_row(
            "INSERT INTO fields (subnet_id, name, description, type, options, dflt, required, position, created,
                                 modifiedat, modby_id, modby_name)
             SELECT ?1, name, description, type, options, dflt, required, position, created, ?2, ?3, ?4
             FROM fields WHERE id = ?5 RETURNING id",
            params![to, ctx.now, ctx.caller.user_id, ctx.caller.username, id],
            |r| r.get::<i64>(0),
        )?;
        pairs.push((id, copy));
    }
    Ok(pairs)
}

/// Points the values of the records now in `subnet_id` from old field ids to new ones.
pub fn remap_values(ctx: &Ctx, subnet_id: i64, pairs: &[(i64, i64)]) -> Result<()> {
    for (old, new) in pairs {
        ctx.tx.execute(
            "UPDATE field_values SET field_id = ?1
             WHERE field_id = ?2 AND address_id IN (SELECT id FROM addresses WHERE subnet_id = ?3)",
            params![new, old, subnet_id],
        )?;
    }
    Ok(())
}

/// Merges the definitions of subnet `from` into subnet `into` by name: a name `into` lacks is copied; a name both
/// have must be defined alike unless `force` (then `into`'s definition wins, and `from`'s values of that field are
/// kept only where they fit it). Returns (old id, new id) pairs.
pub fn merge_definitions(ctx: &Ctx, from: i64, into: i64, force: bool) -> Result<Vec<(i64, i64)>> {
    let theirs = definitions(ctx, from)?;
    let ours = definitions(ctx, into)?;
    let mut pairs = Vec::new();
    let mut conflicts = Map::new();
    for def in &theirs {
        match ours.iter().find(|o| o.name.eq_ignore_ascii_case(&def.name)) {
            Some(o)
                if (&o.kind, &o.options, &o.default, o.required)
                    == (&def.kind, &def.options, &def.default, def.required) =>
            {
                pairs.push((def.id, o.id));
            }
            Some(o) if force => {
                fit_values(ctx, def.id, o)?;
                if o.required {
                    fill_missing(ctx, from, def.id, o)?;
                }
                pairs.push((def.id, o.id));
            }
            Some(_) => {
                conflicts.insert(
                    def.name.clone(),
                    json!(format!("defined differently in subnets {from} and {into}")),
                );
            }
            None => {
                let id = ctx.tx.query_row(
                    "INSERT INTO fields (subnet_id, name, description, type, options, dflt, required, position,
                                         created, modifiedat, modby_id, modby_name)
                     SELECT ?1, name, description, type, options, dflt, required, position, created, ?2, ?3, ?4
                     FROM fields WHERE id = ?5 RETURNING id",
                    params![into, ctx.now, ctx.caller.user_id, ctx.caller.username, def.id],
                    |r| r.get::<i64>(0),
                )?;
                fill_missing(ctx, into, id, def)?;
                pairs.push((def.id, id));
            }
        }
    }
    for o in &ours {
        if !theirs.iter().any(|d| d.name.eq_ignore_ascii_case(&o.name)) {
            fill_missing(ctx, from, o.id, o)?;
        }
    }
    if conflicts.is_empty() {
        Ok(pairs)
    } else {
        Err(Error::new(
            Code::Conflict,
            "field definitions conflict; pass force to keep the surviving subnet's",
        )
        .with_data(Value::Object(conflicts)))
    }
}

/// Gives the records of `subnet` that have no value for field `field_id` the default of `def`, as records that
/// join a subnet get the defaults of its fields (like new records, and like the records already there when a field
/// is added). A required field without a default cannot take records that lack a value.
fn fill_missing(ctx: &Ctx, subnet: i64, field_id: i64, def: &Rule) -> Result<()> {
    match &def.default {
        Some(default) => {
            ctx.tx.execute(
                "INSERT OR IGNORE INTO field_values (address_id, field_id, value)
                 SELECT id, ?1, ?2 FROM addresses WHERE subnet_id = ?3",
                params![field_id, default, subnet],
            )?;
        }
        None if def.required => {
            let lacking: i64 = ctx.tx.query_row(
                "SELECT count(*) FROM addresses a WHERE a.subnet_id = ?1
                 AND NOT EXISTS (SELECT 1 FROM field_values v WHERE v.address_id = a.id AND v.field_id = ?2)",
                params![subnet, field_id],
                |r| r.get(0),
            )?;
            if lacking > 0 {
                return Err(Error::new(
                    Code::Conflict,
                    format!(
                        "the field '{}' is required and has no default, but {lacking} records would have no value",
                        def.name
                    ),
                )
                .with_data(json!({def.name.clone(): format!("{lacking} records would have no value")})));
            }
        }
        None => {}
    }
    Ok(())
}

/// Makes the stored values of field `field_id` fit `def`: normalised where they fit it, dropped where they do not,
/// so that a value never contradicts the definition it is read under.
fn fit_values(ctx: &Ctx, field_id: i64, def: &Rule) -> Result<()> {
    let values = ctx.tx.rows(
        "SELECT address_id, value FROM field_values WHERE field_id = ?1",
        params![field_id],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
    )?;
    for (address, value) in values {
        match check_value(def, &json!(value)) {
            Ok(text) if text == value => {}
            Ok(text) => {
                ctx.tx.execute(
                    "UPDATE field_values SET value = ?1 WHERE address_id = ?2 AND field_id = ?3",
                    params![text, address, field_id],
                )?;
            }
            Err(_) => {
                ctx.tx.execute(
                    "DELETE FROM field_values WHERE address_id = ?1 AND field_id = ?2",
                    params![address, field_id],
                )?;
            }
        }
    }
    Ok(())
}

fn load(ctx: &Ctx, id: i64) -> Result<FieldDef> {
    ctx.tx
        .query_opt(
            &format!(
                "{} CROSS JOIN subnets s ON s.id = t.subnet_id WHERE t.id = ?1 AND s.org_id = ?2",
                select()
            ),
            params![id, ctx.org()],
            record,
        )?
        .ok_or_else(|| Error::not_found("field"))
}

/// `subnets/fields/get` names exactly one of: a field by its own `id`, or a `subnet` whose fields it lists (a page
/// of them with `page` or `perpage`).
pub enum GetParams {
    Field(i64),
    Subnet(i64, Paging),
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        match (d.id("id")?, d.id("subnet")?) {
            (Some(id), None) if !d.has("page") && !d.has("perpage") => Ok(GetParams::Field(id)),
            (Some(_), None) => Err(Error::param("page", "pages a subnet's fields, not one field")),
            (None, Some(subnet)) => Ok(GetParams::Subnet(subnet, Paging::decode(d)?)),
            _ => Err(Error::param(
                "id",
                "give either id (one field) or subnet (a subnet's fields), not both",
            )),
        }
    }
}

/// One field definition by its id (as every other `*/get` reads `id`), or the field definitions of one subnet by
/// position, read a page at a time from the `fields_subnet` index when paged.
pub fn get(ctx: &Ctx, p: GetParams) -> Result<model::List<FieldDef>> {
    match p {
        GetParams::Field(id) => Ok(model::List::of(vec![load(ctx, id)?], "fields")),
        GetParams::Subnet(subnet, paging) => {
            subnets::load(ctx, subnet)?;
            let filters = List::new("t.subnet_id = ?", subnet);
            let (found, total) = filters.run(ctx, columns(), FROM, "t.position, t.id", &paging, record)?;
            Ok(list_reply(&paging, total, "fields", found))
        }
    }
}

/// A definition's type, options and default, checked together.
struct Shape {
    kind: String,
    options: Vec<String>,
    default: Option<String>,
}

impl Shape {
    fn check(self, name: &str) -> Result<Shape> {
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(Error::param("type", "must be text, number, boolean or select"));
        }
        if self.kind == "select" && self.options.is_empty() {
            return Err(Error::param("options", "a select field needs options"));
        }
        let default = match &self.default {
            None => None,
            Some(d) => {
                let def = Rule {
                    id: 0,
                    name: name.to_string(),
                    kind: self.kind.clone(),
                    options: self.options.clone(),
                    default: None,
                    required: false,
                };
                Some(check_value(&def, &json!(d)).map_err(|m| Error::param("default", m))?)
            }
        };
        Ok(Shape { default, ..self })
    }
}

fn options_param(d: &mut Data) -> Result<Option<Vec<String>>> {
    let Some(items) = d.list("options")? else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(Error::param("options", "must be a list of strings")),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn name_param(name: String) -> Result<String> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 64 {
        return Err(Error::param("name", "must be 1 to 64 characters"));
    }
    Ok(name)
}

pub struct AddParams {
    subnet: i64,
    name: String,
    description: Option<String>,
    shape: Shape,
    required: bool,
    position: i64,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let subnet = d.req_id("subnet")?;
        let name = name_param(d.req_str("name")?)?;
        let description = d.str("description")?;
        let kind = d.str("type")?.unwrap_or_else(|| "text".into()).to_ascii_lowercase();
        let options = options_param(d)?.unwrap_or_default();
        let shape = Shape {
            kind,
            options,
            default: d.str("default")?,
        }
        .check(&name)?;
        Ok(AddParams {
            subnet,
            name,
            description,
            shape,
            required: d.bool("required")?.unwrap_or(false),
            position: d.int("position")?.unwrap_or(0),
        })
    }
}

fn check_name_free(ctx: &Ctx, subnet: i64, name: &str, except: i64) -> Result<()> {
    let taken: bool = ctx.tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM fields WHERE subnet_id = ?1 AND name = ?2 AND id <> ?3)",
        params![subnet, name, except],
        |r| r.get(0),
    )?;
    if taken {
        return Err(Error::new(
            Code::Duplicate,
            format!("the subnet already has a field '{name}'"),
        ));
    }
    Ok(())
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<FieldDef>> {
    subnets::load(ctx, p.subnet)?;
    check_name_free(ctx, p.subnet, &p.name, 0)?;
    if p.required && p.shape.default.is_none() {
        let used: i64 = ctx
            .tx
            .query_row("SELECT used FROM subnets WHERE id = ?1", params![p.subnet], |r| {
                r.get(0)
            })?;
        if used > 0 {
            return Err(Error::param(
                "required",
                "the subnet has records: a new required field needs a default",
            ));
        }
    }
    let id = ctx.tx.query_row(
        "INSERT INTO fields (subnet_id, name, description, type, options, dflt, required, position, created,
                             modifiedat, modby_id, modby_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11) RETURNING id",
        params![
            p.subnet,
            p.name,
            p.description,
            p.shape.kind,
            json!(p.shape.options).to_string(),
            p.shape.default,
            p.required,
            p.position,
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username
        ],
        |r| r.get::<i64>(0),
    )?;
    if let Some(default) = &p.shape.default {
        // Existing records take the default, so that a required field holds on every record.
        ctx.tx.execute(
            "INSERT INTO field_values (address_id, field_id, value) SELECT id, ?1, ?2 FROM addresses WHERE subnet_id = ?3",
            params![id, default, p.subnet],
        )?;
    }
    let after = load(ctx, id)?;
    ctx.log(
        Change::new(
            Field.id(id),
            Added,
            format!("field '{}' added to subnet {}", p.name, p.subnet),
        )
        .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    name: Option<String>,
    description: Patch<String>,
    kind: Option<String>,
    options: Option<Vec<String>>,
    default: Patch<String>,
    required: Option<bool>,
    position: Option<i64>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            name: d.str("name")?.map(name_param).transpose()?,
            description: d.patch_str("description")?,
            kind: d.str("type")?.map(|t| t.to_ascii_lowercase()),
            options: options_param(d)?,
            default: d.patch_str("default")?,
            required: d.bool("required")?,
            position: d.int("position")?,
        })
    }
}

/// Edits a definition. A rename keeps the values; a new type or options must fit every stored value.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<FieldDef>> {
    let before = load(ctx, p.id)?;
    check_version(ctx, "fields", p.id, p.version)?;
    let subnet = before.subnet;
    let name = p.name.clone().unwrap_or_else(|| before.name.clone());
    if p.name.is_some() {
        check_name_free(ctx, subnet, &name, p.id)?;
    }
    let default = match p.default {
        Patch::Keep => before.default.clone(),
        Patch::Clear => None,
        Patch::Set(d) => Some(d),
    };
    let shape = Shape {
        kind: p.kind.unwrap_or_else(|| before.kind.clone()),
        options: p.options.unwrap_or_else(|| before.options.clone()),
        default,
    }
    .check(&name)?;
    let def = Rule {
        id: p.id,
        name: name.clone(),
        kind: shape.kind.clone(),
        options: shape.options.clone(),
        default: shape.default.clone(),
        required: p.required.unwrap_or(before.required),
    };
    let values = ctx.tx.rows(
        "SELECT address_id, value FROM field_values WHERE field_id = ?1",
        params![p.id],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
    )?;
    let mut misfits = 0;
    for (address, value) in &values {
        match check_value(&def, &json!(value)) {
            Ok(normalised) if &normalised != value => {
                ctx.tx.execute(
                    "UPDATE field_values SET value = ?1 WHERE address_id = ?2 AND field_id = ?3",
                    params![normalised, address, p.id],
                )?;
            }
            Ok(_) => {}
            Err(_) => misfits += 1,
        }
    }
    if misfits > 0 {
        return Err(Error::param(
            "type",
            format!("{misfits} stored values do not fit the new definition"),
        ));
    }
    if def.required {
        let (records, with_value): (i64, i64) = ctx.tx.query_row(
            "SELECT (SELECT count(*) FROM addresses WHERE subnet_id = ?1),
                    (SELECT count(*) FROM field_values WHERE field_id = ?2)",
            params![subnet, p.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if records > with_value {
            return Err(Error::param(
                "required",
                format!("{} records have no value", records - with_value),
            ));
        }
    }
    let description = match p.description {
        Patch::Keep => before.description.clone(),
        Patch::Clear => None,
        Patch::Set(d) => Some(d),
    };
    ctx.tx.execute(
        "UPDATE fields SET name = ?1, description = ?2, type = ?3, options = ?4, dflt = ?5, required = ?6,
                           position = ?7, modifiedat = ?8, modby_id = ?9, modby_name = ?10
         WHERE id = ?11",
        params![
            name,
            description,
            def.kind,
            json!(def.options).to_string(),
            def.default,
            def.required,
            p.position.unwrap_or(before.position),
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username,
            p.id
        ],
    )?;
    let after = load(ctx, p.id)?;
    ctx.log(
        Change::new(Field.id(p.id), Edited, "field edited")
            .detail(subnets::diff(&before, &after))
            .before(&before)
            .after(&after),
    )?;
    Ok(Records(vec![after]))
}

/// Deletes a definition and its values.
pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<model::Deleted>> {
    let f = load(ctx, p.id)?;
    check_version(ctx, "fields", p.id, p.version)?;
    ctx.tx.execute("DELETE FROM fields WHERE id = ?1", params![p.id])?;
    let summary = format!("field '{}' deleted", f.name);
    ctx.log(Change::new(Field.id(p.id), Deleted, summary).before(&f))?;
    Ok(deleted(&[p.id]))
}
