//! Signing in with a password: the one place that decides whether an institution code, user ID
//! and password open a session.
//!
//! Two channels share one path: the login pages (people, argon2id passwords, perhaps a second
//! factor) and the `client_credentials` grant of machine accounts (generated secrets under a keyed
//! HMAC). Each channel admits only its own account types (`policies::credential::sign_in_channel`);
//! the other kind fails like an unknown account.
//!
//! Every failure looks the same to the caller's user (one generic message); the real reason goes
//! to the audit log. Timing does not tell them apart either: an unknown institution or account,
//! or an account of the other channel, costs a dummy verification of the channel's own form
//! (argon2id on the pages, HMAC for machines), and the secret of a locked or disabled account is
//! still verified before the refusal.

use std::sync::Arc;

use policies::credential::{self, PasswordState, SignInChannel};
use policies::lockout::{self, FailureDecision, LockState, LockoutPolicy};
use policies::password::{self, PasswordContext, PasswordPolicy};
use policies::usage::{self, LoginHours, UsageRefusal, UsageWindow};
use policies::{InstitutionCode, Violation};
use store::{Account, AuditResult, Credential, NewAuditEvent, Store};
use uuid::Uuid;

use crate::{Clock, PasswordHasher, ServiceError};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Why a sign-in failed. Only the audit log sees this; people see one generic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    MalformedInstitutionCode,
    UnknownAccount,
    WrongPassword,
    /// This failure reached the threshold and locked the account.
    WrongPasswordLocked,
    Locked,
    Disabled,
    OutsideUsage(UsageRefusal),
    InitialPasswordExpired,
    /// The account exists but signs in through the other channel: a machine account on the
    /// login page, or a person's account at the `client_credentials` grant.
    WrongAccountKind,
}

impl FailureReason {
    /// The reason as written to the audit log.
    pub fn as_audit(&self) -> String {
        match self {
            FailureReason::MalformedInstitutionCode => "malformed_institution_code".into(),
            FailureReason::UnknownAccount => "unknown_account".into(),
            FailureReason::WrongPassword => "wrong_password".into(),
            FailureReason::WrongPasswordLocked => "wrong_password_locked".into(),
            FailureReason::Locked => "locked".into(),
            FailureReason::Disabled => "disabled".into(),
            FailureReason::OutsideUsage(refusal) => refusal.rule().into(),
            FailureReason::InitialPasswordExpired => "initial_password_expired".into(),
            FailureReason::WrongAccountKind => "wrong_account_kind".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum SignIn {
    /// The password is right and the account may sign in. When `must_change_password` is set,
    /// no session, code or token may be issued until a new password is set. When
    /// `second_factor_required` is set, none may be issued until a code was confirmed either;
    /// the failure count is then left as it is (wrong codes keep counting toward the lockout)
    /// and `login.success` is audited only when the second factor succeeds.
    Success {
        account: Box<Account>,
        must_change_password: bool,
        second_factor_required: bool,
    },
    Failure(FailureReason),
}

/// What the login page asks of a sign-in beyond the password.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageSignIn<'a> {
    /// Networks from which a password alone suffices (SPEC §7). `None`: the caller cannot show a
    /// second-factor page, so none is asked for.
    pub trusted_networks: Option<&'a [policies::Cidr]>,
    /// The client demanded a second factor (`acr_values` step-up): it is required wherever the
    /// person signs in from.
    pub step_up: bool,
}

/// Which door a sign-in came through.
#[derive(Debug, Clone, Copy)]
enum Channel<'a> {
    Page(PageSignIn<'a>),
    /// The `client_credentials` grant of a machine account.
    Machine,
}

impl Channel<'_> {
    fn kind(&self) -> SignInChannel {
        match self {
            Channel::Page(_) => SignInChannel::Pages,
            Channel::Machine => SignInChannel::ClientCredentials,
        }
    }
}

/// A machine account's `last_login_at` is written at most this often: one write per token would
/// cost more than the token.
const MACHINE_LAST_LOGIN_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// Whether an account may act at `now`: not deleted, enabled, and not locked under `policy`
/// (a failure lock that has lapsed by auto-unlock no longer counts). Sessions, tokens and codes
/// of an account that may not act stop working at once.
pub fn may_act(account: &Account, now: time::OffsetDateTime, policy: &LockoutPolicy) -> bool {
    account.deleted_at.is_none()
        && account.enabled
        && !lockout::is_locked(account.lock, account.locked_at, now, policy)
}

/// Whether a token of `account` issued at `issued_at` still stands after the account's locks:
/// one issued before its last lock stays invalid after an unlock
/// (`policies::lockout::issued_before_lock`).
pub fn outlived_locks(account: &Account, issued_at: time::OffsetDateTime) -> bool {
    !lockout::issued_before_lock(issued_at, account.tokens_not_before)
}

#[derive(Clone)]
pub struct Authenticator {
    pub store: Arc<dyn Store>,
    pub hasher: PasswordHasher,
    pub clock: Arc<dyn Clock>,
    /// The deployment's lockout profile; an institution may set its own threshold.
    pub lockout: LockoutPolicy,
    pub policy: Arc<PasswordPolicy>,
    /// The deployment's login hours, if any; an institution's own hours take precedence.
    pub login_hours: Option<LoginHours>,
}

impl Authenticator {
    /// Checks a password only (no second factor is ever asked): for callers that cannot show a
    /// second-factor page.
    pub async fn sign_in(
        &self,
        institution_code: &str,
        user_id: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        self.sign_in_interactive(institution_code, user_id, password, None, ctx)
            .await
    }

