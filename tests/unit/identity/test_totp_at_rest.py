"""TOTP secrets are sealed at rest with the secrets envelope, bound to their user, re-wrapped by master-key
rotation, and plaintext rows left by an older Corral are encrypted once at start-up."""

from __future__ import annotations

import os

import attrs
import pytest

from corral.core.identity import totp
from corral.core.identity.commands import Credentials, NewUser, TotpCode
from corral.core.identity.kit import IdentityServices
from corral.core.identity.model import SealedSecret, TotpEnrolment
from corral.core.identity.service import SYSTEM, ensure_system_roles
from corral.core.identity.totp_seal import TotpKeyRewrap, TotpSealer, seal_plaintext_totp
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretUndecryptable, WrappedKey
from corral.core.secrets.rotation import MasterKeyRotation, check_master_key
from corral.fakes.clock import FakeClock
from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryPasswordHasher
from corral.fakes.secrets import FakeCipher, FakeKeyWrapper
from corral.fakes.uow import InMemoryUnitOfWorkFactory

PW = "correct horse battery"
OLD, NEW = os.urandom(32), os.urandom(32)


def sealer(*keys: bytes) -> TotpSealer:
    return TotpSealer(FakeCipher(), FakeKeyWrapper(*keys))


async def platform(keys: tuple[bytes, ...], db: InMemoryUnitOfWorkFactory | None = None, clock=None):
    clock = clock or FakeClock()
    uow_factory = db or InMemoryUnitOfWorkFactory(clock=clock)
    ids = IdentityServices(uow_factory, InMemoryAuthzCache(clock), InMemoryPasswordHasher(), clock,
                           totp_sealer=sealer(*keys))
    await ensure_system_roles(uow_factory, clock)
    return ids, uow_factory, clock


async def enrolled(ids: IdentityServices, clock: FakeClock, name: str = "alice") -> tuple[str, object]:
    await ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password=PW))
    session = await ids.sessions.login(Credentials(name=name, password=PW), ip=None, user_agent=None)
    principal, _ = await ids.sessions.authenticate(session.cookie, ip_addr=None)
    enrolment = await ids.totp.enrol(principal)
    await ids.totp.confirm(principal, TotpCode(code=totp.code_at(enrolment.secret, clock.now().timestamp())))
    return enrolment.secret, principal


def stored(uow_factory: InMemoryUnitOfWorkFactory) -> dict:
    return uow_factory.db.identity.totp


async def test_the_store_never_holds_the_secret_in_plain_text():
    ids, db, clock = await platform((NEW,))
    secret, principal = await enrolled(ids, clock)
    row = stored(db)[principal.user_id]
    assert isinstance(row.secret, SealedSecret)
    everything = repr(db.db) + repr(row.secret.ciphertext) + repr(row.secret.wrapped_key.blob)
    assert secret not in everything
    assert secret.encode() not in row.secret.ciphertext
    assert secret.lower() not in everything.lower()
    clock.advance(60)
    with pytest.raises(Exception, match="TOTP code"):
        await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    await ids.sessions.login(Credentials(name="alice", password=PW,
                                         totp_code=totp.code_at(secret, clock.now().timestamp())),
                             ip=None, user_agent=None)


async def test_a_sealed_secret_is_bound_to_its_user():
    ids, db, clock = await platform((NEW,))
    _, alice = await enrolled(ids, clock, "alice")
    _, bob = await enrolled(ids, clock, "bob")
    table = stored(db)
    # an attacker with write access to the table copies alice's sealed secret onto bob's row
    table[bob.user_id] = attrs.evolve(table[bob.user_id], secret=table[alice.user_id].secret)
    clock.advance(60)
    with pytest.raises(SecretUndecryptable, match=str(bob.user_id)):
        await ids.sessions.login(Credentials(name="bob", password=PW, totp_code="123456"), ip=None, user_agent=None)
    s = sealer(NEW)
    sealed = s.seal(alice.user_id, "JBSWY3DPEHPK3PXP")
    assert s.open(alice.user_id, sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUndecryptable):
        s.open(bob.user_id, sealed)
    with pytest.raises(SecretUndecryptable):
        sealer(os.urandom(32)).open(alice.user_id, sealed)  # another master key


