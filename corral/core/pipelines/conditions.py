"""Evaluating ``when`` against what triggered a pipeline, with Woodpecker's semantics.

- ``when`` is a list of conditions: the step (or workflow) runs when at least one matches; no condition
  always matches. Inside a condition every constraint must match.
- ``branch`` is not checked for ``tag`` events; ``path`` only for ``push``, ``pull_request`` and
  ``pull_request_closed``; ``cron`` only for ``cron`` events; ``matrix`` only for steps (not workflows).
- ``status`` is not part of matching: it decides whether a step runs after a failure
  (``When.runs_on_success`` / ``When.runs_on_failure``), which only the engine knows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import attrs

from corral.core.pipelines.definition import Condition, ListFilter, MatrixFilter, PathFilter, When
from corral.core.pipelines.expression import Expression, parse_expression
from corral.core.pipelines.globs import glob_match

__all__ = ["TriggerContext", "condition_matches", "list_matches", "path_matches", "when_matches"]


@attrs.frozen
class TriggerContext:
    """What a pipeline was started for, as ``when`` sees it.

    ``changed_files`` None means unknown (e.g. a manual run): then it counts as empty (``on_empty``).
    ``environ`` holds the ``CI_*`` variables ``evaluate`` expressions read.
    """

    event: str
    branch: str = ""
    ref: str = ""
    commit_message: str = ""
    changed_files: tuple[str, ...] | None = None
    cron: str = ""
    repo: str = ""  # owner/name
    instance: str = ""  # the host name of the Corral instance
    platform: str = "linux/amd64"
    deploy_to: str = ""  # the deployment target (event deployment)
    environ: Mapping[str, str] = attrs.field(factory=dict)


def list_matches(constraint: ListFilter, value: str) -> bool:
    """Woodpecker's List.Match: an exclude glob matching refuses; an include glob matching accepts; no
    include accepts."""
    if any(glob_match(p, value) for p in constraint.exclude):
        return False
    if any(glob_match(p, value) for p in constraint.include):
        return True
    return not constraint.include


def matrix_matches(constraint: MatrixFilter, axis: Mapping[str, str]) -> bool:
    if not constraint.include and not constraint.exclude:
        return True
    if constraint.exclude and all(glob_match(v, axis.get(k, "")) for k, v in constraint.exclude):
        return False
    return all(glob_match(v, axis.get(k, "")) for k, v in constraint.include)


def path_matches(constraint: PathFilter, changed: tuple[str, ...], message: str) -> bool:
    """Woodpecker's Path.Match over the changed files."""
    if constraint.ignore_message and constraint.ignore_message.lower() in message.lower():
        return True
    if not changed:
        return constraint.on_empty
    if constraint.exclude and any(glob_match(p, f) for p in constraint.exclude for f in changed):
        return False
    return not (constraint.include and not any(glob_match(p, f) for p in constraint.include for f in changed))


@functools.lru_cache(maxsize=256)
def _expression(source: str) -> Expression:
    return parse_expression(source)


def condition_matches(condition: Condition, ctx: TriggerContext, *, axis: Mapping[str, str] | None = None,
                      workflow_level: bool = False) -> bool:
    """Whether one condition matches (``axis``: the workflow's matrix combination, for step conditions).

    An ``evaluate`` expression that fails at run time raises ExpressionError (Woodpecker fails the
    pipeline with the error); expressions are parsed during validation, so only type errors remain.
    """
    if not workflow_level and not matrix_matches(condition.matrix, axis or {}):
        return False
    if not (list_matches(condition.platform, ctx.platform) and list_matches(condition.environment, ctx.deploy_to)
            and list_matches(condition.event, ctx.event) and list_matches(condition.repo, ctx.repo)
            and list_matches(condition.ref, ctx.ref) and list_matches(condition.instance, ctx.instance)):
        return False
    if (ctx.event in ("push", "pull_request", "pull_request_closed") and condition.path is not None
            and not path_matches(condition.path, ctx.changed_files or (), ctx.commit_message)):
        return False
    if ctx.event != "tag" and not list_matches(condition.branch, ctx.branch):
        return False
    if ctx.event == "cron" and not list_matches(condition.cron, ctx.cron):
        return False
    return not (condition.evaluate and not _expression(condition.evaluate).evaluate(ctx.environ))


def when_matches(when: When, ctx: TriggerContext, *, axis: Mapping[str, str] | None = None,
                 workflow_level: bool = False) -> bool:
    """Whether a step's (or, with ``workflow_level``, a workflow's) ``when`` lets it run for ``ctx``."""
    if not when.conditions:
        return True
    return any(condition_matches(c, ctx, axis=axis, workflow_level=workflow_level) for c in when.conditions)
