//! The enrolment's QR code, embedded in the page as SVG only in the shape
//! the user service draws it (a background rectangle and one path of
//! moves and straight lines): the image is rebuilt from its numbers, so
//! nothing else that an SVG can hold (script, links, styles, foreign
//! content) reaches the page, whatever the service's answer held.

/// The QR code of `svg`, redrawn, or None when it is not one in that shape.
pub fn clean_svg(svg: &str) -> Option<String> {
    let rest = svg.trim();
    let rest = match rest.strip_prefix("<?xml") {
        Some(prolog) => prolog.split_once("?>")?.1,
        None => rest,
    };
    let rest =
        rest.strip_prefix(r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width=""#)?;
    let (width, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"" height=""#)?;
    let (height, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"" viewBox="0 0 "#)?;
    let (view_width, rest) = number(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (view_height, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"" shape-rendering="crispEdges"><rect x="0" y="0" width=""#)?;
    let (rect_width, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"" height=""#)?;
    let (rect_height, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"" fill=""#)?;
    let (background, rest) = colour(rest)?;
    let rest = rest.strip_prefix(r#""/><path fill=""#)?;
    let (foreground, rest) = colour(rest)?;
    let rest = rest.strip_prefix(r#"" d=""#)?;
    let (path, rest) = rest.split_once('"')?;
    if rest.trim_end() != "/></svg>"
        || path.is_empty()
        || !path
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'M' | b'H' | b'V' | b'h' | b'v' | b' '))
        || (view_width, view_height) != (width, height)
        || (rect_width, rect_height) != (width, height)
    {
        return None;
    }
    Some(format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" shape-rendering="crispEdges" role="img" aria-label="QR code for your authenticator app"><rect x="0" y="0" width="{width}" height="{height}" fill="{background}"/><path fill="{foreground}" d="{path}"/></svg>"#
    ))
}

/// A size: one to five digits, at the start of `s`.
fn number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 || end > 5 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// A colour: `#` and three or six hex digits, at the start of `s`.
fn colour(s: &str) -> Option<(&str, &str)> {
    let hex = s.strip_prefix('#')?;
    let end = hex
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(hex.len());
    if end != 3 && end != 6 {
        return None;
    }
    Some((&s[..=end], &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What qrcode's SVG renderer draws.
    fn drawn(path: &str) -> String {
        format!(
            r##"<?xml version="1.0" standalone="yes"?><svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="232" height="232" viewBox="0 0 232 232" shape-rendering="crispEdges"><rect x="0" y="0" width="232" height="232" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
        )
    }

    #[test]
    fn the_services_qr_code_is_redrawn_as_it_was() {
        let clean = clean_svg(&drawn("M32 32h8v8H32V32M48 32h8v8H48V32")).expect("a QR code");
        assert!(clean.starts_with("<svg "), "{clean}");
        assert!(clean.contains(r#"d="M32 32h8v8H32V32M48 32h8v8H48V32""#));
        assert!(clean.contains(r##"fill="#fff""##) && clean.contains(r##"fill="#000""##));
        assert!(clean.contains(r#"role="img""#));
        assert!(!clean.contains("<?xml"));
    }

    #[test]
    fn anything_else_in_an_svg_is_no_qr_code() {
        for bad in [
            String::new(),
            "<svg><script>alert(1)</script></svg>".to_owned(),
            drawn(r#"M0 0"/><script>alert(1)</script><path d="M0 0"#),
            drawn("M0 0 L5 5"),
            drawn(""),
            drawn("M0 0h1").replace("#fff", "url(#x)"),
            drawn("M0 0h1").replace(
                r#"width="232" height="232" fill"#,
                r#"width="1" height="232" fill"#,
            ),
            drawn("M0 0h1").replace("</svg>", "</svg><img src=x>"),
            drawn("M0 0h1").replace(r#"version="1.1" "#, r#"version="1.1" onload="x" "#),
        ] {
            assert_eq!(clean_svg(&bad), None, "{bad}");
        }
    }
}
