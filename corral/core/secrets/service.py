"""Managing secrets: write-only values, versions like OpenBao KV v2, every change audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.ids import uuid7
from corral.core.secrets.commands import PutSecret, SecretVersions
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import (
    DEFAULT_MAX_VERSIONS,
    Secret,
    SecretScope,
    SecretVersion,
    check_name,
    check_value,
)
from corral.core.secrets.ports import Actor
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["SecretInfo", "SecretsService", "VersionInfo"]


@attrs.frozen
class VersionInfo:
    """Metadata of one kept version (never its value)."""

    version: int
    created_at: datetime
    deleted_at: datetime | None
    destroyed: bool


@attrs.frozen
class SecretInfo:
    """Metadata of a secret as the API shows it: no value, ever."""

    id: uuid.UUID
    project_id: uuid.UUID | None
    name: str
    scope: SecretScope
    version: int
    created_at: datetime
    updated_at: datetime
    versions: tuple[VersionInfo, ...] = ()


def _info(secret: Secret, versions: Sequence[SecretVersion] = ()) -> SecretInfo:
    return SecretInfo(
        id=secret.id,
        project_id=secret.project_id,
        name=secret.name,
        scope=secret.scope,
        version=secret.current_version,
        created_at=secret.created_at,
        updated_at=secret.updated_at,
        versions=tuple(
            VersionInfo(v.version, v.created_at, v.deleted_at, v.destroyed_at is not None) for v in versions
        ),
    )


_CURRENT = SecretVersions()


@attrs.define
class SecretsService:
    """Create, update, list and delete secrets; plaintext goes in and never comes out of here."""

    uow_factory: UnitOfWorkFactory
    envelope: Envelope
    clock: Clock
    max_versions: int = DEFAULT_MAX_VERSIONS

    async def put(
        self, actor: Actor, project_id: uuid.UUID | None, name: str, command: PutSecret
    ) -> tuple[SecretInfo, bool]:
        """Write a new version; returns its metadata and whether the secret was created.

        ``command.cas`` (check-and-set): None writes unconditionally, 0 only creates,
        N only writes when the current version is N (Conflict otherwise).
        Versions beyond ``max_versions`` are removed, oldest first.
        """
        check_name(name, "name")
        data = check_value(command.value)
        scope_ = SecretScope.parse(command.scope)
        cas: object = command.cas  # typed by the edge; checked again for callers that build commands by hand
        if cas is not None and (isinstance(cas, bool) or not isinstance(cas, int) or cas < 0):
            raise InvalidInput("cas must be a version number (0: create only) or null", field="cas")
        now = self.clock.now()
        async with self.uow_factory() as uow:
            secret = await uow.secrets.get(project_id, name, for_update=True)
            created = secret is None
            if secret is None:
                if cas not in (None, 0):
                    raise Conflict(f"secret {name} does not exist, but cas={cas} expects version {cas}")
                secret = Secret(
                    id=uuid7(), project_id=project_id, name=name, scope=scope_, current_version=1,
                    created_at=now, updated_at=now, created_by=actor.user_id, max_versions=self.max_versions,
                )
                await uow.secrets.add(secret)
            else:
                if cas is not None and cas != secret.current_version:
                    raise Conflict(
                        f"secret {name} is at version {secret.current_version}, not {cas} (check-and-set failed)"
                    )
                secret = attrs.evolve(secret, scope=scope_, current_version=secret.current_version + 1, updated_at=now)
                await uow.secrets.update(secret)
            ciphertext, wrapped = self.envelope.seal(project_id, name, secret.current_version, data)
            await uow.secrets.add_version(
                SecretVersion(
                    secret_id=secret.id, version=secret.current_version, created_at=now,
                    ciphertext=ciphertext, wrapped_key=wrapped, created_by=actor.user_id,
                )
            )
            versions = await uow.secrets.versions(secret.id)
            excess = [v.version for v in versions[: max(0, len(versions) - secret.max_versions)]]
            if excess:
                await uow.secrets.delete_versions(secret.id, excess)
            await self._audit(
                uow, actor, "secret.create" if created else "secret.update", secret,
                {"version": secret.current_version, "scope": scope_.value, "pruned_versions": excess},
            )
            await uow.commit()
            kept = [v for v in versions if v.version not in excess]
        return _info(secret, kept), created

    async def list_secrets(self, project_id: uuid.UUID | None) -> list[SecretInfo]:
        """Every secret of the project (None: global) with its kept versions, ordered by name."""
        async with self.uow_factory() as uow:
            return [_info(s, await uow.secrets.versions(s.id)) for s in await uow.secrets.in_scope(project_id)]

    async def describe(self, project_id: uuid.UUID | None, name: str) -> SecretInfo:
        """One secret's metadata and versions; NotFound when absent."""
        async with self.uow_factory() as uow:
            secret = await self._get(uow, project_id, name)
            return _info(secret, await uow.secrets.versions(secret.id))

    async def delete(
        self, actor: Actor, project_id: uuid.UUID | None, name: str, command: SecretVersions = _CURRENT
    ) -> SecretInfo:
        """Soft-delete versions (default: the current one); undelete restores them."""
        return await self._change_versions(actor, project_id, name, command.versions, "delete")

    async def undelete(
        self, actor: Actor, project_id: uuid.UUID | None, name: str, command: SecretVersions = _CURRENT
    ) -> SecretInfo:
        """Restore soft-deleted versions (default: the current one). Destroyed versions stay destroyed."""
        return await self._change_versions(actor, project_id, name, command.versions, "undelete")

    async def destroy(
        self, actor: Actor, project_id: uuid.UUID | None, name: str, command: SecretVersions = _CURRENT
    ) -> SecretInfo:
        """Erase the ciphertext and data key of versions for good (default: the current one)."""
        return await self._change_versions(actor, project_id, name, command.versions, "destroy")

    async def purge(self, actor: Actor, project_id: uuid.UUID | None, name: str) -> None:
        """Remove the secret, its metadata and every version."""
        async with self.uow_factory() as uow:
            secret = await self._get(uow, project_id, name, for_update=True)
            await uow.secrets.delete(secret.id)
            await self._audit(uow, actor, "secret.purge", secret, {"version": secret.current_version})
            await uow.commit()

    async def _change_versions(
        self, actor: Actor, project_id: uuid.UUID | None, name: str, versions: Sequence[int] | None, op: str
    ) -> SecretInfo:
        if versions is not None and (
            not isinstance(versions, list | tuple)
            or not versions
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions)
        ):
            raise InvalidInput("versions must be a non-empty list of version numbers", field="versions")
        now = self.clock.now()
        async with self.uow_factory() as uow:
            secret = await self._get(uow, project_id, name, for_update=True)
            wanted = list(versions) if versions else [secret.current_version]
            by_number = {v.version: v for v in await uow.secrets.versions(secret.id)}
            missing = [n for n in wanted if n not in by_number]
            if missing:
                raise NotFound(f"secret {name} has no version {', '.join(map(str, missing))}")
            for n in wanted:
                v = by_number[n]
                if op == "delete" and v.deleted_at is None:
                    v = attrs.evolve(v, deleted_at=now)
                elif op == "undelete" and v.destroyed_at is None:
                    v = attrs.evolve(v, deleted_at=None)
                elif op == "destroy" and v.destroyed_at is None:
                    v = attrs.evolve(v, ciphertext=None, wrapped_key=None, destroyed_at=now)
                else:
                    continue
                by_number[n] = v
                await uow.secrets.update_version(v)
            secret = attrs.evolve(secret, updated_at=now)
            await uow.secrets.update(secret)
            await self._audit(uow, actor, f"secret.{op}", secret, {"versions": wanted})
            await uow.commit()
        return _info(secret, sorted(by_number.values(), key=lambda v: v.version))

    @staticmethod
    async def _get(uow: UnitOfWork, project_id: uuid.UUID | None, name: str, *, for_update: bool = False) -> Secret:
        check_name(name, "name")
        secret = await uow.secrets.get(project_id, name, for_update=for_update)
        if secret is None:
            where = "globally" if project_id is None else "in this project"
            raise NotFound(f"secret {name} is not defined {where}")
        return secret

    async def _audit(
        self, uow: UnitOfWork, actor: Actor, action: str, secret: Secret, detail: dict[str, object]
    ) -> None:
        await uow.audit.record(
            AuditEntry(
                id=uuid7(), actor_id=actor.user_id, actor_name=actor.name, action=action, resource="secret",
                created_at=self.clock.now(), resource_id=secret.id, project_id=secret.project_id,
                detail={"secret_name": secret.name, "global": secret.project_id is None, **detail},
            )
        )
