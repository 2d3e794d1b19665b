//! The admin use cases on accounts (SPEC §2, §9): create, read, search, update, delete, reset
//! the password, lock and unlock. The admin API calls them today; bulk registration and the CLI
//! reuse them later.
//!
//! Every use case asks `policies::permissions` whether the actor may act on the target (nothing
//! else grants a right), refuses admin actions on the actor's own account, validates input with
//! the `policies` parsers, and persists through one `Store::change_account` call, which also
//! writes the audit event and, where the change must stop existing sign-ins (reset, lock,
//! disable, delete), ends the target's sessions and revokes its grants in the same transaction.
//! Refusals are audited as failures. No password or secret ever reaches the audit log.

use std::sync::Arc;

use policies::credential;
use policies::lockout::{LockState, LockoutPolicy};
use policies::names::{NameKana, PersonName};
use policies::password::PasswordPolicy;
use policies::permissions::{self, Action};
use policies::usage::UsageWindow;
use policies::user_id::UserId;
use policies::{AccountType, EmailAddress, InstitutionCode, PhoneChannel, PhoneNumber, Violation};
use store::{
    Account, AccountChange, AccountFields, AccountFilter, AccountPage, AuditResult, Credential,
    NewAccount, NewAuditEvent, PageRequest, SecondFactor, SecondFactorMethod, Store,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::provisioning::{Actor, initial_password_context};
use crate::{Clock, PasswordHasher, Refusal, Sealer, ServiceError};

/// The signed-in account performing an admin action, and where the request came from.
#[derive(Debug, Clone)]
pub struct AdminActor {
    pub account: Account,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AdminActor {
    /// `institution/user_id`, as the audit log names actors.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.account.institution_code.as_str(),
            self.account.user_id
        )
    }

    /// The actor in the form the provisioning use cases take.
    pub fn as_actor(&self) -> Actor {
        Actor {
            account_id: Some(self.account.id),
            label: self.label(),
            ip: self.ip.clone(),
            user_agent: self
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect()),
        }
    }
}

/// A first second-factor destination registered by an admin (SPEC §7): counted as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactorInput {
    pub method: SecondFactorMethod,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAccountInput {
    pub account_type: AccountType,
    pub user_id: String,
    pub name: String,
    pub name_kana: String,
    pub usage_start: Date,
    pub usage_end: Option<Date>,
    pub second_factor: Option<SecondFactorInput>,
}

/// A partial update: `None` keeps the current value. `second_factor: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdateInput {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub enabled: Option<bool>,
    pub usage_start: Option<Date>,
    pub usage_end: Option<Date>,
    pub second_factor: Option<Option<SecondFactorInput>>,
}

/// An account together with the initial password just issued to it, shown exactly once.
#[derive(Debug, Clone)]
pub struct IssuedAccount {
    pub account: Account,
    pub initial_password: String,
    /// When the initial password lapses; `None` for machine accounts (no expiry).
    pub expires_at: Option<OffsetDateTime>,
}

/// The search filters of SPEC §12, before the caller's visible types are applied.
#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    pub account_type: Option<AccountType>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub enabled: Option<bool>,
    pub locked: Option<bool>,
    pub usage_start_from: Option<Date>,
    pub usage_start_to: Option<Date>,
    pub usage_end_from: Option<Date>,
    pub usage_end_to: Option<Date>,
}

/// The admin use cases. Cloned into the admin API's state.
#[derive(Clone)]
pub struct Admin {
    pub store: Arc<dyn Store>,
    pub hasher: PasswordHasher,
    pub sealer: Arc<Sealer>,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<PasswordPolicy>,
    pub lockout: LockoutPolicy,
}

