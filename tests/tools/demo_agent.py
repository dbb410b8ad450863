"""The agent of the README screenshots: the e2e stand-in for the Claude Code CLI (``tests/e2e/claude_standin.py``,
its stream-json events and helpers) playing one clean, realistic session in the demo repository: it reads the
cart, adds a method and its test, runs the tests (really), commits and pushes to the session's branch.

``tests/tools/screenshots.py`` writes a ``claude`` launcher that runs this file; Corral starts it as it would
start ``claude -p --input-format stream-json --output-format stream-json``."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import claude_standin as standin

CLEAR = '''
    def clear(self) -> None:
        """Remove every line from the cart."""
        self.lines.clear()
'''
TEST = '''

class ClearTest(unittest.TestCase):
    def test_clear_empties_the_cart(self) -> None:
        cart = Cart()
        cart.add("mug", price_cents=1200, quantity=2)
        cart.clear()
        self.assertEqual(cart.total_cents(), 0)
'''


def session(prompt: str) -> None:
    standin.assistant(1, {"type": "thinking", "thinking": "Find the cart class, then add the method with a test.",
                          "signature": "x"},
                      {"type": "text", "text": "I'll add `Cart.clear()` and a unit test for it."})
    cart = Path("src/shop/cart.py")
    standin.tool("Read", {"file_path": str(cart)}, cart.read_text())
    cart.write_text(cart.read_text().rstrip("\n") + "\n" + CLEAR)
    standin.tool("Edit", {"file_path": str(cart), "old_string": "", "new_string": CLEAR},
                 f"The file {cart} has been updated.")
    tests = Path("tests/test_cart.py")
    tests.write_text(tests.read_text().rstrip("\n") + "\n" + TEST)
    standin.tool("Edit", {"file_path": str(tests), "old_string": "", "new_string": TEST},
                 f"The file {tests} has been updated.")
    standin.bash("PYTHONPATH=src python3 -m unittest discover -s tests -v 2>&1 | tail -4")
    branch = subprocess.run(["git", "branch", "--show-current"], capture_output=True, text=True).stdout.strip()
    standin.bash("git add -A && git commit -q -m 'Add Cart.clear()' && git log --oneline -1")
    standin.bash(f"git push -q origin HEAD:refs/heads/{branch} && echo pushed {branch}")
    standin.assistant(2, {"type": "text", "text": f"Done: `Cart.clear()` empties the cart, covered by "
                                                  f"`ClearTest`; all tests pass. Pushed to `{branch}`."})


def main() -> int:
    for a in sys.argv[1:]:
        if a.startswith(("--session-id=", "--resume=")):
            standin.SESSION = a.split("=", 1)[1]
    standin.emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": standin.SESSION,
                  "tools": ["Bash", "Edit", "Read", "Write"], "mcp_servers": [],
                  "model": "claude-sonnet-4-5-20250929", "permissionMode": "acceptEdits", "apiKeySource": "none",
                  "uuid": str(uuid.uuid4())})
    n = 0
    for raw in sys.stdin:
        message = json.loads(raw)
        if message.get("type") != "user":
            continue
        n += 1
        text = message["message"]["content"]
        if n == 1:
            session(text)
        else:
            standin.assistant(n, {"type": "text", "text": f"Noted: {text}"})
        standin.emit({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 41_000 * n,
                      "duration_api_ms": 38_000 * n, "num_turns": 7 * n, "result": "Added Cart.clear() with a test",
                      "session_id": standin.SESSION, "total_cost_usd": round(0.0421 * n, 4),
                      "usage": {"input_tokens": 5200, "output_tokens": 640}, "permission_denials": [],
                      "uuid": str(uuid.uuid4())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
