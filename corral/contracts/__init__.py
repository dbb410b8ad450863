"""Behavioural contract suites, one per port, run against the fake AND the real adapter."""
