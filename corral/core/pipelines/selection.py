"""Which files define a commit's pipeline, loading them into workflows, and planning a run.

What the engine calls, in order:

1. ``skip_ci(message)``: ``[skip ci]`` / ``[ci skip]`` in the commit message (any case) → no pipeline.
2. ``choose_files(paths)`` with the paths present at the commit (the repository root and
   ``.woodpecker/``): ``.corral.yaml`` (or ``.corral.yml``, ``.platform.yaml``, ``.platform.yml``) if present,
   else every ``.woodpecker/*.yaml|yml`` (one workflow per file, sorted by name), else
   ``.woodpecker.yaml`` (or ``.yml``).
3. ``load_definition([SourceFile(path, text), ...], parser, environ=CI_* variables)`` → a ``Definition``:
   every workflow (matrix-expanded) or every error of every file.
4. ``plan_workflows(definition, TriggerContext(...))`` → the workflows to run for this trigger: workflow
   ``when`` applied (and workflows whose ``depends_on`` names a workflow that does not run dropped, as
   Woodpecker does), steps whose ``when`` does not match removed, and the step dependencies recomputed
   on what remains. Status (``when.status``) is left to the engine: ``Step.when.runs_on_failure``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from corral.core.pipelines.conditions import TriggerContext, when_matches
from corral.core.pipelines.dag import graph_problems, step_dependencies
from corral.core.pipelines.definition import Workflow
from corral.core.pipelines.matrix import SubstitutionError, matrix_axes, substitute
from corral.core.pipelines.nodes import PipelineError, PipelineFileInvalid
from corral.core.pipelines.ports import MAX_FILE_BYTES, PipelineFileParser
from corral.core.pipelines.validate import build_workflow

__all__ = ["CORRAL_FILES", "WOODPECKER_DIR", "WOODPECKER_FILES", "Definition", "SourceFile", "choose_files",
           "load_definition", "load_file", "plan_workflows", "skip_ci", "workflow_name"]

CORRAL_FILES = (".corral.yaml", ".corral.yml", ".platform.yaml", ".platform.yml")
WOODPECKER_DIR = ".woodpecker"
WOODPECKER_FILES = (".woodpecker.yaml", ".woodpecker.yml")
_SKIP = re.compile(r"\[(?:skip ci|ci skip)\]", re.IGNORECASE)


def skip_ci(message: str) -> bool:
    """Whether the commit message asks for no pipeline."""
    return _SKIP.search(message) is not None


def choose_files(paths: Iterable[str]) -> list[str]:
    """The pipeline files to read among the repository-relative ``paths`` present at the commit."""
    present = set(paths)
    for name in CORRAL_FILES:
        if name in present:
            return [name]
    in_dir = sorted(p for p in present
                    if posixpath.dirname(p) == WOODPECKER_DIR and p.endswith((".yaml", ".yml")))
    if in_dir:
        return in_dir
    for name in WOODPECKER_FILES:
        if name in present:
            return [name]
    return []


def workflow_name(path: str) -> str:
    """``.woodpecker/build.yaml`` → ``build``; ``.woodpecker.yaml`` → ``woodpecker``."""
    base = posixpath.basename(path)
    for ext in (".yaml", ".yml"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.lstrip(".") or "workflow"


@attrs.frozen
class SourceFile:
    """One pipeline file: its repository-relative path and its text."""

    path: str
    text: str


@attrs.frozen
class Definition:
    """The workflows of a commit (matrix-expanded, file order) or the errors that make it invalid."""

    workflows: tuple[Workflow, ...] = ()
    errors: tuple[PipelineError, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


def load_file(source: SourceFile, parser: PipelineFileParser, *,
              environ: Mapping[str, str] | None = None) -> tuple[list[Workflow], list[PipelineError]]:
    """The workflows of one file (one per matrix combination) and its errors.

    With a matrix, or when ``environ`` is given (the engine passes the ``CI_*`` variables), the text is
    substituted before parsing, as Woodpecker does; the lint call passes no ``environ``.
    """
    name = workflow_name(source.path)
    if len(source.text.encode()) > MAX_FILE_BYTES:
        return [], [PipelineError(source.path, 0, "", f"larger than {MAX_FILE_BYTES} bytes")]
    try:
        first = parser.parse(source.text, file=source.path)
    except PipelineFileInvalid as exc:
        return [], exc.errors
    combos, errors = matrix_axes(first, source.path)
    if errors:
        return [], errors
    workflows: list[Workflow] = []
    seen_errors: set[PipelineError] = set()
    all_errors: list[PipelineError] = []
    runs: list[dict[str, str] | None] = list(combos) if combos else [None]
    for combo in runs:
        node = first
        if combo is not None or environ is not None:
            try:
                text = substitute(source.text, {**(environ or {}), **(combo or {})})
                node = parser.parse(text, file=source.path)
            except SubstitutionError as exc:
                return [], [PipelineError(source.path, exc.line, "", str(exc))]
            except PipelineFileInvalid as exc:
                return [], exc.errors
        axis = tuple(combo.items()) if combo else ()
        workflow, errs = build_workflow(node, file=source.path, name=name, axis=axis)
        for e in errs:
            if e not in seen_errors:
                seen_errors.add(e)
                all_errors.append(e)
        if workflow is not None:
            workflows.append(workflow)
    return (workflows if not all_errors else []), all_errors


def load_definition(files: Sequence[SourceFile], parser: PipelineFileParser, *,
                    environ: Mapping[str, str] | None = None, check_workflow_dependencies: bool = True) -> Definition:
    """Every file loaded; workflows' ``depends_on`` checked across files (unknown names, cycles) unless
    ``check_workflow_dependencies`` is off (the lint call checks one file alone)."""
    workflows: list[Workflow] = []
    errors: list[PipelineError] = []
    for source in files:
        w, e = load_file(source, parser, environ=environ)
        workflows.extend(w)
        errors.extend(e)
    if check_workflow_dependencies and not errors:
        deps: dict[str, tuple[str, ...]] = {}
        files_of: dict[str, str] = {}
        for wf in workflows:
            deps.setdefault(wf.name, wf.depends_on)
            files_of.setdefault(wf.name, wf.file)
        for name, message in graph_problems(deps):
            errors.append(PipelineError(files_of.get(name, ""), 0, "depends_on", message))
    if errors:
        return Definition((), tuple(errors))
    return Definition(tuple(workflows), ())


def plan_workflows(definition: Definition, ctx: TriggerContext) -> list[Workflow]:
    """The workflows (with their steps) that run for ``ctx``; see the module docstring.

    An ``evaluate`` expression failing at run time raises ``ExpressionError``.
    """
    kept: list[Workflow] = []
    for workflow in definition.workflows:
        if not when_matches(workflow.when, ctx, workflow_level=True):
            continue
        axis = dict(workflow.axis)
        steps = [s for s in workflow.steps if when_matches(s.when, ctx, axis=axis)]
        if not steps:
            continue
        services = tuple(s for s in workflow.services if when_matches(s.when, ctx, axis=axis))
        names = {s.name for s in steps}
        deps = {k: tuple(d for d in v if d in names) for k, v in step_dependencies(steps).items()}
        kept.append(attrs.evolve(workflow, steps=tuple(steps), services=services, dependencies=deps))
    while True:  # a workflow waiting for one that does not run does not run either
        present = {w.name for w in kept}
        remaining = [w for w in kept if all(d in present for d in w.depends_on)]
        if len(remaining) == len(kept):
            return remaining
        kept = remaining
