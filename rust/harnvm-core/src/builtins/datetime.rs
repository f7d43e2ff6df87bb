//! Date and time builtins with IANA zones (chrono + chrono-tz).
//!
//! A timestamp is seconds since the Unix epoch: an int when whole, a float
//! when it carries a fraction (`date_add(t, 1500ms)`). Durations are Harn
//! `duration` values (milliseconds). Zones are IANA names (`"UTC"`,
//! `"America/Los_Angeles"`); formatting uses strftime patterns.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::args::{done, expected};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "date_now", imp: Native(date_now) },
    BuiltinDef { name: "date_parse", imp: Native(date_parse) },
    BuiltinDef { name: "date_format", imp: Native(date_format) },
    BuiltinDef { name: "date_to_zone", imp: Native(date_to_zone) },
    BuiltinDef { name: "date_in_zone", imp: Native(date_in_zone) },
    BuiltinDef { name: "date_from_components", imp: Native(date_from_components) },
    BuiltinDef { name: "date_add", imp: Native(date_add) },
    BuiltinDef { name: "date_diff", imp: Native(date_diff) },
    BuiltinDef { name: "weekday_name", imp: Native(weekday_name) },
    BuiltinDef { name: "month_name", imp: Native(month_name) },
    BuiltinDef { name: "duration_ms", imp: Native(duration_ms) },
    BuiltinDef { name: "duration_seconds", imp: Native(duration_seconds) },
    BuiltinDef { name: "duration_minutes", imp: Native(duration_minutes) },
    BuiltinDef { name: "duration_hours", imp: Native(duration_hours) },
    BuiltinDef { name: "duration_days", imp: Native(duration_days) },
    BuiltinDef { name: "duration_to_seconds", imp: Native(duration_to_seconds) },
    BuiltinDef { name: "duration_to_ms", imp: Native(duration_to_ms) },
    BuiltinDef { name: "duration_to_human", imp: Native(duration_to_human) },
];

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

/// A timestamp argument as an instant in UTC (nanosecond precision).
fn instant_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<DateTime<Utc>> {
    let v = arg(args, i);
    let out_of_range = || fail(builtin, format!("timestamp {} is out of range", v.display()));
    match v {
        Value::Int(secs) => DateTime::from_timestamp(*secs, 0).ok_or_else(out_of_range),
        Value::Float(f) if f.is_finite() => {
            // Whole milliseconds of `f * 1000` (as 0.9.11: `.481` stays
            // `.481` although the float is a hair below it, because the
            // product rounds up to a whole number).
            let ms = (f * 1000.0).trunc();
            if ms.abs() > 1e18 {
                return Err(out_of_range());
            }
            DateTime::from_timestamp_millis(ms as i64).ok_or_else(out_of_range)
        }
        Value::Str(s) => parse_date(s).map_err(|_| cannot_parse(s)),
        other => Err(expected(builtin, "a timestamp (seconds since the epoch)", other)),
    }
}

/// Seconds since the epoch: an int when whole, else a float.
fn timestamp_value(t: DateTime<Utc>) -> Value {
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        Value::Int(t.timestamp())
    } else {
        Value::Float(t.timestamp() as f64 + f64::from(nanos) / 1e9)
    }
}

fn zone_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<Tz> {
    match arg(args, i) {
        Value::Nil => Ok(Tz::UTC),
        Value::Str(name) => name.parse::<Tz>().map_err(|_| fail(builtin, format!("unknown time zone '{name}'"))),
        other => Err(expected(builtin, "a time zone name", other)),
    }
}

#[cold]
fn cannot_parse(text: &str) -> VmError {
    VmError::throw_msg(format!("Cannot parse date: {text}"))
}

/// Accepts RFC 3339 / ISO 8601 date-times (with `Z` or an offset), naive
/// date-times (read as UTC), plain dates, and integral epoch seconds.
fn parse_date(text: &str) -> Result<DateTime<Utc>, ()> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"] {
        if let Ok(t) = DateTime::parse_from_str(text, fmt) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).ok_or(())?.and_utc());
    }
    if let Ok(secs) = text.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or(());
    }
    Err(())
}

fn date_now(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(timestamp_value(Utc::now()))
}

fn date_parse(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::Str(s) => done(timestamp_value(parse_date(s).map_err(|_| cannot_parse(s))?)),
        v @ (Value::Int(_) | Value::Float(_)) => done(v.clone()),
        other => Err(expected("date_parse", "a date string", other)),
    }
}

