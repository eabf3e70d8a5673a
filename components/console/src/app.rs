//! The request pipeline: route, find the session, check the form's CSRF token, call the page,
//! turn failures into pages.
//!
//! The order is deliberate: an unknown route is answered first; then the session (a stranger
//! gets the sign-in page, or 403 for a POST); then, for a POST, the body is read (only now, so
//! strangers cannot make us buffer it) and its CSRF token checked before the page runs.

use crate::html::{self, Frame, Section, e};
use crate::pages;
use crate::session;
use anyhow::anyhow;
use mio_platform::system;
use mio_platform::{ApiError, Caller, Incoming, Media, Owner, SpinDb, auth, db};
use mio_shared::console::{
    SESSION_COOKIE, SESSION_MINUTES, SIGN_IN_COOKIE, Session, cookie, is_loopback, secret,
    set_cookie,
};
use mio_shared::multipart;
use mio_shared::token::secret_matches;
use mio_shared::{ApiToken, BookingId, CustomerId, Timestamp, TokenHash};
use spin_sdk::http::{IncomingRequest, Method, Response};

/// The largest form body read (the CSV upload has its own bound, the API's import limit).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Answers one request; every failure becomes a page.
pub async fn handle(request: IncomingRequest) -> Response {
    let request = Incoming::new(request);
    match serve(request).await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("console: {error:#}");
            message_page(
                500,
                "Something went wrong",
                "The page could not be shown. Nothing was changed by this request unless the page said so; try again in a moment.",
            )
        }
    }
}

/// Every screen of the console.
enum Route {
    Home,
    SignIn,
    SignOut,
    Stylesheet,
    Customers,
    NewCustomer,
    CreateCustomer,
    ImportForm,
    Import,
    Customer(CustomerId),
    EditCustomer(CustomerId),
    UpdateCustomer(CustomerId),
    ConfirmDelete(CustomerId),
    DeleteCustomer(CustomerId),
    Automations(CustomerId),
    SetAutomation(CustomerId, String),
    Settings,
    SaveSettings,
    Activity,
    Bookings,
    NewBooking,
    CreateBooking,
    Booking(BookingId),
    CompleteBooking(BookingId),
    CancelBooking(BookingId),
}

/// Why a path is not a screen.
enum NoRoute {
    NotFound,
    Method(&'static str),
}

fn resolve(method: &Method, path: &str) -> Result<Route, NoRoute> {
    let rest = path
        .strip_prefix("/app")
        .ok_or(NoRoute::NotFound)?
        .trim_start_matches('/');
    let segments: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.trim_end_matches('/').split('/').collect()
    };
    let get = matches!(method, Method::Get | Method::Head);
    let post = matches!(method, Method::Post);
    let customer = |id: &str| CustomerId::parse(id).map_err(|_| NoRoute::NotFound);
    let booking = |id: &str| BookingId::parse(id).map_err(|_| NoRoute::NotFound);
    let route = match (segments.as_slice(), get, post) {
        ([], true, _) => Route::Home,
        (["sign-in"], _, true) => Route::SignIn,
        (["sign-out"], _, true) => Route::SignOut,
        (["static", "console.css"], true, _) => Route::Stylesheet,
        (["customers"], true, _) => Route::Customers,
        (["customers"], _, true) => Route::CreateCustomer,
        (["customers", "new"], true, _) => Route::NewCustomer,
        (["customers", "import"], true, _) => Route::ImportForm,
        (["customers", "import"], _, true) => Route::Import,
        (["customers", id], true, _) => Route::Customer(customer(id)?),
        (["customers", id], _, true) => Route::UpdateCustomer(customer(id)?),
        (["customers", id, "edit"], true, _) => Route::EditCustomer(customer(id)?),
        (["customers", id, "delete"], true, _) => Route::ConfirmDelete(customer(id)?),
        (["customers", id, "delete"], _, true) => Route::DeleteCustomer(customer(id)?),
        (["customers", id, "automations"], true, _) => Route::Automations(customer(id)?),
        (["customers", id, "automations", automation], _, true) => {
            Route::SetAutomation(customer(id)?, (*automation).to_owned())
        }
        (["settings", "automations"], true, _) => Route::Settings,
        (["settings", "automations"], _, true) => Route::SaveSettings,
        (["activity"], true, _) => Route::Activity,
        (["bookings"], true, _) => Route::Bookings,
        (["bookings"], _, true) => Route::CreateBooking,
        (["bookings", "new"], true, _) => Route::NewBooking,
        (["bookings", id], true, _) => Route::Booking(booking(id)?),
        (["bookings", id, "complete"], _, true) => Route::CompleteBooking(booking(id)?),
        (["bookings", id, "cancel"], _, true) => Route::CancelBooking(booking(id)?),
        (["sign-in" | "sign-out"], _, _)
        | (["customers", _, "automations", _] | ["bookings", _, "complete" | "cancel"], _, _) => {
            return Err(NoRoute::Method("POST"));
        }
        (
            ["customers"]
            | ["customers", "import"]
            | ["customers", _]
            | ["customers", _, "delete"]
            | ["settings", "automations"]
            | ["bookings"],
            _,
            _,
        ) => return Err(NoRoute::Method("GET, POST")),
        _ => return Err(NoRoute::NotFound),
    };
    Ok(route)
}

