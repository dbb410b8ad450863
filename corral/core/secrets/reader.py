"""The only way to plaintext: an internal service for pipelines, agents and the deployer.

Gated by ``secret:read`` in the project and by the secret's scope; every read
leaves an audit row (who, which secret and version, for what) — never the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound, PermissionDenied
from corral.core.ids import uuid7
from corral.core.secrets import template
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.masking import SecretMasker
from corral.core.secrets.model import SecretScope, check_name
from corral.core.secrets.ports import Actor, Authorizer
from corral.core.uow import UnitOfWorkFactory

__all__ = ["READ_PERMISSION", "ResolvedConfig", "SecretReader"]

READ_PERMISSION = "secret:read"


@attrs.frozen
class ResolvedConfig:
    """Configuration with its secret references substituted, and a masker for what it prints."""

    config: Any = attrs.field(repr=False)
    masker: SecretMasker = attrs.field(repr=False)
    names: frozenset[str] = frozenset()


@attrs.define
class SecretReader:
    """Reads plaintext for a consumer acting for a purpose (pipeline, agent or deploy)."""

    uow_factory: UnitOfWorkFactory
    envelope: Envelope
    authorizer: Authorizer
    clock: Clock

    async def read(
        self, principal: Actor, project_id: uuid.UUID | None, name: str, purpose: SecretScope, reason: str
    ) -> str:
        """The current value of ``name`` (project secret shadows a global one of the same name)."""
        return (await self.read_many(principal, project_id, [name], purpose, reason))[name]

    async def read_many(
        self,
        principal: Actor,
        project_id: uuid.UUID | None,
        names: Iterable[str],
        purpose: SecretScope,
        reason: str,
    ) -> dict[str, str]:
        """Current values of ``names``, each read audited; nothing is returned unless all are readable.

        NotFound names an undefined secret, PermissionDenied a missing
        ``secret:read`` or a secret whose scope excludes ``purpose``.
        """
        if purpose is SecretScope.ALL:
            raise InvalidInput("purpose must be pipeline, agent or deploy", field="purpose")
        wanted = sorted({check_name(n, "name") for n in names})
        await self.authorizer.authorize(principal, READ_PERMISSION, project_id)
        values: dict[str, str] = {}
        async with self.uow_factory() as uow:
            for name in wanted:
                secret = await uow.secrets.get(project_id, name) if project_id is not None else None
                if secret is None:
                    secret = await uow.secrets.get(None, name)
                if secret is None:
                    where = "globally" if project_id is None else "in this project or globally"
                    raise NotFound(f"secret {name} is not defined {where}")
                if not secret.scope.allows(purpose):
                    raise PermissionDenied(
                        f"secret {name} has scope {secret.scope.value}: a {purpose.value} may not read it"
                    )
                version = await uow.secrets.get_version(secret.id, secret.current_version)
                if version is None or not version.readable or version.wrapped_key is None:
                    raise NotFound(f"secret {name} has no readable current version (deleted or destroyed)")
                assert version.ciphertext is not None  # readable implies a ciphertext
                plaintext = self.envelope.open(
                    secret.project_id, secret.name, version.version, version.ciphertext, version.wrapped_key
                )
                values[name] = plaintext.decode()
                await uow.audit.record(
                    AuditEntry(
                        id=uuid7(), actor_id=principal.user_id, actor_name=principal.name, action="secret.read",
                        resource="secret", created_at=self.clock.now(), resource_id=secret.id,
                        project_id=project_id,
                        detail={
                            "secret_name": name, "version": version.version, "purpose": purpose.value,
                            "reason": reason, "global": secret.project_id is None,
                        },
                    )
                )
            await uow.commit()
        return values

    async def resolve(
        self, principal: Actor, project_id: uuid.UUID | None, config: Any, purpose: SecretScope, reason: str
    ) -> ResolvedConfig:
        """Substitute every ``${{ secrets.NAME }}`` in ``config`` (no recursive expansion).

        Also returns a masker primed with the substituted values, for the output of whatever runs it.
        """
        names = template.references(config)
        values = await self.read_many(principal, project_id, names, purpose, reason) if names else {}
        return ResolvedConfig(
            config=template.substitute(config, values), masker=SecretMasker(values.values()), names=frozenset(names)
        )
