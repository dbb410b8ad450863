"""PasswordHasherContract: what every PasswordHasher does.

Needs a fixture ``password_hasher`` (the hasher under test; real ones may use low cost parameters).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PasswordHasherContract"]


class PasswordHasherContract:
    async def test_a_hash_verifies_its_password_only(self, password_hasher: Any) -> None:
        hashed = await password_hasher.hash("correct horse battery staple")
        assert isinstance(hashed, str)
        assert "correct horse" not in hashed
        assert await password_hasher.verify(hashed, "correct horse battery staple") is True
        assert await password_hasher.verify(hashed, "correct horse battery stapler") is False
        assert await password_hasher.verify(hashed, "") is False
        assert await password_hasher.verify(hashed, "Correct horse battery staple") is False

    async def test_hashes_are_salted(self, password_hasher: Any) -> None:
        first, second = await password_hasher.hash("same"), await password_hasher.hash("same")
        assert first != second
        assert await password_hasher.verify(first, "same") and await password_hasher.verify(second, "same")

    async def test_unicode_and_empty_passwords_round_trip(self, password_hasher: Any) -> None:
        for password in ("pässwörd ✓ 密码", "", " leading and trailing "):
            hashed = await password_hasher.hash(password)
            assert await password_hasher.verify(hashed, password) is True
        assert await password_hasher.verify(await password_hasher.hash("pässwörd"), "passwort") is False

    async def test_a_malformed_or_foreign_hash_never_verifies_and_never_raises(self, password_hasher: Any) -> None:
        good = await password_hasher.hash("secret")
        for bad in ("", "secret", "$", "$$$", good[:-6], good + "$extra", good[: len(good) // 2],
                    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
                    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$not-base64!", "\x00\n\u2603"):
            assert await password_hasher.verify(bad, "secret") is False, bad
