//! Serde helpers that write `time::Duration` settings as whole seconds, the unit the config files
//! use (`lifetime_secs = 300`).

use serde::{Deserialize, Deserializer, Serializer};
use time::Duration;

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.whole_seconds())
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = i64::deserialize(d)?;
    if secs < 0 {
        return Err(serde::de::Error::custom(
            "a duration in seconds must not be negative",
        ));
    }
    Ok(Duration::seconds(secs))
}

pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.whole_seconds()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<i64>::deserialize(d)? {
            Some(secs) if secs < 0 => Err(serde::de::Error::custom(
                "a duration in seconds must not be negative",
            )),
            Some(secs) => Ok(Some(Duration::seconds(secs))),
            None => Ok(None),
        }
    }
}
