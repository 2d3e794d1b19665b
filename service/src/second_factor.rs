//! The second factor (SPEC §7): sending one-time codes through a [`delivery::Deliver`], checking
//! them, enrolling and changing destinations, and the forgotten-password reset that proves
//! control of the registered destination.
//!
//! Rules come from `policies` (`otp::OtpPolicy::can_send` / `can_verify`, `lockout`, the phone and
//! e-mail parsers); this module reads the counters from the store, asks, and acts.
//!
//! Invariants:
//! - A code is stored only as an HMAC-SHA-256 over the challenge's ID and the code, under a key
//!   derived from the key-encryption key: six digits are a million possibilities, so an unkeyed
//!   hash of a stolen row would be reversed at once. Codes never appear in audit rows, logs or
//!   errors.
//! - A wrong code counts toward the account lockout (`store.record_failure`) and toward the
//!   code's own tries; a delivery failure counts toward nothing.
//! - A challenge row is written only after its delivery succeeded, so that a provider outage
//!   neither consumes the daily caps nor starts the resend cooldown. Two sends racing past the
//!   cap check at the same instant may both be delivered; the per-account cooldown keeps that
//!   to the sends of one moment.

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use delivery::{Deliver, DeliveryError, Locale, Message};
use policies::lockout::{self, FailureDecision, LockState, LockoutPolicy};
use policies::otp::{OtpPolicy, SendRefusal, VerifyRefusal};
use policies::usage::{JST, jst_date};
use policies::{Cidr, EmailAddress, InstitutionCode, PhoneChannel, PhoneNumber, Violation};
use store::{
    Account, AuditResult, Institution, NewAuditEvent, OtpChallenge, OtpPurpose, SecondFactor,
    SecondFactorMethod, Store,
};
use time::{OffsetDateTime, Time};
use uuid::Uuid;

use crate::authentication::{Authenticator, RequestContext};
use crate::{Clock, ServiceError};

const DIGEST_PREFIX: &str = "$otp-hmac-sha256$v=1$";

/// A destination a code can be sent to: a method and its normalised address (an e-mail address,
/// or an E.164 number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub method: SecondFactorMethod,
    pub address: String,
}

impl Destination {
    /// Parses what a person typed for `method`: an e-mail address, or a Japanese phone number
    /// (SMS only to mobiles). Refusals say what is wrong in Japanese and English.
    pub fn parse(method: SecondFactorMethod, email: &str, phone: &str) -> Result<Self, Violation> {
        let address = match method {
            SecondFactorMethod::Email => EmailAddress::parse(email)?.to_string(),
            SecondFactorMethod::Sms | SecondFactorMethod::Voice => {
                let number = PhoneNumber::parse(phone)?;
                let channel = if method == SecondFactorMethod::Sms {
                    PhoneChannel::Sms
                } else {
                    PhoneChannel::Voice
                };
                number.check_for(channel)?;
                number.as_e164().to_owned()
            }
        };
        Ok(Destination { method, address })
    }

    /// The account's verified destination, if it has one. An admin-registered first destination
    /// is stored as verified (SPEC §7) and counts.
    pub fn registered(account: &Account) -> Option<Destination> {
        let factor = account.second_factor.as_ref().filter(|f| f.verified)?;
        let address = match factor.method {
            SecondFactorMethod::Email => factor.email.clone()?,
            SecondFactorMethod::Sms | SecondFactorMethod::Voice => factor.phone.clone()?,
        };
        Some(Destination {
            method: factor.method,
            address,
        })
    }

    /// The destination as shown on pages: `090-****-5678`, `t***@example.jp`.
    pub fn masked(&self) -> String {
        mask(self.method, &self.address)
    }

    /// The record to store once a code sent here was confirmed. The other address of the
    /// account's previous second factor is kept (an e-mail stays when the phone is chosen).
    pub fn to_second_factor(&self, previous: Option<&SecondFactor>) -> SecondFactor {
        let (mut email, mut phone) =
            previous.map_or((None, None), |p| (p.email.clone(), p.phone.clone()));
        match self.method {
            SecondFactorMethod::Email => email = Some(self.address.clone()),
            SecondFactorMethod::Sms | SecondFactorMethod::Voice => {
                phone = Some(self.address.clone())
            }
        }
        SecondFactor {
            method: self.method,
            email,
            phone,
            verified: true,
        }
    }
}

