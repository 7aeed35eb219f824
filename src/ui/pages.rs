//! The web UI's pages: typed maud templates, one function per page or part. maud escapes every value it inserts,
//! so a stored `<script>` is shown as text. No page carries a script or a style attribute (the Content-Security-Policy
//! allows neither): widths are classes of the stylesheet (`p0`…`p100`), and everything works without JavaScript.

use maud::{html, Markup, DOCTYPE};
use serde_json::{Map, Value};

use crate::model::{AppKey, DhcpRange, FieldDef, FreeBlocks, Group, Host, IpStatus, LogEntry, Subnet, Token, User};

/// Where the stylesheet is served; its name carries the crate's version, so a new release is never served a stale
/// copy from a browser's cache.
pub const CSS_PATH: &str = concat!("/ui/assets/ui-", env!("CARGO_PKG_VERSION"), ".css");
/// The favicon.
pub const ICON_PATH: &str = "/ui/assets/icon.svg";

/// The parts of the frame around every signed-in page.
pub struct Chrome<'a> {
    pub title: &'a str,
    pub user: &'a str,
    pub org: &'a str,
    pub csrf: &'a str,
    pub section: Section,
    pub admin: bool,
}

/// The section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Subnets,
    Groups,
    Search,
    Log,
    Tokens,
    Users,
    None,
}

/// What a form shows again after a refused change: the values typed in, the error of each field, and the message of
/// an error that concerns no one field.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    pub values: Vec<(String, String)>,
    pub errors: Map<String, Value>,
    pub message: Option<String>,
}

impl FormState {
    /// The value typed into `name`, if any.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn error(&self, name: &str) -> Option<String> {
        self.errors.get(name).map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A page of the frame: the header with the navigation and sign-out, and `body` under the page's title.
pub fn layout(c: &Chrome, body: Markup) -> Markup {
    let nav = [
        (Section::Overview, "/ui/", "Overview"),
        (Section::Subnets, "/ui/subnets", "Subnets"),
        (Section::Groups, "/ui/groups", "Groups"),
        (Section::Search, "/ui/search", "Search"),
        (Section::Log, "/ui/log", "Audit log"),
        (Section::Tokens, "/ui/tokens", "Keys and tokens"),
        (Section::Users, "/ui/users", "Users"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(c.title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "ipamd" }
                    nav aria-label="Main" {
                        ul {
                            @for (section, href, label) in nav {
                                @if section != Section::Log || c.admin {
                                    @let current = (section == c.section).then_some("page");
                                    li { a href=(href) aria-current=[current] { (label) } }
                                }
                            }
                        }
                    }
                    form.signout method="post" action="/ui/signout" {
                        input type="hidden" name="csrf" value=(c.csrf);
                        span.who { (c.user) " · " (c.org) }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main {
                    h1 { (c.title) }
                    (body)
                }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · ipamd" }
            link rel="stylesheet" href=(CSS_PATH);
            link rel="icon" href=(ICON_PATH) type="image/svg+xml";
        }
    }
}

/// The sign-in page.
pub fn sign_in(form: &FormState) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.signin {
                main #main {
                    form.card method="post" action="/ui/signin" {
                        h1 { "Sign in to ipamd" }
                        @if let Some(m) = &form.message { p.error role="alert" { (m) } }
                        (field(form, "signin", "org", "Organisation", "text", true))
                        (field(form, "signin", "username", "Username", "text", true))
                        div.field {
                            label for="signin-password" { "Password" }
                            input #signin-password name="password" type="password" required
                                autocomplete="current-password";
                        }
                        button.primary type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// A page that tells what went wrong, in the frame when signed in.
pub fn problem(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.signin {
                main #main.card {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/ui/" { "Back to the overview" } }
                }
            }
        }
    }
}

/// A labelled input of `form` (its id prefixed with the form's name, so several forms share a page), with the
/// error of its field under it.
pub fn field(form: &FormState, prefix: &str, name: &str, label: &str, kind: &str, required: bool) -> Markup {
    let id = format!("{prefix}-{name}");
    let error = form.error(name);
    let described = error.as_ref().map(|_| format!("{id}-error"));
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=[form.value(name)] required[required]
                aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[described.as_deref()];
            @if let Some(e) = &error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

fn form_message(form: &FormState) -> Markup {
    html! {
        @if let Some(m) = &form.message { p.error role="alert" { (m) } }
    }
}

/// The percentage of a subnet's usable addresses taken, 0–100 (rounded up, so a subnet with one record is not 0 %).
pub fn percent(s: &Subnet) -> u8 {
    if s.total_hosts == 0 {
        return 100;
    }
    let taken = s.total_hosts.saturating_sub(s.available_hosts);
    let pct = taken.saturating_mul(100).div_ceil(s.total_hosts).min(100);
    u8::try_from(pct).unwrap_or(100)
}

/// A subnet's utilisation: a bar (its width a class) and the figure.
pub fn bar(s: &Subnet) -> Markup {
    let pct = percent(s);
    let level = match pct {
        90.. => "full",
        70..=89 => "high",
        _ => "ok",
    };
    html! {
        span.util {
            span.bar role="img" aria-label=(format!("{pct}% used")) {
                span class=(format!("fill p{pct} {level}")) {}
            }
            span.pct { (pct) "%" }
        }
    }
}

/// The overview: counts, the fullest subnets, recent changes (admins).
pub fn overview(counts: &[(&str, i64)], fullest: &[Subnet], recent: Option<&[LogEntry]>) -> Markup {
    html! {
        section aria-labelledby="counts" {
            h2 #counts.sr-only { "Counts" }
            ul.counts {
                @for (label, n) in counts {
                    li { span.n { (n) } " " span.l { (label) } }
                }
            }
        }
        section aria-labelledby="fullest" {
            h2 #fullest { "Fullest subnets" }
            @if fullest.is_empty() {
                p { "No subnets yet. " a href="/ui/subnets/new" { "Add the first one" } "." }
            } @else {
                (subnet_table(fullest))
            }
        }
        @if let Some(recent) = recent {
            section aria-labelledby="recent" {
                h2 #recent { "Recent changes" }
                (log_table(recent))
                p { a href="/ui/log" { "The whole audit log" } }
            }
        }
    }
}

/// A table of subnets with their utilisation.
pub fn subnet_table(subnets: &[Subnet]) -> Markup {
    html! {
        div.scroll {
            table {
                (table_head(&["Subnet", "Name", "VLAN", "Used", "Utilisation"]))
                tbody {
                    @for s in subnets {
                        tr {
                            td {
                                a href=(format!("/ui/subnets/{}", s.id)) { (s.subnet) }
                                @if s.pool { " " span.tag { "pool" } }
                                @if let Some(p) = s.parent {
                                    " " a.muted href=(format!("/ui/subnets/{p}")) { "in pool " (p) }
                                }
                            }
                            td { (s.name.as_deref().unwrap_or("")) }
                            td { @if let Some(v) = s.vlan_id { (v) } }
                            td.num { (s.used_hosts) " / " (s.total_hosts) }
                            td { (bar(s)) }
                        }
                    }
                }
            }
        }
    }
}

/// The filters of the subnet list.
pub struct ListQuery<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub sort: &'a str,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
}

/// The subnet list with its filters, sorting and paging.
pub fn subnet_list(q: &ListQuery, groups: &[Group], subnets: &[Subnet]) -> Markup {
    let link = |page: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("name", q.name)
            .append_pair("group", q.group)
            .append_pair("sort", q.sort)
            .append_pair("page", &page.to_string());
        format!("/ui/subnets?{}", s.finish())
    };
    html! {
        p.actions { a.button href="/ui/subnets/new" { "Add a subnet" } }
        form.filters method="get" action="/ui/subnets" role="search" {
            div.field {
                label for="filter-name" { "Name contains" }
                input #filter-name name="name" type="search" value=(q.name);
            }
            div.field {
                label for="filter-group" { "Group" }
                select #filter-group name="group" {
                    option value="" selected[q.group.is_empty()] { "Any" }
                    option value="0" selected[q.group == "0"] { "Top level" }
                    @for g in groups {
                        option value=(g.id) selected[q.group == g.id.to_string()] { (g.description) }
                    }
                }
            }
            div.field {
                label for="filter-sort" { "Sort by" }
                select #filter-sort name="sort" {
                    option value="address" selected[q.sort != "utilisation"] { "Address" }
                    option value="utilisation" selected[q.sort == "utilisation"] { "Utilisation, fullest first" }
                }
            }
            button type="submit" { "Apply" }
        }
        p { (q.total) " subnets" }
        (subnet_table(subnets))
        (pager(q.page, q.pages, link))
    }
}

