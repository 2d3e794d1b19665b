//! Printing ID/password notices (ID・パスワード発行通知書, SPEC §5, §9 [000 §5]): one account's
//! notice, or one PDF with a page per account for a selection.
//!
//! A notice shows the initial password, so it exists only while the account is still on a kept,
//! unexpired initial password (`policies::notice::notice_printable`), and only the actors who
//! issue that password may print it (`policies::permissions::can_issue_notice`). A selection is
//! all-or-nothing: if any account cannot be printed, nothing is rendered or marked and the
//! error names every such user ID. After the PDF is rendered, one `Store::mark_notices_issued`
//! call marks the accounts 出力済 and writes one `account.notice` audit event per account, in one
//! transaction, and only if each account still has the credential that was printed. Passwords
//! never reach the audit log or a log line.

use std::sync::Arc;

use policies::notice::{self, NoticeRefusal};
use policies::{InstitutionCode, credential, permissions};
use store::{Account, AuditResult, PrintedNotice, StoreError};

use crate::accounts::{Admin, AdminActor, Target};
use crate::provisioning::initial_password_context;
use crate::{Refusal, ServiceError};

/// The audit kind of a printed notice (and of a refused one, as a failure).
pub const AUDIT_KIND: &str = "account.notice";

/// One account in a request that cannot be printed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeBlocked {
    /// Its index in the selection; `None` for the single-account request.
    pub position: Option<usize>,
    /// As requested (bounded and stripped of control characters).
    pub user_id: String,
    pub refusal: NoticeRefusal,
}

/// A rendered notice document.
#[derive(Debug, Clone)]
pub struct NoticePdf {
    pub pdf: Vec<u8>,
    pub pages: usize,
    /// A safe download name: `notice-<code>-<user_id>.pdf` or
    /// `notices-<code>-<YYYYMMDDHHMMSS>.pdf` (JST).
    pub file_name: String,
}

/// The notice use cases. Built once from the admin use cases and the public sign-in URL.
#[derive(Clone)]
pub struct Notices {
    admin: Admin,
    renderer: Arc<::notices::Renderer>,
    sign_in_url: String,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("sign_in_url", &self.sign_in_url)
            .finish_non_exhaustive()
    }
}

impl Notices {
    /// `issuer` is the IdP's public base URL; notices point people at its login page.
    pub fn new(admin: Admin, issuer: &str) -> Result<Self, ServiceError> {
        let renderer = ::notices::Renderer::new()
            .map_err(|e| ServiceError::Internal(format!("notice renderer: {e}")))?;
        Ok(Self {
            admin,
            renderer: Arc::new(renderer),
            sign_in_url: format!("{}/login", issuer.trim_end_matches('/')),
        })
    }

    pub fn sign_in_url(&self) -> &str {
        &self.sign_in_url
    }

