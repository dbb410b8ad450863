"""Labels and milestones of a project (Gitea's), and turning the names issues and merge requests are given into
the project's labels and milestone."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import InvalidInput, NotFound
from corral.core.ids import uuid7
from corral.core.projects.commands import LabelChanges, MilestoneChanges, NewLabel, NewMilestone
from corral.core.projects.model import Actor, Label, Milestone, Project
from corral.core.projects.service import audit, text_field
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["LabelService", "milestone_of", "project_labels"]

_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _name(value: object) -> str:
    name = text_field(value, "name", required=True, max_len=64)
    assert name is not None
    name = name.strip()
    if "," in name:
        raise InvalidInput("name must not contain a comma (lists of labels are comma-separated)", field="name")
    return name


def _color(value: object) -> str:
    found = _COLOR.match(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidInput("color must be #rrggbb", field="color")
    return f"#{found.group(1).lower()}"


def _due(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            pass
    raise InvalidInput("due_on must be a date (YYYY-MM-DD)", field="due_on")


def _state(value: object) -> str:
    if value not in ("open", "closed"):
        raise InvalidInput("state must be open or closed", field="state")
    return str(value)


async def project_labels(uow: UnitOfWork, project: Project, names: object, field: str = "labels") -> tuple[str, ...]:
    """The project's label names that ``names`` (a list, any case) mean; InvalidInput naming the unknown ones."""
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise InvalidInput(f"{field} must be a list of label names", field=field)
    wanted = [v.strip() for v in names if v.strip()]
    if not wanted:
        return ()
    known = {label.name.lower(): label.name for label in await uow.labels.list(project.id)}
    unknown = [v for v in wanted if v.lower() not in known]
    if unknown:
        raise InvalidInput(f"{field}: {', '.join(repr(v) for v in unknown)} not a label of {project.full_name} "
                           "(create it first: POST .../labels)", field=field)
    return tuple(dict.fromkeys(known[v.lower()] for v in wanted))


