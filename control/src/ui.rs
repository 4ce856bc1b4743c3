//! The mode explorer: `l2ctl explain --format html` (one self-contained page, `docs/modes.html`)
//! and `l2ctl ui` (the same page served on loopback, with a read-only live view of the daemon's
//! networks).
//!
//! The page renders the [`Explanation`](crate::explain::Explanation)s of `explain --format json`,
//! embedded in it as JSON; it decides nothing. Its HTML, CSS and JavaScript are files beside
//! this module, compiled into the binary: nothing is fetched, nothing is built.

use serde_json::{Value, json};

use crate::explain::{self, ExplainError};
use crate::modes::{self, Mode};

mod server;

pub use server::{DEFAULT_LISTEN, FROM_PAGE, Reply, TRACE_COUNT, Ui, UiError, bind, serve};

const PAGE: &str = include_str!("ui/page.html");
const STYLE: &str = include_str!("ui/style.css");
const APP: &str = include_str!("ui/app.js");

/// The command that regenerates `docs/modes.html`.
pub const REGENERATE: &str =
    "cargo run -p l2sw-control -- explain all --format html > docs/modes.html";

/// What the page renders for `modes`: every mode's explanation with the upstream bridge's
/// hairpin off and, for the modes that have an upstream bridge, on as well, each exactly as
/// `explain MODE --format json --upstream-hairpin off|on` gives it.
pub fn explorer_data(modes: &[Mode]) -> Result<Value, ExplainError> {
    let mut all = Vec::new();
    for &mode in modes {
        all.push(explain::render_json(&explain::explain(mode, false)?));
        if modes::topology(mode).upstream {
            all.push(explain::render_json(&explain::explain(mode, true)?));
        }
    }
    Ok(json!({ "explanations": all }))
}

/// The explorer page for `modes`. `live` adds the view of the daemon's running networks (the
/// page is then served by `l2ctl ui`, which answers its `/api/` requests).
pub fn page(modes: &[Mode], live: bool) -> Result<String, ExplainError> {
    let data = explorer_data(modes)?;
    // JSON inside a <script> element: "<" only occurs inside strings, where \u003c says the
    // same, so no "</script>" can end the element early.
    let data = format!("{data:#}").replace('<', "\\u003c");
    Ok(PAGE
        .replace("{{LIVE}}", if live { "true" } else { "false" })
        .replace("/*{{STYLE}}*/", STYLE)
        .replace("/*{{APP}}*/", APP)
        .replace("{{DATA}}", &data))
}

/// `docs/modes.html`: every mode, no live view.
pub fn modes_html() -> Result<String, ExplainError> {
    page(Mode::ALL, false)
}

/// A small HTML page that says what went wrong, for a browser that asked for a page.
pub fn error_page(status: u16, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>l2sw explorer: {status}</title>\
         <style>body{{font:1.4rem system-ui,sans-serif;margin:2rem;max-width:60rem}}</style>\
         </head><body><h1>✗ {status}</h1><p id=\"error\">{}</p>\
         <p><a href=\"/\">Back to the explorer</a></p></body></html>\n",
        escape(message)
    )
}

/// `s` with the characters HTML and SVG (XML) give a meaning escaped, for content and
/// attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_page_is_self_contained_and_embeds_every_explanation() {
        let html = modes_html().unwrap();
        assert!(!html.contains("{{"), "a placeholder is left");
        assert!(!html.contains("</script>\n</script>"));
        // The SVG namespace is a name, not an address anything is fetched from.
        let own = html.replace("\"http://www.w3.org/2000/svg\"", "");
        for needle in ["http://", "https://", "src=", "url(", "@import", "<link"] {
            assert!(!own.contains(needle), "the page refers outside: {needle}");
        }
        let start = html.find("id=\"l2sw-data\">").unwrap() + "id=\"l2sw-data\">".len();
        let len = html[start..].find("</script>").unwrap();
        let data: Value = serde_json::from_str(&html[start..start + len]).unwrap();
        assert_eq!(data, explorer_data(Mode::ALL).unwrap());
        let n = data["explanations"].as_array().unwrap().len();
        let upstream = Mode::ALL
            .iter()
            .filter(|m| modes::topology(**m).upstream)
            .count();
        assert_eq!(n, Mode::ALL.len() + upstream);
    }

    #[test]
    fn error_pages_escape_what_they_quote() {
        let p = error_page(404, "unknown mode \"<script>\"");
        assert!(p.contains("&lt;script&gt;"));
        assert!(!p.contains("<script>"));
    }
}
