"""Nested std module paths (`std/json/stream`, `std/cli/argparse`,
`std/eval/stats`) and the parts of the std modules of harn 0.9.11 that the
oracle golden cases cannot show: host-capability errors and per-VM state."""

from __future__ import annotations

import json

import pytest

import harnvm
from harnvm._modules import DEFAULT_RESOLVER, STDLIB_DIR

NESTED = ["std/json/stream", "std/cli/argparse", "std/eval/stats"]


def _run(src: str) -> list[str]:
    lines: list[str] = []
    harnvm.Vm(output=lines.append).run(src)
    return "".join(lines).splitlines()


def test_nested_std_modules_are_listed_and_resolved() -> None:
    names = harnvm.stdlib_modules()
    for name in [*NESTED, "std/json", "std/xml", "std/graphql"]:
        assert name in names
    assert names == sorted(names)
    key, source = DEFAULT_RESOLVER.resolve("std/json/stream", "<string>")
    assert key == "std/json/stream" and "pub fn stream_validator" in source
    # `std/json` stays the file json.harn beside the json/ folder.
    key, source = DEFAULT_RESOLVER.resolve("std/json", "<string>")
    assert key == "std/json" and "pub fn safe_parse" in source


@pytest.mark.parametrize(
    "spec",
    ["std/json/", "std//json", "std/json/../text", "std/json/.stream", "std/json/stream.harn", "std/cli", "std/json\\stream", "std/"],
)
def test_malformed_nested_std_paths_are_no_module(spec: str) -> None:
    assert DEFAULT_RESOLVER.resolve(spec, "<string>") is None


def test_every_listed_std_module_is_a_file_under_the_stdlib() -> None:
    import os

    for name in harnvm.stdlib_modules():
        path = os.path.join(STDLIB_DIR, *name[4:].split("/")) + ".harn"
        assert os.path.isfile(path), name


def test_nested_modules_import_and_std_json_re_exports_the_stream_module() -> None:
    out = _run(
        'import { parse } from "std/cli/argparse"\n'
        'import { macro_pass_at_1 } from "std/eval/stats"\n'
        'import { stream_validate_create, stream_validate_chunk } from "std/json"\n'
        "fn main(harness: Harness) {\n"
        '  harness.stdio.println(parse({name: "t", args: [{name: "x", kind: "positional"}]}, ["v"]))\n'
        "  harness.stdio.println(macro_pass_at_1([{passes: 1, trials: 2}]))\n"
        "  let h = stream_validate_create({})\n"
        '  harness.stdio.println(h + " " + stream_validate_chunk(h, "[1]").verdict)\n'
        "}\n"
    )
    assert out == ["{ok: {rest: [], x: v}}", "0.5", "json_stream_validator:1 valid"]


def test_stream_handles_are_numbered_per_vm_and_unknown_ones_fail() -> None:
    src = (
        'import { stream_validator, stream_validate_create, stream_validate_finalize } from "std/json/stream"\n'
        "fn main(harness: Harness) {\n"
        "  let v = stream_validator({})\n"
        "  harness.stdio.println(stream_validate_create({}))\n"
        '  harness.stdio.println(try { stream_validate_finalize("json_stream_validator:9") })\n'
        "}\n"
    )
    expected = ["json_stream_validator:2", "Result.Err(json stream validator handle not found or expired: json_stream_validator:9)"]
    assert _run(src) == expected
    assert _run(src) == expected


def test_graphql_requests_need_the_net_capability() -> None:
    src = (
        'import { graphql_request, graphql_execute_operation, graphql_operation } from "std/graphql"\n'
        "fn main(harness: Harness) {\n"
        '  harness.stdio.println(try { graphql_request("https://api.example.invalid/graphql", "query Q { a }") })\n'
        '  let op = graphql_operation("q", "query Q { a }", {variables_schema: {type: "object", required: ["id"]}})\n'
        '  harness.stdio.println(try { graphql_execute_operation({url: "https://x.invalid"}, op, {id: 1}) })\n'
        '  harness.stdio.println(try { graphql_execute_operation("https://x.invalid", op, {}) })\n'
        "}\n"
    )
    out = _run(src)
    assert len(out) == 3
    for line in out[:2]:
        assert "harness.net.request: the `net` capability is not available" in line
    # Variables are checked before anything is sent.
    assert out[2] == "Result.Err({category: generic, message: at root: missing required key 'id'})"


@pytest.mark.parametrize(
    "doc",
    [
        '{"name": "bob", "age": 3, "tags": ["a", {"b": [1, 2.5e3]}], "esc": "q\\"}]\\\\"}',
        '{"name": 5}',
        '{"age": 1.5, "name": "x"}',
        '{"name": "x", "nested": {"deep": {"flag": "yes"}}}',
        '{"name": "x", "nested": {"deep": {"flag": true}}} ',
        '{"name": "x"} extra',
        '{"name": "x", "tags": [1, 2}',
        '[1, 2]',
        '{"name": "x",}',
    ],
)
def test_feeding_one_character_at_a_time_gives_the_whole_document_verdict(doc: str) -> None:
    # The validator resumes its scan where the previous chunk ended; cutting
    # the text anywhere must not change the verdict.
    schema = (
        '{type: "object", required: ["name"], properties: {name: {type: "string"}, age: {type: "integer"},'
        ' nested: {type: "object", properties: {deep: {type: "object", properties: {flag: {type: "boolean"}}}}}}}'
    )
    src = (
        'import { stream_validate_create, stream_validate_chunk, stream_validate_finalize } from "std/json/stream"\n'
        "fn main(harness: Harness) {\n"
        f"  let whole = stream_validate_create({schema})\n"
        "  stream_validate_chunk(whole, DOC)\n"
        f"  let bits = stream_validate_create({schema})\n"
        "  for c in DOC.chars() { stream_validate_chunk(bits, c) }\n"
        "  harness.stdio.println(json_stringify(stream_validate_finalize(whole)))\n"
        "  harness.stdio.println(json_stringify(stream_validate_finalize(bits)))\n"
        "}\n"
    ).replace("DOC", json.dumps(doc))
    whole, bits = _run(src)
    assert whole == bits
