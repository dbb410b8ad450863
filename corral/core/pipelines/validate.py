"""From a parsed file (a ``Node`` tree) to a ``Workflow``, collecting every mistake with its line.

Nothing stops at the first error: each key is checked, unknown keys get a "did you mean" hint, and the
caller receives all ``PipelineError``s of the file at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from corral.core.pipelines.dag import graph_problems, step_dependencies
from corral.core.pipelines.definition import (
    EVENTS,
    Artifacts,
    Cache,
    Clone,
    Condition,
    FailurePolicy,
    ListFilter,
    MatrixFilter,
    PathFilter,
    SecretRef,
    Step,
    Value,
    When,
    Workflow,
    Workspace,
)
from corral.core.pipelines.durations import parse_duration
from corral.core.pipelines.expression import ExpressionError, parse_expression
from corral.core.pipelines.globs import glob_regex
from corral.core.pipelines.nodes import Mapping, Node, PipelineError, Scalar, Sequence, plain

__all__ = ["CONTAINER_OPTIONS", "STEP_KEYS", "STEP_PERMISSIONS", "TOP_KEYS", "build_workflow"]

TOP_KEYS = ("steps", "services", "when", "depends_on", "matrix", "workspace", "clone", "skip_clone", "labels",
            "variables", "runs_on")
CONTAINER_OPTIONS = ("pull", "privileged", "volumes", "backend_options", "ports", "network_mode", "dns",
                     "dns_search", "extra_hosts", "tmpfs", "devices", "shm_size", "user", "cpu_quota", "cpu_shares",
                     "cpu_set", "mem_limit", "memswap_limit")
STEP_KEYS = ("name", "image", "commands", "entrypoint", "environment", "secrets", "settings", "directory",
             "depends_on", "detach", "failure", "when", "timeout", "cache", "artifacts", "corral", *CONTAINER_OPTIONS)
STEP_PERMISSIONS = frozenset({"deploy:promote"})  # what ``corral: {permissions}`` may add to CORRAL_TOKEN
CONDITION_KEYS = ("branch", "event", "ref", "repo", "status", "cron", "instance", "platform", "environment",
                  "matrix", "path", "evaluate", "local")
_RENAMED = {"pipeline": "steps (renamed in Woodpecker 2)", "platform": "labels: {platform: ...}",
            "branches": "when: {branch: ...}", "command": "commands", "env": "environment",
            "depends-on": "depends_on", "dependsOn": "depends_on", "deploy": "deployment"}
_BOOL_OPTIONS = ("pull", "privileged")
_LIST_OPTIONS = ("volumes", "ports", "dns", "dns_search", "extra_hosts", "tmpfs", "devices")


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[PipelineError] = []
        self.depends_lines: dict[str, int] = {}  # step name → line of its depends_on (for graph errors)

    def error(self, node: Node | int, path: str, message: str) -> None:
        line = node if isinstance(node, int) else node.line
        self.errors.append(PipelineError(self.file, line, path, message))

    # ---- shapes ------------------------------------------------------------------------------------------
    def mapping(self, node: Node, path: str) -> Mapping | None:
        if isinstance(node, Mapping):
            return node
        self.error(node, path, f"must be a map, not a {node.kind}")
        return None

    def keys(self, node: Mapping, allowed: tuple[str, ...], path: str) -> list[tuple[str, Scalar, Node]]:
        """The known keys of ``node`` (unknown and repeated ones are reported)."""
        seen: set[str] = set()
        out: list[tuple[str, Scalar, Node]] = []
        for key, value in node.items:
            name = key.text
            where = f"{path}.{name}" if path else name
            if name in seen:
                self.error(key, where, "repeated key")
                continue
            seen.add(name)
            if name not in allowed:
                hint = _RENAMED.get(name) or next(iter(difflib.get_close_matches(name, allowed, n=1)), None)
                self.error(key, where, f"unknown key (did you mean {hint}?)" if hint else "unknown key")
                continue
            out.append((name, key, value))
        return out

    def text(self, node: Node, path: str) -> str | None:
        if isinstance(node, Scalar) and node.value is not None:
            return node.text
        self.error(node, path, f"must be a string, not a {node.kind}")
        return None

    def boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, Scalar) and isinstance(node.value, bool):
            return node.value
        self.error(node, path, f"must be true or false, not {_describe(node)}")
        return None

    def strings(self, node: Node, path: str) -> tuple[str, ...] | None:
        """A string or a list of strings (Woodpecker's StringOrSlice)."""
        if isinstance(node, Scalar):
            return (node.text,) if node.value is not None else ()
        if isinstance(node, Sequence):
            out: list[str] = []
            for i, item in enumerate(node.items):
                if isinstance(item, Scalar) and item.value is not None:
                    out.append(item.text)
                else:
                    hint = " (quote it: a ': ' inside makes YAML read a map)" if isinstance(item, Mapping) else ""
                    self.error(item, f"{path}[{i}]", f"must be a string, not {_describe(item)}{hint}")
            return tuple(out)
        self.error(node, path, "must be a string or a list of strings, not a map")
        return None

    def duration(self, node: Node, path: str) -> int | None:
        text = self.text(node, path)
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.error(node, path, str(exc))
            return None

    def value(self, node: Node, path: str) -> Value:
        """A settings/environment value: ``{from_secret: NAME}`` becomes a SecretRef."""
        if isinstance(node, Mapping):
            if node.keys() == ["from_secret"]:
                name = self.text(node.items[0][1], f"{path}.from_secret")
                return SecretRef(name or "")
            return {k.text: self.value(v, f"{path}.{k.text}") for k, v in node.items}
        if isinstance(node, Sequence):
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(node.items)]
        return node.value

    def globs(self, patterns: tuple[str, ...], node: Node, path: str) -> None:
        for p in patterns:
            try:
                glob_regex(p)
            except ValueError as exc:
                self.error(node, path, str(exc))

    # ---- when ----------------------------------------------------------------------------------------------
    def list_filter(self, node: Node, path: str, allowed: frozenset[str] | None = None) -> ListFilter:
        include: tuple[str, ...] = ()
        exclude: tuple[str, ...] = ()
        if isinstance(node, Mapping):
            for name, _, value in self.keys(node, ("include", "exclude"), path):
                got = self.strings(value, f"{path}.{name}") or ()
                if name == "include":
                    include = got
                else:
                    exclude = got
        else:
            include = self.strings(node, path) or ()
        self.globs((*include, *exclude), node, path)
        if allowed is not None:
            for v in (*include, *exclude):
                if v not in allowed and not any(c in v for c in "*?[{"):
                    hint = _RENAMED.get(v) or next(iter(difflib.get_close_matches(v, sorted(allowed), n=1)), None)
                    self.error(node, path, f"unknown value {v!r}" + (f" (did you mean {hint}?)" if hint else "")
                               + f"; one of: {', '.join(sorted(allowed))}")
        return ListFilter(include, exclude)

    def path_filter(self, node: Node, path: str) -> PathFilter:
        include: tuple[str, ...] = ()
        if not isinstance(node, Mapping):
            include = self.strings(node, path) or ()
            self.globs(include, node, path)
            return PathFilter(include=include)
        exclude: tuple[str, ...] = ()
        ignore_message, on_empty = "", True
        for name, _, value in self.keys(node, ("include", "exclude", "ignore_message", "on_empty"), path):
            where = f"{path}.{name}"
            if name == "include":
                include = self.strings(value, where) or ()
            elif name == "exclude":
                exclude = self.strings(value, where) or ()
            elif name == "ignore_message":
                ignore_message = self.text(value, where) or ""
            else:
                flag = self.boolean(value, where)
                on_empty = True if flag is None else flag
        self.globs((*include, *exclude), node, path)
        return PathFilter(include, exclude, ignore_message, on_empty)

    def matrix_filter(self, node: Node, path: str) -> MatrixFilter:
        m = self.mapping(node, path)
        if m is None:
            return MatrixFilter()

        def pairs(n: Node, where: str) -> tuple[tuple[str, str], ...]:
            mm = self.mapping(n, where)
            if mm is None:
                return ()
            return tuple((k.text, t) for k, v in mm.items if (t := self.text(v, f"{where}.{k.text}")) is not None)

        if set(m.keys()) <= {"include", "exclude"} and m.keys():
            inc = m.get("include")
            exc = m.get("exclude")
            return MatrixFilter(pairs(inc, f"{path}.include") if inc else (),
                                pairs(exc, f"{path}.exclude") if exc else ())
        return MatrixFilter(include=pairs(m, path))

    def condition(self, node: Node, path: str) -> Condition | None:
        m = self.mapping(node, path)
        if m is None:
            return None
        fields: dict[str, object] = {"line": m.line}
        for name, _, value in self.keys(m, CONDITION_KEYS, path):
            where = f"{path}.{name}"
            if name == "event":
                fields[name] = self.list_filter(value, where, EVENTS)
            elif name == "status":
                fields[name] = self.list_filter(value, where, frozenset({"success", "failure"}))
            elif name == "path":
                fields[name] = self.path_filter(value, where)
            elif name == "matrix":
                fields[name] = self.matrix_filter(value, where)
            elif name == "evaluate":
                source = self.text(value, where)
                if source is not None:
                    try:
                        parse_expression(source)
                        fields[name] = source
                    except ExpressionError as exc:
                        self.error(value, where, f"invalid expression: {exc}")
            elif name == "local":
                self.boolean(value, where)  # Woodpecker's exec-only flag: accepted, always true here
            else:
                fields[name] = self.list_filter(value, where)
        return Condition(**fields)  # type: ignore[arg-type]

    def when(self, node: Node, path: str) -> When:
        items: list[Condition | None] = []
        if isinstance(node, Sequence):
            items = [self.condition(n, f"{path}[{i}]") for i, n in enumerate(node.items)]
        elif isinstance(node, Mapping):
            items = [self.condition(node, path)]
        else:
            self.error(node, path, f"must be a map or a list of maps, not {_describe(node)}")
        return When(tuple(c for c in items if c is not None))

    # ---- steps ---------------------------------------------------------------------------------------------
    def environment(self, node: Node, path: str) -> list[tuple[str, Value]]:
        if isinstance(node, Sequence):  # the older list form: ["KEY=value", ...]
            out: list[tuple[str, Value]] = []
            for i, item in enumerate(node.items):
                text = self.text(item, f"{path}[{i}]")
                if text is not None:
                    key, sep, val = text.partition("=")
                    if not sep or not key:
                        self.error(item, f"{path}[{i}]", "must be KEY=value")
                    else:
                        out.append((key, val))
            return out
        m = self.mapping(node, path)
        if m is None:
            return []
        seen: set[str] = set()
        out = []
        for k, v in m.items:
            if k.text in seen:
                self.error(k, f"{path}.{k.text}", "repeated key")
                continue
            seen.add(k.text)
            out.append((k.text, self.env_value(v, f"{path}.{k.text}")))
        return out

    def env_value(self, node: Node, path: str) -> Value:
        if isinstance(node, Scalar):
            # environment values are strings: keep what was written ("yes" stays "yes", 1.10 stays "1.10")
            return None if node.value is None else node.text
        return self.value(node, path)

    def secrets(self, node: Node, path: str) -> list[tuple[str, Value]]:
        """Woodpecker 2's ``secrets: [name, {source, target}]`` as environment entries."""
        if not isinstance(node, Sequence):
            self.error(node, path, f"must be a list, not {_describe(node)}")
            return []
        out: list[tuple[str, Value]] = []
        for i, item in enumerate(node.items):
            where = f"{path}[{i}]"
            if isinstance(item, Mapping):
                src = tgt = None
                for name, _, value in self.keys(item, ("source", "target"), where):
                    if name == "source":
                        src = self.text(value, f"{where}.source")
                    else:
                        tgt = self.text(value, f"{where}.target")
                if not src or not tgt:
                    self.error(item, where, "needs source and target")
                else:
                    out.append((tgt.upper(), SecretRef(src)))
            else:
                secret = self.text(item, where)
                if secret:
                    out.append((secret, SecretRef(secret)))
        return out

    def step(self, node: Node, path: str, name: str, *, kind: str, line: int = 0) -> Step | None:
        m = self.mapping(node, path)
        if m is None:
            return None
        line = line or m.line
        fields: dict[str, object] = {"name": name, "line": line}
        env: list[tuple[str, Value]] = []
        options: list[tuple[str, object]] = []
        for key_name, key, value in self.keys(m, STEP_KEYS, path):
            where = f"{path}.{key_name}"
            if key_name == "name":
                text = self.text(value, where)
                if text is not None and text != name:
                    self.error(value, where, f"differs from the step's key {name!r}")
            elif key_name == "image":
                text = self.text(value, where)
                if text is not None and not text.strip():
                    self.error(value, where, "must not be empty")
                fields["image"] = text or ""
            elif key_name in ("commands", "entrypoint"):
                fields[key_name] = self.strings(value, where) or ()
            elif key_name == "environment":
                env.extend(self.environment(value, where))
            elif key_name == "secrets":
                env.extend(self.secrets(value, where))
            elif key_name == "settings":
                sm = self.mapping(value, where)
                if sm is not None:
                    fields["settings"] = tuple((k.text, self.value(v, f"{where}.{k.text}")) for k, v in sm.items)
            elif key_name == "directory":
                fields["directory"] = self.text(value, where) or ""
            elif key_name == "depends_on":
                if kind != "step":
                    self.error(key, where, f"{kind}s do not take depends_on")
                fields["depends_on"] = self.strings(value, where) or ()
                self.depends_lines.setdefault(name, key.line)
            elif key_name == "detach":
                fields["detach"] = bool(self.boolean(value, where))
            elif key_name == "failure":
                text = self.text(value, where)
                if text is not None:
                    try:
                        fields["failure"] = FailurePolicy(text)
                    except ValueError:
                        self.error(value, where, f"must be ignore or fail, not {text!r}")
            elif key_name == "when":
                fields["when"] = self.when(value, where)
            elif key_name == "timeout":
                fields["timeout_seconds"] = self.duration(value, where)
            elif key_name == "cache":
                fields["cache"] = self.cache(value, where)
            elif key_name == "artifacts":
                fields["artifacts"] = self.artifacts(value, where)
            elif key_name == "corral":
                if kind != "step":
                    self.error(key, where, f"{kind}s do not take corral (steps only)")
                fields["permissions"] = self.corral(value, where)
            else:
                if key_name in _BOOL_OPTIONS:
                    self.boolean(value, where)
                elif key_name in _LIST_OPTIONS:
                    self.strings(value, where)
                elif key_name == "backend_options":
                    self.mapping(value, where)
                options.append((key_name, plain(value)))
        if not fields.get("image"):
            self.error(line, f"{path}.image", "is required")
        if fields.get("commands") and fields.get("settings"):
            self.error(line, path, "has both commands and settings: a step is either commands or a plugin")
        fields["environment"] = tuple(env)
        fields["container_options"] = tuple(options)
        return Step(**fields)  # type: ignore[arg-type]

    def cache(self, node: Node, path: str) -> Cache | None:
        m = self.mapping(node, path)
        if m is None:
            return None
        key, paths = None, None
        for name, _, value in self.keys(m, ("key", "paths"), path):
            if name == "key":
                key = self.text(value, f"{path}.key")
            else:
                paths = self.strings(value, f"{path}.paths")
        if not key:
            self.error(m, f"{path}.key", "is required")
        if not paths:
            self.error(m, f"{path}.paths", "is required (the files or directories to keep)")
        return Cache(key, paths) if key and paths else None

    def corral(self, node: Node, path: str) -> tuple[str, ...]:
        """Corral extension ``corral: {permissions: [deploy:promote]}``: what the step's CORRAL_TOKEN may do
        beyond ``project:read`` (granted only when the triggering user holds it too)."""
        m = self.mapping(node, path)
        if m is None:
            return ()
        permissions: tuple[str, ...] = ()
        for _, _, value in self.keys(m, ("permissions",), path):
            where = f"{path}.permissions"
            permissions = self.strings(value, where) or ()
            for wrong in [p for p in permissions if p not in STEP_PERMISSIONS]:
                self.error(value, where, f"{wrong!r} is not a permission a step can ask for "
                                         f"(one of: {', '.join(sorted(STEP_PERMISSIONS))})")
        return tuple(sorted({p for p in permissions if p in STEP_PERMISSIONS}))

    def artifacts(self, node: Node, path: str) -> Artifacts | None:
        m = self.mapping(node, path)
        if m is None:
            return None
        paths, expire = None, None
        for name, _, value in self.keys(m, ("paths", "expire_in"), path):
            if name == "paths":
                paths = self.strings(value, f"{path}.paths")
            else:
                expire = self.duration(value, f"{path}.expire_in")
        if not paths:
            self.error(m, f"{path}.paths", "is required (globs of the files to keep)")
            return None
        return Artifacts(paths, expire)

    def steps(self, node: Node, path: str, *, kind: str) -> list[Step]:
        out: list[Step] = []
        names: dict[str, int] = {}

        def add(step: Step | None, line: int, where: str) -> None:
            if step is None:
                return
            if step.name in names:
                self.error(line, where, f"duplicate {kind} name {step.name!r} (first at line {names[step.name]})")
                return
            names[step.name] = line
            out.append(step)

        if isinstance(node, Mapping):
            seen: set[str] = set()
            for key, value in node.items:
                where = f"{path}.{key.text}"
                if key.text in seen:
                    self.error(key, where, f"duplicate {kind} name {key.text!r}")
                    continue
                seen.add(key.text)
                add(self.step(value, where, key.text, kind=kind, line=key.line), key.line, where)
        elif isinstance(node, Sequence):
            for i, item in enumerate(node.items):
                name = f"{kind}_{i}"
                if isinstance(item, Mapping) and isinstance(n := item.get("name"), Scalar) and n.value is not None:
                    name = n.text
                where = f"{path}.{name}" if name != f"{kind}_{i}" else f"{path}[{i}]"
                add(self.step(item, where, name, kind=kind), item.line, where)
        else:
            self.error(node, path, f"must be a map or a list of {kind}s, not {_describe(node)}")
        return out


