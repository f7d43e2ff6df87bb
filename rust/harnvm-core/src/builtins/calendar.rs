//! The natives under std/calendar (`__calendar_*`, named as in harn 0.9.11):
//! civil-calendar arithmetic in IANA zones, ISO weeks, country metadata, US
//! federal holidays and business-day rules.
//!
//! Instants are Unix seconds kept to the microsecond (an int when whole, else
//! a float), RFC 3339 strings, `YYYY-MM-DD` dates (local midnight in the zone
//! at hand) or `{timestamp: ...}` dicts. Local times that a zone skips are
//! errors; repeated ones follow a disambiguation (`earlier`, `later`,
//! `reject`).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::args::{check_alloc_product, done};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "__calendar_parts", imp: Native(parts) },
    BuiltinDef { name: "__calendar_from_local", imp: Native(from_local) },
    BuiltinDef { name: "__calendar_add", imp: Native(add) },
    BuiltinDef { name: "__calendar_boundary", imp: Native(boundary) },
    BuiltinDef { name: "__calendar_date_range", imp: Native(date_range) },
    BuiltinDef { name: "__calendar_next_weekday", imp: Native(next_weekday) },
    BuiltinDef { name: "__calendar_countries", imp: Native(countries) },
    BuiltinDef { name: "__calendar_country_info", imp: Native(country_info) },
    BuiltinDef { name: "__calendar_supported_holiday_calendars", imp: Native(supported_holiday_calendars) },
    BuiltinDef { name: "__calendar_holidays", imp: Native(holidays) },
    BuiltinDef { name: "__calendar_is_holiday", imp: Native(is_holiday) },
    BuiltinDef { name: "__calendar_is_business_day", imp: Native(is_business_day) },
    BuiltinDef { name: "__calendar_next_business_day", imp: Native(next_business_day) },
    BuiltinDef { name: "__calendar_add_business_days", imp: Native(add_business_days) },
    BuiltinDef { name: "__calendar_business_days_between", imp: Native(business_days_between) },
    BuiltinDef { name: "__calendar_business_window", imp: Native(business_window) },
];

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

/// The text 0.9.11 gives when a native's typed parameter gets another type.
#[cold]
fn param_type(builtin: &str, param: &str, want: &str, got: &Value) -> VmError {
    VmError::throw_msg(format!("Type error: '{builtin}' parameter `{param}` expects {want}, got {}", got.type_name()))
}

fn field<'a>(d: &'a DictMap, key: &str) -> Option<&'a Value> {
    d.get(&HStr::new(key.to_string()))
}

fn text_of(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

/// An int, or a float with no fraction.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15 => Some(*f as i64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Instants, zones and local times

fn zone(v: &Value, builtin: &str) -> VmResult<Tz> {
    match v {
        Value::Nil => Ok(Tz::UTC),
        Value::Str(name) => name.parse::<Tz>().map_err(|_| fail(builtin, format!("unknown timezone '{name}'"))),
        other => Err(fail(builtin, format!("unknown timezone '{}'", other.display()))),
    }
}

fn out_of_range(builtin: &str) -> VmError {
    fail(builtin, "timestamp is out of range")
}

/// `v` as an instant; a bare date means local midnight in `tz`.
fn instant(v: &Value, tz: Tz, builtin: &str) -> VmResult<DateTime<Utc>> {
    instant_at(v, tz, builtin, true)
}

fn instant_at(v: &Value, tz: Tz, builtin: &str, strings: bool) -> VmResult<DateTime<Utc>> {
    match v {
        Value::Int(secs) => DateTime::from_timestamp(*secs, 0).ok_or_else(|| out_of_range(builtin)),
        Value::Float(f) if f.is_finite() && f.abs() < 9e12 => {
            DateTime::from_timestamp_micros((f * 1e6).round() as i64).ok_or_else(|| out_of_range(builtin))
        }
        Value::Float(_) => Err(out_of_range(builtin)),
        Value::Str(s) if strings => parse_instant(s.trim(), tz, builtin),
        Value::Dict(d) => match field(d, "timestamp") {
            Some(inner) => instant_at(inner, tz, builtin, false),
            None => Err(fail(builtin, "missing timestamp argument")),
        },
        other => Err(fail(builtin, format!("expected timestamp number or date dict, got {}", other.type_name()))),
    }
}

fn parse_instant(s: &str, tz: Tz, builtin: &str) -> VmResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => day_start(tz, d, builtin),
        Err(_) => Err(fail(builtin, "expected RFC 3339 timestamp or YYYY-MM-DD date string")),
    }
}