async def milestone_of(uow: UnitOfWork, project: Project, value: object, field: str = "milestone") -> Milestone | None:
    """The project's milestone ``value`` names (its id or title, any case); None for None; InvalidInput else."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a milestone id or title", field=field)
    milestones = await uow.milestones.list(project.id)
    found = next((m for m in milestones if str(m.id) == value.strip()), None) or next(
        (m for m in milestones if m.title.lower() == value.strip().lower()), None)
    if found is None:
        raise InvalidInput(f"{field} {value!r} is not a milestone of {project.full_name}", field=field)
    return found


@attrs.define
class LabelService:
    """Labels and milestones. Callers have already checked project:read / project:write."""

    uow_factory: UnitOfWorkFactory
    clock: Clock

    async def labels(self, project: Project) -> list[Label]:
        async with self.uow_factory() as uow:
            return await uow.labels.list(project.id)

    async def _label(self, uow: UnitOfWork, project: Project, label_id: uuid.UUID) -> Label:
        found = await uow.labels.get(project.id, label_id)
        if found is None:
            raise NotFound(f"label {label_id} not found in {project.full_name}")
        return found

    async def label(self, project: Project, label_id: uuid.UUID) -> Label:
        async with self.uow_factory() as uow:
            return await self._label(uow, project, label_id)

    async def create_label(self, actor: Actor, project: Project, command: NewLabel) -> Label:
        label = Label(id=uuid7(), project_id=project.id, name=_name(command.name), color=_color(command.color),
                      created_at=self.clock.now(), description=text_field(command.description, "description",
                                                                          max_len=500))
        async with self.uow_factory() as uow:
            await uow.labels.add(label)
            await audit(uow, self.clock, actor, "label.create", "label", resource_id=label.id, project_id=project.id,
                        detail={"name": label.name})
            await uow.commit()
        return label

    async def update_label(self, actor: Actor, project: Project, label_id: uuid.UUID, command: LabelChanges) -> Label:
        changes = sent_fields(command)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = _name(changes["name"])
        if "color" in changes:
            values["color"] = _color(changes["color"])
        if "description" in changes:
            values["description"] = text_field(changes["description"], "description", max_len=500)
        async with self.uow_factory() as uow:
            label = await self._label(uow, project, label_id)
            updated = attrs.evolve(label, **values)
            await uow.labels.update(updated, old_name=label.name)
            await audit(uow, self.clock, actor, "label.update", "label", resource_id=label.id, project_id=project.id,
                        detail={"name": updated.name, "fields": sorted(changes)})
            await uow.commit()
        return updated

    async def delete_label(self, actor: Actor, project: Project, label_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            label = await self._label(uow, project, label_id)
            await uow.labels.delete(project.id, label_id)
            await audit(uow, self.clock, actor, "label.delete", "label", resource_id=label.id, project_id=project.id,
                        detail={"name": label.name})
            await uow.commit()

    # ---- milestones ---------------------------------------------------------------------------------------
    async def milestones(self, project: Project, state: str | None = None,
                         ) -> list[tuple[Milestone, tuple[int, int]]]:
        """Milestones (of ``state``: open, closed, all/None) with their (open, closed) issue counts."""
        if state not in (None, "all", "open", "closed"):
            raise InvalidInput("state must be open, closed or all", field="state")
        async with self.uow_factory() as uow:
            found = await uow.milestones.list(project.id, None if state == "all" else state)
            counts = await uow.milestones.issue_counts(project.id)
        return [(m, counts.get(m.id, (0, 0))) for m in found]

    async def _milestone(self, uow: UnitOfWork, project: Project, milestone_id: uuid.UUID) -> Milestone:
        found = await uow.milestones.get(project.id, milestone_id)
        if found is None:
            raise NotFound(f"milestone {milestone_id} not found in {project.full_name}")
        return found

    async def milestone(self, project: Project, milestone_id: uuid.UUID) -> tuple[Milestone, tuple[int, int]]:
        async with self.uow_factory() as uow:
            found = await self._milestone(uow, project, milestone_id)
            counts = await uow.milestones.issue_counts(project.id)
        return found, counts.get(found.id, (0, 0))

    async def create_milestone(self, actor: Actor, project: Project, command: NewMilestone) -> Milestone:
        title = text_field(command.title, "title", required=True, max_len=255)
        assert title is not None
        now = self.clock.now()
        state = _state(command.state)
        milestone = Milestone(id=uuid7(), project_id=project.id, title=title.strip(), state=state, created_at=now,
                              updated_at=now, description=text_field(command.description, "description"),
                              due_on=_due(command.due_on), closed_at=now if state == "closed" else None)
        async with self.uow_factory() as uow:
            await uow.milestones.add(milestone)
            await audit(uow, self.clock, actor, "milestone.create", "milestone", resource_id=milestone.id,
                        project_id=project.id, detail={"title": milestone.title})
            await uow.commit()
        return milestone

    async def update_milestone(self, actor: Actor, project: Project, milestone_id: uuid.UUID,
                               command: MilestoneChanges) -> Milestone:
        changes = sent_fields(command)
        values: dict[str, Any] = {}
        if "title" in changes:
            title = text_field(changes["title"], "title", required=True, max_len=255)
            values["title"] = (title or "").strip()
        if "description" in changes:
            values["description"] = text_field(changes["description"], "description")
        if "due_on" in changes:
            values["due_on"] = _due(changes["due_on"])
        if "state" in changes:
            values["state"] = _state(changes["state"])
        now = self.clock.now()
        async with self.uow_factory() as uow:
            milestone = await self._milestone(uow, project, milestone_id)
            if values.get("state", milestone.state) != milestone.state:
                values["closed_at"] = now if values["state"] == "closed" else None
            updated = attrs.evolve(milestone, updated_at=now, **values)
            await uow.milestones.update(updated)
            await audit(uow, self.clock, actor, "milestone.update", "milestone", resource_id=milestone.id,
                        project_id=project.id, detail={"title": updated.title, "fields": sorted(changes)})
            await uow.commit()
        return updated

    async def delete_milestone(self, actor: Actor, project: Project, milestone_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            milestone = await self._milestone(uow, project, milestone_id)
            await uow.milestones.delete(project.id, milestone_id)
            await audit(uow, self.clock, actor, "milestone.delete", "milestone", resource_id=milestone.id,
                        project_id=project.id, detail={"title": milestone.title})
            await uow.commit()