/// Masks an address for display: the first character of an e-mail's local part and its domain;
/// the first three and last four digits of a phone number in national form.
pub fn mask(method: SecondFactorMethod, address: &str) -> String {
    match method {
        SecondFactorMethod::Email => match address.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        SecondFactorMethod::Sms | SecondFactorMethod::Voice => {
            let national = match address.strip_prefix("+81") {
                Some(rest) => format!("0{rest}"),
                None => address.to_owned(),
            };
            let digits: Vec<char> = national.chars().collect();
            if digits.len() < 8 {
                return "****".into();
            }
            let head: String = digits[..3].iter().collect();
            let tail: String = digits[digits.len() - 4..].iter().collect();
            format!("{head}-{}-{tail}", "*".repeat(digits.len() - 7))
        }
    }
}

/// A code on its way: the challenge to quote when checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub challenge_id: Uuid,
    pub expires_at: OffsetDateTime,
}

/// Why no code was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The resend cooldown or a daily cap: try later (`retry_after`).
    #[error("{0}")]
    Refused(SendRefusal),
    /// The provider refused the destination or is unavailable. Audited; nothing counted.
    #[error("delivery failed: {0}")]
    Delivery(DeliveryError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<store::StoreError> for SendError {
    fn from(e: store::StoreError) -> Self {
        SendError::Service(e.into())
    }
}

/// The verdict on an entered code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code, still valid and unused (not yet spent: see [`SecondFactorService::consume`]).
    Valid(Box<OtpChallenge>),
    /// Wrong code (or not a code at all). `locked` when this failure locked the account.
    Wrong { locked: bool },
    /// The code's lifetime or its tries are used up: a new code is needed.
    Refused(VerifyRefusal),
    /// The account is locked, disabled or gone; say nothing more.
    AccountUnavailable,
    /// No such challenge for this account and purpose, or it was already used.
    Stale,
}

/// A forgotten-password request as the page carries it. For an unknown account both IDs are
/// random, so the sealed form does not reveal whether the account exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetTicket {
    pub account_id: Uuid,
    pub challenge_id: Uuid,
}

/// The outcome of a forgotten-password reset.
#[derive(Debug)]
pub enum ResetOutcome {
    Done,
    /// The code did not check out (wrong, expired, unknown account: one answer).
    BadCode,
    /// The new password broke the policy; the code stays valid for another attempt.
    Invalid(Vec<Violation>),
}

/// The second-factor use cases. Cheap to clone.
#[derive(Clone)]
pub struct SecondFactorService {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub delivery: Arc<dyn Deliver>,
    pub policy: OtpPolicy,
    pub trusted_networks: Arc<Vec<Cidr>>,
    /// The deployment's lockout profile; an institution may set its own threshold.
    pub lockout: LockoutPolicy,
    key: hmac::Key,
}

impl std::fmt::Debug for SecondFactorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorService")
            .field("policy", &self.policy)
            .field("trusted_networks", &self.trusted_networks)
            .finish_non_exhaustive()
    }
}

