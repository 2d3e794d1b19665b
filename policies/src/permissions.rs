//! Who may do what to whom (SPEC §2, seeds 002 §2-1, §2-3, §3(2) and 000 §2): the permission
//! matrix as one exhaustive table, plus the institution boundary.
//!
//! Decisions taken where the matrix is silent (see `docs/policies.md`):
//! - Operators act only on `operator`, `master` and `master_reset` accounts. SPEC §2 says the IdP
//!   never allows an admin action that the matrix does not list, and the matrix gives every lower
//!   type to `master` or `manager`; an operator recovers an institution through `master_reset`.
//! - Operators may create, update, delete, reset, lock and unlock other operators ("bootstrap CLI
//!   or another operator"), so that a platform never depends on the CLI for day-to-day recovery.
//!   Since operators are the only type that acts on its own type, the service must refuse an
//!   operator acting on their own account (delete, lock, disable, reset): changing one's own
//!   password or second factor is self-service, not an admin action.
//! - Bulk CSV registration exists only for the types the seed registers in bulk: `manager` (by
//!   `master`) and the types below it (by `manager`).

use serde::{Deserialize, Serialize};

use crate::{AccountType, InstitutionCode};

/// An administrative action on another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    /// Update fields, enable/disable, usage dates.
    Update,
    Delete,
    ResetPassword,
    Lock,
    Unlock,
    BulkRegister,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::ResetPassword,
        Action::Lock,
        Action::Unlock,
        Action::BulkRegister,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::ResetPassword => "reset_password",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::BulkRegister => "bulk_register",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account of type `actor` may perform `action` on an account of type `target`,
/// ignoring institutions (see [`can_in_institution`]).
///
/// One exhaustive table: every (target, action) pair names its actors, so adding an account type
/// or an action does not compile until this table says who may do it.
pub fn can(actor: AccountType, action: Action, target: AccountType) -> bool {
    use AccountType::*;
    use Action::*;

    let allowed: &[AccountType] = match (target, action) {
        // Operators: created by the bootstrap CLI or another operator (SPEC §2 table).
        (Operator, Create | Update | Delete | ResetPassword | Lock | Unlock) => &[Operator],
        (Operator, BulkRegister) => &[],

        // マスタアカウント: created and deleted with the institution by the operator; "cannot be
        // updated"; its password is reset by master_reset [002 §3(2)]; locked by master_reset or
        // the operator [000 §2].
        (Master, Create | Delete) => &[Operator],
        (Master, Update) => &[],
        (Master, ResetPassword) => &[MasterReset],
        (Master, Lock | Unlock) => &[MasterReset, Operator],
        (Master, BulkRegister) => &[],

        // マスタアカウントリセット用アカウント: everything by the operator ("実施機関で初期化します").
        (MasterReset, Create | Update | Delete | ResetPassword | Lock | Unlock) => &[Operator],
        (MasterReset, BulkRegister) => &[],

        // 管理アカウント: managed by the master account [002 §2-1, §2-3].
        (Manager, Create | Update | Delete | ResetPassword | Lock | Unlock | BulkRegister) => {
            &[Master]
        }

        // Everything below: managed by a manager account [002 §2-1, §2-3].
        (
            General | ClinicalViewer | WebApi | LinkedApp | CardReader,
            Create | Update | Delete | ResetPassword | Lock | Unlock | BulkRegister,
        ) => &[Manager],
    };
    allowed.contains(&actor)
}

/// [`can`], plus the institution boundary: operators (who live in the platform pseudo-institution)
/// act across institutions, everybody else only inside their own. An account type placed in the
/// wrong kind of institution (an operator outside the platform, anyone else inside it) may do
/// nothing and nothing may be done to it.
pub fn can_in_institution(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    action: Action,
    target_type: AccountType,
    target_institution: &InstitutionCode,
) -> bool {
    if !belongs(actor_type, actor_institution) || !belongs(target_type, target_institution) {
        return false;
    }
    if !can(actor_type, action, target_type) {
        return false;
    }
    actor_type == AccountType::Operator || actor_institution == target_institution
}

/// Whether an account of this type may live in this institution: operators only in the platform
/// pseudo-institution `0000000000`, every other type only in a real institution.
pub fn belongs(account_type: AccountType, institution: &InstitutionCode) -> bool {
    (account_type == AccountType::Operator) == institution.is_platform()
}

