//! Compression and archive builtins: gzip, zstd, brotli, tar and zip.
//!
//! Encoders take a string or bytes (and an optional level) and return bytes;
//! decoders return bytes. Decoded output is capped by `Limits::max_alloc`, so
//! a decompression bomb ends in a resource-limit error instead of exhausting
//! memory. Archives are lists of `{path, content, mode?}` dicts.

use std::io::{Read, Write};

use super::args::{done, expected};
use super::crypto::{bytes_value, data_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{LimitKind, VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "gzip_encode", imp: Native(gzip_encode) },
    BuiltinDef { name: "gzip_decode", imp: Native(gzip_decode) },
    BuiltinDef { name: "zstd_encode", imp: Native(zstd_encode) },
    BuiltinDef { name: "zstd_decode", imp: Native(zstd_decode) },
    BuiltinDef { name: "brotli_encode", imp: Native(brotli_encode) },
    BuiltinDef { name: "brotli_decode", imp: Native(brotli_decode) },
    BuiltinDef { name: "tar_create", imp: Native(tar_create) },
    BuiltinDef { name: "tar_extract", imp: Native(tar_extract) },
    BuiltinDef { name: "zip_create", imp: Native(zip_create) },
    BuiltinDef { name: "zip_extract", imp: Native(zip_extract) },
];

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

/// Optional compression level argument clamped into `lo..=hi`.
fn level_arg(args: &[Value], i: usize, builtin: &str, default: i64, lo: i64, hi: i64) -> VmResult<i64> {
    match arg(args, i) {
        Value::Nil => Ok(default),
        Value::Int(n) if (lo..=hi).contains(n) => Ok(*n),
        Value::Int(n) => Err(fail(builtin, format!("level must be between {lo} and {hi}, got {n}"))),
        other => Err(expected(builtin, "an int level", other)),
    }
}

/// Reads a decoder to the end, refusing output beyond the allocation limit.
fn read_limited(reader: impl Read, ctx: &Ctx, builtin: &str) -> VmResult<Vec<u8>> {
    let limit = ctx.limits.max_alloc as u64;
    let mut out = Vec::new();
    reader.take(limit + 1).read_to_end(&mut out).map_err(|e| fail(builtin, format!("invalid input: {e}")))?;
    if out.len() as u64 > limit {
        return Err(VmError::limit(LimitKind::Memory, format!("{builtin} output exceeds {limit} bytes")));
    }
    Ok(out)
}

fn gzip_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "gzip_encode")?;
    let level = level_arg(args, 1, "gzip_encode", 6, 0, 9)?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level as u32));
    enc.write_all(&data).and_then(|_| enc.try_finish()).map_err(|e| fail("gzip_encode", e))?;
    done(bytes_value(enc.get_ref().clone()))
}

fn gzip_decode(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "gzip_decode")?;
    done(bytes_value(read_limited(flate2::read::GzDecoder::new(&data[..]), ctx, "gzip_decode")?))
}

fn zstd_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "zstd_encode")?;
    let level = level_arg(args, 1, "zstd_encode", 3, 1, 22)?;
    done(bytes_value(zstd::bulk::compress(&data, level as i32).map_err(|e| fail("zstd_encode", e))?))
}

fn zstd_decode(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "zstd_decode")?;
    let decoder = zstd::stream::read::Decoder::new(&data[..]).map_err(|e| fail("zstd_decode", e))?;
    done(bytes_value(read_limited(decoder, ctx, "zstd_decode")?))
}

fn brotli_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "brotli_encode")?;
    let level = level_arg(args, 1, "brotli_encode", 6, 0, 11)?;
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, level as u32, 22);
        enc.write_all(&data).map_err(|e| fail("brotli_encode", e))?;
    }
    done(bytes_value(out))
}

fn brotli_decode(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "brotli_decode")?;
    done(bytes_value(read_limited(brotli::Decompressor::new(&data[..], 4096), ctx, "brotli_decode")?))
}

/// One archive entry from a `{path, content, mode?}` dict.
struct Entry {
    path: String,
    content: Vec<u8>,
    mode: Option<u32>,
}

fn entries_arg(args: &[Value], builtin: &str) -> VmResult<Vec<Entry>> {
    let items = match arg(args, 0) {
        Value::List(items) => items,
        other => return Err(expected(builtin, "a list of {path, content} dicts", other)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Dict(d) = item else {
                return Err(fail(builtin, format!("entry {i} must be a dict, got {}", item.type_name())));
            };
            let get = |k: &str| d.get(&HStr::new(k.to_string())).cloned().unwrap_or(Value::Nil);
            let path = match &get("path") {
                Value::Str(s) if !s.is_empty() => s.to_string(),
                _ => return Err(fail(builtin, format!("entry {i} needs a non-empty string 'path'"))),
            };
            let content = match &get("content") {
                Value::Str(s) => s.as_bytes().to_vec(),
                Value::Bytes(b) => b.to_vec(),
                Value::Nil => Vec::new(),
                other => {
                    return Err(fail(builtin, format!("entry {i}: content must be a string or bytes, got {}", other.type_name())))
                }
            };
            let mode = match &get("mode") {
                Value::Int(m) if (0..=0o7777).contains(m) => Some(*m as u32),
                Value::Nil => None,
                other => return Err(fail(builtin, format!("entry {i}: invalid mode {}", other.display()))),
            };
            Ok(Entry { path, content, mode })
        })
        .collect()
}

