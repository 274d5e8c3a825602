"""Query parameters of the activity API into store queries (pure): what is accepted, and each
refusal naming its parameter without quoting the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditstream.api.activity_params import (
    BadQuery,
    decode_cursor,
    describe,
    encode_cursor,
    is_checkpoint_read,
    parse_checkpoint_read,
    parse_export,
    parse_filter,
    parse_search,
)
from auditstream.store.query import ActivityFilter, Checkpoint, Cursor

A = "acme"
POSITION = Cursor(1_700_000_000_000_000, "5b3f0c1e-0000-4000-8000-000000000001")
CURSOR = encode_cursor(POSITION, ActivityFilter(A), "desc")


def _refused(call: object, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    def run() -> object:
        if call is parse_checkpoint_read:
            return parse_checkpoint_read(items)
        return call(A, items)  # type: ignore[operator]

    with pytest.raises(BadQuery) as caught:
        run()
    assert caught.value.status == 400
    return [(str(loc[1]), kind) for loc, _msg, kind in caught.value.errors]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], ActivityFilter(A)),
        (
            [("actor", "u-1"), ("actor", "ann@example.com")],
            ActivityFilter(A, actors=("u-1", "ann@example.com")),
        ),
        ([("actor", "u-1"), ("actor", "u-1")], ActivityFilter(A, actors=("u-1",))),
        (
            [("category", "recipe"), ("category", "account")],
            ActivityFilter(A, categories=("recipe", "account")),
        ),
        ([("activity", "user_login")], ActivityFilter(A, activities=("user_login",))),
        (
            [("resource_type", "recipe"), ("resource_id", "r-1")],
            ActivityFilter(A, resource_type="recipe", resource_id="r-1"),
        ),
        ([("outcome", "failure")], ActivityFilter(A, outcome="failure")),
        ([("ip", "2001:DB8:0:0::1")], ActivityFilter(A, ip="2001:db8::1")),
        ([("ip", "10.0.0.1")], ActivityFilter(A, ip="10.0.0.1")),
        ([("from", "2026-11-01")], ActivityFilter(A, since=datetime(2026, 11, 1, tzinfo=UTC))),
        (
            [("from", "2026-11-01T12:00:00+02:00")],
            ActivityFilter(A, since=datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ),
        (
            [("to", "2026-11-01T10:00:00Z")],
            ActivityFilter(A, until=datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ),
        (
            [("from", "2026-11-01"), ("to", "2026-11-01")],
            ActivityFilter(
                A, since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 11, 1, tzinfo=UTC)
            ),
        ),
        ([("q", "x' OR 1=1 --")], ActivityFilter(A, text="x' OR 1=1 --")),
        ([("q", 'NEAR("a" b) * ^"c"')], ActivityFilter(A, text='NEAR("a" b) * ^"c"')),
        ([("q", "Zürich 東京 🚀")], ActivityFilter(A, text="Zürich 東京 🚀")),
        ([("q", "x" * 200)], ActivityFilter(A, text="x" * 200)),
        (
            [("q", "\U0001f469\u200d\U0001f4bb \u202etxt")],
            ActivityFilter(A, text="\U0001f469\u200d\U0001f4bb \u202etxt"),
        ),
        # an empty value is a field left empty: not given
        ([("resource_type", ""), ("q", ""), ("actor", "")], ActivityFilter(A)),
    ],
)
def test_filters(items: list[tuple[str, str]], expected: ActivityFilter) -> None:
    assert parse_filter(A, items) == expected
    assert parse_search(A, items).filter == expected


@pytest.mark.parametrize(
    ("items", "order", "limit", "cursor", "total"),
    [
        ([], "desc", 100, None, False),
        ([("order", "asc"), ("limit", "1")], "asc", 1, None, False),
        ([("limit", "1000"), ("include_total", "true")], "desc", 1000, None, True),
        ([("include_total", "false"), ("cursor", CURSOR)], "desc", 100, POSITION, False),
        ([("limit", "")], "desc", 100, None, False),
    ],
)
def test_pages(
    items: list[tuple[str, str]], order: str, limit: int, cursor: Cursor | None, total: bool
) -> None:
    search = parse_search(A, items)
    assert search.page.order == order
    assert search.page.limit == limit
    assert search.page.cursor == cursor
    assert search.include_total is total


@pytest.mark.parametrize(
    ("items", "refusals"),
    [
        ([("limit", "0")], [("limit", "limit")]),
        ([("limit", "1001")], [("limit", "limit")]),
        ([("limit", "abc")], [("limit", "limit")]),
        ([("limit", "-1")], [("limit", "limit")]),
        ([("limit", "1e3")], [("limit", "limit")]),
        ([("limit", "\u0661\u0660")], [("limit", "limit")]),  # Arabic-Indic: str digits
        ([("limit", "10"), ("limit", "20")], [("limit", "repeated")]),
        ([("order", "DESC")], [("order", "enum")]),
        ([("outcome", "ok")], [("outcome", "enum")]),
        ([("include_total", "yes")], [("include_total", "enum")]),
        ([("category", "nope")], [("category", "unknown_category")]),
        (
            [("category", "recipe"), ("category", "x'; DROP TABLE events; --")],
            [("category", "unknown_category")],
        ),
        ([("activity", "user_logn")], [("activity", "unknown_activity")]),
        ([("ip", "10.0.0.256")], [("ip", "ip_address")]),
        ([("ip", "localhost")], [("ip", "ip_address")]),
        ([("from", "2026-13-01")], [("from", "datetime")]),
        ([("to", "yesterday")], [("to", "datetime")]),
        ([("from", "0001-01-01T00:00:00+01:00")], [("from", "datetime")]),
        ([("from", "2026-11-02"), ("to", "2026-11-01")], [("from", "range")]),
        ([("q", "x" * 201)], [("q", "too_long")]),
        ([("actor", "a" * 10_000)], [("actor", "too_long")]),
        ([("resource_id", "r\x00")], [("resource_id", "control_character")]),
        ([("q", "a\nb")], [("q", "control_character")]),
        ([("actor", "a\x85b")], [("actor", "control_character")]),
        ([("actor", f"u{i}") for i in range(51)], [("actor", "too_many")]),
        ([("cursor", "forged")], [("cursor", "cursor")]),
        ([("cursor", CURSOR[:-3])], [("cursor", "cursor")]),
        ([("cursor", CURSOR + "A")], [("cursor", "cursor")]),
        ([("actors", "u-1")], [("actors", "unknown_parameter")]),
        ([("format", "csv")], [("format", "unknown_parameter")]),
        # every problem is reported at once
        (
            [("limit", "0"), ("order", "up"), ("x", "1"), ("x", "2")],
            [("x", "unknown_parameter"), ("order", "enum"), ("limit", "limit")],
        ),
    ],
)
def test_search_refusals(items: list[tuple[str, str]], refusals: list[tuple[str, str]]) -> None:
    assert sorted(_refused(parse_search, items)) == sorted(refusals)


def test_a_refusal_never_quotes_the_value() -> None:
    secret = "secret-looking-value-" + "z" * 30
    for name in ("limit", "order", "category", "activity", "ip", "from", "cursor", "outcome"):
        with pytest.raises(BadQuery) as caught:
            parse_search(A, [(name, secret)])
        assert secret not in str(caught.value)
        assert secret[:20] not in str(caught.value)


def test_an_unknown_parameter_name_is_cut_and_only_printable() -> None:
    assert _refused(parse_search, [("x" * 10_000, "1")]) == [("x" * 40, "unknown_parameter")]
    assert _refused(parse_search, [("a\x00b", "1")]) == [("(unprintable)", "unknown_parameter")]


@pytest.mark.parametrize(
    ("items", "checkpoint", "limit"),
    [
        ([("after", "")], 0, 100),
        ([("after", "s0")], 0, 100),
        ([("after", "s42"), ("limit", "1000")], 42, 1000),
    ],
)
def test_checkpoint_reads(items: list[tuple[str, str]], checkpoint: int, limit: int) -> None:
    assert is_checkpoint_read(items)
    read = parse_checkpoint_read(items)
    assert read.checkpoint == Checkpoint(checkpoint)
    assert read.limit == limit


@pytest.mark.parametrize(
    ("items", "refusals"),
    [
        ([("after", "42")], [("after", "checkpoint")]),
        ([("after", "s-1")], [("after", "checkpoint")]),
        ([("after", "s" + "9" * 30)], [("after", "checkpoint")]),
        ([("after", "s1"), ("after", "s2")], [("after", "repeated")]),
        ([("after", "s1"), ("category", "recipe")], [("category", "not_with_after")]),
        ([("after", "s1"), ("cursor", CURSOR)], [("cursor", "not_with_after")]),
        ([("after", "s1"), ("order", "asc")], [("order", "not_with_after")]),
        ([("after", "s1"), ("limit", "0")], [("limit", "limit")]),
        ([("after", "s1"), ("bogus", "1")], [("bogus", "unknown_parameter")]),
    ],
)
def test_checkpoint_refusals(items: list[tuple[str, str]], refusals: list[tuple[str, str]]) -> None:
    assert sorted(_refused(parse_checkpoint_read, items)) == sorted(refusals)


def test_checkpoint_refusal_says_why() -> None:
    with pytest.raises(BadQuery) as caught:
        parse_checkpoint_read([("after", "s1"), ("actor", "u")])
    assert "misses none" in caught.value.errors[0][1]


def test_search_is_not_a_checkpoint_read() -> None:
    assert not is_checkpoint_read([("limit", "5"), ("q", "after")])


@pytest.mark.parametrize(
    ("items", "refusals"),
    [
        ([("limit", "5")], [("limit", "unknown_parameter")]),
        ([("cursor", CURSOR)], [("cursor", "unknown_parameter")]),
        ([("order", "asc")], [("order", "unknown_parameter")]),
    ],
)
def test_facet_refusals(items: list[tuple[str, str]], refusals: list[tuple[str, str]]) -> None:
    assert _refused(parse_filter, items) == refusals


def test_exports() -> None:
    export = parse_export(A, [("format", "csv"), ("order", "asc"), ("category", "recipe")])
    assert (export.format, export.order, export.filter.categories) == ("csv", "asc", ("recipe",))
    assert parse_export(A, [("format", "ndjson")]).order == "desc"


@pytest.mark.parametrize(
    ("items", "refusals"),
    [
        ([], [("format", "missing")]),
        ([("format", "")], [("format", "missing")]),
        ([("format", "xlsx")], [("format", "enum")]),
        ([("format", "csv"), ("limit", "5")], [("limit", "unknown_parameter")]),
        ([("format", "csv"), ("cursor", CURSOR)], [("cursor", "unknown_parameter")]),
    ],
)
def test_export_refusals(items: list[tuple[str, str]], refusals: list[tuple[str, str]]) -> None:
    assert _refused(parse_export, items) == refusals


@pytest.mark.parametrize(
    ("flt", "text"),
    [
        (ActivityFilter(A), "all events"),
        (
            ActivityFilter(A, actors=("u-1", "u-2"), categories=("recipe",), outcome="failure"),
            "actor=u-1,u-2; category=recipe; outcome=failure",
        ),
        (
            ActivityFilter(A, since=datetime(2026, 1, 1, tzinfo=UTC), text="q"),
            "from=2026-01-01T00:00:00+00:00; q=q",
        ),
    ],
)
def test_describe(flt: ActivityFilter, text: str) -> None:
    assert describe(flt) == text


def test_describe_is_cut() -> None:
    text = describe(ActivityFilter(A, actors=tuple(f"user-{i:04d}" for i in range(50))), 100)
    assert len(text) == 100
    assert text.endswith("…")


def test_a_cursor_is_good_for_the_filter_and_order_it_was_made_for() -> None:
    flt = ActivityFilter(A, categories=("recipe",), text="ü")
    text = encode_cursor(POSITION, flt, "asc")
    assert decode_cursor(text, flt, "asc") == POSITION
    search = parse_search(
        A, [("category", "recipe"), ("q", "ü"), ("order", "asc"), ("cursor", text)]
    )
    assert search.page.cursor == POSITION
    for other in (ActivityFilter("globex", categories=("recipe",), text="ü"), ActivityFilter(A)):
        with pytest.raises(ValueError, match="other filters"):
            decode_cursor(text, other, "asc")


def test_a_flood_of_bad_parameters_gets_a_short_answer() -> None:
    items = [(f"p{i}", "1") for i in range(5_000)] + [("limit", "0")] * 3
    with pytest.raises(BadQuery) as caught:
        parse_search(A, items)
    assert len(caught.value.errors) == 20
