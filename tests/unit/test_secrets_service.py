"""Secrets use cases on fakes: versions, check-and-set, scopes, shadowing, audit, tamper, rotation."""

from __future__ import annotations

import os
import uuid

import attrs
import pytest

from corral.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from corral.core.secrets.commands import PutSecret, SecretVersions
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretScope, SecretUndecryptable
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.rotation import MasterKeyRotation, check_master_key
from corral.core.secrets.service import SecretsService
from corral.fakes.clock import FakeClock
from corral.fakes.secrets import AllowAllAuthorizer, FakeCipher, FakeKeyWrapper
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.unit.secrets_support import Who, audit, new_db

ALICE = Who(uuid.uuid4(), "alice")
PIPE = Who(uuid.uuid4(), "pipeline-runner")
PROJECT = uuid.uuid4()
OTHER = uuid.uuid4()
VALUE = "s3cr3t-Ünïcode-value"


@attrs.define
class World:
    db: InMemoryUnitOfWorkFactory
    service: SecretsService
    reader: SecretReader
    authz: AllowAllAuthorizer
    envelope: Envelope
    clock: FakeClock

    def with_keys(self, *keys: bytes) -> World:
        env = Envelope(FakeCipher(), FakeKeyWrapper(*keys))
        return World(
            self.db, SecretsService(self.db, env, self.clock, max_versions=3),
            SecretReader(self.db, env, self.authz, self.clock), self.authz, env, self.clock,
        )


MASTER = os.urandom(32)


@pytest.fixture
def w() -> World:
    clock, authz = FakeClock(), AllowAllAuthorizer()
    db = new_db(clock)
    env = Envelope(FakeCipher(), FakeKeyWrapper(MASTER))
    return World(
        db, SecretsService(db, env, clock, max_versions=3), SecretReader(db, env, authz, clock), authz, env, clock
    )


def all_bytes(db: InMemoryUnitOfWorkFactory) -> bytes:
    tables = db.db.secrets
    return repr((tables.secrets, tables.versions, audit(db))).encode() + b"".join(
        (v.ciphertext or b"") + (v.wrapped_key.blob if v.wrapped_key else b"") for v in tables.versions.values()
    )


async def test_put_creates_then_updates_and_never_returns_value(w: World):
    info, created = await w.service.put(ALICE, PROJECT, "API_TOKEN", PutSecret(value=VALUE, scope=SecretScope.PIPELINE))
    assert created and info.version == 1 and info.scope is SecretScope.PIPELINE
    info, created = await w.service.put(ALICE, PROJECT, "API_TOKEN",
                                        PutSecret(value=VALUE + "2", scope=SecretScope.ALL))
    assert not created and info.version == 2 and info.scope is SecretScope.ALL
    assert VALUE not in repr(info)
    assert VALUE.encode() not in all_bytes(w.db)
    assert [e.action for e in audit(w.db)] == ["secret.create", "secret.update"]
    assert audit(w.db)[0].detail["secret_name"] == "API_TOKEN"


async def test_check_and_set(w: World):
    with pytest.raises(Conflict, match="does not exist"):
        await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE, cas=3))
    await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE, cas=0))
    with pytest.raises(Conflict, match="check-and-set"):
        await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE, cas=0))
    with pytest.raises(Conflict, match="version 1, not 5"):
        await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE, cas=5))
    info, _ = await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE, cas=1))
    assert info.version == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "1BAD"}, "name"),
        ({"name": "has-dash"}, "name"),
        ({"value": ""}, "value"),
        ({"value": 42}, "value"),
        ({"value": "x" * 70000}, "value"),
        ({"scope": "everyone"}, "scope"),
        ({"cas": -1}, "cas"),
        ({"cas": "1"}, "cas"),
    ],
)
async def test_bad_input_names_field_and_changes_nothing(w: World, kwargs, field):
    args = {"name": "GOOD", "value": VALUE, "scope": "pipeline", "cas": None, **kwargs}
    # a command built by hand (not through the web edge) is still checked by the service
    command = PutSecret(value=args["value"], scope=args["scope"], cas=args["cas"])
    with pytest.raises(InvalidInput) as err:
        await w.service.put(ALICE, PROJECT, args["name"], command)
    assert err.value.field == field
    assert VALUE not in str(err.value)
    assert not w.db.db.secrets.secrets and not audit(w.db)


async def test_keeps_last_n_versions(w: World):
    for i in range(5):
        info, _ = await w.service.put(ALICE, PROJECT, "K", PutSecret(value=f"{VALUE}{i}"))
    assert [v.version for v in info.versions] == [3, 4, 5]
    assert await w.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "build 1") == f"{VALUE}4"


