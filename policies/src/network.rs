//! Trusted networks and when a second factor is required (SPEC §7, seed 001 作業③: the LGWAN
//! closed network is the example of a network where a password alone suffices).
//!
//! [`Cidr`] parses `192.0.2.0/24`, `2001:db8::/32` or a bare address (a /32 or /128) and matches
//! addresses against it; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
//! listener reports) is matched as the IPv4 address it carries. [`second_factor_required`] is the
//! rule the sign-in flow asks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AccountType;

/// An IPv4 or IPv6 network in CIDR notation. Host bits below the prefix are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX` or a bare address. The message names the problem, not a key.
    pub fn parse(raw: &str) -> Result<Cidr, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an IPv4 or IPv6 network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    format!("{raw:?}: the prefix length must be between 0 and {max}")
                })?
            }
            Some(_) => return Err(format!("{raw:?}: the prefix length must be a number")),
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmap(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// `::ffff:a.b.c.d` is the IPv4 address `a.b.c.d`.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let whole = bits / 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Cidr::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Whether `ip` is inside any of `networks`.
pub fn is_trusted(ip: IpAddr, networks: &[Cidr]) -> bool {
    networks.iter().any(|n| n.contains(ip))
}

/// SPEC §7: machine accounts never get an interactive second factor; human accounts need one
/// when their institution requires it everywhere, or when they sign in from outside the trusted
/// networks. An unknown peer address is treated as untrusted (fail closed).
pub fn second_factor_required(
    account_type: AccountType,
    peer: Option<IpAddr>,
    required_everywhere: bool,
    trusted_networks: &[Cidr],
) -> bool {
    if !account_type.is_human() {
        return false;
    }
    if required_everywhere {
        return true;
    }
    match peer {
        Some(ip) => !is_trusted(ip, trusted_networks),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(network: &str, ip: &str, inside: bool) {
        let cidr = Cidr::parse(network).unwrap_or_else(|e| panic!("{network}: {e}"));
        assert_eq!(
            cidr.contains(ip.parse().unwrap()),
            inside,
            "{ip} in {network}"
        );
    }

    #[test]
    fn matching_table() {
        for (network, ip, inside) in [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.0/24", "192.168.2.0", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            // Host bits are ignored.
            ("10.1.2.3/8", "10.9.9.9", true),
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("127.0.0.0/8", "::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8:1::/47", "2001:db8:1:1::1", true),
            ("2001:db8:1::/47", "2001:db8:2::1", false),
            ("::1", "::1", true),
            ("::/0", "2400:4050::1", true),
            ("::/0", "10.0.0.1", false),
            ("10.0.0.0/8", "2001:db8::1", false),
        ] {
            check(network, ip, inside);
        }
    }

    #[test]
    fn malformed_networks_are_refused() {
        for raw in [
            "",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "example.jp/24",
            "10.0.0.0/０8",
            "10.0.0.0/0008",
        ] {
            assert!(Cidr::parse(raw).is_err(), "{raw:?}");
        }
        assert_eq!(
            Cidr::parse(" 10.0.0.0/8 ").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn serde_round_trip() {
        let nets: Vec<Cidr> = serde_json::from_str(r#"["10.0.0.0/8", "2001:db8::/32"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&nets).unwrap(),
            r#"["10.0.0.0/8","2001:db8::/32"]"#
        );
        assert!(serde_json::from_str::<Vec<Cidr>>(r#"["10.0.0.0/99"]"#).is_err());
    }

    #[test]
    fn who_needs_a_second_factor() {
        let lan = [Cidr::parse("10.0.0.0/8").unwrap()];
        let inside: IpAddr = "10.1.1.1".parse().unwrap();
        let outside: IpAddr = "203.0.113.1".parse().unwrap();
        let human = AccountType::General;
        // (type, peer, everywhere, networks, required)
        type Case<'a> = (AccountType, Option<IpAddr>, bool, &'a [Cidr], bool);
        let cases: &[Case] = &[
            // Empty trusted list (the default): required everywhere for people.
            (human, Some(inside), false, &[], true),
            (human, Some(inside), false, &lan, false),
            (human, Some(outside), false, &lan, true),
            // The institution setting overrides trusted networks.
            (human, Some(inside), true, &lan, true),
            // Unknown peer: fail closed.
            (human, None, false, &lan, true),
            (AccountType::Operator, Some(outside), false, &lan, true),
            (AccountType::Master, Some(inside), false, &lan, false),
            // Machines never.
            (AccountType::WebApi, Some(outside), true, &[], false),
            (AccountType::LinkedApp, None, true, &[], false),
            (AccountType::CardReader, Some(outside), false, &lan, false),
        ];
        for (account_type, peer, everywhere, networks, required) in cases {
            assert_eq!(
                second_factor_required(*account_type, *peer, *everywhere, networks),
                *required,
                "{account_type:?} {peer:?} everywhere={everywhere}"
            );
        }
    }
}
