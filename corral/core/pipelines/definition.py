"""The pipeline definition model: Woodpecker's (v2/v3) workflow vocabulary as frozen value objects.

A *pipeline* is what one trigger (push, tag, pull request, cron, manual...) starts; it runs one or more
*workflows* (one per file of ``.woodpecker/``, times each matrix combination); a workflow runs *steps*
(with *services* beside them) on one shared workspace. These classes are what the validator
(``corral.core.pipelines.validate``) builds from a file; the engine reads them and never sees YAML.

Accepted and recorded, not interpreted here (the executor decides what it honours; the local executor
honours none of them, and says so in the step log): ``pull``, ``privileged``, ``volumes``,
``backend_options``, ``ports``, ``network_mode``, ``dns``, ``dns_search``, ``extra_hosts``, ``tmpfs``,
``devices``, ``shm_size``, ``user``, ``cpu_quota``, ``cpu_shares``, ``cpu_set``, ``mem_limit``,
``memswap_limit`` — kept verbatim in ``Step.container_options``.

Corral extensions (not in Woodpecker; a Woodpecker server would reject them):

- step ``timeout``: a duration such as ``90s``, ``10m`` or ``1h30m``; the step is killed and marked
  ``failure`` when it runs longer (``Step.timeout_seconds``).
- step ``cache: {key, paths}``: ``paths`` (files or directories relative to the workspace) are restored
  before the step from the cache entry named ``key`` and saved after it succeeds (``Step.cache``).
- step ``artifacts: {paths, expire_in}``: files matching ``paths`` (globs relative to the workspace) are
  uploaded after the step and kept ``expire_in`` (a duration, e.g. ``7d``; default: kept until the
  pipeline is deleted) (``Step.artifacts``).
- step ``corral: {permissions: [deploy:promote]}``: the step's ``CORRAL_TOKEN`` may also record a new desired
  deployment (``deploy:promote``), when the user who triggered the pipeline holds that permission; other
  steps' tokens never can (``Step.permissions``). ``deploy:promote`` is the only permission a step can ask for.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

import attrs

__all__ = ["EVENTS", "Artifacts", "Cache", "Clone", "Condition", "FailurePolicy", "ListFilter", "MatrixFilter",
           "PathFilter", "SecretRef", "Step", "Value", "When", "Workflow", "Workspace"]

# Woodpecker's events (v2/v3). "deployment" was "deploy" before v2.
EVENTS = frozenset({"push", "pull_request", "pull_request_closed", "pull_request_metadata", "tag", "release",
                    "deployment", "cron", "manual"})


@attrs.frozen
class SecretRef:
    """``{from_secret: NAME}``: the value is the project's secret ``NAME``, resolved when the step starts."""

    name: str


# A settings or environment value: scalars, lists and maps of them, and secret references.
Value = str | int | float | bool | None | SecretRef | list["Value"] | dict[str, "Value"]


class FailurePolicy(enum.Enum):
    """``failure:`` of a step: ``fail`` (default) fails the workflow; ``ignore`` lets it go on as if the
    step had succeeded (its own status stays ``failure``)."""

    FAIL = "fail"
    IGNORE = "ignore"


@attrs.frozen
class ListFilter:
    """A ``when`` list constraint (``branch``, ``event``, ``ref``, ``status``, ``cron``...): a value or list
    of doublestar globs (``include``) and/or ``{include, exclude}``. Empty matches everything."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude


@attrs.frozen
class MatrixFilter:
    """``when.matrix``: axis → glob the axis value must match (``include``), or ``exclude`` (skipped only
    when every exclude entry matches)."""

    include: tuple[tuple[str, str], ...] = ()
    exclude: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class PathFilter:
    """``when.path``: globs over the changed files (push and pull request events only).

    Woodpecker's rule: no changed files → ``on_empty``; any changed file matching an ``exclude`` glob →
    no match; with ``include`` globs, at least one changed file must match one. ``ignore_message``: a
    commit message containing it (case-insensitive) matches whatever changed.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_message: str = ""
    on_empty: bool = True


@attrs.frozen
class Condition:
    """One item of ``when``: every constraint set in it must match (AND)."""

    line: int = 0
    branch: ListFilter = ListFilter()
    event: ListFilter = ListFilter()
    ref: ListFilter = ListFilter()
    repo: ListFilter = ListFilter()
    status: ListFilter = ListFilter()
    cron: ListFilter = ListFilter()
    instance: ListFilter = ListFilter()
    platform: ListFilter = ListFilter()
    environment: ListFilter = ListFilter()
    matrix: MatrixFilter = MatrixFilter()
    path: PathFilter | None = None
    evaluate: str = ""  # the expression source; parsed by corral.core.pipelines.expression at validation


@attrs.frozen
class When:
    """``when``: a list of conditions of which at least one must match (OR); none means always."""

    conditions: tuple[Condition, ...] = ()

    @property
    def runs_on_success(self) -> bool:
        """Whether the step runs while everything before it succeeded (Woodpecker: unless every
        condition names a ``status`` without ``success``)."""
        if not self.conditions:
            return True
        return any(not c.status.include or "success" in c.status.include for c in self.conditions)

    @property
    def runs_on_failure(self) -> bool:
        """Whether the step still runs after a failure (some condition has ``status: failure``)."""
        return any("failure" in c.status.include for c in self.conditions)


