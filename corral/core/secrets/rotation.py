"""Master-key rotation: re-wrap every data key under the current master key while Corral keeps serving.

Progress is committed batch by batch, and a batch only picks data keys still
wrapped under another master key, so a rotation killed half-way resumes where
it stopped. Until it finishes, readers hold both keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs

from corral.core.audit.model import SYSTEM_ACTOR_ID, SYSTEM_ACTOR_NAME, AuditEntry
from corral.core.clock import Clock
from corral.core.ids import uuid7
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretUndecryptable
from corral.core.secrets.ports import KeyRewrap
from corral.core.uow import UnitOfWorkFactory

__all__ = ["MasterKeyRotation", "RotationReport", "check_master_key"]


@attrs.frozen
class RotationReport:
    """What a rotation run did and what is left: ``remaining`` counts data keys per old key id."""

    current_key_id: str
    rewrapped: int
    remaining: dict[str, int]

    @property
    def done(self) -> bool:
        return not self.remaining


@attrs.define
class MasterKeyRotation:
    """Re-wraps data keys wrapped under any key other than the ring's current one: the secrets' and those of
    ``others`` (other domains' data sealed under the same master key ring, e.g. TOTP secrets)."""

    uow_factory: UnitOfWorkFactory
    envelope: Envelope
    clock: Clock
    batch_size: int = 100
    others: Sequence[KeyRewrap] = ()

    async def status(self) -> RotationReport:
        """How many data keys are still wrapped under old keys (nothing changes)."""
        return RotationReport(self.envelope.keys.current_key_id, 0, await self._remaining())

    async def run(
        self,
        *,
        max_batches: int | None = None,
        on_batch: Callable[[int], Awaitable[None]] | None = None,
    ) -> RotationReport:
        """Re-wrap batch after batch (each its own transaction) until nothing is left or ``max_batches``.

        ``on_batch`` is awaited with the running total after each committed batch.
        """
        current = self.envelope.keys.current_key_id
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            async with self.uow_factory() as uow:
                claimed = await uow.secrets.claim_for_rewrap(current, self.batch_size)
                if not claimed:
                    break
                old_keys: set[str] = set()
                for secret, version in claimed:
                    assert version.wrapped_key is not None  # claim_for_rewrap returns wrapped keys only
                    old_keys.add(version.wrapped_key.key_id)
                    wrapped = self.envelope.rewrap(secret.project_id, secret.name, version.version, version.wrapped_key)
                    await uow.secrets.update_version(attrs.evolve(version, wrapped_key=wrapped))
                await uow.audit.record(
                    AuditEntry(
                        id=uuid7(), actor_id=SYSTEM_ACTOR_ID, actor_name=SYSTEM_ACTOR_NAME,
                        action="secret.rewrap", resource="secret", created_at=self.clock.now(),
                        detail={"count": len(claimed), "from_key_ids": sorted(old_keys), "to_key_id": current},
                    )
                )
                await uow.commit()
            total += len(claimed)
            batches += 1
            if on_batch is not None:
                await on_batch(total)
        for other in self.others:
            while max_batches is None or batches < max_batches:
                async with self.uow_factory() as uow:
                    count, old_keys = await other.rewrap_batch(uow, self.batch_size)
                    if not count:
                        break
                    await uow.audit.record(
                        AuditEntry(
                            id=uuid7(), actor_id=SYSTEM_ACTOR_ID, actor_name=SYSTEM_ACTOR_NAME,
                            action=f"{other.name}.rewrap", resource=other.name, created_at=self.clock.now(),
                            detail={"count": count, "from_key_ids": sorted(old_keys), "to_key_id": current},
                        )
                    )
                    await uow.commit()
                total += count
                batches += 1
                if on_batch is not None:
                    await on_batch(total)
        return RotationReport(current, total, await self._remaining())

    async def _remaining(self) -> dict[str, int]:
        counts = await _counts(self.uow_factory, self.others)
        current = self.envelope.keys.current_key_id
        return {k: n for k, n in counts.items() if k != current and n}


async def _counts(uow_factory: UnitOfWorkFactory, others: Sequence[KeyRewrap]) -> dict[str, int]:
    async with uow_factory() as uow:
        counts = dict(await uow.secrets.count_by_key())
        for other in others:
            for key_id, n in (await other.count_by_key(uow)).items():
                counts[key_id] = counts.get(key_id, 0) + n
    return counts


async def check_master_key(
    uow_factory: UnitOfWorkFactory, envelope: Envelope, sample: int = 3, *, others: Sequence[KeyRewrap] = ()
) -> dict[str, int]:
    """Verify at start that the configured master key(s) open the stored data keys (secrets and ``others``).

    Raises SecretUndecryptable with a message naming the unknown key ids when
    data keys are wrapped under a master key that is not configured, or when a
    sample does not unwrap. Returns the count of data keys per key id.
    """
    counts = await _counts(uow_factory, others)
    async with uow_factory() as uow:
        samples = await uow.secrets.sample_wrapped(sample)
    unknown = sorted(k for k, n in counts.items() if n and k not in envelope.keys.key_ids)
    if unknown:
        n = sum(counts[k] for k in unknown)
        raise SecretUndecryptable(
            f"{n} stored secret(s) (secret versions, TOTP secrets) are encrypted under master key id(s) "
            f"{', '.join(unknown)}, "
            f"but the configured master key has id {envelope.keys.current_key_id}: the master key is wrong "
            "(set CORRAL_MASTER_KEY or CORRAL_MASTER_KEY_FILE to the key these secrets were written with; "
            "during a rotation also CORRAL_MASTER_KEY_PREVIOUS)"
        )
    for secret, version in samples:
        if version.wrapped_key is not None:
            envelope.rewrap(secret.project_id, secret.name, version.version, version.wrapped_key)
    return counts
