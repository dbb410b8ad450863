"""A ``PipelineFileParser`` for tests that need no YAML library: JSON documents (JSON is a subset of
YAML), parsed by a small reader that records each value's line and column."""

from __future__ import annotations

import json
import re

from corral.core.pipelines.nodes import Mapping, Node, PipelineError, PipelineFileInvalid, Scalar, Sequence
from corral.core.pipelines.ports import MAX_ALIAS_EXPANSION_NODES, MAX_DEPTH, MAX_FILE_BYTES

__all__ = ["JsonPipelineFileParser"]

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"')
_WORDS = {"true": True, "false": False, "null": None}


class _Bad(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.nodes = 0

    def where(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        return line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def value(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise _Bad(self.pos, f"nested deeper than {MAX_DEPTH} levels; refused")
        self.nodes += 1
        if self.nodes > MAX_ALIAS_EXPANSION_NODES:
            raise _Bad(self.pos, f"more than {MAX_ALIAS_EXPANSION_NODES} nodes; refused")
        self.skip()
        start = self.pos
        line, column = self.where(start)
        char = self.text[start:start + 1]
        if char == "{":
            self.pos += 1
            items: list[tuple[Scalar, Node]] = []
            self.skip()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return Mapping((), line, column)
            while True:
                self.skip()
                key = self.value(depth + 1)
                if not isinstance(key, Scalar) or not isinstance(key.value, str):
                    raise _Bad(start, "a key must be a string")
                self.skip()
                self.expect(":")
                items.append((key, self.value(depth + 1)))
                self.skip()
                if self.text.startswith("}", self.pos):
                    self.pos += 1
                    return Mapping(tuple(items), line, column)
                self.expect(",")
        if char == "[":
            self.pos += 1
            values: list[Node] = []
            self.skip()
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return Sequence((), line, column)
            while True:
                values.append(self.value(depth + 1))
                self.skip()
                if self.text.startswith("]", self.pos):
                    self.pos += 1
                    return Sequence(tuple(values), line, column)
                self.expect(",")
        if char == '"':
            m = _STRING.match(self.text, start)
            if m is None:
                raise _Bad(start, "unterminated string")
            self.pos = m.end()
            decoded = json.loads(m.group())
            return Scalar(decoded, decoded, line, column)
        m = _NUMBER.match(self.text, start)
        if m is not None:
            self.pos = m.end()
            number: int | float = float(m.group()) if (m.group(1) or m.group(2)) else int(m.group())
            return Scalar(number, m.group(), line, column)
        for word, word_value in _WORDS.items():
            if self.text.startswith(word, start):
                self.pos += len(word)
                return Scalar(word_value, word, line, column)
        raise _Bad(start, f"unexpected {char!r}" if char else "unexpected end of document")

    def expect(self, char: str) -> None:
        self.skip()
        if not self.text.startswith(char, self.pos):
            found = self.text[self.pos:self.pos + 1] or "end of document"
            raise _Bad(self.pos, f"expected {char!r}, found {found!r}")
        self.pos += 1


class JsonPipelineFileParser:
    """``PipelineFileParser`` for JSON documents (no anchors, aliases or merge keys: JSON has none)."""

    def parse(self, text: str, *, file: str) -> Node:
        if len(text.encode()) > MAX_FILE_BYTES:
            raise PipelineFileInvalid([PipelineError(file, 0, "", f"larger than {MAX_FILE_BYTES} bytes")])
        if not text.strip():
            return Mapping((), 1, 1)
        reader = _Reader(text)
        try:
            node = reader.value(0)
            reader.skip()
            if reader.pos != len(text):
                raise _Bad(reader.pos, "unexpected text after the document")
        except _Bad as exc:
            line, _ = reader.where(exc.pos)
            raise PipelineFileInvalid([PipelineError(file, line, "", f"invalid document: {exc.message}")]) from None
        return node
