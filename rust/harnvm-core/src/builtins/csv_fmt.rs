//! `csv_parse(text, options?)` and `csv_stringify(rows, options?)`, with
//! harn 0.9.11's behaviour: RFC 4180 quoting, `\n`, `\r\n` and `\r` all end
//! a record, empty lines are skipped, a quote inside an unquoted field is
//! literal, and an unterminated quote runs to the end of the text.
//! Options: `delimiter` (one ASCII character, default `,`) and `headers`
//! (parse: rows become dicts keyed by the first record; stringify: dict
//! rows get a header line of all their keys, sorted).

use super::args::{check_alloc, done, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, key_of, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] =
    &[BuiltinDef { name: "csv_parse", imp: Native(csv_parse) }, BuiltinDef { name: "csv_stringify", imp: Native(csv_stringify) }];

fn option<'a>(options: &'a Value, name: &str) -> Option<&'a Value> {
    match options {
        Value::Dict(d) => d.get(&key_of(&Value::str(name))),
        _ => None,
    }
}

fn delimiter(options: &Value, builtin: &str) -> VmResult<u8> {
    match option(options, "delimiter") {
        None | Some(Value::Nil) => Ok(b','),
        Some(Value::Str(s)) if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        Some(_) => Err(VmError::throw_msg(format!("{builtin}: delimiter must be exactly one ASCII character"))),
    }
}

/// The records of `text`; every field is text.
fn parse_records(text: &str, delim: u8) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field: Vec<u8> = Vec::new();
    // Whether the current record has seen any byte (an empty line has not).
    let mut started = false;
    let mut i = 0;
    let finish_field = |field: &mut Vec<u8>, record: &mut Vec<String>| {
        record.push(String::from_utf8_lossy(field).into_owned());
        field.clear();
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' && field.is_empty() {
            // A quoted section: runs to the closing quote ("" is a quote).
            started = true;
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        field.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                field.push(bytes[i]);
                i += 1;
            }
            continue;
        }
        if b == delim {
            started = true;
            finish_field(&mut field, &mut record);
        } else if b == b'\n' || b == b'\r' {
            if started {
                finish_field(&mut field, &mut record);
                records.push(std::mem::take(&mut record));
            }
            started = false;
        } else {
            started = true;
            field.push(b);
        }
        i += 1;
    }
    if started {
        finish_field(&mut field, &mut record);
        records.push(record);
    }
    records
}

fn csv_parse(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let text = text_arg(args, 0);
    let options = arg(args, 1);
    let delim = delimiter(options, "csv_parse")?;
    check_alloc(text.len(), ctx.limits, "csv_parse")?;
    let records = parse_records(&text, delim);
    if option(options, "headers").is_some_and(Value::is_truthy) {
        let mut rows = records.into_iter();
        let Some(header) = rows.next() else { return done(Value::list(vec![])) };
        let keys: Vec<HStr> = header.iter().map(|h| key_of(&Value::str(h.as_str()))).collect();
        let out = rows
            .map(|row| {
                let mut d = DictMap::new();
                for (j, key) in keys.iter().enumerate() {
                    d.insert(key.clone(), Value::str(row.get(j).map_or("", String::as_str)));
                }
                Value::dict(d)
            })
            .collect();
        return done(Value::list(out));
    }
    done(Value::list(records.into_iter().map(|r| Value::list(r.into_iter().map(Value::str).collect())).collect()))
}

/// A cell as CSV text, quoted when it holds the delimiter, a quote or a line break.
fn write_cell(out: &mut String, cell: &str, delim: u8, only_field: bool) {
    let needs = cell.bytes().any(|b| b == delim || b == b'"' || b == b'\n' || b == b'\r') || (only_field && cell.is_empty());
    if needs {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

fn write_record(out: &mut String, cells: &[String], delim: u8) {
    for (j, cell) in cells.iter().enumerate() {
        if j > 0 {
            out.push(delim as char);
        }
        write_cell(out, cell, delim, cells.len() == 1);
    }
    out.push('\n');
}

fn csv_stringify(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let fail = |m: &str| VmError::throw_msg(format!("csv_stringify: {m}"));
    let Value::List(rows) = arg(args, 0) else {
        return Err(fail("rows must be a list"));
    };
    let options = arg(args, 1);
    let delim = delimiter(options, "csv_stringify")?;
    let dict_rows = rows.iter().filter(|r| matches!(r, Value::Dict(_))).count();
    let list_rows = rows.iter().filter(|r| matches!(r, Value::List(_))).count();
    if dict_rows + list_rows != rows.len() {
        return Err(fail("each row must be a list of cells (or use dict rows)"));
    }
    if dict_rows > 0 && list_rows > 0 {
        return Err(fail("mixed list/dict rows are not supported"));
    }
    let mut records: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if dict_rows > 0 {
        let mut keys: Vec<HStr> = Vec::new();
        for row in rows.iter() {
            if let Value::Dict(d) = row {
                for k in d.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
        }
        keys.sort();
        if option(options, "headers").is_some_and(Value::is_truthy) {
            records.push(keys.iter().map(|k| k.to_string()).collect());
        }
        for row in rows.iter() {
            if let Value::Dict(d) = row {
                records.push(keys.iter().map(|k| d.get(k).map_or_else(String::new, Value::display)).collect());
            }
        }
    } else {
        for row in rows.iter() {
            if let Value::List(cells) = row {
                records.push(cells.iter().map(Value::display).collect());
            }
        }
    }
    let mut width: Option<usize> = None;
    let mut size = 0usize;
    for r in &records {
        if let Some(w) = width {
            if w != r.len() {
                return Err(fail(&format!(
                    "CSV error: found record with {} fields, but the previous record has {w} fields",
                    r.len()
                )));
            }
        }
        width = Some(r.len());
        size = size.saturating_add(r.iter().map(|c| c.len() * 2 + 3).sum::<usize>());
    }
    check_alloc(size, ctx.limits, "csv_stringify")?;
    let mut out = String::new();
    for r in &records {
        write_record(&mut out, r, delim);
    }
    done(Value::str(out))
}
