"""A parsed pipeline file as a small tree of nodes that remember where they were written.

The YAML adapter (or any other ``PipelineFileParser``) produces this tree; the validator reads it and can
name the file, line and key path of every mistake. Anchors, aliases and merge keys are already resolved
by the parser: the tree is plain data.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

__all__ = ["Mapping", "Node", "PipelineError", "PipelineFileInvalid", "Scalar", "ScalarValue", "Sequence",
           "plain"]

ScalarValue = str | int | float | bool | None


@attrs.frozen
class Scalar:
    """A scalar: ``value`` is typed as YAML resolves it, ``text`` is how it was written."""

    value: ScalarValue
    text: str
    line: int
    column: int = 1

    @property
    def kind(self) -> str:
        return "null" if self.value is None else {bool: "boolean", int: "integer", float: "number"}.get(
            type(self.value), "string")


@attrs.frozen
class Sequence:
    """A list of nodes."""

    items: tuple[Node, ...]
    line: int
    column: int = 1

    kind = "list"

    def __iter__(self) -> Iterator[Node]:
        return iter(self.items)


@attrs.frozen
class Mapping:
    """A mapping with string keys, in the order they were written (a repeated key is kept twice: the
    validator reports it)."""

    items: tuple[tuple[Scalar, Node], ...]
    line: int
    column: int = 1

    kind = "map"

    def get(self, key: str) -> Node | None:
        for k, v in self.items:
            if k.text == key:
                return v
        return None

    def keys(self) -> list[str]:
        return [k.text for k, _ in self.items]


Node = Scalar | Sequence | Mapping


def plain(node: Node) -> object:
    """The node as plain Python data (dicts keep their order; a repeated key keeps its last value)."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Sequence):
        return [plain(i) for i in node.items]
    return {k.text: plain(v) for k, v in node.items}


@attrs.frozen(order=True)
class PipelineError:
    """One mistake in a pipeline file: where it is (file, 1-based line, key path) and what is wrong."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PipelineFileInvalid(Exception):
    """The file could not be turned into nodes at all (YAML syntax, size or expansion limits)."""

    def __init__(self, errors: list[PipelineError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors
