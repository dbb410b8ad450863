"""Pipeline results of a commit: its status (commit status API) and branch protection's required checks.

A check is a workflow name (a matrix workflow's runs all count) or ``pipeline`` (the whole pipeline). It is
judged on the newest pipeline of the commit that has it: missing until such a pipeline exists, pending while
it runs, passed when it ended ``success`` (or ``skipped``: its ``when`` did not match), failed otherwise.
"""

from __future__ import annotations

import uuid

import attrs

from corral.core.pipelines.runs import Pipeline, Status, WorkflowRun
from corral.core.uow import UnitOfWork

__all__ = ["PIPELINE_CHECK", "CheckResult", "commit_pipelines", "required_check_results"]

PIPELINE_CHECK = "pipeline"
_PASSED = frozenset({Status.SUCCESS, Status.SKIPPED})
_COMMIT_PIPELINES = 20


@attrs.frozen
class CheckResult:
    name: str
    state: str  # passed | failed | pending | missing
    number: int | None = None  # the pipeline judged
    status: str = ""


async def commit_pipelines(uow: UnitOfWork, project_id: uuid.UUID, sha: str
                           ) -> list[tuple[Pipeline, list[WorkflowRun]]]:
    """The newest pipelines of ``sha`` (newest first) with their workflows."""
    found = await uow.pipelines.by_commit(project_id, sha, _COMMIT_PIPELINES)
    return [(p, await uow.pipelines.workflows(p.id)) for p in found]


def _judge(name: str, statuses: list[Status], number: int) -> CheckResult:
    if any(not s.final for s in statuses):
        return CheckResult(name, "pending", number, "running")
    worst = next((s for s in statuses if s not in _PASSED), None)
    if worst is not None:
        return CheckResult(name, "failed", number, worst.value)
    return CheckResult(name, "passed", number, statuses[0].value)


async def required_check_results(uow: UnitOfWork, project_id: uuid.UUID, sha: str,
                                 checks: tuple[str, ...]) -> list[CheckResult]:
    runs = await commit_pipelines(uow, project_id, sha)
    results: list[CheckResult] = []
    for name in checks:
        result = CheckResult(name, "missing")
        for pipeline, workflows in runs:
            if name == PIPELINE_CHECK:
                result = _judge(name, [pipeline.status], pipeline.number)
                break
            mine = [w.status for w in workflows if w.name.split(" (")[0] == name]
            if mine:
                result = _judge(name, mine, pipeline.number)
                break
        results.append(result)
    return results