/// The account types that `actor` may create, in [`AccountType::ALL`] order (for forms and the
/// bulk CSV validator).
pub fn creatable_by(actor: AccountType) -> Vec<AccountType> {
    AccountType::ALL
        .into_iter()
        .filter(|t| can(actor, Action::Create, *t))
        .collect()
}

/// Whether `actor` may see an account of type `target` (admin get and search). The matrix has no
/// separate "view" action: an actor sees exactly the accounts it may act on in some way, so an
/// admin screen never lists an account its reader can do nothing with.
pub fn can_view(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    target_type: AccountType,
    target_institution: &InstitutionCode,
) -> bool {
    Action::ALL.into_iter().any(|action| {
        can_in_institution(
            actor_type,
            actor_institution,
            action,
            target_type,
            target_institution,
        )
    })
}

/// The account types `actor` may see in `institution`, in [`AccountType::ALL`] order.
pub fn viewable_types(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    institution: &InstitutionCode,
) -> Vec<AccountType> {
    AccountType::ALL
        .into_iter()
        .filter(|t| can_view(actor_type, actor_institution, *t, institution))
        .collect()
}

/// Who may print an account's ID/password notice (SPEC §9 notices, [000 §5]). Decision: the
/// actors who may issue that account's initial password — by creating the account or by
/// resetting its password — may also print it, and nobody else: printing reveals the initial
/// password, which only its issuers see. So an operator prints the notices of the `master` and
/// `master_reset` accounts it created with an institution, `master_reset` reprints `master`'s
/// after a reset, `master` prints its managers' and a manager the accounts below it. Whether the
/// account is printable at all is `notice::notice_printable`; acting on one's own account is
/// refused by the service as for every admin action.
pub fn can_issue_notice(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    target_type: AccountType,
    target_institution: &InstitutionCode,
) -> bool {
    [Action::Create, Action::ResetPassword]
        .into_iter()
        .any(|action| {
            can_in_institution(
                actor_type,
                actor_institution,
                action,
                target_type,
                target_institution,
            )
        })
}

/// Institutions themselves (create, read, list, rename, usage start): the platform operator only
/// (SPEC §1 "Institutions are created by the platform operator", §9 "institutions (operator)").
pub fn can_manage_institutions(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
) -> bool {
    actor_type == AccountType::Operator && belongs(actor_type, actor_institution)
}

/// An institution's security settings (SPEC §6, §7: second factor, login hours, lockout
/// threshold). Decision: the institution's `master` account, the top of its hierarchy
/// [002 §2-1], or an operator for any institution. The platform pseudo-institution has no
/// settings of its own here (its rules come from the deployment's configuration).
pub fn can_manage_settings(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    institution: &InstitutionCode,
) -> bool {
    if institution.is_platform() || !belongs(actor_type, actor_institution) {
        return false;
    }
    match actor_type {
        AccountType::Operator => true,
        AccountType::Master => actor_institution == institution,
        _ => false,
    }
}

