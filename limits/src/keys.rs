//! Canonical keys for the sign-in rules, and the digest every backend stores instead of the raw
//! key.

use std::net::IpAddr;

/// The SHA-256 digest of a key: fixed size whatever the input, so memory per key and Redis key
/// length stay bounded and no input can reach the Redis key space.
pub(crate) fn digest(key: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The key for per-IP rules.
///
/// An IPv4 address (also when written as an IPv4-mapped IPv6 address) is used whole. An IPv6
/// address is reduced to its /64 prefix: one subscriber or host usually controls a whole /64, so
/// limiting single IPv6 addresses would let a client rotate through 2^64 fresh budgets.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The key for per-account rules: the institution code and the user ID as typed in the sign-in
/// form (after the same normalisation the account lookup applies).
///
/// Attempts against accounts that do not exist are counted the same way, so the limiter reveals
/// nothing about which accounts exist. The institution code is length-prefixed, so no pair of
/// inputs can produce the key of another pair.
pub fn account_key(institution_code: &str, user_id: &str) -> String {
    format!("{}:{institution_code}:{user_id}", institution_code.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_kept_whole() {
        assert_eq!(ip_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(ip_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn ipv6_is_reduced_to_its_64_prefix() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ip_key("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let other = ip_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    #[test]
    fn account_keys_do_not_collide() {
        assert_ne!(account_key("1:2", "3"), account_key("1", "2:3"));
        assert_eq!(account_key("1310000001", "u1"), "10:1310000001:u1");
    }

    #[test]
    fn digest_is_fixed_size_sha256() {
        assert_eq!(
            hex::encode(digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest(&"x".repeat(100_000)).len(), 32);
    }
}
