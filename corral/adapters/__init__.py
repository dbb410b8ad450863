"""Adapters: one module or subpackage per external system, implementing core ports."""
