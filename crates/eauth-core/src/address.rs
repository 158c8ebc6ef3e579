//! Which hosts are of the public internet: the service calls only those back (the callbacks'
//! rule against server-side request forgery), unless its operator allows private networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Whether `name` is `localhost` or a name under it, which resolve to this machine (RFC 6761),
/// with or without the root's trailing dot.
pub fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `url`'s host is not public whatever it resolves to: an address that is not, or
/// `localhost`. (Other names are checked at each delivery.)
pub fn is_plainly_private(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => is_localhost(name),
        None => false,
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private, shared (CGNAT),
/// link-local, multicast, documentation, benchmarking or reserved, nor such an IPv4 address
/// inside an IPv6 one. By hand: the standard library's `is_global` is not stable yet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64/10
        || ip.is_link_local() // 169.254/16, the cloud metadata address among them
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0/24
        || ip.is_documentation()
        || (a == 198 && (18..20).contains(&b)) // benchmarking, 198.18/15
        || ip.is_multicast()
        || a >= 240) // reserved, and the broadcast address
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // NAT64 (64:ff9b::/96): an IPv4 address in the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => is_public_v4(embedded_v4(high, low)),
        // 6to4 (2002::/16): an IPv4 address in the next 32 bits.
        [0x2002, high, low, ..] => is_public_v4(embedded_v4(high, low)),
        _ => {
            !(ip.is_unspecified()
                || ip.is_loopback()
                || segments[..6] == [0; 6] // IPv4-compatible (deprecated)
                || ip.is_unique_local() // fc00::/7
                || ip.is_unicast_link_local() // fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
                || ip.is_multicast()
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || (segments[0] == 0x2001 && segments[1] == 0) // Teredo, 2001::/32
                || segments[0] == 0x0100 && segments[1..4] == [0; 3]) // discard-only, 100::/64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(address: &str) -> bool {
        is_public(address.parse().expect("an address"))
    }

    #[test]
    fn only_addresses_of_the_public_internet_are_public() {
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(public(address), "{address}");
        }
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "2002:0a00:0001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(!public(address), "{address}");
        }
        // The neighbours of the ranges refused are public.
        for address in [
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(public(address), "{address}");
        }
    }

    #[test]
    fn localhost_and_names_under_it_are_plainly_private_as_are_private_addresses() {
        for url in [
            "http://localhost:3000/cb",
            "https://LOCALHOST./cb",
            "https://app.localhost/cb",
            "https://10.0.0.5/cb",
            "https://[::ffff:192.168.0.1]/cb",
        ] {
            assert!(is_plainly_private(&url.parse().expect("URL")), "{url}");
        }
        for url in [
            "https://portal.example.com/cb",
            "https://notlocalhost/cb",
            "https://localhost.example.com/cb",
            "https://93.184.215.14/cb",
        ] {
            assert!(!is_plainly_private(&url.parse().expect("URL")), "{url}");
        }
    }
}