    /// Checks a password on the login page. With `trusted_networks` given, a human account
    /// outside them (or of an institution requiring it everywhere) gets
    /// `second_factor_required` (SPEC §7, `policies::network`).
    pub async fn sign_in_interactive(
        &self,
        institution_code: &str,
        user_id: &str,
        password: &str,
        trusted_networks: Option<&[policies::Cidr]>,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        self.sign_in_on_page(
            institution_code,
            user_id,
            password,
            PageSignIn {
                trusted_networks,
                step_up: false,
            },
            ctx,
        )
        .await
    }

    /// Checks a password on the login page with the page's second-factor rule: required outside
    /// the trusted networks, for institutions requiring it everywhere, and always on a step-up.
    /// Machine accounts never sign in here (`WrongAccountKind`).
    pub async fn sign_in_on_page(
        &self,
        institution_code: &str,
        user_id: &str,
        password: &str,
        page: PageSignIn<'_>,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        self.authenticate(
            institution_code,
            user_id,
            password,
            Channel::Page(page),
            ctx,
        )
        .await
    }

    /// Checks a machine account's secret at the `client_credentials` grant (SPEC §8): the lock,
    /// the enabled state, the usage dates and login hours apply, and a wrong secret counts toward
    /// the lockout exactly like a failed sign-in. People's accounts fail (`WrongAccountKind`)
    /// without their password being tried. On success the returned account carries its current
    /// credential (upgraded to the HMAC form if it was still argon2id).
    pub async fn authenticate_machine(
        &self,
        institution_code: &str,
        user_id: &str,
        secret: &str,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        self.authenticate(institution_code, user_id, secret, Channel::Machine, ctx)
            .await
    }

    /// Spends the time the channel's verification costs, for an attempt that names no account
    /// of that channel.
    async fn dummy_verify(&self, channel: Channel<'_>, secret: String) -> Result<(), ServiceError> {
        match channel {
            Channel::Page(_) => self.hasher.verify_dummy(secret).await,
            Channel::Machine => {
                self.hasher.verify_dummy_digest(&secret);
                Ok(())
            }
        }
    }

