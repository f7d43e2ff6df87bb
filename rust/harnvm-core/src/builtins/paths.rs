//! Lexical path helpers (`path_*`): pure string operations on `/`-separated
//! paths, never touching the file system. Results follow harn 0.9.11:
//! a file name's extension carries its dot (`.txt`), a dot-file such as
//! `.bashrc` has no extension, `path_relative_to` of an absolute and a
//! relative path is nil.

use super::args::{done, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::VmResult;
use crate::runtime::value::Value;

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "path_parts", imp: Native(path_parts) },
    BuiltinDef { name: "path_parent", imp: Native(path_parent) },
    BuiltinDef { name: "path_basename", imp: Native(path_basename) },
    BuiltinDef { name: "path_stem", imp: Native(path_stem) },
    BuiltinDef { name: "path_extension", imp: Native(path_extension) },
    BuiltinDef { name: "path_with_extension", imp: Native(path_with_extension) },
    BuiltinDef { name: "path_with_stem", imp: Native(path_with_stem) },
    BuiltinDef { name: "path_is_absolute", imp: Native(path_is_absolute) },
    BuiltinDef { name: "path_is_relative", imp: Native(path_is_relative) },
    BuiltinDef { name: "path_normalize", imp: Native(path_normalize) },
    BuiltinDef { name: "path_relative_to", imp: Native(path_relative_to) },
    BuiltinDef { name: "path_to_posix", imp: Native(path_to_posix) },
    BuiltinDef { name: "path_to_native", imp: Native(path_to_native) },
    BuiltinDef { name: "path_segments", imp: Native(path_segments) },
];

/// (directory, file name) from the path's segments: the file name is the
/// last segment, the directory the others joined by `/` (with a leading `/`
/// for an absolute path; empty separators collapse, as on 0.9.11).
fn split_dir(p: &str) -> (String, &str) {
    let absolute = p.starts_with('/');
    let segs = segments(p);
    let (file, rest) = match segs.split_last() {
        Some((last, rest)) => (*last, rest),
        None => ("", &[][..]),
    };
    let dir = if absolute { format!("/{}", rest.join("/")) } else { rest.join("/") };
    (dir, file)
}

/// (stem, extension without its dot) of a file name; a name whose only
/// dot leads it has no extension.
fn split_ext(file: &str) -> (&str, Option<&str>) {
    match file.rfind('.') {
        None | Some(0) => (file, None),
        Some(i) => (&file[..i], Some(&file[i + 1..])),
    }
}

fn join(dir: &str, name: &str) -> String {
    match dir {
        "" => name.to_string(),
        d if d.ends_with('/') => format!("{d}{name}"),
        d => format!("{d}/{name}"),
    }
}

fn segments(p: &str) -> Vec<&str> {
    p.split('/').filter(|s| !s.is_empty()).collect()
}

fn ext_text(ext: Option<&str>) -> String {
    ext.map_or_else(String::new, |e| format!(".{e}"))
}

fn path_parts(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    let (dir, file) = split_dir(&p);
    let (stem, ext) = split_ext(file);
    done(Value::dict_from([
        ("dir", Value::str(dir)),
        ("ext", Value::str(ext_text(ext))),
        ("file", Value::str(file)),
        ("segments", Value::list(segments(&p).into_iter().map(Value::str).collect())),
        ("stem", Value::str(stem)),
    ]))
}

fn path_parent(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(split_dir(&text_arg(args, 0)).0))
}

fn path_basename(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    done(Value::str(split_dir(&p).1))
}

fn path_stem(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    done(Value::str(split_ext(split_dir(&p).1).0))
}

fn path_extension(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    done(Value::str(ext_text(split_ext(split_dir(&p).1).1)))
}

fn path_with_extension(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    let ext = text_arg(args, 1);
    let ext = ext.strip_prefix('.').unwrap_or(&ext);
    let (dir, file) = split_dir(&p);
    let stem = split_ext(file).0;
    let name = if ext.is_empty() { stem.to_string() } else { format!("{stem}.{ext}") };
    done(Value::str(join(&dir, &name)))
}

fn path_with_stem(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    let stem = text_arg(args, 1);
    let (dir, file) = split_dir(&p);
    let name = format!("{stem}{}", ext_text(split_ext(file).1));
    done(Value::str(join(&dir, &name)))
}

fn path_is_absolute(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(text_arg(args, 0).starts_with('/')))
}

fn path_is_relative(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(!text_arg(args, 0).starts_with('/')))
}

/// Lexical normal form: `.` and empty segments dropped, `..` folded into
/// the segment before it (at the root it vanishes; leading `..` of a
/// relative path stay).
fn normalize(p: &str) -> (bool, Vec<&str>) {
    let absolute = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in segments(p) {
        match seg {
            "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if absolute => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    (absolute, out)
}

fn render(absolute: bool, segs: &[&str]) -> String {
    let body = segs.join("/");
    match (absolute, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

fn path_normalize(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    if p.is_empty() {
        return done(Value::str(""));
    }
    let (absolute, segs) = normalize(&p);
    done(Value::str(render(absolute, &segs)))
}

fn path_relative_to(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    let base = text_arg(args, 1);
    let (p_abs, p_segs) = normalize(&p);
    let (b_abs, b_segs) = normalize(&base);
    if p_abs != b_abs {
        return done(Value::Nil);
    }
    let common = p_segs.iter().zip(&b_segs).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; b_segs.len() - common];
    out.extend_from_slice(&p_segs[common..]);
    done(Value::str(render(false, &out)))
}

fn path_to_posix(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(text_arg(args, 0).replace('\\', "/")))
}

fn path_to_native(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(text_arg(args, 0).replace('\\', "/")))
}

fn path_segments(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let p = text_arg(args, 0);
    done(Value::list(segments(&p).into_iter().map(Value::str).collect()))
}
