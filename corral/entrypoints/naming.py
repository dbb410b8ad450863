"""Operation names shared by the MCP tools and the ``corral`` client CLI (pure: no web stack imported).

An operation's name is its operation id in snake_case, renamed by ``NAME_OVERRIDES`` where the handler's name is
not what a caller would guess (``merge_mr`` -> ``merge_merge_request``); a name that does not start with a verb gets
one from the HTTP method (GET -> ``get_`` or ``list_`` for a listing, POST -> ``create_``, PUT -> ``set_``, PATCH ->
``update_``, DELETE -> ``delete_``). MCP uses the name as the tool name; the CLI splits it into resource and verb.
"""

from __future__ import annotations

import re

__all__ = ["METHOD_VERB", "NAME_OVERRIDES", "TOOL_NAME", "VERBS", "operation_name", "snake"]

TOOL_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")

# verbs a generated name may start with; a name starting with anything else gets one from its HTTP method
VERBS = frozenset({
    "add", "approve", "cancel", "change", "close", "comment", "compare", "confirm", "count", "create", "delete",
    "destroy", "disable", "enable", "enrol", "explain", "get", "lift", "lint", "list", "logout", "mark", "merge",
    "read", "redeliver", "reopen", "restart", "retry", "review", "revoke", "rotate", "run", "search", "set",
    "start", "stop", "trigger", "undelete", "update", "upload", "promote", "rollback", "render",
})

# operation id → the tool name an agent would guess (only where the derived name would be worse)
NAME_OVERRIDES: dict[str, str] = {
    # secrets: the project's secrets are the common case
    "put_project_secret": "set_secret", "list_project_secrets": "list_secrets", "get_project_secret": "get_secret",
    "delete_project_secret": "delete_secret", "undelete_project_secret": "undelete_secret",
    "destroy_project_secret": "destroy_secret", "put_global_secret": "set_global_secret",
    # notifications
    "mark_read": "mark_notification_read", "unread_count": "count_unread_notifications",
    "get_preferences": "get_notification_preferences", "put_preferences": "set_notification_preferences",
    # identity
    "list_sessions": "list_login_sessions", "revoke_session": "revoke_login_session", "totp_enrol": "enrol_totp",
    "totp_confirm": "confirm_totp", "totp_disable": "disable_totp", "me": "get_current_user",
    "permission_catalogue": "list_permissions", "explain": "explain_permission", "audit": "list_audit_events",
    "list_bindings": "list_role_bindings", "create_binding": "create_role_binding",
    "delete_binding": "delete_role_binding", "put_identity_settings": "set_identity_settings",
    # observe
    "list_rules": "list_alert_rules", "create_rule": "create_alert_rule", "get_rule": "get_alert_rule",
    "patch_rule": "update_alert_rule", "delete_rule": "delete_alert_rule", "force_rotation": "rotate_telemetry",
    "session_timeline": "get_session_timeline",
    # projects
    "list_protections": "list_branch_protections", "create_protection": "create_branch_protection",
    "update_protection": "update_branch_protection", "delete_protection": "delete_branch_protection",
    "list_deliveries": "list_webhook_deliveries", "redeliver": "redeliver_webhook_delivery",
    # repository
    "branches": "list_branches", "tags": "list_tags", "tree": "list_directory", "tree_root": "list_root_directory",
    "blob": "get_file", "commits": "list_commits", "commit": "get_commit", "compare": "compare_refs",
    "docs": "list_docs", "doc": "get_doc",
    # issues and merge requests
    "comment_issue": "add_issue_comment", "create_mr": "create_merge_request", "list_mrs": "list_merge_requests",
    "get_mr": "get_merge_request", "update_mr": "update_merge_request", "mr_diff": "get_merge_request_diff",
    "list_mr_comments": "list_merge_request_comments", "comment_mr": "add_merge_request_comment",
    "list_reviews": "list_merge_request_reviews", "review_mr": "review_merge_request",
    "merge_mr": "merge_merge_request",
    # deploy
    "put_deployment": "set_deployment", "deployment_history": "list_deployment_history",
}

METHOD_VERB = {"GET": "get", "POST": "create", "PUT": "set", "PATCH": "update", "DELETE": "delete"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(text: str) -> str:
    text = _CAMEL.sub("_", text).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "operation"


def operation_name(operation_id: str, method: str, *, listing: bool) -> str:
    """The snake_case verb-first name of an operation (see the module docstring)."""
    name = NAME_OVERRIDES.get(operation_id) or snake(operation_id)
    if name.split("_", 1)[0] not in VERBS:
        verb = "list" if method == "GET" and listing else METHOD_VERB.get(method, "call")
        name = f"{verb}_{name}"
    return name
