"""Corral: one process for git hosting, CI, auth, telemetry, secrets and notifications."""

__version__ = "0.1.0"