/// strftime with chrono's formatter; a bad pattern is an error, not a panic
/// (chrono reports it through `fmt::Error`).
fn strftime(t: &DateTime<Tz>, pattern: &str, builtin: &str) -> VmResult<String> {
    use std::fmt::Write as _;
    let items: Vec<chrono::format::Item> = chrono::format::StrftimeItems::new(pattern).collect();
    if items.iter().any(|item| matches!(item, chrono::format::Item::Error)) {
        return Err(fail(builtin, format!("invalid format string '{pattern}'")));
    }
    let mut out = String::new();
    write!(out, "{}", t.format_with_items(items.into_iter()))
        .map_err(|_| fail(builtin, format!("cannot format with '{pattern}'")))?;
    Ok(out)
}

fn date_format(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "date_format")?;
    let pattern = match arg(args, 1) {
        Value::Nil => "%Y-%m-%d %H:%M:%S",
        Value::Str(s) => s.as_str(),
        other => return Err(expected("date_format", "a format string", other)),
    };
    let zone = zone_arg(args, 2, "date_format")?;
    done(Value::str(strftime(&t.with_timezone(&zone), pattern, "date_format")?))
}

/// RFC 3339 with an explicit numeric offset (`+00:00`, never `Z`).
fn rfc3339(t: &DateTime<Tz>) -> String {
    if t.timestamp_subsec_nanos() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
    }
}

fn date_to_zone(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "date_to_zone")?;
    let zone = zone_arg(args, 1, "date_to_zone")?;
    done(Value::str(rfc3339(&t.with_timezone(&zone))))
}

fn date_in_zone(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "date_in_zone")?;
    let zone = zone_arg(args, 1, "date_in_zone")?;
    let local = t.with_timezone(&zone);
    let offset = local.offset().fix().local_minus_utc();
    let mut d = DictMap::new();
    let mut put = |k: &str, v: Value| {
        d.insert(HStr::new(k.to_string()), v);
    };
    put("year", Value::Int(i64::from(local.year())));
    put("month", Value::Int(i64::from(local.month())));
    put("day", Value::Int(i64::from(local.day())));
    put("hour", Value::Int(i64::from(local.hour())));
    put("minute", Value::Int(i64::from(local.minute())));
    put("second", Value::Int(i64::from(local.second())));
    put("weekday", Value::str(local.format("%A").to_string()));
    put("offset_seconds", Value::Int(i64::from(offset)));
    put("zone", Value::str(zone.name()));
    put("abbreviation", Value::str(local.format("%Z").to_string()));
    put("iso", Value::str(rfc3339(&local)));
    put("timestamp", timestamp_value(t));
    done(Value::dict(d))
}

fn date_from_components(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "date_from_components";
    let parts = match arg(args, 0) {
        Value::Dict(d) => d,
        other => return Err(expected(NAME, "a dict of date components", other)),
    };
    let zone = zone_arg(args, 1, NAME)?;
    let part = |k: &str, default: i64| -> VmResult<i64> {
        match parts.get(&HStr::new(k.to_string())) {
            None | Some(Value::Nil) => Ok(default),
            Some(Value::Int(n)) => Ok(*n),
            Some(other) => Err(fail(NAME, format!("'{k}' must be an int, got {}", other.type_name()))),
        }
    };
    let year = part("year", 1970)?;
    let fields = [part("month", 1)?, part("day", 1)?, part("hour", 0)?, part("minute", 0)?, part("second", 0)?];
    let invalid = || fail(NAME, "invalid date components");
    let year = i32::try_from(year).map_err(|_| invalid())?;
    let [month, day, hour, minute, second] = fields.map(|f| u32::try_from(f).unwrap_or(u32::MAX));
    let naive =
        NaiveDate::from_ymd_opt(year, month, day).and_then(|d| d.and_hms_opt(hour, minute, second)).ok_or_else(invalid)?;
    // A wall time skipped by a DST jump does not exist; an ambiguous one takes the earlier instant.
    let local =
        zone.from_local_datetime(&naive).earliest().ok_or_else(|| fail(NAME, "that local time does not exist in the zone"))?;
    done(timestamp_value(local.with_timezone(&Utc)))
}

fn duration_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<i64> {
    match arg(args, i) {
        Value::Duration(ms) => Ok(*ms),
        Value::Int(ms) => Ok(*ms),
        other => Err(expected(builtin, "a duration", other)),
    }
}

fn date_add(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "date_add")?;
    let ms = duration_arg(args, 1, "date_add")?;
    let moved =
        t.checked_add_signed(chrono::TimeDelta::milliseconds(ms)).ok_or_else(|| fail("date_add", "result is out of range"))?;
    done(timestamp_value(moved))
}

fn date_diff(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let a = instant_arg(args, 0, "date_diff")?;
    let b = instant_arg(args, 1, "date_diff")?;
    done(Value::Duration((a - b).num_milliseconds()))
}