fn pager(page: i64, pages: i64, link: impl Fn(i64) -> String) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(link(page - 1)) rel="prev" { "Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a href=(link(page + 1)) rel="next" { "Next" } }
            }
        }
    }
}

/// The state of an address in the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    Assigned,
    Reserved,
    Inactive,
    Dhcp,
    Free,
    Unusable,
}

impl CellState {
    pub fn class(self) -> &'static str {
        match self {
            CellState::Assigned => "assigned",
            CellState::Reserved => "reserved",
            CellState::Inactive => "inactive",
            CellState::Dhcp => "dhcp",
            CellState::Free => "free",
            CellState::Unusable => "unusable",
        }
    }

    const ALL: [CellState; 6] = [
        CellState::Assigned,
        CellState::Reserved,
        CellState::Inactive,
        CellState::Dhcp,
        CellState::Free,
        CellState::Unusable,
    ];
}

/// The forms of the changes of a subnet as a whole, each with what the API refused of it; `range` is the refused
/// form of a DHCP range: of the one its `range` value names, or (none named) of a new one.
#[derive(Debug, Default)]
pub struct Changes {
    pub split: FormState,
    pub join: FormState,
    pub delete: FormState,
    pub range: FormState,
}

/// One address of the map.
pub struct Cell<'a> {
    pub ip: String,
    pub state: CellState,
    pub host: Option<&'a Host>,
}

/// A line of the record list of a large block: a record, or a free range between records.
pub enum Line<'a> {
    Record(&'a Host),
    Free { first: String, last: String, count: u128 },
}

