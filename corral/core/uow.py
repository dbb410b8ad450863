"""The UnitOfWork port: one transaction, the stores that share it, explicit commit.

Each domain adds its stores as attributes here, typed by that domain's ports.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from corral.core.agents.store import AgentSessionStore
from corral.core.audit.ports import AuditLog
from corral.core.deploy.ports import DeployStore
from corral.core.git.ports import PushIntentStore
from corral.core.identity.ports import (
    DelegationStore,
    IdentitySettingsStore,
    LoginThrottleStore,
    RoleStore,
    SessionStore,
    TokenStore,
    TotpStore,
    UserStore,
)
from corral.core.notify.ports import NotificationStore, PreferenceStore, RecipientDirectory
from corral.core.outbox.ports import Outbox
from corral.core.pipelines.store import PipelineStore
from corral.core.projects.ports import (
    BranchProtectionStore,
    CommentStore,
    IssueStore,
    LabelStore,
    MergeRequestStore,
    MilestoneStore,
    ProjectPurgeStore,
    ProjectStore,
    ReleaseStore,
    ReviewStore,
    WebhookDeliveryStore,
    WebhookStore,
)
from corral.core.secrets.ports import SecretStore

__all__ = ["UnitOfWork", "UnitOfWorkFactory"]


class UnitOfWork(Protocol):
    """An async context manager around one transaction.

    Leaving the block without ``commit()`` rolls everything back (also on an
    exception). After ``commit()`` the changes are durable and visible to
    other units of work; the unit goes on in a fresh transaction, so work
    after a commit needs its own commit. ``rollback()`` discards the work
    since the last commit and also goes on. Until it commits, a unit's
    changes are invisible to other units. A unit of work is used once.
    """

    audit: AuditLog
    outbox: Outbox
    # identity
    users: UserStore
    roles: RoleStore
    delegations: DelegationStore
    tokens: TokenStore
    sessions: SessionStore
    login_throttle: LoginThrottleStore
    totp: TotpStore
    identity_settings: IdentitySettingsStore
    # secrets
    secrets: SecretStore
    # notifications
    notifications: NotificationStore
    notification_preferences: PreferenceStore
    notification_recipients: RecipientDirectory
    # projects / git (corral.core.projects)
    projects: ProjectStore
    issues: IssueStore
    comments: CommentStore
    merge_requests: MergeRequestStore
    labels: LabelStore
    milestones: MilestoneStore
    releases: ReleaseStore
    project_purges: ProjectPurgeStore  # deleted projects' leftovers outside PostgreSQL
    reviews: ReviewStore
    branch_protections: BranchProtectionStore
    webhooks: WebhookStore
    webhook_deliveries: WebhookDeliveryStore
    push_intents: PushIntentStore
    # deployer
    deploy: DeployStore
    # pipelines
    pipelines: PipelineStore
    # agent sessions
    agents: AgentSessionStore

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make every change of this unit durable, atomically."""
        ...

    async def rollback(self) -> None:
        """Discard every change of this unit."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work: ``async with uow_factory() as uow: ...``."""

    def __call__(self) -> UnitOfWork: ...
