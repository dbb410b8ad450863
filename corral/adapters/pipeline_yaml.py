"""The YAML pipeline file parser (PyYAML, with its C loader when the wheel has it).

PyYAML composes the document into its node graph (aliases still shared, nothing expanded), and this
module turns that graph into Corral's ``Node`` tree: anchors and aliases expanded under a node budget (a
"billion laughs" document is refused, not expanded), merge keys resolved — ``<<: *map`` and
``<<: [*a, *b]`` into a mapping, explicit keys winning, and Woodpecker's sequence merge, where a list item
``- <<: *list`` (a ``<<`` whose value is a list) splices that list's items in place.
"""

from __future__ import annotations

from typing import Any

import yaml

from corral.core.pipelines.nodes import Mapping, Node, PipelineError, PipelineFileInvalid, Scalar, Sequence
from corral.core.pipelines.ports import MAX_ALIAS_EXPANSION_NODES, MAX_DEPTH, MAX_FILE_BYTES

__all__ = ["PyYamlPipelineFileParser"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCT = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Builder:
    def __init__(self) -> None:
        self.budget = MAX_ALIAS_EXPANSION_NODES

    def spend(self, node: yaml.Node) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _Refused(node.start_mark.line + 1,
                           f"the document expands to more than {MAX_ALIAS_EXPANSION_NODES} nodes "
                           "(aliases of aliases?); refused")

    def build(self, node: yaml.Node, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise _Refused(node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels; refused")
        self.spend(node)
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            items: list[Node] = []
            for item in node.value:
                spliced = self.sequence_merge(item)
                if spliced is not None:
                    items.extend(self.build(i, depth + 1) for i in spliced)
                else:
                    items.append(self.build(item, depth + 1))
            return Sequence(tuple(items), line, column)
        assert isinstance(node, yaml.MappingNode)
        explicit: list[tuple[Scalar, Node]] = []
        merged: list[tuple[Scalar, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self.merge_sources(value_node, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark.line + 1, "a key must be a plain value, not a map or a list")
            key = self.scalar(key_node)
            explicit.append((Scalar(key.text, key.text, key.line, key.column), self.build(value_node, depth + 1)))
        if merged:
            taken = {k.text for k, _ in explicit}
            kept: list[tuple[Scalar, Node]] = []
            for k, v in merged:
                if k.text not in taken:
                    taken.add(k.text)
                    kept.append((k, v))
            explicit = kept + explicit
        return Mapping(tuple(explicit), line, column)

    @staticmethod
    def sequence_merge(item: yaml.Node) -> list[yaml.Node] | None:
        """The items to splice for a list item ``- <<: <a list>``, else None."""
        if (isinstance(item, yaml.MappingNode) and len(item.value) == 1 and item.value[0][0].tag == _MERGE
                and isinstance(item.value[0][1], yaml.SequenceNode)):
            return list(item.value[0][1].value)
        return None

    def merge_sources(self, value: yaml.Node, depth: int) -> list[tuple[Scalar, Node]]:
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        out: list[tuple[Scalar, Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise _Refused(source.start_mark.line + 1, "<< merges maps: its value must be a map or a list of maps")
            built = self.build(source, depth + 1)
            assert isinstance(built, Mapping)
            out.extend(built.items)  # earlier sources win: later duplicates are dropped by the caller
        return out

    @staticmethod
    def scalar(node: yaml.ScalarNode) -> Scalar:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        text = node.value
        tag = node.tag
        value: Any = text
        if tag == _TAG + "null":
            value = None
        elif tag == _TAG + "bool":
            value = _CONSTRUCT.construct_yaml_bool(node)
        elif tag == _TAG + "int":
            value = _CONSTRUCT.construct_yaml_int(node)
        elif tag == _TAG + "float":
            value = _CONSTRUCT.construct_yaml_float(node)
            if value != value or value in (float("inf"), float("-inf")):  # .nan, .inf: keep the text
                value = text
        elif tag not in (_TAG + "str", _TAG + "timestamp", _TAG + "binary", _TAG + "value"):
            raise _Refused(line, f"unsupported tag {tag!r}")
        return Scalar(value, text, line, column)


class PyYamlPipelineFileParser:
    """``PipelineFileParser`` over PyYAML (``yaml.CSafeLoader`` when available)."""

    def parse(self, text: str, *, file: str) -> Node:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise PipelineFileInvalid([PipelineError(file, 0, "", f"larger than {MAX_FILE_BYTES} bytes")])
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
            raise PipelineFileInvalid([PipelineError(file, line, "", f"invalid YAML: {message}")]) from None
        except yaml.YAMLError as exc:
            raise PipelineFileInvalid([PipelineError(file, 0, "", f"invalid YAML: {exc}")]) from None
        except RecursionError:
            raise PipelineFileInvalid([PipelineError(file, 0, "", f"nested deeper than {MAX_DEPTH} levels")]) from None
        if root is None:
            return Mapping((), 1, 1)
        try:
            return _Builder().build(root, 0)
        except _Refused as exc:
            raise PipelineFileInvalid([PipelineError(file, exc.line, "", exc.message)]) from None
        except RecursionError:
            raise PipelineFileInvalid([PipelineError(file, 0, "", f"nested deeper than {MAX_DEPTH} levels")]) from None
