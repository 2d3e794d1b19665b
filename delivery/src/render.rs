//! The texts around a code: e-mail, SMS, and the SSML a voice call reads.
//!
//! Pure functions of the [`Message`]. Codes are ASCII digits ([`Message::checked_destination`]
//! refuses anything else before rendering), so they need no escaping in SSML.
//!
//! The SSML uses only tags Amazon Polly supports for its Japanese voices (Mizuki, Takumi) in
//! both the standard and the neural engine: `<speak>`, `<break>`, `<prosody rate>` and
//! `<say-as interpret-as="digits">`, which reads each digit on its own ("いち、に、さん…")
//! instead of a number ("十二万三千…"). `characters` would also spell digits out, but Polly
//! falls back to the standard voice for the whole sentence when a neural voice meets it.

use crate::message::{Locale, Message};

/// Subject and plain-text body of the e-mail.
pub fn email(msg: &Message) -> (String, String) {
    let code = &msg.code;
    let minutes = msg.lifetime_minutes();
    match msg.locale {
        Locale::Ja => (
            "【関守】認証コードのお知らせ".to_owned(),
            format!(
                "関守（Sekimori）のログインに使う認証コードをお知らせします。\n\n\
                 認証コード: {code}\n\n\
                 このコードの有効期限は{minutes}分間です。\n\
                 コードは誰にも教えないでください。\n\
                 お心当たりのない場合は、このメールを破棄してください。\n"
            ),
        ),
        Locale::En => (
            "Sekimori verification code".to_owned(),
            format!(
                "Here is the verification code to sign in to Sekimori.\n\n\
                 Code: {code}\n\n\
                 It is valid for {minutes} minutes.\n\
                 Never share this code with anyone.\n\
                 If you did not try to sign in, you can ignore this e-mail.\n"
            ),
        ),
    }
}

/// The SMS: one segment (70 UCS-2 characters) at most.
pub fn sms(msg: &Message) -> String {
    let code = &msg.code;
    let minutes = msg.lifetime_minutes();
    match msg.locale {
        Locale::Ja => {
            format!("関守 認証コード: {code}（{minutes}分間有効）他人に教えないでください。")
        }
        Locale::En => format!("Sekimori code: {code} (valid for {minutes} min). Do not share it."),
    }
}

/// The SSML of the voice call, in Japanese whatever the locale: the code twice, digit by digit.
pub fn voice_ssml(msg: &Message) -> String {
    let code = &msg.code;
    let minutes = msg.lifetime_minutes();
    let digits =
        format!(r#"<prosody rate="slow"><say-as interpret-as="digits">{code}</say-as></prosody>"#);
    format!(
        "<speak>関守です。認証コードを申し上げます。<break time=\"500ms\"/>{digits}。\
         <break time=\"1s\"/>繰り返します。<break time=\"500ms\"/>{digits}。\
         <break time=\"500ms\"/>有効期限は{minutes}分間です。</speak>"
    )
}

/// The same call as plain text, for carriers behind the webhook that do not take SSML: digits
/// separated by the Japanese comma so a speech engine reads them one by one.
pub fn voice_text(msg: &Message) -> String {
    let spaced: Vec<String> = msg.code.chars().map(String::from).collect();
    let spaced = spaced.join("、");
    let minutes = msg.lifetime_minutes();
    format!(
        "関守です。認証コードを申し上げます。{spaced}。繰り返します。{spaced}。有効期限は{minutes}分間です。"
    )
}

/// The text a channel carries, as written to the outbox and the webhook: the e-mail as subject,
/// blank line, body; the SMS text; the voice SSML.
pub fn text(msg: &Message) -> String {
    match msg.method {
        crate::Method::Email => {
            let (subject, body) = email(msg);
            format!("{subject}\n\n{body}")
        }
        crate::Method::Sms => sms(msg),
        crate::Method::Voice => voice_ssml(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn msg(method: Method, locale: Locale) -> Message {
        Message::new(method, "x", "048213", locale)
    }

    #[test]
    fn email_carries_code_and_lifetime() {
        let (subject, body) = email(&msg(Method::Email, Locale::Ja));
        assert!(subject.contains("認証コード"));
        assert!(body.contains("048213") && body.contains("5分間"));
        let (subject, body) = email(&msg(Method::Email, Locale::En));
        assert!(subject.contains("verification code"));
        assert!(body.contains("048213") && body.contains("5 minutes"));
    }

    #[test]
    fn sms_fits_one_segment() {
        for locale in [Locale::Ja, Locale::En] {
            let text = sms(&msg(Method::Sms, locale));
            assert!(text.contains("048213"));
            assert!(text.chars().count() <= 70, "{text}");
        }
        assert_eq!(
            sms(&msg(Method::Sms, Locale::Ja)),
            "関守 認証コード: 048213（5分間有効）他人に教えないでください。"
        );
    }

    #[test]
    fn voice_reads_digits_twice() {
        let ssml = voice_ssml(&msg(Method::Voice, Locale::En));
        assert!(ssml.starts_with("<speak>") && ssml.ends_with("</speak>"));
        assert_eq!(
            ssml.matches(r#"<say-as interpret-as="digits">048213</say-as>"#)
                .count(),
            2
        );
        assert!(ssml.contains("繰り返します"));
        let text = voice_text(&msg(Method::Voice, Locale::Ja));
        assert_eq!(text.matches("0、4、8、2、1、3").count(), 2);
    }
}
