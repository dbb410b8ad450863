"""Recording the pushes whose recording a crash interrupted.

Before git may move a ref, the receive-pack route commits a ``PushIntent`` (who pushes what, ref by ref);
the transaction that records the push (its ``push`` events and audit rows) deletes it. A process that dies
after git moved the refs but before that transaction leaves the intent behind. ``recover_pushes`` (run by
every replica in the background) takes intents older than a grace period, compares each ref with what the
intent asked for, and records the updates that happened, with the pusher the intent names. Claiming (deleting)
the intent in the recording transaction makes the push's own recording and any recovery exclusive: a push is
recorded once.

What tells whether an update of the intent happened is, first, the moves of its ref recorded since the intent
was announced (``PushIntentStore.moves_since``, read under the project's record lock in the recording
transaction): a recorded move with the same old → new covers it (the client retried the push a crash cut off, and
the retry was recorded), a next recorded move that started from the update's old value says it never happened,
one that started from its new value says it did. Without such a record the ref itself tells: it moved when it
holds the pushed value, or (not a deletion) when a later push has moved it on from there (the pushed commit is an
ancestor of its value). An intent none of whose refs moved is kept for ``abandon_after`` (its push may still be
running on another replica), then dropped.
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


def _happened(update: RefUpdate, later: list[RefUpdate]) -> bool | None:
    """What the moves recorded since the intent say about ``update`` (None: they say nothing)."""
    mine = [m for m in later if m.ref == update.ref]
    if any(m.old == update.old and m.new == update.new for m in mine):
        return False  # recorded already (a retry of the same push)
    if not mine:
        return None
    if mine[0].old == update.new:
        return True  # the next recorded push found the ref where this one left it
    if mine[0].old == update.old:
        return False  # the next recorded push found the ref still where this one started
    return None


async def recover_pushes(
    uow_factory: UnitOfWorkFactory, repos: GitRepositories, clock: Clock, *, older_than: timedelta,
    abandon_after: timedelta, in_flight: Collection[uuid.UUID] = (), limit: int = 100,
    keep_moves: timedelta = timedelta(days=7),
) -> int:
    """Record the refs moved by interrupted pushes (intents older than ``older_than`` and not ``in_flight`` in
    this process); returns how many intents were settled (recorded or dropped). Recorded moves older than
    ``keep_moves`` are forgotten."""
    now = clock.now()
    async with uow_factory() as uow:
        intents = await uow.push_intents.older_than(now - older_than, limit)
        await uow.push_intents.forget_moves(now - max(keep_moves, abandon_after))
        await uow.commit()
    settled = 0
    for intent in intents:
        if intent.id in in_flight:
            continue
        refs = [u.ref for u in intent.updates]
        async with uow_factory() as uow:
            project = await uow.projects.get(intent.project_id)
            later = await uow.push_intents.moves_since(project.id, refs, intent.created_at) if project else []
        by_state = await _moved(repos, project, intent) if project is not None else []
        told = {u: _happened(u, later) for u in intent.updates}
        if (project is not None and now - intent.created_at < abandon_after
                and not any(told[u] is not None or u in by_state for u in intent.updates)):
            continue  # nothing moved yet: the push may still be running on another replica
        async with uow_factory() as uow:
            # the claim first, then the project's record lock: the order of a push's own recording (no deadlock)
            if not await uow.push_intents.claim(intent.id):
                continue  # recorded (or dropped) by another unit meanwhile
            if project is not None:
                await uow.push_intents.lock_moves(project.id)
            moved: list[RefUpdate] = []
            if project is not None:  # again under the lock: a push may have been recorded meanwhile
                later = await uow.push_intents.moves_since(project.id, refs, intent.created_at)
                told = {u: _happened(u, later) for u in intent.updates}
                moved = [u for u in intent.updates if told[u] or (told[u] is None and u in by_state)]
            if project is not None and moved:
                bypassed = []
                if intent.bypassed:
                    reasons = dict(intent.bypassed)
                    rules = await uow.branch_protections.list(project.id)
                    bypassed = [(rule, reasons[rule.id]) for rule in rules if rule.id in reasons]
                await record_push(uow, project, Actor(intent.actor_id, intent.actor_name), moved,
                                  clock=clock, bypassed=bypassed)
            await uow.commit()
        settled += 1
        log.warning("recovered push %s to %s by %s: %d ref(s) recorded", intent.id,
                    project.full_name if project else intent.project_id, intent.actor_name, len(moved))
    return settled
