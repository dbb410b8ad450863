"""The claude-code provider: its command line and its reading of Claude Code's stream-json events."""

from __future__ import annotations

import json
import uuid

from corral.adapters.claude_code import ClaudeCodeProvider
from corral.core.agents.ports import Launch

SID = uuid.UUID("5f1c2f6e-5d0a-4b59-9d55-7a3e0f2c9b11")


def test_the_command_uses_stream_json_both_ways_and_the_equals_form_for_ids() -> None:
    provider = ClaudeCodeProvider("/opt/claude", "bypassPermissions")
    argv = provider.command(Launch(session_id=SID, resume=False, max_turns=7, max_cost_usd=2.5,
                                   mcp_config_path='{"mcpServers": {}}', system_prompt="be brief"))
    assert argv == ("/opt/claude", "-p", "--output-format", "stream-json", "--input-format", "stream-json",
                    "--verbose", "--max-turns", "7", "--max-budget-usd", "2.5", "--permission-mode",
                    "bypassPermissions", f"--session-id={SID}", "--mcp-config", '{"mcpServers": {}}',
                    "--append-system-prompt", "be brief")
    resumed = provider.command(Launch(session_id=SID, resume=True, max_turns=7, max_cost_usd=2.5))
    assert f"--resume={SID}" in resumed and not any(a.startswith("--session-id") for a in resumed)


def test_input_lines_are_stream_json_user_messages_and_control_requests() -> None:
    provider = ClaudeCodeProvider()
    assert json.loads(provider.user_message("héllo\nworld")) == {
        "type": "user", "message": {"role": "user", "content": "héllo\nworld"}}
    assert provider.user_message("x").endswith(b"\n") and provider.user_message("a\nb").count(b"\n") == 1
    interrupt = json.loads(provider.interrupt())
    assert interrupt["type"] == "control_request" and interrupt["request"] == {"subtype": "interrupt"}
    assert interrupt["request_id"]


def test_events_are_read_from_recorded_shapes() -> None:
    provider = ClaudeCodeProvider()
    init, = provider.parse(json.dumps({"type": "system", "subtype": "init", "session_id": str(SID),
                                       "tools": ["Bash"], "model": "claude-sonnet-4-5-20250929"}))
    assert init.kind == "init" and init.provider_session_id == str(SID)
    blocks = provider.parse(json.dumps({"type": "assistant", "message": {"id": "msg_1", "role": "assistant",
                                                                         "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Reading"},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.py"}}]}}))
    assert [(b.kind, b.message_id) for b in blocks] == [("thinking", "msg_1"), ("text", "msg_1"),
                                                        ("tool_use", "msg_1")]
    assert blocks[2].tool_name == "Read" and blocks[2].tool_input == {"file_path": "/a.py"}
    result_blocks, = provider.parse(json.dumps({"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": "toolu_1", "type": "tool_result", "is_error": True,
         "content": [{"type": "text", "text": "no such file"}]}]}}))
    assert (result_blocks.kind, result_blocks.tool_id, result_blocks.text, result_blocks.is_error) == (
        "tool_result", "toolu_1", "no such file", True)
    end, = provider.parse(json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": True,
                                      "num_turns": 9, "total_cost_usd": 0.31, "duration_ms": 4000, "result": ""}))
    assert (end.kind, end.subtype, end.is_error, end.num_turns, end.cost_usd, end.duration_ms) == (
        "result", "error_max_turns", True, 9, 0.31, 4000)
    assert provider.parse("Error: not logged in")[0].kind == "output"
    assert provider.parse("[1, 2]")[0].kind == "output" and provider.parse("   ") == []
    assert provider.parse(json.dumps({"type": "stream_event", "event": {}}))[0].kind == "other"
