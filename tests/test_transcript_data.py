"""The transcript data builtins' generated fields: ids are UUID v7, fresh
for every derived event on every rebuild, and kept for the transcript
itself; the golden case tests/oracle_golden/cases/transcript_data.harn pins
everything else against harn 0.9.11 with these ids scrubbed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

import harnvm

pytestmark = pytest.mark.needs_core


def values(body: str) -> list[Any]:
    """Runs `body` (which calls `put(value)`) and returns the emitted values."""
    out: list[str] = []
    prelude = "fn put(v) { println(json_stringify(v)) }\npipeline default() {\n"
    harnvm.run(prelude + body + "\n}\n", output=out.append)
    return [json.loads(line) for line in "".join(out).splitlines()]


def is_uuid7(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return parsed.version == 7 and str(parsed) == text


def test_every_generated_id_is_a_uuid7_and_unique() -> None:
    [t] = values(
        'let t = transcript_add_asset(transcript_from_messages([{role: "user", content: "a"}, "b"]), {kind: "file"})\n'
        "put(transcript_fork(t))"
    )
    ids = [t["id"]] + [e["id"] for e in t["events"]] + [a["id"] for a in t["assets"]]
    assert len(ids) == 5
    assert all(is_uuid7(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_rebuild_keeps_the_transcript_id_and_renews_event_ids() -> None:
    first, second, forked, fresh = values(
        'let t = transcript_from_messages([{role: "user", content: "a"}])\n'
        'let t2 = add_assistant(t, "b")\n'
        "put(t)\nput(t2)\nput(transcript_fork(t2))\nput(transcript_from_messages(t2))"
    )
    assert first["id"] == second["id"] == forked["id"]
    assert fresh["id"] != first["id"] and is_uuid7(fresh["id"])
    assert first["events"][0]["id"] != second["events"][0]["id"]
    assert [e["kind"] for e in forked["events"]] == ["message", "message", "transcript_fork"]


def test_ids_given_by_the_caller_are_kept() -> None:
    [t] = values('put(transcript_add_asset({_type: "transcript", id: "T"}, {id: "A"}))')
    assert t["id"] == "T"
    assert t["assets"][0]["id"] == "A"


def test_ids_increase_in_creation_order() -> None:
    # UUID v7 leads with a millisecond timestamp and a counter, so ids made
    # later in one run never sort before earlier ones.
    [t] = values('put(transcript_from_messages(["a", "b", "c", "d", "e", "f"]))')
    ids = [e["id"] for e in t["events"]]
    assert ids == sorted(ids)


def test_lifecycle_event_builders_have_an_id_and_keep_their_payload() -> None:
    events = values(
        'put(transcript_suspension_event({reason: "r"}))\n'
        'put(transcript_resumption_event({initiator_id: "i"}))\n'
        'put(transcript_drain_decision_event({reason: "d"}))'
    )
    assert [e["kind"] for e in events] == ["suspension", "resumption", "drain_decision"]
    assert [e["text"] for e in events] == ["r", "i", "d"]
    assert all(is_uuid7(e["id"]) for e in events)
    assert events[0]["suspension"] == events[0]["metadata"] == {"reason": "r"}


def test_a_reminder_without_an_id_gets_a_uuid7() -> None:
    given, generated = values('put(transcript_reminder_event({id: "r1"}))\nput(transcript_reminder_event({body: "b"}))')
    assert given["reminder"]["id"] == "r1" and is_uuid7(given["id"])
    assert is_uuid7(generated["reminder"]["id"]) and generated["reminder"]["id"] != generated["id"]
    assert generated["metadata"] == generated["reminder"]
