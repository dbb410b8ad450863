"""InMemoryUnitOfWork: the UnitOfWork port over plain Python data, with real transaction semantics.

One ``InMemoryDatabase`` is shared by every unit a factory makes. Each of its fields is a
*component*: an attrs instance whose fields are dicts, lists, sets or plain values (e.g.
``AuditTable``, ``InMemoryIdentityData``). A unit works on private copies of the components
(taken when it starts and after each commit/rollback), so other units do not see its changes
until it commits — like PostgreSQL's READ COMMITTED for rows written by others, and
"repeatable" for this fake's simplicity. ``commit()`` merges the unit's changes into the
shared database key by key; if another unit committed a different value for the same key in
the meantime, commit raises Conflict (the fake's serialization failure) and applies nothing.

Rules for fake stores added here: keep rows immutable (replace ``table[key] = new``, never
mutate a row in place) so the merge can tell what changed.

Adding a domain: add its component as a field of ``InMemoryDatabase`` and bind its stores in
``InMemoryUnitOfWork._bind`` (one line each).
"""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Any, Self

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict
from corral.fakes.agents import AgentTables, InMemoryAgentSessionStore
from corral.fakes.audit import AuditTable, InMemoryAuditLog
from corral.fakes.clock import FakeClock
from corral.fakes.deploy import DeployTables, InMemoryDeployStore
from corral.fakes.identity import (
    InMemoryDelegationStore,
    InMemoryIdentityData,
    InMemoryIdentitySettingsStore,
    InMemoryLoginThrottleStore,
    InMemoryRoleStore,
    InMemorySessionStore,
    InMemoryTokenStore,
    InMemoryTotpStore,
    InMemoryUserStore,
)
from corral.fakes.notify import (
    InMemoryNotificationStore,
    InMemoryPreferenceStore,
    InMemoryRecipientDirectory,
    NotifyTables,
)
from corral.fakes.outbox import InMemoryOutbox, OutboxTable, RowLocks
from corral.fakes.pipeline_store import InMemoryPipelineStore, PipelineTables
from corral.fakes.projects import (
    InMemoryBranchProtectionStore,
    InMemoryCommentStore,
    InMemoryIssueStore,
    InMemoryLabelStore,
    InMemoryMergeRequestStore,
    InMemoryMilestoneStore,
    InMemoryProjectPurgeStore,
    InMemoryProjectStore,
    InMemoryPushIntentStore,
    InMemoryReleaseStore,
    InMemoryReviewStore,
    InMemoryWebhookDeliveryStore,
    InMemoryWebhookStore,
    ProjectsData,
)
from corral.fakes.secrets import InMemorySecretStore, SecretTables

__all__ = ["InMemoryDatabase", "InMemoryUnitOfWork", "InMemoryUnitOfWorkFactory"]

_MISSING: Any = object()


@attrs.define
class InMemoryDatabase:
    """The committed state shared by the units of one factory (one field per component)."""

    audit: AuditTable = attrs.field(factory=AuditTable)
    outbox: OutboxTable = attrs.field(factory=OutboxTable)
    identity: InMemoryIdentityData = attrs.field(factory=InMemoryIdentityData)
    secrets: SecretTables = attrs.field(factory=SecretTables)
    notify: NotifyTables = attrs.field(factory=NotifyTables)
    projects: ProjectsData = attrs.field(factory=ProjectsData)
    deploy: DeployTables = attrs.field(factory=DeployTables)
    pipelines: PipelineTables = attrs.field(factory=PipelineTables)
    agents: AgentTables = attrs.field(factory=AgentTables)
    # not a component: issue/MR number counters behave like PostgreSQL's row-locked UPDATE (never conflict)
    project_counters: dict[Any, int] = attrs.field(factory=dict, metadata={"component": False})
    # not a component: row locks belong to the live database, never to a unit's copy
    row_locks: RowLocks = attrs.field(factory=RowLocks, metadata={"component": False})


def _components(db: InMemoryDatabase) -> list[str]:
    return [f.name for f in attrs.fields(type(db)) if f.metadata.get("component", True)]


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict | list | set):
        return copy.copy(value)
    return value


def _clone(component: Any) -> Any:
    twin = copy.copy(component)
    for field in attrs.fields(type(component)):
        object.__setattr__(twin, field.name, _copy_value(getattr(component, field.name)))
    return twin


def _assign(target: Any, source: Any) -> None:
    """Make ``target`` (bound to the unit's stores) a private copy of ``source``, in place."""
    for field in attrs.fields(type(target)):
        object.__setattr__(target, field.name, _copy_value(getattr(source, field.name)))


def _conflict(where: str) -> Conflict:
    return Conflict(f"{where} was changed concurrently by another unit of work; retry")


def _merge_dict(where: str, base: dict[Any, Any], mine: dict[Any, Any], theirs: dict[Any, Any]) -> dict[Any, Any]:
    merged = dict(theirs)
    for key in base.keys() | mine.keys():
        b, m = base.get(key, _MISSING), mine.get(key, _MISSING)
        if m is b:
            continue
        t = theirs.get(key, _MISSING)
        if t is not b and not (t is not _MISSING and m is not _MISSING and t == m):
            raise _conflict(where)
        if m is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = m
    return merged


def _merge_list(where: str, base: list[Any], mine: list[Any], theirs: list[Any]) -> list[Any]:
    if mine == base:
        return list(theirs)
    if theirs == base:
        return list(mine)
    # both changed: fine when both only appended
    n = len(base)
    if mine[:n] == base and theirs[:n] == base:
        return [*theirs, *mine[n:]]
    raise _conflict(where)