/// What the subnet page shows of the block: the map of a small IPv4 block, or a page of the list.
pub enum Space<'a> {
    Map(Vec<Cell<'a>>),
    List {
        lines: Vec<Line<'a>>,
        page: i64,
        pages: i64,
    },
    /// A pool holds no records: a page of its children, and its free blocks.
    Pool {
        children: Vec<Subnet>,
        free: Box<FreeBlocks>,
        page: i64,
        pages: i64,
    },
}

/// The subnet page: details, the map or the list, the allocate form and the changes of the subnet.
pub fn subnet_page(
    s: &Subnet,
    csrf_token: &str,
    ranges: &[DhcpRange],
    fields: &[FieldDef],
    space: &Space,
    allocate: &FormState,
    changes: &Changes,
) -> Markup {
    let base = format!("/ui/subnets/{}", s.id);
    html! {
        section.details aria-labelledby="about" {
            h2 #about.sr-only { "Details" }
            dl {
                dt { "Name" } dd { (s.name.as_deref().unwrap_or("—")) }
                dt { "Description" } dd { (s.description.as_deref().unwrap_or("—")) }
                dt { "VLAN" } dd { @if let Some(v) = s.vlan_id { (v) } @else { "—" } }
                dt { "Domain" } dd { (s.domain.as_deref().unwrap_or("—")) }
                dt { "Location" } dd { (s.location.as_deref().unwrap_or("—")) }
                dt { "Used" } dd { (s.used_hosts) " records, " (s.available_hosts) " of " (s.total_hosts) " free" }
                dt { "Utilisation" } dd { (bar(s)) }
            }
            p.actions { a.button href=(format!("{base}/edit")) { "Edit the subnet" } }
        }
        @if let Space::Pool { children, free, page, pages } = space {
            (pool(&base, csrf_token, children, free, (*page, *pages), allocate))
        } @else {
        section aria-labelledby="space" {
            h2 #space { "Addresses" }
            @match space {
                Space::Map(cells) => (map(&base, cells)),
                Space::List { lines, page, pages } => (record_list(&base, lines, *page, *pages)),
                Space::Pool { .. } => {}
            }
        }
        (dhcp_ranges(&base, csrf_token, ranges, &changes.range))
        @if !fields.is_empty() {
            section aria-labelledby="fields" {
                h2 #fields { "Custom fields" }
                ul { @for f in fields { li { (f.name) " (" (f.kind) ")" @if f.required { ", required" } } } }
            }
        }
        section #allocate aria-labelledby="allocate-title" {
            h2 #allocate-title { "Allocate an address" }
            form.inline method="post" action=(format!("{base}/addresses")) {
                (csrf(csrf_token))
                button.primary type="submit" name="next" value="1" { "Take the next free address" }
            }
            form method="post" action=(format!("{base}/addresses")) {
                (csrf(csrf_token))
                (form_message(allocate))
                div.row {
                    (field(allocate, "alloc", "ip", "Address (empty: the next free)", "text", false))
                    (field(allocate, "alloc", "hostname", "Hostname", "text", false))
                    (field(allocate, "alloc", "mac_address", "MAC address", "text", false))
                    (field(allocate, "alloc", "description", "Description", "text", false))
                    (status_select(allocate, "alloc"))
                    (custom_fields(allocate, "alloc", fields))
                }
                button type="submit" { "Allocate" }
            }
        }
        }
        section aria-labelledby="change" {
            h2 #change { "Split, join or delete" }
            (form_message(&changes.split))
            form.inline method="post" action=(format!("{base}/split")) {
                (csrf(csrf_token))
                (field(&changes.split, "split", "cidr", "Split into prefix length", "number", true))
                button type="submit" { "Split" }
            }
            (form_message(&changes.join))
            form.inline method="post" action=(format!("{base}/join")) {
                (csrf(csrf_token))
                (field(&changes.join, "join", "cidr", "Join the subnets of its group into prefix length", "number",
                    true))
                button type="submit" { "Join" }
            }
            (form_message(&changes.delete))
            form.inline method="post" action=(format!("{base}/delete")) {
                (csrf(csrf_token))
                input type="hidden" name="version" value=(s.stamps.version);
                div.field.check {
                    input #delete-force type="checkbox" name="force" value="true";
                    label for="delete-force" { "Delete its address records too" }
                }
                div.field.check {
                    input #delete-confirm type="checkbox" name="confirm" value="yes" required;
                    label for="delete-confirm" { "Yes, delete " (s.subnet) }
                }
                button.danger type="submit" { "Delete the subnet" }
            }
        }
    }
}

/// What a pool holds: a page of its children, its free blocks (the first page of them), and the form that allocates
/// the next free block of a length in one click (`allocate`: what the API refused of it).
fn pool(
    base: &str,
    csrf_token: &str,
    children: &[Subnet],
    free: &FreeBlocks,
    paging: (i64, i64),
    allocate: &FormState,
) -> Markup {
    let largest = free.largest.map(|l| format!("/{l}")).unwrap_or_else(|| "none".into());
    html! {
        section aria-labelledby="children" {
            h2 #children { "Subnets in the pool" }
            @if children.is_empty() { p { "None yet." } } @else { (subnet_table(children)) }
            (pager(paging.0, paging.1, |p| format!("{base}?page={p}")))
        }
        section #allocate aria-labelledby="free" {
            h2 #free { "Free space" }
            p { (free.total_free) " addresses free; the largest free block is " (largest) "." }
            form.inline method="post" action=(format!("{base}/children")) {
                (csrf(csrf_token))
                (field(allocate, "child", "cidr", "Prefix length", "number", true))
                (field(allocate, "child", "name", "Name", "text", false))
                button.primary type="submit" { "Allocate the next free block" }
            }
            (form_message(allocate))
            @if !free.blocks.is_empty() {
                ul.blocks { @for b in &free.blocks { li { code { (b) } } } }
            }
        }
    }
}

