//! `google.api.http` path templates (the `HttpRule` syntax of googleapis'
//! `google/api/http.proto`): parsing, matching request paths, binding variables.

use std::cmp::Reverse;
use std::fmt;

/// How much a `**` counts in [`PathTemplate::specificity`]: it stands for any
/// number of segments, so it must lose against any realistic run of `*`s.
const DEEP_WILDCARD_WEIGHT: usize = 1024;

/// A template that does not follow the grammar; the message names the problem
/// and the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Compared byte for byte with the raw (still percent-encoded) path segment.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments; only ever the last segment.
    DeepWildcard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: String,
    /// The template segments it covers, `start..end`.
    start: usize,
    end: usize,
    /// Covers several segments (or `**`): per http.proto its value keeps `%2F`
    /// encoded, so every '/' in the value is a real segment separator.
    multi_segment: bool,
}

/// A parsed path template such as `/v1/{name=shelves/*/books/*}:publish`.
///
/// Matching rules:
/// - Empty path segments (`//`, a trailing `/`) never match anything.
/// - Literals are compared with the raw path segment; bound values are
///   percent-decoded, and invalid encoding or non-UTF-8 results mean no match.
/// - Colons follow grpc-gateway: only a template with a verb splits the last
///   path segment, at its last ':', and requires the suffix to equal the verb.
///   A template without a verb matches the segment literally, so `/users/{id}`
///   binds `id = "abc:changePassword"` for `/users/abc:changePassword`; the
///   verb counts in [`specificity`](Self::specificity), so the `:changePassword`
///   template is tried first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    raw: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

impl PathTemplate {
    /// Parses `template`, rejecting anything outside the http.proto grammar.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        Self::parse_inner(template).map_err(|problem| {
            TemplateError(format!("invalid path template {template:?}: {problem}"))
        })
    }

    fn parse_inner(template: &str) -> Result<Self, String> {
        let rest = template.strip_prefix('/').ok_or("it must start with '/'")?;
        check_braces(rest)?;
        let (body, verb) = split_verb(rest);
        if let Some(verb) = verb {
            check_verb(verb)?;
        }
        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        for piece in split_top_level(body) {
            let Some(inner) = piece.strip_prefix('{') else {
                segments.push(parse_plain_segment(piece)?);
                continue;
            };
            let inner = inner
                .strip_suffix('}')
                .ok_or("a variable must be a whole segment")?;
            let (field_path, pattern) = match inner.split_once('=') {
                Some((field, pattern)) => (field, Some(pattern)),
                None => (inner, None),
            };
            check_field_path(field_path)?;
            if variables.iter().any(|v| v.field_path == field_path) {
                return Err(format!("variable {field_path:?} appears twice"));
            }
            let start = segments.len();
            match pattern {
                None => segments.push(Segment::Wildcard),
                Some(pattern) => {
                    for s in pattern.split('/') {
                        segments.push(parse_plain_segment(s)?);
                    }
                }
            }
            let end = segments.len();
            let multi_segment = end - start > 1 || segments.last() == Some(&Segment::DeepWildcard);
            variables.push(Variable {
                field_path: field_path.to_owned(),
                start,
                end,
                multi_segment,
            });
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::DeepWildcard)
            && pos + 1 != segments.len()
        {
            return Err("'**' may only be the last segment".into());
        }
        Ok(Self {
            raw: template.to_owned(),
            segments,
            variables,
            verb: verb.map(str::to_owned),
        })
    }

    /// Matches a request path (already without query string); returns the bound
    /// variables as (field path, percent-decoded value) in template order, or None.
    ///
    /// Single-segment variables decode everything (`%2F` becomes '/'); variables
    /// over several segments or `**` keep `%2F`/`%2f` as written, as http.proto
    /// specifies. A `**` matching zero segments contributes nothing to its value
    /// (so `{name=**}` may bind "").
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let mut parts: Vec<&str> = rest.split('/').collect();
        if let Some(verb) = &self.verb {
            let last = parts.last_mut()?;
            let (head, tail) = last.rsplit_once(':')?;
            if tail != verb {
                return None;
            }
            *last = head;
        }
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let deep = self.segments.last() == Some(&Segment::DeepWildcard);
        if deep {
            if parts.len() + 1 < self.segments.len() {
                return None;
            }
        } else if parts.len() != self.segments.len() {
            return None;
        }
        for (segment, part) in self.segments.iter().zip(&parts) {
            if let Segment::Literal(literal) = segment
                && literal != part
            {
                return None;
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for var in &self.variables {
            let end = if deep && var.end == self.segments.len() {
                parts.len()
            } else {
                var.end
            };
            let raw = parts.get(var.start..end)?.join("/");
            bound.push((
                var.field_path.clone(),
                crate::contract::percent::decode(&raw, var.multi_segment)?,
            ));
        }
        Some(bound)
    }

    /// The template as written (for error messages / OpenAPI), e.g. "/api/v1/users/{user.id}".
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The template as an OpenAPI path: variables without their patterns
    /// (`/v1/{name=shelves/*}` → `/v1/{name}`).
    pub fn openapi_path(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        let (mut in_variable, mut in_pattern) = (false, false);
        for c in self.raw.chars() {
            match c {
                '{' => in_variable = true,
                '=' if in_variable => in_pattern = true,
                '}' => (in_variable, in_pattern) = (false, false),
                _ => {}
            }
            if !in_pattern {
                out.push(c);
            }
        }
        out
    }

    /// The field paths of its variables, in template order, e.g. ["user.id"].
    pub fn variables(&self) -> Vec<String> {
        self.variables
            .iter()
            .map(|v| v.field_path.clone())
            .collect()
    }

    /// The custom verb, if any (e.g. Some("changePassword")).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// Ordering key for when several templates match: greater is more specific,
    /// so sort by `Reverse(specificity())` and take the first match.
    ///
    /// First the number of literal segments (the verb counts as one, so
    /// `/users/{id}:cancel` beats `/users/{id}` and `/users/me` beats
    /// `/users/{id}`), then fewer wildcards (`*` weighs 1, `**` weighs
    /// [`DEEP_WILDCARD_WEIGHT`] because it may stand for any number of segments).
    pub fn specificity(&self) -> (usize, Reverse<usize>) {
        let mut literals = usize::from(self.verb.is_some());
        let mut wildcards = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(_) => literals += 1,
                Segment::Wildcard => wildcards += 1,
                Segment::DeepWildcard => wildcards += DEEP_WILDCARD_WEIGHT,
            }
        }
        (literals, Reverse(wildcards))
    }
}

