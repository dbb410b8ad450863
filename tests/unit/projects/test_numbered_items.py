"""What issues and merge requests share: pages by number, and title/body changes."""

from __future__ import annotations

import attrs
import pytest

from corral.core.errors import InvalidInput
from corral.core.pagination import decode_cursor
from corral.core.projects.issues import number_cursor, numbered_page, text_changes


@attrs.frozen
class Item:
    number: int


def test_numbered_page_cursor_points_before_the_last_number_shown() -> None:
    page = numbered_page([Item(9), Item(8), Item(7)], 2)
    assert [i.number for i in page.items] == [9, 8]
    assert decode_cursor(page.next_cursor) == {"before": 8}
    assert number_cursor(page.next_cursor) == 8
    last = numbered_page([Item(7)], 2)
    assert last.items == [Item(7)] and last.next_cursor is None


def test_text_changes_refuse_unknown_fields_and_trim_the_title() -> None:
    assert text_changes({"title": "  Fix it ", "body": None}, {"title", "body"}) == {"title": "Fix it", "body": None}
    with pytest.raises(InvalidInput) as unknown:
        text_changes({"title": "x", "labels": []}, {"title", "body"})
    assert unknown.value.field == "labels"
    with pytest.raises(InvalidInput) as blank:
        text_changes({"title": "   "}, {"title"})
    assert blank.value.field == "title"