/// The DHCP ranges of a subnet, each an edit form and a delete button, and the form of a new one; `refused` is the
/// form the API refused (see [`Changes`]).
fn dhcp_ranges(base: &str, csrf_token: &str, ranges: &[DhcpRange], refused: &FormState) -> Markup {
    let new = match refused.value("range") {
        None if !refused.values.is_empty() => refused.clone(),
        _ => FormState {
            values: vec![("is_active".into(), "true".into())],
            ..FormState::default()
        },
    };
    html! {
        section aria-labelledby="ranges" {
            h2 #ranges { "DHCP ranges" }
            @for r in ranges {
                @let id = r.id.to_string();
                @let state = match refused.value("range") {
                    Some(named) if named == id => refused.clone(),
                    _ => FormState {
                        values: vec![
                            ("start_ip".into(), r.start_ip.clone()),
                            ("end_ip".into(), r.end_ip.clone()),
                            ("description".into(), r.description.clone().unwrap_or_default()),
                            ("is_active".into(), r.is_active.to_string()),
                        ],
                        ..FormState::default()
                    },
                };
                @let prefix = format!("range{id}");
                div.range {
                    form method="post" action=(format!("/ui/ranges/{id}")) {
                        (csrf(csrf_token))
                        input type="hidden" name="range" value=(id);
                        input type="hidden" name="version" value=(r.stamps.version);
                        (form_message(&state))
                        div.row {
                            (field(&state, &prefix, "start_ip", "First address", "text", true))
                            (field(&state, &prefix, "end_ip", "Last address", "text", true))
                            (field(&state, &prefix, "description", "Description", "text", false))
                            (active_check(&state, &prefix))
                        }
                        button type="submit" aria-label=(format!("Save the DHCP range {}", r.start_ip)) { "Save" }
                    }
                    form.inline method="post" action=(format!("/ui/ranges/{id}/delete")) {
                        (csrf(csrf_token))
                        input type="hidden" name="range" value=(id);
                        input type="hidden" name="version" value=(r.stamps.version);
                        button.danger type="submit"
                            aria-label=(format!("Delete the DHCP range {} – {}", r.start_ip, r.end_ip)) { "Delete" }
                    }
                }
            }
            h3 { "Add a DHCP range" }
            form method="post" action=(format!("{base}/ranges")) {
                (csrf(csrf_token))
                (form_message(&new))
                div.row {
                    (field(&new, "range-new", "start_ip", "First address", "text", true))
                    (field(&new, "range-new", "end_ip", "Last address", "text", true))
                    (field(&new, "range-new", "description", "Description", "text", false))
                    (active_check(&new, "range-new"))
                }
                button type="submit" { "Add the range" }
            }
        }
    }
}

/// The "active" checkbox of a DHCP range's form.
fn active_check(form: &FormState, prefix: &str) -> Markup {
    let id = format!("{prefix}-is_active");
    html! {
        div.field.check {
            input id=(id) type="checkbox" name="is_active" value="true" checked[form.value("is_active") == Some("true")];
            label for=(id) { "Active" }
        }
    }
}

fn status_select(form: &FormState, prefix: &str) -> Markup {
    choice(
        form,
        prefix,
        "status",
        "Status",
        &["active", "reserved", "inactive"],
        "active",
    )
}

/// The inputs of a subnet's custom fields `defs`, named `fields.<name>` as the API names a refused value: a choice
/// for a boolean or select field (empty: its default, or none), text otherwise.
fn custom_fields(form: &FormState, prefix: &str, defs: &[FieldDef]) -> Markup {
    html! {
        @for d in defs {
            @let name = format!("fields.{}", d.name);
            @let label = match &d.description {
                Some(about) => format!("{} ({about})", d.name),
                None => d.name.clone(),
            };
            @match d.kind.as_str() {
                "boolean" => (choice(form, prefix, &name, &label, &["", "true", "false"], "")),
                "select" => {
                    @let options: Vec<&str> = std::iter::once("").chain(d.options.iter().map(String::as_str)).collect();
                    (choice(form, prefix, &name, &label, &options, ""))
                }
                _ => (field(form, prefix, &name, &label, "text", false)),
            }
        }
    }
}

/// A labelled choice of `options` (`""` shown as "—") for field `name` of `form`, `default` chosen when the form
/// has no value, with the field's error under it.
fn choice(form: &FormState, prefix: &str, name: &str, label: &str, options: &[&str], default: &str) -> Markup {
    let id = format!("{prefix}-{name}");
    let current = form.value(name).unwrap_or(default);
    let error = form.error(name);
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.as_ref().map(|_| "true")]
                aria-describedby=[error.as_ref().map(|_| format!("{id}-error"))] {
                @for o in options {
                    option value=(o) selected[current == *o] { @if o.is_empty() { "—" } @else { (o) } }
                }
            }
            @if let Some(e) = &error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

