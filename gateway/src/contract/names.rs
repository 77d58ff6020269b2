//! Field names between the contract's two spellings: proto's snake_case
//! (`display_name`) and the proto3 JSON mapping's lowerCamelCase
//! (`displayName`), which REST clients read and write.

/// `user.display_name` → `user.displayName`: a proto field path as REST
/// clients name it.
pub fn json_field_path(path: &str) -> String {
    path.split('.')
        .map(lower_camel)
        .collect::<Vec<_>>()
        .join(".")
}

/// `displayName` → `display_name`: a JSON field name as the contract spells
/// it (a FieldMask path given in a query).
pub fn proto_field_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn lower_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_spellings_convert_both_ways() {
        assert_eq!(json_field_path("user.display_name"), "user.displayName");
        assert_eq!(json_field_path("new_password"), "newPassword");
        assert_eq!(proto_field_name("displayName"), "display_name");
        assert_eq!(proto_field_name("email"), "email");
    }
}
