"""Pure builtins driven from Harn: schemas and parameter checks, data formats,
encodings/hashes, compression, datetime, templates — results and exact error texts."""

from __future__ import annotations

import pytest

import harnvm
from harnvm import HarnRuntimeError

pytestmark = pytest.mark.needs_core


def run_lines(body: str, *, typecheck: bool = True) -> list[str]:
    """Runs `body` inside a pipeline and returns the printed lines."""
    out: list[str] = []
    harnvm.run("pipeline default() {\n" + body + "\n}\n", output=out.append, typecheck=typecheck)
    return "".join(out).splitlines()


def error_of(body: str) -> str:
    with pytest.raises(HarnRuntimeError) as info:
        run_lines(body)
    return info.value.message


# ---------------------------------------------------------------------------
# Schemas and runtime parameter checks


def test_parameter_check_messages():
    # These programs are statically wrong on purpose: they test the runtime checks.
    body = """
  fn f(u: {name: string, tags: list<string>}) { return "ok" }
  fn g(x: string | int) { return x }
  for v in [{name: "a"}, {name: 1, tags: []}, {name: "a", tags: ["x", 2]}, "s"] {
    try { println(f(v)) } catch (e) { println(e) }
  }
  try { g(true) } catch (e) { println(e) }
  println(g(1.5) == nil)
"""
    assert run_lines(body, typecheck=False) == [
        "Type error: parameter 'u': missing field 'tags' (list<string>)",
        "Type error: parameter 'u': field 'name' expected string, got int",
        "Type error: parameter 'u.tags': item [1] expected type 'string', got int",
        "Type error: parameter 'u': expected {name: string, tags: list<string>}, got string",
        "Type error: parameter 'x': expected string|int, got bool",
        "false",
    ]


def test_interface_parameter_check():
    body = """
  interface Named { fn name(self) -> string }
  struct Dog { n: string }
  impl Dog { fn name(self) { return self.n } }
  struct Rock { w: int }
  fn greet(x: Named) { return "hi " + x.name() }
  println(greet(Dog {n: "rex"}))
  try { greet(Rock {w: 1}) } catch (e) { println(e) }
  try { greet(5) } catch (e) { println(e) }
"""
    assert run_lines(body, typecheck=False) == [
        "hi rex",
        "Type error: parameter 'x': expected value satisfying interface 'Named', got Rock",
        "Type error: parameter 'x': expected value satisfying interface 'Named', got int",
    ]


def test_untyped_and_alias_params_are_not_checked():
    body = """
  type Id = string
  fn f(a, b: Id, c: any) { return "fine" }
  println(f(1, 2, 3))
"""
    assert run_lines(body, typecheck=False) == ["fine"]


def test_schema_builtins_with_type_aliases():
    body = """
  type Point = {x: int, y: int, label?: "a" | "b"}
  let s = schema_of(Point)
  println(s.required)
  println(schema_is({x: 1, y: 2}, Point))
  println(schema_is({x: 1, y: 2, label: "c"}, Point))
  println(schema_check({x: 1}, Point))
  println(schema_to_json_schema(s).properties.x.type)
  println(schema_is({x: 1}, schema_partial(s)))
"""
    assert run_lines(body) == [
        "[x, y]",
        "true",
        "false",
        "Result.Err({errors: [at root: missing required key 'y'], issues: [{code: schema.validation, "
        "message: missing required key 'y', path: root}], message: at root: missing required key 'y', value: {x: 1}})",
        "integer",
        "true",
    ]


def test_json_validate_messages():
    assert error_of('json_validate({a: {b: 1}}, {properties: {a: {properties: {b: {type: "string"}}}}})') == (
        "Thrown: at a.b: expected type 'string', got 'int'"
    )
    assert error_of('json_validate([1, "x"], {type: "list", items: {type: "int"}})') == (
        "Thrown: at [1]: expected type 'int', got 'string'"
    )
    assert error_of('json_validate(1, "not a schema")') == (
        "Thrown: json_validate: expected a schema dict, got string"
    )