impl Admin {
    /// Creates an account with a system-issued initial password (SPEC §2 create, §5).
    pub async fn create_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        input: NewAccountInput,
    ) -> Result<IssuedAccount, ServiceError> {
        let target = Target::new(input.account_type, institution, &input.user_id);
        self.authorize(actor, Action::Create, &target).await?;
        let checked = check_new_account(institution, input).map_err(|mut failed| {
            let (field, violations) = failed.remove(0);
            ServiceError::invalid(field, violations)
        })?;

        let now = self.clock.now();
        let id = Uuid::now_v7();
        let (credential, password) = self.initial_credential(id, checked.account_type).await?;
        let account = checked.into_new_account(id, credential, Some(actor.account.id), now);
        let audit = self.audit(actor, "account.create", &target, Some(id), None);
        let account = self.store.create_account(account, audit).await?;
        Ok(IssuedAccount {
            expires_at: credential::initial_password_expires_at(now, account.account_type),
            account,
            initial_password: password,
        })
    }

    /// One live account the actor may see.
    pub async fn get_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Account, ServiceError> {
        self.reachable(actor, institution).await?;
        let account = self.live(institution, user_id).await?;
        if !permissions::can_view(
            actor.account.account_type,
            &actor.account.institution_code,
            account.account_type,
            institution,
        ) {
            let target = Target::of(&account);
            return Err(self
                .refuse(actor, "account.get", &target, Refusal::NotPermitted)
                .await);
        }
        Ok(account)
    }

    /// Searches the live accounts of an institution among the types the actor may see.
    pub async fn search_accounts(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        input: SearchInput,
        page: PageRequest,
    ) -> Result<AccountPage, ServiceError> {
        self.reachable(actor, institution).await?;
        let visible = permissions::viewable_types(
            actor.account.account_type,
            &actor.account.institution_code,
            institution,
        );
        let account_types = match input.account_type {
            Some(t) if visible.contains(&t) => vec![t],
            Some(t) => {
                let target = Target::new(t, institution, "*");
                return Err(self
                    .refuse(actor, "account.search", &target, Refusal::NotPermitted)
                    .await);
            }
            None if visible.is_empty() => {
                let target = Target::institution(institution);
                return Err(self
                    .refuse(actor, "account.search", &target, Refusal::NotPermitted)
                    .await);
            }
            None => visible,
        };
        let filter = AccountFilter {
            institution_code: institution.clone(),
            account_types,
            user_id: input.user_id,
            name: input.name,
            name_kana: input.name_kana,
            enabled: input.enabled,
            locked: input.locked,
            usage_start_from: input.usage_start_from,
            usage_start_to: input.usage_start_to,
            usage_end_from: input.usage_end_from,
            usage_end_to: input.usage_end_to,
        };
        Ok(self.store.search_accounts(&filter, page).await?)
    }

    /// Changes names, enabled state, usage dates or the second factor (SPEC §9 update). Type and
    /// user ID are immutable and cannot be expressed here. Disabling ends the account's access.
    pub async fn update_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
        input: AccountUpdateInput,
    ) -> Result<Account, ServiceError> {
        let current = self
            .target_for(actor, Action::Update, institution, user_id)
            .await?;
        let name = match &input.name {
            Some(raw) => PersonName::parse(raw)
                .map_err(|v| ServiceError::invalid("name", v))?
                .as_str()
                .to_owned(),
            None => current.name.clone(),
        };
        let name_kana = match &input.name_kana {
            Some(raw) => NameKana::parse(raw)
                .map_err(|v| ServiceError::invalid("name_kana", v))?
                .as_str()
                .to_owned(),
            None => current.name_kana.clone(),
        };
        let window = UsageWindow::new(
            input.usage_start.unwrap_or(current.usage_start),
            Some(input.usage_end.unwrap_or(current.usage_end)),
        )
        .map_err(|v| ServiceError::invalid("usage_end", vec![v]))?;
        let second_factor = match input.second_factor {
            None => current.second_factor.clone(),
            Some(None) => None,
            Some(Some(f)) => Some(second_factor(current.account_type, f)?),
        };
        let enabled = input.enabled.unwrap_or(current.enabled);
        let disabling = current.enabled && !enabled;
        let target = Target::of(&current);
        let reason = disabling.then(|| "disabled".to_owned());
        let audit = self.audit(actor, "account.update", &target, Some(current.id), reason);
        let now = self.clock.now();
        let change = AccountChange::Fields(AccountFields {
            name,
            name_kana,
            enabled,
            usage_start: window.start,
            usage_end: window.end,
            second_factor,
        });
        Ok(self
            .store
            .change_account(current.id, change, disabling.then_some(now), audit)
            .await?)
    }

    /// Soft-deletes: the user ID stays reserved forever; sessions and tokens end at once.
    pub async fn delete_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let current = self
            .target_for(actor, Action::Delete, institution, user_id)
            .await?;
        let now = self.clock.now();
        let audit = self.audit(
            actor,
            "account.delete",
            &Target::of(&current),
            Some(current.id),
            None,
        );
        self.store
            .change_account(
                current.id,
                AccountChange::Delete { at: now },
                Some(now),
                audit,
            )
            .await?;
        Ok(())
    }

    /// Issues a new initial password (30-day expiry for people), clears a failure lock and ends
    /// the account's sessions and tokens (SPEC §2, §5).
    pub async fn reset_password(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<IssuedAccount, ServiceError> {
        let current = self
            .target_for(actor, Action::ResetPassword, institution, user_id)
            .await?;
        let (credential, password) = self
            .initial_credential(current.id, current.account_type)
            .await?;
        let issued_at = credential
            .initial_issued_at
            .unwrap_or_else(|| self.clock.now());
        let audit = self.audit(
            actor,
            "account.password_reset",
            &Target::of(&current),
            Some(current.id),
            None,
        );
        let account = self
            .store
            .change_account(
                current.id,
                AccountChange::ResetCredential(credential),
                Some(issued_at),
                audit,
            )
            .await?;
        Ok(IssuedAccount {
            expires_at: credential::initial_password_expires_at(issued_at, account.account_type),
            account,
            initial_password: password,
        })
    }

    /// Locks by hand [000 §2]: sign-in is refused and existing sessions and tokens end.
    pub async fn lock_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Account, ServiceError> {
        let current = self
            .target_for(actor, Action::Lock, institution, user_id)
            .await?;
        let now = self.clock.now();
        let audit = self.audit(
            actor,
            "account.lock",
            &Target::of(&current),
            Some(current.id),
            Some("admin".into()),
        );
        let change = AccountChange::Lock {
            state: LockState::Admin,
            at: Some(now),
        };
        Ok(self
            .store
            .change_account(current.id, change, Some(now), audit)
            .await?)
    }

    /// Clears a lock of either kind and the failure count.
    pub async fn unlock_account(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Account, ServiceError> {
        let current = self
            .target_for(actor, Action::Unlock, institution, user_id)
            .await?;
        let audit = self.audit(
            actor,
            "account.unlock",
            &Target::of(&current),
            Some(current.id),
            None,
        );
        let change = AccountChange::Lock {
            state: LockState::None,
            at: None,
        };
        Ok(self
            .store
            .change_account(current.id, change, None, audit)
            .await?)
    }

    /// A new initial credential for `account_id`: generated by the policy, hashed, and sealed for
    /// the ID/password notice. Returns the credential and the plain password (shown once).
    async fn initial_credential(
        &self,
        account_id: Uuid,
        account_type: AccountType,
    ) -> Result<(Credential, String), ServiceError> {
        let password = self.policy.generate_initial(account_type, &mut rand::rng());
        let hash = self.hasher.hash_for(account_type, password.clone()).await?;
        let credential = Credential {
            hash,
            initial_issued_at: Some(self.clock.now()),
            initial_sealed: Some(
                self.sealer
                    .seal(password.as_bytes(), &initial_password_context(account_id)),
            ),
            changed_at: None,
        };
        Ok((credential, password))
    }

    /// Looks up the live target and checks the matrix and the self-action rule.
    async fn target_for(
        &self,
        actor: &AdminActor,
        action: Action,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Account, ServiceError> {
        let kind = audit_kind(action);
        self.reachable(actor, institution).await?;
        let account = self.live(institution, user_id).await?;
        let target = Target::of(&account);
        self.authorize(actor, action, &target).await?;
        if account.id == actor.account.id {
            return Err(self.refuse(actor, kind, &target, Refusal::OwnAccount).await);
        }
        Ok(account)
    }

    /// Refuses at once when the actor can do nothing at all in that institution (another
    /// institution for anyone but an operator), before revealing whether an account exists.
    pub(crate) async fn reachable(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
    ) -> Result<(), ServiceError> {
        if permissions::viewable_types(
            actor.account.account_type,
            &actor.account.institution_code,
            institution,
        )
        .is_empty()
        {
            let target = Target::institution(institution);
            return Err(self
                .refuse(actor, "account.access", &target, Refusal::NotPermitted)
                .await);
        }
        Ok(())
    }

    pub(crate) async fn live(
        &self,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Account, ServiceError> {
        self.store
            .find_account(institution, user_id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    async fn authorize(
        &self,
        actor: &AdminActor,
        action: Action,
        target: &Target,
    ) -> Result<(), ServiceError> {
        if permissions::can_in_institution(
            actor.account.account_type,
            &actor.account.institution_code,
            action,
            target.account_type,
            &target.institution,
        ) {
            Ok(())
        } else {
            Err(self
                .refuse(actor, audit_kind(action), target, Refusal::NotPermitted)
                .await)
        }
    }

    /// Records a refused admin action and returns the error to give the caller. A failure to
    /// write the audit row is reported instead: a refusal must not go unrecorded silently.
    pub(crate) async fn refuse(
        &self,
        actor: &AdminActor,
        kind: &str,
        target: &Target,
        refusal: Refusal,
    ) -> ServiceError {
        let reason = match refusal {
            Refusal::NotPermitted => "forbidden",
            Refusal::OwnAccount => "own_account",
        };
        let mut event = self.audit(actor, kind, target, None, Some(reason.into()));
        event.result = AuditResult::Failure;
        match self.store.append_audit(event).await {
            Ok(()) => ServiceError::Forbidden(refusal),
            Err(e) => e.into(),
        }
    }

    pub(crate) fn audit(
        &self,
        actor: &AdminActor,
        kind: &str,
        target: &Target,
        target_id: Option<Uuid>,
        reason: Option<String>,
    ) -> NewAuditEvent {
        let actor = actor.as_actor();
        NewAuditEvent {
            at: self.clock.now(),
            kind: kind.to_owned(),
            actor_account_id: actor.account_id,
            actor: actor.label,
            target_account_id: target_id,
            target: Some(target.label.clone()),
            institution_code: Some(target.institution.as_str().to_owned()),
            ip: actor.ip,
            user_agent: actor.user_agent,
            result: AuditResult::Success,
            reason,
        }
    }
}

/// What an admin action is aimed at, for the permission check and the audit log.
pub(crate) struct Target {
    pub account_type: AccountType,
    pub institution: InstitutionCode,
    /// `user_id` of an account, or the institution code for institution-wide actions. Only
    /// printable, bounded text: it may come from the request.
    pub label: String,
}

impl Target {
    pub(crate) fn new(
        account_type: AccountType,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Self {
        Self {
            account_type,
            institution: institution.clone(),
            label: user_id
                .chars()
                .filter(|c| !c.is_control())
                .take(32)
                .collect(),
        }
    }

    pub(crate) fn of(account: &Account) -> Self {
        Self::new(
            account.account_type,
            &account.institution_code,
            &account.user_id,
        )
    }

    pub(crate) fn institution(institution: &InstitutionCode) -> Self {
        // The account type is irrelevant for institution-wide events; `master` is the
        // institution's own top account.
        Self {
            account_type: AccountType::Master,
            institution: institution.clone(),
            label: institution.as_str().to_owned(),
        }
    }
}

fn audit_kind(action: Action) -> &'static str {
    match action {
        Action::Create => "account.create",
        Action::Update => "account.update",
        Action::Delete => "account.delete",
        Action::ResetPassword => "account.password_reset",
        Action::Lock => "account.lock",
        Action::Unlock => "account.unlock",
        Action::BulkRegister => "account.bulk_register",
    }
}

/// A new account's fields after every rule passed, before its credential exists.
#[derive(Debug, Clone)]
pub(crate) struct CheckedAccount {
    pub institution_code: InstitutionCode,
    pub account_type: AccountType,
    pub user_id: UserId,
    pub name: PersonName,
    pub name_kana: NameKana,
    pub window: UsageWindow,
    pub second_factor: Option<SecondFactor>,
}

impl CheckedAccount {
    pub(crate) fn into_new_account(
        self,
        id: Uuid,
        credential: Credential,
        created_by: Option<Uuid>,
        now: OffsetDateTime,
    ) -> NewAccount {
        NewAccount {
            id,
            institution_code: self.institution_code,
            account_type: self.account_type,
            user_id: self.user_id.into_string(),
            name: self.name.as_str().to_owned(),
            name_kana: self.name_kana.as_str().to_owned(),
            usage_start: self.window.start,
            usage_end: self.window.end,
            second_factor: self.second_factor,
            credential,
            created_by,
            created_at: now,
        }
    }
}

/// The rules of a new account's fields (SPEC §3, §4, §7), every field checked: user ID for its
/// type and the institution's kind, name, reading, usage window and second factor. On failure,
/// each failed field with all its violations, in that order. The single create reports the
/// first field; bulk registration reports them all.
pub(crate) fn check_new_account(
    institution: &InstitutionCode,
    input: NewAccountInput,
) -> Result<CheckedAccount, Vec<(&'static str, Vec<Violation>)>> {
    let mut failed = Vec::new();
    let user_id = UserId::parse(&input.user_id, input.account_type, institution.kind())
        .map_err(|v| failed.push(("user_id", v)))
        .ok();
    let name = PersonName::parse(&input.name)
        .map_err(|v| failed.push(("name", v)))
        .ok();
    let name_kana = NameKana::parse(&input.name_kana)
        .map_err(|v| failed.push(("name_kana", v)))
        .ok();
    let window = UsageWindow::new(input.usage_start, input.usage_end)
        .map_err(|v| failed.push(("usage_end", vec![v])))
        .ok();
    let second_factor = match input.second_factor {
        None => Some(None),
        Some(f) => match second_factor(input.account_type, f) {
            Ok(f) => Some(Some(f)),
            Err(ServiceError::Invalid { field, violations }) => {
                failed.push((field, violations));
                None
            }
            Err(other) => {
                failed.push((
                    "second_factor",
                    vec![Violation::new(
                        "second_factor",
                        other.to_string(),
                        other.to_string(),
                    )],
                ));
                None
            }
        },
    };
    match (user_id, name, name_kana, window, second_factor) {
        (Some(user_id), Some(name), Some(name_kana), Some(window), Some(second_factor))
            if failed.is_empty() =>
        {
            Ok(CheckedAccount {
                institution_code: institution.clone(),
                account_type: input.account_type,
                user_id,
                name,
                name_kana,
                window,
                second_factor,
            })
        }
        _ => Err(failed),
    }
}

/// Validates a second-factor destination registered by an admin: people only, an address for
/// `email`, a Japanese number for `sms` (mobiles) or `voice` (any accepted line).
fn second_factor(
    account_type: AccountType,
    input: SecondFactorInput,
) -> Result<SecondFactor, ServiceError> {
    let invalid = |rule, ja: &str, en: &str| {
        ServiceError::invalid("second_factor", vec![Violation::new(rule, ja, en)])
    };
    if account_type.is_machine() {
        return Err(invalid(
            "second_factor.machine",
            "機械アカウント（WebAPI用・連携アプリ用・顔認証用）には二要素認証を設定できません。",
            "Machine accounts (web_api, linked_app, card_reader) have no second factor.",
        ));
    }
    match input.method {
        SecondFactorMethod::Email => {
            let raw = input.email.as_deref().ok_or_else(|| {
                invalid(
                    "second_factor.email_required",
                    "メールを選んだ場合はメールアドレスを入力してください。",
                    "The email method needs an email address.",
                )
            })?;
            let email = EmailAddress::parse(raw)
                .map_err(|v| ServiceError::invalid("second_factor.email", vec![v]))?;
            Ok(SecondFactor {
                method: SecondFactorMethod::Email,
                email: Some(email.as_str().to_owned()),
                phone: None,
                verified: true,
            })
        }
        method @ (SecondFactorMethod::Sms | SecondFactorMethod::Voice) => {
            let raw = input.phone.as_deref().ok_or_else(|| {
                invalid(
                    "second_factor.phone_required",
                    "SMSまたは電話を選んだ場合は電話番号を入力してください。",
                    "The sms and voice methods need a phone number.",
                )
            })?;
            let phone = PhoneNumber::parse(raw)
                .map_err(|v| ServiceError::invalid("second_factor.phone", vec![v]))?;
            let channel = if method == SecondFactorMethod::Sms {
                PhoneChannel::Sms
            } else {
                PhoneChannel::Voice
            };
            phone
                .check_for(channel)
                .map_err(|v| ServiceError::invalid("second_factor.phone", vec![v]))?;
            Ok(SecondFactor {
                method,
                email: None,
                phone: Some(phone.as_e164().to_owned()),
                verified: true,
            })
        }
    }
}
