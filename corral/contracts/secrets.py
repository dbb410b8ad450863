"""Behavioural suites for the secrets ports, run against the fakes and the real adapters.

- ``CipherContract`` needs a fixture ``cipher`` (a Cipher).
- ``KeyWrapperContract`` needs a fixture ``make_key_wrapper``: ``(*master_keys: bytes) -> KeyWrapper``
  where the first key is current.
- ``SecretStoreContract`` needs a fixture ``uow_factory`` whose units of work carry ``secrets``,
  and a fixture ``project_id`` (an existing project id the store may reference).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.errors import Conflict
from corral.core.ids import uuid7
from corral.core.secrets.model import Secret, SecretScope, SecretUndecryptable, SecretVersion, WrappedKey

__all__ = ["CipherContract", "KeyWrapperContract", "SecretStoreContract"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class CipherContract:
    async def test_round_trip(self, cipher: Any) -> None:
        key = cipher.new_data_key()
        assert len(key) == 32
        sealed = cipher.encrypt(key, b"hunter2-value", b"aad")
        assert b"hunter2-value" not in sealed
        assert cipher.decrypt(key, sealed, b"aad") == b"hunter2-value"

    async def test_each_encryption_differs(self, cipher: Any) -> None:
        key = cipher.new_data_key()
        assert cipher.encrypt(key, b"same", b"a") != cipher.encrypt(key, b"same", b"a")

    async def test_tampered_ciphertext_fails(self, cipher: Any) -> None:
        key = cipher.new_data_key()
        sealed = bytearray(cipher.encrypt(key, b"value", b"aad"))
        for i in (len(sealed) // 2, len(sealed) - 1):
            broken = bytearray(sealed)
            broken[i] ^= 0x01
            with pytest.raises(SecretUndecryptable):
                cipher.decrypt(key, bytes(broken), b"aad")
        with pytest.raises(SecretUndecryptable):
            cipher.decrypt(key, bytes(sealed[:10]), b"aad")

    async def test_other_aad_or_key_fails(self, cipher: Any) -> None:
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, b"value", b"row-1")
        with pytest.raises(SecretUndecryptable):
            cipher.decrypt(key, sealed, b"row-2")
        with pytest.raises(SecretUndecryptable):
            cipher.decrypt(cipher.new_data_key(), sealed, b"row-1")


class KeyWrapperContract:
    async def test_wrap_unwrap(self, make_key_wrapper: Any) -> None:
        ring = make_key_wrapper(os.urandom(32))
        dk = os.urandom(32)
        wrapped = ring.wrap(dk, b"aad")
        assert wrapped.key_id == ring.current_key_id
        assert dk not in wrapped.blob
        assert ring.unwrap(wrapped, b"aad") == dk

    async def test_key_id_is_stable_and_distinct(self, make_key_wrapper: Any) -> None:
        k1, k2 = os.urandom(32), os.urandom(32)
        assert make_key_wrapper(k1).current_key_id == make_key_wrapper(k1).current_key_id
        assert make_key_wrapper(k1).current_key_id != make_key_wrapper(k2).current_key_id

    async def test_previous_key_still_unwraps(self, make_key_wrapper: Any) -> None:
        old, new = os.urandom(32), os.urandom(32)
        wrapped = make_key_wrapper(old).wrap(b"k" * 32, b"aad")
        ring = make_key_wrapper(new, old)
        assert ring.unwrap(wrapped, b"aad") == b"k" * 32
        assert ring.wrap(b"k" * 32, b"aad").key_id == make_key_wrapper(new).current_key_id
        assert ring.key_ids == {make_key_wrapper(new).current_key_id, make_key_wrapper(old).current_key_id}

    async def test_wrong_key_aad_or_blob_fails(self, make_key_wrapper: Any) -> None:
        wrapped = make_key_wrapper(os.urandom(32)).wrap(b"k" * 32, b"aad")
        with pytest.raises(SecretUndecryptable):
            make_key_wrapper(os.urandom(32)).unwrap(wrapped, b"aad")
        ring = make_key_wrapper(os.urandom(32))
        own = ring.wrap(b"k" * 32, b"aad")
        with pytest.raises(SecretUndecryptable):
            ring.unwrap(own, b"other")
        with pytest.raises(SecretUndecryptable):
            ring.unwrap(WrappedKey(own.key_id, own.blob[:-1] + bytes([own.blob[-1] ^ 1])), b"aad")


def _secret(project_id: uuid.UUID | None, name: str, **kw: Any) -> Secret:
    fields: dict[str, Any] = {
        "id": uuid7(),
        "project_id": project_id,
        "name": name,
        "scope": SecretScope.PIPELINE,
        "current_version": 1,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(kw)
    return Secret(**fields)


def _version(secret: Secret, n: int, key_id: str = "k1") -> SecretVersion:
    return SecretVersion(
        secret_id=secret.id,
        version=n,
        created_at=T0 + timedelta(seconds=n),
        ciphertext=b"ct-%d" % n,
        wrapped_key=WrappedKey(key_id, b"wk-%d" % n),
    )


class SecretStoreContract:
    async def test_add_get_list_project_and_global(self, uow_factory: Any, project_id: uuid.UUID) -> None:
        name = "TOKEN_" + uuid7().hex[:8]
        proj, glob = _secret(project_id, name), _secret(None, name, scope=SecretScope.ALL)
        async with uow_factory() as uow:
            await uow.secrets.add(proj)
            await uow.secrets.add(glob)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.secrets.get(project_id, name) == proj
            assert await uow.secrets.get(None, name) == glob
            assert await uow.secrets.get(project_id, name + "X") is None
            assert proj in await uow.secrets.in_scope(project_id)
            assert glob in await uow.secrets.in_scope(None)
            assert proj not in await uow.secrets.in_scope(None)

    async def test_duplicate_name_conflicts(self, uow_factory: Any, project_id: uuid.UUID) -> None:
        name = "DUP_" + uuid7().hex[:8]
        for pid in (project_id, None):
            async with uow_factory() as uow:
                await uow.secrets.add(_secret(pid, name))
                await uow.commit()
            with pytest.raises(Conflict):
                async with uow_factory() as uow:
                    await uow.secrets.add(_secret(pid, name))

    async def test_versions_update_prune_delete(self, uow_factory: Any, project_id: uuid.UUID) -> None:
        secret = _secret(project_id, "V_" + uuid7().hex[:8], current_version=3)
        async with uow_factory() as uow:
            await uow.secrets.add(secret)
            for n in (1, 2, 3):
                await uow.secrets.add_version(_version(secret, n))
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.secrets.add_version(_version(secret, 2))
        async with uow_factory() as uow:
            assert [v.version for v in await uow.secrets.versions(secret.id)] == [1, 2, 3]
            v2 = await uow.secrets.get_version(secret.id, 2)
            assert v2 == _version(secret, 2)
            await uow.secrets.update_version(
                attrs.evolve(v2, ciphertext=None, wrapped_key=None, destroyed_at=T0, deleted_at=T0)
            )
            await uow.secrets.delete_versions(secret.id, [1])
            await uow.secrets.update(attrs.evolve(secret, scope=SecretScope.DEPLOY, updated_at=T0 + timedelta(1)))
            await uow.commit()
        async with uow_factory() as uow:
            versions = await uow.secrets.versions(secret.id)
            assert [v.version for v in versions] == [2, 3]
            assert versions[0].ciphertext is None and versions[0].wrapped_key is None
            assert versions[0].destroyed_at == T0 and versions[0].deleted_at == T0
            assert (await uow.secrets.get(project_id, secret.name)).scope is SecretScope.DEPLOY
            await uow.secrets.delete(secret.id)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.secrets.get(project_id, secret.name) is None
            assert await uow.secrets.versions(secret.id) == []

    async def test_rollback_discards(self, uow_factory: Any, project_id: uuid.UUID) -> None:
        secret = _secret(project_id, "RB_" + uuid7().hex[:8])
        async with uow_factory() as uow:
            await uow.secrets.add(secret)
        async with uow_factory() as uow:
            assert await uow.secrets.get(project_id, secret.name) is None

    async def test_claim_for_rewrap_and_counts(self, uow_factory: Any, project_id: uuid.UUID) -> None:
        old, new = "old-" + uuid7().hex[:8], "new-" + uuid7().hex[:8]
        secret = _secret(project_id, "R_" + uuid7().hex[:8], current_version=3)
        async with uow_factory() as uow:
            await uow.secrets.add(secret)
            await uow.secrets.add_version(_version(secret, 1, old))
            await uow.secrets.add_version(_version(secret, 2, old))
            await uow.secrets.add_version(_version(secret, 3, new))
            await uow.commit()
        async with uow_factory() as uow:
            counts = await uow.secrets.count_by_key()
            assert counts[old] == 2 and counts[new] == 1
            claimed = await uow.secrets.claim_for_rewrap(new, 1000)
            mine = [(s, v) for s, v in claimed if s.id == secret.id]
            assert sorted(v.version for _, v in mine) == [1, 2]
            assert all(s == secret for s, _ in mine)
            assert await uow.secrets.sample_wrapped(2)
            for _, v in mine:
                await uow.secrets.update_version(attrs.evolve(v, wrapped_key=WrappedKey(new, b"re")))
            await uow.commit()
        async with uow_factory() as uow:
            counts = await uow.secrets.count_by_key()
            assert old not in counts and counts[new] == 3
