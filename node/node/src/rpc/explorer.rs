//! The block explorer (`sdk/ts/explorer`), served at `GET /explorer/` when
//! `rpc.explorer` is on: three static files built into the binary, so a
//! node or a devnet serves it with nothing to install. It is a client of
//! this port's JSON-RPC like any other (or of any node's, with `?rpc=`),
//! and checks what it shows against the validators' signatures itself.

use axum::http::{self, HeaderValue, StatusCode, header};
use jsonrpsee::server::HttpBody;

/// The files, as `npm run build:explorer` wrote them (and as
/// `npm run check:explorer` checks they are current).
const FILES: [(&str, &str, &[u8]); 3] = [
    (
        "/explorer/",
        "text/html; charset=utf-8",
        include_bytes!("../../../../sdk/ts/explorer/static/index.html"),
    ),
    (
        "/explorer/explorer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../sdk/ts/explorer/static/explorer.js"),
    ),
    (
        "/explorer/explorer.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../sdk/ts/explorer/static/explorer.css"),
    ),
];

/// Scripts and styles from this origin only, no inline code, no frames;
/// the JSON-RPC and WebSocket connections may go to any node.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether `path` is the explorer's.
pub(super) fn is_explorer(path: &str) -> bool {
    path == "/explorer" || path.starts_with("/explorer/")
}

/// The answer to `GET path` for an explorer path.
pub(super) fn serve(path: &str) -> http::Response<HttpBody> {
    if path == "/explorer" {
        // Relative links need the trailing slash.
        let mut r = http::Response::new(HttpBody::from(String::new()));
        *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/explorer/"));
        return r;
    }
    let path = if path == "/explorer/index.html" {
        "/explorer/"
    } else {
        path
    };
    let Some(&(_, content_type, body)) = FILES.iter().find(|(p, _, _)| *p == path) else {
        let mut r = http::Response::new(HttpBody::from("no such explorer file"));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = http::Response::new(HttpBody::from(body.to_vec()));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A node upgrade changes the files; browsers revalidate each time.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_are_built_and_the_page_loads_them_from_this_folder() {
        let index = std::str::from_utf8(FILES[0].2).unwrap_or_default();
        assert!(index.contains("./explorer.js"), "{index}");
        assert!(index.contains("./explorer.css"), "{index}");
        assert!(
            !index.contains("<script>"),
            "no inline script (the CSP refuses it)"
        );
        assert!(FILES[1].2.len() > 10_000, "the bundle is built");
    }

    #[test]
    fn paths_outside_the_three_files_are_not_found() {
        assert!(is_explorer("/explorer") && is_explorer("/explorer/x"));
        assert!(!is_explorer("/explorers") && !is_explorer("/"));
        assert_eq!(serve("/explorer").status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(serve("/explorer/").status(), StatusCode::OK);
        assert_eq!(serve("/explorer/index.html").status(), StatusCode::OK);
        for bad in ["/explorer/../Cargo.toml", "/explorer/x.js", "/explorer//"] {
            assert_eq!(serve(bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }
}