/// The address map: one cell per address, coloured by state, with a legend. A free cell leads to the allocate
/// form filled in with it, a taken one to its record.
fn map(base: &str, cells: &[Cell]) -> Markup {
    html! {
        ul.legend aria-label="Legend" {
            @for state in CellState::ALL {
                li { span class=(format!("swatch s-{}", state.class())) {} (state.class()) }
            }
        }
        div.map role="list" aria-label="Address map" {
            @for c in cells {
                @let label = match c.host.and_then(|h| h.hostname.as_deref()) {
                    Some(name) => format!("{} {}: {}", c.ip, c.state.class(), name),
                    None => format!("{} {}", c.ip, c.state.class()),
                };
                @let last = c.ip.rsplit('.').next().unwrap_or("");
                @match (c.state, c.host) {
                    (_, Some(h)) => a role="listitem" class=(format!("cell s-{}", c.state.class()))
                        href=(format!("/ui/addresses/{}", h.id)) aria-label=(label) data-tip=(label) { (last) },
                    (CellState::Free, None) => a role="listitem" class="cell s-free"
                        href=(format!("{base}?allocate={}#allocate", c.ip)) aria-label=(label) data-tip=(label)
                        { (last) },
                    (_, None) => span role="listitem" class=(format!("cell s-{}", c.state.class()))
                        aria-label=(label) data-tip=(label) { (last) },
                }
            }
        }
    }
}

fn record_list(base: &str, lines: &[Line], page: i64, pages: i64) -> Markup {
    html! {
        div.scroll {
            table {
                (table_head(&["Address", "Hostname", "Status", "Description"]))
                tbody {
                    @for line in lines {
                        @match line {
                            Line::Record(h) => tr {
                                td { a href=(format!("/ui/addresses/{}", h.id)) { (h.ip) } }
                                td { (h.hostname.as_deref().unwrap_or("")) }
                                td { span class=(format!("tag s-{}", host_state(h).class())) { (h.status) } }
                                td { (h.description.as_deref().unwrap_or("")) }
                            },
                            Line::Free { first, last, count } => tr.freerange {
                                td colspan="4" {
                                    (count) " free: " (first) @if first != last { " – " (last) } " · "
                                    a href=(format!("{base}?allocate={first}#allocate")) { "allocate " (first) }
                                }
                            },
                        }
                    }
                }
            }
        }
        (pager(page, pages, |p| format!("{base}?page={p}")))
    }
}

/// The state a record shows in the map.
pub fn host_state(h: &Host) -> CellState {
    match h.status.as_str() {
        "reserved" => CellState::Reserved,
        "inactive" => CellState::Inactive,
        _ => CellState::Assigned,
    }
}

/// The form of a new subnet, or of an edit (`subnet` given).
pub fn subnet_form(csrf_token: &str, groups: &[Group], subnet: Option<&Subnet>, form: &FormState) -> Markup {
    let action = match subnet {
        Some(s) => format!("/ui/subnets/{}/edit", s.id),
        None => "/ui/subnets".to_string(),
    };
    let group = form.value("group").unwrap_or("");
    html! {
        form.card method="post" action=(action) {
            (csrf(csrf_token))
            (form_message(form))
            @if let Some(s) = subnet { input type="hidden" name="version" value=(s.stamps.version); }
            (field(form, "subnet", "subnet", "Block (CIDR, such as 10.0.0.0/24)", "text", subnet.is_none()))
            div.field {
                label for="subnet-group" { "Group" }
                select #subnet-group name="group" {
                    option value="0" selected[group.is_empty() || group == "0"] { "Top level" }
                    @for g in groups { option value=(g.id) selected[group == g.id.to_string()] { (g.description) } }
                }
            }
            (field(form, "subnet", "name", "Name", "text", false))
            (field(form, "subnet", "description", "Description", "text", false))
            (field(form, "subnet", "vlan_id", "VLAN", "number", false))
            (field(form, "subnet", "domain", "Domain", "text", false))
            (field(form, "subnet", "location", "Location", "text", false))
            button.primary type="submit" { @if subnet.is_some() { "Save" } @else { "Add the subnet" } }
        }
    }
}

/// The page of one address record: its edit form (with the custom fields `defs` of its subnet) and its delete
/// button.
pub fn address_page(csrf_token: &str, h: &Host, defs: &[FieldDef], form: &FormState) -> Markup {
    let base = format!("/ui/addresses/{}", h.id);
    let version = h.stamps.as_ref().map(|s| s.version).unwrap_or_default();
    html! {
        p { "In " a href=(format!("/ui/subnets/{}", h.subnet)) { (h.network) } }
        form.card method="post" action=(base) {
            (csrf(csrf_token))
            (form_message(form))
            input type="hidden" name="version" value=(version);
            (field(form, "addr", "ip", "Address", "text", true))
            (field(form, "addr", "hostname", "Hostname", "text", false))
            (field(form, "addr", "cname", "CNAME", "text", false))
            (field(form, "addr", "mac_address", "MAC address", "text", false))
            (field(form, "addr", "description", "Description", "text", false))
            (status_select(form, "addr"))
            @if !defs.is_empty() {
                h2 { "Custom fields" }
                (custom_fields(form, "addr", defs))
            }
            button.primary type="submit" { "Save" }
        }
        form.inline method="post" action=(format!("{base}/delete")) {
            (csrf(csrf_token))
            input type="hidden" name="version" value=(version);
            button.danger type="submit" { "Delete " (h.ip) }
        }
    }
}