impl SecondFactorService {
    /// Derives the code digest key from the key-encryption key.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        delivery: Arc<dyn Deliver>,
        policy: OtpPolicy,
        trusted_networks: Vec<Cidr>,
        lockout: LockoutPolicy,
        kek: &[u8],
    ) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, kek);
        let derived = hmac::sign(&root, b"sekimori/otp-code/v1");
        Self {
            store,
            clock,
            delivery,
            policy,
            trusted_networks: Arc::new(trusted_networks),
            lockout,
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// Whether this sign-in needs a second factor (SPEC §7), by `policies::network`.
    pub fn required(
        &self,
        account: &Account,
        peer: Option<IpAddr>,
        institution: Option<&Institution>,
    ) -> bool {
        policies::second_factor_required(
            account.account_type,
            peer,
            institution.is_some_and(|i| i.settings.second_factor_everywhere),
            &self.trusted_networks,
        )
    }

    fn digest(&self, challenge_id: Uuid, code: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(challenge_id.as_bytes());
        ctx.update(code.as_bytes());
        format!(
            "{DIGEST_PREFIX}{}",
            STANDARD_NO_PAD.encode(ctx.sign().as_ref())
        )
    }

    fn digest_matches(&self, challenge_id: Uuid, code: &str, stored: &str) -> bool {
        let Some(tag) = stored
            .strip_prefix(DIGEST_PREFIX)
            .and_then(|t| STANDARD_NO_PAD.decode(t).ok())
        else {
            return false;
        };
        let mut message = challenge_id.as_bytes().to_vec();
        message.extend_from_slice(code.as_bytes());
        hmac::verify(&self.key, &message, &tag).is_ok()
    }

    /// Sends a new code to `destination` for `purpose`, if the cooldown and the daily caps
    /// allow. The send, a refusal and a delivery failure are each audited (without the code).
    pub async fn send(
        &self,
        account: &Account,
        purpose: OtpPurpose,
        destination: &Destination,
        locale: Locale,
        ctx: &RequestContext,
    ) -> Result<Sent, SendError> {
        self.send_as(Uuid::new_v4(), account, purpose, destination, locale, ctx)
            .await
    }

    async fn send_as(
        &self,
        challenge_id: Uuid,
        account: &Account,
        purpose: OtpPurpose,
        destination: &Destination,
        locale: Locale,
        ctx: &RequestContext,
    ) -> Result<Sent, SendError> {
        let now = self.clock.now();
        let day_start = jst_date(now).with_time(Time::MIDNIGHT).assume_offset(JST);
        let stats = self
            .store
            .otp_send_stats(account.id, &destination.address, day_start)
            .await?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        if let Err(refusal) = self.policy.can_send(
            stats.last_sent_at,
            count(stats.sent_by_account),
            count(stats.sent_to_destination),
            now,
        ) {
            self.audit(
                account,
                "second_factor.send_refused",
                AuditResult::Failure,
                format!("{} {}", purpose.as_str(), refusal.rule()),
                ctx,
            )
            .await?;
            return Err(SendError::Refused(refusal));
        }
        let code = self.policy.generate_code(&mut rand::rng());
        let message = Message::new(
            destination.method,
            destination.address.clone(),
            code.clone(),
            locale,
        )
        .with_lifetime(self.policy.lifetime);
        if let Err(err) = self.delivery.deliver(&message).await {
            // The error is built from provider statuses only, never from the message.
            let kind = if err.is_retryable() {
                "unavailable"
            } else {
                "rejected"
            };
            self.audit(
                account,
                "second_factor.delivery_failure",
                AuditResult::Failure,
                format!(
                    "{} {} {kind}: {}",
                    purpose.as_str(),
                    destination.method.as_str(),
                    bounded(&err.to_string(), 200)
                ),
                ctx,
            )
            .await?;
            return Err(SendError::Delivery(err));
        }
        let challenge = OtpChallenge {
            id: challenge_id,
            account_id: account.id,
            purpose,
            method: destination.method,
            destination: destination.address.clone(),
            code_hash: self.digest(challenge_id, &code),
            created_at: now,
            expires_at: now + self.policy.lifetime,
            tries: 0,
            used_at: None,
        };
        let expires_at = challenge.expires_at;
        self.store.create_otp_challenge(challenge).await?;
        self.audit(
            account,
            "second_factor.send",
            AuditResult::Success,
            format!("{} {}", purpose.as_str(), destination.method.as_str()),
            ctx,
        )
        .await?;
        Ok(Sent {
            challenge_id,
            expires_at,
        })
    }

    /// Checks an entered code against challenge `challenge_id`, which must belong to
    /// `account_id` and `purpose`. A wrong code counts toward the code's tries and the account
    /// lockout (locking it at the threshold). A right code is not spent here.
    pub async fn check(
        &self,
        account_id: Uuid,
        challenge_id: Uuid,
        purpose: OtpPurpose,
        entered: &str,
        ctx: &RequestContext,
    ) -> Result<CodeCheck, ServiceError> {
        let Some(account) = self.store.get_account(account_id).await? else {
            return Ok(CodeCheck::Stale);
        };
        let now = self.clock.now();
        let institution = self
            .store
            .get_institution(&account.institution_code)
            .await?;
        let lockout_policy = self.lockout_policy(institution.as_ref());
        if !crate::authentication::may_act(&account, now, &lockout_policy) {
            self.audit(
                &account,
                "second_factor.failure",
                AuditResult::Failure,
                format!("{} account_unavailable", purpose.as_str()),
                ctx,
            )
            .await?;
            return Ok(CodeCheck::AccountUnavailable);
        }
        let challenge = match self.store.get_otp_challenge(challenge_id).await? {
            Some(c)
                if c.account_id == account.id && c.purpose == purpose && c.used_at.is_none() =>
            {
                c
            }
            _ => return Ok(CodeCheck::Stale),
        };
        let tries = u32::try_from(challenge.tries).unwrap_or(u32::MAX);
        if let Err(refusal) = self.policy.can_verify(tries, challenge.created_at, now) {
            self.audit(
                &account,
                "second_factor.failure",
                AuditResult::Failure,
                format!("{} {}", purpose.as_str(), refusal.rule()),
                ctx,
            )
            .await?;
            return Ok(CodeCheck::Refused(refusal));
        }
        let right = match self.policy.parse_code(entered) {
            Ok(code) => self.digest_matches(challenge.id, code.as_str(), &challenge.code_hash),
            Err(_) => false,
        };
        if right {
            return Ok(CodeCheck::Valid(Box::new(challenge)));
        }
        self.store.record_code_try(challenge.id).await?;
        let failures = self.store.record_failure(account.id).await?;
        let decision = lockout::decide_after_failure(
            u32::try_from(failures).unwrap_or(u32::MAX),
            &lockout_policy,
        );
        let locked = decision == FailureDecision::Lock;
        self.audit(
            &account,
            "second_factor.failure",
            AuditResult::Failure,
            format!(
                "{} {}",
                purpose.as_str(),
                if locked {
                    "wrong_code_locked"
                } else {
                    "wrong_code"
                }
            ),
            ctx,
        )
        .await?;
        if locked {
            self.store
                .set_lock(account.id, LockState::Failures, Some(now))
                .await?;
            self.store.delete_sessions_of_account(account.id).await?;
            self.audit(
                &account,
                "account.lock",
                AuditResult::Success,
                "consecutive_failures".into(),
                ctx,
            )
            .await?;
        }
        Ok(CodeCheck::Wrong { locked })
    }

    /// Spends a checked code. False when another request spent it first.
    pub async fn consume(&self, challenge: &OtpChallenge) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .consume_otp_challenge(challenge.id, self.clock.now())
            .await?)
    }

    /// [`check`](Self::check) and, when right, [`consume`](Self::consume) in one go.
    pub async fn verify(
        &self,
        account_id: Uuid,
        challenge_id: Uuid,
        purpose: OtpPurpose,
        entered: &str,
        ctx: &RequestContext,
    ) -> Result<CodeCheck, ServiceError> {
        match self
            .check(account_id, challenge_id, purpose, entered, ctx)
            .await?
        {
            CodeCheck::Valid(challenge) => {
                if self.consume(&challenge).await? {
                    Ok(CodeCheck::Valid(challenge))
                } else {
                    Ok(CodeCheck::Stale)
                }
            }
            other => Ok(other),
        }
    }

    /// Records a sign-in completed by its second factor: the failure count is reset only now,
    /// so wrong codes after a right password keep counting toward the lockout.
    pub async fn sign_in_completed(
        &self,
        account: &Account,
        method: SecondFactorMethod,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.store
            .record_success(account.id, self.clock.now())
            .await?;
        self.audit(
            account,
            "login.success",
            AuditResult::Success,
            format!("second_factor {}", method.as_str()),
            ctx,
        )
        .await
    }

    /// Saves a destination whose code was just confirmed (enrollment or change) as verified.
    pub async fn save_destination(
        &self,
        account: &Account,
        challenge: &OtpChallenge,
        ctx: &RequestContext,
    ) -> Result<SecondFactor, ServiceError> {
        let destination = Destination {
            method: challenge.method,
            address: challenge.destination.clone(),
        };
        let factor = destination.to_second_factor(account.second_factor.as_ref());
        self.store
            .set_second_factor(account.id, factor.clone())
            .await?;
        self.audit(
            account,
            "second_factor.change",
            AuditResult::Success,
            format!(
                "{} {}",
                challenge.purpose.as_str(),
                challenge.method.as_str()
            ),
            ctx,
        )
        .await?;
        Ok(factor)
    }

    /// Starts a forgotten-password reset. When the account exists, is a person's, may sign in
    /// and has a verified destination of `method`, a code is sent to it in the background;
    /// otherwise nothing is sent. Either way the answer looks the same and comes at once, so
    /// neither its content nor its timing tells whether the account exists (delivery time
    /// would). The reason is audited.
    pub async fn request_reset(
        &self,
        institution_code: &str,
        user_id: &str,
        method: Option<SecondFactorMethod>,
        locale: Locale,
        ctx: &RequestContext,
    ) -> Result<ResetTicket, ServiceError> {
        let decoy = ResetTicket {
            account_id: Uuid::new_v4(),
            challenge_id: Uuid::new_v4(),
        };
        let account = match InstitutionCode::parse_for_login(institution_code) {
            Ok(code) => self.store.find_account(&code, user_id).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            self.audit_unknown(institution_code, user_id, ctx).await?;
            return Ok(decoy);
        };
        let now = self.clock.now();
        let institution = self
            .store
            .get_institution(&account.institution_code)
            .await?;
        let locked = account.lock != LockState::None
            && lockout::is_locked(
                account.lock,
                account.locked_at,
                now,
                &self.lockout_policy(institution.as_ref()),
            );
        let destination = Destination::registered(&account).filter(|d| Some(d.method) == method);
        let refusal = if !account.account_type.is_human() {
            Some("machine_account")
        } else if !account.enabled {
            Some("disabled")
        } else if locked {
            Some("locked")
        } else if destination.is_none() {
            Some("no_matching_destination")
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.audit(
                &account,
                "password.forgotten",
                AuditResult::Failure,
                reason.into(),
                ctx,
            )
            .await?;
            return Ok(decoy);
        }
        let Some(destination) = destination else {
            return Ok(decoy);
        };
        self.audit(
            &account,
            "password.forgotten",
            AuditResult::Success,
            format!("code requested by {}", destination.method.as_str()),
            ctx,
        )
        .await?;
        let ticket = ResetTicket {
            account_id: account.id,
            challenge_id: decoy.challenge_id,
        };
        let service = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            // Refusals and failures are audited inside; the page never learns of them.
            if let Err(e) = service
                .send_as(
                    ticket.challenge_id,
                    &account,
                    OtpPurpose::Reset,
                    &destination,
                    locale,
                    &ctx,
                )
                .await
            {
                tracing::info!(error = %e, "forgotten-password code not sent");
            }
        });
        Ok(ticket)
    }

    /// Finishes a forgotten-password reset: the code must be right, then the new password must
    /// pass the policy and the history (through [`Authenticator::change_password`], which also
    /// ends every session). The code is spent only when the password was set.
    pub async fn reset_password(
        &self,
        authenticator: &Authenticator,
        ticket: ResetTicket,
        entered: &str,
        new_password: &str,
        confirmation: &str,
        ctx: &RequestContext,
    ) -> Result<ResetOutcome, ServiceError> {
        let challenge = match self
            .check(
                ticket.account_id,
                ticket.challenge_id,
                OtpPurpose::Reset,
                entered,
                ctx,
            )
            .await?
        {
            CodeCheck::Valid(challenge) => challenge,
            _ => return Ok(ResetOutcome::BadCode),
        };
        match authenticator
            .change_password(
                ticket.account_id,
                None,
                new_password,
                confirmation,
                None,
                ctx,
            )
            .await
        {
            Ok(_) => {}
            Err(ServiceError::Invalid { violations, .. }) => {
                return Ok(ResetOutcome::Invalid(violations));
            }
            Err(e) => return Err(e),
        }
        self.consume(&challenge).await?;
        if let Some(account) = self.store.get_account(ticket.account_id).await? {
            self.audit(
                &account,
                "password.reset_forgotten",
                AuditResult::Success,
                format!("verified by {}", challenge.method.as_str()),
                ctx,
            )
            .await?;
        }
        Ok(ResetOutcome::Done)
    }

    /// The lockout profile for an institution: its own threshold when set.
    pub fn lockout_policy(&self, institution: Option<&Institution>) -> LockoutPolicy {
        let mut policy = self.lockout.clone();
        if let Some(threshold) = institution.and_then(|i| i.settings.lockout_threshold) {
            policy.threshold = threshold;
        }
        policy
    }

    async fn audit(
        &self,
        account: &Account,
        kind: &str,
        result: AuditResult,
        reason: String,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let actor = format!("{}/{}", account.institution_code, account.user_id);
        self.store
            .append_audit(NewAuditEvent {
                at: self.clock.now(),
                kind: kind.into(),
                actor_account_id: Some(account.id),
                actor,
                target_account_id: Some(account.id),
                target: Some(account.user_id.clone()),
                institution_code: Some(account.institution_code.as_str().to_owned()),
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.as_deref().map(|ua| bounded(ua, 256)),
                result,
                reason: Some(reason),
            })
            .await?;
        Ok(())
    }

    async fn audit_unknown(
        &self,
        institution_code: &str,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let printable = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(32)
                .collect::<String>()
        };
        self.store
            .append_audit(NewAuditEvent {
                at: self.clock.now(),
                kind: "password.forgotten".into(),
                actor_account_id: None,
                actor: format!("{}/{}", printable(institution_code), printable(user_id)),
                target_account_id: None,
                target: Some(printable(user_id)),
                institution_code: Some(printable(institution_code)),
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.as_deref().map(|ua| bounded(ua, 256)),
                result: AuditResult::Failure,
                reason: Some("unknown_account".into()),
            })
            .await?;
        Ok(())
    }
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_parsed_per_method_and_masked() {
        let sms = Destination::parse(SecondFactorMethod::Sms, "", "090-1234-5678").unwrap();
        assert_eq!(sms.address, "+819012345678");
        assert_eq!(sms.masked(), "090-****-5678");
        let voice = Destination::parse(SecondFactorMethod::Voice, "", "+81 3-1234-5678").unwrap();
        assert_eq!(voice.address, "+81312345678");
        assert_eq!(voice.masked(), "031-***-5678");
        let err = Destination::parse(SecondFactorMethod::Sms, "", "03-1234-5678").unwrap_err();
        assert_eq!(err.rule, "phone.sms_mobile_only");
        let err = Destination::parse(SecondFactorMethod::Voice, "", "+1 206 555 0100").unwrap_err();
        assert_eq!(err.rule, "phone.country");
        let email = Destination::parse(SecondFactorMethod::Email, "Taro@Example.JP", "").unwrap();
        assert_eq!(email.address, "Taro@example.jp");
        assert_eq!(email.masked(), "T***@example.jp");
    }

    #[test]
    fn a_new_destination_keeps_the_other_address() {
        let previous = SecondFactor {
            method: SecondFactorMethod::Email,
            email: Some("a@example.jp".into()),
            phone: None,
            verified: true,
        };
        let sms = Destination {
            method: SecondFactorMethod::Sms,
            address: "+819012345678".into(),
        };
        let saved = sms.to_second_factor(Some(&previous));
        assert_eq!(saved.method, SecondFactorMethod::Sms);
        assert_eq!(saved.email.as_deref(), Some("a@example.jp"));
        assert_eq!(saved.phone.as_deref(), Some("+819012345678"));
        assert!(saved.verified);
    }
}
