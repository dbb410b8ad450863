"""Desired state use cases: ops repositories, deployments, history, rollback, promotion with approval.

Callers (the web layer) have checked ``deploy:read`` / ``deploy:promote`` in the project. Every change is
audited, kept in the history and announced (``deployment`` webhook event, ``deploy_status`` notification)
in the same transaction.
"""

from __future__ import annotations

import builtins
import re
import uuid
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.deploy.commands import DesiredState, NewOpsRepo
from corral.core.deploy.model import (
    NOT_CONFIGURED,
    Deployment,
    DeployStatus,
    HistoryEntry,
    HistoryResult,
    OpsRepo,
    Promotion,
    PromotionStatus,
    SyncStatus,
    check_app_path,
    check_environment,
    check_image_ref,
    check_namespace,
)
from corral.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound, PermissionDenied
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["Actor", "DeployService", "ProjectInfo", "announce", "deployment_json"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HTTPS_URL = re.compile(r"^https://[^\s@/]+(/[^\s]*)?$")
_LOOPBACK_URL = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?(/[^\s]*)?$")


@attrs.frozen
class Actor:
    id: uuid.UUID
    name: str


@attrs.frozen
class ProjectInfo:
    id: uuid.UUID
    full_name: str


def deployment_json(d: Deployment, project: str | None = None) -> dict[str, Any]:
    """The deployment as events carry it."""
    return {"id": str(d.id), "project": project, "environment": d.environment, "image_ref": d.image_ref,
            "desired_revision": d.desired_revision, "sync": d.sync.value, "health": d.health,
            "status": d.status.value, "last_error": d.last_error}


async def announce(uow: UnitOfWork, d: Deployment, project: str, action: str, actor: Actor | None) -> None:
    """A ``deployment`` webhook event and a ``deploy_status`` notification for a transition of ``d``."""
    sender = {"id": str(actor.id), "name": actor.name} if actor is not None else None
    body = deployment_json(d, project)
    payload = {"action": action, "project": {"id": str(d.project_id), "full_name": project}, "deployment": body,
               "sender": sender}
    await uow.outbox.add(topics.DEPLOYMENT, payload, project_id=d.project_id)
    title = f"{project} {d.environment}: {d.status.value} ({d.image_ref})"
    await uow.outbox.add(topics.DEPLOY_STATUS, {
        **payload, "title": title, "ref_id": str(d.id), "environment": d.environment, "status": d.status.value,
        "dedupe_key": f"deploy:{d.id}:{d.desired_revision}:{d.status.value}:{action}",
    }, project_id=d.project_id)


@attrs.define
class DeployService:
    uow_factory: UnitOfWorkFactory
    clock: Clock
    protected_environments: frozenset[str] = frozenset({"production"})
    history_limit: int = 10
    cluster_name: str = NOT_CONFIGURED

    # ---- ops repositories --------------------------------------------------------------------------------
    async def register_ops_repo(self, actor: Actor, command: NewOpsRepo) -> OpsRepo:
        if not _NAME.match(command.name):
            raise InvalidInput("name must be 1-64 letters, digits, '.', '_' or '-'", field="name")
        if (command.project is None) == (command.url is None):
            raise InvalidInput("give exactly one of project (owner/name) and url", field="project")
        if command.url is not None and not (_HTTPS_URL.match(command.url) or _LOOPBACK_URL.match(command.url)):
            raise InvalidInput("url must be an https:// git URL without credentials (keep those in a secret; "
                               "http:// only on this machine: localhost, 127.0.0.1, [::1])", field="url")
        if not _BRANCH.match(command.branch) or ".." in command.branch:
            raise InvalidInput("branch must be a branch name", field="branch")
        path = check_app_path(command.path, "path") if command.path.strip("/") else ""
        if command.credential_secret is not None:
            if command.url is None:
                raise InvalidInput("credential_secret is for an outside url", field="credential_secret")
            if not _SECRET.match(command.credential_secret):
                raise InvalidInput("credential_secret must be a secret name", field="credential_secret")
        async with self.uow_factory() as uow:
            project_id = None
            if command.project is not None:
                owner, _, name = command.project.partition("/")
                project = await uow.projects.get_by_slug(owner, name) if owner and name else None
                if project is None:
                    raise InvalidInput(f"project {command.project} not found", field="project")
                project_id = project.id
            if command.credential_secret is not None and await uow.secrets.get(None, command.credential_secret) \
                    is None:
                raise InvalidInput(f"secret {command.credential_secret} is not defined globally",
                                   field="credential_secret")
            if await uow.deploy.ops_repo_by_name(command.name) is not None:
                raise Conflict(f"ops repository {command.name} exists")
            repo = OpsRepo(id=uuid7(), name=command.name, branch=command.branch, path=path,
                           created_at=self.clock.now(), project_id=project_id, url=command.url,
                           credential_secret=command.credential_secret)
            await uow.deploy.add_ops_repo(repo)
            await self._audit(uow, actor, "deploy.ops_repo.create", "ops_repo", repo.id, None,
                              {"name": repo.name, "project": command.project, "url": repo.url, "branch": repo.branch,
                               "path": repo.path, "credential_secret": repo.credential_secret})
            await uow.commit()
        return repo

    async def list_ops_repos(self) -> list[OpsRepo]:
        async with self.uow_factory() as uow:
            return await uow.deploy.list_ops_repos()

    async def ops_repo_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        async with self.uow_factory() as uow:
            repos = await uow.deploy.list_ops_repos()
        return {r.id: r.name for r in repos if r.id in ids}

    # ---- reading ------------------------------------------------------------------------------------------
    async def get(self, project: ProjectInfo, environment: str) -> Deployment:
        async with self.uow_factory() as uow:
            found = await uow.deploy.get(project.id, check_environment(environment))
        if found is None:
            raise NotFound(f"{project.full_name} has no deployment in {environment}")
        return found

    async def list(self, project: ProjectInfo) -> list[Deployment]:
        async with self.uow_factory() as uow:
            return await uow.deploy.list_for_project(project.id)

    async def history(self, project: ProjectInfo, environment: str) -> builtins.list[HistoryEntry]:
        deployment = await self.get(project, environment)
        async with self.uow_factory() as uow:
            return await uow.deploy.history(deployment.id, self.history_limit)

    async def promotions(self, project: ProjectInfo) -> builtins.list[Promotion]:
        async with self.uow_factory() as uow:
            return await uow.deploy.list_promotions(project.id)

    # ---- writing desired state ---------------------------------------------------------------------------
    async def set_desired(self, actor: Actor, project: ProjectInfo, environment: str,
                          command: DesiredState) -> tuple[Deployment, bool]:
        """Write the desired state of ``environment``; True when the deployment is new."""
        check_environment(environment)
        check_image_ref(command.image_ref)
        check_namespace(command.namespace)
        app_path = check_app_path(command.app_path)
        if not isinstance(command.values_override, dict):
            raise InvalidInput("values_override must be an object", field="values_override")
        async with self.uow_factory() as uow:
            repo = await uow.deploy.ops_repo_by_name(command.ops_repo)
            if repo is None:
                raise InvalidInput(f"ops repository {command.ops_repo} is not registered", field="ops_repo")
            current = await uow.deploy.get(project.id, environment)
            now = self.clock.now()
            if current is None:
                base = Deployment(id=uuid7(), project_id=project.id, environment=environment, ops_repo_id=repo.id,
                                  app_path=app_path, image_ref=command.image_ref, namespace=command.namespace,
                                  created_at=now, updated_at=now, desired_revision=0, cluster=self.cluster_name)
            else:
                base = current
            desired = attrs.evolve(base, ops_repo_id=repo.id, app_path=app_path, image_ref=command.image_ref,
                                   namespace=command.namespace, values_override=dict(command.values_override),
                                   prune=command.prune, self_heal=command.self_heal,
                                   auto_rollback=command.auto_rollback)
            saved = await self._write(uow, actor, project, base if current is not None else None, desired, "update")
            await uow.commit()
        return saved, current is None

    async def _write(self, uow: UnitOfWork, actor: Actor | None, project: ProjectInfo, current: Deployment | None,
                     desired: Deployment, reason: str, detail: dict[str, Any] | None = None) -> Deployment:
        """Store a new desired state (a new revision and history entry), audit and announce it."""
        now = self.clock.now()
        if current is not None and current.history_id is not None:
            previous = await uow.deploy.get_history(current.history_id)
            if previous is not None and previous.result is HistoryResult.PENDING:
                await uow.deploy.set_history_result(previous.id, HistoryResult.SUPERSEDED.value)
        entry = HistoryEntry(id=uuid7(), deployment_id=desired.id, revision=desired.desired_revision + 1,
                             image_ref=desired.image_ref, values_override=dict(desired.values_override),
                             by_id=actor.id if actor else None, by_name=actor.name if actor else None, at=now,
                             reason=reason)
        saved = attrs.evolve(desired, desired_revision=entry.revision, updated_at=now,
                             updated_by=entry.by_id or desired.updated_by,
                             updated_by_name=entry.by_name or desired.updated_by_name, status=DeployStatus.PENDING,
                             sync=SyncStatus.OUT_OF_SYNC if self.cluster_name != NOT_CONFIGURED else SyncStatus.UNKNOWN,
                             last_error=None, attempts=0, next_attempt_at=None, history_id=entry.id,
                             cluster=self.cluster_name)
        await uow.deploy.save(saved)
        await uow.deploy.add_history(entry)
        await uow.deploy.trim_history(saved.id, self.history_limit)
        audit_detail = {"environment": saved.environment, "image_ref": saved.image_ref,
                        "revision": saved.desired_revision, "reason": reason,
                        "values_override_keys": sorted(saved.values_override), **(detail or {})}
        if current is not None and current.image_ref != saved.image_ref:
            audit_detail["previous_image_ref"] = current.image_ref
        await self._audit(uow, actor, f"deploy.{reason}", "deployment", saved.id, project.id, audit_detail)
        await announce(uow, saved, project.full_name, reason, actor)
        return saved

    async def rollback(self, actor: Actor, project: ProjectInfo, environment: str,
                       to: uuid.UUID | None) -> Deployment:
        """A new desired state from a history entry (default: the newest healthy one other than the current)."""
        async with self.uow_factory() as uow:
            current = await uow.deploy.get(project.id, check_environment(environment))
            if current is None:
                raise NotFound(f"{project.full_name} has no deployment in {environment}")
            saved = await self.rollback_in(uow, actor, project, current, to, "rollback")
            await uow.commit()
        return saved

    async def rollback_in(self, uow: UnitOfWork, actor: Actor | None, project: ProjectInfo, current: Deployment,
                          to: uuid.UUID | None, reason: str) -> Deployment:
        if to is not None:
            target = await uow.deploy.get_history(to)
            if target is None or target.deployment_id != current.id:
                raise NotFound(f"history entry {to} not found in {current.environment}")
        else:
            entries = await uow.deploy.history(current.id, self.history_limit)
            healthy = [e for e in entries if e.result is HistoryResult.HEALTHY and e.id != current.history_id
                       and e.image_ref != current.image_ref]
            if not healthy:
                raise InvalidTransition(f"{current.environment} has no earlier healthy state to roll back to")
            target = healthy[0]
        desired = attrs.evolve(current, image_ref=target.image_ref, values_override=dict(target.values_override))
        return await self._write(uow, actor, project, current, desired, reason,
                                 {"to_history_id": str(target.id), "to_revision": target.revision})

    async def promote(self, actor: Actor, project: ProjectInfo, to_env: str, from_env: str) -> Promotion:
        """Copy ``from_env``'s image reference to ``to_env``: at once, or pending an approval from someone else
        when ``to_env`` is protected."""
        check_environment(to_env)
        check_environment(from_env, "from")
        if to_env == from_env:
            raise InvalidInput("from must name another environment", field="from")
        async with self.uow_factory() as uow:
            source = await uow.deploy.get(project.id, from_env)
            if source is None:
                raise InvalidInput(f"{project.full_name} has no deployment in {from_env}", field="from")
            now = self.clock.now()
            promotion = Promotion(id=uuid7(), project_id=project.id, from_environment=from_env,
                                  to_environment=to_env, image_ref=source.image_ref, requested_by=actor.id,
                                  requested_by_name=actor.name, requested_at=now)
            if to_env in self.protected_environments:
                await uow.deploy.add_promotion(promotion)
                await self._audit(uow, actor, "deploy.promote_request", "promotion", promotion.id, project.id,
                                  {"from": from_env, "to": to_env, "image_ref": source.image_ref})
                await uow.commit()
                return promotion
            promotion = attrs.evolve(promotion, status=PromotionStatus.APPLIED, decided_at=now)
            await uow.deploy.add_promotion(promotion)
            await self._apply_promotion(uow, actor, project, promotion, source)
            await uow.commit()
        return promotion

    async def approve(self, actor: Actor, project: ProjectInfo, promotion_id: uuid.UUID) -> Promotion:
        async with self.uow_factory() as uow:
            promotion = await uow.deploy.get_promotion(promotion_id)
            if promotion is None or promotion.project_id != project.id:
                raise NotFound(f"promotion {promotion_id} not found")
            if promotion.status is not PromotionStatus.PENDING:
                raise InvalidTransition(f"promotion {promotion_id} is {promotion.status.value}")
            if promotion.requested_by == actor.id:
                raise PermissionDenied("a promotion to a protected environment needs an approval from someone else")
            source = await uow.deploy.get(project.id, promotion.from_environment)
            if source is None:
                raise InvalidTransition(f"{promotion.from_environment} has no deployment any more")
            promotion = attrs.evolve(promotion, status=PromotionStatus.APPLIED, approved_by=actor.id,
                                     approved_by_name=actor.name, decided_at=self.clock.now())
            await uow.deploy.save_promotion(promotion)
            await self._apply_promotion(uow, actor, project, promotion, source)
            await uow.commit()
        return promotion

    async def _apply_promotion(self, uow: UnitOfWork, actor: Actor, project: ProjectInfo, promotion: Promotion,
                               source: Deployment) -> Deployment:
        current = await uow.deploy.get(project.id, promotion.to_environment)
        if current is None:  # a new environment starts as a copy of the source's settings
            now = self.clock.now()
            base = attrs.evolve(source, id=uuid7(), environment=promotion.to_environment, created_at=now,
                                updated_at=now, desired_revision=0, applied_revision=None, applied_commit=None,
                                inventory=(), history_id=None, status=DeployStatus.PENDING)
        else:
            base = current
        desired = attrs.evolve(base, image_ref=promotion.image_ref)
        detail = {"from": promotion.from_environment, "promotion_id": str(promotion.id),
                  "requested_by": promotion.requested_by_name, "approved_by": promotion.approved_by_name}
        return await self._write(uow, actor, project, current, desired, "promote", detail)

    async def _audit(self, uow: UnitOfWork, actor: Actor | None, action: str, resource: str,
                     resource_id: uuid.UUID | None, project_id: uuid.UUID | None, detail: dict[str, Any]) -> None:
        from corral.core.audit.model import SYSTEM_ACTOR_ID, SYSTEM_ACTOR_NAME

        await uow.audit.record(AuditEntry(
            id=uuid7(), actor_id=actor.id if actor else SYSTEM_ACTOR_ID,
            actor_name=actor.name if actor else SYSTEM_ACTOR_NAME, action=action, resource=resource,
            created_at=self.clock.now(), resource_id=resource_id, project_id=project_id, detail=detail))
