//! Instants on the wire and in the stores, one rule for every crate:
//! `chrono::DateTime<Utc>` to and from a protobuf `Timestamp`, and the
//! current time at the precision the stores keep.

use chrono::{DateTime, SubsecRound, Utc};
use prost_types::Timestamp;

/// Now, to the microsecond: what PostgreSQL keeps, so a value written and
/// read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `t` as a protobuf `Timestamp`.
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        // Below one billion by chrono's own invariant.
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The instant `t` names, if it is one (negative or too many nanoseconds,
/// or out of chrono's range, are not).
pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_round_trips_through_a_timestamp() {
        let t = now();
        assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
        assert_eq!(t.timestamp_subsec_nanos() % 1000, 0, "microseconds only");
    }

    #[test]
    fn a_timestamp_that_is_no_instant_is_refused() {
        for bad in [
            Timestamp {
                seconds: 0,
                nanos: -1,
            },
            Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            },
        ] {
            assert_eq!(from_timestamp(&bad), None, "{bad:?}");
        }
    }
}
