//! The admin use cases on institutions (SPEC §1, §6, §9): create (with its master accounts),
//! read, list, update, security settings, and the audit export.
//!
//! Who may do what comes from `policies::permissions` (`can_manage_institutions`,
//! `can_manage_settings`, `can_export_audit`). A settings change ends every session and revokes
//! every grant of the institution in the same transaction that stores it (SPEC §6).

use policies::lockout::{MAX_THRESHOLD, MIN_THRESHOLD};
use policies::permissions;
use policies::{InstitutionCode, Violation};
use store::{
    AuditEvent, AuditFilter, Institution, InstitutionSettings, InstitutionUpdate, NewAuditEvent,
};
use time::Date;

use crate::accounts::{Admin, AdminActor, Target};
use crate::provisioning::{CreatedInstitution, NewInstitutionInput, Provisioner};
use crate::{Refusal, ServiceError};

/// The most audit rows one export may return [002 §4].
pub const AUDIT_EXPORT_LIMIT: i64 = 25_000;

impl Admin {
    /// Creates an institution with its `master` and `master_reset` accounts (operators only).
    pub async fn create_institution(
        &self,
        provisioner: &Provisioner,
        actor: &AdminActor,
        input: NewInstitutionInput<'_>,
    ) -> Result<CreatedInstitution, ServiceError> {
        self.institution_admin(actor, "institution.create", None)
            .await?;
        provisioner
            .create_institution(&actor.as_actor(), input)
            .await
    }

    pub async fn get_institution(
        &self,
        actor: &AdminActor,
        code: &InstitutionCode,
    ) -> Result<Institution, ServiceError> {
        self.institution_admin(actor, "institution.get", Some(code))
            .await?;
        self.store
            .get_institution(code)
            .await?
            .filter(|i| !i.code.is_platform())
            .ok_or(ServiceError::NotFound)
    }

    /// Every real institution (not the operators' pseudo-institution), by code.
    pub async fn list_institutions(
        &self,
        actor: &AdminActor,
    ) -> Result<Vec<Institution>, ServiceError> {
        self.institution_admin(actor, "institution.list", None)
            .await?;
        let mut all = self.store.list_institutions().await?;
        all.retain(|i| !i.code.is_platform());
        Ok(all)
    }

    /// Renames an institution or moves its usage start date; `None` keeps the current value.
    pub async fn update_institution(
        &self,
        actor: &AdminActor,
        code: &InstitutionCode,
        name: Option<&str>,
        usage_start: Option<Date>,
    ) -> Result<Institution, ServiceError> {
        let current = self.get_institution(actor, code).await?;
        let name = match name {
            Some(raw) => crate::provisioning::institution_name(raw)?,
            None => current.name,
        };
        let update = InstitutionUpdate {
            name,
            usage_start: usage_start.unwrap_or(current.usage_start),
        };
        let audit = self.institution_audit(actor, "institution.update", code);
        Ok(self.store.update_institution(code, update, audit).await?)
    }

    /// Replaces the institution's security settings within the deployment's bounds; everyone in
    /// the institution signs in again.
    pub async fn set_settings(
        &self,
        actor: &AdminActor,
        code: &InstitutionCode,
        settings: InstitutionSettings,
    ) -> Result<Institution, ServiceError> {
        if !permissions::can_manage_settings(
            actor.account.account_type,
            &actor.account.institution_code,
            code,
        ) {
            return Err(self
                .refuse(
                    actor,
                    "institution.settings",
                    &Target::institution(code),
                    Refusal::NotPermitted,
                )
                .await);
        }
        if let Some(threshold) = settings.lockout_threshold
            && !(MIN_THRESHOLD..=MAX_THRESHOLD).contains(&threshold)
        {
            return Err(ServiceError::invalid(
                "lockout_threshold",
                vec![Violation::new(
                    "lockout.threshold",
                    format!(
                        "ロックまでの連続失敗回数は{MIN_THRESHOLD}～{MAX_THRESHOLD}回で指定してください。"
                    ),
                    format!(
                        "The lockout threshold must be between {MIN_THRESHOLD} and {MAX_THRESHOLD}."
                    ),
                )],
            ));
        }
        if self
            .store
            .get_institution(code)
            .await?
            .is_none_or(|i| i.code.is_platform())
        {
            return Err(ServiceError::NotFound);
        }
        let audit = self.institution_audit(actor, "institution.settings", code);
        Ok(self
            .store
            .set_institution_settings(code, &settings, self.clock.now(), audit)
            .await?)
    }

    /// Audit events for the export, oldest first. More than [`AUDIT_EXPORT_LIMIT`] rows is a
    /// validation error asking for a narrower search [002 §4].
    pub async fn export_audit(
        &self,
        actor: &AdminActor,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        let institution = filter
            .institution_code
            .as_deref()
            .map(InstitutionCode::parse_for_login)
            .transpose()
            .map_err(|v| ServiceError::invalid("institution_code", vec![v]))?;
        if !permissions::can_export_audit(
            actor.account.account_type,
            &actor.account.institution_code,
            institution.as_ref(),
        ) {
            let target = Target::institution(
                institution
                    .as_ref()
                    .unwrap_or(&actor.account.institution_code),
            );
            return Err(self
                .refuse(actor, "audit.export", &target, Refusal::NotPermitted)
                .await);
        }
        let events = self
            .store
            .list_audit(&filter, AUDIT_EXPORT_LIMIT + 1)
            .await?;
        if events.len() as i64 > AUDIT_EXPORT_LIMIT {
            return Err(ServiceError::invalid(
                "period",
                vec![Violation::new(
                    "audit.too_many_rows",
                    format!(
                        "該当する監査ログが{AUDIT_EXPORT_LIMIT}件を超えています。期間・種別・医療機関等で検索条件を絞り込んでください。"
                    ),
                    format!(
                        "More than {AUDIT_EXPORT_LIMIT} audit events match; narrow the search by period, kind or institution."
                    ),
                )],
            ));
        }
        let mut event = self.institution_audit(
            actor,
            "audit.export",
            institution
                .as_ref()
                .unwrap_or(&actor.account.institution_code),
        );
        event.reason = Some(format!("{} rows", events.len()));
        self.store.append_audit(event).await?;
        Ok(events)
    }

    async fn institution_admin(
        &self,
        actor: &AdminActor,
        kind: &str,
        code: Option<&InstitutionCode>,
    ) -> Result<(), ServiceError> {
        if permissions::can_manage_institutions(
            actor.account.account_type,
            &actor.account.institution_code,
        ) {
            return Ok(());
        }
        let target = Target::institution(code.unwrap_or(&actor.account.institution_code));
        Err(self
            .refuse(actor, kind, &target, Refusal::NotPermitted)
            .await)
    }

    fn institution_audit(
        &self,
        actor: &AdminActor,
        kind: &str,
        code: &InstitutionCode,
    ) -> NewAuditEvent {
        self.audit(actor, kind, &Target::institution(code), None, None)
    }
}
