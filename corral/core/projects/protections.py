"""Branch protection use cases: protect a branch pattern, change, list, remove."""

from __future__ import annotations

import re
import uuid
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.ids import uuid7
from corral.core.projects.commands import BranchProtectionChanges, NewBranchProtection
from corral.core.projects.model import Actor, BranchProtection, Project
from corral.core.projects.ports import UserDirectory
from corral.core.projects.service import audit
from corral.core.uow import UnitOfWorkFactory

__all__ = ["BranchProtectionService"]

_PATTERN = re.compile(r"^[A-Za-z0-9._/*?\[\]-]{1,255}$")
_FLAGS = ("allow_force_push", "allow_deletion", "require_merge_request", "bypass_admins")


def _pattern(value: object) -> str:
    if not isinstance(value, str) or not _PATTERN.match(value) or ".." in value or value.startswith(("/", "-")):
        raise InvalidInput("pattern must be a branch name or a glob like 'release/*'", field="pattern")
    return value


def _values_of(changes: dict[str, Any]) -> dict[str, Any]:
    """The rule's options among ``changes`` (the sent fields of a command), their values checked."""
    values: dict[str, Any] = {flag: bool(changes[flag]) for flag in _FLAGS if flag in changes}
    if "required_approvals" in changes:
        count = changes["required_approvals"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 20:
            raise InvalidInput("required_approvals must be an integer 0-20", field="required_approvals")
        values["required_approvals"] = count
    if "required_checks" in changes:
        checks = changes["required_checks"]
        if (not isinstance(checks, list) or len(checks) > 20
                or not all(isinstance(c, str) and 0 < len(c.strip()) <= 200 for c in checks)):
            raise InvalidInput("required_checks must be a list of at most 20 workflow names (or 'pipeline')",
                               field="required_checks")
        values["required_checks"] = tuple(dict.fromkeys(c.strip() for c in checks))
    return values


async def _allowlist(users: UserDirectory | None, names: list[str]) -> tuple[uuid.UUID, ...]:
    if len(names) > 100:
        raise InvalidInput("push_allowlist must be a list of at most 100 user names", field="push_allowlist")
    found: list[uuid.UUID] = []
    for name in dict.fromkeys(names):
        user = await users.by_name(name) if users is not None else None
        if user is None:
            raise InvalidInput(f"push_allowlist: {name!r} is not a user", field="push_allowlist")
        found.append(user.id)
    return tuple(found)


@attrs.define
class BranchProtectionService:
    """Branch protections. Callers have already checked project:admin (or project:read to list)."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    users: UserDirectory | None = None  # resolves push_allowlist names

    async def _values(self, changes: dict[str, Any]) -> dict[str, Any]:
        values = _values_of(changes)
        if "push_allowlist" in changes:
            values["push_allowlist"] = await _allowlist(self.users, changes["push_allowlist"])
        return values

    async def list(self, project: Project) -> list[BranchProtection]:
        async with self.uow_factory() as uow:
            return await uow.branch_protections.list(project.id)

    async def create(self, actor: Actor, project: Project, command: NewBranchProtection) -> BranchProtection:
        spec = attrs.asdict(command, recurse=False)
        del spec["pattern"]
        rule = BranchProtection(id=uuid7(), project_id=project.id, pattern=_pattern(command.pattern),
                                created_at=self.clock.now(), **await self._values(spec))
        async with self.uow_factory() as uow:
            if any(r.pattern == rule.pattern for r in await uow.branch_protections.list(project.id)):
                raise Conflict(f"{rule.pattern} is already protected; change that rule instead", field="pattern")
            await uow.branch_protections.add(rule)
            await audit(uow, self.clock, actor, "branch_protection.create", "branch_protection",
                        resource_id=rule.id, project_id=project.id, detail=_detail(rule))
            await uow.commit()
        return rule

    async def update(self, actor: Actor, project: Project, rule_id: uuid.UUID,
                     command: BranchProtectionChanges) -> BranchProtection:
        values = await self._values(sent_fields(command))
        async with self.uow_factory() as uow:
            rule = await uow.branch_protections.get(project.id, rule_id)
            if rule is None:
                raise NotFound("no such branch protection in this project")
            updated = attrs.evolve(rule, **values)
            await uow.branch_protections.update(updated)
            await audit(uow, self.clock, actor, "branch_protection.update", "branch_protection",
                        resource_id=rule.id, project_id=project.id, detail=_detail(updated))
            await uow.commit()
        return updated

    async def delete(self, actor: Actor, project: Project, rule_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            rule = await uow.branch_protections.get(project.id, rule_id)
            if rule is None or not await uow.branch_protections.delete(project.id, rule_id):
                raise NotFound("no such branch protection in this project")
            await audit(uow, self.clock, actor, "branch_protection.delete", "branch_protection",
                        resource_id=rule_id, project_id=project.id, detail={"pattern": rule.pattern})
            await uow.commit()


def _detail(rule: BranchProtection) -> dict[str, Any]:
    shown: dict[str, Any] = {"pattern": rule.pattern, "required_approvals": rule.required_approvals}
    shown.update({flag: getattr(rule, flag) for flag in _FLAGS})
    shown["push_allowlist"] = [str(u) for u in rule.push_allowlist]
    shown["required_checks"] = list(rule.required_checks)
    return shown