/// The groups as a tree, each with its subnets' count, and the form of a new group.
pub fn groups(csrf_token: &str, groups: &[Group], form: &FormState) -> Markup {
    html! {
        @if groups.is_empty() { p { "No groups yet." } } @else { (tree(groups, None)) }
        h2 { "Add a group" }
        form.card method="post" action="/ui/groups" {
            (csrf(csrf_token))
            (form_message(form))
            (field(form, "group", "description", "Name", "text", true))
            div.field {
                label for="group-parent" { "Parent" }
                select #group-parent name="parent" {
                    option value="0" { "Top level" }
                    @for g in groups { option value=(g.id) { (g.description) } }
                }
            }
            button.primary type="submit" { "Add the group" }
        }
    }
}

/// The page of one group: its edit form (name and parent: neither itself nor one of its descendants, which the API
/// refuses anyway) and its delete form, each with what the API refused of it.
pub fn group_page(csrf_token: &str, g: &Group, groups: &[Group], edit: &FormState, delete: &FormState) -> Markup {
    let base = format!("/ui/groups/{}", g.id);
    let parent = edit.value("parent").unwrap_or("0");
    html! {
        p { a href=(format!("/ui/subnets?group={}", g.id)) { "Its " (g.subnetcount) " subnets" } }
        form.card method="post" action=(base) {
            (csrf(csrf_token))
            (form_message(edit))
            input type="hidden" name="version" value=(g.stamps.version);
            (field(edit, "group", "description", "Name", "text", true))
            div.field {
                label for="group-parent" { "Parent" }
                select #group-parent name="parent" aria-invalid=[edit.error("parent").map(|_| "true")]
                    aria-describedby=[edit.error("parent").map(|_| "group-parent-error")] {
                    option value="0" selected[parent == "0"] { "Top level" }
                    @for other in groups.iter().filter(|o| o.id != g.id) {
                        option value=(other.id) selected[parent == other.id.to_string()] { (other.description) }
                    }
                }
                @if let Some(e) = edit.error("parent") { p.error #group-parent-error { (e) } }
            }
            button.primary type="submit" { "Save" }
        }
        h2 { "Delete the group" }
        form.card method="post" action=(format!("{base}/delete")) {
            (csrf(csrf_token))
            (form_message(delete))
            input type="hidden" name="version" value=(g.stamps.version);
            div.field.check {
                input #group-recursive type="checkbox" name="recursive" value="true";
                label for="group-recursive" { "With its child groups and subnets" }
            }
            button.danger type="submit" { "Delete " (g.description) }
        }
    }
}

fn tree(groups: &[Group], parent: Option<i64>) -> Markup {
    html! {
        ul.tree {
            @for g in groups.iter().filter(|g| g.parent == parent) {
                li {
                    a href=(format!("/ui/subnets?group={}", g.id)) { (g.description) }
                    " " span.muted { (g.subnetcount) " subnets" } " "
                    a href=(format!("/ui/groups/{}", g.id)) aria-label=(format!("Edit the group {}", g.description))
                        { "edit" }
                    @if g.childcount > 0 { (tree(groups, Some(g.id))) }
                }
            }
        }
    }
}

/// What a search found, each kind in its order; `truncated` when a kind had more than the page shows. `ranges` and
/// `status` are what `search/ip` adds for an address or a block.
pub struct Found<'a> {
    pub groups: &'a [Group],
    pub subnets: &'a [Subnet],
    pub hosts: &'a [Host],
    pub ranges: &'a [DhcpRange],
    pub status: Option<&'a IpStatus>,
    pub truncated: bool,
}

