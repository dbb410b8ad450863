"""PostgreSQL adapters (asyncpg): stores and the unit of work."""
