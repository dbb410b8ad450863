"""The ``claude-code`` provider: Claude Code's CLI run headless, speaking stream-json on stdin and stdout.

Command: ``claude -p --output-format stream-json --input-format stream-json --verbose --max-turns N
--max-budget-usd X --permission-mode MODE --session-id=<uuid>`` (``--resume=<uuid>`` for a resume; always the
``=`` form, so an id is never read as a flag), plus ``--mcp-config`` naming Corral's MCP endpoint. Input lines:
``{"type":"user","message":{"role":"user","content":"..."}}``; an interrupt is a ``control_request``. Output:
one JSON object per line (``system``/``init``, ``assistant`` with text/tool_use/thinking blocks, ``user`` with
tool_result blocks, ``result`` last with ``total_cost_usd``, ``num_turns``, ``is_error``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs

from corral.core.agents.ports import Launch, ProviderEvent

__all__ = ["ClaudeCodeProvider"]


def _text_of(content: Any) -> str:
    """A tool_result's content: a string, or a list of blocks whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return "" if content is None else json.dumps(content, default=str)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@attrs.frozen
class ClaudeCodeProvider:
    command_name: str = "claude"  # CORRAL_AGENT_CLAUDE_COMMAND
    permission_mode: str = "acceptEdits"
    name: str = "claude-code"

    def command(self, launch: Launch) -> tuple[str, ...]:
        argv = [self.command_name, "-p", "--output-format", "stream-json", "--input-format", "stream-json",
                "--verbose", "--max-turns", str(launch.max_turns), "--max-budget-usd", f"{launch.max_cost_usd:g}",
                "--permission-mode", self.permission_mode,
                f"--resume={launch.session_id}" if launch.resume else f"--session-id={launch.session_id}"]
        if launch.mcp_config_path:
            argv += ["--mcp-config", launch.mcp_config_path]
        if launch.system_prompt:
            argv += ["--append-system-prompt", launch.system_prompt]
        return tuple(argv)

    def user_message(self, text: str) -> bytes:
        line = {"type": "user", "message": {"role": "user", "content": text}}
        return (json.dumps(line, ensure_ascii=False) + "\n").encode()

    def interrupt(self) -> bytes:
        line = {"type": "control_request", "request_id": f"req_{uuid.uuid4().hex[:16]}",
                "request": {"subtype": "interrupt"}}
        return (json.dumps(line) + "\n").encode()

    def parse(self, line: str) -> list[ProviderEvent]:
        stripped = line.strip()
        if not stripped:
            return []
        try:
            data = json.loads(stripped)
        except ValueError:
            return [ProviderEvent(kind="output", text=line.rstrip("\n"))]
        if not isinstance(data, dict):
            return [ProviderEvent(kind="output", text=line.rstrip("\n"))]
        kind = data.get("type")
        if kind == "system" and data.get("subtype") == "init":
            return [ProviderEvent(kind="init", subtype="init", provider_session_id=data.get("session_id"),
                                  raw=data)]
        if kind == "assistant":
            return self._assistant(data)
        if kind == "user":
            return self._tool_results(data)
        if kind == "result":
            cost, turns, duration = (_number(data.get("total_cost_usd")), _number(data.get("num_turns")),
                                     _number(data.get("duration_ms")))
            return [ProviderEvent(
                kind="result", text=str(data.get("result") or ""), subtype=data.get("subtype"),
                is_error=data.get("is_error") is True, cost_usd=cost,
                num_turns=int(turns) if turns is not None else None,
                duration_ms=int(duration) if duration is not None else None,
                provider_session_id=data.get("session_id"), raw=data)]
        return [ProviderEvent(kind="other", raw=data)]

    @staticmethod
    def _assistant(data: dict[str, Any]) -> list[ProviderEvent]:
        message = data.get("message") or {}
        message_id = message.get("id") if isinstance(message, dict) else None
        blocks = message.get("content") if isinstance(message, dict) else None
        if isinstance(blocks, str):
            return [ProviderEvent(kind="text", text=blocks, message_id=message_id)]
        out: list[ProviderEvent] = []
        for block in blocks or []:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                out.append(ProviderEvent(kind="text", text=str(block.get("text", "")), message_id=message_id))
            elif btype == "thinking":
                out.append(ProviderEvent(kind="thinking", text=str(block.get("thinking", "")), message_id=message_id))
            elif btype == "tool_use":
                tool_input = block.get("input")
                out.append(ProviderEvent(kind="tool_use", tool_id=block.get("id"), tool_name=block.get("name"),
                                         tool_input=tool_input if isinstance(tool_input, dict) else {},
                                         message_id=message_id))
        return out

    @staticmethod
    def _tool_results(data: dict[str, Any]) -> list[ProviderEvent]:
        message = data.get("message") or {}
        blocks = message.get("content") if isinstance(message, dict) else None
        out: list[ProviderEvent] = []
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                out.append(ProviderEvent(kind="tool_result", tool_id=block.get("tool_use_id"),
                                         text=_text_of(block.get("content")), is_error=block.get("is_error") is True))
        return out
