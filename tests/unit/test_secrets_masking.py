"""The log masker (streaming across chunk boundaries) and ${{ secrets.NAME }} references."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.core.errors import InvalidInput
from corral.core.secrets import template
from corral.core.secrets.masking import MASK, SecretMasker

SECRET = "p@ss w0rd/+=&é"


def stream(masker: SecretMasker, chunks: list[str]) -> str:
    return "".join(masker.feed(c) for c in chunks) + masker.flush()


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        quote(SECRET, safe=""),
        quote_plus(SECRET),
    ],
)
def test_masks_every_form(form):
    out = SecretMasker([SECRET]).mask(f"token={form}; done")
    assert out == f"token={MASK}; done"


def test_masks_each_line_of_a_multiline_value():
    masker = SecretMasker(["-----BEGIN KEY-----\nAAAAbbbbCCCC\n-----END KEY-----"])
    assert masker.mask("line: AAAAbbbbCCCC") == f"line: {MASK}"


def test_short_values_and_no_values_leave_text_alone():
    assert SecretMasker(["ab"]).mask("abc ab") == "abc ab"
    masker = SecretMasker([])
    assert masker.feed("anything") == "anything" and masker.flush() == ""


def test_value_split_across_chunks_is_masked():
    masker = SecretMasker(["supersecret"])
    assert stream(masker, ["log: super", "sec", "ret and more"]) == f"log: {MASK} and more"


def test_output_is_not_held_longer_than_needed():
    masker = SecretMasker(["supersecret"])
    out = masker.feed("x" * 100)
    assert len(out) >= 100 - len("supersecret")


@settings(max_examples=100, deadline=None, database=None)
@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=8),
    value=st.sampled_from([SECRET, "tok_ABCDEF123456", "zzzz"]),
    enc=st.sampled_from(["raw", "b64", "url"]),
)
def test_streaming_equals_one_shot(before, after, cuts, value, enc):
    form = {
        "raw": value,
        "b64": base64.b64encode(value.encode()).decode(),
        "url": quote(value, safe=""),
    }[enc]
    text = before + form + after
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    streamed = stream(SecretMasker([value]), chunks)
    assert streamed == SecretMasker([value]).mask(text)
    assert form not in streamed


def test_references_and_substitute_nested():
    config = {"steps": [{"env": {"X": "${{ secrets.A }}", "${{ secrets.B }}": 1}}], "n": 2}
    assert template.references(config) == {"A", "B"}
    out = template.substitute(config, {"A": "${{ secrets.B }}", "B": "b"})
    assert out == {"steps": [{"env": {"X": "${{ secrets.B }}", "b": 1}}], "n": 2}
    with pytest.raises(InvalidInput, match="secret A is not defined"):
        template.substitute("${{ secrets.A }}", {})
    with pytest.raises(InvalidInput, match="not a valid secret reference"):
        template.references(["ok", "${{ secrets.9x }}"])
    assert template.references("${{ env.X }} plain") == set()