async def test_plaintext_rows_are_sealed_once_at_start_and_still_work():
    ids, db, clock = await platform((NEW,))
    await ids.users.create(SYSTEM, NewUser(name="old", email="old@example.com", password=PW))
    user = await ids.users.get("old")
    legacy = "JBSWY3DPEHPK3PXP"
    # what an older Corral left: a confirmed enrolment with the secret in plain text
    stored(db)[user.id] = TotpEnrolment(user_id=user.id, secret=SealedSecret(b"", WrappedKey("", b"")),
                                        created_at=clock.now(), confirmed_at=clock.now(), last_step=3)
    db.db.identity.totp_plaintext[user.id] = legacy
    with pytest.raises(Exception, match="plain text"):  # never "not enrolled": that would skip the factor
        await ids.sessions.login(Credentials(name="old", password=PW), ip=None, user_agent=None)
    assert await seal_plaintext_totp(db, ids.totp_sealer, clock) == 1
    assert await seal_plaintext_totp(db, ids.totp_sealer, clock) == 0  # once
    assert db.db.identity.totp_plaintext == {}
    row = stored(db)[user.id]
    assert legacy.encode() not in row.secret.ciphertext and row.last_step == 3
    assert [e.detail for e in db.db.audit.entries.values() if e.action == "totp.encrypt"] == [{"count": 1}]
    with pytest.raises(Exception, match="TOTP code"):
        await ids.sessions.login(Credentials(name="old", password=PW), ip=None, user_agent=None)
    await ids.sessions.login(Credentials(name="old", password=PW,
                                         totp_code=totp.code_at(legacy, clock.now().timestamp())),
                             ip=None, user_agent=None)


async def test_master_key_rotation_rewraps_totp_secrets_and_the_start_check_covers_them():
    clock = FakeClock()
    db = InMemoryUnitOfWorkFactory(clock=clock)
    old_ids, _, _ = await platform((OLD,), db, clock)
    secret, principal = await enrolled(old_ids, clock)
    old_key_id = stored(db)[principal.user_id].secret.wrapped_key.key_id
    # after the switch, before the rotation: only the new key configured → the start check names the old key
    only_new = Envelope(FakeCipher(), FakeKeyWrapper(NEW))
    rewrap_new = TotpKeyRewrap(sealer(NEW))
    with pytest.raises(SecretUndecryptable, match=old_key_id):
        await check_master_key(db, only_new, others=[rewrap_new])
    both = sealer(NEW, OLD)
    rotation = MasterKeyRotation(db, Envelope(FakeCipher(), both.keys), clock, batch_size=1,
                                 others=[TotpKeyRewrap(both)])
    assert (await rotation.status()).remaining == {old_key_id: 1}
    report = await rotation.run()
    assert report.rewrapped == 1 and report.done
    assert stored(db)[principal.user_id].secret.wrapped_key.key_id == both.keys.current_key_id
    assert [e.action for e in db.db.audit.entries.values() if e.action.endswith(".rewrap")] == ["totp.rewrap"]
    assert await check_master_key(db, only_new, others=[rewrap_new]) == {both.keys.current_key_id: 1}
    new_ids, _, _ = await platform((NEW,), db, clock)
    clock.advance(60)
    await new_ids.sessions.login(Credentials(name="alice", password=PW,
                                             totp_code=totp.code_at(secret, clock.now().timestamp())),
                                 ip=None, user_agent=None)


async def test_recovery_codes_work_even_when_the_sealed_secret_cannot_be_opened():
    clock = FakeClock()
    db = InMemoryUnitOfWorkFactory(clock=clock)
    ids, _, _ = await platform((OLD,), db, clock)
    await ids.users.create(SYSTEM, NewUser(name="ann", email="ann@example.com", password=PW))
    session = await ids.sessions.login(Credentials(name="ann", password=PW), ip=None, user_agent=None)
    principal, _ = await ids.sessions.authenticate(session.cookie, ip_addr=None)
    enrolment = await ids.totp.enrol(principal)
    codes = await ids.totp.confirm(principal, TotpCode(code=totp.code_at(enrolment.secret, clock.now().timestamp())))
    lost_key, _, _ = await platform((NEW,), db, clock)  # the old master key is gone
    with pytest.raises(SecretUndecryptable):
        await lost_key.sessions.login(Credentials(name="ann", password=PW, totp_code="123456"), ip=None,
                                      user_agent=None)
    await lost_key.sessions.login(Credentials(name="ann", password=PW, totp_code=codes[0]), ip=None, user_agent=None)


async def test_guessing_codes_to_disable_totp_gets_banned():
    from corral.core.errors import InvalidInput, RateLimited

    ids, db, clock = await platform((NEW,))
    secret, principal = await enrolled(ids, clock)
    clock.advance(60)
    for _ in range(ids.policy.max_failures_per_user):
        right = totp.code_at(secret, clock.now().timestamp())
        with pytest.raises(InvalidInput):
            await ids.totp.disable(principal, TotpCode(code="000000" if right != "000000" else "111111"))
    with pytest.raises(RateLimited):  # even the right code, while banned
        await ids.totp.disable(principal, TotpCode(code=totp.code_at(secret, clock.now().timestamp())))
    failed = [e for e in db.db.audit.entries.values() if e.action == "totp.disable_failed"]
    assert len(failed) == ids.policy.max_failures_per_user
    bans = [e for e in db.db.audit.entries.values() if e.action == "auth.ban"]
    assert [b.detail["key"] for b in bans] == ["totp"]
    assert principal.user_id in stored(db)
    clock.advance(ids.policy.ban_time.total_seconds() + 60)
    await ids.totp.disable(principal, TotpCode(code=totp.code_at(secret, clock.now().timestamp())))
    assert principal.user_id not in stored(db)
