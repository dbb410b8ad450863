"""Merge-request-only protection with an explicit bypass: project admins (when the rule says so) and a
push allowlist of users; bypassing pushes are audited."""

from __future__ import annotations

import pytest

from corral.core.errors import InvalidInput
from corral.core.git.model import RefUpdate
from corral.core.git.service import push_rules, record_push
from corral.core.projects.commands import BranchProtectionChanges, NewBranchProtection, NewProject
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.service import ProjectService


async def test_allowlist_names_resolved_validated_and_audited(world, repos, clock, users, alice, bob) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="app"))
    service = BranchProtectionService(world, clock, users)
    for bad in (["nobody"], ["bob"] * 101):  # a wrong type is refused at the edge (see test_project_api)
        with pytest.raises(InvalidInput) as err:
            await service.create(alice, project, NewBranchProtection(pattern="main", push_allowlist=bad))
        assert err.value.field == "push_allowlist"
    with pytest.raises(InvalidInput) as err:
        await service.create(alice, project, NewBranchProtection(pattern="main", required_approvals=21))
    assert err.value.field == "required_approvals"
    assert await service.list(project) == []
    rule = await service.create(alice, project, NewBranchProtection(pattern="main", require_merge_request=True,
                                                                     push_allowlist=["bob", "bob"], bypass_admins=True))
    assert rule.push_allowlist == (bob.id,) and rule.bypass_admins
    changed = await service.update(alice, project, rule.id, BranchProtectionChanges(push_allowlist=[]))
    assert changed.push_allowlist == ()
    details = [a.detail for a in world.audit if a.action.startswith("branch_protection.")]
    assert details[0]["push_allowlist"] == [str(bob.id)] and details[0]["bypass_admins"] is True
    assert details[1]["push_allowlist"] == []


async def test_who_bypasses_and_what_still_holds(world, repos, clock, users, alice, bob) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="app"))
    service = BranchProtectionService(world, clock, users)
    strict = await service.create(alice, project, NewBranchProtection(pattern="main", require_merge_request=True))
    listed = await service.create(alice, project, NewBranchProtection(pattern="release/*", require_merge_request=True,
                                                                       push_allowlist=["bob"], bypass_admins=True))
    assert strict.bypassed_by(alice.id, is_admin=True) is None  # no bypass unless the rule grants one
    assert listed.bypassed_by(bob.id, is_admin=False) == "allowlist"
    assert listed.bypassed_by(alice.id, is_admin=True) == "admin"
    assert listed.bypassed_by(alice.id, is_admin=False) is None
    plain = await service.create(alice, project, NewBranchProtection(pattern="dev", push_allowlist=["bob"]))
    assert plain.bypassed_by(bob.id, is_admin=True) is None  # nothing to bypass
    rules = {r.pattern: r for r in push_rules([strict, listed], [listed])}
    assert rules["main"].require_merge_request and not rules["release/*"].require_merge_request
    assert not rules["release/*"].allow_force_push  # a bypass is not a licence to force-push
    async with world() as uow:
        await record_push(uow, project, bob, [RefUpdate("0" * 40, "1" * 40, "refs/heads/release/1"),
                                                     RefUpdate("0" * 40, "2" * 40, "refs/heads/other")],
                          clock=clock, bypassed=[(listed, "allowlist")])
        await uow.commit()
    bypasses = [a for a in world.audit if a.action == "branch_protection.bypass"]
    assert [(a.actor_name, a.detail["ref"], a.detail["reason"], a.resource_id) for a in bypasses] == [
        ("bob", "refs/heads/release/1", "allowlist", listed.id)]
