//! The web UI at `/ui/`, the third front door: server-rendered pages (`ui/pages.rs`) whose every read and change is
//! a call of the method table through the dispatcher, as the envelope's and REST's are, so levels, org isolation,
//! the audit log and idempotent writes apply unchanged. Its only state of its own is the session (`sessions`
//! table, `credentials::start_session`): a random id in an `HttpOnly`, `SameSite=Strict` cookie, authenticated as
//! [`Credentials::Session`]. Every change is a POST carrying the session's CSRF token. Like the other doors it
//! never sees hyper: the server hands it a [`Request`] of strings and gets an [`Answer`] of bytes.

mod pages;

use std::net::IpAddr;

use maud::Markup;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::auth;
use crate::credentials::{end_session, start_session};
use crate::dispatch::dispatch;
use crate::error::{Code, Error};
use crate::handler::{Call, Credentials};
use crate::model::{self, Identity, Reply};
use pages::{Cell, CellState, Chrome, FormState, Line, Section, Space};

/// The session cookie's name.
pub const COOKIE: &str = "ipamd_session";
/// Most fields of a form read; the rest are ignored.
pub const MAX_FIELDS: usize = 64;
/// The headers of every answer of the UI: a Content-Security-Policy that allows only the UI's own stylesheet and
/// images (no script, no inline style), forbids framing and sends forms only to the UI itself.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
];

/// The largest IPv4 block shown as a map (a /22, 1024 cells); larger blocks and IPv6 are listed.
const MAP_PREFIX: u8 = 22;
/// Records per page of the list of a large block, and subnets per page of the subnet list.
const PER_PAGE: i64 = 100;

/// What the server hands the UI of a request.
pub struct Request {
    pub verb: String,
    pub path: String,
    pub query: String,
    /// The session cookie's value.
    pub session: Option<String>,
    /// The urlencoded form of a POST.
    pub form: Vec<(String, String)>,
    /// Whether the cookie must be `Secure` (`IPAMD_UI_SECURE_COOKIE`, or `X-Forwarded-Proto: https`).
    pub secure: bool,
    /// Whether the browser says the request comes from another site (`Sec-Fetch-Site: cross-site`).
    pub cross_site: bool,
}

/// The UI's answer: a status, a body and its type, the UI's own headers (a redirect's `Location`, `Set-Cookie`).
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// The error the answer reports, for the server's failure accounting and log line.
    pub error: Option<Error>,
    /// The org and username a failed sign-in claimed, for the warning the server logs.
    pub claimed: Option<(String, String)>,
    /// Who called, for the request log line.
    pub caller: String,
}

impl Answer {
    fn html(status: u16, markup: Markup) -> Answer {
        Answer {
            status,
            content_type: "text/html; charset=utf-8",
            body: markup.into_string().into_bytes(),
            headers: vec![("cache-control", "no-store".into())],
            error: None,
            claimed: None,
            caller: String::new(),
        }
    }

    fn redirect(location: &str) -> Answer {
        let mut answer = Answer::html(303, maud::html! {});
        answer.headers.push(("location", location.to_string()));
        answer
    }

    fn with_error(mut self, e: Error) -> Answer {
        self.error = Some(e);
        self
    }
}

/// The session id of a `Cookie` header, if it holds one of a plausible length.
pub fn session_cookie(header: Option<&str>) -> Option<String> {
    header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The answer to a request refused before the UI ran (rate limit, body).
pub fn refused(e: Error) -> Answer {
    let status = e.code.http_status();
    Answer::html(status, pages::problem("Refused", &e.message)).with_error(e)
}

/// Answers one request of the UI.
pub async fn serve(app: &App, req: Request) -> Answer {
    let path = req.path.strip_prefix("/ui").unwrap_or_default().to_string();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let post = req.verb == "POST";
    if !post && req.verb != "GET" && req.verb != "HEAD" {
        let mut answer = Answer::html(405, pages::problem("Not allowed", "use GET or POST"));
        answer.headers.push(("allow", "GET, HEAD, POST".into()));
        return answer;
    }
    if post && req.cross_site {
        return Answer::html(
            403,
            pages::problem("Refused", "a form of another site may not change anything here"),
        );
    }
    match (parts.as_slice(), post) {
        (["assets", name], false) => return asset(name),
        (["signin"], false) => return Answer::html(200, pages::sign_in(&FormState::default())),
        (["signin"], true) => return sign_in(app, &req).await,
        _ => {}
    }
    let ui = match Ui::open(app, &req).await {
        Ok(ui) => ui,
        Err(answer) => return answer,
    };
    if post {
        let given = field(&req.form, "csrf");
        if !auth::csrf_matches(given, &ui.csrf) {
            let e = Error::new(
                Code::AccessDenied,
                "the form has expired: reload the page and try again",
            );
            return Answer::html(403, pages::problem("Refused", &e.message)).with_error(e);
        }
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .take(MAX_FIELDS)
        .collect();
    let id = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0);
    let mut answer = match (parts.as_slice(), post) {
        ([], false) => ui.overview().await,
        (["signout"], true) => ui.sign_out(req.secure).await,
        (["subnets"], false) => ui.subnet_list(&query).await,
        (["subnets"], true) => ui.subnet_save(None, &req.form).await,
        (["subnets", "new"], false) => ui.subnet_form(None, FormState::default()).await,
        (["subnets", s], false) if id(s).is_some() => ui.subnet(id(s).unwrap_or(0), &query, None).await,
        (["subnets", s, "edit"], false) if id(s).is_some() => ui.subnet_edit_form(id(s).unwrap_or(0)).await,
        (["subnets", s, "edit"], true) if id(s).is_some() => ui.subnet_save(id(s), &req.form).await,
        (["subnets", s, "addresses"], true) if id(s).is_some() => ui.allocate(id(s).unwrap_or(0), &req.form).await,
        (["subnets", s, action @ ("split" | "join" | "delete")], true) if id(s).is_some() => {
            ui.subnet_change(id(s).unwrap_or(0), action, &req.form).await
        }
        (["subnets", s, "children"], true) if id(s).is_some() => ui.child_add(id(s).unwrap_or(0), &req.form).await,
        (["subnets", s, "ranges"], true) if id(s).is_some() => ui.range_save(id(s).unwrap_or(0), None, &req.form).await,
        (["ranges", r], true) if id(r).is_some() => ui.range_change(id(r).unwrap_or(0), false, &req.form).await,
        (["ranges", r, "delete"], true) if id(r).is_some() => {
            ui.range_change(id(r).unwrap_or(0), true, &req.form).await
        }
        (["addresses", a], false) if id(a).is_some() => ui.address(id(a).unwrap_or(0), None).await,
        (["addresses", a], true) if id(a).is_some() => ui.address_save(id(a).unwrap_or(0), &req.form).await,
        (["addresses", a, "delete"], true) if id(a).is_some() => ui.address_delete(id(a).unwrap_or(0), &req.form).await,
        (["groups"], false) => ui.groups(FormState::default()).await,
        (["groups"], true) => ui.group_add(&req.form).await,
        (["groups", g], false) if id(g).is_some() => ui.group(id(g).unwrap_or(0), None).await,
        (["groups", g], true) if id(g).is_some() => ui.group_change(id(g).unwrap_or(0), false, &req.form).await,
        (["groups", g, "delete"], true) if id(g).is_some() => {
            ui.group_change(id(g).unwrap_or(0), true, &req.form).await
        }
        (["search"], false) => ui.search(&query).await,
        (["log"], false) => ui.log(&query).await,
        (["tokens"], false) => ui.secrets(None, None).await,
        (["tokens"], true) => ui.secret_add("token", &req.form).await,
        (["appkeys"], true) => ui.secret_add("key", &req.form).await,
        (["tokens", t, "delete"], true) if id(t).is_some() => {
            ui.secret_delete("org/tokens/delete", id(t).unwrap_or(0)).await
        }
        (["appkeys", k, "delete"], true) if id(k).is_some() => {
            ui.secret_delete("org/appkeys/delete", id(k).unwrap_or(0)).await
        }
        (["users"], false) => ui.users(FormState::default()).await,
        (["users"], true) => ui.user_change(None, &req.form).await,
        (["users", u], true) if id(u).is_some() => ui.user_change(id(u), &req.form).await,
        _ => Err(Error::not_found("page")),
    }
    .unwrap_or_else(|e| ui.failure(e));
    answer.caller = ui.describe();
    answer
}

/// The value of field `name` of a form (the first), or `""`.
fn field<'f>(form: &'f [(String, String)], name: &str) -> &'f str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// The `data` of a call from a form's `names`: an add leaves out the empty fields (`keep_empty` false: the
/// method's defaults apply), an edit sends them (they clear the field).
fn data_of(form: &[(String, String)], names: &[&str], keep_empty: bool) -> Map<String, Value> {
    let mut data = Map::new();
    for name in names {
        let value = field(form, name).trim();
        if keep_empty || !value.is_empty() {
            data.insert((*name).to_string(), Value::String(value.to_string()));
        }
    }
    data
}

/// The custom field values of a form (its inputs `fields.<name>`) as the `fields` of a call: an add leaves out the
/// empty ones (their defaults apply), an edit sends them (they clear the value).
fn field_values(form: &[(String, String)], keep_empty: bool) -> Map<String, Value> {
    form.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("fields.")?, v.trim())))
        .filter(|(_, v)| keep_empty || !v.is_empty())
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

