//! The database URL, parsed once at start-up: which database it names, and
//! a form without its password for logs and `Debug`.

use std::{fmt, str::FromStr};

/// The databases the services run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The OpenTelemetry `db.system.name`.
    pub fn system_name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Sqlite => "sqlite",
        }
    }
}

/// `postgres://…`, `postgresql://…` or `sqlite:…`; its password never
/// shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err("must start with postgres://, postgresql:// or sqlite:".into());
        };
        Ok(Self {
            url: url.to_owned(),
            backend,
        })
    }
}

impl DatabaseUrl {
    /// The SQLite file at `path`.
    pub fn sqlite(path: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite:{}", path.display()),
            backend: Backend::Sqlite,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL without its passwords, for logs: the one in the authority
    /// (`user:password@`) and any query parameter that names one
    /// (`?password=`, `sslpassword=`, as sqlx accepts them).
    pub fn redacted(&self) -> String {
        let (url, query) = match self.url.split_once('?') {
            Some((url, query)) => (url, Some(query)),
            None => (self.url.as_str(), None),
        };
        let mut out = match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let creds = &url[s + 3..at];
                let user = creds.split(':').next().unwrap_or_default();
                format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
            }
            _ => url.to_owned(),
        };
        if let Some(query) = query {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_schemes_told_apart() -> Result<(), String> {
        let pg: DatabaseUrl = "postgres://u:secret@h/db".parse()?;
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.to_string(), "postgres://u:***@h/db");
        assert!(!format!("{pg:?}").contains("secret"));
        let lite: DatabaseUrl = "sqlite:data/x.db".parse()?;
        assert_eq!(lite.backend(), Backend::Sqlite);
        assert_eq!(lite.to_string(), "sqlite:data/x.db");
        assert!("mysql://h/db".parse::<DatabaseUrl>().is_err());
        let query: DatabaseUrl =
            "postgres://h/db?user=u&password=s3cret&sslmode=require&sslpassword=k3y".parse()?;
        assert_eq!(
            query.to_string(),
            "postgres://h/db?user=u&password=***&sslmode=require&sslpassword=***"
        );
        Ok(())
    }
}
