//! Page texts in Japanese (the default) and English, chosen by `Accept-Language`.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Ja,
    En,
}

impl Locale {
    /// Japanese unless the client prefers English over Japanese (q-values respected).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(raw) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Locale::Ja;
        };
        let (mut ja, mut en) = (-1.0f32, -1.0f32);
        for (position, item) in raw.split(',').take(32).enumerate() {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0)
                // Earlier entries win ties, as listed order expresses preference.
                - position as f32 * 1e-4;
            let primary = tag.split('-').next().unwrap_or("");
            match primary {
                "ja" => ja = ja.max(q),
                "en" => en = en.max(q),
                _ => {}
            }
        }
        if en > ja && en > 0.0 {
            Locale::En
        } else {
            Locale::Ja
        }
    }

    pub const fn tag(self) -> &'static str {
        match self {
            Locale::Ja => "ja",
            Locale::En => "en",
        }
    }

    /// Picks the message of this locale from a (Japanese, English) pair.
    pub fn pick<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Locale::Ja => ja,
            Locale::En => en,
        }
    }
}

pub fn messages(locale: Locale) -> Value {
    match locale {
        Locale::Ja => json!({
            "product": "関守 Sekimori",
            "login_title": "ログイン",
            "login_lead": "医療機関等コード、ユーザID、パスワードを入力してください。運用事業者は医療機関等コードに 0000000000 を入力します。",
            "institution_code": "医療機関等コード（10桁）",
            "user_id": "ユーザID",
            "password": "パスワード",
            "login_submit": "ログイン",
            "login_failed": "ログインできませんでした。入力内容をご確認のうえ、もう一度お試しください。解決しない場合は管理者にお問い合わせください。",
            "for_client": "ログイン先",
            "change_title": "パスワードの変更",
            "change_lead": "初期パスワードでログインしました。続けるには新しいパスワードを設定してください。",
            "new_password": "新しいパスワード",
            "new_password_confirm": "新しいパスワード（確認）",
            "change_submit": "変更して続ける",
            "change_failed": "パスワードを変更できませんでした。次の点をご確認ください。",
            "password_rules": "8～30文字。英小文字・英大文字・数字（1～9）・記号のうち3種類以上。同じ文字を3文字以上続けない。ユーザIDや現在のパスワードと同じものは使えません。",
            "error_title": "エラー",
            "error_back": "お手数ですが、ご利用のアプリケーションに戻り、最初からやり直してください。",
            "unknown_client": "このアプリケーションは登録されていません。",
            "bad_redirect_uri": "リダイレクト先が登録されたものと一致しません。",
            "missing_parameter": "必要なパラメータが不足しています。",
            "form_expired": "画面の有効期限が切れたか、不正な送信です。",
            "server_error": "システムエラーが発生しました。しばらくしてから再度お試しください。",
        }),
        Locale::En => json!({
            "product": "Sekimori",
            "login_title": "Sign in",
            "login_lead": "Enter your institution code, user ID and password. Platform operators use the institution code 0000000000.",
            "institution_code": "Institution code (10 digits)",
            "user_id": "User ID",
            "password": "Password",
            "login_submit": "Sign in",
            "login_failed": "Sign-in failed. Check what you entered and try again. If it keeps failing, ask your administrator.",
            "for_client": "Signing in to",
            "change_title": "Change your password",
            "change_lead": "You signed in with an initial password. Set a new password to continue.",
            "new_password": "New password",
            "new_password_confirm": "New password (again)",
            "change_submit": "Change and continue",
            "change_failed": "The password could not be changed:",
            "password_rules": "8-30 characters; at least 3 of lower-case letters, upper-case letters, digits (1-9) and symbols; no character 3 or more times in a row; not your user ID or current password.",
            "error_title": "Error",
            "error_back": "Please return to the application and start again.",
            "unknown_client": "This application is not registered.",
            "bad_redirect_uri": "The redirect URI does not match a registered one.",
            "missing_parameter": "A required parameter is missing.",
            "form_expired": "This page has expired or the form was not sent from it.",
            "server_error": "A system error occurred. Please try again later.",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locale(value: &str) -> Locale {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, value.parse().unwrap());
        Locale::from_headers(&headers)
    }

    #[test]
    fn japanese_first_english_when_preferred() {
        assert_eq!(Locale::from_headers(&HeaderMap::new()), Locale::Ja);
        assert_eq!(locale("en-US,en;q=0.9"), Locale::En);
        assert_eq!(locale("ja,en;q=0.8"), Locale::Ja);
        assert_eq!(locale("en;q=0.5,ja;q=0.9"), Locale::Ja);
        assert_eq!(locale("fr-FR"), Locale::Ja);
        assert_eq!(locale("fr,en;q=0.3"), Locale::En);
        assert_eq!(locale("en,ja"), Locale::En);
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let ja = messages(Locale::Ja);
        let en = messages(Locale::En);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ja), keys(&en));
    }
}