/// Seconds since the epoch: an int when whole, else a float (microseconds).
fn ts_value(t: DateTime<Utc>) -> Value {
    let micros = t.timestamp_micros();
    if micros % 1_000_000 == 0 {
        Value::Int(t.timestamp())
    } else {
        Value::Float(micros as f64 / 1e6)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Disambiguation {
    Earlier,
    Later,
    Reject,
}

fn disambiguation(v: &Value) -> VmResult<Disambiguation> {
    match text_of(v) {
        _ if matches!(v, Value::Nil) => Ok(Disambiguation::Earlier),
        Some("earlier") => Ok(Disambiguation::Earlier),
        Some("later") => Ok(Disambiguation::Later),
        Some("reject") => Ok(Disambiguation::Reject),
        _ => Err(VmError::throw_msg("local_datetime: disambiguation must be 'earlier', 'later', or 'reject'")),
    }
}

/// The instant of local time `naive` in `tz`; a skipped time is an error.
fn resolve(tz: Tz, naive: NaiveDateTime, how: Disambiguation, builtin: &str) -> VmResult<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, b) => match how {
            Disambiguation::Earlier => Ok(a.min(b).with_timezone(&Utc)),
            Disambiguation::Later => Ok(a.max(b).with_timezone(&Utc)),
            Disambiguation::Reject => Err(fail(builtin, format!("local time is ambiguous in timezone {}", tz.name()))),
        },
        chrono::LocalResult::None => Err(fail(builtin, format!("local time does not exist in timezone {}", tz.name()))),
    }
}