fn entry_value(path: String, content: Vec<u8>, mode: Option<u32>) -> Value {
    let mut d = DictMap::new();
    d.insert(HStr::new("path".into()), Value::str(path));
    d.insert(HStr::new("content".into()), bytes_value(content));
    if let Some(mode) = mode {
        d.insert(HStr::new("mode".into()), Value::Int(i64::from(mode)));
    }
    Value::dict(d)
}

fn tar_create(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let entries = entries_arg(args, "tar_create")?;
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.content.len() as u64);
        header.set_mode(e.mode.unwrap_or(0o644));
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &e.path, &e.content[..]).map_err(|err| fail("tar_create", err))?;
    }
    done(bytes_value(builder.into_inner().map_err(|e| fail("tar_create", e))?))
}

fn tar_extract(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "tar_extract")?;
    let mut archive = tar::Archive::new(&data[..]);
    let bad = |e: std::io::Error| fail("tar_extract", format!("invalid archive: {e}"));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let mode = entry.header().mode().ok();
        let content = read_limited(entry, ctx, "tar_extract")?;
        out.push(entry_value(path, content, mode));
    }
    done(Value::list(out))
}

fn zip_create(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let entries = entries_arg(args, "zip_create")?;
    // The archive holds at most about the entries' bytes (plus headers):
    // checked against the budgets before any is written.
    let total = entries.iter().fold(0usize, |n, e| n.saturating_add(e.content.len()).saturating_add(e.path.len() + 128));
    crate::runtime::native::check_alloc(total, ctx.limits, "zip_create")?;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for e in entries {
        crate::runtime::native::charge_work(e.content.len())?;
        let mut options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        if let Some(mode) = e.mode {
            options = options.unix_permissions(mode);
        }
        writer.start_file(e.path.as_str(), options).map_err(|err| fail("zip_create", err))?;
        writer.write_all(&e.content).map_err(|err| fail("zip_create", err))?;
    }
    let cursor = writer.finish().map_err(|e| fail("zip_create", e))?;
    done(bytes_value(cursor.into_inner()))
}

fn zip_extract(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "zip_extract")?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&data[..]))
        .map_err(|e| fail("zip_extract", format!("invalid archive: {e}")))?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(|e| fail("zip_extract", format!("invalid archive: {e}")))?;
        if file.is_dir() {
            continue;
        }
        let path = file.name().to_string();
        let mode = file.unix_mode().map(|m| m & 0o7777);
        let content = read_limited(file, ctx, "zip_extract")?;
        out.push(entry_value(path, content, mode));
    }
    done(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn roundtrip(enc: &str, dec: &str) {
        let data = Value::str("hello hello hello hello");
        let packed = run_builtin(enc, std::slice::from_ref(&data), &no_callback).unwrap();
        assert_eq!(packed.type_name(), "bytes");
        let back = run_builtin(dec, &[packed], &no_callback).unwrap();
        let Value::Bytes(b) = &back else { panic!("bytes expected") };
        assert_eq!(b.as_slice(), b"hello hello hello hello");
    }

    #[test]
    fn codecs_round_trip() {
        roundtrip("gzip_encode", "gzip_decode");
        roundtrip("zstd_encode", "zstd_decode");
        roundtrip("brotli_encode", "brotli_decode");
    }

    #[test]
    fn garbage_input_is_a_clear_error() {
        for dec in ["gzip_decode", "zstd_decode", "zip_extract"] {
            let err = run_builtin(dec, &[Value::str("not compressed at all")], &no_callback).unwrap_err();
            assert!(err.starts_with(&format!("Thrown: {dec}: ")), "{err}");
        }
        let err = run_builtin("gzip_encode", &[Value::str("x"), Value::Int(42)], &no_callback).unwrap_err();
        assert_eq!(err, "Thrown: gzip_encode: level must be between 0 and 9, got 42");
        let err = run_builtin("tar_create", &[Value::list(vec![Value::Int(1)])], &no_callback).unwrap_err();
        assert_eq!(err, "Thrown: tar_create: entry 0 must be a dict, got int");
    }

    #[test]
    fn decompression_bombs_hit_the_limit() {
        // 4 MiB of zeros compresses to a few KiB but exceeds the 1 MiB test limit.
        let zeros = Value::Bytes(std::rc::Rc::new(vec![0u8; 4 << 20]));
        let packed = run_builtin("gzip_encode", &[zeros], &no_callback).unwrap();
        let err = run_builtin("gzip_decode", &[packed], &no_callback).unwrap_err();
        assert!(err.starts_with("Resource limit exceeded: gzip_decode output exceeds"), "{err}");
    }
}
