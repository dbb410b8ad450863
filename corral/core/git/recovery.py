"""Recording the pushes whose recording a crash interrupted.

Before git may move a ref, the receive-pack route commits a ``PushIntent`` (who pushes what, ref by ref);
the transaction that records the push (its ``push`` events and audit rows) deletes it. A process that dies
after git moved the refs but before that transaction leaves the intent behind. ``recover_pushes`` (run by
every replica in the background) takes intents older than a grace period, compares each ref with what the
intent asked for, and records the updates that happened, with the pusher the intent names. Claiming (deleting)
the intent in the recording transaction makes the push's own recording and any recovery exclusive: a push is
recorded once.

A ref counts as moved by the push when it holds the pushed value, or (not a deletion) when a later push has
moved it on from there (the pushed commit is an ancestor of its value). An intent none of whose refs moved is
kept for ``abandon_after`` (its push may still be running on another replica), then dropped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import timedelta

from corral.core.clock import Clock
from corral.core.git.model import ZERO_SHA, PushIntent, RefUpdate
from corral.core.git.ports import GitRepositories
from corral.core.git.service import record_push
from corral.core.projects.model import Actor, Project
from corral.core.uow import UnitOfWorkFactory

__all__ = ["recover_pushes"]

log = logging.getLogger(__name__)


async def _moved(repos: GitRepositories, project: Project, intent: PushIntent) -> list[RefUpdate]:
    now = await repos.ref_values(project.repo_path, [u.ref for u in intent.updates])
    moved = []
    for update in intent.updates:
        value = now.get(update.ref, ZERO_SHA)
        if value == update.new:
            moved.append(update)
        elif not update.is_delete and value not in (ZERO_SHA, update.old) and await repos.is_ancestor(
            project.repo_path, update.new, value
        ):
            moved.append(update)  # pushed, then moved on by a later push
    return moved


async def recover_pushes(
    uow_factory: UnitOfWorkFactory, repos: GitRepositories, clock: Clock, *, older_than: timedelta,
    abandon_after: timedelta, in_flight: Collection[uuid.UUID] = (), limit: int = 100,
) -> int:
    """Record the refs moved by interrupted pushes (intents older than ``older_than`` and not ``in_flight`` in
    this process); returns how many intents were settled (recorded or dropped)."""
    now = clock.now()
    async with uow_factory() as uow:
        intents = await uow.push_intents.older_than(now - older_than, limit)
    settled = 0
    for intent in intents:
        if intent.id in in_flight:
            continue
        async with uow_factory() as uow:
            project = await uow.projects.get(intent.project_id)
        moved = await _moved(repos, project, intent) if project is not None else []
        if not moved and project is not None and now - intent.created_at < abandon_after:
            continue  # nothing moved yet: the push may still be running on another replica
        async with uow_factory() as uow:
            bypassed = []
            if intent.bypassed and project is not None:
                reasons = dict(intent.bypassed)
                rules = await uow.branch_protections.list(project.id)
                bypassed = [(rule, reasons[rule.id]) for rule in rules if rule.id in reasons]
            if project is not None and moved:
                recorded = await record_push(uow, project, Actor(intent.actor_id, intent.actor_name), moved,
                                             clock=clock, bypassed=bypassed, intent_id=intent.id)
            else:
                recorded = await uow.push_intents.claim(intent.id)
            await uow.commit()
        if recorded:
            settled += 1
            log.warning("recovered push %s to %s by %s: %d ref(s) recorded", intent.id,
                        project.full_name if project else intent.project_id, intent.actor_name, len(moved))
    return settled
