"""Project visibility and ownership on top of RBAC (ProjectAwareWebAuth)."""

from __future__ import annotations

import uuid

import attrs
import pytest

from corral.core.errors import NotFound, PermissionDenied, Unauthenticated
from corral.core.projects.commands import NewProject
from corral.core.projects.service import ProjectService
from corral.entrypoints.web.keys import AUTH_CHALLENGE
from corral.entrypoints.web.project_access import ProjectAwareWebAuth


@attrs.frozen
class P:
    user_id: uuid.UUID
    name: str
    scopes: frozenset[str] | None = None
    token_project_id: uuid.UUID | None = None


class DenyRbac:
    """The inner WebAuth: RBAC grants nothing; records what reached it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def authenticate(self, request):
        return None

    async def authorize(self, request, principal, permission, project_id):
        self.asked.append(permission)
        if principal is None:
            raise Unauthenticated("authentication required")
        raise PermissionDenied(f"lacks {permission}")


@pytest.fixture
async def setup(world, repos, clock, alice):
    projects = ProjectService(world, repos, clock)
    made = {v: await projects.create(alice, NewProject(name=v, visibility=v))
            for v in ("private", "internal", "public")}
    inner = DenyRbac()
    return ProjectAwareWebAuth(inner, world), inner, made


async def test_public_read_is_open_to_anonymous(setup) -> None:
    auth, _inner, made = setup
    await auth.authorize({}, None, "project:read", made["public"].id)
    with pytest.raises(Unauthenticated):
        await auth.authorize({}, None, "project:write", made["public"].id)
    git_route = {AUTH_CHALLENGE: 'Basic realm="Corral"'}
    for hidden in ("internal", "private"):
        # REST: indistinguishable from a missing project; git routes: 401 so git prompts
        with pytest.raises(NotFound) as missing:
            await auth.authorize({}, None, "project:read", made[hidden].id)
        assert str(missing.value) == f"project alice/{hidden} not found"
        with pytest.raises(NotFound):
            await auth.authorize({}, None, "project:admin", made[hidden].id)
        with pytest.raises(Unauthenticated):
            await auth.authorize(git_route, None, "project:read", made[hidden].id)


async def test_internal_read_for_any_signed_in_user(setup, bob) -> None:
    auth, _inner, made = setup
    someone = P(bob.id, "bob")
    await auth.authorize({}, someone, "project:read", made["internal"].id)
    with pytest.raises(NotFound):  # may not see it: the same 404 as a missing project
        await auth.authorize({}, someone, "project:read", made["private"].id)
    with pytest.raises(PermissionDenied):  # may see it, lacks the permission: 403
        await auth.authorize({}, someone, "project:write", made["internal"].id)
    limited = P(bob.id, "bob", token_project_id=made["public"].id)
    with pytest.raises(NotFound):  # a token for another project sees nothing extra
        await auth.authorize({}, limited, "project:read", made["internal"].id)


async def test_signed_in_outsider_gets_404_for_any_permission_on_a_private_project(setup, bob) -> None:
    """Attack: a signed-in user told 403 (exists) from 404 (missing) could enumerate private project names."""
    auth, _inner, made = setup
    outsider = P(bob.id, "bob")
    for permission in ("project:read", "project:write", "project:admin", "secret:read", "observe:read"):
        with pytest.raises(NotFound) as hidden:
            await auth.authorize({}, outsider, permission, made["private"].id)
        assert str(hidden.value) == "project alice/private not found"
    # git routes too (only anonymous callers keep the 401 challenge)
    with pytest.raises(NotFound):
        await auth.authorize({AUTH_CHALLENGE: 'Basic realm="Corral"'}, outsider, "project:read", made["private"].id)


async def test_owner_holds_project_permissions_within_token_limits(setup, alice) -> None:
    auth, inner, made = setup
    owner = P(alice.id, "alice")
    for permission in ("project:read", "project:write", "project:admin", "project:delete"):
        await auth.authorize({}, owner, permission, made["private"].id)
    read_only = P(alice.id, "alice", scopes=frozenset({"project:read"}))
    await auth.authorize({}, read_only, "project:read", made["private"].id)
    with pytest.raises(PermissionDenied):  # sees it (403, not 404), but the token lacks the scope
        await auth.authorize({}, read_only, "project:write", made["private"].id)
    with pytest.raises(PermissionDenied):  # not a project permission: RBAC decides
        await auth.authorize({}, owner, "secret:read", made["private"].id)
    with pytest.raises(PermissionDenied):  # global checks are RBAC's
        await auth.authorize({}, owner, "project:create", None)
    assert inner.asked[-2:] == ["secret:read", "project:create"]
