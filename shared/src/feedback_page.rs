//! The public rating page behind a feedback link, as HTML: the form, its answers, and the
//! headers every one of them is served with.
//!
//! Pure functions of data: what the visit was, what the customer sent and what was wrong with
//! it. Every page is self-contained: one inline style block allowed by its hash in the
//! `Content-Security-Policy`, no script, no image, no font, no URL of any other origin, so it
//! loads fast on a phone and tells no third party who opened it. The form posts back to the
//! page's own address, so the link's token never appears in the page. Every piece of text that
//! is not ours (business name, service type, comment) is escaped.
//!
//! Pages are in English (`lang="en"`): accounts have no language setting yet. Not here: which
//! page a request gets (`crate::feedback::link_state` and the component), HTTP, SQL.

use crate::account::TimeZone;
use crate::feedback_answer::{AnswerError, MAX_COMMENT_CHARS, Rating, Rejected};
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The `Content-Type` of every page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// The page's only style block. Kept to the few rules the page needs; its hash is in the CSP,
/// so any change here is allowed automatically and no other style is.
const STYLE: &str = ":root{color-scheme:light dark;--fg:#1b1f24;--muted:#4a525c;--bg:#f3f4f6;\
--card:#fff;--line:#c4cad3;--accent:#0b5cad;--on-accent:#fff;--err:#b3261e;--star:#b07800}\
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#b5bcc5;--bg:#121417;\
--card:#1d2126;--line:#3d444d;--accent:#8ab8ff;--on-accent:#0b1a2b;--err:#ffb4ab;--star:#f2c14e}}\
*{box-sizing:border-box}\
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;\
color:var(--fg);background:var(--bg)}\
main{max-width:34rem;margin:0 auto;padding:1rem}\
.card{background:var(--card);border:1px solid var(--line);border-radius:.75rem;padding:1.25rem}\
.business{font-weight:600;color:var(--muted);margin:0}\
h1{font-size:1.5rem;line-height:1.25;margin:.25rem 0 .75rem}\
p{margin:0 0 1rem}\
fieldset{border:0;padding:0;margin:0 0 1.25rem;min-width:0}\
legend{font-weight:600;padding:0;margin-bottom:.5rem}\
.choices{display:grid;gap:.5rem}\
.choice{display:flex;align-items:center;gap:.75rem;min-height:2.75rem;padding:.5rem .75rem;\
border:1px solid var(--line);border-radius:.5rem;cursor:pointer}\
.choice input{width:1.25rem;height:1.25rem;margin:0;accent-color:var(--accent)}\
.choice:has(input:checked){border-color:var(--accent);outline:1px solid var(--accent)}\
.stars{color:var(--star);letter-spacing:.1em}\
label.text{display:block;font-weight:600;margin-bottom:.25rem}\
.hint{color:var(--muted);font-size:.9375rem;margin:0 0 .5rem}\
textarea{display:block;width:100%;min-height:7rem;font:inherit;padding:.5rem .75rem;\
border:1px solid var(--line);border-radius:.5rem;background:var(--card);color:inherit}\
.error{color:var(--err);font-weight:600;margin:0 0 .5rem}\
button{display:block;width:100%;min-height:3rem;margin-top:1.25rem;font:inherit;font-weight:600;\
border:0;border-radius:.5rem;background:var(--accent);color:var(--on-accent);cursor:pointer}\
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}";

/// What each rating means, as the page's choices say it.
const RATING_WORDS: [&str; 5] = ["Poor", "Fair", "Good", "Very good", "Excellent"];

/// The visit a link asks about, as the page shows it.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// The business's name.
    pub business: &'a str,
    /// The booking's service type.
    pub service: &'a str,
    /// When the visit started.
    pub start_at: Timestamp,
    /// The business's time zone, in which the page states the date.
    pub timezone: &'a TimeZone,
}