/// Braces must pair up, one level deep (a variable may not contain another).
fn check_braces(s: &str) -> Result<(), String> {
    let mut open = false;
    for c in s.chars() {
        match c {
            '{' if open => return Err("nested variables are not allowed".into()),
            '{' => open = true,
            '}' if !open => return Err("unbalanced braces: '}' without '{'".into()),
            '}' => open = false,
            _ => {}
        }
    }
    if open {
        return Err("unbalanced braces: '{' without '}'".into());
    }
    Ok(())
}

/// Splits off the verb: the text after the last ':' outside braces, provided
/// no '/' outside braces follows it (a ':' earlier is part of a literal).
/// Expects balanced braces.
fn split_verb(s: &str) -> (&str, Option<&str>) {
    let mut in_braces = false;
    let mut colon = None;
    for (i, c) in s.char_indices() {
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '/' if !in_braces => colon = None,
            ':' if !in_braces => colon = Some(i),
            _ => {}
        }
    }
    match colon.and_then(|i| Some((s.get(..i)?, s.get(i + 1..)?))) {
        Some((body, verb)) => (body, Some(verb)),
        None => (s, None),
    }
}

fn check_verb(verb: &str) -> Result<(), String> {
    if verb.is_empty() {
        return Err("the verb after ':' is empty".into());
    }
    if verb
        .chars()
        .any(|c| "{}*=".contains(c) || forbidden_in_path(c))
    {
        return Err(format!("invalid verb {verb:?}"));
    }
    Ok(())
}

/// Splits on '/' outside braces. Expects balanced braces.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut in_braces = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '/' if !in_braces => {
                pieces.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(s.get(start..).unwrap_or_default());
    pieces
}

/// `*`, `**` or a literal (anything that could appear raw in a request path).
fn parse_plain_segment(s: &str) -> Result<Segment, String> {
    match s {
        "" => Err("empty segment".into()),
        "*" => Ok(Segment::Wildcard),
        "**" => Ok(Segment::DeepWildcard),
        _ if s.contains('*') => Err(format!("'*' and '**' must be whole segments, not {s:?}")),
        _ if s.contains(['{', '}']) => Err("a variable must be a whole segment".into()),
        _ if s.contains('=') => Err(format!(
            "'=' is only allowed after a variable's field path, not in {s:?}"
        )),
        _ if s.chars().any(forbidden_in_path) => Err(format!("invalid character in literal {s:?}")),
        _ => Ok(Segment::Literal(s.to_owned())),
    }
}

/// Characters a raw request path cannot contain, so a literal with them could never match.
fn forbidden_in_path(c: char) -> bool {
    c == '?' || c == '#' || c.is_whitespace() || c.is_control()
}

/// `IDENT { "." IDENT }` with `IDENT = [A-Za-z_][A-Za-z0-9_]*`.
fn check_field_path(field_path: &str) -> Result<(), String> {
    if field_path.is_empty() {
        return Err("empty field path in variable".into());
    }
    let ident = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !field_path.split('.').all(ident) {
        return Err(format!(
            "invalid field path {field_path:?}: each part must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