async fn serve(request: Incoming) -> anyhow::Result<Response> {
    let route = match resolve(&request.method, &request.path) {
        Ok(route) => route,
        Err(NoRoute::NotFound) => return Ok(not_found()),
        Err(NoRoute::Method(allow)) => {
            let mut response =
                message_page(405, "Not allowed", "This page cannot be used that way.");
            response.set_header("allow", allow);
            return Ok(response);
        }
    };
    let now = system::now()?;
    let secure = !request.full_url.as_deref().is_some_and(is_loopback);
    let session_id = cookie(&request.cookie, SESSION_COOKIE).map(str::to_owned);
    let session = match &session_id {
        Some(id) => session::find(id, now)?,
        None => None,
    };
    match (route, session, session_id) {
        (Route::Stylesheet, _, _) => Ok(html::stylesheet()),
        (Route::SignIn, _, _) => sign_in(request, now, secure).await,
        (Route::Home, None, _) => Ok(sign_in_page(200, "", secure)),
        (Route::SignOut, Some(session), Some(id)) => {
            let form = read_form(request, MAX_FORM_BYTES).await?;
            if !session.admits(form.get("csrf")) {
                return Ok(csrf_refused());
            }
            session::end(&id)?;
            Ok(html::with_cookie(
                html::redirect("/app/"),
                set_cookie(SESSION_COOKIE, "", 0, secure),
            ))
        }
        (_, None, _) | (_, _, None) => Ok(if matches!(request.method, Method::Post) {
            message_page(
                403,
                "Signed out",
                "Your session has ended, so nothing was changed. Sign in again and repeat the change.",
            )
        } else {
            html::redirect("/app/")
        }),
        (route, Some(session), Some(id)) => {
            let db = db::connect()?;
            let hash = TokenHash::from_stored(&session.token_hash)
                .ok_or_else(|| anyhow!("a stored session holds no token hash"))?;
            let caller = match auth::sign_in_by_hash(&db, &hash, now) {
                Ok(caller) => caller,
                Err(ApiError::Unauthorized { .. }) => {
                    // The token was replaced or the account removed: the session ends with it.
                    session::end(&id)?;
                    return Ok(html::with_cookie(
                        html::redirect("/app/"),
                        set_cookie(SESSION_COOKIE, "", 0, secure),
                    ));
                }
                Err(error) => return Err(anyhow!("reading the session's account: {error:?}")),
            };
            let query = request.query.clone();
            let form = if matches!(request.method, Method::Post) {
                let limit = match route {
                    Route::Import => mio_api::customers::handlers::import::MAX_IMPORT_BYTES,
                    _ => MAX_FORM_BYTES,
                };
                let form = read_form(request, limit).await?;
                if !session.admits(form.get("csrf")) {
                    return Ok(csrf_refused());
                }
                form
            } else {
                Form::default()
            };
            let ctx = Ctx {
                db,
                caller,
                session,
                now,
            };
            dispatch(&ctx, route, &query, &form)
        }
    }
}