/// The first instant of local day `d` (after a gap when midnight is skipped).
fn day_start(tz: Tz, d: NaiveDate, builtin: &str) -> VmResult<DateTime<Utc>> {
    let midnight = d.and_time(NaiveTime::MIN);
    for minutes in (0..=24 * 60).step_by(15) {
        if let Some(t) = tz.from_local_datetime(&(midnight + TimeDelta::minutes(minutes))).earliest() {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(fail(builtin, format!("local time does not exist in timezone {}", tz.name())))
}

fn local(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

#[derive(Clone, Copy)]
enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

fn unit(v: &Value, builtin: &str) -> VmResult<Unit> {
    Ok(match text_of(v) {
        Some("day" | "days") => Unit::Day,
        Some("week" | "weeks") => Unit::Week,
        Some("month" | "months") => Unit::Month,
        Some("quarter" | "quarters") => Unit::Quarter,
        Some("year" | "years") => Unit::Year,
        _ => return Err(fail(builtin, "unit must be day, week, month, quarter, or year")),
    })
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// `d` moved by `months`, its day clamped to the target month's length.
fn add_months(d: NaiveDate, months: i64) -> Option<NaiveDate> {
    let total = i64::from(d.year()) * 12 + i64::from(d.month0()) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = total.rem_euclid(12) as u32 + 1;
    NaiveDate::from_ymd_opt(year, month, d.day().min(days_in_month(year, month)))
}

fn shift(naive: NaiveDateTime, amount: i64, u: Unit) -> Option<NaiveDateTime> {
    let date = match u {
        Unit::Day => naive.date().checked_add_signed(TimeDelta::try_days(amount)?)?,
        Unit::Week => naive.date().checked_add_signed(TimeDelta::try_days(amount.checked_mul(7)?)?)?,
        Unit::Month => add_months(naive.date(), amount)?,
        Unit::Quarter => add_months(naive.date(), amount.checked_mul(3)?)?,
        Unit::Year => add_months(naive.date(), amount.checked_mul(12)?)?,
    };
    Some(date.and_time(naive.time()))
}

// ---------------------------------------------------------------------------
// Parts, local construction, arithmetic

fn parts(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_parts";
    let tz = zone(arg(args, 1), NAME)?;
    let t = instant(arg(args, 0), tz, NAME)?;
    let lt = t.with_timezone(&tz);
    let week = lt.iso_week();
    let int = |n: u32| Value::Int(i64::from(n));
    done(Value::dict_from([
        ("year", Value::Int(i64::from(lt.year()))),
        ("month", int(lt.month())),
        ("day", int(lt.day())),
        ("hour", int(chrono::Timelike::hour(&lt))),
        ("minute", int(chrono::Timelike::minute(&lt))),
        ("second", int(chrono::Timelike::second(&lt))),
        ("weekday", int(lt.weekday().num_days_from_sunday())),
        ("iso_weekday", int(lt.weekday().number_from_monday())),
        ("iso_week", int(week.week())),
        ("iso_week_year", Value::Int(i64::from(week.year()))),
        ("ordinal", int(lt.ordinal())),
        ("quarter", int(lt.month0() / 3 + 1)),
        ("timezone", Value::str(tz.name())),
        ("offset_seconds", Value::Int(i64::from(lt.offset().fix().local_minus_utc()))),
        ("timestamp", ts_value(t)),
        ("iso8601", Value::str(lt.to_rfc3339_opts(SecondsFormat::AutoSi, false))),
        ("date", Value::str(lt.format("%Y-%m-%d").to_string())),
    ]))
}

fn from_local(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_from_local";
    let d = match arg(args, 0) {
        Value::Dict(d) => d,
        other => return Err(param_type(NAME, "parts", "dict", other)),
    };
    let tz = zone(arg(args, 1), NAME)?;
    let how = disambiguation(arg(args, 2))?;
    let component = |key: &str, required: bool| -> VmResult<i64> {
        match field(d, key) {
            None if required => Err(fail(NAME, format!("missing {key}"))),
            None => Ok(0),
            Some(v) => whole(v).ok_or_else(|| fail(NAME, format!("{key} must be an integer, got {}", v.type_name()))),
        }
    };
    let (year, month, day) = (component("year", true)?, component("month", true)?, component("day", true)?);
    let (hour, minute, second) = (component("hour", false)?, component("minute", false)?, component("second", false)?);
    let date = (|| NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, u32::try_from(day).ok()?))()
        .ok_or_else(|| fail(NAME, "invalid date"))?;
    let time =
        (|| NaiveTime::from_hms_opt(u32::try_from(hour).ok()?, u32::try_from(minute).ok()?, u32::try_from(second).ok()?))()
            .ok_or_else(|| fail(NAME, "invalid time"))?;
    done(ts_value(resolve(tz, date.and_time(time), how, NAME)?))
}

fn add(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_add";
    let amount = match arg(args, 1) {
        Value::Int(n) => *n,
        other => return Err(param_type(NAME, "amount", "int", other)),
    };
    let u = unit(arg(args, 2), NAME)?;
    let tz = zone(arg(args, 3), NAME)?;
    let how = disambiguation(arg(args, 4))?;
    let t = instant(arg(args, 0), tz, NAME)?;
    let moved = shift(local(t, tz), amount, u).ok_or_else(|| out_of_range(NAME))?;
    done(ts_value(resolve(tz, moved, how, NAME)?))
}

/// The first local day of the unit containing `d`, and of the next one.
fn unit_days(d: NaiveDate, u: Unit) -> Option<(NaiveDate, NaiveDate)> {
    let first_of_month = |month0: u32| NaiveDate::from_ymd_opt(d.year(), month0 + 1, 1);
    Some(match u {
        Unit::Day => (d, d.succ_opt()?),
        Unit::Week => {
            let monday = d - TimeDelta::days(i64::from(d.weekday().num_days_from_monday()));
            (monday, monday + TimeDelta::days(7))
        }
        Unit::Month => {
            let s = first_of_month(d.month0())?;
            (s, add_months(s, 1)?)
        }
        Unit::Quarter => {
            let s = first_of_month(d.month0() / 3 * 3)?;
            (s, add_months(s, 3)?)
        }
        Unit::Year => {
            let s = first_of_month(0)?;
            (s, add_months(s, 12)?)
        }
    })
}

fn boundary(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_boundary";
    let u = unit(arg(args, 1), NAME)?;
    let end = match text_of(arg(args, 2)) {
        Some("start") => false,
        Some("end") => true,
        _ => return Err(fail(NAME, "edge must be 'start' or 'end'")),
    };
    let tz = zone(arg(args, 3), NAME)?;
    let t = instant(arg(args, 0), tz, NAME)?;
    let (first, next) = unit_days(local(t, tz).date(), u).ok_or_else(|| out_of_range(NAME))?;
    // The end is the last millisecond before the next unit starts.
    let edge = if end { day_start(tz, next, NAME)? - TimeDelta::milliseconds(1) } else { day_start(tz, first, NAME)? };
    done(ts_value(edge))
}

fn date_range(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_date_range";
    let u = unit(arg(args, 2), NAME)?;
    let tz = zone(arg(args, 3), NAME)?;
    let empty = DictMap::new();
    let opts = match arg(args, 4) {
        Value::Dict(d) => &**d,
        _ => &empty,
    };
    let max_items = match field(opts, "max_items") {
        None | Some(Value::Nil) => 10_000,
        Some(Value::Int(n)) => *n,
        Some(other) => return Err(fail(NAME, format!("max_items must be an integer, got {}", other.type_name()))),
    };
    let include_end = match field(opts, "include_end") {
        None | Some(Value::Nil) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(fail(NAME, format!("include_end must be a bool, got {}", other.type_name()))),
    };
    let how = disambiguation(field(opts, "disambiguation").unwrap_or(&Value::Nil))?;
    let start = instant(arg(args, 0), tz, NAME)?;
    let end = instant(arg(args, 1), tz, NAME)?;
    let mut out = Vec::new();
    let mut wall = local(start, tz);
    let mut tick = start;
    // Each tick is one unit after the previous one's local time (so a month
    // clamped to the 28th stays on the 28th).
    while tick < end || (include_end && tick == end) {
        if out.len() as i64 >= max_items {
            return Err(fail(NAME, format!("exceeded max_items ({max_items})")));
        }
        if out.len() % 1024 == 0 {
            check_alloc_product(out.len() as u128 + 1024, std::mem::size_of::<Value>() as u128, ctx.limits, NAME)?;
        }
        out.push(ts_value(tick));
        wall = shift(wall, 1, u).ok_or_else(|| out_of_range(NAME))?;
        tick = resolve(tz, wall, how, NAME)?;
    }
    done(Value::list(out))
}

/// A weekday as its ISO number (Monday 1 .. Sunday 7; 0 is Sunday too).
fn weekday(v: &Value, builtin: &str, what: &str) -> VmResult<u32> {
    let by_name = || fail(builtin, format!("{what} must be ISO weekday 1-7 or weekday name"));
    if let Some(n) = whole(v) {
        return match n {
            0 => Ok(7),
            1..=7 => Ok(n as u32),
            _ => Err(fail(builtin, format!("{what} must be ISO weekday 1-7 or 0 for Sunday"))),
        };
    }
    let name = text_of(v).ok_or_else(by_name)?.trim().to_ascii_lowercase();
    let n = match name.as_str() {
        "monday" | "mon" => 1,
        "tuesday" | "tue" | "tues" => 2,
        "wednesday" | "wed" => 3,
        "thursday" | "thu" | "thur" | "thurs" => 4,
        "friday" | "fri" => 5,
        "saturday" | "sat" => 6,
        "sunday" | "sun" => 7,
        _ => return Err(by_name()),
    };
    Ok(n)
}

fn next_weekday(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_next_weekday";
    let want = i64::from(weekday(arg(args, 1), NAME, "weekday")?);
    let forward = match text_of(arg(args, 2)) {
        Some("next") => true,
        Some("previous") => false,
        _ => return Err(fail(NAME, format!("direction must be 'next' or 'previous', got '{}'", arg(args, 2).display()))),
    };
    let tz = zone(arg(args, 3), NAME)?;
    let include_today = arg(args, 4).is_truthy();
    let t = instant(arg(args, 0), tz, NAME)?;
    let wall = local(t, tz);
    let today = i64::from(wall.weekday().number_from_monday());
    let mut days = if forward { (want - today).rem_euclid(7) } else { -(today - want).rem_euclid(7) };
    if days == 0 && !include_today {
        days = if forward { 7 } else { -7 };
    }
    done(ts_value(resolve(tz, wall + TimeDelta::days(days), Disambiguation::Earlier, NAME)?))
}

// ---------------------------------------------------------------------------
// Countries

struct Country {
    code: &'static str,
    name: &'static str,
    currency: (&'static str, &'static str),
    zones: &'static [&'static str],
    holiday_calendars: &'static [&'static str],
}

static COUNTRIES: &[Country] = &[
    Country {
        code: "AU",
        name: "Australia",
        currency: ("AUD", "Australian dollar"),
        zones: &[
            "Australia/Perth",
            "Australia/Darwin",
            "Australia/Adelaide",
            "Australia/Brisbane",
            "Australia/Sydney",
            "Australia/Melbourne",
            "Australia/Hobart",
        ],
        holiday_calendars: &[],
    },
    Country {
        code: "BR",
        name: "Brazil",
        currency: ("BRL", "Brazilian real"),
        zones: &[
            "America/Noronha",
            "America/Belem",
            "America/Fortaleza",
            "America/Recife",
            "America/Araguaina",
            "America/Maceio",
            "America/Bahia",
            "America/Sao_Paulo",
            "America/Campo_Grande",
            "America/Cuiaba",
            "America/Manaus",
            "America/Porto_Velho",
            "America/Boa_Vista",
            "America/Rio_Branco",
            "America/Eirunepe",
        ],
        holiday_calendars: &[],
    },
    Country {
        code: "CA",
        name: "Canada",
        currency: ("CAD", "Canadian dollar"),
        zones: &[
            "America/St_Johns",
            "America/Halifax",
            "America/Toronto",
            "America/Winnipeg",
            "America/Regina",
            "America/Edmonton",
            "America/Vancouver",
            "America/Whitehorse",
            "America/Yellowknife",
            "America/Iqaluit",
        ],
        holiday_calendars: &[],
    },
    Country { code: "CN", name: "China", currency: ("CNY", "Chinese yuan"), zones: &["Asia/Shanghai"], holiday_calendars: &[] },
    Country { code: "DE", name: "Germany", currency: ("EUR", "Euro"), zones: &["Europe/Berlin"], holiday_calendars: &[] },
    Country { code: "FR", name: "France", currency: ("EUR", "Euro"), zones: &["Europe/Paris"], holiday_calendars: &[] },
    Country {
        code: "GB",
        name: "United Kingdom",
        currency: ("GBP", "Pound sterling"),
        zones: &["Europe/London"],
        holiday_calendars: &[],
    },
    Country { code: "IN", name: "India", currency: ("INR", "Indian rupee"), zones: &["Asia/Kolkata"], holiday_calendars: &[] },
    Country { code: "JP", name: "Japan", currency: ("JPY", "Japanese yen"), zones: &["Asia/Tokyo"], holiday_calendars: &[] },
    Country {
        code: "MX",
        name: "Mexico",
        currency: ("MXN", "Mexican peso"),
        zones: &[
            "America/Mexico_City",
            "America/Cancun",
            "America/Chihuahua",
            "America/Hermosillo",
            "America/Mazatlan",
            "America/Tijuana",
        ],
        holiday_calendars: &[],
    },
    Country { code: "NL", name: "Netherlands", currency: ("EUR", "Euro"), zones: &["Europe/Amsterdam"], holiday_calendars: &[] },
    Country {
        code: "NZ",
        name: "New Zealand",
        currency: ("NZD", "New Zealand dollar"),
        zones: &["Pacific/Auckland", "Pacific/Chatham"],
        holiday_calendars: &[],
    },
    Country {
        code: "SG",
        name: "Singapore",
        currency: ("SGD", "Singapore dollar"),
        zones: &["Asia/Singapore"],
        holiday_calendars: &[],
    },
    Country {
        code: "US",
        name: "United States",
        currency: ("USD", "United States dollar"),
        zones: &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "Pacific/Honolulu",
        ],
        holiday_calendars: &[US_FEDERAL],
    },
    Country {
        code: "ZA",
        name: "South Africa",
        currency: ("ZAR", "South African rand"),
        zones: &["Africa/Johannesburg"],
        holiday_calendars: &[],
    },
];