# ---------------------------------------------------------------------------
# Encodings, hashes, compression


def test_encodings_and_hashes():
    body = """
  println(bytes_to_hex(bytes_from_string("hi")))
  println(sha256(bytes_from_hex("")))
  println(base64_decode(base64_encode("héllo")))
  println(bytes_from_string("abc"))
"""
    assert run_lines(body) == [
        "6869",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "héllo",
        'b"616263"',
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # (The reference's text: a runtime error with the hex crate's message.)
        ('bytes_from_hex("xyz")', "Runtime error: bytes_from_hex: Odd number of digits"),
        ('base64_decode("***")', "Thrown: base64_decode: invalid base64"),
        ("sha256(nil)", "Thrown: sha256: expected a string or bytes, got nil"),
        ('gzip_decode("plain text")', "Thrown: gzip_decode: invalid input"),
        ('zstd_encode("x", 99)', "Thrown: zstd_encode: level must be between 1 and 22, got 99"),
        ('zip_extract(bytes_from_string("PK"))', "Thrown: zip_extract: invalid archive"),
    ],
)
def test_bad_binary_input_is_a_clear_error(call, message):
    assert error_of(call).startswith(message)


# ---------------------------------------------------------------------------
# Data formats, dates, templates


def test_yaml_toml_errors():
    assert error_of('yaml_parse("a: [1, 2")').startswith("Thrown: yaml_parse: ")
    assert error_of('toml_parse("= 1")').startswith("Thrown: toml_parse: ")
    assert error_of("toml_stringify([1])") == "Thrown: toml_stringify: expected a dict, got list"


def test_dates():
    body = """
  let t = date_parse("2024-02-29T12:00:00+02:00")
  println(t)
  println(date_to_zone(t, "Europe/Paris"))
  println(date_format(date_add(t, 90s), "%H:%M:%S", "UTC"))
  println(duration_to_human(date_diff(date_parse("2024-03-01"), t)))
"""
    assert run_lines(body) == [
        "1709200800",
        "2024-02-29T11:00:00+01:00",
        "10:01:30",
        "14h",
    ]
    assert error_of('date_parse("2023-02-29")') == "Thrown: Cannot parse date: 2023-02-29"
    assert error_of('date_to_zone(0, "Nowhere/City")') == "Thrown: date_to_zone: unknown time zone 'Nowhere/City'"


def test_render_string():
    body = """
  println(render_string("{{ for u in users }}{{ loop.index }}.{{ u.name | upper }}{{ if !loop.last }} {{ end }}{{ end }}", {users: [{name: "a"}, {name: "b"}]}))
"""
    assert run_lines(body) == ["1.A 2.B"]
    assert error_of('render_string("{{ for x in xs }}", {})') == (
        "Thrown: render_string: 'for' block is missing its {{ end }}"
    )


def test_log_json_lines_match_the_oracle_shape():
    # Shape checked on harn 0.9.11: scalars stay JSON, other values go as their display text.
    import json
    import re

    lines = run_lines(
        """
  log_json("k", 5)
  log_json("k", "s\\"q")
  log_json("k", [1, "a", nil, 1.5, true])
  log_json("n", {a: {b: [1]}})
  log_json("k", nil)
  log_json("f", 2.0)
  log_json("b", false)
  log_json("f", 1.5)
  log_json("f", -0.0)
"""
    )
    assert len(lines) == 9
    for line in lines:
        assert re.fullmatch(r'\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","key":.*\}', line), line
    values = [(d["key"], d["value"]) for d in map(json.loads, lines)]
    assert values == [
        ("k", 5),
        ("k", 's"q'),
        ("k", "[1, a, nil, 1.5, true]"),
        ("n", "{a: {b: [1]}}"),
        ("k", None),
        ("f", 2.0),
        ("b", False),
        ("f", 1.5),
        ("f", -0.0),
    ]
    assert lines[5].endswith('"value":2}')
    assert lines[8].endswith('"value":-0}')