/// The audit export (SPEC §9 [002 §4]). Decision: operators export any institution's events or
/// all of them (`institution` = `None`); an institution's `master` exports only its own
/// institution's events and must name it.
pub fn can_export_audit(
    actor_type: AccountType,
    actor_institution: &InstitutionCode,
    institution: Option<&InstitutionCode>,
) -> bool {
    if !belongs(actor_type, actor_institution) {
        return false;
    }
    match actor_type {
        AccountType::Operator => true,
        AccountType::Master => institution == Some(actor_institution),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountType::*;
    use Action::*;

    const LOWER: [AccountType; 5] = [General, ClinicalViewer, WebApi, LinkedApp, CardReader];

    /// The matrix of SPEC §2 written out as (target, action, actors), independently of `can`.
    fn spec_matrix() -> Vec<(AccountType, Action, Vec<AccountType>)> {
        let mut rows = vec![
            // SPEC §2 / 002 §2-1(1): master and master_reset are created with the institution.
            (Master, Create, vec![Operator]),
            (MasterReset, Create, vec![Operator]),
            // SPEC §2: master "cannot be updated"; master_reset is updated by the operator.
            (Master, Update, vec![]),
            (MasterReset, Update, vec![Operator]),
            // 002 §3(2) パスワードを初期化するアカウント: master ← master_reset, master_reset ← 実施機関.
            (Master, ResetPassword, vec![MasterReset]),
            (MasterReset, ResetPassword, vec![Operator]),
            // 000 §2 アカウントロック / SPEC §2: master ← master_reset or operator.
            (Master, Lock, vec![MasterReset, Operator]),
            (Master, Unlock, vec![MasterReset, Operator]),
            (MasterReset, Lock, vec![Operator]),
            (MasterReset, Unlock, vec![Operator]),
            (Master, Delete, vec![Operator]),
            (MasterReset, Delete, vec![Operator]),
            (Master, BulkRegister, vec![]),
            (MasterReset, BulkRegister, vec![]),
            // Decision: operators manage operators, never in bulk.
            (Operator, BulkRegister, vec![]),
        ];
        for action in [Create, Update, Delete, ResetPassword, Lock, Unlock] {
            rows.push((Operator, action, vec![Operator]));
        }
        // 002 §2-1: master manages managers; 002 §3(2): manager ← master.
        for action in Action::ALL {
            rows.push((Manager, action, vec![Master]));
        }
        // 002 §2-1, §3(2): managers manage every lower type.
        for target in LOWER {
            for action in Action::ALL {
                rows.push((target, action, vec![Manager]));
            }
        }
        rows
    }

    #[test]
    fn matrix_matches_the_spec_for_every_triple() {
        let matrix = spec_matrix();
        for target in AccountType::ALL {
            for action in Action::ALL {
                let actors = matrix
                    .iter()
                    .find(|(t, a, _)| *t == target && *a == action)
                    .map(|(_, _, actors)| actors)
                    .unwrap_or_else(|| panic!("spec row missing for {target} {action}"));
                for actor in AccountType::ALL {
                    assert_eq!(
                        can(actor, action, target),
                        actors.contains(&actor),
                        "{actor} {action} {target}"
                    );
                }
            }
        }
    }

    #[test]
    fn operators_do_not_manage_lower_types_and_nobody_acts_upward() {
        for action in Action::ALL {
            for target in [Manager].into_iter().chain(LOWER) {
                assert!(!can(Operator, action, target), "{action} {target}");
            }
            assert!(!can(Manager, action, Master));
            assert!(!can(General, action, General));
            assert!(!can(WebApi, action, WebApi));
        }
        assert_eq!(creatable_by(Master), vec![Manager]);
        assert_eq!(creatable_by(Manager), LOWER.to_vec());
        assert_eq!(creatable_by(Operator), vec![Operator, Master, MasterReset]);
        assert!(creatable_by(General).is_empty());
    }

    #[test]
    fn institution_boundary() {
        let platform = InstitutionCode::platform();
        let a = InstitutionCode::parse("1314000001").expect("valid");
        let b = InstitutionCode::parse("2741234567").expect("valid");
        let rows: &[(
            AccountType,
            &InstitutionCode,
            Action,
            AccountType,
            &InstitutionCode,
            bool,
        )] = &[
            // SPEC §2: actors act only inside their own institution.
            (Manager, &a, Create, General, &a, true),
            (Manager, &a, Create, General, &b, false),
            (Master, &a, ResetPassword, Manager, &a, true),
            (Master, &a, ResetPassword, Manager, &b, false),
            (MasterReset, &a, ResetPassword, Master, &a, true),
            (MasterReset, &b, ResetPassword, Master, &a, false),
            // SPEC §2: operators act across institutions.
            (Operator, &platform, Create, Master, &a, true),
            (Operator, &platform, Lock, Master, &b, true),
            (Operator, &platform, ResetPassword, MasterReset, &b, true),
            (Operator, &platform, Create, Operator, &platform, true),
            // The matrix still applies across institutions.
            (Operator, &platform, Create, Manager, &a, false),
            // Types in the wrong kind of institution may do nothing and undergo nothing.
            (Operator, &a, Create, Master, &a, false),
            (Operator, &platform, Create, Master, &platform, false),
            (Operator, &platform, Create, Operator, &a, false),
            (Manager, &platform, Create, General, &platform, false),
        ];
        for (actor, ai, action, target, ti, expected) in rows {
            assert_eq!(
                can_in_institution(*actor, ai, *action, *target, ti),
                *expected,
                "{actor}@{ai} {action} {target}@{ti}"
            );
        }
    }
}

#[cfg(test)]
mod admin_surface_tests {
    use super::*;
    use AccountType::*;

    #[test]
    fn viewing_follows_the_matrix() {
        let platform = InstitutionCode::platform();
        let a = InstitutionCode::parse("1314000001").expect("valid");
        let b = InstitutionCode::parse("2741234567").expect("valid");
        assert_eq!(
            viewable_types(Operator, &platform, &a),
            vec![Master, MasterReset]
        );
        assert_eq!(
            viewable_types(Operator, &platform, &platform),
            vec![Operator]
        );
        assert_eq!(viewable_types(Master, &a, &a), vec![Manager]);
        assert_eq!(viewable_types(MasterReset, &a, &a), vec![Master]);
        assert_eq!(
            viewable_types(Manager, &a, &a),
            vec![General, ClinicalViewer, WebApi, LinkedApp, CardReader]
        );
        assert!(viewable_types(Manager, &a, &b).is_empty());
        assert!(viewable_types(General, &a, &a).is_empty());
    }

    #[test]
    fn institutions_settings_and_audit() {
        let platform = InstitutionCode::platform();
        let a = InstitutionCode::parse("1314000001").expect("valid");
        let b = InstitutionCode::parse("2741234567").expect("valid");
        assert!(can_manage_institutions(Operator, &platform));
        assert!(!can_manage_institutions(Operator, &a));
        assert!(!can_manage_institutions(Master, &a));

        assert!(can_manage_settings(Operator, &platform, &a));
        assert!(!can_manage_settings(Operator, &platform, &platform));
        assert!(can_manage_settings(Master, &a, &a));
        assert!(!can_manage_settings(Master, &a, &b));
        assert!(!can_manage_settings(MasterReset, &a, &a));
        assert!(!can_manage_settings(Manager, &a, &a));

        assert!(can_export_audit(Operator, &platform, None));
        assert!(can_export_audit(Operator, &platform, Some(&b)));
        assert!(can_export_audit(Master, &a, Some(&a)));
        assert!(!can_export_audit(Master, &a, None));
        assert!(!can_export_audit(Master, &a, Some(&b)));
        assert!(!can_export_audit(Manager, &a, Some(&a)));
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use AccountType::*;

    #[test]
    fn notices_are_printed_by_whoever_issues_the_initial_password() {
        let platform = InstitutionCode::platform();
        let a = InstitutionCode::parse("1314000001").expect("valid");
        let b = InstitutionCode::parse("2741234567").expect("valid");
        // target → the actors that create it or reset its password (SPEC §2 matrix).
        let expected: &[(AccountType, &[AccountType])] = &[
            (Operator, &[Operator]),
            // Created by the operator with the institution; reset by master_reset [002 §3(2)].
            (Master, &[Operator, MasterReset]),
            (MasterReset, &[Operator]),
            (Manager, &[Master]),
            (General, &[Manager]),
            (ClinicalViewer, &[Manager]),
            (WebApi, &[Manager]),
            (LinkedApp, &[Manager]),
            (CardReader, &[Manager]),
        ];
        for (target, actors) in expected {
            let target_institution = if *target == Operator { &platform } else { &a };
            for actor in AccountType::ALL {
                let actor_institution = if actor == Operator { &platform } else { &a };
                assert_eq!(
                    can_issue_notice(actor, actor_institution, *target, target_institution),
                    actors.contains(&actor),
                    "{actor} prints {target}"
                );
                // Never across institutions, except operators, who act across them.
                if actor != Operator && *target != Operator {
                    assert!(
                        !can_issue_notice(actor, &b, *target, target_institution),
                        "{actor}@other prints {target}"
                    );
                }
            }
        }
        assert!(can_issue_notice(Operator, &platform, MasterReset, &b));
        // Types in the wrong kind of institution print nothing.
        assert!(!can_issue_notice(Operator, &a, Master, &a));
        assert!(!can_issue_notice(Manager, &platform, General, &platform));
    }
}