fn strs(items: &[&str]) -> Value {
    Value::list(items.iter().map(|s| Value::str(*s)).collect())
}

fn country_value(c: &Country) -> Value {
    // One zone is a safe default; several make the country's default ambiguous.
    let single = c.zones.len() == 1;
    Value::dict_from([
        ("code", Value::str(c.code)),
        ("name", Value::str(c.name)),
        ("timezones", strs(c.zones)),
        ("default_timezone", if single { Value::str(c.zones[0]) } else { Value::Nil }),
        ("default_timezone_ambiguous", Value::Bool(!single)),
        ("currency_code", Value::str(c.currency.0)),
        ("currency_name", Value::str(c.currency.1)),
        ("holiday_calendars", strs(c.holiday_calendars)),
    ])
}

fn countries(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::list(COUNTRIES.iter().map(country_value).collect()))
}

fn country_info(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let code = text_of(arg(args, 0)).map(|s| s.trim().to_ascii_uppercase());
    let found = code.and_then(|code| COUNTRIES.iter().find(|c| c.code == code));
    done(found.map_or(Value::Nil, country_value))
}

// ---------------------------------------------------------------------------
// US federal holidays

const US_FEDERAL: &str = "US-FEDERAL";

fn supported_holiday_calendars(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::list(vec![Value::dict_from([
        ("name", Value::str(US_FEDERAL)),
        ("country", Value::str("US")),
        ("timezone", Value::str("America/New_York")),
        ("description", Value::str("United States federal observed holidays")),
    ])]))
}

