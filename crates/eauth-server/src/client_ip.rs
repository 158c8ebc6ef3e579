//! The address an API request comes from, for the application's IP whitelist.
//!
//! `X-Forwarded-For` is written by whoever sends the request, so it is believed only when the
//! direct peer is a configured trusted proxy, and then only up to the first hop that is not
//! one: everything left of that hop could have been written by the client.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use crate::state::AppState;

/// The request's source address, after trusted proxies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .expect("BUG: the server is started with connect info");
        Ok(Self(resolve(peer, &parts.headers, &state.trusted_proxies)))
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client's address given the direct `peer`, the headers and the trusted proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Hops are appended left to right; walk back from the nearest one.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(client, trusted) {
                    break;
                }
            }
            // A malformed hop was written by someone we cannot vouch for: stop at the last
            // address a trusted proxy gave.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().expect("header"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_from_untrusted_peers_are_ignored() {
        let resolved = resolve(ip("198.51.100.9"), &headers(&["203.0.113.7"]), &[]);
        assert_eq!(resolved, ip("198.51.100.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_are_skipped() {
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        // The client wrote "203.0.113.7" itself; the proxy appended the real source.
        let resolved = resolve(
            ip("10.0.0.2"),
            &headers(&["203.0.113.7, 198.51.100.9"]),
            &trusted,
        );
        assert_eq!(resolved, ip("198.51.100.9"));
        // Two trusted proxies in a row.
        let resolved = resolve(
            ip("10.0.0.2"),
            &headers(&["198.51.100.9", "10.0.0.3"]),
            &trusted,
        );
        assert_eq!(resolved, ip("198.51.100.9"));
        // Garbage stops the walk at the last trusted hop.
        let resolved = resolve(
            ip("10.0.0.2"),
            &headers(&["203.0.113.7, garbage"]),
            &trusted,
        );
        assert_eq!(resolved, ip("10.0.0.2"));
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.0.2"), &headers(&[]), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let trusted = ["127.0.0.1/32".parse().expect("net")];
        let resolved = resolve(ip("::ffff:127.0.0.1"), &headers(&["192.0.2.5"]), &trusted);
        assert_eq!(resolved, ip("192.0.2.5"));
    }
}