/// The unix time of the start (UTC) of a day given as `YYYY-MM-DD`, as a date input sends it.
fn day(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    let days_in = |m: u32| match m {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let valid = s.len() == 10 && (1970..=9999).contains(&year) && (1..=12).contains(&month);
    (valid && (1..=days_in(month)).contains(&day))
        .then(|| crate::time::days_from_civil(i64::from(year), month, day) * 86_400)
}

/// A refused change shown at the form: `invalid_params` names its fields in its data (each shown at its field); a
/// refusal of the value the form is about (a block that is no block or overlaps, a taken address, a split that
/// cannot be) is shown at that field, `main`; anything else is the form's message.
fn form_state(form: &[(String, String)], e: &Error, main: &str) -> FormState {
    let errors = match (&e.code, &e.data) {
        (Code::InvalidParams, Some(Value::Object(fields))) => fields.clone(),
        (
            Code::Duplicate
            | Code::Overlap
            | Code::InvalidSubnet
            | Code::InvalidSplit
            | Code::NotContiguous
            | Code::WeakPassword,
            _,
        ) => {
            let mut m = Map::new();
            m.insert(main.into(), Value::String(e.message.clone()));
            m
        }
        _ => Map::new(),
    };
    let message = errors.is_empty().then(|| e.message.clone());
    FormState {
        values: form.iter().filter(|(k, _)| k != "csrf").cloned().collect(),
        errors,
        message,
    }
}

/// The sign-in: the server derives the envelope's `userdata` (`org/user:sha1(lowercase(user)-password)`) and calls
/// `userdata` with it through the dispatcher (lockout, argon2, rate limit and the failed-login count as for the
/// APIs); on success it starts a session and sets its cookie.
async fn sign_in(app: &App, req: &Request) -> Answer {
    let (org, username, password) = (
        field(&req.form, "org").trim(),
        field(&req.form, "username").trim(),
        field(&req.form, "password"),
    );
    let form = FormState {
        values: vec![("org".into(), org.into()), ("username".into(), username.into())],
        ..FormState::default()
    };
    let refuse = |e: Error| {
        let mut state = form.clone();
        state.message = Some(match e.code {
            Code::TooManyAttempts | Code::RateLimited | Code::AccountDisabled => e.message.clone(),
            _ => "The organisation, username or password is wrong.".into(),
        });
        let mut answer = Answer::html(e.code.http_status(), pages::sign_in(&state)).with_error(e);
        answer.claimed = Some((org.to_string(), username.to_string()));
        answer
    };
    if org.is_empty() || username.is_empty() || password.is_empty() {
        return refuse(Error::new(Code::AuthFailed, "authentication failed"));
    }
    let userdata = format!("{org}/{username}:{}", auth::userdata_sha1(username, password));
    let call = Call {
        method: "userdata".into(),
        credentials: Credentials::SignIn(userdata),
        data: json!({}),
        key: None,
    };
    let me = match dispatch(app, call).await.result {
        Ok(Reply::Userdata(me)) => me,
        Ok(_) => return refuse(Error::internal("userdata answered another shape")),
        Err(e) => return refuse(e),
    };
    let Identity::User(user) = &me.user else {
        return refuse(Error::new(Code::AuthFailed, "authentication failed"));
    };
    let (app2, user_id, org_id) = (app.clone(), user.id, me.org.id);
    let started = app
        .store
        .run(move |db| db.write(|tx| start_session(tx, &app2, user_id, org_id)))
        .await;
    match started {
        Ok(id) => {
            let mut answer = Answer::redirect("/ui/");
            answer.headers.push(("set-cookie", cookie(&id, req.secure, false)));
            answer.caller = format!("org={org_id} user={}", user.username);
            answer
        }
        Err(e) => refuse(e),
    }
}

/// The `Set-Cookie` value of session `id` (or of its removal).
fn cookie(id: &str, secure: bool, remove: bool) -> String {
    let mut c = format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if remove {
        c.push_str("; Max-Age=0");
    }
    c
}

/// The UI's assets, compiled into the binary.
fn asset(name: &str) -> Answer {
    let (content_type, body): (&'static str, &'static [u8]) = match name {
        "icon.svg" => ("image/svg+xml", include_bytes!("ui/icon.svg")),
        _ if format!("/ui/assets/{name}") == pages::CSS_PATH => {
            ("text/css; charset=utf-8", include_bytes!("ui/ui.css"))
        }
        _ => return Answer::html(404, pages::problem("Not found", "no such file")),
    };
    Answer {
        status: 200,
        content_type,
        body: body.to_vec(),
        headers: vec![("cache-control", "public, max-age=86400".into())],
        error: None,
        claimed: None,
        caller: String::new(),
    }
}

/// A signed-in request: the session, its CSRF token, and who it is.
struct Ui<'a> {
    app: &'a App,
    session: String,
    csrf: String,
    me: model::Userdata,
}