/// The `n`th (1-based) `weekday` of a month, or the last one when `n` is 0.
fn nth_weekday(year: i32, month: u32, weekday: chrono::Weekday, n: u8) -> Option<NaiveDate> {
    if n == 0 {
        let last = NaiveDate::from_ymd_opt(year, month, days_in_month(year, month))?;
        let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        return Some(last - TimeDelta::days(i64::from(back)));
    }
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

struct Holiday {
    name: &'static str,
    actual: NaiveDate,
    observed: NaiveDate,
}

/// The federal holidays whose actual date falls in `year`, with the day each
/// is observed on (a Saturday holiday moves to Friday, a Sunday one to
/// Monday), following when each holiday began and its date rules changed.
fn federal_holidays_of(year: i32) -> Vec<Holiday> {
    use chrono::Weekday::{Mon, Thu};
    let fixed = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let monday_rule = year >= 1971;
    let mut days: Vec<(&'static str, Option<NaiveDate>)> = vec![("New Year's Day", fixed(1, 1))];
    if year >= 1986 {
        days.push(("Martin Luther King Jr. Day", nth_weekday(year, 1, Mon, 3)));
    }
    days.push(("Washington's Birthday", if monday_rule { nth_weekday(year, 2, Mon, 3) } else { fixed(2, 22) }));
    days.push(("Memorial Day", if monday_rule { nth_weekday(year, 5, Mon, 0) } else { fixed(5, 30) }));
    if year >= 2021 {
        days.push(("Juneteenth National Independence Day", fixed(6, 19)));
    }
    days.push(("Independence Day", fixed(7, 4)));
    days.push(("Labor Day", nth_weekday(year, 9, Mon, 1)));
    if year >= 1937 {
        days.push(("Columbus Day", if monday_rule { nth_weekday(year, 10, Mon, 2) } else { fixed(10, 12) }));
    }
    days.push(("Veterans Day", fixed(11, 11)));
    // The last Thursday of November until 1942, the fourth since.
    days.push(("Thanksgiving Day", nth_weekday(year, 11, Thu, if year >= 1942 { 4 } else { 0 })));
    days.push(("Christmas Day", fixed(12, 25)));
    days.into_iter()
        .filter_map(|(name, date)| {
            let actual = date?;
            let observed = match actual.weekday() {
                chrono::Weekday::Sat => actual.pred_opt()?,
                chrono::Weekday::Sun => actual.succ_opt()?,
                _ => actual,
            };
            Some(Holiday { name, actual, observed })
        })
        .collect()
}

/// The holidays observed in `year` (next year's New Year's Day can be
/// observed on this year's December 31), by observed date.
fn federal_observed_in(year: i32) -> Vec<Holiday> {
    let mut out: Vec<Holiday> = federal_holidays_of(year).into_iter().filter(|h| h.observed.year() == year).collect();
    out.extend(federal_holidays_of(year + 1).into_iter().filter(|h| h.observed.year() == year));
    out.sort_by_key(|h| h.observed);
    out
}

fn check_federal_year(year: i64) -> VmResult<i32> {
    if (1900..=9999).contains(&year) {
        Ok(year as i32)
    } else {
        Err(VmError::throw_msg(format!("{US_FEDERAL}: supported holiday years are 1900 through 9999")))
    }
}

fn ymd(d: NaiveDate) -> Value {
    Value::str(d.format("%Y-%m-%d").to_string())
}

fn unsupported_calendar(v: &Value) -> VmError {
    VmError::throw_msg(format!("unsupported holiday calendar '{}'", v.display()))
}

fn holidays(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let calendar = arg(args, 0);
    if !text_of(calendar).is_some_and(|s| s.eq_ignore_ascii_case(US_FEDERAL)) {
        return Err(unsupported_calendar(calendar));
    }
    let year = match arg(args, 1) {
        Value::Int(n) => check_federal_year(*n)?,
        other => return Err(param_type("__calendar_holidays", "year", "int", other)),
    };
    let list = federal_observed_in(year)
        .into_iter()
        .map(|h| {
            Value::dict_from([
                ("date", ymd(h.observed)),
                ("actual_date", ymd(h.actual)),
                ("name", Value::str(h.name)),
                ("observed", Value::Bool(h.observed != h.actual)),
            ])
        })
        .collect();
    done(Value::list(list))
}

// ---------------------------------------------------------------------------
// Business calendars

/// A business calendar: its name, zone, weekend days (ISO numbers), whether
/// it observes US federal holidays, and its own extra holiday dates.
struct BusinessCalendar {
    name: String,
    tz: Tz,
    weekends: Vec<u32>,
    federal: bool,
    extra: Vec<NaiveDate>,
}

impl BusinessCalendar {
    fn is_holiday(&self, d: NaiveDate) -> VmResult<bool> {
        if self.extra.contains(&d) {
            return Ok(true);
        }
        if !self.federal {
            return Ok(false);
        }
        let year = check_federal_year(i64::from(d.year()))?;
        Ok(federal_observed_in(year).iter().any(|h| h.observed == d))
    }

    fn is_business_day(&self, d: NaiveDate) -> VmResult<bool> {
        Ok(!self.weekends.contains(&d.weekday().number_from_monday()) && !self.is_holiday(d)?)
    }
}

fn custom_holidays(v: &Value, builtin: &str) -> VmResult<Vec<NaiveDate>> {
    let items = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::List(items) => items,
        _ => return Err(fail(builtin, "holidays must be a list")),
    };
    let date = |v: &Value| {
        text_of(v)
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
            .ok_or_else(|| fail(builtin, "holiday date must be YYYY-MM-DD"))
    };
    items
        .iter()
        .map(|item| match item {
            Value::Str(_) => date(item),
            Value::Dict(d) => date(field(d, "date").ok_or_else(|| fail(builtin, "custom holiday missing date"))?),
            other => Err(fail(builtin, format!("holiday entries must be date strings or dicts, got {}", other.type_name()))),
        })
        .collect()
}

fn weekends(v: &Value, builtin: &str) -> VmResult<Vec<u32>> {
    match v {
        Value::Nil => Ok(vec![6, 7]),
        Value::List(items) => items.iter().map(|w| weekday(w, builtin, "weekends")).collect(),
        other => Err(fail(builtin, format!("weekends must be a list, got {}", other.type_name()))),
    }
}

/// `calendar` (a name, a dict or nil for US-FEDERAL) with `timezone`, when
/// given, in place of the calendar's own zone.
fn business_calendar(calendar: &Value, timezone: &Value, builtin: &str) -> VmResult<BusinessCalendar> {
    let mut cal = match calendar {
        Value::Nil => federal_calendar(),
        Value::Str(name) if name.eq_ignore_ascii_case(US_FEDERAL) => federal_calendar(),
        Value::Str(name) if name.is_empty() || name.eq_ignore_ascii_case("none") => {
            BusinessCalendar { name: "NONE".into(), tz: Tz::UTC, weekends: vec![6, 7], federal: false, extra: Vec::new() }
        }
        Value::Dict(d) => {
            let name = match field(d, "name") {
                None | Some(Value::Nil) => "CUSTOM".to_string(),
                Some(v) => v.display(),
            };
            let federal = match field(d, "holiday_calendar") {
                None | Some(Value::Nil) => false,
                Some(Value::Str(s)) if s.eq_ignore_ascii_case(US_FEDERAL) => true,
                Some(other) => return Err(fail(builtin, format!("unsupported holiday_calendar '{}'", other.display()))),
            };
            BusinessCalendar {
                name,
                tz: zone(field(d, "timezone").unwrap_or(&Value::Nil), builtin)?,
                weekends: weekends(field(d, "weekends").unwrap_or(&Value::Nil), builtin)?,
                federal,
                extra: custom_holidays(field(d, "holidays").unwrap_or(&Value::Nil), builtin)?,
            }
        }
        other => return Err(unsupported_calendar(other)),
    };
    if !matches!(timezone, Value::Nil) {
        cal.tz = zone(timezone, builtin)?;
    }
    Ok(cal)
}

fn federal_calendar() -> BusinessCalendar {
    BusinessCalendar {
        name: US_FEDERAL.into(),
        tz: chrono_tz::America::New_York,
        weekends: vec![6, 7],
        federal: true,
        extra: Vec::new(),
    }
}

/// How far a business-day search may walk before giving up (no business day
/// in ten years means a calendar whose every day is a weekend).
const MAX_SEARCH_DAYS: usize = 3700;

fn is_holiday(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_is_holiday";
    let cal = business_calendar(arg(args, 1), arg(args, 2), NAME)?;
    let day = local(instant(arg(args, 0), cal.tz, NAME)?, cal.tz).date();
    done(Value::Bool(cal.is_holiday(day)?))
}

fn is_business_day(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_is_business_day";
    let cal = business_calendar(arg(args, 1), arg(args, 2), NAME)?;
    let day = local(instant(arg(args, 0), cal.tz, NAME)?, cal.tz).date();
    done(Value::Bool(cal.is_business_day(day)?))
}

/// The next business day at or after `wall` (stepping by `step` days), keeping the local time.
fn walk(cal: &BusinessCalendar, mut wall: NaiveDateTime, step: i64, builtin: &str) -> VmResult<NaiveDateTime> {
    for _ in 0..MAX_SEARCH_DAYS {
        if cal.is_business_day(wall.date())? {
            return Ok(wall);
        }
        wall = wall.checked_add_signed(TimeDelta::days(step)).ok_or_else(|| out_of_range(builtin))?;
    }
    Err(fail(builtin, "no business day found"))
}

fn next_business_day(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_next_business_day";
    let cal = business_calendar(arg(args, 1), arg(args, 2), NAME)?;
    let wall = local(instant(arg(args, 0), cal.tz, NAME)?, cal.tz);
    let from = if arg(args, 3).is_truthy() { wall } else { wall + TimeDelta::days(1) };
    let found = walk(&cal, from, 1, NAME)?;
    done(ts_value(resolve(cal.tz, found, Disambiguation::Earlier, NAME)?))
}

fn add_business_days(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_add_business_days";
    let days = match arg(args, 1) {
        Value::Int(n) => *n,
        other => return Err(param_type(NAME, "days", "int", other)),
    };
    let cal = business_calendar(arg(args, 2), arg(args, 3), NAME)?;
    let t = instant(arg(args, 0), cal.tz, NAME)?;
    if days == 0 {
        return done(ts_value(t));
    }
    let step = days.signum();
    let mut wall = local(t, cal.tz);
    for _ in 0..days.unsigned_abs() {
        wall = walk(&cal, wall + TimeDelta::days(step), step, NAME)?;
    }
    done(ts_value(resolve(cal.tz, wall, Disambiguation::Earlier, NAME)?))
}

fn business_days_between(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_business_days_between";
    let cal = business_calendar(arg(args, 2), arg(args, 3), NAME)?;
    let start = local(instant(arg(args, 0), cal.tz, NAME)?, cal.tz).date();
    let end = local(instant(arg(args, 1), cal.tz, NAME)?, cal.tz).date();
    // Forward it counts [start, end); backward, (end, start], negated.
    let (lo, hi, sign) = if start <= end {
        (start, end, 1)
    } else {
        (end.succ_opt().ok_or_else(|| out_of_range(NAME))?, start.succ_opt().ok_or_else(|| out_of_range(NAME))?, -1)
    };
    let span = (hi - lo).num_days();
    // Charged as work: one step per day walked.
    check_alloc_product(span as u128, 1, ctx.limits, NAME)?;
    // Holidays are computed once per year touched, not once per day.
    let mut year_cache: Option<(i32, Vec<NaiveDate>)> = None;
    let mut count = 0i64;
    let mut d = lo;
    while d < hi {
        let weekend = cal.weekends.contains(&d.weekday().number_from_monday());
        if !weekend {
            let holiday = if cal.federal {
                if year_cache.as_ref().is_none_or(|(y, _)| *y != d.year()) {
                    let year = check_federal_year(i64::from(d.year()))?;
                    year_cache = Some((year, federal_observed_in(year).iter().map(|h| h.observed).collect()));
                }
                year_cache.as_ref().is_some_and(|(_, days)| days.contains(&d))
            } else {
                false
            } || cal.extra.contains(&d);
            if !holiday {
                count += 1;
            }
        }
        d = d.succ_opt().ok_or_else(|| out_of_range(NAME))?;
    }
    done(Value::Int(sign * count))
}

/// `HH:MM`, `H:MM` or `HH:MM:SS`.
fn clock_time(text: &str) -> Option<NaiveTime> {
    let fields: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&fields.len())
        || fields.iter().any(|f| f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n = |i: usize| fields.get(i).map_or(Some(0), |f| f.parse::<u32>().ok());
    NaiveTime::from_hms_opt(n(0)?, n(1)?, n(2)?)
}

fn window_edge(opts: &DictMap, key: &str, hour_key: &str, default_hour: u32, builtin: &str) -> VmResult<NaiveTime> {
    match field(opts, key) {
        None | Some(Value::Nil) => {}
        Some(v) => {
            return text_of(v).and_then(clock_time).ok_or_else(|| fail(builtin, format!("{key} must be HH:MM or HH:MM:SS")));
        }
    }
    let hour = match field(opts, hour_key) {
        None | Some(Value::Nil) => i64::from(default_hour),
        Some(Value::Int(h)) => *h,
        Some(other) => return Err(fail(builtin, format!("{hour_key} must be an integer, got {}", other.type_name()))),
    };
    u32::try_from(hour)
        .ok()
        .and_then(|h| NaiveTime::from_hms_opt(h, 0, 0))
        .ok_or_else(|| fail(builtin, format!("{hour_key} must be between 0 and 23")))
}

fn business_window(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "__calendar_business_window";
    let empty = DictMap::new();
    let opts = match arg(args, 2) {
        Value::Dict(d) => &**d,
        _ => &empty,
    };
    let cal = business_calendar(arg(args, 1), field(opts, "timezone").unwrap_or(&Value::Nil), NAME)?;
    let opens = window_edge(opts, "start", "start_hour", 9, NAME)?;
    let closes = window_edge(opts, "end", "end_hour", 17, NAME)?;
    if closes <= opens {
        return Err(fail(NAME, "end time must be after start time"));
    }
    let t = instant(arg(args, 0), cal.tz, NAME)?;
    let day = local(t, cal.tz).date();
    let starts_at = resolve(cal.tz, day.and_time(opens), Disambiguation::Earlier, NAME)?;
    let ends_at = resolve(cal.tz, day.and_time(closes), Disambiguation::Earlier, NAME)?;
    let business_day = cal.is_business_day(day)?;
    let reason = if !business_day {
        "non_business_day"
    } else if t < starts_at {
        "before_window"
    } else if t >= ends_at {
        "after_window"
    } else {
        "inside"
    };
    done(Value::dict_from([
        ("inside", Value::Bool(reason == "inside")),
        ("business_day", Value::Bool(business_day)),
        ("reason", Value::str(reason)),
        ("timezone", Value::str(cal.tz.name())),
        ("calendar", Value::str(cal.name)),
        ("local_date", ymd(day)),
        ("starts_at", ts_value(starts_at)),
        ("ends_at", ts_value(ends_at)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn month_arithmetic_clamps_the_day() {
        assert_eq!(add_months(d(2024, 1, 31), 1), Some(d(2024, 2, 29)));
        assert_eq!(add_months(d(2024, 2, 29), 12), Some(d(2025, 2, 28)));
        assert_eq!(add_months(d(2024, 1, 31), -1), Some(d(2023, 12, 31)));
    }

    #[test]
    fn federal_holidays_move_to_weekdays() {
        let y2021: Vec<_> = federal_observed_in(2021).iter().map(|h| (h.name, h.observed)).collect();
        assert!(y2021.contains(&("Independence Day", d(2021, 7, 5))));
        // 2022's New Year's Day (a Saturday) is observed on 2021-12-31.
        assert_eq!(y2021.last(), Some(&("New Year's Day", d(2021, 12, 31))));
        assert!(!federal_observed_in(2022).iter().any(|h| h.name == "New Year's Day"));
        assert_eq!(nth_weekday(1900, 11, chrono::Weekday::Thu, 0), Some(d(1900, 11, 29)));
    }

    #[test]
    fn clock_times() {
        assert_eq!(clock_time("9:30"), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(clock_time("09:00:30"), NaiveTime::from_hms_opt(9, 0, 30));
        for bad in ["9", "24:00", "09:60", "a:00", "1:2:3:4", "123:00"] {
            assert_eq!(clock_time(bad), None, "{bad}");
        }
    }
}