async def test_soft_delete_undelete_destroy_purge(w: World):
    await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE))
    await w.service.delete(ALICE, PROJECT, "K")
    with pytest.raises(NotFound, match="no readable current version"):
        await w.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "x")
    await w.service.undelete(ALICE, PROJECT, "K")
    assert await w.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "x") == VALUE
    info = await w.service.destroy(ALICE, PROJECT, "K", SecretVersions(versions=[1]))
    assert info.versions[0].destroyed
    version = w.db.db.secrets.versions[(info.id, 1)]
    assert version.ciphertext is None and version.wrapped_key is None
    await w.service.undelete(ALICE, PROJECT, "K", SecretVersions(versions=[1]))  # destroyed stays destroyed
    with pytest.raises(NotFound):
        await w.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "x")
    with pytest.raises(NotFound, match="no version 9"):
        await w.service.destroy(ALICE, PROJECT, "K", SecretVersions(versions=[9]))
    await w.service.purge(ALICE, PROJECT, "K")
    assert await w.service.list_secrets(PROJECT) == []
    with pytest.raises(NotFound, match="not defined"):
        await w.service.describe(PROJECT, "K")


async def test_reader_project_shadows_global_and_audits(w: World):
    await w.service.put(ALICE, None, "SHARED", PutSecret(value="global-value", scope=SecretScope.ALL))
    await w.service.put(ALICE, PROJECT, "SHARED", PutSecret(value="project-value", scope=SecretScope.ALL))
    await w.service.put(ALICE, None, "ONLY_GLOBAL", PutSecret(value="g2", scope=SecretScope.ALL))
    values = await w.reader.read_many(PIPE, PROJECT, ["SHARED", "ONLY_GLOBAL"], SecretScope.PIPELINE, "build 7")
    assert values == {"SHARED": "project-value", "ONLY_GLOBAL": "g2"}
    assert await w.reader.read(PIPE, OTHER, "SHARED", SecretScope.AGENT, "agent run") == "global-value"
    reads = [e for e in audit(w.db) if e.action == "secret.read"]
    assert [(e.actor_name, e.detail["secret_name"], e.detail["version"], e.detail["purpose"]) for e in reads] == [
        ("pipeline-runner", "ONLY_GLOBAL", 1, "pipeline"),
        ("pipeline-runner", "SHARED", 1, "pipeline"),
        ("pipeline-runner", "SHARED", 1, "agent"),
    ]
    assert reads[0].detail["reason"] == "build 7"
    assert b"project-value" not in all_bytes(w.db) and b"global-value" not in all_bytes(w.db)


async def test_reader_gated_by_permission_and_scope(w: World):
    await w.service.put(ALICE, PROJECT, "DEPLOY_KEY", PutSecret(value=VALUE, scope=SecretScope.DEPLOY))
    with pytest.raises(PermissionDenied, match="scope deploy"):
        await w.reader.read(PIPE, PROJECT, "DEPLOY_KEY", SecretScope.PIPELINE, "x")
    assert await w.reader.read(PIPE, PROJECT, "DEPLOY_KEY", SecretScope.DEPLOY, "x") == VALUE
    w.authz.deny.add(("pipeline-runner", "secret:read", PROJECT))
    with pytest.raises(PermissionDenied, match="secret:read"):
        await w.reader.read(PIPE, PROJECT, "DEPLOY_KEY", SecretScope.DEPLOY, "x")
    with pytest.raises(NotFound, match="MISSING is not defined in this project or globally"):
        await w.reader.read(ALICE, PROJECT, "MISSING", SecretScope.DEPLOY, "x")
    with pytest.raises(InvalidInput, match="purpose"):
        await w.reader.read(ALICE, PROJECT, "DEPLOY_KEY", SecretScope.ALL, "x")
    assert len([e for e in audit(w.db) if e.action == "secret.read"]) == 1


async def test_resolve_substitutes_once_and_masks(w: World):
    await w.service.put(ALICE, PROJECT, "TOKEN", PutSecret(value="tok-${{ secrets.OTHER }}", scope=SecretScope.ALL))
    await w.service.put(ALICE, PROJECT, "OTHER", PutSecret(value="other-value", scope=SecretScope.ALL))
    config = {"env": {"A": "${{ secrets.TOKEN }}", "B": "x${{secrets.TOKEN}}y"}, "n": 3, "steps": ["plain"]}
    resolved = await w.reader.resolve(PIPE, PROJECT, config, SecretScope.PIPELINE, "pipeline 1")
    assert resolved.config == {
        "env": {"A": "tok-${{ secrets.OTHER }}", "B": "xtok-${{ secrets.OTHER }}y"}, "n": 3, "steps": ["plain"],
    }
    assert resolved.names == {"TOKEN"}
    assert resolved.masker.mask("echo tok-${{ secrets.OTHER }}") == "echo ***"
    with pytest.raises(NotFound, match="NOPE"):
        await w.reader.resolve(PIPE, PROJECT, "${{ secrets.NOPE }}", SecretScope.PIPELINE, "p")
    with pytest.raises(InvalidInput, match="not a valid secret reference"):
        await w.reader.resolve(PIPE, PROJECT, "${{ secrets.bad-name }}", SecretScope.PIPELINE, "p")


