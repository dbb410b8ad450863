from __future__ import annotations

import pytest

from corral.contracts.identity_stores import T0, IdentityStoresContract
from corral.core.identity.model import SealedSecret, TotpEnrolment
from corral.core.secrets.model import WrappedKey
from corral.fakes.identity_uow import IdentityMemory


class TestInMemoryIdentityStores(IdentityStoresContract):
    @pytest.fixture
    def identity_uow_factory(self):
        return IdentityMemory()

    async def put_plaintext_totp(self, uow, user_id, secret):
        await uow.totp.put(TotpEnrolment(user_id=user_id, secret=SealedSecret(b"", WrappedKey("", b"")),
                                         created_at=T0, last_step=7))
        uow.totp.data.totp_plaintext[user_id] = secret