fn weekday_name(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "weekday_name")?.with_timezone(&zone_arg(args, 1, "weekday_name")?);
    done(Value::str(t.format("%A").to_string()))
}

fn month_name(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = instant_arg(args, 0, "month_name")?.with_timezone(&zone_arg(args, 1, "month_name")?);
    done(Value::str(t.format("%B").to_string()))
}

fn scaled_duration(args: &[Value], builtin: &str, unit_ms: i64) -> VmResult<Flow> {
    let ms = match arg(args, 0) {
        Value::Int(n) => n.checked_mul(unit_ms),
        Value::Float(f) if f.is_finite() && (f * unit_ms as f64).abs() < 9e18 => Some((f * unit_ms as f64).round() as i64),
        Value::Float(_) => None,
        other => return Err(expected(builtin, "a number", other)),
    };
    done(Value::Duration(ms.ok_or_else(|| fail(builtin, "duration is out of range"))?))
}

fn duration_ms(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    scaled_duration(args, "duration_ms", 1)
}
fn duration_seconds(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    scaled_duration(args, "duration_seconds", 1000)
}
fn duration_minutes(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    scaled_duration(args, "duration_minutes", 60_000)
}
fn duration_hours(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    scaled_duration(args, "duration_hours", 3_600_000)
}
fn duration_days(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    scaled_duration(args, "duration_days", 86_400_000)
}

fn duration_to_seconds(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let ms = duration_arg(args, 0, "duration_to_seconds")?;
    done(if ms % 1000 == 0 { Value::Int(ms / 1000) } else { Value::Float(ms as f64 / 1000.0) })
}

fn duration_to_ms(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Int(duration_arg(args, 0, "duration_to_ms")?))
}

/// `3h 14m`, `-2h`, `1d 2h`, `1s 500ms`, `0ms`: non-zero units, largest first.
pub fn human_duration(ms: i64) -> String {
    if ms == 0 {
        return "0ms".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let mut rest = ms.unsigned_abs();
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    format!("{sign}{}", parts.join(" "))
}

fn duration_to_human(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(human_duration(duration_arg(args, 0, "duration_to_human")?)))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn parses_common_forms_and_rejects_bad_dates() {
        assert_eq!(call("date_parse", &[Value::str("1970-01-02")]).unwrap(), "86400");
        assert_eq!(call("date_parse", &[Value::str("1970-01-01T01:00:00+01:00")]).unwrap(), "0");
        assert_eq!(call("date_parse", &[Value::str("1970-01-01 00:00:01")]).unwrap(), "1");
        assert_eq!(call("date_parse", &[Value::str("2024-13-01")]).unwrap_err(), "Thrown: Cannot parse date: 2024-13-01");
        assert_eq!(call("date_parse", &[Value::str("not a date")]).unwrap_err(), "Thrown: Cannot parse date: not a date");
        assert_eq!(call("date_parse", &[Value::Nil]).unwrap_err(), "Thrown: date_parse: expected a date string, got nil");
    }

    #[test]
    fn zones_and_formatting() {
        let ts = Value::Int(1_777_138_329); // 2026-04-25T17:32:09Z
        assert_eq!(call("date_to_zone", &[ts.clone(), Value::str("Asia/Tokyo")]).unwrap(), "2026-04-26T02:32:09+09:00");
        assert_eq!(
            call("date_to_zone", &[ts.clone(), Value::str("Mars/Olympus")]).unwrap_err(),
            "Thrown: date_to_zone: unknown time zone 'Mars/Olympus'"
        );
        assert_eq!(call("date_format", &[ts.clone(), Value::str("%Y")]).unwrap(), "2026");
        assert!(call("date_format", &[ts, Value::str("%Q")]).unwrap_err().contains("invalid format string"));
        let err = call("date_format", &[Value::Float(1e300)]).unwrap_err();
        assert!(err.starts_with("Thrown: date_format: timestamp ") && err.ends_with(" is out of range"), "{err}");
    }

    #[test]
    fn components_respect_dst() {
        let parts = Value::dict_from([("year", Value::Int(2026)), ("month", Value::Int(1)), ("day", Value::Int(15))]);
        assert_eq!(call("date_from_components", &[parts, Value::str("America/New_York")]).unwrap(), "1768453200");
        let bad = Value::dict_from([("month", Value::Int(13))]);
        assert_eq!(call("date_from_components", &[bad]).unwrap_err(), "Thrown: date_from_components: invalid date components");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(194 * 60_000), "3h 14m");
        assert_eq!(human_duration(-7_200_000), "-2h");
        assert_eq!(human_duration(1500), "1s 500ms");
        assert_eq!(human_duration(0), "0ms");
        assert_eq!(human_duration(i64::MIN).chars().next(), Some('-'));
    }
}
