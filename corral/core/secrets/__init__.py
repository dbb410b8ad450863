"""Secrets encrypted at rest (envelope encryption), versioned like OpenBao KV v2, read only by core services."""
