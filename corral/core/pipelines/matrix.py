"""Matrix expansion and Woodpecker's variable substitution of the file text before it is parsed.

``matrix: {GO: ["1.21", "1.22"], DB: [pg, mysql]}`` runs the workflow once per combination of the axes
(cartesian product, in file order); ``matrix: {include: [{GO: "1.22", DB: pg}, ...]}`` lists the
combinations explicitly (other axes are then ignored, as in Woodpecker). Each combination's values are
substituted into the file text (``${GO}``) before it is parsed again, like Woodpecker does.

Substitution follows drone/envsubst, which Woodpecker uses: ``${NAME}`` and ``$NAME``; ``$$`` is a
literal ``$``; ``${NAME:-default}`` / ``${NAME-default}`` / ``${NAME:=default}`` / ``${NAME=default}``;
``${NAME^^}`` / ``${NAME,,}`` upper / lower case. An unknown variable becomes empty (so shell variables in
commands are written ``$${HOME}`` or ``$$HOME`` in Woodpecker files). A value containing a newline is
inserted quoted, keeping the YAML well-formed and the line numbers true.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping as AbcMapping

from corral.core.pipelines.nodes import Mapping, Node, PipelineError, Scalar, Sequence

__all__ = ["MAX_COMBINATIONS", "SubstitutionError", "matrix_axes", "substitute"]

MAX_COMBINATIONS = 64

_VAR = re.compile(r"\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"\A([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])(.*)|(\^\^|,,))?\Z", re.DOTALL)


class SubstitutionError(ValueError):
    """A ``${...}`` form outside the supported subset; ``line`` is where it is."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def substitute(text: str, variables: AbcMapping[str, str]) -> str:
    """``text`` with every variable reference replaced (see the module docstring)."""

    def quoted(value: str) -> str:
        return json.dumps(value) if "\n" in value else value

    def replace(m: re.Match[str]) -> str:
        whole = m.group()
        if whole == "$$":
            return "$"
        if m.group(2) is not None:
            return quoted(variables.get(m.group(2), ""))
        inner = _BRACED.match(m.group(1))
        if inner is None:
            line = text.count("\n", 0, m.start()) + 1
            raise SubstitutionError(f"unsupported substitution {whole!r} (write $${{...}} for a literal)", line)
        name, op, default, case = inner.groups()
        value = variables.get(name)
        if case == "^^":
            return quoted((value or "").upper())
        if case == ",,":
            return quoted((value or "").lower())
        if op is not None and (value is None or (op.startswith(":") and value == "")):
            return quoted(default)
        return quoted(value or "")

    return _VAR.sub(replace, text)


def _scalar_text(node: Node) -> str | None:
    return node.text if isinstance(node, Scalar) and node.value is not None else None


def matrix_axes(node: Node, file: str) -> tuple[list[dict[str, str]], list[PipelineError]]:
    """The combinations of a file's top-level ``matrix`` (``[]`` without one) and its errors."""
    if not isinstance(node, Mapping):
        return [], []
    matrix = node.get("matrix")
    if matrix is None:
        return [], []
    errors: list[PipelineError] = []

    def err(n: Node, path: str, message: str) -> None:
        errors.append(PipelineError(file, n.line, path, message))

    if not isinstance(matrix, Mapping):
        err(matrix, "matrix", "must be a map of axes (or include: a list of combinations)")
        return [], errors
    include = matrix.get("include")
    combos: list[dict[str, str]] = []
    if include is not None:
        if not isinstance(include, Sequence):
            err(include, "matrix.include", "must be a list of maps")
            return [], errors
        for i, item in enumerate(include.items):
            if not isinstance(item, Mapping):
                err(item, f"matrix.include[{i}]", "must be a map of axis: value")
                continue
            combo: dict[str, str] = {}
            for k, v in item.items:
                text = _scalar_text(v)
                if text is None:
                    err(v, f"matrix.include[{i}].{k.text}", "must be a single value")
                else:
                    combo[k.text] = text
            combos.append(combo)
    else:
        axes: list[tuple[str, list[str]]] = []
        for k, v in matrix.items:
            values = [_scalar_text(x) for x in v.items] if isinstance(v, Sequence) else [None]
            if not isinstance(v, Sequence) or not v.items or any(x is None for x in values):
                err(v, f"matrix.{k.text}", "must be a non-empty list of values")
                continue
            axes.append((k.text, [x for x in values if x is not None]))
        combos = [dict(zip([a for a, _ in axes], vals, strict=True))
                  for vals in itertools.product(*(vs for _, vs in axes))] if axes else []
    if len(combos) > MAX_COMBINATIONS:
        err(matrix, "matrix", f"{len(combos)} combinations; at most {MAX_COMBINATIONS} are allowed")
        return [], errors
    if not combos and not errors:
        err(matrix, "matrix", "has no combinations")
    return combos, errors
