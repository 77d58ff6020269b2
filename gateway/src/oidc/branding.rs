//! The pages' look, by configuration: the product name, a logo, the
//! primary colour and, for more, a stylesheet that replaces ours. Files are
//! read once at start-up; a bad value stops it, naming the variable.

use super::{OidcError, Shared};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};
use std::path::PathBuf;

/// The stylesheet compiled in.
const STYLESHEET: &str = include_str!("../../assets/oidc/suite.css");

#[derive(Debug, Clone, clap::Args)]
pub struct BrandingArgs {
    /// The product name on the sign-in pages.
    #[arg(long, env = "BRANDING_PRODUCT_NAME", default_value = "Suite")]
    pub branding_product_name: String,

    /// The pages' primary colour, `#rrggbb`.
    #[arg(long, env = "BRANDING_PRIMARY_COLOR", default_value = "#2557a7", value_parser = color)]
    pub branding_primary_color: String,

    /// A stylesheet that replaces the built-in one (the primary colour is
    /// still declared ahead of it, as `--suite-primary`).
    #[arg(long, env = "BRANDING_STYLESHEET_FILE")]
    pub branding_stylesheet_file: Option<PathBuf>,

    /// A logo (PNG, SVG, JPEG or WebP) shown above the pages, instead of the product name.
    #[arg(long, env = "BRANDING_LOGO_FILE")]
    pub branding_logo_file: Option<PathBuf>,

    /// Where the sign-in page's "Create one" link leads (the operator's sign-up
    /// page); unset, the page offers none. The suite has no sign-up page of its own.
    #[arg(long, env = "SIGN_UP_URL", value_parser = http_url)]
    pub sign_up_url: Option<String>,

    /// Where the account pages' "Sign in" link leads (the operator's
    /// application, whose sign-in starts an authorization); unset, the pages
    /// tell the user to sign in from their application. The suite has no
    /// sign-in page of its own outside an authorization request.
    #[arg(long, env = "SIGN_IN_URL", value_parser = http_url)]
    pub sign_in_url: Option<String>,
}

/// `#rrggbb`, nothing else: it is written into the stylesheet.
fn color(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!("{value:?} is not a #rrggbb colour"))
    }
}

/// An absolute `https://` (or `http://`) URL.
fn http_url(value: &str) -> Result<String, String> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not an http(s) URL"))
    }
}

/// The branding, loaded.
#[derive(Debug, Clone)]
pub struct Branding {
    pub product: String,
    /// The stylesheet served, colour first.
    pub stylesheet: bytes::Bytes,
    /// The logo and its content type.
    pub logo: Option<(bytes::Bytes, &'static str)>,
    pub sign_up_url: Option<String>,
    /// The account pages' "Sign in" link.
    pub sign_in_url: Option<String>,
}

impl Branding {
    pub fn load(args: &BrandingArgs) -> Result<Self, OidcError> {
        let sheet = match &args.branding_stylesheet_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| OidcError::Branding("BRANDING_STYLESHEET_FILE", e.to_string()))?,
            None => STYLESHEET.to_owned(),
        };
        let stylesheet = format!(
            ":root {{ --suite-primary: {}; }}\n{sheet}",
            args.branding_primary_color
        );
        let logo = match &args.branding_logo_file {
            Some(path) => {
                let kind = match path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("png") => "image/png",
                    Some("svg") => "image/svg+xml",
                    Some("jpg" | "jpeg") => "image/jpeg",
                    Some("webp") => "image/webp",
                    _ => {
                        return Err(OidcError::Branding(
                            "BRANDING_LOGO_FILE",
                            "not a .png, .svg, .jpg or .webp file".into(),
                        ));
                    }
                };
                let bytes = std::fs::read(path)
                    .map_err(|e| OidcError::Branding("BRANDING_LOGO_FILE", e.to_string()))?;
                Some((bytes::Bytes::from(bytes), kind))
            }
            None => None,
        };
        Ok(Self {
            product: args.branding_product_name.clone(),
            stylesheet: bytes::Bytes::from(stylesheet),
            logo,
            sign_up_url: args.sign_up_url.clone(),
            sign_in_url: args.sign_in_url.clone(),
        })
    }
}

/// `GET /oauth2/assets/suite.css`.
pub async fn stylesheet(State(oidc): State<Shared>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        oidc.branding.stylesheet.clone(),
    )
        .into_response()
}

/// `GET /oauth2/assets/logo`.
pub async fn logo(State(oidc): State<Shared>) -> Response {
    match &oidc.branding.logo {
        Some((bytes, kind)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                // An SVG opened on its own runs nothing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_rrggbb_colour_is_taken() {
        assert_eq!(color("#A0b1C2").as_deref(), Ok("#a0b1c2"));
        for bad in ["red", "#fff", "#12345g", "#123456;}", "123456"] {
            assert!(color(bad).is_err(), "{bad}");
        }
    }
}