/// The headers every page is served with (its `Content-Type` included): the page may load
/// nothing, be framed by nobody, post only to its own origin, and is never cached or
/// referred to (its address is the link's secret).
pub fn headers() -> [(&'static str, String); 5] {
    [
        ("content-type", CONTENT_TYPE.to_owned()),
        ("content-security-policy", content_security_policy()),
        ("cache-control", "no-store".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
    ]
}

/// `default-src 'none'`, the page's one style block by hash, `form-action 'self'`, no
/// `<base>`, no framing.
pub fn content_security_policy() -> String {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// The rating form, empty or shown again with what was `rejected` and why, each problem
/// beside its field.
pub fn form(visit: &Visit<'_>, rejected: Option<&Rejected>) -> String {
    let errors = rejected.map_or(&[][..], |r| r.errors.as_slice());
    let error_for = |field: &str| errors.iter().copied().find(|e| e.field() == field);
    let business = escape(visit.business);
    let mut body = format!(
        "<p class=\"business\">{business}</p>\
         <h1>How was your visit?</h1>\
         <p>{service} on {date}</p>\
         <form method=\"post\">",
        service = escape(visit.service),
        date = escape(&visit.timezone.local_start(visit.start_at)),
    );
    let rating_error = error_for("rating");
    body.push_str(match rating_error {
        Some(_) => "<fieldset aria-describedby=\"rating-error\">",
        None => "<fieldset>",
    });
    body.push_str("<legend>Your rating, from 1 (poor) to 5 (excellent)</legend>");
    push_error(&mut body, "rating-error", rating_error);
    body.push_str("<div class=\"choices\">");
    let chosen = rejected.and_then(|r| r.rating);
    for (rating, words) in Rating::ALL.iter().zip(RATING_WORDS) {
        let n = rating.get();
        let checked = if chosen == Some(*rating) {
            " checked"
        } else {
            ""
        };
        body.push_str(&format!(
            "<label class=\"choice\" for=\"rating-{n}\">\
             <input type=\"radio\" id=\"rating-{n}\" name=\"rating\" value=\"{n}\" required{checked}>\
             <span>{n} <span class=\"stars\" aria-hidden=\"true\">{stars}</span> {words}</span>\
             </label>",
            stars = "★".repeat(usize::from(n)),
        ));
    }
    body.push_str("</div></fieldset>");
    let comment_error = error_for("comment");
    body.push_str(&format!(
        "<label class=\"text\" for=\"comment\">Anything you would like to add? (optional)</label>\
         <p class=\"hint\" id=\"comment-hint\">Up to {max} characters.</p>",
        max = thousands(MAX_COMMENT_CHARS),
    ));
    push_error(&mut body, "comment-error", comment_error);
    let (described, invalid) = match comment_error {
        Some(_) => ("comment-hint comment-error", " aria-invalid=\"true\""),
        None => ("comment-hint", ""),
    };
    // The newline after the start tag is the one HTML drops, so a comment that starts with a
    // line break keeps it.
    body.push_str(&format!(
        "<textarea id=\"comment\" name=\"comment\" rows=\"5\" maxlength=\"{MAX_COMMENT_CHARS}\" \
         aria-describedby=\"{described}\"{invalid}>\n{comment}</textarea>\
         <button type=\"submit\">Send my rating</button></form>",
        comment = escape(rejected.map_or("", |r| r.comment.as_str())),
    ));
    let title = if errors.is_empty() {
        format!("Rate your visit – {business}")
    } else {
        format!("Error: Rate your visit – {business}")
    };
    page(&title, &body)
}

/// The thank-you page once `rating` was stored.
pub fn thanks(business: &str, rating: Rating) -> String {
    let business = escape(business);
    let n = rating.get();
    page(
        &format!("Thank you – {business}"),
        &format!(
            "<p class=\"business\">{business}</p><h1>Thank you!</h1>\
             <p>Your rating of {n} out of 5 has been sent to {business}. \
             We appreciate you taking the time.</p>"
        ),
    )
}

/// The page of a link whose rating was already received (a second visit, a second submit).
pub fn already_received(business: &str) -> String {
    let business = escape(business);
    page(
        &format!("Rating already received – {business}"),
        &format!(
            "<p class=\"business\">{business}</p><h1>We already have your rating</h1>\
             <p>Thank you: {business} has received your feedback for this visit. \
             Each link takes one rating.</p>"
        ),
    )
}

/// The page of an unknown, malformed or expired link.
pub fn not_found() -> String {
    page(
        "Link not found",
        "<h1>This link does not work</h1>\
         <p>This rating link is not valid or has expired. If you would still like to share \
         your feedback, please contact the business directly.</p>",
    )
}

/// The page of a form too large to read.
pub fn too_large() -> String {
    page(
        "Answer too long",
        &format!(
            "<h1>Your answer is too long</h1>\
             <p>Please go back, keep your comment to {} characters or fewer, and send it \
             again.</p>",
            thousands(MAX_COMMENT_CHARS)
        ),
    )
}

/// HTML-escapes `text` for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The document around `body` (already HTML); `title` is already escaped.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n\
         <html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><div class=\"card\">{body}</div></main></body></html>\n"
    )
}

fn push_error(body: &mut String, id: &str, error: Option<AnswerError>) {
    if let Some(error) = error {
        body.push_str(&format!(
            "<p class=\"error\" id=\"{id}\">{}</p>",
            escape(error.advice())
        ));
    }
}

/// `2000` as `2,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback_answer::Answer;

    static TORONTO: std::sync::LazyLock<TimeZone> =
        std::sync::LazyLock::new(|| TimeZone::parse("America/Toronto").expect("known zone"));

    fn visit(business: &'static str, service: &'static str) -> Visit<'static> {
        Visit {
            business,
            service,
            start_at: Timestamp::parse("2026-03-03T14:30:00Z").expect("valid"),
            timezone: &TORONTO,
        }
    }

    fn every_page() -> Vec<String> {
        let rejected = Answer::from_form(b"rating=9&comment=x").expect_err("invalid");
        vec![
            form(&visit("Sparkle", "Deep clean"), None),
            form(&visit("Sparkle", "Deep clean"), Some(&rejected)),
            thanks("Sparkle", Rating::ALL[3]),
            already_received("Sparkle"),
            not_found(),
            too_large(),
        ]
    }

    #[test]
    fn the_form_names_the_business_the_service_and_the_local_date() {
        let html = form(&visit("Sparkle Cleaning", "Deep clean"), None);
        assert!(html.contains("Sparkle Cleaning"), "{html}");
        assert!(
            html.contains("Deep clean on Tuesday, March 3, 2026 at 9:30 AM"),
            "{html}"
        );
        for n in 1..=5 {
            assert!(
                html.contains(&format!("name=\"rating\" value=\"{n}\" required>")),
                "{html}"
            );
            assert!(html.contains(&format!("<label class=\"choice\" for=\"rating-{n}\">")));
        }
        assert!(html.contains("<fieldset><legend>"), "{html}");
        assert!(html.contains("maxlength=\"2000\""), "{html}");
        assert!(
            html.contains("<label class=\"text\" for=\"comment\">"),
            "{html}"
        );
        assert!(!html.contains("class=\"error\""), "{html}");
    }

    #[test]
    fn the_date_follows_the_business_time_zone_across_daylight_saving() {
        let summer = Timestamp::parse("2026-07-01T13:00:00Z").expect("valid");
        assert_eq!(
            TORONTO.local_start(summer),
            "Wednesday, July 1, 2026 at 9:00 AM"
        );
        let tokyo = TimeZone::parse("Asia/Tokyo").expect("known zone");
        assert_eq!(
            tokyo.local_start(summer),
            "Wednesday, July 1, 2026 at 10:00 PM"
        );
    }

    #[test]
    fn a_rejected_form_shows_each_error_beside_its_field_and_keeps_the_input() {
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        let rejected =
            Answer::from_form(format!("rating=4&comment={long}").as_bytes()).expect_err("long");
        let html = form(&visit("Sparkle", "Deep clean"), Some(&rejected));
        assert!(html.contains("<title>Error: "), "{html}");
        assert!(html.contains("id=\"comment-error\""), "{html}");
        assert!(!html.contains("id=\"rating-error\""), "{html}");
        assert!(html.contains("value=\"4\" required checked>"), "{html}");
        assert!(
            html.contains(&format!(">\n{long}</textarea>")),
            "the comment is kept"
        );
        assert!(html.contains("aria-invalid=\"true\""), "{html}");

        let rejected = Answer::from_form(b"rating=0&comment=Nice").expect_err("bad rating");
        let html = form(&visit("Sparkle", "Deep clean"), Some(&rejected));
        assert!(
            html.contains(
                "<fieldset aria-describedby=\"rating-error\"><legend>Your rating, from 1 (poor) \
                 to 5 (excellent)</legend><p class=\"error\" id=\"rating-error\">Please choose a \
                 rating from 1 to 5.</p>"
            ),
            "{html}"
        );
        assert!(!html.contains(" checked>"), "{html}");
        assert!(html.contains(">\nNice</textarea>"), "{html}");
    }

    #[test]
    fn text_that_is_not_ours_is_escaped_everywhere() {
        let evil = "<script>alert('x')</script>&\"";
        let rejected = Rejected {
            errors: vec![AnswerError::RatingMissing],
            rating: None,
            comment: "</textarea><img src=x onerror=alert(1)>".into(),
        };
        for html in [
            form(&visit(evil, evil), Some(&rejected)),
            thanks(evil, Rating::ALL[0]),
            already_received(evil),
        ] {
            assert!(!html.contains("<script>"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(html.matches("</textarea>").count() <= 1, "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"),
                "{html}"
            );
        }
        let form = form(&visit("Sparkle", "Deep clean"), Some(&rejected));
        assert!(
            form.contains(">\n&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;</textarea>"),
            "{form}"
        );
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    }

    #[test]
    fn no_page_loads_anything_or_links_anywhere() {
        for html in every_page() {
            let lower = html.to_ascii_lowercase();
            for banned in [
                "http:", "https:", "//", "src=", "href=", "<script", "<link", "<img", "<iframe",
                "url(", "@import", "action=", " style=",
            ] {
                assert!(!lower.contains(banned), "{banned} in {html}");
            }
            assert!(
                lower.starts_with("<!doctype html>\n<html lang=\"en\">"),
                "{html}"
            );
            assert!(html.contains("name=\"viewport\""), "{html}");
            assert_eq!(html.matches("<style>").count(), 1, "{html}");
        }
    }

    #[test]
    fn the_csp_allows_exactly_the_one_style_block_by_its_hash() {
        let csp = content_security_policy();
        let html = not_found();
        let start = html.find("<style>").expect("style") + "<style>".len();
        let end = html.find("</style>").expect("style end");
        let hash = STANDARD.encode(Sha256::digest(&html.as_bytes()[start..end]));
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
        for directive in [
            "default-src 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        let names: Vec<&str> = headers().iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "content-security-policy",
                "cache-control",
                "referrer-policy",
                "x-content-type-options"
            ]
        );
    }

    #[test]
    fn thanks_states_the_rating_and_numbers_get_thousands_separators() {
        assert!(thanks("Sparkle", Rating::ALL[4]).contains("Your rating of 5 out of 5"));
        assert_eq!(thousands(2000), "2,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
