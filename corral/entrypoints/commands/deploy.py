"""``corral deploy render|diff OWNER/NAME ENVIRONMENT [--json]``: what the deployer would apply for an environment
(secret values masked) and what that would change in the live cluster, computed by the instance's own reconciler
(same templates, same cluster settings) without changing anything and without reading a secret."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import re
import sys
from typing import Any

import yaml

from corral.core.deploy.model import NOT_CONFIGURED, check_environment
from corral.core.deploy.reconciler import PlannedChange, Reconciler
from corral.core.deploy.service import ProjectInfo
from corral.core.errors import CorralError, InvalidInput, NotFound
from corral.entrypoints.cli import _configure_logging, command, instance_settings

__all__ = ["deploy_report", "format_report"]

_SLUG = re.compile(r"^[^/\s]+/[^/\s]+$")
MASK = "***"


def mask_secrets(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Secret with every value of ``data`` and ``stringData`` replaced (keys kept); other objects unchanged.
    Rendered Secrets only hold ``<secret:NAME>`` placeholders, but the live ones hold the real values."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: MASK for k in out[key]}
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK
        meta["annotations"] = annotations
        out["metadata"] = meta
    return out


def _yaml(obj: dict[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def _diff(change: PlannedChange) -> list[str]:
    before = _yaml(mask_secrets(change.live))
    if change.change in ("prune", "orphan"):
        after: list[str] = []
    elif change.change == "create":
        after = _yaml(mask_secrets(change.rendered))
    elif change.would_be is not None:
        after = _yaml(mask_secrets(change.would_be))
    else:
        return []
    return [line.rstrip("\n") for line in difflib.unified_diff(before, after, f"live/{change.ref}",
                                                              f"rendered/{change.ref}", n=2)]


async def deploy_report(reconciler: Reconciler, uow_factory: Any, slug: str, environment: str,
                        *, diff: bool) -> dict[str, Any]:
    """The render (``diff`` False) or diff report of ``slug``'s ``environment``, as printed with ``--json``."""
    owner, _, name = slug.partition("/")
    async with uow_factory() as uow:
        project = await uow.projects.get_by_slug(owner, name)
        found = await uow.deploy.get(project.id, environment) if project is not None else None
    if project is None:
        raise NotFound(f"project {slug} not found")
    if found is None:
        raise NotFound(f"{project.full_name} has no deployment in {environment}")
    rendering, plan = await reconciler.plan(found, ProjectInfo(project.id, project.full_name))
    out: dict[str, Any] = {"project": project.full_name, "environment": environment, "commit": rendering.commit,
                           "cluster": reconciler.cluster_name, "image_ref": found.image_ref,
                           "desired_revision": found.desired_revision}
    if not diff:
        out["objects"] = [{"ref": str(c.ref), "object": mask_secrets(c.rendered)} for c in plan
                          if c.rendered is not None]
        return out
    out["changes"] = [{"ref": str(c.ref), "change": c.change,
                       "diff": _diff(c) if c.change in ("create", "update", "prune", "orphan") else []}
                      for c in plan]
    out["summary"] = {k: sum(1 for c in plan if c.change == k)
                      for k in ("create", "update", "unchanged", "prune", "orphan", "unknown")}
    return out


def format_report(report: dict[str, Any], *, diff: bool) -> str:
    """The human form: YAML documents (render) or one line per object with a unified diff (diff)."""
    head = (f"# {report['project']} {report['environment']}: {report['image_ref']} (revision "
            f"{report['desired_revision']}), ops commit {report['commit'][:12]}, cluster: {report['cluster']}")
    if not diff:
        docs = [f"# {item['ref']}\n" + yaml.safe_dump(item["object"], sort_keys=False, default_flow_style=False)
                for item in report["objects"]]
        return head + "\n---\n" + "---\n".join(docs) if docs else head + "\n# (no objects)\n"
    lines = [head]
    if report["cluster"] == NOT_CONFIGURED:
        lines.append(f"cluster: {NOT_CONFIGURED} (nothing to compare with; the objects that would be applied:)")
    for change in report["changes"]:
        lines.append(f"{change['change']:<9} {change['ref']}")
        lines.extend("    " + line for line in change["diff"])
    summary = report["summary"]
    lines.append(", ".join(f"{n} {k}" for k, n in summary.items() if n) or "no objects")
    return "\n".join(lines) + "\n"


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise argparse.ArgumentTypeError(f"project must be owner/name, not {value!r}")
    return value


def _environment(value: str) -> str:
    try:
        return check_environment(value)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _one_line_error(message: str) -> None:
    print(f"corral deploy: {message} (corral deploy --help)", file=sys.stderr)
    raise SystemExit(2)


@command("deploy", "the deployer: render | diff OWNER/NAME ENVIRONMENT (what would be applied, what would change)")
def _deploy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["render", "diff"],
                   help="render: the objects that would be applied (secrets masked); diff: what applying them "
                        "would change in the live cluster")
    p.add_argument("project", type=_slug, help="owner/name")
    p.add_argument("environment", type=_environment, help="e.g. staging")
    p.error = _one_line_error  # type: ignore[method-assign,assignment]  # usage errors: one line, exit 2
    p.add_argument("--json", action="store_true", help="print the result as JSON")


@_deploy_args.run
def _deploy(args: argparse.Namespace) -> int:
    settings = instance_settings(args, require=True)
    _configure_logging(settings, quiet=True)
    if settings.profile == "memory":
        raise CorralError("the memory profile keeps no deployments; ask the running server: "
                          "GET /api/v1/projects/{owner}/{name}/deployments/{environment}/render")

    async def run() -> dict[str, Any]:
        from corral.entrypoints.bootstrap import start_platform
        from corral.entrypoints.web.routes.deploy import DeployKit

        platform = await start_platform(settings, attach=True)
        try:
            kit: DeployKit = platform.resolve(DeployKit)
            if kit.reconciler is None:
                raise CorralError("the deployer is not wired in this instance")
            return await deploy_report(kit.reconciler, kit.uow_factory, args.project, args.environment,
                                       diff=args.action == "diff")
        finally:
            await platform.aclose()

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report, default=str))
    else:
        sys.stdout.write(format_report(report, diff=args.action == "diff"))
    return 0
