"""The permission catalogue and the system roles bootstrapped on first run (design: RBAC Design)."""

from __future__ import annotations

import re

from corral.core.errors import InvalidInput

__all__ = [
    "ADMIN_ROLE",
    "AGENT_ROLE",
    "PERMISSIONS",
    "SYSTEM_ROLES",
    "check_permission_names",
]

ADMIN_ROLE = "admin"
AGENT_ROLE = "agent"

# name -> description. `admin` (the role) holds every permission, including ones added later.
PERMISSIONS: dict[str, str] = {
    "project:read": "Read projects, repositories, issues and merge requests (clone)",
    "project:write": "Push, open and edit issues and merge requests",
    "project:delete": "Delete a project",
    "project:admin": "Change a project's settings, members and webhooks",
    "project:create": "Create projects",
    "agent:run": "Start and stop agent sessions",
    "pipeline:read": "Read pipelines, step logs and artifacts",
    "pipeline:run": "Trigger, cancel and retry pipelines",
    "deploy:read": "Read deployments and their history",
    "deploy:promote": "Promote and roll back deployments",
    "observe:read": "Query logs, traces and metrics",
    "observe:write": "Ingest telemetry",
    "alert:manage": "Create, change and silence alert rules",
    "secret:read": "Read secret values",
    "secret:write": "Create, change and delete secrets",
    "notify:manage": "Manage notification channels and webhooks",
    "admin:users": "Create, change and deactivate users; bind roles",
    "admin:roles": "Create roles and change their permissions",
    "admin:audit": "Read the audit log",
    "admin:settings": "Change platform settings",
}

SYSTEM_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    ADMIN_ROLE: ("Platform administrators: every permission", frozenset(PERMISSIONS)),
    "developer": (
        "Human developers",
        frozenset(
            {
                "project:read",
                "project:write",
                "agent:run",
                "deploy:read",
                "observe:read",
                "secret:read",
                "pipeline:read",
                "pipeline:run",
            }
        ),
    ),
    "ops": (
        "Operations staff",
        frozenset(
            {
                "deploy:read",
                "deploy:promote",
                "observe:read",
                "observe:write",
                "alert:manage",
                "secret:read",
                "pipeline:read",
            }
        ),
    ),
    AGENT_ROLE: ("AI agents: nothing by default, permissions come by delegation", frozenset()),
    "viewer": (
        "Read-only access",
        frozenset({"project:read", "observe:read", "deploy:read", "pipeline:read"}),
    ),
}

_NAME = re.compile(r"^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$")


def check_permission_names(names: list[str] | tuple[str, ...] | frozenset[str], field: str) -> frozenset[str]:
    """Validate permission names against the catalogue; unknown names are an InvalidInput on ``field``."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{field} must be a list of permission names like 'project:read'", field=field)
    unknown = sorted(n for n in names if n not in PERMISSIONS)
    if unknown:
        hint = "" if all(_NAME.match(n) for n in unknown) else " (form: resource:action)"
        raise InvalidInput(
            f"{field}: unknown permission(s) {', '.join(unknown)}{hint}; see GET /api/v1/permissions",
            field=field,
        )
    return frozenset(names)
