//! Just enough URL parsing for a health-check target (an `http` check, a quorum witness,
//! etcd's endpoint): scheme, authority, path and query.

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https` rather than `http`.
    pub https: bool,
    /// `host[:port]` as written (IPv6 in brackets).
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Url {
    /// Parse `http[s]://authority[/path[?query]]`; fragments are dropped.
    pub fn parse(s: &str) -> Result<Url, &'static str> {
        let (scheme, rest) = s.split_once("://").ok_or("expected http://HOST/PATH")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err("scheme must be http or https"),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err("no host");
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not supported");
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Url {
            https,
            authority: authority.to_string(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let u = Url::parse("http://127.0.0.1:8080/health?x=1#frag").expect("url");
        assert_eq!(
            u,
            Url {
                https: false,
                authority: "127.0.0.1:8080".into(),
                path: "/health?x=1".into()
            }
        );
        let u = Url::parse("HTTPS://[2001:db8::1]").expect("url");
        assert!(u.https);
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("[2001:db8::1]", "/")
        );
        assert_eq!(Url::parse("http://h?q").expect("url").path, "/?q");
    }

    #[test]
    fn rejects_bad() {
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("127.0.0.1/").is_err());
        assert!(Url::parse("http:///x").is_err());
        assert!(Url::parse("http://u:p@h/").is_err());
    }
}