def _merge_set(base: set[Any], mine: set[Any], theirs: set[Any]) -> set[Any]:
    return (theirs | (mine - base)) - (base - mine)


def _merge_value(where: str, base: Any, mine: Any, theirs: Any) -> Any:
    if isinstance(mine, dict) and isinstance(base, dict) and isinstance(theirs, dict):
        return _merge_dict(where, base, mine, theirs)
    if isinstance(mine, list) and isinstance(base, list) and isinstance(theirs, list):
        return _merge_list(where, base, mine, theirs)
    if isinstance(mine, set) and isinstance(base, set) and isinstance(theirs, set):
        return _merge_set(base, mine, theirs)
    if mine is base:
        return theirs
    if theirs is not base and theirs != mine:
        raise _conflict(where)
    return mine


class InMemoryUnitOfWork:
    """The UnitOfWork port over an InMemoryDatabase (see the module docstring for semantics)."""

    def __init__(self, db: InMemoryDatabase, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._base: dict[str, Any] = {}
        self._work: dict[str, Any] = {name: _clone(getattr(db, name)) for name in _components(db)}
        self._active = False
        self._used = False
        self._bind()

    def _bind(self) -> None:
        work = self._work
        self.audit = InMemoryAuditLog(work["audit"])
        self.outbox = InMemoryOutbox(work["outbox"], self.clock, self.db.row_locks, owner=self)
        # identity
        identity = work["identity"]
        self.users = InMemoryUserStore(identity)
        self.roles = InMemoryRoleStore(identity)
        self.delegations = InMemoryDelegationStore(identity)
        self.tokens = InMemoryTokenStore(identity)
        self.sessions = InMemorySessionStore(identity)
        self.login_throttle = InMemoryLoginThrottleStore(identity)
        self.totp = InMemoryTotpStore(identity)
        self.identity_settings = InMemoryIdentitySettingsStore(identity)
        # secrets
        self.secrets = InMemorySecretStore(work["secrets"])
        # notifications
        self.notifications = InMemoryNotificationStore(work["notify"], self.db.row_locks, owner=self)
        self.notification_preferences = InMemoryPreferenceStore(work["notify"])
        self.notification_recipients = InMemoryRecipientDirectory(work["notify"], identity)
        # projects / git
        projects = work["projects"]
        self.projects = InMemoryProjectStore(projects, counters=self.db.project_counters)
        self.issues = InMemoryIssueStore(projects)
        self.comments = InMemoryCommentStore(projects)
        self.merge_requests = InMemoryMergeRequestStore(projects)
        self.labels = InMemoryLabelStore(projects)
        self.milestones = InMemoryMilestoneStore(projects)
        self.releases = InMemoryReleaseStore(projects)
        self.project_purges = InMemoryProjectPurgeStore(projects)
        self.reviews = InMemoryReviewStore(projects)
        self.branch_protections = InMemoryBranchProtectionStore(projects)
        self.webhooks = InMemoryWebhookStore(projects)
        self.webhook_deliveries = InMemoryWebhookDeliveryStore(projects)
        self.push_intents = InMemoryPushIntentStore(projects, self.db.row_locks, owner=self,
                                                    committed=self.db.projects)
        # deployer
        self.deploy = InMemoryDeployStore(work["deploy"], work["projects"])
        # pipelines
        self.pipelines = InMemoryPipelineStore(work["pipelines"], self.db.project_counters, self.db.row_locks,
                                               owner=self)
        # agent sessions
        self.agents = InMemoryAgentSessionStore(work["agents"], self.db.row_locks, owner=self)

    def _refresh(self) -> None:
        """Start a new transaction: private copies of the committed state."""
        for name in _components(self.db):
            shared = getattr(self.db, name)
            self._base[name] = _clone(shared)
            _assign(self._work[name], shared)
        self.db.row_locks.release(self)

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a unit of work is used once; make a new one with the factory")
        self._used = True
        self._active = True
        self._refresh()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        self.db.row_locks.release(self)

    async def commit(self) -> None:
        self._check_active()
        merged: dict[str, dict[str, Any]] = {}
        for name in _components(self.db):
            base, mine, theirs = self._base[name], self._work[name], getattr(self.db, name)
            merged[name] = {
                f.name: _merge_value(
                    f"{name}.{f.name}", getattr(base, f.name), getattr(mine, f.name), getattr(theirs, f.name)
                )
                for f in attrs.fields(type(theirs))
            }
        # every component merged without conflict: apply all of them (atomically, no await above)
        for name, fields in merged.items():
            shared = getattr(self.db, name)
            for field_name, value in fields.items():
                object.__setattr__(shared, field_name, value)
        self._refresh()

    async def rollback(self) -> None:
        self._check_active()
        self._refresh()

    def _check_active(self) -> None:
        if not self._active:
            raise RuntimeError("the unit of work is not active (use `async with`)")


class InMemoryUnitOfWorkFactory:
    """``factory()`` → a fresh InMemoryUnitOfWork; every unit shares ``factory.db``.

    ``clock`` stamps outbox events (default: a FakeClock following real time, for the
    in-memory platform; tests pass their own FakeClock).
    """

    def __init__(self, db: InMemoryDatabase | None = None, clock: Clock | None = None) -> None:
        self.db = db or InMemoryDatabase()
        self.clock = clock or FakeClock.real_time()

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.db, self.clock)
