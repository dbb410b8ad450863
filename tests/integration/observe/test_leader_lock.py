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


async def test_an_unreachable_database_is_unavailable_not_a_driver_error():
    """The loops that lead (deployer, rotation, alerts) log an outage once: they recognise Unavailable."""
    import socket

    from corral.core.errors import Unavailable

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lock = PostgresLeaderLock(f"postgresql://corral@127.0.0.1:{port}/corral")
    with pytest.raises(Unavailable, match="PostgreSQL is unavailable"):
        async with lock.lead("deployer"):
            pass  # pragma: no cover - never reached
