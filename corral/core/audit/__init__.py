"""Audit log: every mutation leaves a row, written in the same transaction as the mutation."""