    async fn authenticate(
        &self,
        institution_code: &str,
        user_id: &str,
        password: &str,
        channel: Channel<'_>,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        let secret = password::canonical(password).into_owned();
        let Ok(code) = InstitutionCode::parse_for_login(institution_code) else {
            self.dummy_verify(channel, secret).await?;
            return self
                .fail(
                    None,
                    institution_code,
                    user_id,
                    FailureReason::MalformedInstitutionCode,
                    ctx,
                )
                .await;
        };
        let Some((mut account, institution)) = self
            .store
            .find_account_and_institution(&code, user_id)
            .await?
        else {
            self.dummy_verify(channel, secret).await?;
            return self
                .fail(
                    None,
                    code.as_str(),
                    user_id,
                    FailureReason::UnknownAccount,
                    ctx,
                )
                .await;
        };
        if credential::sign_in_channel(account.account_type) != channel.kind() {
            // The secret is not tried at all: this channel is no oracle for the other one, and
            // its failures do not count toward the account's lockout.
            self.dummy_verify(channel, secret).await?;
            return self
                .fail(
                    Some(&account),
                    code.as_str(),
                    user_id,
                    FailureReason::WrongAccountKind,
                    ctx,
                )
                .await;
        }
        let verified = self
            .hasher
            .verify_for(
                account.account_type,
                secret.clone(),
                account.credential.hash.clone(),
            )
            .await?;
        let now = self.clock.now();
        let lockout_policy = self.lockout_policy(Some(&institution));

        if account.lock != LockState::None {
            if lockout::is_locked(account.lock, account.locked_at, now, &lockout_policy) {
                return self
                    .fail(
                        Some(&account),
                        code.as_str(),
                        user_id,
                        FailureReason::Locked,
                        ctx,
                    )
                    .await;
            }
            // A failure lock that has lapsed (auto-unlock) is cleared before this attempt counts.
            self.store
                .set_lock(account.id, LockState::None, None)
                .await?;
            account.failed_attempts = 0;
        }
        if !verified.ok {
            let failures = self.store.record_failure(account.id).await?;
            let decision = lockout::decide_after_failure(
                u32::try_from(failures).unwrap_or(u32::MAX),
                &lockout_policy,
            );
            let reason = match decision {
                FailureDecision::Lock => {
                    self.lock_after_failures(&account, ctx).await?;
                    FailureReason::WrongPasswordLocked
                }
                FailureDecision::Count(_) => FailureReason::WrongPassword,
            };
            return self
                .fail(Some(&account), code.as_str(), user_id, reason, ctx)
                .await;
        }
        if !account.enabled {
            return self
                .fail(
                    Some(&account),
                    code.as_str(),
                    user_id,
                    FailureReason::Disabled,
                    ctx,
                )
                .await;
        }
        let window = UsageWindow {
            start: account.usage_start,
            end: account.usage_end,
        };
        let hours = self.login_hours(Some(&institution));
        if let Err(refusal) = usage::check_sign_in_window(&window, hours.as_ref(), now) {
            return self
                .fail(
                    Some(&account),
                    code.as_str(),
                    user_id,
                    FailureReason::OutsideUsage(refusal),
                    ctx,
                )
                .await;
        }
        let state = credential::password_state(
            account.account_type,
            account.credential.initial_issued_at,
            now,
            credential::INITIAL_PASSWORD_VALIDITY,
        );
        if !credential::may_sign_in(state) {
            return self
                .fail(
                    Some(&account),
                    code.as_str(),
                    user_id,
                    FailureReason::InitialPasswordExpired,
                    ctx,
                )
                .await;
        }

        let second_factor_required = match channel {
            Channel::Page(page) => {
                page.step_up
                    || page.trusted_networks.is_some_and(|networks| {
                        policies::second_factor_required(
                            account.account_type,
                            ctx.ip.as_deref().and_then(|ip| ip.parse().ok()),
                            institution.settings.second_factor_everywhere,
                            networks,
                        )
                    })
            }
            Channel::Machine => false,
        };
        let recently_recorded = account.failed_attempts == 0
            && account
                .last_login_at
                .is_some_and(|at| now - at < MACHINE_LAST_LOGIN_GRANULARITY);
        let record = match channel {
            Channel::Page(_) => !second_factor_required,
            Channel::Machine => !recently_recorded,
        };
        if record {
            self.store.record_success(account.id, now).await?;
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash_for(account.account_type, secret).await?;
            let credential = Credential {
                hash,
                ..account.credential.clone()
            };
            self.store
                .set_credential(account.id, credential.clone())
                .await?;
            account.credential = credential;
        }
        let must_change_password = credential::must_change_password(account.account_type, state);
        let kind = if second_factor_required {
            "login.password_verified"
        } else {
            "login.success"
        };
        let reason = match channel {
            Channel::Page(page) if page.step_up => Some("step_up".to_owned()),
            Channel::Page(_) => None,
            Channel::Machine => Some("client_credentials".to_owned()),
        };
        self.audit(
            Some(&account),
            code.as_str(),
            user_id,
            kind,
            AuditResult::Success,
            reason,
            ctx,
        )
        .await?;
        Ok(SignIn::Success {
            account: Box::new(account),
            must_change_password,
            second_factor_required,
        })
    }

