//! The boot watchdog (`web/boot.js`) is served inside each page's HTML, not as a file of its
//! own: a page whose document arrived then always runs it, even when none of its scripts can
//! load (a connection that broke right after the document; CI saw a page stay blank for good
//! that way). The Content-Security-Policy allows that one inline script by its hash.

use axum::http::HeaderValue;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// How a page asks for the watchdog in `web/*.html`.
const TAG: &str = r#"<script src="/boot.js"></script>"#;

struct Boot {
    /// `<script>…</script>` with boot.js's text.
    inline: String,
    /// The CSP for the bridge's pages: its own scripts and this one (made once, sent with
    /// every response).
    csp: HeaderValue,
}

static BOOT: LazyLock<Boot> = LazyLock::new(|| {
    let script = super::Assets::get("boot.js").map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    Boot {
        inline: format!("<script>{script}</script>"),
        csp: HeaderValue::from_str(&super::security::CSP.replacen("script-src 'self'", &format!("script-src 'self' 'sha256-{hash}'"), 1))
            .expect("a CSP of ASCII and a base64 hash is a valid header"),
    }
});

/// A page's HTML with the watchdog written into it.
pub(crate) fn inline(html: &str) -> String {
    html.replacen(TAG, &BOOT.inline, 1)
}

/// The policy for the bridge's pages, with the watchdog's hash.
pub(crate) fn csp() -> &'static HeaderValue {
    &BOOT.csp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_carries_the_watchdog_and_the_policy_allows_exactly_it() {
        for page in ["site.html", "tech.html"] {
            let html = String::from_utf8(crate::http::Assets::get(page).unwrap().data.into_owned()).unwrap();
            assert!(html.contains(TAG), "{page} asks for the watchdog");
            let served = inline(&html);
            assert!(!served.contains("/boot.js"), "{page}: no file to fail to load");
            let start = served.find("<script>").expect("the watchdog inline") + "<script>".len();
            let script = &served[start..start + served[start..].find("</script>").unwrap()];
            assert!(script.contains("diemcauBooted"), "{page}: the watchdog itself");
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
            let csp = csp().to_str().unwrap();
            assert!(csp.contains(&format!("script-src 'self' 'sha256-{hash}';")), "the policy allows that script and no other: {csp}");
        }
    }
}
