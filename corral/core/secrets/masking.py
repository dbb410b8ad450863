"""Masking secret values in output streams (pipeline logs, agent transcripts), chunk by chunk.

Each value is masked in its raw form, each of its lines, its base64
(standard and URL-safe, padded or not) and its URL-encoded forms. Output is
held back only as long as a masked form could still be completing across the
next chunk, so a value split over two writes is still masked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_MASKED_LENGTH", "SecretMasker", "masked_forms"]

MASK = "***"
# Shorter values would mask ordinary words and digits all over a log (GitLab refuses to mask them too).
MIN_MASKED_LENGTH = 4


def masked_forms(value: str) -> set[str]:
    """Every form of ``value`` that is replaced in output."""
    forms: set[str] = set()
    pieces = [value, *(line for line in value.splitlines() if line.strip())]
    for piece in pieces:
        piece = piece.strip("\r\n")
        if len(piece) < MIN_MASKED_LENGTH:
            continue
        raw = piece.encode()
        for enc in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            forms.add(enc)
            forms.add(enc.rstrip("="))
        forms.update({piece, quote(piece, safe=""), quote_plus(piece), quote(piece)})
    return {f for f in forms if len(f) >= MIN_MASKED_LENGTH}


class SecretMasker:
    """Replaces secret values in a stream of text chunks: ``feed`` each chunk, ``flush`` at the end.

    What ``feed`` returns is final; the concatenation of every ``feed`` and
    the ``flush`` equals the input with every masked form replaced by ``***``.
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms = set()
        for value in values:
            forms |= masked_forms(value)
        ordered = sorted(forms, key=len, reverse=True)  # longest first: mask the whole value, not a piece
        self._forms = ordered
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._hold = max((len(f) for f in ordered), default=1) - 1
        self._pending = ""

    def mask(self, text: str) -> str:
        """Mask one complete text (no streaming state)."""
        return self._pattern.sub(MASK, text) if self._pattern else text

    def feed(self, chunk: str) -> str:
        """Accept the next chunk; return the masked text that can no longer change."""
        if self._pattern is None:
            return chunk
        text = self._pending + chunk
        out: list[str] = []
        pos = 0
        hold_from = self._hold_from(text, 0)
        while True:
            if pos > hold_from:  # only then can the answer differ (indices before it were checked already)
                hold_from = self._hold_from(text, pos)
            match = self._pattern.search(text, pos)
            if match is None or match.start() >= hold_from:
                break
            out.append(text[pos : match.start()])
            out.append(MASK)
            pos = match.end()
        out.append(text[pos:hold_from])
        self._pending = text[hold_from:]
        return "".join(out)

    def _hold_from(self, text: str, pos: int) -> int:
        """The first index from which the rest of ``text`` could still grow into a masked form."""
        for i in range(max(pos, len(text) - self._hold), len(text)):
            tail = text[i:]
            if any(form.startswith(tail) for form in self._forms):
                return i
        return len(text)

    def flush(self) -> str:
        """The masked remainder held back by ``feed``."""
        rest, self._pending = self._pending, ""
        return self.mask(rest)