@attrs.frozen
class Cache:
    """Corral extension ``cache: {key, paths}``."""

    key: str
    paths: tuple[str, ...]


@attrs.frozen
class Artifacts:
    """Corral extension ``artifacts: {paths, expire_in}``; ``expire_in_seconds`` None keeps them."""

    paths: tuple[str, ...]
    expire_in_seconds: int | None = None


@attrs.frozen
class Step:
    """A step, a service or a clone step (same vocabulary).

    ``depends_on`` is None when the key is absent and ``()`` for ``depends_on: []``: the difference
    matters for Woodpecker's ordering rule (see ``corral.core.pipelines.dag``). ``commands`` run in one
    ``/bin/sh -e`` script; a step without commands is a plugin (its ``settings`` become ``PLUGIN_*``
    variables, see ``plugin_environment``).
    """

    name: str
    line: int = 0
    image: str = ""
    commands: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    environment: tuple[tuple[str, Value], ...] = ()
    settings: tuple[tuple[str, Value], ...] = ()
    directory: str = ""
    depends_on: tuple[str, ...] | None = None
    detach: bool = False
    failure: FailurePolicy = FailurePolicy.FAIL
    when: When = When()
    timeout_seconds: int | None = None
    cache: Cache | None = None
    artifacts: Artifacts | None = None
    permissions: tuple[str, ...] = ()  # Corral extension corral.permissions: added to project:read in CORRAL_TOKEN
    container_options: tuple[tuple[str, object], ...] = ()

    @property
    def is_plugin(self) -> bool:
        return not self.commands

    def secrets(self) -> frozenset[str]:
        """The names of every secret the step's environment and settings refer to."""
        found: set[str] = set()

        def walk(value: Value) -> None:
            if isinstance(value, SecretRef):
                found.add(value.name)
            elif isinstance(value, list):
                for v in value:
                    walk(v)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)

        for _, v in (*self.environment, *self.settings):
            walk(v)
        return frozenset(found)


@attrs.frozen
class Workspace:
    """``workspace: {base, path}``: where the repository is checked out in the step's filesystem."""

    base: str = "/woodpecker"
    path: str = "src"


@attrs.frozen
class Clone:
    """``clone`` (custom clone steps) and ``skip_clone``."""

    skip: bool = False
    steps: tuple[Step, ...] = ()


@attrs.frozen
class Workflow:
    """One workflow: a file (or one matrix combination of it).

    ``name`` is the file's name without directory and extension (``.woodpecker/build.yaml`` → ``build``;
    a single-file config → ``woodpecker``, ``corral`` or ``platform``); ``axis`` is the matrix
    combination (empty without a matrix). ``dependencies`` maps each step to the steps it waits for, after
    Woodpecker's ordering rule (``dag.step_dependencies``). ``runs_on``: the statuses of the workflows it
    depends on under which it still runs (default ``("success",)``).
    """

    name: str
    file: str
    steps: tuple[Step, ...]
    dependencies: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    services: tuple[Step, ...] = ()
    when: When = When()
    depends_on: tuple[str, ...] = ()
    runs_on: tuple[str, ...] = ("success",)
    axis: tuple[tuple[str, str], ...] = ()
    workspace: Workspace = Workspace()
    clone: Clone = Clone()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def display_name(self) -> str:
        """``name`` with the matrix combination, e.g. ``test (GO=1.22, DB=pg)``."""
        if not self.axis:
            return self.name
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.axis)})"

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_value(value: Value, resolve_secret: Callable[[str], str]) -> str:
    """A settings or environment value as the string its variable holds, the way Woodpecker renders it:
    scalars as text, a list of scalars comma-joined, anything nested as JSON; secrets resolved."""
    import json

    def resolved(v: Value) -> object:
        if isinstance(v, SecretRef):
            return resolve_secret(v.name)
        if isinstance(v, list):
            return [resolved(i) for i in v]
        if isinstance(v, dict):
            return {k: resolved(i) for k, i in v.items()}
        return v

    if isinstance(value, SecretRef):
        return resolve_secret(value.name)
    if isinstance(value, list):
        if all(not isinstance(i, list | dict) for i in value):
            return ",".join(_scalar_text(resolved(i)) for i in value)
        return json.dumps(resolved(value), separators=(",", ":"))
    if isinstance(value, dict):
        return json.dumps(resolved(value), separators=(",", ":"))
    return _scalar_text(value)


def plugin_environment(step: Step, resolve_secret: Callable[[str], str]) -> dict[str, str]:
    """``settings`` as Woodpecker passes them to a plugin: ``PLUGIN_<KEY>`` with ``.``/``-`` as ``_`` and
    upper case; null values are left out."""
    out: dict[str, str] = {}
    for key, value in step.settings:
        if value is None or not key:
            continue
        out["PLUGIN_" + key.replace(".", "_").replace("-", "_").upper()] = render_value(value, resolve_secret)
    return out


def step_environment(step: Step, resolve_secret: Callable[[str], str]) -> dict[str, str]:
    """The step's ``environment`` rendered (``from_secret`` resolved)."""
    return {k: render_value(v, resolve_secret) for k, v in step.environment if v is not None}
