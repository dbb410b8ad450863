"""Notifications: outbox events → recipients (project roles, preferences) → in-app, email and webhook channels."""
