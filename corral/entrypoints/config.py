"""Settings: frozen attrs, built with cattrs from ``CORRAL_*`` environment variables and a TOML file.

Every field ``foo_bar`` is read from ``CORRAL_FOO_BAR`` (environment wins) or
from the key ``foo_bar`` of the TOML file. An unknown ``CORRAL_*`` variable or
TOML key, or a value of the wrong form, raises ConfigError naming the key and
the expected form; the CLI turns it into one line and exit code 2. ``CORRAL_URL`` and
``CORRAL_TOKEN`` belong to the API client and are ignored here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs

__all__ = ["CLIENT_VARIABLES", "ENV_PREFIX", "ConfigError", "Settings", "label_pairs", "load_settings"]

ENV_PREFIX = "CORRAL_"
# read by the `corral` API client (corral.entrypoints.client.store), not settings: the server ignores them, so a
# pipeline step (which gets both) or a shell with both exported can still run server-side commands
CLIENT_VARIABLES = frozenset({"CORRAL_URL", "CORRAL_TOKEN"})


class ConfigError(Exception):
    """A configuration key is unknown or has a bad value."""

    def __init__(self, key: str, expected: str, got: object = None) -> None:
        self.key = key
        self.expected = expected
        shown = "" if got is None else f" (got {got!r})"
        super().__init__(f"configuration error: {key} must be {expected}{shown}")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "corral"


def _port(_i: object, a: attrs.Attribute[Any], v: int | None) -> None:
    if v is not None and not (0 <= v <= 65535):
        raise ValueError(f"{a.name}: a TCP port 0..65535")


def _positive(_i: object, a: attrs.Attribute[Any], v: int | float) -> None:
    if v <= 0:
        raise ValueError(f"{a.name}: a positive number")


def _min_files(_i: object, a: attrs.Attribute[Any], v: int) -> None:
    if v < 0 or v == 1:
        raise ValueError(f"{a.name}: 0 (off) or a number of files of at least 2")


def _quantity(_i: object, a: attrs.Attribute[Any], v: str) -> None:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", v):
        raise ValueError(f"{a.name}: a Kubernetes quantity, e.g. 1Gi or 500Mi")


def _cpu(_i: object, a: attrs.Attribute[Any], v: str) -> None:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?m?", v):
        raise ValueError(f"{a.name}: a Kubernetes CPU quantity, e.g. 500m or 2")


def _label_pairs(_i: object, a: attrs.Attribute[Any], v: str) -> None:
    for part in v.split(","):
        if part.strip() and not re.fullmatch(r"[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*", part.strip()):
            raise ValueError(f"{a.name}: comma-separated Kubernetes labels key=value, e.g. app=corral")


def label_pairs(value: str) -> dict[str, str]:
    """``"a=1,b=2"`` (a ``_label_pairs`` setting) as a dict."""
    return dict(part.strip().split("=", 1) for part in value.split(",") if part.strip())


def _dns_label(_i: object, a: attrs.Attribute[Any], v: str) -> None:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v):
        raise ValueError(f"{a.name}: a Kubernetes name (lowercase letters, digits and '-', at most 63)")


def _cidrs(_i: object, a: attrs.Attribute[Any], v: str) -> None:
    for part in v.split(","):
        try:
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{a.name}: comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,fd00::/8") from None


@attrs.frozen(kw_only=True)
class Settings:
    """Everything Corral reads from its environment. Defaults give the embedded single-machine mode."""

    # --- process -------------------------------------------------------------
    profile: Literal["default", "memory"] = "default"  # memory: every port on fakes, no services
    environment: Literal["development", "production"] = "development"
    data_dir: Path = attrs.field(factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=_port)
    base_url: str | None = None  # public URL (clone URLs, links); default http://host:port
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    shutdown_timeout: float = attrs.field(default=30.0, validator=_positive)
    worker_threads: int = attrs.field(default=0)  # 0: one per core
    validate_responses: bool = False  # check every JSON answer against the OpenAPI document (tests, development)

    # --- PostgreSQL ----------------------------------------------------------
    database_url: str | None = None  # unset: embedded PostgreSQL under data_dir
    db_pool_min: int = attrs.field(default=2, validator=_positive)
    db_pool_max: int = attrs.field(default=10, validator=_positive)

    # --- Valkey --------------------------------------------------------------
    valkey_url: str | None = None  # unset: embedded valkey-server under data_dir
    # the embedded Valkey's memory bound and eviction policy; only policies that never evict a key without a TTL
    # (Corral's cache entries all have one; the authz epoch key must not be evicted)
    valkey_maxmemory_mb: int = attrs.field(default=128, validator=_positive)
    valkey_maxmemory_policy: Literal["volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random",
                                     "noeviction"] = "volatile-lru"
    # an embedded PostgreSQL or Valkey that dies is started again with backoff; down longer than this, /healthz
    # fails (503) so that a supervisor restarts the whole process
    embedded_restart_giveup_seconds: float = attrs.field(default=60.0, validator=_positive)

    # --- object storage ------------------------------------------------------
    s3_endpoint: str | None = None  # unset: local filesystem under data_dir/objects
    s3_bucket: str = "corral"
    s3_access_key: str | None = None
    s3_secret_key: str | None = attrs.field(default=None, repr=False)
    s3_region: str = "us-east-1"

    # --- telemetry -----------------------------------------------------------
    otlp_port: int | None = attrs.field(default=None, validator=_port)  # dedicated OTLP listener, e.g. 4318
    otlp_max_body_bytes: int = attrs.field(default=20 * 1024 * 1024, validator=_positive)  # after gunzip; 413 above
    otlp_queue_records: int = attrs.field(default=100_000, validator=_positive)  # bounded ingest queue; 429 when full
    otlp_batch_records: int = attrs.field(default=20_000, validator=_positive)  # records per COPY transaction
    otlp_writers: int = attrs.field(default=2, validator=_positive)  # concurrent batch writers (connections)
    # OTLP decode + COPY encoding in worker processes: -1 one per core, 0 in the event-loop process
    otlp_decode_processes: int = attrs.field(default=-1)
    # a retried OTLP request (same caller, same body) within this window is answered 200 and not stored again
    otlp_dedupe_seconds: int = attrs.field(default=600)
    observe_hot_hours: float = attrs.field(default=48.0, validator=_positive)  # logs and spans stay in PostgreSQL
    observe_hot_metric_minutes: float = attrs.field(default=60.0, validator=_positive)  # metric samples
    observe_cold_days: int = attrs.field(default=90, validator=_positive)  # Parquet retention, whole days
    observe_rotation_seconds: float = attrs.field(default=300.0, validator=_positive)  # cold-tier loop period
    # compaction after each rotation pass: a complete day's (signal, project) with at least this many files
    # under the target merges them into files of the target's rows (0: off; else at least 2)
    cold_compact_min_files: int = attrs.field(default=4, validator=_min_files)
    cold_compact_target_rows: int = attrs.field(default=1_000_000, validator=_positive)
    cold_compact_groups_per_pass: int = attrs.field(default=8, validator=_positive)  # bounds one pass
    observe_alert_seconds: float = attrs.field(default=30.0, validator=_positive)  # alert evaluator period
    observe_self: bool = True  # Corral's own request logs and spans go through its telemetry pipeline

    # --- housekeeping --------------------------------------------------------
    outbox_retention_hours: int = attrs.field(default=168, validator=_positive)  # processed events kept 7 days
    # in-app notifications (read or not), like GitHub's inbox which drops notifications after a few months
    notification_retention_days: int = attrs.field(default=90, validator=_positive)
    # sent or failed email/webhook notifications (their delivery state); pending ones are never purged
    notification_delivery_retention_days: int = attrs.field(default=30, validator=_positive)
    # project webhook delivery log, delivered or failed (Gitea's cleanup_hook_task_table; pending ones are kept)
    webhook_delivery_retention_days: int = attrs.field(default=30, validator=_positive)

    # --- identity ------------------------------------------------------------
    bootstrap_admin_name: str | None = None
    bootstrap_admin_password: str | None = attrs.field(default=None, repr=False)
    bootstrap_admin_email: str | None = None
    session_idle_seconds: int = attrs.field(default=7200, validator=_positive)  # inactivity timeout
    session_max_seconds: int = attrs.field(default=86400, validator=_positive)  # absolute session lifetime
    login_max_failures_per_user: int = attrs.field(default=5, validator=_positive)
    login_max_failures_per_ip: int = attrs.field(default=20, validator=_positive)
    login_find_time_seconds: int = attrs.field(default=120, validator=_positive)  # window failures count in
    login_ban_seconds: int = attrs.field(default=300, validator=_positive)
    require_totp_for_admins: bool = False  # admins without TOTP may only enrol until they do
    # wrong TOTP codes of one user within 24 h before TOTP (and that user's login) is locked for 24 h
    totp_max_failures_per_day: int = attrs.field(default=20, validator=_positive)
    authz_cache_ttl_seconds: int = attrs.field(default=300, validator=_positive)
    # reverse proxies (e.g. Traefik) whose X-Forwarded-For / X-Forwarded-Proto are believed; empty: none
    trusted_proxies: str = attrs.field(default="", validator=_cidrs)

    # --- secrets -------------------------------------------------------------
    # base64 of 32 bytes; unset: CORRAL_MASTER_KEY_FILE, else (development only) data_dir/master.key
    master_key: str | None = attrs.field(default=None, repr=False)
    master_key_file: Path | None = None
    # previous master key(s) during a rotation (comma-separated base64), until rotate-master-key finishes
    master_key_previous: str | None = attrs.field(default=None, repr=False)
    master_key_previous_file: Path | None = None
    secrets_max_versions: int = attrs.field(default=10, validator=_positive)

    # --- notifications -------------------------------------------------------
    smtp_host: str | None = None  # unset: email notifications are not sent (marked failed)
    smtp_port: int = attrs.field(default=587, validator=_port)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"  # tls: implicit TLS (usually port 465)
    smtp_username: str | None = None
    smtp_password: str | None = attrs.field(default=None, repr=False)
    smtp_from: str = "corral@localhost"
    smtp_timeout: float = attrs.field(default=10.0, validator=_positive)
    smtp_verify_tls: bool = True
    notify_max_attempts: int = attrs.field(default=5, validator=_positive)
    notify_rate_limit_per_hour: int = attrs.field(default=60, validator=_positive)  # per user and channel
    notify_webhook_url: str | None = None  # platform-wide webhook channel target (users may set their own)
    notify_webhook_secret: str | None = attrs.field(default=None, repr=False)

    # --- projects / git -------------------------------------------------------------------------
    git_repos_dir: Path | None = None  # bare repositories (a shared volume when scaled out); default data_dir/repos
    # push recovery (corral.core.git.recovery): its period, and the age after which a push's leftover intent
    # (a crash between git and the push's record) is looked at
    git_push_recovery_seconds: float = attrs.field(default=60.0, validator=_positive)
    git_push_recovery_grace_seconds: float = attrs.field(default=120.0, validator=_positive)
    # project AND notification webhooks may reach loopback/private/special-purpose addresses (any environment)
    webhook_allow_private_targets: bool = False
    webhook_retry_base_seconds: float = attrs.field(default=10.0, validator=_positive)  # attempt n waits base*2^(n-1)
    webhook_max_attempts: int = attrs.field(default=8, validator=_positive)
    lfs_max_object_bytes: int = attrs.field(default=5 * 1024**3, validator=_positive)
    # LFS clients up/download through signed object-store URLs (S3 presigned, or Corral's own signed links);
    # off: every LFS byte streams through Corral
    lfs_direct_transfer: bool = True

    # --- deployer -------------------------------------------------------------------------------
    # none: no cluster (everything but the apply); kubeconfig: $KUBECONFIG or ~/.kube/config; in-cluster: the
    # pod's service account; auto: in-cluster when running in a pod, else a kubeconfig when one exists, else none
    deploy_cluster: Literal["auto", "none", "kubeconfig", "in-cluster"] = "auto"
    deploy_interval_seconds: float = attrs.field(default=10.0, validator=_positive)  # reconciler pass period
    deploy_history_limit: int = attrs.field(default=10, validator=_positive)  # history entries kept per environment
    deploy_protected_environments: str = "production"  # comma-separated: promotions there need an approval
    # --- pipelines --------------------------------------------------------------------------------------
    pipeline_max_running_steps: int = attrs.field(default=4, validator=_positive)  # per replica
    pipeline_workflow_timeout_minutes: int = attrs.field(default=60, validator=_positive)
    # workspaces kept after a workflow ended (failed ones, for a restart from a step) are deleted after this
    pipeline_workspace_retention_hours: float = attrs.field(default=24.0, validator=_positive)
    pipeline_schedule_poll_seconds: float = attrs.field(default=10.0, validator=_positive)  # cron schedules
    # --- workloads (pipeline steps, agent sessions) ------------------------------------------------
    # local: process groups on this machine (trusted code only); kubernetes: a pod per workload, with the
    # kubeconfig ($KUBECONFIG, ~/.kube/config) or the in-cluster service account, as kubernetes-asyncio finds them
    executor: Literal["local", "kubernetes"] = "local"
    kubernetes_namespace: str = attrs.field(default="corral", validator=_dns_label)
    kubernetes_workspace_size: str = attrs.field(default="1Gi", validator=_quantity)  # one PVC per workspace
    kubernetes_storage_class: str | None = None  # unset: the cluster's default StorageClass
    # --- agent sessions ---------------------------------------------------------------------------------
    agent_claude_command: str = "claude"  # the Claude Code CLI of provider claude-code (a path, or a name on PATH)
    agent_permission_mode: Literal["acceptEdits", "bypassPermissions", "default", "plan"] = "acceptEdits"
    agent_wrapup_seconds: float = attrs.field(default=60.0, validator=_positive)  # told to commit before the end
    agent_image: str | None = None  # the image agent pods run (kubernetes executor; deploy/agent-image)
    # what every workload of an agent session asks for and is limited to (kubernetes executor)
    agent_cpu_request: str = attrs.field(default="500m", validator=_cpu)
    agent_cpu_limit: str = attrs.field(default="2", validator=_cpu)
    agent_memory_request: str = attrs.field(default="1Gi", validator=_quantity)
    agent_memory_limit: str = attrs.field(default="4Gi", validator=_quantity)
    agent_run_as_user: int = attrs.field(default=1000, validator=_positive)  # the non-root uid of agent pods
    # the egress an agent pod's NetworkPolicy allows (kubernetes executor; nothing else, DNS aside): Corral by
    # address (CIDRs) and/or by its pods' labels (in kubernetes_agent_corral_namespace, default: the agents'
    # namespace), the model API by address on 443 (NetworkPolicies take no names: api.anthropic.com is published
    # as 160.79.104.0/23 and 2607:6bc0::/48), DNS to the kubernetes_agent_dns_pod_labels pods (empty: any :53)
    kubernetes_agent_corral_cidrs: str = attrs.field(default="", validator=_cidrs)
    kubernetes_agent_corral_pod_labels: str = attrs.field(default="app.kubernetes.io/name=corral",
                                                          validator=_label_pairs)
    kubernetes_agent_corral_namespace: str | None = None
    kubernetes_agent_model_api_cidrs: str = attrs.field(default="160.79.104.0/23,2607:6bc0::/48", validator=_cidrs)
    kubernetes_agent_dns_namespace: str = attrs.field(default="kube-system", validator=_dns_label)
    kubernetes_agent_dns_pod_labels: str = attrs.field(default="k8s-app=kube-dns", validator=_label_pairs)
    # a finished session's workspace is kept this long for a resume, then deleted
    agent_workspace_retention_hours: float = attrs.field(default=72.0, validator=_positive)

    def public_url(self) -> str:
        """The base URL users and git clients reach Corral at."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


