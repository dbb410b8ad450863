import pytest

from corral.adapters.postgres.observe import PostgresLeaderLock

pytestmark = pytest.mark.integration


async def test_one_leader_per_name_across_connections_until_released(db_dsn):
    a, b = PostgresLeaderLock(db_dsn), PostgresLeaderLock(db_dsn)  # two "replicas"
    async with (
        a.lead("observe-rotation") as first,
        b.lead("observe-rotation") as second,
        b.lead("observe-alerts") as other_name,
    ):
        assert (first, second, other_name) == (True, False, True)
    async with b.lead("observe-rotation") as after_release:
        assert after_release is True