def _describe(node: Node) -> str:
    if isinstance(node, Scalar):
        return f"{node.kind} {node.text!r}" if node.value is not None else "empty"
    return f"a {node.kind}"


def build_workflow(node: Node, *, file: str, name: str,
                   axis: tuple[tuple[str, str], ...] = ()) -> tuple[Workflow | None, list[PipelineError]]:
    """Validate one parsed file and build its workflow (None when there are errors)."""
    c = _Checker(file)
    top = c.mapping(node, "")
    if top is None:
        return None, c.errors
    handlers: dict[str, Callable[[Node, str], object]] = {
        "when": c.when,
        "depends_on": c.strings,
        "runs_on": lambda n, p: c.list_filter(n, p, frozenset({"success", "failure"})).include,
        "skip_clone": c.boolean,
    }
    fields: dict[str, object] = {"name": name, "file": file, "axis": axis}
    steps: list[Step] = []
    skip_clone = False
    clone_steps: list[Step] = []
    for key_name, _, value in c.keys(top, TOP_KEYS, ""):
        if key_name == "steps":
            steps = c.steps(value, "steps", kind="step")
        elif key_name == "services":
            fields["services"] = tuple(c.steps(value, "services", kind="service"))
        elif key_name == "workspace":
            fields["workspace"] = _workspace(c, value)
        elif key_name == "clone":
            clone_steps = c.steps(value, "clone", kind="clone step")
        elif key_name == "labels":
            lm = c.mapping(value, "labels")
            if lm is not None:
                fields["labels"] = tuple((k.text, t) for k, v in lm.items
                                         if (t := c.text(v, f"labels.{k.text}")) is not None)
        elif key_name in ("variables", "matrix"):
            continue  # variables only hold anchors; the matrix was expanded before (corral.core.pipelines.matrix)
        elif key_name == "skip_clone":
            skip_clone = bool(c.boolean(value, "skip_clone"))
        else:
            result = handlers[key_name](value, key_name)
            if result is not None:
                fields[key_name] = tuple(result) if isinstance(result, list) else result
    if top.get("steps") is None:
        c.error(top, "steps", "is required: a workflow needs at least one step")
    elif not steps and not c.errors:
        c.error(top.get("steps") or top, "steps", "must not be empty")
    services = fields.get("services", ())
    step_names = {s.name for s in steps}
    for svc in services:  # type: ignore[attr-defined]
        if svc.name in step_names:
            c.error(svc.line, f"services.{svc.name}", "has the same name as a step")
    deps = step_dependencies(steps)
    lines = {s.name: c.depends_lines.get(s.name, s.line) for s in steps}
    for step_name, message in graph_problems(deps):
        c.error(lines.get(step_name, 0), f"steps.{step_name}.depends_on", message)
    if skip_clone and clone_steps:
        c.error(top, "clone", "skip_clone is true: the clone steps would never run")
    fields["clone"] = Clone(skip=skip_clone, steps=tuple(clone_steps))
    if c.errors:
        return None, sorted(c.errors, key=lambda e: e.line)  # stable: same line keeps the order found
    return Workflow(steps=tuple(steps), dependencies=deps, **fields), []  # type: ignore[arg-type]


def _workspace(c: _Checker, node: Node) -> Workspace | None:
    m = c.mapping(node, "workspace")
    if m is None:
        return None
    base, path = Workspace().base, Workspace().path
    for name, _, value in c.keys(m, ("base", "path"), "workspace"):
        text = c.text(value, f"workspace.{name}")
        if text is None:
            continue
        if name == "base":
            if not text.startswith("/"):
                c.error(value, "workspace.base", "must be an absolute path")
            base = text
        else:
            if text.startswith("/") or ".." in text.split("/"):
                c.error(value, "workspace.path", "must be a relative path inside the base, without '..'")
            path = text
    return Workspace(base, path)
