//! What an integrator registers: the application's identity, name, server addresses and URLs.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use url::{Host, Url};
use uuid::Uuid;

/// The public identifier of an application, a UUID as in the guide's examples.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Uuid);

/// Why a string is not a [`ClientId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client_id is not a UUID")]
pub struct ClientIdError;

impl ClientId {
    /// A fresh random identifier (UUID v4).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the hyphenated form; other UUID spellings are refused so that one application
    /// has one spelling everywhere (URLs, logs, signatures).
    pub fn parse(raw: &str) -> Result<Self, ClientIdError> {
        let raw = raw.trim();
        if raw.len() != 36 {
            return Err(ClientIdError);
        }
        Uuid::parse_str(raw).map(Self).map_err(|_| ClientIdError)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

/// The application's name, shown to users on the sign-in page and used as the TOTP issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationName(String);

/// Why a string is not an [`ApplicationName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationNameError {
    /// Nothing but white space.
    #[error("name is empty")]
    Empty,
    /// Longer than 100 characters.
    #[error("name is longer than 100 characters")]
    TooLong,
    /// Control characters, or a colon (it separates issuer and account in a TOTP label).
    #[error("name contains a control character or a colon")]
    Forbidden,
}

impl ApplicationName {
    /// Parses a name as typed by an integrator.
    pub fn parse(raw: &str) -> Result<Self, ApplicationNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ApplicationNameError::Empty);
        }
        if name.chars().count() > 100 {
            return Err(ApplicationNameError::TooLong);
        }
        if name.chars().any(|c| c.is_control() || c == ':') {
            return Err(ApplicationNameError::Forbidden);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server addresses an application's backend calls from (the guide's "IP whitelist").
///
/// Never empty: an application that no address may use would be a registration mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowList(Vec<IpNet>);

/// Why a list of addresses is not an [`IpAllowList`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpAllowListError {
    /// No address at all.
    #[error("at least one IP address or range is required")]
    Empty,
    /// One entry is neither an address nor a CIDR range.
    #[error("{0:?} is not an IP address or CIDR range")]
    Invalid(String),
}

impl IpAllowList {
    /// Parses single addresses (`203.0.113.7`, `2001:db8::1`) and CIDR ranges
    /// (`203.0.113.0/24`, `2001:db8::/32`), IPv4 and IPv6.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, IpAllowListError> {
        let mut nets = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| IpAllowListError::Invalid(entry.to_owned()))?;
            // `10.0.0.5/24` is almost certainly meant as the range it lies in.
            let net = net.trunc();
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.is_empty() {
            return Err(IpAllowListError::Empty);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` lies in one of the ranges. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`,
    /// as a dual-stack listener reports IPv4 peers) count as their IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The ranges, in their canonical text form (`a.b.c.d/n`).
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(ToString::to_string)
    }
}

/// Why a string is not a URL the service will call or send browsers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute URL.
    #[error("{0:?} is not an absolute URL")]
    Malformed(String),
    /// Not https, and not http to a loopback host either.
    #[error("{0:?} must use https (http is allowed only for localhost and loopback addresses)")]
    Insecure(String),
    /// Carries a user name or password, or a fragment.
    #[error("{0:?} must not contain credentials or a #fragment")]
    Forbidden(String),
}

/// Parses a URL that something sensitive is sent to: https only, except plain http to a
/// loopback host for development; no credentials; no fragment. The service's callback and
/// redirect URLs follow this rule, and so does the service's own URL as the SDK calls it.
pub fn parse_secure_url(raw: &str) -> Result<Url, UrlError> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|_| UrlError::Malformed(raw.to_owned()))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(UrlError::Malformed(raw.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(UrlError::Forbidden(raw.to_owned()));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(UrlError::Insecure(raw.to_owned())),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => crate::address::is_localhost(domain),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The application's server-to-server callback URL (guide, API reference 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(Url);

impl CallbackUrl {
    /// Parses and checks a callback URL.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        parse_secure_url(raw).map(Self)
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A registered redirect URI: where the sign-in page may send the browser back to.
///
/// Registered URIs are compared exactly, after URL normalisation (RFC 9700 §4.1.3): no
/// wildcards, no prefix matching, so the page can never be made into an open redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(Url);

impl RedirectUri {
    /// Parses and checks a redirect URI.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        parse_secure_url(raw).map(Self)
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The origin (`scheme://host:port`), the target of a popup's `postMessage`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_in_hyphenated_form_only() {
        let id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92").expect("valid");
        assert_eq!(id.to_string(), "84c2ad6c-62eb-4217-8f46-a66852e6fe92");
        for bad in [
            "",
            "84c2ad6c62eb42178f46a66852e6fe92",
            "not-a-uuid",
            "{84c2ad6c-62eb-4217-8f46-a66852e6fe92}",
        ] {
            assert_eq!(ClientId::parse(bad), Err(ClientIdError), "{bad:?}");
        }
    }

    #[test]
    fn allow_lists_take_addresses_and_ranges_of_both_families() {
        let list = IpAllowList::parse(["203.0.113.7", "10.1.0.0/16", "2001:db8::/32", " ::1 "])
            .expect("valid");
        let allowed = [
            "203.0.113.7",
            "10.1.200.3",
            "2001:db8:ffff::1",
            "::1",
            "::ffff:10.1.2.3",
        ];
        for ip in allowed {
            assert!(
                list.allows(ip.parse().expect("ip")),
                "{ip} should be allowed"
            );
        }
        for ip in ["203.0.113.8", "10.2.0.1", "2001:db9::1", "127.0.0.1"] {
            assert!(
                !list.allows(ip.parse().expect("ip")),
                "{ip} should be refused"
            );
        }
    }

    #[test]
    fn allow_lists_refuse_garbage_and_emptiness() {
        assert_eq!(IpAllowList::parse(["", "  "]), Err(IpAllowListError::Empty));
        assert_eq!(
            IpAllowList::parse(["10.0.0.0/33"]),
            Err(IpAllowListError::Invalid("10.0.0.0/33".into()))
        );
        assert!(IpAllowList::parse(["example.com"]).is_err());
    }

    #[test]
    fn urls_must_be_https_except_for_loopback_hosts() {
        for ok in [
            "https://portal.example.com/callback",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
        assert!(matches!(
            CallbackUrl::parse("http://portal.example.com/cb"),
            Err(UrlError::Insecure(_))
        ));
        assert!(matches!(
            CallbackUrl::parse("ftp://localhost/cb"),
            Err(UrlError::Insecure(_))
        ));
        assert!(matches!(
            CallbackUrl::parse("/callback"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            CallbackUrl::parse("https://u:p@example.com/"),
            Err(UrlError::Forbidden(_))
        ));
        assert!(matches!(
            RedirectUri::parse("https://example.com/#x"),
            Err(UrlError::Forbidden(_))
        ));
    }

    #[test]
    fn redirect_uris_compare_exactly_after_normalisation() {
        let registered =
            RedirectUri::parse("https://Portal.Example.com:443/callback").expect("valid");
        assert_eq!(
            registered,
            RedirectUri::parse("https://portal.example.com/callback").expect("valid")
        );
        for other in [
            "https://portal.example.com/callback/",
            "https://portal.example.com/callback?x=1",
            "https://portal.example.com:8443/callback",
            "https://evil.example.com/callback",
        ] {
            assert_ne!(
                registered,
                RedirectUri::parse(other).expect("valid"),
                "{other}"
            );
        }
        assert_eq!(registered.origin(), "https://portal.example.com");
    }
}
