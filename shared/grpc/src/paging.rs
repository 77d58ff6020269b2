//! `List` paging as the AIP has it (`page_size`, `page_token`,
//! `next_page_token`), on keysets: a page token names the last id a page
//! held, so rows inserted during a walk cause no duplicates or gaps.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

/// The paging of one `List` method.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Marks this method's tokens, so another method's are refused.
    pub token_prefix: &'static str,
    pub default_size: i32,
    pub max_size: i32,
}

/// A page asked for: how many rows, after which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: i32,
    pub after: Option<Uuid>,
}

/// A bad paging field and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingError {
    pub field: &'static str,
    pub description: &'static str,
}

impl Page {
    /// How many rows to fetch: one more than the page tells whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.size) + 1
    }
}

impl Paging {
    pub const fn new(token_prefix: &'static str) -> Self {
        Self {
            token_prefix,
            default_size: 20,
            max_size: 100,
        }
    }

    /// The page a request asks for.
    pub fn page(&self, page_size: i32, page_token: &str) -> Result<Page, PagingError> {
        let size = match page_size {
            n if n < 0 => {
                return Err(PagingError {
                    field: "page_size",
                    description: "must not be negative",
                });
            }
            0 => self.default_size,
            n => n.min(self.max_size),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(self.decode(page_token).ok_or(PagingError {
                field: "page_token",
                description: "is not a token this service issued",
            })?)
        };
        Ok(Page { size, after })
    }

    /// Cuts `rows` (fetched with [`Page::fetch`]) to the page and returns the
    /// `next_page_token` (empty on the last page).
    pub fn finish<T>(&self, page: Page, rows: &mut Vec<T>, id: impl Fn(&T) -> Uuid) -> String {
        let size = usize::try_from(page.size).unwrap_or(0);
        let more = rows.len() > size;
        rows.truncate(size);
        match rows.last() {
            Some(last) if more => self.encode(id(last)),
            _ => String::new(),
        }
    }

    fn encode(&self, after: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{after}", self.token_prefix))
    }

    fn decode(&self, token: &str) -> Option<Uuid> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        Uuid::parse_str(text.strip_prefix(self.token_prefix)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: Paging = Paging::new("u1:");

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(USERS.decode(&USERS.encode(id)), Some(id));
        assert_eq!(USERS.decode("not a token"), None);
        assert_eq!(USERS.decode(&URL_SAFE_NO_PAD.encode("x1:abc")), None);
        assert_eq!(Paging::new("s1:").decode(&USERS.encode(id)), None);
    }

    #[test]
    fn sizes_default_cap_and_refuse_negatives() {
        assert_eq!(USERS.page(0, "").map(|p| p.size), Ok(20));
        assert_eq!(USERS.page(500, "").map(|p| p.size), Ok(100));
        assert_eq!(USERS.page(-1, "").map_err(|e| e.field), Err("page_size"));
        assert_eq!(
            USERS.page(5, "junk").map_err(|e| e.field),
            Err("page_token")
        );
    }

    #[test]
    fn a_full_fetch_gives_a_next_token_and_a_short_one_none() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let page = Page {
            size: 3,
            after: None,
        };
        let mut rows = ids.clone();
        let next = USERS.finish(page, &mut rows, |id| *id);
        assert_eq!(rows.len(), 3);
        assert_eq!(USERS.page(3, &next).map(|p| p.after), Ok(Some(ids[2])));
        let mut short = ids[..2].to_vec();
        assert_eq!(USERS.finish(page, &mut short, |id| *id), "");
    }
}
