//! What throttles count a request's source address as: an IPv4 address alone, an IPv6
//! client's whole /64, which one host usually has to itself and can hop around in. Shared by
//! the console's throttles (sign-in and account registration) and the app's device
//! registration throttle, so that every throttle groups addresses alike.

use std::net::IpAddr;

/// The source group of `source`, as text to key a counter by (`203.0.113.7`,
/// `2001:db8:1:2::/64`); an IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn source_group(source: IpAddr) -> String {
    match source.to_canonical() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => ipnet::Ipv6Net::new(ip, 64)
            .expect("BUG: 64 is a valid IPv6 prefix length")
            .trunc()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_are_grouped_by_their_64_and_mapped_ipv4_is_ipv4() {
        let group = |ip: &str| source_group(ip.parse().expect("ip"));
        assert_eq!(group("203.0.113.7"), "203.0.113.7");
        assert_eq!(group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(group("2001:db8:1:2:aaaa::1"), group("2001:db8:1:2:bbbb::9"));
        assert_ne!(group("2001:db8:1:2::1"), group("2001:db8:1:3::1"));
        assert_eq!(group("::ffff:203.0.113.7"), "203.0.113.7");
    }
}