_EXPECTED: dict[str, str] = {}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _describe(inner[0]) + " or empty"
    return {
        int: "an integer",
        float: "a number",
        bool: "a boolean (true/false)",
        str: "a string",
        Path: "a filesystem path",
    }.get(tp, str(tp))


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def to_bool(value: object, _t: type) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError("not a boolean")

    def to_int(value: object, _t: type) -> int:
        if isinstance(value, bool):
            raise ValueError("not an integer")
        if isinstance(value, int):
            return value
        return int(str(value).strip())

    def to_float(value: object, _t: type) -> float:
        if isinstance(value, bool):
            raise ValueError("not a number")
        return float(str(value).strip()) if not isinstance(value, int | float) else float(value)

    def to_str(value: object, _t: type) -> str:
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value

    conv.register_structure_hook(bool, to_bool)
    conv.register_structure_hook(int, to_int)
    conv.register_structure_hook(float, to_float)
    conv.register_structure_hook(str, to_str)
    conv.register_structure_hook(Path, lambda v, _t: Path(str(v)).expanduser())
    return conv


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in attrs.fields(Settings)}


def load_settings(
    environ: typing.Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build Settings from a TOML file (optional) overlaid with ``CORRAL_*`` environment variables."""
    env = os.environ if environ is None else environ
    types_ = _field_types()
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except OSError as exc:
            raise ConfigError("--config", "a readable TOML file", str(config_file)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"valid TOML ({exc})", str(config_file)) from exc
        for key, value in data.items():
            if key not in types_:
                raise ConfigError(
                    f"{key} (in {config_file})", "a known setting (see `corral config check --help`)"
                )
            raw[key] = value
    names: dict[str, str] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if name in CLIENT_VARIABLES:  # the API client's (`corral login` / `corral issues list`), not a setting
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in types_:
            raise ConfigError(name, "a known setting (unknown CORRAL_* variable)")
        names[key] = name
        raw[key] = None if value == "" and _optional(types_[key]) else value
    conv = _converter()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        label = names.get(key, key)
        if value is None:
            if not _optional(types_[key]):
                raise ConfigError(label, _describe(types_[key]), value)
            values[key] = None
            continue
        try:
            values[key] = conv.structure(value, types_[key])
        except Exception as exc:  # cattrs raises several kinds; all mean "bad value"
            raise ConfigError(label, _describe(types_[key]), value) from exc
    try:
        return Settings(**values)
    except ValueError as exc:
        key, _, expected = str(exc).partition(": ")
        raise ConfigError(names.get(key, key), expected or "a valid value", values.get(key)) from exc


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)
