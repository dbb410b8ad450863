"""Milestones: what an agent did, in words a human skims ("read 12 files", "ran tests: failed")."""

from __future__ import annotations

import re
import shlex

import attrs

from corral.core.agents.ports import ProviderEvent

__all__ = ["MilestoneTracker"]

_READ_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "NotebookRead"})
_EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
_TEST_WORDS = re.compile(r"\b(pytest|tox|nox|unittest|(npm|pnpm|yarn|cargo|go|make|mvn|gradle)\s+(run\s+)?test)\b")
_COMMITTED = re.compile(r"(\d+) files? changed")
_PUSHED_REF = re.compile(r"->\s*(\S+)")


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _git_verb(command: str) -> str | None:
    """``commit``/``push`` when the shell command runs that git subcommand (``git -C x push`` included)."""
    for part in re.split(r"&&|\|\||;|\n", command):
        words = _words(part)
        if not words or words[0] != "git":
            continue
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-C", "-c") else rest[1:]
        if rest and rest[0] in ("commit", "push"):
            return rest[0]
    return None


@attrs.define
class MilestoneTracker:
    """Fed every provider event in order; returns the milestones each one completes."""

    branch: str = ""
    _tools: dict[str, tuple[str, dict[str, object]]] = attrs.field(factory=dict)
    _read: set[str] = attrs.field(factory=set)
    _read_reported: int = 0

    def feed(self, event: ProviderEvent) -> list[str]:
        out: list[str] = []
        if event.kind == "tool_use" and event.tool_id:
            name = event.tool_name or ""
            self._tools[event.tool_id] = (name, event.tool_input)
            if name not in _READ_TOOLS:
                out.extend(self._flush_reads())
            if name in _READ_TOOLS:
                target = event.tool_input.get("file_path") or event.tool_input.get("path") or \
                    event.tool_input.get("pattern") or event.tool_id
                self._read.add(str(target))
            elif name in _EDIT_TOOLS:
                path = event.tool_input.get("file_path") or event.tool_input.get("notebook_path") or "a file"
                out.append(f"edited {path}")
        elif event.kind == "tool_result" and event.tool_id in self._tools:
            name, tool_input = self._tools.pop(event.tool_id or "")
            if name == "Bash":
                out.extend(self._bash(str(tool_input.get("command") or ""), event))
        elif event.kind == "result":
            out.extend(self._flush_reads())
        return out

    def _flush_reads(self) -> list[str]:
        if len(self._read) > self._read_reported:
            count = len(self._read)
            self._read_reported = count
            return [f"read {count} file{'s' if count != 1 else ''}"]
        return []

    def _bash(self, command: str, result: ProviderEvent) -> list[str]:
        verb = _git_verb(command)
        if verb == "commit":
            if result.is_error:
                return ["commit failed"]
            match = _COMMITTED.search(result.text)
            count = int(match.group(1)) if match else None
            return [f"committed {count} file{'s' if count != 1 else ''}" if count is not None else "committed"]
        if verb == "push":
            if result.is_error:
                return ["push failed"]
            match = _PUSHED_REF.search(result.text)
            return [f"pushed {match.group(1) if match else self.branch}"]
        if _TEST_WORDS.search(command):
            return [f"ran tests: {'failed' if result.is_error else 'passed'}"]
        return []
