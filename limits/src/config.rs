//! The `[limits]` configuration section: the rules the IdP enforces, with defaults and bounds.

use std::time::Duration;

use serde::Deserialize;

use crate::Rule;

const MINUTE: Duration = Duration::from_secs(60);

/// Rate limits per minute. Every key is optional; absent keys take the defaults below.
///
/// Each rule allows a burst of its full limit, then one hit every `60 s / limit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Sign-in attempts (password form submissions) per client IP address, IPv6 per /64.
    /// Default 120: a hospital's staff often share one NAT address and sign in together at a shift
    /// change, so this limit is deliberately loose; it stops credential stuffing from one address,
    /// while the per-account limit and the lockout protect each account.
    pub login_per_ip_per_minute: u32,
    /// Sign-in attempts per account (institution code and user ID, whether or not the account
    /// exists). Default 10. The lockout counter is separate: it counts consecutive failures
    /// exactly in the database and locks the account; this limit only slows a burst down.
    pub login_per_account_per_minute: u32,
    /// Token endpoint requests per client ID. Default 6000 (100 a second): a confidential client
    /// often serves a whole hospital, and machine accounts fetch tokens in bursts.
    pub token_per_client_per_minute: u32,
    /// Admin API requests per authenticated caller (account). Default 300.
    pub admin_per_caller_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_per_ip_per_minute: 120,
            login_per_account_per_minute: 10,
            token_per_client_per_minute: 6000,
            admin_per_caller_per_minute: 300,
        }
    }
}

impl Limits {
    /// Checks every value against its bounds; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                "limits.login_per_ip_per_minute",
                self.login_per_ip_per_minute,
                10_000,
            ),
            (
                "limits.login_per_account_per_minute",
                self.login_per_account_per_minute,
                1_000,
            ),
            (
                "limits.token_per_client_per_minute",
                self.token_per_client_per_minute,
                100_000,
            ),
            (
                "limits.admin_per_caller_per_minute",
                self.admin_per_caller_per_minute,
                100_000,
            ),
        ];
        for (key, value, max) in checks {
            if !(1..=max).contains(&value) {
                return Err(format!("{key} must be between 1 and {max}"));
            }
        }
        Ok(())
    }

    /// Sign-in attempts per IP; key with [`crate::ip_key`].
    pub fn login_ip(&self) -> Rule {
        Self::per_minute("login_ip", self.login_per_ip_per_minute)
    }

    /// Sign-in attempts per account; key with [`crate::account_key`].
    pub fn login_account(&self) -> Rule {
        Self::per_minute("login_account", self.login_per_account_per_minute)
    }

    /// Token endpoint requests per client; key with the client ID as sent.
    pub fn token_client(&self) -> Rule {
        Self::per_minute("token_client", self.token_per_client_per_minute)
    }

    /// Admin API requests per caller; key with the caller's account ID.
    pub fn admin_caller(&self) -> Rule {
        Self::per_minute("admin_caller", self.admin_per_caller_per_minute)
    }

    fn per_minute(name: &'static str, limit: u32) -> Rule {
        Rule {
            name,
            limit,
            window: MINUTE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_rules_are_well_formed() {
        let limits = Limits::default();
        assert_eq!(limits.validate(), Ok(()));
        for rule in [
            limits.login_ip(),
            limits.login_account(),
            limits.token_client(),
            limits.admin_caller(),
        ] {
            assert!(rule.check().is_ok(), "{rule:?}");
            assert_eq!(rule.window, MINUTE);
        }
        assert_eq!(limits.login_ip().limit, 120);
        assert_eq!(limits.login_account().limit, 10);
    }

    #[test]
    fn out_of_bounds_values_name_the_key() {
        let check = |limits: Limits, expected: &str| {
            assert_eq!(limits.validate(), Err(expected.to_string()));
        };
        check(
            Limits {
                login_per_ip_per_minute: 0,
                ..Limits::default()
            },
            "limits.login_per_ip_per_minute must be between 1 and 10000",
        );
        check(
            Limits {
                login_per_account_per_minute: 1_001,
                ..Limits::default()
            },
            "limits.login_per_account_per_minute must be between 1 and 1000",
        );
        check(
            Limits {
                token_per_client_per_minute: 0,
                ..Limits::default()
            },
            "limits.token_per_client_per_minute must be between 1 and 100000",
        );
        check(
            Limits {
                admin_per_caller_per_minute: 100_001,
                ..Limits::default()
            },
            "limits.admin_per_caller_per_minute must be between 1 and 100000",
        );
    }

    #[test]
    fn deserializes_partially_and_refuses_unknown_keys() {
        let limits: Limits = serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
            _,
            serde::de::value::Error,
        >::new(
            [("login_per_ip_per_minute", 42u32)].into_iter(),
        ))
        .unwrap();
        assert_eq!(limits.login_per_ip_per_minute, 42);
        assert_eq!(limits.login_per_account_per_minute, 10);

        let unknown: Result<Limits, _> =
            serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
                _,
                serde::de::value::Error,
            >::new(
                [("login_per_ip_per_second", 42u32)].into_iter()
            ));
        let message = unknown.unwrap_err().to_string();
        assert!(message.contains("login_per_ip_per_second"), "{message}");
    }
}
