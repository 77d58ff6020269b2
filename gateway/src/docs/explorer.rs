//! `GET /api/docs`: an API explorer (Swagger UI) over `/api/openapi.json`.
//! Its assets are vendored into `gateway/assets/` by
//! `scripts/vendor_docs_assets.sh` and embedded here, so the page loads
//! nothing from anywhere but this origin, at build or run time.
//!
//! These are plain axum routes beside `/api/health`, matched before the
//! contract's fallback, so the transcoded route table never sees them.

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The page's own policy (the gateway's default, `default-src 'none'`, would
/// block the explorer): scripts, styles and calls to this origin only; no
/// inline scripts or styles; Swagger UI's icons are `data:` SVGs.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The vendored Swagger UI release, which names the assets' versions.
const SWAGGER_UI_VERSION: &str = include_str!("../../assets/swagger-ui/VERSION");

/// An embedded file and, for the large ones, its gzip form.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
}

static ASSETS: [Asset; 4] = [
    Asset {
        path: "/api/docs/swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
        gzip: Some(include_bytes!(
            "../../assets/swagger-ui/swagger-ui-bundle.js.gz"
        )),
    },
    Asset {
        path: "/api/docs/swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
        gzip: Some(include_bytes!("../../assets/swagger-ui/swagger-ui.css.gz")),
    },
    Asset {
        path: "/api/docs/docs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/docs/docs.js"),
        gzip: None,
    },
    Asset {
        path: "/api/docs/docs.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/docs/docs.css"),
        gzip: None,
    },
];

const PAGE: &[u8] = include_bytes!("../../assets/docs/index.html");

/// The routes of the page and its assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/api/docs", get(page));
    for (i, asset) in ASSETS.iter().enumerate() {
        router = router.route(
            asset.path,
            get(move |request: Request| async move { serve(&ASSETS[i], request.headers()) }),
        );
    }
    router
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // Small, and names the assets: always revalidated.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// An asset, cacheable by anyone for a day (they hold no personal data) and
/// revalidated by its version; gzipped ahead of time for clients that take it.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!(
        "\"swagger-ui-{}-{}\"",
        SWAGGER_UI_VERSION.trim(),
        asset.path
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim().trim_start_matches("W/") == etag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let body = match asset.gzip {
        Some(gzip) if accepts_gzip(request) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gzip
        }
        _ => asset.body,
    };
    (headers, body).into_response()
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(
        app: &Router,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = http::Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = app
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).expect("request"))
            .await
            .expect("reply");
        let status = reply.status();
        let headers = reply.headers().clone();
        let body = reply.into_body().collect().await.expect("body").to_bytes();
        (status, headers, body.to_vec())
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The whole public application, with its default security headers.
    fn app() -> Router {
        crate::Builder::new(&crate::Config::defaults())
            .build()
            .expect("app")
            .public
    }

    #[tokio::test]
    async fn the_page_is_html_with_its_own_csp_and_only_same_origin_assets() {
        let app = app();
        let (status, headers, body) = get(&app, "/api/docs", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        // Its own policy, not the API's `default-src 'none'`.
        let csp = header(&headers, "content-security-policy");
        assert_eq!(csp, CSP);
        for directive in [
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

        let html = String::from_utf8(body).expect("utf-8");
        let mut referenced = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attribute) {
                let rest = &html[at + attribute.len()..];
                let url = &rest[..rest.find('"').expect("closing quote")];
                assert!(
                    url.starts_with('/') && !url.starts_with("//"),
                    "{url} is not same-origin"
                );
                referenced.push(url.to_owned());
            }
        }
        assert!(!html.contains("<script>"), "no inline script");
        for asset in &ASSETS {
            assert!(referenced.iter().any(|u| u == asset.path), "{}", asset.path);
        }
        assert!(referenced.iter().any(|u| u == "/api/openapi.json"));
    }

    #[tokio::test]
    async fn the_assets_are_served_cacheable_and_gzipped_ahead_of_time() {
        let app = app();
        for asset in &ASSETS {
            let (status, headers, body) = get(&app, asset.path, &[]).await;
            assert_eq!(status, StatusCode::OK, "{}", asset.path);
            assert_eq!(header(&headers, "content-type"), asset.content_type);
            assert_eq!(header(&headers, "cache-control"), "public, max-age=86400");
            assert_eq!(body, asset.body, "{}", asset.path);
            let etag = header(&headers, "etag").to_owned();
            assert!(etag.starts_with("\"swagger-ui-"), "{etag}");

            let (status, headers, body) = get(&app, asset.path, &[("if-none-match", &etag)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{}", asset.path);
            assert!(body.is_empty());
            assert_eq!(header(&headers, "etag"), etag);
        }
        let bundle = &ASSETS[0];
        let (status, headers, body) = get(
            &app,
            bundle.path,
            &[("accept-encoding", "br;q=1, gzip;q=0.8")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-encoding"), "gzip");
        assert_eq!(Some(body.as_slice()), bundle.gzip);
        assert!(body.len() < 600 * 1024, "{} bytes", body.len());
        let (_, headers, _) = get(&app, bundle.path, &[("accept-encoding", "gzip;q=0")]).await;
        assert_eq!(header(&headers, "content-encoding"), "");
    }
}
