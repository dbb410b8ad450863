"""What a push through git smart HTTP writes to the database: its intent before git may move a ref, then its
``push`` events and audit rows (claiming the intent) once git has reported which refs moved.

The intent (corral.core.git.recovery) is what makes the record survive a crash between git moving the refs and
that transaction: a recovery finds it and records what moved. Pushes of this process that are still running
are in ``ProjectsKit.pushes_in_flight``, which the recovery loop here skips.
"""

from __future__ import annotations

import logging

from aiohttp import web

from corral.core.errors import CorralError
from corral.core.git.model import ZERO_SHA, PushIntent, RefUpdate
from corral.core.git.service import record_push
from corral.core.ids import uuid7
from corral.core.projects.model import BranchProtection, Project
from corral.entrypoints.web.project_access import actor_of, kit

__all__ = ["announce", "record_moved"]

log = logging.getLogger("corral.git")


async def announce(
    request: web.Request, project: Project, updates: list[RefUpdate], bypassed: list[tuple[BranchProtection, str]],
) -> PushIntent:
    """Commit the push's intent (git gets the commands only after this); returns it, now in flight."""
    k = kit(request)
    actor = actor_of(request)
    intent = PushIntent(uuid7(), project.id, actor.id, actor.name, tuple(updates), k.clock.now(),
                        bypassed=tuple((rule.id, why) for rule, why in bypassed))
    k.pushes_in_flight.add(intent.id)
    try:
        async with k.uow_factory() as uow:
            await uow.push_intents.add(intent)
            await uow.commit()
    except BaseException:
        k.pushes_in_flight.discard(intent.id)
        raise
    return intent


async def record_moved(
    request: web.Request, project: Project, updates: list[RefUpdate], report: dict[str, bool] | None,
    bypassed: list[tuple[BranchProtection, str]], intent: PushIntent | None,
) -> None:
    """Push events and audit rows for the refs that really moved (a rejected update leaves its ref where it
    was): from git's report-status when the client asked for one, else from the refs themselves. The intent
    is claimed in the same transaction (also when nothing moved); a failure is logged and leaves the intent to
    the recovery. A move a recovery recorded since the intent was written (an abandoned intent of the same
    move: this push is its client's retry) is not recorded again."""
    if not updates:
        return
    k = kit(request)
    try:
        if report is not None and all(u.ref in report for u in updates):
            moved = [u for u in updates if report[u.ref]]
        else:
            now = await k.git.ref_values(project.repo_path, [u.ref for u in updates])
            moved = [u for u in updates if now.get(u.ref, ZERO_SHA) == u.new]
        async with k.uow_factory() as uow:
            if moved:
                await record_push(uow, project, actor_of(request), moved, clock=k.clock, bypassed=bypassed,
                                  intent_id=intent.id if intent else None,
                                  since=intent.created_at if intent else None)
            elif intent is not None:
                await uow.push_intents.claim(intent.id)
            await uow.commit()
    except CorralError:
        log.exception("could not record the push to %s (its intent stays for the recovery)", project.full_name)
    finally:
        if intent is not None:
            k.pushes_in_flight.discard(intent.id)
