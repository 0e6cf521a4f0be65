//! The little URL handling this mapper needs: split an `http(s)` URL into the parts that
//! `wasi:http` wants, and build the listing URL with a percent-encoded user name.

use std::fmt;

use interstate_mapper_sdk::http::percent_encode;

/// The scheme of an upstream URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// An absolute `http` or `https` URL, split for `wasi:http`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Url {
    /// Parses `scheme://authority[/path][?query]`. User info and fragments are refused: the
    /// first would put credentials into settings, the second is never sent anyway.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("expected an http:// or https:// URL, got {text:?}"));
        };
        if text.contains('#') {
            return Err(format!("a URL with a fragment is not supported: {text:?}"));
        }
        if text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!(
                "a URL must not contain spaces or control characters: {text:?}"
            ));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("the URL has no host: {text:?}"));
        }
        if authority.contains('@') {
            return Err(format!(
                "credentials in the URL are not supported: {}",
                redact_userinfo(text)
            ));
        }
        let path_with_query = match tail.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{tail}"),
            Some(_) => tail.to_owned(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The host without the port, as the operator lists it in `mapper.allowed_hosts`.
    pub fn host(&self) -> &str {
        if self.authority.starts_with('[') {
            return self
                .authority
                .split_inclusive(']')
                .next()
                .unwrap_or(&self.authority);
        }
        self.authority
            .rsplit_once(':')
            .map_or(self.authority.as_str(), |(host, _)| host)
    }

    /// The request target: the path and the query, starting with `/`.
    pub fn path_with_query(&self) -> &str {
        &self.path_with_query
    }

    /// True when the URL has a query string.
    pub fn has_query(&self) -> bool {
        self.path_with_query.contains('?')
    }

    /// The same URL with trailing `/` removed from the path, so that appending `/user=...`
    /// never yields `//`.
    pub fn without_trailing_slash(mut self) -> Self {
        let trimmed = self.path_with_query.trim_end_matches('/').len();
        self.path_with_query.truncate(trimmed);
        self
    }

    /// ILS's listing URL: `{base}/user={username}`, with the user name percent-encoded.
    pub fn user_listing(&self, username: &str) -> Self {
        let base = self.path_with_query.trim_end_matches('/');
        Self {
            scheme: self.scheme,
            authority: self.authority.clone(),
            path_with_query: format!("{base}/user={}", percent_encode(username)),
        }
    }
}

impl Url {
    /// A service endpoint beside the listing: `{base}/{name}` (`name` is a fixed path segment
    /// such as `operate`).
    pub fn endpoint(&self, name: &str) -> Self {
        let base = self.path_with_query.trim_end_matches('/');
        Self {
            scheme: self.scheme,
            authority: self.authority.clone(),
            path_with_query: format!("{base}/{name}"),
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let path = if self.path_with_query == "/" {
            ""
        } else {
            &self.path_with_query
        };
        write!(f, "{scheme}://{}{path}", self.authority)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn redact_userinfo(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}***{}", &text[..start + 3], &text[at..])
        }
        _ => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_url_for_wasi_http() {
        let url = Url::parse("https://hosts.example.com:8443/api/v1?x=1").unwrap();
        assert_eq!(url.scheme(), Scheme::Https);
        assert_eq!(url.authority(), "hosts.example.com:8443");
        assert_eq!(url.host(), "hosts.example.com");
        assert_eq!(url.path_with_query(), "/api/v1?x=1");
        assert!(url.has_query());

        let bare = Url::parse("HTTP://127.0.0.1:9000").unwrap();
        assert_eq!(bare.scheme(), Scheme::Http);
        assert_eq!(bare.path_with_query(), "/");
        assert_eq!(bare.host(), "127.0.0.1");
        assert_eq!(bare.to_string(), "http://127.0.0.1:9000");

        let query_only = Url::parse("http://h?a=b").unwrap();
        assert_eq!(query_only.path_with_query(), "/?a=b");

        let v6 = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(v6.host(), "[::1]");
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("hosts.example.com/api").is_err());
        assert!(Url::parse("http:///path").is_err());
        assert!(Url::parse("http://h/a#frag").is_err());
        assert!(Url::parse("http://h/a b").is_err());
        let err = Url::parse("https://bob:secret@h/").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn builds_the_endpoints_beside_the_listing() {
        let base = Url::parse("https://hosts.example.com/api/")
            .unwrap()
            .without_trailing_slash();
        assert_eq!(
            base.endpoint("operate").to_string(),
            "https://hosts.example.com/api/operate"
        );
        let root = Url::parse("http://127.0.0.1:8080")
            .unwrap()
            .without_trailing_slash();
        assert_eq!(
            root.endpoint("change-password").path_with_query(),
            "/change-password"
        );
    }

    #[test]
    fn builds_the_listing_url_with_an_encoded_user() {
        let base = Url::parse("http://127.0.0.1:8080/api/")
            .unwrap()
            .without_trailing_slash();
        assert_eq!(
            base.user_listing("alice").to_string(),
            "http://127.0.0.1:8080/api/user=alice"
        );
        assert_eq!(
            base.user_listing("o'brien/../x?y#z é").path_with_query(),
            "/api/user=o%27brien%2F..%2Fx%3Fy%23z%20%C3%A9"
        );
        let root = Url::parse("http://h").unwrap().without_trailing_slash();
        assert_eq!(
            root.user_listing("a.b-c_d~").path_with_query(),
            "/user=a.b-c_d~"
        );
    }
}
