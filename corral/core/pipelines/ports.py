"""What the pipeline definitions need from the outside: a parser of pipeline files."""

from __future__ import annotations

from typing import Protocol

from corral.core.pipelines.nodes import Node

__all__ = ["MAX_ALIAS_EXPANSION_NODES", "MAX_DEPTH", "MAX_FILE_BYTES", "PipelineFileParser"]

MAX_FILE_BYTES = 1024 * 1024  # one pipeline file
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_ALIAS_EXPANSION_NODES = 200_000  # nodes in the tree once every alias is expanded (billion laughs)


class PipelineFileParser(Protocol):
    """Turns the text of one pipeline file into a ``Node`` tree with 1-based line numbers.

    - Mappings keep their keys in order; every key is a string ``Scalar`` (a non-string key is an error).
    - Anchors and aliases are expanded; YAML merge keys (``<<: *map`` and ``<<: [*a, *b]``) are merged with
      the explicitly written keys winning; Woodpecker's sequence merge (a list item ``- <<: *list``) splices
      the aliased list's items in place.
    - Documents over ``MAX_FILE_BYTES``, nested deeper than ``MAX_DEPTH`` or expanding (through aliases) to
      more than ``MAX_ALIAS_EXPANSION_NODES`` nodes are refused.
    - An empty document is an empty ``Mapping``.

    Syntax errors and refused documents raise ``PipelineFileInvalid`` whose errors name ``file`` and the
    line. Parsing is CPU work bounded by the limits above; callers on an event loop run it in a thread.
    """

    def parse(self, text: str, *, file: str) -> Node:
        ...