/// A signed-in request: its database connection, account, session and time.
pub struct Ctx {
    pub db: SpinDb,
    pub caller: Caller,
    pub session: Session,
    pub now: Timestamp,
}

impl Ctx {
    /// The account, for the handlers that take one.
    pub fn account(&self) -> &mio_shared::Account {
        &self.caller.account
    }

    /// The account as the owner of the handlers' statements.
    pub fn owner(&self) -> Owner<'_> {
        Owner::account(self.caller.account.id.as_str())
    }

    /// The frame of a page in `section`.
    pub fn frame(&self, section: Section) -> Frame<'_> {
        Frame {
            csrf: &self.session.csrf,
            section,
        }
    }

    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

fn dispatch(ctx: &Ctx, route: Route, query: &str, form: &Form) -> anyhow::Result<Response> {
    use pages::{activity, automations, bookings, customers, settings};
    match route {
        Route::Home => Ok(html::redirect("/app/customers")),
        Route::Customers => customers::list(ctx, query),
        Route::NewCustomer => customers::new(ctx),
        Route::CreateCustomer => customers::create(ctx, form),
        Route::ImportForm => Ok(customers::import_form(ctx)),
        Route::Import => customers::import(ctx, form),
        Route::Customer(id) => customers::profile(ctx, &id),
        Route::EditCustomer(id) => customers::edit(ctx, &id),
        Route::UpdateCustomer(id) => customers::update(ctx, &id, form),
        Route::ConfirmDelete(id) => customers::confirm_delete(ctx, &id),
        Route::DeleteCustomer(id) => customers::delete(ctx, &id),
        Route::Automations(id) => automations::panel(ctx, &id, query),
        Route::SetAutomation(id, automation) => automations::set(ctx, &id, &automation, form),
        Route::Settings => settings::page(ctx, query),
        Route::SaveSettings => settings::save(ctx, form),
        Route::Activity => activity::page(ctx, query),
        Route::Bookings => bookings::list(ctx, query),
        Route::NewBooking => bookings::new(ctx, query),
        Route::CreateBooking => bookings::create(ctx, form),
        Route::Booking(id) => bookings::page(ctx, &id),
        Route::CompleteBooking(id) => bookings::complete(ctx, &id, form),
        Route::CancelBooking(id) => bookings::cancel(ctx, &id, form),
        // Answered before the session is read.
        Route::SignIn | Route::SignOut | Route::Stylesheet => Ok(not_found()),
    }
}

/// `POST /app/sign-in`: the form's CSRF token must equal the sign-in cookie's (a cross-site page
/// can do neither), then the API token is checked like the API checks it.
async fn sign_in(request: Incoming, now: Timestamp, secure: bool) -> anyhow::Result<Response> {
    let expected = cookie(&request.cookie, SIGN_IN_COOKIE).map(str::to_owned);
    let form = read_form(request, 8 * 1024).await?;
    let presented = form.get("csrf").unwrap_or_default();
    if !expected.is_some_and(|expected| secret_matches(presented, &expected)) {
        return Ok(sign_in_page(
            403,
            "This sign-in form had expired. Paste the API token again.",
            secure,
        ));
    }
    let refused = || sign_in_page(401, "That API token is not valid.", secure);
    let Some(token) = ApiToken::parse(form.get("token").unwrap_or_default().trim()) else {
        return Ok(refused());
    };
    let db = db::connect()?;
    match auth::sign_in_on(&db, &token, now) {
        Ok(_) => {}
        Err(ApiError::Unauthorized { .. }) => return Ok(refused()),
        Err(error) => return Err(anyhow!("signing in: {error:?}")),
    }
    // The sign-in cookie is left to expire: an answer sets one cookie, and this one is the
    // session's.
    let (id, _) = session::open(token.hash().as_str(), now)?;
    Ok(html::with_cookie(
        html::redirect("/app/customers"),
        set_cookie(SESSION_COOKIE, &id, SESSION_MINUTES * 60, secure),
    ))
}

/// The sign-in form, with a fresh sign-in CSRF token in its cookie and its hidden field.
fn sign_in_page(status: u16, problem: &str, secure: bool) -> Response {
    let token = match system::random_bytes() {
        Ok(bytes) => secret(&bytes),
        Err(_) => return message_page(500, "Something went wrong", "Try again in a moment."),
    };
    let problem = if problem.is_empty() {
        String::new()
    } else {
        html::alert(problem, &[])
    };
    let main = format!(
        "<h1>Sign in</h1>{problem}<form class=\"card\" method=\"post\" action=\"/app/sign-in\">{}\
         <label for=\"token\">API token</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required \
         aria-describedby=\"token-hint\">\
         <p class=\"hint\" id=\"token-hint\">The token your account was given (it starts with <code>mio_</code>). \
         It stays on the server: this browser keeps only a session that ends after {} hours or when you sign out.</p>\
         <div class=\"actions\"><button type=\"submit\">Sign in</button></div></form>",
        html::csrf_input(&token),
        SESSION_MINUTES / 60
    );
    html::with_cookie(
        html::page(status, "Sign in", None, &main),
        set_cookie(SIGN_IN_COOKIE, &token, 3600, secure),
    )
}

/// A submitted form: URL-encoded fields, or a multipart upload's fields and files.
#[derive(Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl Form {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The field's value, trimmed, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default().trim()
    }

    /// Whether a checkbox was checked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets field `name` (a form shown again with what was typed).
    pub fn set(&mut self, name: &str, value: &str) {
        self.fields.push((name.to_owned(), value.to_owned()));
    }

    /// The uploaded file of input `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, data)| data.as_slice())
    }
}

async fn read_form(request: Incoming, limit: usize) -> anyhow::Result<Form> {
    let boundary = request
        .content_type()
        .and_then(multipart::boundary)
        .map(str::to_owned);
    let (media, body) = match request.body(&[Media::Form, Media::Multipart], limit).await {
        Ok(read) => read,
        // A body that is too large, or not a form, reads as an empty form: its CSRF check fails
        // and nothing is written.
        Err(ApiError::PayloadTooLarge(_) | ApiError::UnsupportedMediaType(_)) => {
            return Ok(Form::default());
        }
        Err(error) => return Err(anyhow!("reading a form: {error:?}")),
    };
    let mut form = Form::default();
    match (media, boundary) {
        (Media::Multipart, Some(boundary)) => {
            let Ok(parts) = multipart::parse(&boundary, &body) else {
                return Ok(Form::default());
            };
            for part in parts {
                if part.filename.is_some() {
                    form.files.push((part.name, part.data));
                } else {
                    let value = String::from_utf8_lossy(&part.data).into_owned();
                    form.fields.push((part.name, value));
                }
            }
        }
        _ => {
            form.fields = form_urlencoded::parse(&body).into_owned().collect();
        }
    }
    Ok(form)
}

fn csrf_refused() -> Response {
    message_page(
        403,
        "Form expired",
        "This form could not be checked as coming from this console, so nothing was changed. Go back, reload the page and try again.",
    )
}

/// A page with a heading and one paragraph (errors, refusals).
pub fn message_page(status: u16, title: &str, text: &str) -> Response {
    html::page(
        status,
        title,
        None,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/app/\">Back to the console</a></p>",
            e(title),
            e(text)
        ),
    )
}

/// 404: no such page, or an id of another account (which must look exactly the same).
pub fn not_found() -> Response {
    message_page(
        404,
        "Not found",
        "There is no such page in this console, or nothing with this id in your account.",
    )
}
