"""Woodpecker's ``CI_*`` variables for a run, and replanning a pipeline from what it recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from corral.core.pipelines.conditions import TriggerContext
from corral.core.pipelines.definition import Workflow
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.runs import Pipeline
from corral.core.pipelines.selection import Definition, SourceFile, load_definition, plan_workflows
from corral.core.projects.model import Project

__all__ = ["definition_json", "pipeline_environment", "replan", "trigger_context"]


def definition_json(files: Sequence[SourceFile], ctx: TriggerContext, extra: Mapping[str, str]) -> dict[str, Any]:
    """What a pipeline records to be planned again identically when it runs (or is restarted)."""
    return {
        "files": [{"path": f.path, "text": f.text} for f in files],
        "context": {"event": ctx.event, "branch": ctx.branch, "ref": ctx.ref, "commit_message": ctx.commit_message,
                    "changed_files": list(ctx.changed_files) if ctx.changed_files is not None else None,
                    "repo": ctx.repo},
        "extra": dict(extra),  # source/target branches of a pull request, the cron schedule's name
    }


def trigger_context(definition: Mapping[str, Any], environ: Mapping[str, str]) -> TriggerContext:
    c = definition.get("context") or {}
    changed = c.get("changed_files")
    return TriggerContext(
        event=str(c.get("event", "")), branch=str(c.get("branch", "")), ref=str(c.get("ref", "")),
        commit_message=str(c.get("commit_message", "")),
        changed_files=tuple(changed) if isinstance(changed, list) else None, repo=str(c.get("repo", "")),
        cron=str((definition.get("extra") or {}).get("cron", "")), environ=dict(environ),
    )


def pipeline_environment(pipeline: Pipeline, project: Project, *, base_url: str,
                         prev: Pipeline | None = None) -> dict[str, str]:
    """The pipeline-wide variables (``CI_WORKFLOW_NAME``, ``CI_STEP_NAME``, ``CI_WORKSPACE`` are added per
    workflow and step)."""
    base = base_url.rstrip("/")
    extra = pipeline.definition.get("extra") or {}
    tag = pipeline.ref.removeprefix("refs/tags/") if pipeline.ref.startswith("refs/tags/") else ""
    env = {
        "CI": "woodpecker",
        "CI_REPO": project.full_name,
        "CI_REPO_OWNER": project.owner_name,
        "CI_REPO_NAME": project.name,
        "CI_REPO_URL": f"{base}/{project.full_name}",
        "CI_REPO_CLONE_URL": f"{base}/{project.full_name}.git",
        "CI_REPO_DEFAULT_BRANCH": project.default_branch,
        "CI_COMMIT_SHA": pipeline.commit_sha,
        "CI_COMMIT_REF": pipeline.ref,
        "CI_COMMIT_BRANCH": pipeline.branch,
        "CI_COMMIT_TAG": tag,
        "CI_COMMIT_MESSAGE": pipeline.commit_message,
        "CI_COMMIT_AUTHOR": pipeline.commit_author,
        "CI_COMMIT_PULL_REQUEST": str(pipeline.pull_request) if pipeline.pull_request else "",
        "CI_COMMIT_SOURCE_BRANCH": str(extra.get("source_branch", "")),
        "CI_COMMIT_TARGET_BRANCH": str(extra.get("target_branch", "")),
        "CI_PIPELINE_NUMBER": str(pipeline.number),
        "CI_PIPELINE_PARENT": str(pipeline.parent_number or 0),
        "CI_PIPELINE_EVENT": pipeline.event,
        "CI_PIPELINE_CRON": str(extra.get("cron", "")),  # the schedule's name (event cron)
        "CI_PIPELINE_URL": f"{base}/{project.full_name}/pipelines/{pipeline.number}",
        "CI_PIPELINE_FILES": ",".join((pipeline.definition.get("context") or {}).get("changed_files") or []),
        "CI_PREV_PIPELINE_NUMBER": str(prev.number) if prev else "",
        "CI_PREV_PIPELINE_STATUS": prev.status.value if prev else "",
        "CI_FORGE_TYPE": "corral",
        "CI_FORGE_URL": base,
        "CI_SYSTEM_NAME": "corral",
        "CI_SYSTEM_URL": base,
        "CORRAL_URL": base,
    }
    for key, value in pipeline.variables.items():  # a manual run's variables
        env.setdefault(key, value)
    return env


def replan(pipeline: Pipeline, parser: PipelineFileParser, environ: Mapping[str, str]) -> tuple[list[Workflow],
                                                                                                  Definition]:
    """The workflows the pipeline runs, planned again from its recorded files and trigger (deterministic)."""
    files = [SourceFile(str(f["path"]), str(f["text"])) for f in pipeline.definition.get("files") or []]
    definition = load_definition(files, parser, environ=dict(environ))
    if not definition.valid:
        return [], definition
    return plan_workflows(definition, trigger_context(pipeline.definition, environ)), definition
