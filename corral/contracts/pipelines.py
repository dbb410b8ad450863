"""PipelineFileParserContract: the behaviour every PipelineFileParser must show.

Subclass it once per implementation and provide a fixture ``parser``. The documents are JSON, which
every YAML parser also reads, so the same suite runs against the YAML adapter and the JSON fake.
"""

from __future__ import annotations

import pytest

from corral.core.pipelines.nodes import Mapping, PipelineFileInvalid, Scalar, Sequence, plain
from corral.core.pipelines.ports import MAX_DEPTH, MAX_FILE_BYTES, PipelineFileParser

__all__ = ["PipelineFileParserContract"]

DOC = """{
  "steps": {
    "build": {
      "image": "golang:1.22",
      "commands": ["go build", "go test ./..."],
      "detach": false,
      "retries": 3,
      "ratio": 1.5,
      "nothing": null
    }
  },
  "labels": {"b": "2", "a": "1"}
}
"""


class PipelineFileParserContract:
    @pytest.fixture
    def parser(self) -> PipelineFileParser:
        raise NotImplementedError

    def test_values_and_their_lines(self, parser: PipelineFileParser) -> None:
        root = parser.parse(DOC, file="f.yaml")
        assert isinstance(root, Mapping) and root.line == 1
        steps = root.get("steps")
        assert isinstance(steps, Mapping) and steps.keys() == ["build"]
        build = steps.get("build")
        assert isinstance(build, Mapping) and build.line == 3
        assert [k.line for k, _ in build.items] == [4, 5, 6, 7, 8, 9]
        commands = build.get("commands")
        assert isinstance(commands, Sequence) and [c.line for c in commands] == [5, 5]
        assert plain(build) == {"image": "golang:1.22", "commands": ["go build", "go test ./..."], "detach": False,
                                "retries": 3, "ratio": 1.5, "nothing": None}
        retries = build.get("retries")
        assert isinstance(retries, Scalar) and retries.text == "3" and retries.kind == "integer"

    def test_keys_keep_their_order(self, parser: PipelineFileParser) -> None:
        labels = parser.parse(DOC, file="f.yaml")
        assert isinstance(labels, Mapping)
        node = labels.get("labels")
        assert isinstance(node, Mapping) and node.keys() == ["b", "a"]

    def test_empty_document_is_an_empty_mapping(self, parser: PipelineFileParser) -> None:
        root = parser.parse("", file="f.yaml")
        assert isinstance(root, Mapping) and root.items == ()

    def test_syntax_error_names_file_and_line(self, parser: PipelineFileParser) -> None:
        with pytest.raises(PipelineFileInvalid) as info:
            parser.parse('{\n  "steps": {\n    "a": [1, 2\n  }\n}\n', file="x.yaml")
        (error,) = info.value.errors
        assert error.file == "x.yaml" and error.line in (3, 4)

    def test_deep_nesting_is_refused(self, parser: PipelineFileParser) -> None:
        deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
        with pytest.raises(PipelineFileInvalid) as info:
            parser.parse(deep, file="x.yaml")
        assert "nested" in info.value.errors[0].message

    def test_oversized_document_is_refused(self, parser: PipelineFileParser) -> None:
        big = '{"a": "' + "x" * MAX_FILE_BYTES + '"}'
        with pytest.raises(PipelineFileInvalid) as info:
            parser.parse(big, file="x.yaml")
        assert "larger than" in info.value.errors[0].message
