//! Properties over arbitrary input: the initial-password generator always satisfies the policy,
//! and no parser or checker panics on any Unicode string, however long or strange.

use policies::password::{LOOK_ALIKES, PasswordContext, PasswordPolicy};
use policies::usage::parse_date;
use policies::{
    AccountType, InstitutionCode, InstitutionKind, NameKana, OtpPolicy, PersonName, UserId,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Strings that stress the checkers: any scalar values, plus combining marks, emoji (with ZWJ and
/// variation selectors), full-width and half-width forms, and the ASCII the rules care about;
/// from empty to several thousand characters.
fn nasty_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        Just("\u{301}".to_owned()),
        Just("e\u{301}\u{302}\u{303}".to_owned()),
        Just("👩\u{200D}⚕\u{FE0F}".to_owned()),
        Just("😀".to_owned()),
        Just("ﾊﾟｽ".to_owned()),
        Just("①㈱Ⅲ".to_owned()),
        Just("山田".to_owned()),
        Just("¥\\".to_owned()),
        Just("\0\n\t".to_owned()),
        "[a-zA-Z0-9@#$%^&*!+=?/]{1,8}",
    ];
    prop_oneof![
        proptest::collection::vec(piece.clone(), 0..40).prop_map(|v| v.concat()),
        proptest::collection::vec(piece, 300..1200).prop_map(|v| v.concat()),
    ]
}

const KINDS: [InstitutionKind; 5] = [
    InstitutionKind::Medical,
    InstitutionKind::Dental,
    InstitutionKind::Pharmacy,
    InstitutionKind::HomeNursing,
    InstitutionKind::Platform,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_passwords_always_pass(seed in any::<u64>(), machine in any::<bool>()) {
        let policy = PasswordPolicy::default();
        let account_type = if machine { AccountType::WebApi } else { AccountType::General };
        let mut rng = StdRng::seed_from_u64(seed);
        let password = policy.generate_initial(account_type, &mut rng);
        prop_assert_eq!(password.chars().count(), if machine { 24 } else { 12 });
        prop_assert!(password.chars().all(|c| !LOOK_ALIKES.contains(c)));
        let violations = policy.check(&password, &PasswordContext::default());
        prop_assert!(violations.is_empty(), "{:?}", violations);
    }

    #[test]
    fn generated_passwords_pass_tightened_profiles(
        seed in any::<u64>(),
        min_length in 8usize..=40,
        four_classes in any::<bool>(),
        max_repeat in 1usize..=2,
    ) {
        let policy = PasswordPolicy {
            min_length,
            max_length: min_length.max(30),
            min_classes: if four_classes { 4 } else { 3 },
            max_repeat,
            ..PasswordPolicy::default()
        };
        prop_assert!(policy.validate().is_ok());
        let mut rng = StdRng::seed_from_u64(seed);
        for t in [AccountType::Manager, AccountType::CardReader] {
            let password = policy.generate_initial(t, &mut rng);
            prop_assert!(policy.check(&password, &PasswordContext::default()).is_empty());
        }
    }

    #[test]
    fn password_check_never_panics(password in nasty_string(), other in nasty_string()) {
        let policy = PasswordPolicy::default();
        let ctx = PasswordContext { user_id: Some(&other), current_password: Some(&other) };
        let violations = policy.check(&password, &ctx);
        for v in &violations {
            prop_assert!(!v.message_ja.is_empty() && !v.message_en.is_empty());
        }
        // A password that passes is one the policy describes: 8-30 allowed characters.
        if violations.is_empty() {
            prop_assert!((8..=30).contains(&password.chars().count()));
        }
    }

    #[test]
    fn user_id_parse_never_panics(raw in nasty_string()) {
        for t in AccountType::ALL {
            for kind in KINDS {
                if let Ok(id) = UserId::parse(&raw, t, kind) {
                    prop_assert!(id.as_str().len() <= 8 && id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
                }
            }
        }
        let _ = UserId::parse_for_login(&raw);
    }

    #[test]
    fn name_parsers_never_panic(raw in nasty_string()) {
        if let Ok(name) = PersonName::parse(&raw) {
            prop_assert!((1..=20).contains(&name.as_str().chars().count()));
        }
        if let Ok(kana) = NameKana::parse(&raw) {
            prop_assert!((1..=40).contains(&kana.as_str().chars().count()));
        }
    }

    #[test]
    fn other_parsers_never_panic(raw in nasty_string()) {
        if let Ok(code) = InstitutionCode::parse(&raw) {
            prop_assert_eq!(code.as_str().len(), 10);
            let _ = code.kind();
        }
        let _ = InstitutionCode::parse_for_login(&raw);
        let _ = AccountType::parse_label(&raw);
        let _ = parse_date(&raw);
        let _ = OtpPolicy::default().parse_code(&raw);
    }

    #[test]
    fn institution_codes_of_ten_digits_are_parsed_without_panic(raw in "[0-9]{10}") {
        match InstitutionCode::parse(&raw) {
            Ok(code) => prop_assert!(code.kind() != InstitutionKind::Platform),
            Err(v) => prop_assert!(v.rule.starts_with("institution_code.")),
        }
    }

    #[test]
    fn otp_codes_are_six_digits(seed in any::<u64>()) {
        let policy = OtpPolicy::default();
        let code = policy.generate_code(&mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(code.len(), 6);
        prop_assert!(policy.parse_code(&code).is_ok());
    }
}
