//! The pages' frame and pieces: the layout every screen shares, escaping, form fields with
//! their errors, and the answers (HTML with the security headers, redirects).

use mio_shared::feedback_page::escape;
use spin_sdk::http::Response;

/// The stylesheet, served from `/app/static/console.css`.
pub const STYLESHEET: &str = include_str!("console.css");

/// No script, no frames, nothing from elsewhere: styles and forms of this origin only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Text for HTML (element content and quoted attribute values).
pub fn e(text: &str) -> String {
    escape(text)
}

/// The sections of the main navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Customers,
    Bookings,
    Activity,
    Settings,
}

/// A page of a signed-in session: its navigation and the sign-out form need the CSRF token.
pub struct Frame<'a> {
    pub csrf: &'a str,
    pub section: Section,
}

/// A whole page: `main` is the content (starting with its `<h1>`).
pub fn page(status: u16, title: &str, frame: Option<&Frame<'_>>, main: &str) -> Response {
    let header = match frame {
        Some(frame) => {
            let link = |section: Section, href: &str, label: &str| {
                let current = if frame.section == section {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
            };
            format!(
                "<header><span class=\"brand\">Mio Automations</span>\
                 <nav aria-label=\"Main\"><ul>{}{}{}{}</ul></nav>\
                 <form method=\"post\" action=\"/app/sign-out\">{}\
                 <button type=\"submit\">Sign out</button></form></header>",
                link(Section::Customers, "/app/customers", "Customers"),
                link(Section::Bookings, "/app/bookings", "Bookings"),
                link(Section::Activity, "/app/activity", "Activity"),
                link(Section::Settings, "/app/settings/automations", "Settings"),
                csrf_input(frame.csrf),
            )
        }
        None => "<header><span class=\"brand\">Mio Automations</span></header>".to_owned(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Mio Automations</title>\
         <link rel=\"stylesheet\" href=\"/app/static/console.css\"></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>{header}\
         <main id=\"main\">{main}</main></body></html>",
        e(title)
    );
    with_headers(
        Response::builder().status(status),
        "text/html; charset=utf-8",
    )
    .body(html)
    .build()
}

/// The headers every console answer carries: the CSP, no sniffing, no caching (a page of
/// customer data must not come back from the cache after signing out).
fn with_headers<'a>(
    builder: &'a mut spin_sdk::http::ResponseBuilder,
    content_type: &str,
) -> &'a mut spin_sdk::http::ResponseBuilder {
    builder
        .header("content-type", content_type)
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
        .header("cache-control", "no-store")
}

/// `303 See Other` to `location` (after a form, so reloading does not post again).
pub fn redirect(location: &str) -> Response {
    let mut builder = Response::builder();
    with_headers(builder.status(303), "text/plain; charset=utf-8").header("location", location);
    builder.body("See Other").build()
}

/// `response` setting one cookie (the SDK's responses hold one value per header name, so an
/// answer sets at most one cookie).
pub fn with_cookie(mut response: Response, cookie: String) -> Response {
    response.set_header("set-cookie", cookie);
    response
}

/// The stylesheet's answer (cacheable for a short while: it changes with the component).
pub fn stylesheet() -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/css; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "max-age=300")
        .body(STYLESHEET)
        .build()
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf_input(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        e(csrf)
    )
}

/// The hidden field that carries a creating form's idempotency key: a fresh one each time the
/// form is shown, so sending the same form twice creates once.
pub fn idempotency_input() -> anyhow::Result<String> {
    let key = mio_shared::console::secret(&mio_platform::system::random_bytes()?);
    Ok(format!(
        "<input type=\"hidden\" name=\"idempotency_key\" value=\"{key}\">"
    ))
}

/// A one-button form posting to `action` (with the CSRF token and hidden `fields`).
pub fn button_form(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                e(name),
                e(value)
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\">{}{hidden}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        e(action),
        csrf_input(csrf),
        e(label)
    )
}

/// The errors of one field, and the attributes that tie them to its control.
pub struct FieldErrors<'a>(pub &'a [(String, String)]);

impl FieldErrors<'_> {
    /// The messages for `field` (the API's name for it).
    fn of(&self, field: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(name, _)| name == field || name.starts_with(&format!("{field}.")))
            .map(|(_, message)| message.as_str())
            .collect()
    }

    /// The messages for fields none of `shown` covers (shown above the form).
    pub fn others(&self, shown: &[&str]) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(name, _)| {
                !shown
                    .iter()
                    .any(|field| name == field || name.starts_with(&format!("{field}.")))
            })
            .cloned()
            .collect()
    }
}

/// A labelled control for `field` with its errors beside it: `control` is the input's opening
/// tag minus its `id`/`name`/`aria-*` attributes, e.g. `<input type="text" value="…"`.
pub fn control(
    id: &str,
    label: &str,
    field: &str,
    control: &str,
    rest: &str,
    errors: &FieldErrors<'_>,
) -> String {
    let messages = errors.of(field);
    let (aria, shown) = if messages.is_empty() {
        (String::new(), String::new())
    } else {
        let text = messages.iter().map(|m| e(m)).collect::<Vec<_>>().join(" ");
        (
            format!(" aria-invalid=\"true\" aria-describedby=\"{id}-error\""),
            format!("<p class=\"error\" id=\"{id}-error\">{text}</p>"),
        )
    };
    format!(
        "<label for=\"{id}\">{label}</label>{control} id=\"{id}\" name=\"{id}\"{aria}>{rest}{shown}"
    )
}

/// A text-like input: `kind` is its `type`.
pub fn input(
    id: &str,
    label: &str,
    field: &str,
    kind: &str,
    value: &str,
    errors: &FieldErrors<'_>,
) -> String {
    control(
        id,
        label,
        field,
        &format!("<input type=\"{kind}\" value=\"{}\"", e(value)),
        "",
        errors,
    )
}

/// A select with `(value, label)` options, `selected` chosen.
pub fn select(
    id: &str,
    label: &str,
    field: &str,
    options: &[(&str, &str)],
    selected: &str,
    errors: &FieldErrors<'_>,
) -> String {
    let options: String = options
        .iter()
        .map(|(value, text)| {
            let chosen = if *value == selected { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{chosen}>{}</option>",
                e(value),
                e(text)
            )
        })
        .collect();
    control(
        id,
        label,
        field,
        "<select",
        &format!("{options}</select>"),
        errors,
    )
}

/// A checkbox named `id` (sent as `on` when checked).
pub fn checkbox(id: &str, label: &str, checked: bool) -> String {
    let checked = if checked { " checked" } else { "" };
    format!(
        "<label class=\"inline\" for=\"{id}\"><input type=\"checkbox\" id=\"{id}\" name=\"{id}\"{checked}> {label}</label>"
    )
}

/// A problem the API answered, for the top of a page (`role="alert"`), with any field errors
/// not shown beside a field.
pub fn alert(detail: &str, others: &[(String, String)]) -> String {
    let items: String = others
        .iter()
        .map(|(field, message)| format!("<li>{}: {}</li>", e(field), e(message)))
        .collect();
    let list = if items.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"plain\">{items}</ul>")
    };
    format!(
        "<div class=\"alert\" role=\"alert\"><p>{}</p>{list}</div>",
        e(detail)
    )
}

/// A status message (`role="status"`).
pub fn status(text: &str) -> String {
    format!("<p class=\"status\" role=\"status\">{}</p>", e(text))
}
