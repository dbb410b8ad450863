"""The embedded default: PostgreSQL and Valkey from wheels, run as children of ``corral serve``.

Each server keeps its data under its own root (``$CORRAL_DATA_DIR/postgres``,
``$CORRAL_DATA_DIR/valkey``); ``start()`` returns the URL to connect with, ``stop()`` shuts
the server down. Survivors of a killed Corral are found and stopped on the next start
(see :mod:`corral.adapters.embedded.children`).
"""

from corral.adapters.embedded.postgres import EmbeddedPostgres
from corral.adapters.embedded.valkey import EmbeddedValkey

__all__ = ["EmbeddedPostgres", "EmbeddedValkey"]