impl<'a> Ui<'a> {
    /// The session of the request, checked by calling `userdata` with it; without one (or an ended one) a GET is sent
    /// to the sign-in page, a POST refused. An ended session is no failed login: the answer carries no error for the
    /// server to count as one.
    async fn open(app: &'a App, req: &Request) -> Result<Ui<'a>, Answer> {
        let to_sign_in = || {
            let mut answer = if req.verb == "POST" {
                Answer::html(
                    401,
                    pages::problem("Signed out", "your session has ended: sign in again"),
                )
            } else {
                Answer::redirect("/ui/signin")
            };
            if req.session.is_some() {
                answer.headers.push(("set-cookie", cookie("", req.secure, true)));
            }
            answer
        };
        let Some(session) = req.session.clone() else {
            return Err(to_sign_in());
        };
        let call = Call {
            method: "userdata".into(),
            credentials: Credentials::Session(Some(session.clone())),
            data: json!({}),
            key: None,
        };
        match dispatch(app, call).await.result {
            Ok(Reply::Userdata(me)) => Ok(Ui {
                app,
                csrf: auth::csrf_token(&session),
                session,
                me: *me,
            }),
            Ok(_) => Err(refused(Error::internal("userdata answered another shape"))),
            Err(e) if matches!(e.code, Code::AuthFailed | Code::AuthRequired | Code::AccountDisabled) => {
                Err(to_sign_in())
            }
            Err(e) => Err(refused(e)),
        }
    }

    fn describe(&self) -> String {
        format!("org={} user={} app=ui", self.me.org.id, self.username())
    }

    fn username(&self) -> &str {
        match &self.me.user {
            Identity::User(u) => &u.username,
            Identity::Operator { username, .. } => username,
        }
    }

    fn admin(&self) -> bool {
        matches!(&self.me.user, Identity::User(u) if u.level == "admin")
    }

    /// Calls `method` with `data` as the session's user, through the dispatcher.
    async fn call(&self, method: &str, data: Value) -> Result<Reply, Error> {
        let call = Call {
            method: method.into(),
            credentials: Credentials::Session(Some(self.session.clone())),
            data,
            key: None,
        };
        dispatch(self.app, call).await.result
    }

    /// A page in the frame.
    fn page(&self, title: &str, section: Section, body: Markup) -> Answer {
        let chrome = Chrome {
            title,
            user: self.username(),
            org: &self.me.org.identifier,
            csrf: &self.csrf,
            section,
            admin: self.admin(),
        };
        Answer::html(200, pages::layout(&chrome, body))
    }

    /// The page of an error no form shows.
    fn failure(&self, e: Error) -> Answer {
        let title = match e.code {
            Code::NotFound => "Not found",
            Code::AccessDenied => "Not allowed",
            _ => "Something went wrong",
        };
        let message = match e.code {
            // Logged in full by the server; the page says no more than the APIs do.
            Code::Internal => "an internal error; it has been logged".to_string(),
            _ => e.message.clone(),
        };
        let mut answer = self.page(title, Section::None, maud::html! { p { (message) } });
        answer.status = e.code.http_status();
        answer.with_error(e)
    }

    async fn sign_out(&self, secure: bool) -> Result<Answer, Error> {
        let session = self.session.clone();
        self.app
            .store
            .run(move |db| db.write(|tx| end_session(tx, &session)))
            .await?;
        let mut answer = Answer::redirect("/ui/signin");
        answer.headers.push(("set-cookie", cookie("", secure, true)));
        Ok(answer)
    }

    async fn overview(&self) -> Result<Answer, Error> {
        let Reply::OrgInfo(info) = self.call("org/info", json!({})).await? else {
            return Err(shape());
        };
        let counts = [
            ("subnets", info.subnetcount),
            ("address records", info.ipcount),
            ("groups", info.groupcount),
            ("users", info.usercount),
        ];
        let (fullest, _) = subnets(
            self.call("subnets/get", json!({"order": "utilisation", "perpage": 10}))
                .await?,
        )?;
        let recent = match self.admin() {
            true => match self.call("org/logs", json!({"perpage": 10})).await? {
                Reply::Logs(page) => Some(page.logs.0),
                _ => return Err(shape()),
            },
            false => None,
        };
        Ok(self.page(
            "Overview",
            Section::Overview,
            pages::overview(&counts, &fullest, recent.as_deref()),
        ))
    }

    async fn all_groups(&self) -> Result<Vec<model::Group>, Error> {
        match self.call("groups/get", json!({})).await? {
            Reply::Groups(groups) => Ok(groups.records.0),
            _ => Err(shape()),
        }
    }

    async fn subnet_list(&self, query: &[(String, String)]) -> Result<Answer, Error> {
        let (name, group, sort) = (field(query, "name"), field(query, "group"), field(query, "sort"));
        let page = field(query, "page").parse::<i64>().unwrap_or(1).max(1);
        let mut data = json!({"page": page, "perpage": PER_PAGE,
            "order": if sort == "utilisation" { "utilisation" } else { "address" }});
        if !name.is_empty() {
            data["name"] = json!(name);
        }
        if !group.is_empty() {
            data["group"] = json!(group);
        }
        let (list, paging) = subnets(self.call("subnets/get", data).await?)?;
        let groups = self.all_groups().await?;
        let q = pages::ListQuery {
            name,
            group,
            sort,
            page,
            pages: paging.as_ref().map_or(1, |p| p.pages),
            total: paging.as_ref().map_or(list.len() as i64, |p| p.total),
        };
        Ok(self.page("Subnets", Section::Subnets, pages::subnet_list(&q, &groups, &list)))
    }

    async fn one_subnet(&self, id: i64) -> Result<model::Subnet, Error> {
        let (mut list, _) = subnets(self.call("subnets/get", json!({"id": id})).await?)?;
        list.pop().ok_or_else(|| Error::not_found("subnet"))
    }

    /// The subnet page; `refused` is a change of the page's forms the API refused, shown at its form.
    async fn subnet(
        &self,
        id: i64,
        query: &[(String, String)],
        refused: Option<(&str, FormState)>,
    ) -> Result<Answer, Error> {
        let s = self.one_subnet(id).await?;
        let Reply::Ranges(ranges) = self.call("dhcpranges/get", json!({"subnet": id})).await? else {
            return Err(shape());
        };
        let Reply::Fields(fields) = self.call("subnets/fields/get", json!({"subnet": id})).await? else {
            return Err(shape());
        };
        let ranges = ranges.records.0;
        let page = field(query, "page").parse::<i64>().unwrap_or(1).max(1);
        let hosts;
        let space = match (s.family, s.cidr) {
            _ if s.pool => {
                let reply = self
                    .call("subnets/get", json!({"parent": id, "page": page, "perpage": PER_PAGE}))
                    .await?;
                let (children, paging) = subnets(reply)?;
                let Reply::FreeBlocks(free) = self.call("subnets/available", json!({"id": id, "limit": 100})).await?
                else {
                    return Err(shape());
                };
                Space::Pool {
                    children,
                    free,
                    page,
                    pages: paging.map_or(1, |p| p.pages),
                }
            }
            (4, cidr) if cidr >= MAP_PREFIX => {
                // At most 1024 addresses: two pages of the largest size.
                let mut all = Vec::new();
                for page in 1..=2 {
                    let reply = self
                        .call("ipaddress/get", json!({"subnet": id, "page": page, "perpage": 1000}))
                        .await?;
                    let (records, paging) = hosts_of(reply)?;
                    all.extend(records);
                    if paging.is_none_or(|p| p.pages <= page) {
                        break;
                    }
                }
                hosts = all;
                Space::Map(cells(&s, &hosts, &ranges))
            }
            _ => {
                let reply = self
                    .call(
                        "ipaddress/get",
                        json!({"subnet": id, "page": page, "perpage": PER_PAGE}),
                    )
                    .await?;
                let (records, paging) = hosts_of(reply)?;
                hosts = records;
                let pages = paging.map_or(1, |p| p.pages);
                // The free range before this page's first record starts after the previous page's last one.
                let before = match page {
                    1 => None,
                    _ => {
                        let last = json!({"subnet": id, "page": (page - 1) * PER_PAGE, "perpage": 1});
                        let (mut previous, _) = hosts_of(self.call("ipaddress/get", last).await?)?;
                        previous.pop().and_then(|h| number(&h.ip))
                    }
                };
                Space::List {
                    lines: lines(&s, &hosts, before, page >= pages),
                    page,
                    pages,
                }
            }
        };
        let (mut allocate, mut changes) = (FormState::default(), pages::Changes::default());
        match refused {
            Some(("allocate", state)) => allocate = state,
            Some(("split", state)) => changes.split = state,
            Some(("join", state)) => changes.join = state,
            Some(("range", state)) => changes.range = state,
            Some((_, state)) => changes.delete = state,
            None => {
                let ip = field(query, "allocate");
                if !ip.is_empty() {
                    allocate.values.push(("ip".into(), ip.into()));
                }
            }
        }
        let body = pages::subnet_page(&s, &self.csrf, &ranges, &fields.records.0, &space, &allocate, &changes);
        Ok(self.page(&s.subnet, Section::Subnets, body))
    }

    async fn subnet_form(&self, subnet: Option<&model::Subnet>, form: FormState) -> Result<Answer, Error> {
        let groups = self.all_groups().await?;
        let title = match subnet {
            Some(s) => format!("Edit {}", s.subnet),
            None => "Add a subnet".into(),
        };
        Ok(self.page(
            &title,
            Section::Subnets,
            pages::subnet_form(&self.csrf, &groups, subnet, &form),
        ))
    }

    async fn subnet_edit_form(&self, id: i64) -> Result<Answer, Error> {
        let s = self.one_subnet(id).await?;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let form = FormState {
            values: vec![
                ("subnet".into(), s.subnet.clone()),
                ("group".into(), s.group.map(|g| g.to_string()).unwrap_or_default()),
                ("name".into(), text(&s.name)),
                ("description".into(), text(&s.description)),
                ("vlan_id".into(), s.vlan_id.map(|v| v.to_string()).unwrap_or_default()),
                ("domain".into(), text(&s.domain)),
                ("location".into(), text(&s.location)),
            ],
            ..FormState::default()
        };
        self.subnet_form(Some(&s), form).await
    }

    /// Adds a subnet (`id` none) or edits one.
    async fn subnet_save(&self, id: Option<i64>, form: &[(String, String)]) -> Result<Answer, Error> {
        const FIELDS: [&str; 7] = [
            "subnet",
            "group",
            "name",
            "description",
            "vlan_id",
            "domain",
            "location",
        ];
        let result = match id {
            None => {
                self.call("subnets/add", Value::Object(data_of(form, &FIELDS, false)))
                    .await
            }
            Some(id) => {
                let mut data = data_of(form, &FIELDS, true);
                data.insert("id".into(), json!(id));
                data.insert("version".into(), json!(field(form, "version")));
                self.call("subnets/edit", Value::Object(data)).await
            }
        };
        match result {
            Ok(reply) => {
                let (mut list, _) = subnets(reply)?;
                let s = list.pop().ok_or_else(shape)?;
                Ok(Answer::redirect(&format!("/ui/subnets/{}", s.id)))
            }
            Err(e) if is_form_error(&e) => {
                let subnet = match id {
                    Some(id) => Some(self.one_subnet(id).await?),
                    None => None,
                };
                let mut answer = self
                    .subnet_form(subnet.as_ref(), form_state(form, &e, "subnet"))
                    .await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn subnet_change(&self, id: i64, action: &str, form: &[(String, String)]) -> Result<Answer, Error> {
        let (method, mut data) = match action {
            "split" => ("subnets/split", data_of(form, &["cidr"], false)),
            "join" => ("subnets/join", data_of(form, &["cidr"], false)),
            _ => ("subnets/delete", data_of(form, &["version", "force"], false)),
        };
        data.insert("id".into(), json!(id));
        match self.call(method, Value::Object(data)).await {
            // A join leaves the lowest subnet, grown: its page.
            Ok(Reply::Joined(joined)) => match joined.0.first() {
                Some(survivor) => Ok(Answer::redirect(&format!("/ui/subnets/{}", survivor.subnet.id))),
                None => Err(shape()),
            },
            // A split replaces the subnet with its parts, a delete removes it: either way, back to the list.
            Ok(_) => Ok(Answer::redirect("/ui/subnets")),
            Err(e) if is_form_error(&e) => self.refused_on_subnet(id, action, form, e, "cidr").await,
            Err(e) => Err(e),
        }
    }

    /// The subnet page again, with the refusal `e` of its form `which` (its value at field `main`).
    async fn refused_on_subnet(
        &self,
        id: i64,
        which: &str,
        form: &[(String, String)],
        e: Error,
        main: &str,
    ) -> Result<Answer, Error> {
        let mut answer = self.subnet(id, &[], Some((which, form_state(form, &e, main)))).await?;
        answer.status = e.code.http_status();
        Ok(answer.with_error(e))
    }

    /// Records an address in the subnet: the one given, or (none given) the next free one, taken in the same
    /// transaction as `ipaddress/add` with `subnet` alone does.
    async fn allocate(&self, id: i64, form: &[(String, String)]) -> Result<Answer, Error> {
        let mut data = data_of(form, &["ip", "hostname", "mac_address", "description", "status"], false);
        data.insert("subnet".into(), json!(id));
        data.insert("fields".into(), Value::Object(field_values(form, false)));
        match self.call("ipaddress/add", Value::Object(data)).await {
            Ok(_) => Ok(Answer::redirect(&format!("/ui/subnets/{id}"))),
            Err(e) if is_form_error(&e) || e.code == Code::SubnetFull => {
                self.refused_on_subnet(id, "allocate", form, e, "ip").await
            }
            Err(e) => Err(e),
        }
    }

    /// Allocates the next free block of length `cidr` of pool `pool` as a new subnet, in one transaction (as
    /// `subnets/add` with `parent` and `cidr` does); its page.
    async fn child_add(&self, pool: i64, form: &[(String, String)]) -> Result<Answer, Error> {
        let mut data = data_of(form, &["cidr", "name"], false);
        data.insert("parent".into(), json!(pool));
        match self.call("subnets/add", Value::Object(data)).await {
            Ok(reply) => {
                let (mut list, _) = subnets(reply)?;
                let child = list.pop().ok_or_else(shape)?;
                Ok(Answer::redirect(&format!("/ui/subnets/{}", child.id)))
            }
            Err(e) if is_form_error(&e) => self.refused_on_subnet(pool, "allocate", form, e, "cidr").await,
            Err(e) => Err(e),
        }
    }

    /// Adds a DHCP range to subnet `subnet` (`range` none) or edits one; a refusal is shown at its form.
    async fn range_save(&self, subnet: i64, range: Option<i64>, form: &[(String, String)]) -> Result<Answer, Error> {
        const FIELDS: [&str; 3] = ["start_ip", "end_ip", "description"];
        let (method, mut data) = match range {
            None => ("dhcpranges/add", data_of(form, &FIELDS, false)),
            Some(_) => ("dhcpranges/edit", data_of(form, &FIELDS, true)),
        };
        // An unticked checkbox is sent as nothing: the form's state is what it says, not the method's default.
        data.insert("is_active".into(), json!(field(form, "is_active") == "true"));
        if let Some(id) = range {
            data.insert("id".into(), json!(id));
            data.insert("version".into(), json!(field(form, "version")));
        } else {
            data.insert("subnet".into(), json!(subnet));
        }
        match self.call(method, Value::Object(data)).await {
            Ok(_) => Ok(Answer::redirect(&format!("/ui/subnets/{subnet}#ranges"))),
            Err(e) if is_form_error(&e) => self.refused_on_subnet(subnet, "range", form, e, "start_ip").await,
            Err(e) => Err(e),
        }
    }

    /// Edits DHCP range `id` (`delete` false) or deletes it, back on its subnet's page.
    async fn range_change(&self, id: i64, delete: bool, form: &[(String, String)]) -> Result<Answer, Error> {
        let Reply::Ranges(mut found) = self.call("dhcpranges/get", json!({"id": id})).await? else {
            return Err(shape());
        };
        let subnet = found
            .records
            .0
            .pop()
            .ok_or_else(|| Error::not_found("DHCP range"))?
            .subnet;
        if !delete {
            return self.range_save(subnet, Some(id), form).await;
        }
        let data = json!({"id": id, "version": field(form, "version")});
        match self.call("dhcpranges/delete", data).await {
            Ok(_) => Ok(Answer::redirect(&format!("/ui/subnets/{subnet}#ranges"))),
            Err(e) if is_form_error(&e) => self.refused_on_subnet(subnet, "range", form, e, "start_ip").await,
            Err(e) => Err(e),
        }
    }

    async fn one_host(&self, id: i64) -> Result<model::Host, Error> {
        let (mut records, _) = hosts_of(self.call("ipaddress/get", json!({"id": id})).await?)?;
        records.pop().ok_or_else(|| Error::not_found("address"))
    }

    async fn address(&self, id: i64, refused: Option<FormState>) -> Result<Answer, Error> {
        let h = self.one_host(id).await?;
        let Reply::Fields(defs) = self.call("subnets/fields/get", json!({"subnet": h.subnet})).await? else {
            return Err(shape());
        };
        let form = refused.unwrap_or_else(|| {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let mut values: Vec<(String, String)> = vec![
                ("ip".into(), h.ip.clone()),
                ("hostname".into(), text(&h.hostname)),
                ("cname".into(), text(&h.cname)),
                ("mac_address".into(), text(&h.mac_address)),
                ("description".into(), text(&h.description)),
                ("status".into(), h.status.clone()),
            ];
            for (name, v) in &h.fields {
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                values.push((format!("fields.{name}"), shown));
            }
            FormState {
                values,
                ..FormState::default()
            }
        });
        let body = pages::address_page(&self.csrf, &h, &defs.records.0, &form);
        Ok(self.page(&h.ip, Section::Subnets, body))
    }

    async fn address_save(&self, id: i64, form: &[(String, String)]) -> Result<Answer, Error> {
        let mut data = data_of(
            form,
            &[
                "ip",
                "hostname",
                "cname",
                "mac_address",
                "description",
                "status",
                "version",
            ],
            true,
        );
        data.insert("id".into(), json!(id));
        data.insert("fields".into(), Value::Object(field_values(form, true)));
        match self.call("ipaddress/edit", Value::Object(data)).await {
            Ok(reply) => {
                let (records, _) = hosts_of(reply)?;
                let subnet = records.first().map(|h| h.subnet).ok_or_else(shape)?;
                Ok(Answer::redirect(&format!("/ui/subnets/{subnet}")))
            }
            Err(e) if is_form_error(&e) => {
                let mut answer = self.address(id, Some(form_state(form, &e, "ip"))).await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn address_delete(&self, id: i64, form: &[(String, String)]) -> Result<Answer, Error> {
        let h = self.one_host(id).await?;
        let data = json!({"id": id, "version": field(form, "version")});
        match self.call("ipaddress/delete", data).await {
            Ok(_) => Ok(Answer::redirect(&format!("/ui/subnets/{}", h.subnet))),
            Err(e) if is_form_error(&e) => {
                let mut answer = self.address(id, Some(form_state(form, &e, "ip"))).await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn groups(&self, form: FormState) -> Result<Answer, Error> {
        let groups = self.all_groups().await?;
        Ok(self.page("Groups", Section::Groups, pages::groups(&self.csrf, &groups, &form)))
    }

    async fn group_add(&self, form: &[(String, String)]) -> Result<Answer, Error> {
        let data = data_of(form, &["description", "parent"], false);
        match self.call("groups/add", Value::Object(data)).await {
            Ok(_) => Ok(Answer::redirect("/ui/groups")),
            Err(e) if is_form_error(&e) => {
                let mut answer = self.groups(form_state(form, &e, "description")).await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }

    /// The page of group `id`; `refused` a change of it the API refused (`true` its delete).
    async fn group(&self, id: i64, refused: Option<(bool, FormState)>) -> Result<Answer, Error> {
        let groups = self.all_groups().await?;
        let g = groups
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| Error::not_found("group"))?;
        let (edit, delete) = match refused {
            Some((false, state)) => (state, FormState::default()),
            Some((true, state)) => (FormState::default(), state),
            None => (
                FormState {
                    values: vec![
                        ("description".into(), g.description.clone()),
                        ("parent".into(), g.parent.unwrap_or(0).to_string()),
                    ],
                    ..FormState::default()
                },
                FormState::default(),
            ),
        };
        let body = pages::group_page(&self.csrf, g, &groups, &edit, &delete);
        Ok(self.page(&g.description, Section::Groups, body))
    }

    /// Edits group `id` (`delete` false) or deletes it (refused while it holds anything, unless `recursive`).
    async fn group_change(&self, id: i64, delete: bool, form: &[(String, String)]) -> Result<Answer, Error> {
        let (method, mut data) = match delete {
            false => (
                "groups/edit",
                data_of(form, &["description", "parent", "version"], true),
            ),
            true => ("groups/delete", data_of(form, &["version", "recursive"], false)),
        };
        data.insert("id".into(), json!(id));
        match self.call(method, Value::Object(data)).await {
            Ok(_) => Ok(Answer::redirect("/ui/groups")),
            Err(e) if is_form_error(&e) => {
                let mut answer = self
                    .group(id, Some((delete, form_state(form, &e, "description"))))
                    .await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }

    /// What `search/find` answers for the query and, when it is an address or a block, what `search/ip` answers too:
    /// the subnets and records it adds (each shown once), the DHCP ranges at it, and for one address its status.
    async fn search(&self, query: &[(String, String)]) -> Result<Answer, Error> {
        let q = field(query, "q").trim();
        if q.is_empty() {
            return Ok(self.page("Search", Section::Search, pages::search(q, None, None)));
        }
        let found = match self.call("search/find", json!({"query": q, "limit": 100})).await {
            Ok(Reply::Found(found)) => found,
            Ok(_) => return Err(shape()),
            Err(e) if e.code == Code::InvalidParams => {
                return Ok(self.page("Search", Section::Search, pages::search(q, None, Some(&e.message))));
            }
            Err(e) => return Err(e),
        };
        let mut subnets: Vec<model::Subnet> = found.subnets.0.into_iter().map(|h| h.subnet).collect();
        let mut hosts = found.addresses.0;
        let mut truncated = found.truncated;
        let (mut ranges, mut status) = (Vec::new(), None);
        let address = q.split_once('/').map_or(q, |(a, _)| a).parse::<IpAddr>().is_ok();
        if address {
            let Reply::Located(at) = self.call("search/ip", json!({"ip": q, "limit": 100})).await? else {
                return Err(shape());
            };
            for s in at.subnets.0 {
                if !subnets.iter().any(|known| known.id == s.subnet.id) {
                    subnets.push(s.subnet);
                }
            }
            for h in at.addresses.0 {
                if !hosts.iter().any(|known| known.id == h.id) {
                    hosts.push(h);
                }
            }
            ranges = at.dhcpranges.0;
            truncated |= at.truncated;
            if !q.contains('/') {
                let Reply::IpStatus(st) = self.call("search/ip", json!({"ip": q, "status": true})).await? else {
                    return Err(shape());
                };
                status = Some(*st);
            }
        }
        let found = pages::Found {
            groups: &found.groups.0,
            subnets: &subnets,
            hosts: &hosts,
            ranges: &ranges,
            status: status.as_ref(),
            truncated,
        };
        Ok(self.page("Search", Section::Search, pages::search(q, Some(found), None)))
    }

    /// The audit log, filtered by user, method, object type and id, and dates (`until` includes its day); a filter
    /// that is not one is shown at its field.
    async fn log(&self, query: &[(String, String)]) -> Result<Answer, Error> {
        let page = field(query, "page").parse::<i64>().unwrap_or(1).max(1);
        let mut form = FormState {
            values: query
                .iter()
                .filter(|(k, _)| pages::LOG_FILTERS.contains(&k.as_str()))
                .cloned()
                .collect(),
            ..FormState::default()
        };
        let mut data = json!({"page": page, "perpage": 50});
        for key in pages::LOG_FILTERS {
            let value = field(query, key).trim();
            match key {
                _ if value.is_empty() => {}
                "since" | "until" => match day(value) {
                    // `until` a date means to the end of its day.
                    Some(t) if key == "until" => data[key] = json!(t + 86_399),
                    Some(t) => data[key] = json!(t),
                    None => {
                        let m = format!("'{value}' is not a date: use YYYY-MM-DD");
                        form.errors.insert(key.to_string(), Value::String(m));
                    }
                },
                _ => data[key] = json!(value),
            }
        }
        let Reply::Users(users) = self.call("org/users/get", json!({})).await? else {
            return Err(shape());
        };
        let (entries, pages) = match form.errors.is_empty() {
            true => match self.call("org/logs", data).await {
                Ok(Reply::Logs(logs)) => (logs.logs.0, logs.pages),
                Ok(_) => return Err(shape()),
                Err(e) if e.code == Code::InvalidParams => {
                    form = form_state(&form.values, &e, "method");
                    (Vec::new(), 1)
                }
                Err(e) => return Err(e),
            },
            false => (Vec::new(), 1),
        };
        let body = pages::log(&entries, &users.records.0, &form, page, pages);
        Ok(self.page("Audit log", Section::Log, body))
    }

    /// The keys and tokens page; `new` a secret just created, `refused` a form the API refused (`token` or `key`).
    async fn secrets(&self, new: Option<(&str, &str)>, refused: Option<(&str, FormState)>) -> Result<Answer, Error> {
        let Reply::Tokens(tokens) = self.call("org/tokens/get", json!({})).await? else {
            return Err(shape());
        };
        let Reply::AppKeys(keys) = self.call("org/appkeys/get", json!({})).await? else {
            return Err(shape());
        };
        let (mut token_form, mut key_form) = (FormState::default(), FormState::default());
        match refused {
            Some(("token", state)) => token_form = state,
            Some((_, state)) => key_form = state,
            None => {}
        }
        let secrets = pages::Secrets {
            tokens: &tokens.records.0,
            keys: &keys.records.0,
            new,
            token_form: &token_form,
            key_form: &key_form,
        };
        Ok(self.page("Keys and tokens", Section::Tokens, pages::secrets(&self.csrf, &secrets)))
    }

    /// Creates a token (`what` "token") or an app key and shows its secret in the answer to this POST, once: it is in
    /// no URL and in no later page.
    async fn secret_add(&self, what: &str, form: &[(String, String)]) -> Result<Answer, Error> {
        let (method, data, main) = match what {
            "token" => (
                "org/tokens/add",
                data_of(form, &["description", "expires"], false),
                "expires",
            ),
            _ => (
                "org/appkeys/add",
                data_of(form, &["name", "description"], false),
                "name",
            ),
        };
        let secret = match self.call(method, Value::Object(data)).await {
            Ok(Reply::Tokens(mut created)) => created.records.0.pop().and_then(|t| t.token),
            Ok(Reply::AppKeys(mut created)) => created.records.0.pop().and_then(|k| k.key),
            Ok(_) => None,
            Err(e) if is_form_error(&e) => {
                let mut answer = self.secrets(None, Some((what, form_state(form, &e, main)))).await?;
                answer.status = e.code.http_status();
                return Ok(answer.with_error(e));
            }
            Err(e) => return Err(e),
        };
        let secret = secret.ok_or_else(shape)?;
        let label = if what == "token" { "REST token" } else { "app key" };
        self.secrets(Some((label, &secret)), None).await
    }

    /// Deletes a token (`method` `org/tokens/delete`) or an app key.
    async fn secret_delete(&self, method: &str, id: i64) -> Result<Answer, Error> {
        self.call(method, json!({"id": id})).await?;
        Ok(Answer::redirect("/ui/tokens"))
    }

    /// The users page; `refused` a form of it the API refused.
    async fn users(&self, refused: FormState) -> Result<Answer, Error> {
        let Reply::Users(users) = self.call("org/users/get", json!({})).await? else {
            return Err(shape());
        };
        let body = pages::users(&self.csrf, &users.records.0, self.admin(), &refused);
        Ok(self.page("Users", Section::Users, body))
    }

    /// Adds a user (`id` none) or changes one: whichever of its level, state and password the form sends. The API
    /// refuses either to a non-admin; its refusal is the answer.
    async fn user_change(&self, id: Option<i64>, form: &[(String, String)]) -> Result<Answer, Error> {
        let (method, data) = match id {
            None => (
                "org/users/add",
                data_of(form, &["username", "email", "realname", "level", "password"], false),
            ),
            Some(id) => {
                let mut data = data_of(form, &["level", "disabled", "password", "version"], false);
                data.insert("id".into(), json!(id));
                ("org/users/edit", data)
            }
        };
        match self.call(method, Value::Object(data)).await {
            Ok(_) => Ok(Answer::redirect("/ui/users")),
            Err(e) if is_form_error(&e) => {
                let main = if e.code == Code::WeakPassword {
                    "password"
                } else {
                    "username"
                };
                let mut answer = self.users(form_state(form, &e, main)).await?;
                answer.status = e.code.http_status();
                Ok(answer.with_error(e))
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether a refusal belongs at the form that asked for the change (bad values, a conflict) rather than on a page of
/// its own (not found, not allowed, an internal error).
fn is_form_error(e: &Error) -> bool {
    matches!(
        e.code,
        Code::InvalidParams
            | Code::InvalidSubnet
            | Code::InvalidSplit
            | Code::NotContiguous
            | Code::QuotaExceeded
            | Code::Conflict
            | Code::Duplicate
            | Code::Overlap
            | Code::Ambiguous
            | Code::PreconditionFailed
            | Code::NotEmpty
            | Code::SubnetFull
            | Code::WeakPassword
            | Code::LastAdmin
    )
}

/// A reply of another shape than the method's: a bug.
fn shape() -> Error {
    Error::internal("a method answered another shape than the UI expects")
}

fn subnets(reply: Reply) -> Result<(Vec<model::Subnet>, Option<model::Page>), Error> {
    match reply {
        Reply::Subnets(list) => Ok((list.records.0, list.page)),
        _ => Err(shape()),
    }
}

fn hosts_of(reply: Reply) -> Result<(Vec<model::Host>, Option<model::Page>), Error> {
    match reply {
        Reply::Hosts(list) => Ok((list.records.0, list.page)),
        _ => Err(shape()),
    }
}

/// An address as a number (IPv4 in the low 32 bits), and back in the family of `like`.
fn number(ip: &str) -> Option<u128> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(u128::from(u32::from(v4))),
        IpAddr::V6(v6) => Some(u128::from(v6)),
    }
}

fn address(n: u128, v4: bool) -> String {
    match v4 {
        true => std::net::Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)).to_string(),
        false => std::net::Ipv6Addr::from(n).to_string(),
    }
}

/// The first and last usable address of a subnet, as numbers: IPv4 /30 and shorter leave out the network and
/// broadcast addresses, IPv6 /126 and shorter the subnet-router anycast address (as `total_hosts` counts).
fn usable(s: &model::Subnet) -> Option<(u128, u128)> {
    let first = number(&s.network)?;
    let bits = if s.family == 4 { 32 } else { 128 };
    let size_bits = bits - u32::from(s.cidr);
    let last = first.saturating_add(if size_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << size_bits) - 1
    });
    match (s.family, s.cidr) {
        (4, ..=30) => Some((first + 1, last - 1)),
        (6, ..=126) => Some((first + 1, last)),
        _ => Some((first, last)),
    }
}

/// The cells of the map of a small IPv4 block.
fn cells<'h>(s: &model::Subnet, hosts: &'h [model::Host], ranges: &[model::DhcpRange]) -> Vec<Cell<'h>> {
    let (Some(start), Some((first, last))) = (number(&s.network), usable(s)) else {
        return Vec::new();
    };
    let size = 1u128 << (32 - u32::from(s.cidr));
    let ranges: Vec<(u128, u128)> = ranges
        .iter()
        .filter(|r| r.is_active)
        .filter_map(|r| Some((number(&r.start_ip)?, number(&r.end_ip)?)))
        .collect();
    let mut by_address = hosts.iter().filter_map(|h| Some((number(&h.ip)?, h))).peekable();
    (start..start + size)
        .map(|n| {
            while by_address.peek().is_some_and(|(a, _)| *a < n) {
                by_address.next();
            }
            let host = by_address.peek().filter(|(a, _)| *a == n).map(|(_, h)| *h);
            let state = match host {
                Some(h) => pages::host_state(h),
                None if n < first || n > last => CellState::Unusable,
                None if ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n)) => CellState::Dhcp,
                None => CellState::Free,
            };
            Cell {
                ip: address(n, true),
                state,
                host,
            }
        })
        .collect()
}

/// A page of the records of a large block, with the free ranges between them and before the first record: from the
/// first usable address on the first page, from after `before` (the previous page's last record) on the others; on
/// the `last` page also after the last record.
fn lines<'h>(s: &model::Subnet, hosts: &'h [model::Host], before: Option<u128>, last_page: bool) -> Vec<Line<'h>> {
    let v4 = s.family == 4;
    let Some((first, last)) = usable(s) else {
        return hosts.iter().map(Line::Record).collect();
    };
    let free = |lo: u128, hi: u128| Line::Free {
        first: address(lo, v4),
        last: address(hi, v4),
        count: hi - lo + 1,
    };
    let mut out = Vec::with_capacity(hosts.len() * 2 + 1);
    let mut next = match before {
        None => Some(first),
        Some(n) => n.checked_add(1),
    };
    for h in hosts {
        let Some(n) = number(&h.ip) else { continue };
        if let Some(lo) = next.filter(|lo| *lo < n && *lo <= last) {
            out.push(free(lo, (n - 1).min(last)));
        }
        out.push(Line::Record(h));
        next = n.checked_add(1).map(|n| n.max(first));
    }
    if last_page {
        if let Some(lo) = next.filter(|lo| *lo <= last) {
            out.push(free(lo, last));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(block: &str, total: u128, available: u128) -> model::Subnet {
        let net: ipnet::IpNet = block.parse().unwrap();
        model::Subnet {
            id: 1,
            group: None,
            subnet: block.into(),
            network: net.network().to_string(),
            cidr: net.prefix_len(),
            broadcast: None,
            family: if net.network().is_ipv4() { 4 } else { 6 },
            name: None,
            description: None,
            domain: None,
            vlan_id: None,
            location: None,
            total_hosts: total,
            used_hosts: 0,
            available_hosts: available,
            pool: false,
            parent: None,
            children: 0,
            covered: None,
            stamps: model::Stamps {
                userid: None,
                modifiedat: 0,
                user: String::new(),
                email: None,
                realname: None,
                created: 0,
                version: 1,
            },
            pools: None,
            subnets: None,
            addresses: None,
            fields: None,
        }
    }

    fn host(id: i64, ip: &str, status: &str) -> model::Host {
        model::Host {
            id,
            subnet: 1,
            network: String::new(),
            ip: ip.into(),
            hostname: None,
            cname: None,
            mac_address: None,
            status: status.into(),
            is_assigned: true,
            last_seen: None,
            discovery_source: None,
            description: None,
            fields: Map::new(),
            has_fields: false,
            stamps: None,
        }
    }

    #[test]
    fn the_map_of_a_block_has_a_cell_per_address_in_its_state() {
        let s = subnet("10.0.0.0/29", 6, 3);
        let hosts = [host(1, "10.0.0.1", "active"), host(2, "10.0.0.3", "reserved")];
        let range = model::DhcpRange {
            id: 1,
            subnet: 1,
            network_id: 1,
            start_ip: "10.0.0.5".into(),
            end_ip: "10.0.0.5".into(),
            description: None,
            is_active: true,
            stamps: subnet("10.0.0.0/29", 0, 0).stamps,
        };
        let states: Vec<&str> = cells(&s, &hosts, &[range]).iter().map(|c| c.state.class()).collect();
        assert_eq!(
            states,
            ["unusable", "assigned", "free", "reserved", "free", "dhcp", "free", "unusable"]
        );
    }

    #[test]
    fn a_page_of_records_shows_the_free_ranges_between_them() {
        let s = subnet("2001:db8::/64", u128::MAX, u128::MAX);
        let hosts = [host(1, "2001:db8::1", "active"), host(2, "2001:db8::5", "active")];
        let show = |lines: Vec<Line>| -> Vec<String> {
            lines
                .iter()
                .map(|l| match l {
                    Line::Record(h) => h.ip.clone(),
                    Line::Free { first, last, count } => format!("{count} free {first}-{last}"),
                })
                .collect()
        };
        let shown = show(lines(&s, &hosts, None, true));
        assert_eq!(
            shown,
            [
                "2001:db8::1",
                "3 free 2001:db8::2-2001:db8::4",
                "2001:db8::5",
                "18446744073709551610 free 2001:db8::6-2001:db8::ffff:ffff:ffff:ffff",
            ]
        );
        // A later page: the free range from after the previous page's last record; not the last page: nothing
        // after its last record.
        let before = number("2001:db8::");
        assert_eq!(
            show(lines(&s, &hosts, before, false)),
            ["2001:db8::1", "3 free 2001:db8::2-2001:db8::4", "2001:db8::5"]
        );
        let before = number("2001:db8::0:0:0");
        assert_eq!(
            show(lines(&s, &hosts[1..], before, false))[0],
            "4 free 2001:db8::1-2001:db8::4"
        );
    }

    #[test]
    fn a_day_is_a_valid_date_as_a_date_input_sends_it() {
        assert_eq!(day("1970-01-02"), Some(86_400));
        assert_eq!(day("2024-02-29"), Some(1_709_164_800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "yesterday",
            "2024-01-01T00:00",
            "1969-12-31",
            "",
        ] {
            assert_eq!(day(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            session_cookie(Some("a=1; ipamd_session=abc; b=2")).as_deref(),
            Some("abc")
        );
        assert_eq!(session_cookie(Some("a=1")), None);
        assert_eq!(
            session_cookie(Some(&format!("ipamd_session={}", "x".repeat(200)))),
            None
        );
        assert_eq!(session_cookie(None), None);
    }

    #[test]
    fn utilisation_rounds_up_and_a_full_subnet_is_100() {
        assert_eq!(pages::percent(&subnet("10.0.0.0/24", 254, 254)), 0);
        assert_eq!(pages::percent(&subnet("10.0.0.0/24", 254, 253)), 1);
        assert_eq!(pages::percent(&subnet("10.0.0.0/24", 254, 0)), 100);
        assert_eq!(pages::percent(&subnet("2001:db8::/48", u128::MAX, u128::MAX - 1)), 1);
    }
}
