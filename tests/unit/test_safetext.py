"""Text every store can hold, and JSON bodies bounded in depth (corral.core.safetext)."""

from __future__ import annotations

import json

import pytest

from corral.core.errors import InvalidInput
from corral.core.safetext import clean_json_text, clean_text, find_nul, json_depth_exceeds, loads_json


def test_clean_text_replaces_nul_and_lone_surrogates_only() -> None:
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b") == "a\ufffdb"
    assert clean_text("x\ud800y\udfffz") == "x\ufffdy\ufffdz"
    assert clean_text("émoji 😀") == "émoji 😀"


@pytest.mark.parametrize(("value", "expected"), [
    ("a\x00b", "a\ufffdb"),
    ("\ud800", "\ufffd"),
    ("\udc00x", "\ufffdx"),
    ("😀", "😀"),  # a valid surrogate pair escaped by json.dumps stays
    ("\\u0000 is text", "\\u0000 is text"),  # an escaped backslash followed by u0000 is not an escape
    ("\\\x00", "\\\ufffd"),
])
def test_clean_json_text_handles_escaped_and_raw_bad_characters(value: str, expected: str) -> None:
    for ascii_only in (True, False):
        doc = json.dumps({"k" + value: [value, {"n": value}]}, ensure_ascii=ascii_only)
        cleaned = clean_json_text(doc)
        assert json.loads(cleaned) == {"k" + expected: [expected, {"n": expected}]}
        assert "\\u0000" not in cleaned.replace("\\\\u0000", "") and "\x00" not in cleaned


def test_find_nul_names_the_field_key_or_value() -> None:
    assert find_nul({"a": "ok", "b": [1, {"c": "x"}]}) is None
    assert find_nul({"name": "a\x00"}) == "name"
    assert find_nul({"a": {"b": ["ok", "x\x00"]}}) == "a.b[1]"
    assert find_nul({"a": {"k\x00": 1}}) == "a.k\\u0000"


def test_depth_is_checked_cheaply_and_brackets_in_strings_do_not_count() -> None:
    assert not json_depth_exceeds(b"[" * 10 + b"]" * 10, 64)
    assert json_depth_exceeds(b"[" * 65 + b"]" * 65, 64)
    assert not json_depth_exceeds(json.dumps({"s": "[" * 1000, "t": '\\"[' * 100}), 64)
    assert not json_depth_exceeds(b"[]" * 100_000, 2)
    with pytest.raises(InvalidInput) as info:
        loads_json(b"[" * 100_000)
    assert info.value.field == "body" and "deeper" in info.value.message
    with pytest.raises(InvalidInput):
        loads_json(b'{"a": \xff}')
    assert loads_json(b'{"a": [[1]]}') == {"a": [[1]]}