/// The search form and what it found.
pub fn search(query: &str, found: Option<Found>, error: Option<&str>) -> Markup {
    html! {
        form.filters method="get" action="/ui/search" role="search" {
            div.field {
                label for="search-q" { "Name, hostname, MAC, address or block" }
                input #search-q name="q" type="search" value=(query) required;
            }
            button type="submit" { "Search" }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(Found { groups, subnets, hosts, ranges, status, truncated }) = found {
            @if let Some(st) = status { (ip_status(st)) }
            @if groups.is_empty() && subnets.is_empty() && hosts.is_empty() && ranges.is_empty() {
                p { "Nothing found." }
            }
            @if truncated { p { "Only the first results of each kind are shown." } }
            @if !groups.is_empty() {
                h2 { "Groups" }
                ul { @for g in groups { li { a href=(format!("/ui/subnets?group={}", g.id)) { (g.description) } } } }
            }
            @if !subnets.is_empty() { h2 { "Subnets" } (subnet_table(subnets)) }
            @if !hosts.is_empty() {
                h2 { "Addresses" }
                div.scroll { table {
                    (table_head(&["Address", "Hostname", "Subnet", "Description"]))
                    tbody { @for h in hosts { tr {
                        td { a href=(format!("/ui/addresses/{}", h.id)) { (h.ip) } }
                        td { (h.hostname.as_deref().unwrap_or("")) }
                        td { a href=(format!("/ui/subnets/{}", h.subnet)) { (h.network) } }
                        td { (h.description.as_deref().unwrap_or("")) }
                    } } }
                } }
            }
            @if !ranges.is_empty() {
                h2 { "DHCP ranges" }
                div.scroll { table {
                    (table_head(&["Range", "Subnet", "State", "Description"]))
                    tbody { @for r in ranges { tr {
                        td { (r.start_ip) " – " (r.end_ip) }
                        td { a href=(format!("/ui/subnets/{}#ranges", r.subnet)) { "subnet " (r.subnet) } }
                        td { @if r.is_active { "active" } @else { "inactive" } }
                        td { (r.description.as_deref().unwrap_or("")) }
                    } } }
                } }
            }
        }
    }
}

/// What one address is (`search/ip` with `status`), with the way to it: its record, or the allocate form.
fn ip_status(st: &IpStatus) -> Markup {
    html! {
        p.card role="status" {
            strong { (st.ip) } " is " (st.status)
            @if let Some(n) = &st.network {
                " in " a href=(format!("/ui/subnets/{}", n.subnet.id)) { (n.subnet.subnet) }
                @if st.status == "available" {
                    " · " a href=(format!("/ui/subnets/{}?allocate={}#allocate", n.subnet.id, st.ip)) { "allocate it" }
                }
            }
            @if let Some(h) = &st.host { " · " a href=(format!("/ui/addresses/{}", h.id)) { "its record" } }
            @if let Some(r) = &st.dhcp_range { " · DHCP range " (r.start_ip) " – " (r.end_ip) }
        }
    }
}

/// A table's head row: one column header a name; an empty name is a column of actions, named for screen readers.
fn table_head(names: &[&str]) -> Markup {
    html! {
        thead { tr { @for name in names {
            @if name.is_empty() { th scope="col" { span.sr-only { "Actions" } } } @else { th scope="col" { (name) } }
        } } }
    }
}

/// A table of audit entries.
pub fn log_table(entries: &[LogEntry]) -> Markup {
    html! {
        div.scroll { table {
            (table_head(&["Time (UTC)", "User", "Method", "Object", "Summary"]))
            tbody { @for e in entries { tr {
                td { (crate::time::rfc3339(e.time)) }
                td { (e.user) }
                td { code { (e.method) } }
                td { (e.objecttype) @if let Some(id) = e.objectid { " " (id) } }
                td { (e.summary) }
            } } }
        } }
    }
}

/// The query parameters of the audit log page that filter it, as `org/logs` names them.
pub const LOG_FILTERS: [&str; 6] = ["userid", "method", "objecttype", "objectid", "since", "until"];

/// The audit log page, with its filters (`filters`: their values and what is wrong with them).
pub fn log(entries: &[LogEntry], users: &[User], filters: &FormState, page: i64, pages: i64) -> Markup {
    let types = [
        "",
        "group",
        "subnet",
        "ipaddress",
        "dhcprange",
        "field",
        "user",
        "appkey",
        "token",
        "org",
    ];
    let objecttype = filters.value("objecttype").unwrap_or("");
    let mut users_options = vec![(String::new(), "Anyone".to_string())];
    users_options.extend(users.iter().map(|u| (u.id.to_string(), u.username.clone())));
    let userid = filters.value("userid").unwrap_or("");
    let link = |p: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters.values {
            s.append_pair(k, v);
        }
        s.append_pair("page", &p.to_string());
        format!("/ui/log?{}", s.finish())
    };
    html! {
        form.filters method="get" action="/ui/log" {
            div.field {
                label for="log-userid" { "User" }
                select #log-userid name="userid" {
                    @for (id, name) in &users_options { option value=(id) selected[userid == id] { (name) } }
                }
            }
            (field(filters, "log", "method", "Method", "text", false))
            div.field {
                label for="log-type" { "Object" }
                select #log-type name="objecttype" {
                    @for t in types {
                        option value=(t) selected[t == objecttype] { @if t.is_empty() { "Any" } @else { (t) } }
                    }
                }
            }
            (field(filters, "log", "objectid", "Object id", "number", false))
            (field(filters, "log", "since", "From (UTC)", "date", false))
            (field(filters, "log", "until", "Until (UTC, the whole day)", "date", false))
            button type="submit" { "Apply" }
        }
        (log_table(entries))
        (pager(page, pages, link))
    }
}

/// The caller's REST tokens, the form of a new one, and a new token's secret, shown this once.
/// The secrets the caller owns: REST tokens and app keys, the forms of new ones, and a new secret (`new`: what it is
/// and the secret), shown this once.
pub struct Secrets<'a> {
    pub tokens: &'a [Token],
    pub keys: &'a [AppKey],
    pub new: Option<(&'a str, &'a str)>,
    pub token_form: &'a FormState,
    pub key_form: &'a FormState,
}

