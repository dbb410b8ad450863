"""``deploy:promote`` in CORRAL_TOKEN only for a step that asks for it (``corral: {permissions}``) and only
when the user who triggered the pipeline holds it."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from corral.core.pipelines.engine_ports import PipelineToken
from corral.entrypoints.pipelines_wiring import IdentityPipelineTokens
from corral.fakes.clock import FakeClock
from tests.unit.pipelines.engine_support import Script, make_engine
from tests.unit.pipelines.test_definitions import errors, load

PROMOTING = """
skip_clone: true
steps:
  build: {image: x, commands: [make]}
  release:
    image: x
    commands: [promote]
    depends_on: [build]
    corral:
      permissions: [deploy:promote]
"""


def test_the_corral_key_is_validated_and_lands_on_the_step() -> None:
    d = load(PROMOTING)
    assert d.valid, d.errors
    steps = {s.name: s for s in d.workflows[0].steps}
    assert steps["release"].permissions == ("deploy:promote",) and steps["build"].permissions == ()
    assert errors("steps:\n  a:\n    image: x\n    commands: [x]\n    corral: {permissions: [admin]}\n") == [
        ".woodpecker.yaml:5: steps.a.corral.permissions: 'admin' is not a permission a step can ask for "
        "(one of: deploy:promote)"]
    assert errors("steps:\n  a:\n    image: x\n    commands: [x]\n    corral: {perms: [deploy:promote]}\n")[0] \
        .startswith(".woodpecker.yaml:5: steps.a.corral.perms:")
    assert errors("services:\n  db:\n    image: x\n    corral: {permissions: [deploy:promote]}\n"
                  "steps:\n  a: {image: x, commands: [x]}\n") == [
        ".woodpecker.yaml:4: services.db.corral: services do not take corral (steps only)"]


@attrs.define
class RecordingTokens:
    held: frozenset[str]
    issued: dict[str, frozenset[str]] = attrs.field(factory=dict)  # secret -> scopes granted
    revoked: list[uuid.UUID] = attrs.field(factory=list)

    async def issue(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, *, scopes: frozenset[str],
                    ttl_seconds: float, name: str) -> PipelineToken | None:
        granted = scopes & self.held
        if not granted:
            return None
        token = PipelineToken(uuid.uuid4(), f"tok-{len(self.issued)}-{'-'.join(sorted(granted))}")
        self.issued[token.secret] = frozenset(granted)
        return token

    async def revoke(self, token_id: uuid.UUID) -> None:
        self.revoked.append(token_id)


async def _run(held: frozenset[str]) -> tuple[Any, RecordingTokens]:
    engine = await make_engine({"release": Script(output="")})
    tokens = RecordingTokens(held)
    engine.scheduler.tokens = tokens
    p = await engine.create(PROMOTING, actor=uuid.uuid4())
    await engine.run_all()
    assert (await engine.statuses(p.number))["pipeline"] == "success"
    return engine, tokens


async def test_only_the_step_that_asks_gets_deploy_promote_and_every_token_is_revoked() -> None:
    engine, tokens = await _run(frozenset({"project:read", "project:write", "deploy:promote"}))
    build = engine.executor.specs["build"].secret_env["CORRAL_TOKEN"]
    release = engine.executor.specs["release"].secret_env["CORRAL_TOKEN"]
    assert tokens.issued[build] == {"project:read"}
    assert tokens.issued[release] == {"project:read", "deploy:promote"}
    assert len(tokens.revoked) == 2  # both tokens end with the workflow


async def test_a_user_without_deploy_promote_gets_no_more_than_project_read() -> None:
    engine, tokens = await _run(frozenset({"project:read"}))
    release = engine.executor.specs["release"].secret_env["CORRAL_TOKEN"]
    assert tokens.issued[release] == {"project:read"}


@attrs.define
class _Identity:
    held: frozenset[str]
    created: list[Any] = attrs.field(factory=list)

    @property
    def authorizer(self) -> Any:
        identity = self

        class Authorizer:
            async def user_permissions(self, user_id: uuid.UUID, project_id: uuid.UUID | None) -> frozenset[str]:
                return identity.held

        return Authorizer()

    @property
    def tokens(self) -> Any:
        identity = self

        class Tokens:
            async def create(self, actor: Any, command: Any, *, project_id: uuid.UUID) -> Any:
                identity.created.append(command)
                return attrs.make_class("Issued", ["token", "secret"])(
                    attrs.make_class("Token", ["id"])(uuid.uuid4()), "s")

        return Tokens()


async def test_identity_pipeline_tokens_grant_deploy_promote_only_when_the_user_holds_it() -> None:
    for held, expected in [({"project:read", "deploy:promote", "project:admin"}, ["deploy:promote", "project:read"]),
                           ({"project:read", "project:write"}, ["project:read"])]:
        identity = _Identity(frozenset(held))
        platform = attrs.make_class("Platform", [])()
        platform.resolve = lambda _kind, identity=identity: identity
        adapter = IdentityPipelineTokens(platform, FakeClock.real_time())
        token = await adapter.issue(uuid.uuid4(), "ann", uuid.uuid4(), scopes=frozenset({"project:read",
                                                                                         "deploy:promote"}),
                                    ttl_seconds=60, name="pipeline acme/app#1")
        assert token is not None
        assert identity.created[0].scopes == expected
