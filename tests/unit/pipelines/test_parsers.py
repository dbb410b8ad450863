"""The PipelineFileParser contract against the YAML adapter and the JSON fake, plus what only YAML has:
anchors, aliases, merge keys, Woodpecker's sequence merge, YAML errors with their lines, and bombs."""

from __future__ import annotations

import pytest

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.contracts.pipelines import PipelineFileParserContract
from corral.core.pipelines.nodes import Mapping, PipelineFileInvalid, Sequence, plain
from corral.fakes.pipelines import JsonPipelineFileParser


class TestPyYamlPipelineFileParser(PipelineFileParserContract):
    @pytest.fixture
    def parser(self):
        return PyYamlPipelineFileParser()


class TestJsonPipelineFileParser(PipelineFileParserContract):
    @pytest.fixture
    def parser(self):
        return JsonPipelineFileParser()


YAML = PyYamlPipelineFileParser()


def test_anchors_and_merge_keys_explicit_keys_win():
    text = """\
variables:
  - &base
    image: golang:1.22
    environment: {CGO_ENABLED: "0"}
  - &extra
    image: ignored
    detach: true
steps:
  build:
    <<: [*base, *extra]
    image: golang:1.23
    commands: [go build]
"""
    root = YAML.parse(text, file="f.yaml")
    build = plain(root.get("steps")).get("build")  # type: ignore[union-attr]
    assert build == {"environment": {"CGO_ENABLED": "0"}, "detach": True, "image": "golang:1.23",
                     "commands": ["go build"]}
    steps = root.get("steps")
    assert isinstance(steps, Mapping)
    node = steps.get("build")
    assert isinstance(node, Mapping)
    assert {k.text: k.line for k, _ in node.items}["image"] == 11  # the explicit key, with its own line


def test_woodpecker_sequence_merge_splices_the_list():
    text = """\
variables:
  - &setup
    - apt-get update
    - apt-get install -y make
steps:
  build:
    image: debian
    commands:
      - <<: *setup
      - make
"""
    root = YAML.parse(text, file="f.yaml")
    commands = root.get("steps").get("build").get("commands")  # type: ignore[union-attr]
    assert isinstance(commands, Sequence)
    assert plain(commands) == ["apt-get update", "apt-get install -y make", "make"]
    assert [c.line for c in commands] == [3, 4, 10]


def test_billion_laughs_is_refused():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("steps: *a9")
    with pytest.raises(PipelineFileInvalid) as info:
        YAML.parse("\n".join(lines), file="bomb.yaml")
    assert "expands to more than" in info.value.errors[0].message


def test_recursive_alias_is_refused():
    with pytest.raises(PipelineFileInvalid) as info:
        YAML.parse("a: &a [*a]\n", file="r.yaml")
    assert "nested deeper" in info.value.errors[0].message


def test_tab_indentation_reports_the_yaml_error_line():
    text = "steps:\n  build:\n\timage: alpine\n"
    with pytest.raises(PipelineFileInvalid) as info:
        YAML.parse(text, file=".woodpecker.yaml")
    (error,) = info.value.errors
    assert error.line == 3 and "invalid YAML" in error.message


def test_scalars_keep_their_text():
    root = YAML.parse("a: 1.10\nb: yes\nc: 017\nd: ~\ne: 2024-01-01\n", file="f.yaml")
    assert isinstance(root, Mapping)
    texts = {k.text: (v.value, v.text) for k, v in root.items}  # type: ignore[union-attr]
    assert texts == {"a": (1.1, "1.10"), "b": (True, "yes"), "c": (15, "017"), "d": (None, "~"),
                     "e": ("2024-01-01", "2024-01-01")}


def test_unknown_tag_is_refused():
    with pytest.raises(PipelineFileInvalid) as info:
        YAML.parse("a: !!python/object:os.system echo\n", file="f.yaml")
    assert "unsupported tag" in info.value.errors[0].message