    /// The notice of one account (`GET …/accounts/{user_id}/notice.pdf`).
    pub async fn print_one(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<NoticePdf, ServiceError> {
        self.admin.reachable(actor, institution).await?;
        let account = self.admin.live(institution, user_id).await?;
        self.authorize(actor, &account).await?;
        if let Err(refusal) = self.printable(&account) {
            self.audit_refusals(actor, &[(&account, refusal)]).await?;
            return Err(ServiceError::NoticeUnavailable(vec![NoticeBlocked {
                position: None,
                user_id: account.user_id.clone(),
                refusal,
            }]));
        }
        let file_name = format!(
            "notice-{}-{}.pdf",
            institution.as_str(),
            safe_file_part(&account.user_id)
        );
        self.print(actor, institution, vec![account], file_name)
            .await
    }

    /// One PDF for a selection, a page per user ID in the order given
    /// (`POST …/notices` `{"user_ids": [...]}`). All or nothing.
    pub async fn print_selection(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        user_ids: &[String],
    ) -> Result<NoticePdf, ServiceError> {
        let violations = notice::check_selection(user_ids);
        if !violations.is_empty() {
            return Err(ServiceError::invalid("user_ids", violations));
        }
        self.admin.reachable(actor, institution).await?;
        let mut accounts = Vec::with_capacity(user_ids.len());
        let mut blocked = Vec::new();
        let mut refused = Vec::new();
        for (position, user_id) in user_ids.iter().enumerate() {
            let Some(account) = self.admin.store.find_account(institution, user_id).await? else {
                blocked.push(NoticeBlocked {
                    position: Some(position),
                    user_id: bounded(user_id),
                    refusal: NoticeRefusal::UnknownAccount,
                });
                continue;
            };
            // A permission refusal ends the request at once: it is not the caller's to print.
            self.authorize(actor, &account).await?;
            match self.printable(&account) {
                Ok(()) => accounts.push(account),
                Err(refusal) => {
                    blocked.push(NoticeBlocked {
                        position: Some(position),
                        user_id: account.user_id.clone(),
                        refusal,
                    });
                    refused.push((account, refusal));
                }
            }
        }
        if !blocked.is_empty() {
            let refused: Vec<(&Account, NoticeRefusal)> =
                refused.iter().map(|(a, r)| (a, *r)).collect();
            self.audit_refusals(actor, &refused).await?;
            return Err(ServiceError::NoticeUnavailable(blocked));
        }
        let now = self.admin.clock.now().to_offset(policies::usage::JST);
        let file_name = format!(
            "notices-{}-{:04}{:02}{:02}{:02}{:02}{:02}.pdf",
            institution.as_str(),
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        self.print(actor, institution, accounts, file_name).await
    }

    /// The notice permission and the self-action rule, refusals audited like every admin
    /// action.
    async fn authorize(&self, actor: &AdminActor, account: &Account) -> Result<(), ServiceError> {
        let target = Target::of(account);
        if !permissions::can_issue_notice(
            actor.account.account_type,
            &actor.account.institution_code,
            account.account_type,
            &account.institution_code,
        ) {
            return Err(self
                .admin
                .refuse(actor, AUDIT_KIND, &target, Refusal::NotPermitted)
                .await);
        }
        if account.id == actor.account.id {
            return Err(self
                .admin
                .refuse(actor, AUDIT_KIND, &target, Refusal::OwnAccount)
                .await);
        }
        Ok(())
    }

    fn printable(&self, account: &Account) -> Result<(), NoticeRefusal> {
        notice::notice_printable(
            account.account_type,
            account.credential.initial_issued_at,
            account.credential.initial_sealed.is_some(),
            self.admin.clock.now(),
            credential::INITIAL_PASSWORD_VALIDITY,
        )
    }

    /// Refused notices are audited as failures with the rule as the reason.
    async fn audit_refusals(
        &self,
        actor: &AdminActor,
        refused: &[(&Account, NoticeRefusal)],
    ) -> Result<(), ServiceError> {
        for (account, refusal) in refused {
            let mut event = self.admin.audit(
                actor,
                AUDIT_KIND,
                &Target::of(account),
                Some(account.id),
                Some(refusal.rule().to_owned()),
            );
            event.result = AuditResult::Failure;
            self.admin.store.append_audit(event).await?;
        }
        Ok(())
    }

    /// Unseals, renders and marks: the accounts were checked printable by the caller.
    async fn print(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        accounts: Vec<Account>,
        file_name: String,
    ) -> Result<NoticePdf, ServiceError> {
        let place = self
            .admin
            .store
            .get_institution(institution)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let now = self.admin.clock.now();
        let mut pages = Vec::with_capacity(accounts.len());
        let mut printed = Vec::with_capacity(accounts.len());
        for account in &accounts {
            let issued_at = account.credential.initial_issued_at.ok_or_else(|| {
                ServiceError::Internal("a printable account has no initial password".into())
            })?;
            pages.push(::notices::Notice {
                institution_name: place.name.clone(),
                institution_code: place.code.as_str().to_owned(),
                account_name: account.name.clone(),
                account_type_label: account.account_type.label_ja().to_owned(),
                user_id: account.user_id.clone(),
                initial_password: self.unseal(account)?,
                issued_at,
                expires_at: credential::initial_password_expires_at(
                    issued_at,
                    account.account_type,
                ),
                sign_in_url: self.sign_in_url.clone(),
            });
            printed.push(PrintedNotice {
                account_id: account.id,
                password_hash: account.credential.hash.clone(),
            });
        }
        let renderer = self.renderer.clone();
        let rendered = tokio::task::spawn_blocking(move || renderer.render(&pages, now))
            .await
            .map_err(|e| ServiceError::Internal(format!("notice rendering stopped: {e}")))?
            .map_err(|e| ServiceError::Internal(format!("notice rendering failed: {e}")))?;
        if !rendered.missing_glyphs.is_empty() {
            let code_points: Vec<String> = rendered
                .missing_glyphs
                .iter()
                .map(|c| format!("U+{:04X}", u32::from(*c)))
                .collect();
            tracing::warn!(
                characters = %code_points.join(" "),
                "a notice shows characters the embedded font cannot draw"
            );
        }
        let audit = accounts
            .iter()
            .map(|a| {
                self.admin
                    .audit(actor, AUDIT_KIND, &Target::of(a), Some(a.id), None)
            })
            .collect();
        match self.admin.store.mark_notices_issued(&printed, audit).await {
            Ok(()) => Ok(NoticePdf {
                pdf: rendered.pdf,
                pages: rendered.pages,
                file_name,
            }),
            // A reset, change or delete raced the printing: the PDF shows a password that is no
            // longer current, so it is not handed out.
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict("notice")),
            Err(e) => Err(e.into()),
        }
    }

    fn unseal(&self, account: &Account) -> Result<String, ServiceError> {
        let sealed = account
            .credential
            .initial_sealed
            .as_deref()
            .ok_or_else(|| {
                ServiceError::Internal("a printable account has no sealed password".into())
            })?;
        let plain = self
            .admin
            .sealer
            .open(sealed, &initial_password_context(account.id))
            .map_err(|e| {
                ServiceError::Internal(format!("initial password of {}: {e}", account.id))
            })?;
        String::from_utf8(plain).map_err(|_| {
            ServiceError::Internal(format!("initial password of {} is not UTF-8", account.id))
        })
    }
}

/// A user ID from the request, bounded and stripped of control characters for messages.
fn bounded(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(32).collect()
}

/// User IDs are half-width alphanumerics; anything else is dropped from a file name.
fn safe_file_part(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_parts_are_header_safe() {
        assert_eq!(safe_file_part("user01"), "user01");
        assert_eq!(safe_file_part("a\"b\r\n;c/../d"), "abcd");
        assert_eq!(bounded("ab\u{7}c"), "abc");
        assert_eq!(bounded(&"x".repeat(100)).len(), 32);
    }
}
