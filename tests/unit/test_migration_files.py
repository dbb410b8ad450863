"""The migration files as package data: naming, order, checksums, and every table of the design."""

from __future__ import annotations

import re

from corral.adapters.postgres.migrator import Migration, load_migrations

DESIGN_TABLES = {
    "users", "auth_sessions", "api_tokens",
    "roles", "permissions", "role_permissions", "user_roles", "delegations",
    "projects", "issues", "comments", "webhooks",
    "merge_requests", "mr_reviews",
    "agent_sessions", "agent_messages",
    "pipelines", "pipeline_steps", "artifacts",
    "ops_repos", "deployments", "deployment_history",
    "traces", "spans", "log_entries", "metric_series", "metric_samples", "alert_rules", "alert_events",
    "secrets", "notifications", "audit_log", "outbox",
}  # fmt: skip


def test_foundation_files_are_loaded_in_filename_order() -> None:
    names = [m.name for m in load_migrations()]
    assert names == sorted(names)
    assert names[:12] == [
        "001_identity.sql", "002_rbac.sql", "003_projects.sql", "004_git.sql", "005_agents.sql",
        "006_pipelines.sql", "007_deploy.sql", "008_observability.sql", "009_secrets.sql",
        "010_notifications.sql", "011_audit.sql", "012_outbox.sql",
    ]  # fmt: skip


def test_every_table_of_the_design_is_created_exactly_once() -> None:
    created: list[str] = []
    for migration in load_migrations():
        # a later migration may reshape a table: it drops it first, then creates it again
        dropped = set(re.findall(r"^DROP TABLE IF EXISTS (\w+)", migration.sql, flags=re.MULTILINE))
        created = [t for t in created if t not in dropped]
        created += re.findall(r"^CREATE TABLE (\w+)", migration.sql, flags=re.MULTILINE)
    assert len(created) == len(set(created))
    assert set(created) >= DESIGN_TABLES


def test_a_table_is_only_referenced_after_the_statement_that_creates_it() -> None:
    created: set[str] = set()
    for migration in load_migrations():
        sql = re.sub(r"--[^\n]*", "", migration.sql)  # prose in comments does not count
        for statement in sql.split(";"):
            created.update(re.findall(r"CREATE TABLE (\w+)", statement))
            for table in re.findall(r"REFERENCES (\w+)", statement):
                assert table in created, f"{migration.name} references {table} before it exists"


def test_checksum_is_sha256_of_the_text_and_ignores_line_endings() -> None:
    unix = Migration.from_text("900_x.sql", "CREATE TABLE x (id int);\nSELECT 1;\n")
    dos = Migration.from_text("900_x.sql", "CREATE TABLE x (id int);\r\nSELECT 1;\r\n")
    edited = Migration.from_text("900_x.sql", "CREATE TABLE x (id bigint);\nSELECT 1;\n")
    assert unix.checksum == dos.checksum
    assert unix.checksum != edited.checksum
    assert len(unix.checksum) == 64
