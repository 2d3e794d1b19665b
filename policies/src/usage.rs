//! When an account may sign in (SPEC §4, §6; seeds 002 §2-6 and 000 §2): its usage window
//! (利用開始年月日 to 利用終了年月日, inclusive, default end 9999-12-31) and optional login hours
//! such as "開庁日 09:00~22:00".
//!
//! Every date and time is read in Asia/Tokyo, which is a fixed UTC+9 (Japan has no daylight
//! saving time), so no time-zone database is needed.

use serde::{Deserialize, Serialize};
use time::macros::{date, offset};
use time::{Date, Month, OffsetDateTime, Time, UtcOffset, Weekday};

use crate::Violation;

/// Asia/Tokyo.
pub const JST: UtcOffset = offset!(+9);

/// The usage end date of an account without one [002 §2-6].
pub const FAR_FUTURE: Date = date!(9999 - 12 - 31);

/// The days an account may sign in on, both ends included, in Asia/Tokyo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsageWindow {
    pub start: Date,
    pub end: Date,
}

impl UsageWindow {
    /// A window from `start` (required) to `end` (default 9999-12-31). An end before the start is
    /// refused.
    pub fn new(start: Date, end: Option<Date>) -> Result<Self, Violation> {
        let end = end.unwrap_or(FAR_FUTURE);
        if end < start {
            return Err(Violation::new(
                "usage.end_before_start",
                "利用終了年月日は利用開始年月日以降の日付を入力してください。",
                "The usage end date must not be before the usage start date.",
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether `day` (a date in Asia/Tokyo) is inside the window.
    pub fn contains(&self, day: Date) -> bool {
        self.start <= day && day <= self.end
    }
}

/// Hours in Asia/Tokyo during which sign-in is open, on the listed weekdays. `opens` is included
/// and `closes` excluded. A window whose `closes` is earlier than `opens` runs past midnight
/// (22:00-06:00), and its early-morning part belongs to the day it opened on: with Monday-Friday
/// and 22:00-06:00, Saturday 02:00 is open and Monday 02:00 is not. Public holidays are outside
/// this rule; a deployment that needs them closes sign-in by other means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "LoginHoursConfig", into = "LoginHoursConfig")]
pub struct LoginHours {
    opens: Time,
    closes: Time,
    days: Vec<Weekday>,
}

/// The config form of [`LoginHours`]: `{ opens = "09:00", closes = "22:00", days = ["mon", …] }`;
/// `days` defaults to every day.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LoginHoursConfig {
    opens: String,
    closes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<Vec<String>>,
}

impl TryFrom<LoginHoursConfig> for LoginHours {
    type Error = String;

    fn try_from(c: LoginHoursConfig) -> Result<Self, String> {
        let opens = parse_hhmm(&c.opens).ok_or_else(|| {
            format!(
                "login_hours.opens must be HH:MM between 00:00 and 23:59 (got {:?})",
                c.opens
            )
        })?;
        let closes = parse_hhmm(&c.closes).ok_or_else(|| {
            format!(
                "login_hours.closes must be HH:MM between 00:00 and 23:59 (got {:?})",
                c.closes
            )
        })?;
        let days = match c.days {
            None => ALL_DAYS.to_vec(),
            Some(names) => names
                .iter()
                .map(|n| {
                    parse_weekday(n).ok_or_else(|| {
                        format!("login_hours.days must name weekdays such as \"mon\" (got {n:?})")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        LoginHours::new(opens, closes, &days)
    }
}

impl From<LoginHours> for LoginHoursConfig {
    fn from(h: LoginHours) -> Self {
        let days = (h.days.len() != ALL_DAYS.len())
            .then(|| h.days.iter().map(|d| weekday_name(*d).to_owned()).collect());
        LoginHoursConfig {
            opens: format!("{:02}:{:02}", h.opens.hour(), h.opens.minute()),
            closes: format!("{:02}:{:02}", h.closes.hour(), h.closes.minute()),
            days,
        }
    }
}

const ALL_DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

impl LoginHours {
    /// Login hours from `opens` to `closes` on `days`. Equal times are refused (an empty or a
    /// 24-hour window is better said by having no login hours), and so is an empty day list.
    pub fn new(opens: Time, closes: Time, days: &[Weekday]) -> Result<Self, String> {
        if opens == closes {
            return Err("login_hours.opens and login_hours.closes must differ".to_owned());
        }
        if days.is_empty() {
            return Err("login_hours.days must name at least one weekday".to_owned());
        }
        let mut list: Vec<Weekday> = Vec::with_capacity(7);
        for d in ALL_DAYS {
            if days.contains(&d) {
                list.push(d);
            }
        }
        Ok(Self {
            opens,
            closes,
            days: list,
        })
    }

    /// Every day, from `opens` to `closes`.
    pub fn every_day(opens: Time, closes: Time) -> Result<Self, String> {
        Self::new(opens, closes, &ALL_DAYS)
    }

    pub fn opens(&self) -> Time {
        self.opens
    }

    pub fn closes(&self) -> Time {
        self.closes
    }

    pub fn days(&self) -> &[Weekday] {
        &self.days
    }

    /// Whether sign-in is open at a local (Asia/Tokyo) date and time.
    pub fn is_open_at(&self, local: time::PrimitiveDateTime) -> bool {
        let t = local.time();
        let day = if self.opens < self.closes {
            if self.opens <= t && t < self.closes {
                Some(local.weekday())
            } else {
                None
            }
        } else if t >= self.opens {
            Some(local.weekday())
        } else if t < self.closes {
            Some(local.weekday().previous())
        } else {
            None
        };
        day.is_some_and(|d| self.days.contains(&d))
    }
}

/// Why a sign-in is refused by the calendar or the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageRefusal {
    /// Before the usage start date.
    NotStarted { starts_on: Date },
    /// After the usage end date.
    Ended { ended_on: Date },
    /// Outside the login hours.
    OutsideLoginHours { opens: Time, closes: Time },
}

impl UsageRefusal {
    pub const fn rule(&self) -> &'static str {
        match self {
            UsageRefusal::NotStarted { .. } => "usage.not_started",
            UsageRefusal::Ended { .. } => "usage.ended",
            UsageRefusal::OutsideLoginHours { .. } => "usage.login_hours",
        }
    }

    /// The refusal for the audit log and for admins. The login page shows its generic message.
    pub fn violation(&self) -> Violation {
        match self {
            UsageRefusal::NotStarted { starts_on } => Violation::new(
                self.rule(),
                format!(
                    "利用開始年月日（{}）より前のため利用できません。",
                    slash_date(*starts_on)
                ),
                format!("The account may not be used before its usage start date ({starts_on})."),
            ),
            UsageRefusal::Ended { ended_on } => Violation::new(
                self.rule(),
                format!(
                    "利用終了年月日（{}）を過ぎているため利用できません。",
                    slash_date(*ended_on)
                ),
                format!("The account's usage end date ({ended_on}) has passed."),
            ),
            UsageRefusal::OutsideLoginHours { opens, closes } => Violation::new(
                self.rule(),
                format!(
                    "ご利用時間外です。ご利用時間は{:02}:{:02}～{:02}:{:02}です。",
                    opens.hour(),
                    opens.minute(),
                    closes.hour(),
                    closes.minute()
                ),
                format!(
                    "Sign-in is closed now; it is open from {:02}:{:02} to {:02}:{:02} (Japan time).",
                    opens.hour(),
                    opens.minute(),
                    closes.hour(),
                    closes.minute()
                ),
            ),
        }
    }
}

impl std::fmt::Display for UsageRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.violation().message_en)
    }
}

impl std::error::Error for UsageRefusal {}

/// Decides whether an account may sign in at `now`: inside its usage window (by the Asia/Tokyo
/// date) and, when the institution or deployment sets them, inside its login hours.
pub fn check_sign_in_window(
    window: &UsageWindow,
    hours: Option<&LoginHours>,
    now: OffsetDateTime,
) -> Result<(), UsageRefusal> {
    let Some(local) = now.checked_to_offset(JST) else {
        // Only an instant at the very edge of the representable range lands here.
        return Err(UsageRefusal::Ended {
            ended_on: window.end,
        });
    };
    let today = local.date();
    if today < window.start {
        return Err(UsageRefusal::NotStarted {
            starts_on: window.start,
        });
    }
    if today > window.end {
        return Err(UsageRefusal::Ended {
            ended_on: window.end,
        });
    }
    if let Some(hours) = hours
        && !hours.is_open_at(time::PrimitiveDateTime::new(local.date(), local.time()))
    {
        return Err(UsageRefusal::OutsideLoginHours {
            opens: hours.opens,
            closes: hours.closes,
        });
    }
    Ok(())
}

/// The Asia/Tokyo date of an instant (the day a daily cap counts in, the day a usage window
/// compares).
pub fn jst_date(now: OffsetDateTime) -> Date {
    now.checked_to_offset(JST)
        .map_or_else(|| now.date(), |l| l.date())
}

/// Parses a date as the seed's screens and the bulk CSV write it: `YYYY/MM/DD`, `YYYY-MM-DD` or
/// `YYYYMMDD` (SPEC §12). Surrounding whitespace is ignored; one-digit months and days are
/// accepted with separators (`2020/4/1`).
pub fn parse_date(raw: &str) -> Result<Date, Violation> {
    let bad = || {
        Violation::new(
            "date.format",
            "日付は YYYY/MM/DD、YYYY-MM-DD、YYYYMMDD のいずれかの形式で、実在する日付を入力してください。",
            "Dates must be real dates written YYYY/MM/DD, YYYY-MM-DD or YYYYMMDD.",
        )
    };
    let s = raw.trim();
    if !s.is_ascii() || s.len() > 10 {
        return Err(bad());
    }
    let parts: Vec<&str> = if s.contains('/') {
        s.split('/').collect()
    } else if s.contains('-') {
        s.split('-').collect()
    } else if s.len() == 8 {
        vec![&s[..4], &s[4..6], &s[6..]]
    } else {
        return Err(bad());
    };
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let digits = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(y, 4, 4) || !digits(m, 1, 2) || !digits(d, 1, 2) {
        return Err(bad());
    }
    let (Ok(year), Ok(month), Ok(day)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>())
    else {
        return Err(bad());
    };
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

/// A date as the seed's screens write it: 2020/04/16.
pub fn slash_date(d: Date) -> String {
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    let lower = s.trim().to_ascii_lowercase();
    ALL_DAYS.into_iter().find(|d| {
        let name = weekday_name(*d);
        lower == name || lower == full_weekday_name(*d)
    })
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

fn full_weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{datetime, time};

    use super::*;

    /// One row: the decision at `now` (UTC) for a window, with optional login hours.
    fn check(
        window: &UsageWindow,
        hours: Option<&LoginHours>,
        now: OffsetDateTime,
        expected: Result<(), &str>,
    ) {
        let got = check_sign_in_window(window, hours, now).map_err(|r| r.rule());
        assert_eq!(got, expected, "{now}");
    }

    #[test]
    fn usage_window_in_tokyo() {
        // 002 §2-6 search screen: 利用開始日 2020/04/16, 利用終了日 9999/12/31 (the default).
        let open = UsageWindow::new(date!(2020 - 04 - 16), None).expect("valid");
        assert_eq!(open.end, FAR_FUTURE);
        // 002 §2-6: 2020/05/17 - 2020/05/31, inclusive.
        let closed =
            UsageWindow::new(date!(2020 - 05 - 17), Some(date!(2020 - 05 - 31))).expect("valid");
        let rows: &[(&UsageWindow, OffsetDateTime, Result<(), &str>)] = &[
            // 2020-04-16 00:00 JST is 2020-04-15 15:00 UTC.
            (
                &open,
                datetime!(2020-04-15 14:59:59 UTC),
                Err("usage.not_started"),
            ),
            (&open, datetime!(2020-04-15 15:00 UTC), Ok(())),
            (&open, datetime!(9999-12-31 14:59:59 UTC), Ok(())),
            (&closed, datetime!(2020-05-31 14:59:59 UTC), Ok(())),
            (&closed, datetime!(2020-05-31 15:00 UTC), Err("usage.ended")),
            (&closed, datetime!(2020-05-17 00:00 +9), Ok(())),
        ];
        for (window, now, expected) in rows {
            check(window, None, *now, *expected);
        }
        assert!(UsageWindow::new(date!(2020 - 05 - 17), Some(date!(2020 - 05 - 16))).is_err());
    }

    #[test]
    fn login_hours() {
        let window = UsageWindow::new(date!(2020 - 01 - 01), None).expect("valid");
        // 000 §2 "システムのご利用時間… 開庁日 09:00~22:00".
        let day = LoginHours::new(
            time!(9:00),
            time!(22:00),
            &[
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
        )
        .expect("valid");
        // Decision: a window that crosses midnight belongs to the day it opened on.
        let night = LoginHours::new(time!(22:00), time!(6:00), &[Weekday::Friday]).expect("valid");
        let rows: &[(&LoginHours, OffsetDateTime, Result<(), &str>)] = &[
            // 2024-04-01 is a Monday.
            (
                &day,
                datetime!(2024-04-01 08:59 +9),
                Err("usage.login_hours"),
            ),
            (&day, datetime!(2024-04-01 09:00 +9), Ok(())),
            (&day, datetime!(2024-04-01 21:59:59 +9), Ok(())),
            (
                &day,
                datetime!(2024-04-01 22:00 +9),
                Err("usage.login_hours"),
            ),
            (&day, datetime!(2024-04-01 00:30 UTC), Ok(())),
            (
                &day,
                datetime!(2024-04-06 10:00 +9),
                Err("usage.login_hours"),
            ),
            // 2024-04-05 is a Friday: open Friday 22:00 to Saturday 06:00.
            (
                &night,
                datetime!(2024-04-05 21:59 +9),
                Err("usage.login_hours"),
            ),
            (&night, datetime!(2024-04-05 23:00 +9), Ok(())),
            (&night, datetime!(2024-04-06 05:59 +9), Ok(())),
            (
                &night,
                datetime!(2024-04-06 06:00 +9),
                Err("usage.login_hours"),
            ),
            (
                &night,
                datetime!(2024-04-05 02:00 +9),
                Err("usage.login_hours"),
            ),
        ];
        for (hours, now, expected) in rows {
            check(&window, Some(hours), *now, *expected);
        }
        assert!(LoginHours::every_day(time!(9:00), time!(9:00)).is_err());
        assert!(LoginHours::new(time!(9:00), time!(10:00), &[]).is_err());
    }

    #[test]
    fn login_hours_config() {
        let h: LoginHours = serde_json::from_str(
            r#"{"opens": "09:00", "closes": "22:00", "days": ["mon", "Friday"]}"#,
        )
        .expect("json");
        assert_eq!(h.days(), [Weekday::Monday, Weekday::Friday]);
        assert_eq!(
            serde_json::to_string(&h).expect("json"),
            r#"{"opens":"09:00","closes":"22:00","days":["mon","fri"]}"#
        );
        for bad in [
            r#"{"opens": "9", "closes": "22:00"}"#,
            r#"{"opens": "24:00", "closes": "22:00"}"#,
            r#"{"opens": "09:00", "closes": "09:00"}"#,
            r#"{"opens": "09:00", "closes": "22:00", "days": ["holiday"]}"#,
        ] {
            assert!(serde_json::from_str::<LoginHours>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        // 002 §2-6 "西暦年月日 8 桁 入力例 2020/10/10"; SPEC §12: YYYY/MM/DD, YYYY-MM-DD, YYYYMMDD.
        let rows: &[(&str, Option<Date>)] = &[
            ("2020/10/10", Some(date!(2020 - 10 - 10))),
            ("2020-10-10", Some(date!(2020 - 10 - 10))),
            ("20201010", Some(date!(2020 - 10 - 10))),
            ("2020/4/1", Some(date!(2020 - 04 - 01))),
            ("9999/12/31", Some(FAR_FUTURE)),
            (" 2024/02/29 ", Some(date!(2024 - 02 - 29))),
            ("2023/02/29", None),
            ("2020/13/01", None),
            ("2020/10", None),
            ("2020/10/10/1", None),
            ("２０２０/10/10", None),
            ("2020-10/10", None),
            ("", None),
            ("R2/10/10", None),
        ];
        for (raw, expected) in rows {
            assert_eq!(parse_date(raw).ok(), *expected, "{raw:?}");
        }
        assert_eq!(slash_date(date!(2020 - 04 - 16)), "2020/04/16");
    }
}
