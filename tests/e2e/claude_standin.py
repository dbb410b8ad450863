"""A stand-in for the Claude Code CLI (``claude -p --input-format stream-json --output-format stream-json``) that
does real work in its workspace: for the agent session e2e tests (no model, no network beyond Corral).

It checks its command line, reads stream-json user messages on stdin, prints events shaped like Claude Code's
(``system``/``init``, ``assistant`` text and tool_use blocks, ``user`` tool_result blocks, a ``result`` per
message), and with the environment Corral gave it: edits, commits and pushes with git, calls the API with
``CORRAL_TOKEN`` (an issue: allowed; the project's secrets and its deletion: outside its delegation), and sends
one OTLP log record with the ``OTEL_*`` variables. What it saw goes to ``REPORT`` (set by the test when it copies
this file) so the test can check it, the token included (to prove it is dead afterwards).

Modes (the first word of the first message): ``work`` (the above), ``fail`` (exits 2 after an error result),
``wait`` (says so, then sleeps: for stop and restart); anything else is answered with a line.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

REPORT = os.environ.get("STANDIN_REPORT", "")  # replaced by the test's copy

SESSION = ""


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def assistant(n, *blocks):
    emit({"type": "assistant", "message": {
        "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": list(blocks), "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10 + n, "output_tokens": 20, "cache_read_input_tokens": 0}},
        "parent_tool_use_id": None, "session_id": SESSION, "uuid": str(uuid.uuid4())})


def tool(name, tool_input, output, is_error=False):
    tool_id = f"toolu_{uuid.uuid4().hex[:20]}"
    assistant(1, {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
    emit({"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": tool_id, "type": "tool_result", "content": output, "is_error": is_error}]},
        "parent_tool_use_id": None, "session_id": SESSION, "uuid": str(uuid.uuid4())})


def bash(command):
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    tool("Bash", {"command": command, "description": command[:40]}, output, done.returncode != 0)
    return done.returncode, output


def api(method, path, body=None):
    req = urllib.request.Request(os.environ["CORRAL_URL"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + os.environ["CORRAL_TOKEN"],
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def otlp_log(text):
    headers = dict(h.split("=", 1) for h in os.environ["OTEL_EXPORTER_OTLP_HEADERS"].split(","))
    attrs = [{"key": k, "value": {"stringValue": v}}
             for k, v in (a.split("=", 1) for a in os.environ["OTEL_RESOURCE_ATTRIBUTES"].split(","))]
    attrs.append({"key": "service.name", "value": {"stringValue": os.environ["OTEL_SERVICE_NAME"]}})
    body = {"resourceLogs": [{"resource": {"attributes": attrs}, "scopeLogs": [{"scope": {"name": "standin"},
            "logRecords": [{"timeUnixNano": str(time.time_ns()), "severityNumber": 9, "severityText": "INFO",
                            "body": {"stringValue": text}}]}]}]}
    req = urllib.request.Request(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/logs",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def work(prompt, report):
    assistant(1, {"type": "thinking", "thinking": "Let me look at the repository first.", "signature": "x"},
              {"type": "text", "text": f"I'll do it: {prompt}"})
    with open("README.md") as fh:
        tool("Read", {"file_path": os.path.abspath("README.md")}, fh.read())
    os.makedirs("src", exist_ok=True)
    with open("src/app.py", "w") as fh:
        fh.write("print('fixed by the agent')\n")
    tool("Write", {"file_path": "src/app.py", "content": "print('fixed by the agent')\n"},
         "File created successfully at: src/app.py")
    with open("NOTES.md", "w") as fh:
        fh.write("notes\n")
    bash("python3 -c 'import sys; sys.exit(1)'  # pytest stand-in: tests fail first")
    report["commit"] = bash("git add -A && git commit -q -m 'Fix the app' && git show --stat --format= HEAD | tail -1")
    report["push"] = bash(f"git push origin HEAD:refs/heads/{os.environ['STANDIN_BRANCH']}")
    project = os.environ["CORRAL_PROJECT"]
    report["api_get"] = api("GET", f"/api/v1/projects/{project}")
    report["api_issue"] = api("POST", f"/api/v1/projects/{project}/issues", {"title": "Found while fixing"})
    report["api_secrets"] = api("GET", f"/api/v1/projects/{project}/secrets")
    report["api_delete"] = api("DELETE", f"/api/v1/projects/{project}")
    report["api_admin"] = api("GET", "/api/v1/users")
    report["otlp"] = otlp_log(f"stand-in agent working in {project}")
    tool("Bash", {"command": "curl ..."}, json.dumps({k: report[k] for k in report if k.startswith(("api", "otlp"))}))


def main():
    global SESSION
    argv = sys.argv[1:]
    flags = {"-p", "--verbose"}
    assert flags <= set(argv), argv
    assert argv[argv.index("--output-format") + 1] == "stream-json" and \
        argv[argv.index("--input-format") + 1] == "stream-json", argv
    for a in argv:
        if a.startswith(("--session-id=", "--resume=")):
            SESSION = a.split("=", 1)[1]
    assert SESSION, argv
    report = {"argv": argv, "env": {k: v for k, v in os.environ.items() if k.startswith(("CORRAL_", "OTEL_"))
                                    and k not in ("CORRAL_TOKEN", "OTEL_EXPORTER_OTLP_HEADERS")},
              "token": os.environ.get("CORRAL_TOKEN"), "cwd": os.getcwd(), "messages": []}
    os.environ["STANDIN_BRANCH"] = subprocess.run(["git", "branch", "--show-current"], capture_output=True,
                                                  text=True).stdout.strip()
    report["branch"] = os.environ["STANDIN_BRANCH"]
    emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": SESSION,
          "tools": ["Bash", "Edit", "Read", "Write"], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929",
          "permissionMode": "acceptEdits", "apiKeySource": "none", "uuid": str(uuid.uuid4())})
    n = 0
    failed = False
    for raw in sys.stdin:
        message = json.loads(raw)
        if message.get("type") != "user":
            continue
        n += 1
        text = message["message"]["content"]
        report["messages"].append(text)
        if n == 1 and text.startswith("fail"):
            emit({"type": "result", "subtype": "error_during_execution", "is_error": True, "duration_ms": 10,
                  "num_turns": 1, "result": "", "session_id": SESSION, "total_cost_usd": 0.001})
            failed = True
            break
        if n == 1 and text.startswith("wait"):  # works "forever" (until stopped)
            assistant(n, {"type": "text", "text": "This will take a while."})
            with open(REPORT or os.devnull, "w") as fh:
                json.dump(report, fh)
            time.sleep(600)
        if n == 1 and text.startswith("work"):
            work(text, report)
        else:
            assistant(n, {"type": "text", "text": f"Noted: {text}"})
        emit({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1200 * n,
              "duration_api_ms": 1000 * n, "num_turns": 6 * n, "result": f"Fixed the app ({n})",
              "session_id": SESSION, "total_cost_usd": round(0.0421 * n, 4),
              "usage": {"input_tokens": 100, "output_tokens": 50}, "permission_denials": [], "uuid": str(uuid.uuid4())})
        if REPORT:
            with open(REPORT, "w") as fh:
                json.dump(report, fh)
    if REPORT:
        with open(REPORT, "w") as fh:
            json.dump(report, fh)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