    /// Sets a new password chosen by the account holder. `current` is required for self-service
    /// changes; the forced change right after a sign-in with an initial password passes `None`.
    /// Either way the new password must differ from the current one and from the last
    /// `password.history_depth` passwords. Every other session of the account ends; the session
    /// `keep_session` (the one making the change) stays. Returns how many sessions ended.
    pub async fn change_password(
        &self,
        account_id: Uuid,
        current: Option<&str>,
        new_password: &str,
        confirmation: &str,
        keep_session: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<u64, ServiceError> {
        let account = self
            .store
            .get_account(account_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if account.deleted_at.is_some() {
            return Err(ServiceError::NotFound);
        }
        if credential::secret_is_generated(account.account_type) {
            // A machine secret is always generated (an admin reset issues a new one); a chosen
            // one would not carry the entropy its fast keyed hash relies on.
            return Err(ServiceError::invalid(
                "new_password",
                vec![Violation::new(
                    "password.machine_generated",
                    "機械アカウントのパスワードは変更できません。管理者がリセットしてください。",
                    "A machine account's password cannot be chosen; an admin resets it.",
                )],
            ));
        }
        if let Some(current) = current {
            let verified = self
                .hasher
                .verify(
                    password::canonical(current).into_owned(),
                    account.credential.hash.clone(),
                )
                .await?;
            if !verified.ok {
                return Err(ServiceError::invalid(
                    "current_password",
                    vec![Violation::new(
                        "password.current_mismatch",
                        "現在のパスワードが正しくありません。",
                        "The current password is not correct.",
                    )],
                ));
            }
        }
        let ctx_policy = PasswordContext {
            user_id: Some(&account.user_id),
            current_password: current,
        };
        let mut violations = self.policy.check(new_password, &ctx_policy);
        if new_password != confirmation {
            violations.push(password::confirmation_mismatch());
        }
        let new_secret = password::canonical(new_password).into_owned();
        if violations.is_empty() {
            // The current password is compared through its hash when it was not typed; earlier
            // passwords always are.
            if current.is_none()
                && self
                    .hasher
                    .verify(new_secret.clone(), account.credential.hash.clone())
                    .await?
                    .ok
            {
                violations = self.policy.check(
                    new_password,
                    &PasswordContext {
                        user_id: Some(&account.user_id),
                        current_password: Some(new_password),
                    },
                );
            }
            for old in self
                .store
                .password_history(account.id, self.policy.history_depth)
                .await?
            {
                if self.hasher.verify(new_secret.clone(), old).await?.ok {
                    violations.push(password::history_violation(self.policy.history_depth));
                    break;
                }
            }
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid("new_password", violations));
        }
        let hash = self
            .hasher
            .hash_for(account.account_type, new_secret)
            .await?;
        let now = self.clock.now();
        let credential = Credential {
            hash,
            initial_issued_at: None,
            initial_sealed: None,
            changed_at: Some(now),
        };
        let ended = self
            .store
            .change_password(
                account.id,
                credential,
                &account.credential.hash,
                self.policy.history_depth,
                keep_session,
            )
            .await?;
        self.audit(
            Some(&account),
            account.institution_code.as_str(),
            &account.user_id,
            "password.change",
            AuditResult::Success,
            (ended > 0).then(|| format!("ended {ended} other session(s)")),
            ctx,
        )
        .await?;
        Ok(ended)
    }

    /// Records the end of a session (sign-out, expiry noticed, revocation).
    pub async fn session_ended(
        &self,
        account: &Account,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.audit(
            Some(account),
            account.institution_code.as_str(),
            &account.user_id,
            "session.end",
            AuditResult::Success,
            Some(reason.to_owned()),
            ctx,
        )
        .await
    }

    /// The lockout profile for an institution: its own threshold when set, else the deployment's.
    pub fn lockout_policy(&self, institution: Option<&store::Institution>) -> LockoutPolicy {
        let mut policy = self.lockout.clone();
        if let Some(threshold) = institution.and_then(|i| i.settings.lockout_threshold) {
            policy.threshold = threshold;
        }
        policy
    }

    /// The login hours in force for an institution: its own when set, else the deployment's.
    pub fn login_hours(&self, institution: Option<&store::Institution>) -> Option<LoginHours> {
        let own = institution.and_then(|i| i.settings.login_hours.clone());
        own.or_else(|| self.login_hours.clone())
    }

    /// The state of an account's password now.
    pub fn password_state(&self, account: &Account) -> PasswordState {
        credential::password_state(
            account.account_type,
            account.credential.initial_issued_at,
            self.clock.now(),
            credential::INITIAL_PASSWORD_VALIDITY,
        )
    }

    async fn lock_after_failures(
        &self,
        account: &Account,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        self.store
            .set_lock(account.id, LockState::Failures, Some(now))
            .await?;
        self.store.delete_sessions_of_account(account.id).await?;
        self.audit(
            Some(account),
            account.institution_code.as_str(),
            &account.user_id,
            "account.lock",
            AuditResult::Success,
            Some("consecutive_failures".into()),
            ctx,
        )
        .await
    }

    async fn fail(
        &self,
        account: Option<&Account>,
        institution: &str,
        user_id: &str,
        reason: FailureReason,
        ctx: &RequestContext,
    ) -> Result<SignIn, ServiceError> {
        self.audit(
            account,
            institution,
            user_id,
            "login.failure",
            AuditResult::Failure,
            Some(reason.as_audit()),
            ctx,
        )
        .await?;
        Ok(SignIn::Failure(reason))
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        account: Option<&Account>,
        institution: &str,
        user_id: &str,
        kind: &str,
        result: AuditResult,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        // What was typed is recorded only in bounded, printable form; never the password.
        let printable = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(32)
                .collect::<String>()
        };
        self.store
            .append_audit(NewAuditEvent {
                at: self.clock.now(),
                kind: kind.into(),
                actor_account_id: account.map(|a| a.id),
                actor: format!("{}/{}", printable(institution), printable(user_id)),
                target_account_id: account.map(|a| a.id),
                target: Some(printable(user_id)),
                institution_code: Some(printable(institution)),
                ip: ctx.ip.clone(),
                user_agent: ctx
                    .user_agent
                    .as_deref()
                    .map(|ua| ua.chars().take(256).collect()),
                result,
                reason,
            })
            .await?;
        Ok(())
    }
}