async def test_tampered_ciphertext_fails_loudly(w: World):
    info, _ = await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE))
    key = (info.id, 1)
    v = w.db.db.secrets.versions[key]
    broken = bytearray(v.ciphertext)
    broken[15] ^= 0x40
    w.db.db.secrets.versions[key] = attrs.evolve(v, ciphertext=bytes(broken))
    with pytest.raises(SecretUndecryptable, match=r"secret K \(project .*\) version 1") as err:
        await w.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "x")
    assert VALUE not in str(err.value)


async def test_swapped_row_fails_loudly(w: World):
    a, _ = await w.service.put(ALICE, PROJECT, "A", PutSecret(value="value-a"))
    b, _ = await w.service.put(ALICE, PROJECT, "B", PutSecret(value="value-b"))
    va, vb = w.db.db.secrets.versions[(a.id, 1)], w.db.db.secrets.versions[(b.id, 1)]
    # copy A's ciphertext and wrapped key onto B's row: AAD binds (project, name, version)
    w.db.db.secrets.versions[(b.id, 1)] = attrs.evolve(vb, ciphertext=va.ciphertext, wrapped_key=va.wrapped_key)
    with pytest.raises(SecretUndecryptable):
        await w.reader.read(PIPE, PROJECT, "B", SecretScope.PIPELINE, "x")
    # the same name in another project does not open either
    g, _ = await w.service.put(ALICE, OTHER, "A", PutSecret(value="value-other"))
    vg = w.db.db.secrets.versions[(g.id, 1)]
    w.db.db.secrets.versions[(g.id, 1)] = attrs.evolve(vg, ciphertext=va.ciphertext, wrapped_key=va.wrapped_key)
    with pytest.raises(SecretUndecryptable):
        await w.reader.read(PIPE, OTHER, "A", SecretScope.PIPELINE, "x")


async def test_wrong_master_key_fails_loudly(w: World):
    await w.service.put(ALICE, PROJECT, "K", PutSecret(value=VALUE))
    wrong = w.with_keys(os.urandom(32))
    with pytest.raises(SecretUndecryptable, match="not configured"):
        await wrong.reader.read(PIPE, PROJECT, "K", SecretScope.PIPELINE, "x")
    with pytest.raises(SecretUndecryptable, match="master key is wrong"):
        await check_master_key(wrong.db, wrong.envelope)
    assert await check_master_key(w.db, w.envelope) == {w.envelope.keys.current_key_id: 1}


async def test_rotation_killed_half_way_then_resumed(w: World):
    for i in range(7):
        where = PROJECT if i % 2 else None
        await w.service.put(ALICE, where, f"S{i}", PutSecret(value=f"value-{i}", scope=SecretScope.ALL))
    await w.service.put(ALICE, PROJECT, "S1", PutSecret(value="value-1b", scope=SecretScope.ALL))  # a second version
    new = os.urandom(32)
    both = w.with_keys(new, MASTER)
    rotation = MasterKeyRotation(both.db, both.envelope, both.clock, batch_size=3)
    assert (await rotation.status()).remaining == {w.envelope.keys.current_key_id: 8}

    class Killed(Exception):
        pass

    async def die_after_first(total: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        await rotation.run(on_batch=die_after_first)
    # half-way: old and new keys both in use, and everything reads with the two-key ring while serving
    async with both.db() as uow:
        counts = await uow.secrets.count_by_key()
    assert counts == {both.envelope.keys.current_key_id: 3, w.envelope.keys.current_key_id: 5}
    for i in range(7):
        got = await both.reader.read(PIPE, PROJECT, f"S{i}", SecretScope.PIPELINE, "x")
        assert got == ("value-1b" if i == 1 else f"value-{i}")
    report = await rotation.run()
    assert report.done and report.rewrapped == 5
    only_new = w.with_keys(new)
    await check_master_key(only_new.db, only_new.envelope)
    for i in range(7):
        got = await only_new.reader.read(PIPE, PROJECT, f"S{i}", SecretScope.PIPELINE, "x")
        assert got == ("value-1b" if i == 1 else f"value-{i}")
    assert any(e.action == "secret.rewrap" for e in audit(w.db))
