//! Page texts in Japanese (the default) and English, chosen by `Accept-Language`.

use axum::http::{HeaderMap, header};
use serde_json::Value;

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

/// Every page text: (key, Japanese, English). One row per text keeps both languages complete.
const MESSAGES: &[(&str, &str, &str)] = &[
    (
        "logout_confirm",
        "ログアウトしますか？このブラウザのログインが終了します。",
        "Sign out? This ends your sign-in in this browser.",
    ),
    (
        "bad_logout_request",
        "ログアウトの要求が正しくありません。",
        "The sign-out request is not valid.",
    ),
    ("product", "関守 Sekimori", "Sekimori"),
    ("login_title", "ログイン", "Sign in"),
    (
        "login_lead",
        "医療機関等コード、ユーザID、パスワードを入力してください。運用事業者は医療機関等コードに 0000000000 を入力します。",
        "Enter your institution code, user ID and password. Platform operators use the institution code 0000000000.",
    ),
    (
        "institution_code",
        "医療機関等コード（10桁）",
        "Institution code (10 digits)",
    ),
    ("user_id", "ユーザID", "User ID"),
    ("password", "パスワード", "Password"),
    ("login_submit", "ログイン", "Sign in"),
    (
        "login_failed",
        "ログインできませんでした。入力内容をご確認のうえ、もう一度お試しください。解決しない場合は管理者にお問い合わせください。",
        "Sign-in failed. Check what you entered and try again. If it keeps failing, ask your administrator.",
    ),
    ("for_client", "ログイン先", "Signing in to"),
    ("change_title", "パスワードの変更", "Change your password"),
    (
        "change_lead",
        "初期パスワードでログインしました。続けるには新しいパスワードを設定してください。",
        "You signed in with an initial password. Set a new password to continue.",
    ),
    ("new_password", "新しいパスワード", "New password"),
    (
        "new_password_confirm",
        "新しいパスワード（確認）",
        "New password (again)",
    ),
    ("change_submit", "変更して続ける", "Change and continue"),
    (
        "change_failed",
        "パスワードを変更できませんでした。次の点をご確認ください。",
        "The password could not be changed:",
    ),
    (
        "password_rules",
        "8～30文字。英小文字・英大文字・数字（1～9）・記号のうち3種類以上。同じ文字を3文字以上続けない。ユーザIDや現在のパスワードと同じものは使えません。",
        "8-30 characters; at least 3 of lower-case letters, upper-case letters, digits (1-9) and symbols; no character 3 or more times in a row; not your user ID or current password.",
    ),
    ("error_title", "エラー", "Error"),
    (
        "error_back",
        "お手数ですが、ご利用のアプリケーションに戻り、最初からやり直してください。",
        "Please return to the application and start again.",
    ),
    (
        "unknown_client",
        "このアプリケーションは登録されていません。",
        "This application is not registered.",
    ),
    (
        "bad_redirect_uri",
        "リダイレクト先が登録されたものと一致しません。",
        "The redirect URI does not match a registered one.",
    ),
    (
        "missing_parameter",
        "必要なパラメータが不足しています。",
        "A required parameter is missing.",
    ),
    (
        "form_expired",
        "画面の有効期限が切れたか、不正な送信です。",
        "This page has expired or the form was not sent from it.",
    ),
    (
        "server_error",
        "システムエラーが発生しました。しばらくしてから再度お試しください。",
        "A system error occurred. Please try again later.",
    ),
    ("account_title", "アカウント", "Your account"),
    ("name", "氏名", "Name"),
    ("account_type", "権限区分", "Account type"),
    ("current_password", "現在のパスワード", "Current password"),
    (
        "account_change_submit",
        "パスワードを変更",
        "Change password",
    ),
    (
        "password_changed",
        "パスワードを変更しました。他の端末のログインは終了しました。",
        "Your password was changed. Sessions on other devices were signed out.",
    ),
    ("recent_sign_ins", "最近のログイン", "Recent sign-ins"),
    ("when", "日時（日本時間）", "When (Japan time)"),
    ("result", "結果", "Result"),
    ("ip", "IPアドレス", "IP address"),
    ("success", "成功", "Success"),
    ("failure", "失敗", "Failure"),
    ("logout", "ログアウト", "Sign out"),
    ("signed_out", "ログアウトしました。", "You are signed out."),
    ("login_again", "もう一度ログインする", "Sign in again"),
    (
        "rate_limited_title",
        "しばらくお待ちください",
        "Please wait",
    ),
    (
        "rate_limited",
        "短時間に多くの試行があったため、一時的に受け付けを停止しています。",
        "There were too many attempts in a short time, so sign-in is paused for a moment.",
    ),
    ("retry_after_before", "約", "Please try again in about "),
    (
        "retry_after_after",
        "秒後にもう一度お試しください。",
        " seconds.",
    ),
    ("sf_title", "二要素認証", "Two-step verification"),
    (
        "sf_sent",
        "に認証コードを送信しました。",
        "— a code was sent there.",
    ),
    ("sf_code", "認証コード", "Code"),
    (
        "sf_code_hint",
        "届いた6桁の数字を入力してください。有効期限は5分間です。",
        "Enter the 6 digits you received. The code is valid for 5 minutes.",
    ),
    ("sf_submit", "確認", "Verify"),
    ("sf_resend", "認証コードを再送信", "Send a new code"),
    (
        "sf_resent",
        "認証コードを再送信しました。",
        "A new code was sent.",
    ),
    (
        "sf_change_method",
        "別の方法を選ぶ",
        "Choose another method",
    ),
    (
        "sf_wrong",
        "認証コードが正しくありません。もう一度入力してください。",
        "The code is not correct. Please enter it again.",
    ),
    (
        "sf_no_code",
        "認証コードが送信されていません。「認証コードを再送信」を押してください。",
        "No code has been sent yet. Press “Send a new code”.",
    ),
    (
        "sf_delivery_failed",
        "認証コードを送信できませんでした。しばらくしてから「認証コードを再送信」を押すか、別の方法をお試しください。",
        "The code could not be sent. Please press “Send a new code” in a moment, or try another method.",
    ),
    (
        "sf_enroll_title",
        "二要素認証の登録",
        "Set up two-step verification",
    ),
    (
        "sf_enroll_lead",
        "ログインには二要素認証が必要です。認証コードの受け取り方法と送信先を登録してください。入力した送信先に届いたコードを確認すると登録されます。",
        "Signing in needs a second step. Choose how to receive codes and where; it is registered once you confirm the code sent there.",
    ),
    ("sf_method", "受け取り方法", "Receive codes by"),
    ("method_email", "メール", "E-mail"),
    ("method_sms", "SMS（携帯電話）", "SMS (mobile phone)"),
    ("method_voice", "音声電話", "Voice call"),
    ("sf_email", "メールアドレス", "E-mail address"),
    (
        "sf_email_hint",
        "メールを選んだ場合に入力してください。",
        "Fill in when you chose e-mail.",
    ),
    ("sf_phone", "電話番号（日本国内）", "Phone number (Japan)"),
    (
        "sf_phone_hint",
        "SMS・音声電話を選んだ場合に入力してください。例: 090-1234-5678、03-1234-5678、+81 90-1234-5678。SMSは携帯電話番号のみ、海外の番号は使えません。",
        "Fill in when you chose SMS or a voice call, e.g. 090-1234-5678, 03-1234-5678, +81 90-1234-5678. SMS needs a mobile number; numbers outside Japan cannot be used.",
    ),
    ("sf_send", "認証コードを送信", "Send a code"),
    (
        "sf_choose_method",
        "受け取り方法を選んでください。",
        "Choose how to receive codes.",
    ),
    ("account_sf_title", "二要素認証", "Two-step verification"),
    ("account_sf_current", "現在の送信先", "Current destination"),
    ("account_sf_none", "未登録", "Not registered"),
    (
        "account_sf_lead",
        "変更するには新しい受け取り方法と送信先を入力してください。届いた認証コードを確認すると変更されます。",
        "To change it, enter the new method and destination; it changes once you confirm the code sent there.",
    ),
    (
        "account_sf_changed",
        "二要素認証の送信先を変更しました。",
        "Your two-step verification destination was changed.",
    ),
    (
        "forgot_link",
        "パスワードをお忘れの方",
        "Forgot your password?",
    ),
    ("forgot_title", "パスワードの再設定", "Reset your password"),
    (
        "forgot_lead",
        "医療機関等コード、ユーザID、登録済みの二要素認証の受け取り方法を入力してください。登録済みの送信先に認証コードを送ります。",
        "Enter your institution code, user ID and the method registered for two-step verification. A code is sent to the registered destination.",
    ),
    (
        "forgot_method",
        "登録済みの受け取り方法",
        "Registered method",
    ),
    ("forgot_submit", "認証コードを送信", "Send a code"),
    (
        "forgot_disabled",
        "パスワードの再設定はこの環境では利用できません。管理者にお問い合わせください。",
        "Password reset is not available here. Please ask your administrator.",
    ),
    (
        "reset_sent",
        "入力されたアカウントが存在し、選択した方法の送信先が登録されている場合は、認証コードを送信しました。届いたコードと新しいパスワードを入力してください。",
        "If the account exists and has a destination registered for that method, a code was sent to it. Enter the code and a new password.",
    ),
    ("reset_submit", "パスワードを再設定", "Reset password"),
    (
        "reset_bad_code",
        "認証コードが正しくないか、有効期限が切れています。",
        "The code is not correct or has expired.",
    ),
    (
        "reset_done",
        "パスワードを再設定しました。新しいパスワードでログインしてください。",
        "Your password was reset. Please sign in with the new password.",
    ),
];

pub fn messages(locale: Locale) -> Value {
    let map = MESSAGES
        .iter()
        .map(|(key, ja, en)| {
            (
                (*key).to_owned(),
                Value::String(locale.pick(ja, en).to_owned()),
            )
        })
        .collect();
    Value::Object(map)
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
    fn every_text_exists_in_both_languages_once() {
        let mut keys: Vec<&str> = MESSAGES.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), MESSAGES.len(), "duplicate message key");
        assert!(
            MESSAGES
                .iter()
                .all(|(_, ja, en)| !ja.is_empty() && !en.is_empty())
        );
    }
}
