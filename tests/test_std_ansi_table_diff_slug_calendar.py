"""std/ansi, std/table, std/diff, std/slug and std/calendar: their export lists
(0.9.11's), what harnvm's typed parameters reject, and behaviour the golden
cases cannot pin (unseeded randomness, host-independent colour defaults).
The golden cases tests/oracle_golden/cases/std_{ansi,table,diff,slug,calendar*}
compare everything else with the oracle."""

from __future__ import annotations

import re

import pytest

import harnvm
from harnvm._modules import STDLIB_DIR

# 0.9.11's `pub fn` names of each module.
EXPORTS = {
    "std/ansi": (
        "ansi_enabled ansi_escape ansi_reset ansi_strip ansi_visible_len ansi_style ansi_color ansi_bg "
        "ansi_bold ansi_dim ansi_underline ansi_success ansi_warn ansi_error ansi_info ansi_muted "
        "ansi_link ansi_truncate"
    ),
    "std/table": "render_table render_markdown_table render_kv_table",
    "std/diff": "diff_lines unified_diff colorize_diff diff_summary structural_diff render_diff_stat",
    "std/slug": (
        "slug_adjectives slug_nouns slug_verbs slug_dictionary random_slug slug_from deterministic_slug slug slugify"
    ),
    "std/calendar": (
        "parts iso_week quarter local_datetime add_calendar_units boundary start_of_day end_of_day "
        "start_of_week end_of_week start_of_month end_of_month start_of_quarter end_of_quarter "
        "start_of_year end_of_year date_range next_weekday previous_weekday countries country_info "
        "country_timezones default_timezone_for_country supported_holiday_calendars holidays is_holiday "
        "is_weekend is_business_day next_business_day add_business_days business_days_between "
        "business_window is_business_time"
    ),
}


def _pub_fns(module: str) -> set[str]:
    with open(f"{STDLIB_DIR}/{module.split('/', 1)[1]}.harn", encoding="utf-8") as f:
        return set(re.findall(r"^pub fn (\w+)", f.read(), re.M))


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_export_lists_are_0_9_11s(module: str) -> None:
    assert _pub_fns(module) == set(EXPORTS[module].split())
    vm = harnvm.Vm()
    for name in EXPORTS[module].split():
        assert vm.export(module, name) is not None


def _run(src: str) -> list[str]:
    out: list[str] = []
    harnvm.Vm(output=out.append).run(src)
    return [line.rstrip("\n") for line in out]


@pytest.mark.parametrize(
    ("call", "param"),
    [
        ('import "std/ansi"\nansi_strip(dyn(5))', "text"),
        ('import "std/ansi"\nansi_truncate("x", dyn("a"))', "max_chars"),
        ('import "std/table"\nrender_table(dyn("rows"))', "rows"),
        ('import "std/diff"\ndiff_lines(dyn(1), "x")', "before"),
        ('import "std/calendar"\nholidays(2024, dyn(5))', "calendar"),
    ],
)
def test_typed_parameters_reject_other_types(call: str, param: str) -> None:
    # 0.9.11 words these `Runtime error: TypeError: parameter 'P' expected T,
    # got U (v)`; harnvm raises its own parameter-check text for the same call.
    src = "fn dyn(x) { return x }\n" + call.replace("\n", "\ntry { ", 1) + " } catch (e) { println(to_string(e)) }"
    (line,) = _run(src)
    assert f"parameter '{param}'" in line and "expected" in line


def test_colour_is_off_unless_asked_for() -> None:
    # No terminal behind a harnvm run: `auto` (the default) means plain text.
    lines = _run(
        'import "std/ansi"\n'
        "println(ansi_enabled())\n"
        'println(ansi_enabled({stream: "stderr"}))\n'
        'println(ansi_bold("x") == "x")\n'
        'println(len(ansi_bold("x", {mode: "always"})))\n'
    )
    assert lines == ["false", "false", "true", "9"]


def test_unseeded_slugs_draw_from_the_dictionary() -> None:
    lines = _run(
        'import "std/slug"\n'
        "var seen = []\n"
        "for i in range(40) {\n"
        '  let parts = split(random_slug({segments: 3, separator: "."}), ".")\n'
        "  assert(len(parts) == 3 && slug_adjectives().contains(parts[0]))\n"
        "  assert(slug_nouns().contains(parts[1]) && slug_nouns().contains(parts[2]))\n"
        "  if !seen.contains(parts[1]) { seen = seen + [parts[1]] }\n"
        "}\n"
        "println(len(seen) > 1)\n"
        "println(slug(nil, {segments: 1}) != nil)\n"
    )
    assert lines == ["true", "true"]


def test_calendar_walks_are_bounded() -> None:
    # A calendar whose every day is a weekend has no business day to find.
    (line,) = _run(
        'import "std/calendar"\n'
        "try { next_business_day(0, {weekends: [1, 2, 3, 4, 5, 6, 7]}) } catch (e) { println(to_string(e)) }"
    )
    assert line == "__calendar_next_business_day: no business day found"