pub fn secrets(csrf_token: &str, p: &Secrets) -> Markup {
    html! {
        @if let Some((what, secret)) = p.new {
            div.card.secret role="status" {
                p { "Your new " (what) ". Copy it now: it is not shown again." }
                p { code { (secret) } }
            }
        }
        h2 { "REST tokens" }
        div.scroll { table {
            (table_head(&["Prefix", "Description", "Created (UTC)", "Expires", ""]))
            tbody { @for t in p.tokens { tr {
                td { code { (t.prefix) "…" } }
                td { (t.description.as_deref().unwrap_or("")) }
                td { (crate::time::rfc3339(t.created)) }
                td { @if let Some(e) = t.expires { (crate::time::rfc3339(e)) } @else { "never" } }
                td { (revoke(csrf_token, &format!("/ui/tokens/{}/delete", t.id), &format!("the token {}", t.prefix))) }
            } } }
        } }
        form.card method="post" action="/ui/tokens" {
            (csrf(csrf_token))
            (form_message(p.token_form))
            (field(p.token_form, "token", "description", "Description", "text", false))
            (field(p.token_form, "token", "expires", "Expires (RFC 3339 or a date; empty: never)", "text", false))
            button.primary type="submit" { "Create a token" }
        }
        h2 { "App keys" }
        div.scroll { table {
            (table_head(&["Prefix", "Name", "Description", "State", ""]))
            tbody { @for k in p.keys { tr {
                td { code { (k.prefix) "…" } }
                td { (k.name) }
                td { (k.description.as_deref().unwrap_or("")) }
                td { @if k.enabled { "enabled" } @else { "disabled" } }
                td { (revoke(csrf_token, &format!("/ui/appkeys/{}/delete", k.id), &format!("the app key {}", k.name))) }
            } } }
        } }
        form.card method="post" action="/ui/appkeys" {
            (csrf(csrf_token))
            (form_message(p.key_form))
            (field(p.key_form, "key", "name", "Application name", "text", true))
            (field(p.key_form, "key", "description", "Description", "text", false))
            button.primary type="submit" { "Create an app key" }
        }
    }
}

/// A button that deletes what `action` names, labelled for screen readers with `what`.
fn revoke(csrf_token: &str, action: &str, what: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(csrf_token))
            button.danger type="submit" aria-label=(format!("Revoke {what}")) { "Revoke" }
        }
    }
}

/// The org's users; to an admin (`admin`), the form of a new user and, for each user, a level to set, a switch to
/// disable or enable it and a new password to give it. `refused` is the form the API refused: of the user its
/// `user` value names, or (none named) of a new one.
pub fn users(csrf_token: &str, users: &[User], admin: bool, refused: &FormState) -> Markup {
    let named = refused.value("user");
    html! {
        div.scroll { table {
            (table_head(&["Username", "Name", "Email", "Level", "State", ""][..if admin { 6 } else { 5 }]))
            tbody { @for u in users { tr {
                td { (u.username) }
                td { (u.realname.as_deref().unwrap_or("")) }
                td { (u.email) }
                td { (u.level) }
                td { @if u.disabled { "disabled" } @else { "enabled" } }
                @if admin {
                    @let id = u.id.to_string();
                    @let state = match named { Some(n) if n == id => refused.clone(), _ => FormState {
                        values: vec![("level".into(), u.level.clone())],
                        ..FormState::default()
                    } };
                    td { (user_changes(csrf_token, u, &state)) }
                }
            } } }
        } }
        @if admin {
            @let new = if named.is_none() { refused.clone() } else { FormState::default() };
            h2 { "Add a user" }
            form.card method="post" action="/ui/users" {
                (csrf(csrf_token))
                (form_message(&new))
                (field(&new, "user-new", "username", "Username", "text", true))
                (field(&new, "user-new", "email", "Email", "email", true))
                (field(&new, "user-new", "realname", "Name", "text", false))
                (level_select(&new, "user-new"))
                (field(&new, "user-new", "password", "Password", "password", true))
                button.primary type="submit" { "Add the user" }
            }
        }
    }
}

/// The forms that change user `u`: its level, disabled or enabled, a new password.
fn user_changes(csrf_token: &str, u: &User, state: &FormState) -> Markup {
    let action = format!("/ui/users/{}", u.id);
    let prefix = format!("user{}", u.id);
    let hidden = html! {
        (csrf(csrf_token))
        input type="hidden" name="user" value=(u.id);
        input type="hidden" name="version" value=(u.version);
    };
    html! {
        (form_message(state))
        form.inline method="post" action=(action) {
            (hidden)
            (level_select(state, &prefix))
            button type="submit" aria-label=(format!("Set the level of {}", u.username)) { "Set" }
        }
        form.inline method="post" action=(action) {
            (hidden)
            input type="hidden" name="disabled" value=(!u.disabled);
            button type="submit" { @if u.disabled { "Enable " } @else { "Disable " } (u.username) }
        }
        form.inline method="post" action=(action) {
            (hidden)
            (field(state, &prefix, "password", &format!("New password of {}", u.username), "password", true))
            button type="submit" { "Reset" }
        }
    }
}

fn level_select(form: &FormState, prefix: &str) -> Markup {
    choice(
        form,
        prefix,
        "level",
        "Level",
        &["readonly", "standard", "admin"],
        "standard",
    )
}
