"""``corral <resource> <verb> [args]``: one command per operation of the server's OpenAPI document.

The document comes from the server the client is logged in to (``GET /api/v1/openapi.json``), cached per server
and version under ``$XDG_CACHE_HOME/corral/openapi`` and fetched again when a command is not in the cached copy;
without a server (``corral --help``, completion before ``corral login``) it is built from this installation's own
route registry. So a client talks to any server version, and a route added to the server is a command at once.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urlencode

import attrs

from corral import __version__
from corral.entrypoints.client.operations import Field, Operation, operations_of
from corral.entrypoints.client.render import render
from corral.entrypoints.client.store import (
    Target,
    config_path,
    document_cache,
    forget,
    load_target,
    save_target,
)
from corral.entrypoints.client.transport import HttpResponse, Transport, Unreachable, UrllibTransport

__all__ = ["CLIENT_COMMANDS", "EXIT_CODES_HELP", "Exit", "client_main", "exit_code_of", "is_client_resource"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DENIED, EXIT_CONFLICT, EXIT_INVALID, EXIT_SERVER = range(8)
EXIT_CODES_HELP = (
    "exit codes: 0 ok; 1 other failure (e.g. a pipeline that did not succeed); 2 usage error; 3 not found (404, "
    "410); 4 unauthenticated or forbidden (401, 403, no login); 5 conflict (409, 412); 6 invalid input (400, 413, "
    "415, 422); 7 server error or unavailable (5xx, 429, unreachable)"
)
CLIENT_COMMANDS = ("login", "logout", "completion")
_RESERVED = {"json", "data", "follow", "all", "help", "h"}


class Exit(Exception):
    """Stop with ``code`` after printing ``message`` (one line on stderr) when there is one."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code, self.message = code, message


def exit_code_of(status: int) -> int:
    """The exit code of an HTTP error status (see EXIT_CODES_HELP)."""
    if status in (404, 410):
        return EXIT_NOT_FOUND
    if status in (401, 403):
        return EXIT_DENIED
    if status in (409, 412):
        return EXIT_CONFLICT
    if status in (400, 413, 415, 422):
        return EXIT_INVALID
    if status >= 500 or status == 429:
        return EXIT_SERVER
    return EXIT_FAILED


def _problem_line(resp: HttpResponse) -> str:
    title, detail = "", ""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        problem = json.loads(resp.body)
        if isinstance(problem, dict):
            title, detail = str(problem.get("title", "")), str(problem.get("detail", ""))
            if problem.get("field"):
                detail += f" (field: {problem['field']})"
    if not title and not detail:
        detail = resp.body.decode(errors="replace").strip()[:300]
    text = f"{resp.status} {title}: {detail}" if title else f"{resp.status}: {detail}"
    return " ".join(text.split())


@attrs.define
class Client:
    """One invocation of the client: where it talks to, how, and where it prints."""

    target: Target
    transport: Transport
    env: Mapping[str, str]
    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    document: dict[str, Any] | None = None
    document_source: str = ""  # "server", "cache", "local" or "given"
    version: str | None = None  # the server's, once asked
    _operations: dict[str, dict[str, Operation]] | None = None

    # --- the document ------------------------------------------------------------------------------------------
    def operations(self, *, fresh: bool = False) -> dict[str, dict[str, Operation]]:
        if self._operations is None or fresh:
            if self.document is None or fresh:
                self.document, self.document_source = self._load_document(fresh=fresh)
            self._operations = operations_of(self.document)
        return self._operations

    def _load_document(self, *, fresh: bool) -> tuple[dict[str, Any], str]:
        url = self.target.url
        if url is None:
            return local_document(), "local"
        if self.version is None:
            try:
                version_resp = self.transport.request("GET", f"{url}/api/v1/version", self._headers(), None)
                self.version = str(json.loads(version_resp.body).get("version", "unknown")) \
                    if version_resp.status == 200 else "unknown"
            except (Unreachable, ValueError, AttributeError):
                cached = _newest(document_cache(url, "x", self.env).parent, url)
                return (cached, "cache") if cached is not None else (local_document(), "local")
        version = self.version
        path = document_cache(url, version, self.env)
        if not fresh:
            with contextlib.suppress(OSError, ValueError):
                return json.loads(path.read_text()), "cache"
        resp = self.transport.request("GET", f"{url}/api/v1/openapi.json", self._headers(), None)
        if resp.status != 200:
            raise Exit(exit_code_of(resp.status), f"cannot read the server's API description: {_problem_line(resp)}")
        doc = json.loads(resp.body)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_bytes(resp.body)
            os.replace(tmp, path)
        return doc, "server"

    def find(self, resource: str, verb: str | None) -> tuple[dict[str, Operation] | None, Operation | None]:
        """The verbs of ``resource`` and the operation of ``verb``; a miss in a cached document fetches it again."""
        ops = self.operations()
        verbs = ops.get(resource)
        op = verbs.get(verb) if verbs is not None and verb is not None else None
        if (verbs is None or (verb is not None and op is None)) and self.document_source == "cache":
            ops = self.operations(fresh=True)
            verbs = ops.get(resource)
            op = verbs.get(verb) if verbs is not None and verb is not None else None
        return verbs, op

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"corral-cli/{__version__}"}
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
        return headers

    def _base(self) -> str:
        if self.target.url is None:
            raise Exit(EXIT_DENIED, "no server: run `corral login URL` or set CORRAL_URL and CORRAL_TOKEN")
        if not self.target.token:
            raise Exit(EXIT_DENIED, f"no token for {self.target.url}: run `corral login {self.target.url}` "
                                    "or set CORRAL_TOKEN")
        return self.target.url

    def call(self, method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> HttpResponse:
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        return self.transport.request(method, self._base() + url, headers, body)

    def out(self, text: str) -> None:
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")


def local_document() -> dict[str, Any]:
    """The OpenAPI document of this installation's own routes (no server needed)."""
    from corral.entrypoints.web.openapi import build_openapi
    from corral.entrypoints.web.routes import ROUTE_TABLES

    return build_openapi([s for t in ROUTE_TABLES for s in t.specs], server_url="http://localhost")


def _newest(directory: Any, url: str) -> dict[str, Any] | None:
    prefix = document_cache(url, "x").name.rsplit("-", 1)[0]
    with contextlib.suppress(OSError, ValueError):
        files = sorted(directory.glob(f"{prefix}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if files:
            return dict(json.loads(files[0].read_text()))
    return None


# --- arguments ---------------------------------------------------------------------------------------------------
def _simple(schema: dict[str, Any]) -> dict[str, Any]:
    """A nullable type (``anyOf [X, null]`` or ``type: [X, "null"]``) as X, with ``nullable`` noted."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1 and len(options) == 2:
            return {**kept[0], "nullable": True, "description": schema.get("description", "")}
    kind = schema.get("type")
    if isinstance(kind, list):
        kept_types = [t for t in kind if t != "null"]
        if len(kept_types) == 1:
            return {**schema, "type": kept_types[0], "nullable": "null" in kind}
    return schema


def _json_value(text: str, stdin: IO[str] | None = None) -> Any:
    raw = text
    if text.startswith("@"):
        name = text[1:]
        try:
            raw = (stdin or sys.stdin).read() if name == "-" else open(name, encoding="utf-8").read()  # noqa: SIM115
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {name}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {raw[:60]!r} (give JSON text or @file.json)") from None


def _scalar(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    nullable = bool(schema.get("nullable"))

    def typed(text: str) -> Any:
        if nullable and text == "null" and kind != "string":
            return None
        try:
            if kind == "integer":
                return int(text)
            if kind == "number":
                return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind == 'integer' else 'a number'}, "
                                             f"got {text!r}") from None
        if "enum" in schema:
            choices = [str(c) for c in schema["enum"]]
            if text not in choices:
                raise argparse.ArgumentTypeError(f"one of {', '.join(choices)}")
            return next(c for c in schema["enum"] if str(c) == text)
        if kind in ("object", "array") or kind is None:
            return _json_value(text)
        return text

    typed.__name__ = str(kind or "JSON")
    return typed


def _add_field(parser: argparse.ArgumentParser, field: Field, dest: str) -> None:
    schema = _simple(field.schema)
    kind = schema.get("type")
    help_ = (field.description or schema.get("description") or "").strip()
    if field.required:
        help_ = (help_ + " (required)").strip()
    if "enum" in schema:
        help_ = (help_ + f" [{'|'.join(str(c) for c in schema['enum'])}]").strip()
    if kind == "boolean":
        parser.add_argument(field.flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=help_)
    elif kind == "array":
        item = _simple(schema.get("items", {}) or {})
        parser.add_argument(field.flag, dest=dest, action="append", type=_scalar(item), default=argparse.SUPPRESS,
                            metavar="VALUE", help=(help_ + " (repeat for several)").strip())
    else:
        metavar = "CHOICE" if "enum" in schema else \
            {"integer": "N", "number": "X", "string": "TEXT"}.get(kind or "", "JSON|@FILE")
        parser.add_argument(field.flag, dest=dest, type=_scalar(schema), default=argparse.SUPPRESS, metavar=metavar,
                            help=help_)


class _Parser(argparse.ArgumentParser):
    """argparse printing help and usage errors to the client's streams (not necessarily sys.stdout/stderr)."""

    streams: tuple[IO[str], IO[str]] | None = None

    def _print_message(self, message: str, file: Any = None) -> None:
        if message and self.streams is not None:
            (self.streams[1] if file is sys.stderr else self.streams[0]).write(message)
        elif message:
            super()._print_message(message, file)


def _parser(client: Client | None, **kw: Any) -> _Parser:
    parser = _Parser(epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
    if client is not None:
        parser.streams = (client.stdout, client.stderr)
    return parser


def operation_parser(op: Operation, client: Client | None = None) -> argparse.ArgumentParser:
    """The argument parser of one operation's command."""
    about = op.summary + (f"\n\n{op.description}" if op.description else "") + f"\n\nHTTP: {op.method} {op.path}"
    parser = _parser(client, prog=f"corral {op.resource} {op.verb}", description=about)
    for name in op.positionals:
        parser.add_argument(name, metavar="OWNER/NAME" if name == "project" else name.upper())
    taken = set(_RESERVED)
    for field in op.query:
        taken.add(field.flag)
        _add_field(parser, field, "q:" + field.name)
    skipped = []
    for field in op.body:
        if field.flag in taken or field.flag[2:] in _RESERVED:
            skipped.append(field.name)
            continue
        taken.add(field.flag)
        _add_field(parser, field, "b:" + field.name)
    parser.add_argument("--json", action="store_true", help="print the API's payload exactly: one JSON document")
    if op.body_type is not None:
        what = "the JSON body" if op.body_type == "application/json" else f"the {op.body_type} body"
        parser.add_argument("--data", metavar="TEXT|@FILE|@-",
                            help=f"{what} (text, @file or @- for stdin); field flags override its fields"
                            + (f"; the only way to send {', '.join(skipped)}" if skipped else ""))
    if op.streams:
        parser.add_argument("--follow", "-f", action="store_true", help="stream it live until it ends (SSE)")
    if op.listing and any(f.name == "cursor" for f in op.query):
        parser.add_argument("--all", action="store_true", help="follow next_cursor and return every page")
    return parser


def _read_data(text: str, stdin: IO[str]) -> str:
    if not text.startswith("@"):
        return text
    name = text[1:]
    if name == "-":
        return stdin.read()
    try:
        with open(name, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise Exit(EXIT_USAGE, f"--data: cannot read {name}: {exc.strerror}") from None


def build_request(op: Operation, args: argparse.Namespace, stdin: IO[str]) -> tuple[str, bytes | None, str | None]:
    """The relative URL (path and query), the body and its type of a call of ``op`` with parsed ``args``."""
    values = vars(args)
    path_values: dict[str, str] = {}
    for name in op.positionals:
        value = values[name]
        if name == "project":
            owner, sep, project = value.partition("/")
            if not sep or not owner or not project:
                raise Exit(EXIT_USAGE, f"PROJECT must be OWNER/NAME, got {value!r}")
            path_values["owner"], path_values["name"] = owner, project
        else:
            path_values[name] = value
    last = op.path_params[-1] if op.path_params else None
    url = op.path
    for name, value in path_values.items():  # a trailing catch-all ({path}, {key}) keeps its slashes
        url = url.replace("{" + name + "}", quote(value, safe="/" if name == last and op.path.endswith("}") else ""))
    query: list[tuple[str, str]] = []
    for field in op.query:
        if "q:" + field.name not in values:
            continue
        value = values["q:" + field.name]
        for item in value if isinstance(value, list) else [value]:
            query.append((field.name, "true" if item is True else "false" if item is False else str(item)))
    if query:
        url += "?" + urlencode(query)
    if op.body_type is None:
        return url, None, None
    data = values.get("data")
    if op.body_type != "application/json":
        if data is None:
            raise Exit(EXIT_USAGE, f"this command sends a {op.body_type} body: give it with --data TEXT|@FILE|@-")
        return url, _read_data(data, stdin).encode(), op.body_type
    body: dict[str, Any] = {}
    if data is not None:
        try:
            loaded = json.loads(_read_data(data, stdin))
        except ValueError:
            raise Exit(EXIT_USAGE, "--data is not JSON") from None
        if not isinstance(loaded, dict):
            if any(k.startswith("b:") for k in values):
                raise Exit(EXIT_USAGE, "--data is not a JSON object: field flags cannot be added to it")
            return url, json.dumps(loaded).encode(), "application/json"
        body = loaded
    for key, value in values.items():
        if key.startswith("b:"):
            body[key[2:]] = value
    missing = [f.flag for f in op.body if f.required and f.name not in body]
    if missing:
        raise Exit(EXIT_USAGE, f"missing {', '.join(missing)} (or give the body with --data)")
    if not body and not op.body_required and data is None:
        return url, b"{}", "application/json"
    return url, json.dumps(body).encode(), "application/json"


# --- running -----------------------------------------------------------------------------------------------------
def _follow(client: Client, url: str) -> int:
    headers = client._headers("text/event-stream")
    resp, lines = client.transport.stream("GET", client._base() + url, headers)
    if not 200 <= resp.status < 300:
        raise Exit(exit_code_of(resp.status), _problem_line(resp))
    event = ""
    for raw in lines:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            if event != "eof":
                client.stdout.write(line[5:].removeprefix(" ") + "\n")
                client.stdout.flush()
        elif line == "":
            if event == "eof":
                return EXIT_OK
            event = ""
    return EXIT_OK


def run_operation(client: Client, op: Operation, argv: list[str]) -> int:
    args = operation_parser(op, client).parse_args(argv)
    url, body, content_type = build_request(op, args, client.stdin)
    if getattr(args, "follow", False):
        return _follow(client, url)
    resp = client.call(op.method, url, body, content_type)
    if not 200 <= resp.status < 300:
        if resp.status in (301, 302, 303, 307, 308):
            raise Exit(EXIT_FAILED, f"{resp.status}: moved to {resp.headers.get('location', '?')} (repeat there)")
        raise Exit(exit_code_of(resp.status), _problem_line(resp))
    if getattr(args, "all", False):
        payload = json.loads(resp.body)
        items = list(payload.get("items", []))
        while payload.get("next_cursor"):
            sep = "&" if "?" in url else "?"
            page = client.call("GET", f"{url}{sep}{urlencode({'cursor': payload['next_cursor']})}")
            if not 200 <= page.status < 300:
                raise Exit(exit_code_of(page.status), _problem_line(page))
            payload = json.loads(page.body)
            items += payload.get("items", [])
        resp = attrs.evolve(resp, body=json.dumps({"items": items, "next_cursor": None}).encode())
    kind = resp.content_type or op.response_type
    if kind == "application/json" or kind.endswith("+json"):
        if args.json:
            client.out(resp.body.decode() if resp.body.strip() else "null")
            return EXIT_OK
        payload = json.loads(resp.body) if resp.body.strip() else None
        text, hint = render(payload)
        client.out(text)
        if hint:
            client.err(hint)
        return EXIT_OK
    if kind.startswith("text/"):
        text = resp.body.decode(errors="replace")
        if args.json:
            client.out(json.dumps(text))
        elif text:
            client.stdout.write(text)
        return EXIT_OK
    client.stdout.flush()
    buffer = getattr(client.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(resp.body)
        buffer.flush()
    else:
        client.stdout.write(resp.body.decode(errors="replace"))
    return EXIT_OK


_TERMINAL = {"success", "failure", "failed", "error", "killed", "cancelled", "canceled", "skipped"}


def wait_pipeline(client: Client, op: Operation, argv: list[str]) -> int:
    """``corral pipelines wait PROJECT NUMBER``: poll the pipeline until it finishes, one progress line on stderr;
    exit 0 when it succeeded, 1 when it ended otherwise."""
    parser = _parser(client, prog="corral pipelines wait",
                     description="Wait for a pipeline to finish (progress on stderr); exit 0 when "
                                 "it succeeded, 1 when it ended otherwise.")
    parser.add_argument("project", metavar="OWNER/NAME")
    parser.add_argument("number")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds (exit 7)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--json", action="store_true", help="print the finished pipeline's JSON")
    args = parser.parse_args(argv)
    url, _, _ = build_request(op, argparse.Namespace(project=args.project, number=args.number), client.stdin)
    deadline = time.monotonic() + args.timeout
    shown = ""
    tty = client.stderr.isatty()
    while True:
        resp = client.call("GET", url)
        if not 200 <= resp.status < 300:
            raise Exit(exit_code_of(resp.status), _problem_line(resp))
        pipeline = json.loads(resp.body)
        steps = [s for w in pipeline.get("workflows", []) for s in w.get("steps", [])]
        done = sum(1 for s in steps if s.get("finished_at") or s.get("status") in _TERMINAL)
        status = str(pipeline.get("status"))
        line = f"pipeline #{pipeline.get('number')}: {status} ({done}/{len(steps)} steps finished)"
        finished = pipeline.get("finished_at") is not None or status in _TERMINAL
        if line != shown:
            client.stderr.write(("\r\x1b[K" + line) if tty else line + "\n")
            client.stderr.flush()
            shown = line
        if finished:
            if tty:
                client.stderr.write("\n")
            if args.json:
                client.out(resp.body.decode())
            return EXIT_OK if status == "success" else EXIT_FAILED
        if time.monotonic() > deadline:
            if tty:
                client.stderr.write("\n")
            raise Exit(EXIT_SERVER, f"pipeline still {status} after {args.timeout:g} s")
        time.sleep(args.interval)


def _extras(verbs: dict[str, Operation]) -> dict[str, tuple[str, Any, Operation]]:
    """Client-side verbs composed of an operation: ``pipelines wait`` (polls ``get``)."""
    get = verbs.get("get")
    if get is not None and get.resource == "pipelines" and "wait" not in verbs:
        return {"wait": ("Wait for a pipeline to finish (progress on stderr; exit 0 if it succeeded)",
                         wait_pipeline, get)}
    return {}


# --- login, logout, help -------------------------------------------------------------------------------------------
def login(client: Client, argv: list[str]) -> int:
    parser = _parser(
        client, prog="corral login",
        description="Store a server URL and an API token (asked for, or read from stdin when it is not a terminal) in "
                    f"{config_path(client.env)} (mode 0600) after checking them with GET /api/v1/me. CORRAL_URL and "
                    "CORRAL_TOKEN override the stored values.")
    parser.add_argument("url", help="the server, e.g. https://corral.example.com")
    parser.add_argument("--json", action="store_true", help="print the user the token belongs to as JSON")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise Exit(EXIT_USAGE, f"URL must start with http:// or https://, got {args.url!r}")
    token = (getpass.getpass("API token: ") if client.stdin.isatty() else client.stdin.readline()).strip()
    if not token:
        raise Exit(EXIT_USAGE, "no token given (create one in the web UI, or with POST /api/v1/tokens)")
    client.target = Target(url, token, "login")
    resp = client.call("GET", "/api/v1/me")
    if resp.status != 200:
        raise Exit(exit_code_of(resp.status), f"the token was not accepted by {url}: {_problem_line(resp)}")
    me = json.loads(resp.body)
    path = save_target(url, token, client.env)
    if args.json:
        client.out(resp.body.decode())
    else:
        name = me.get("name") or me.get("user", {}).get("name") if isinstance(me, dict) else None
        client.out(f"logged in to {url} as {name or '?'} (stored in {path})")
    return EXIT_OK


def logout(client: Client, argv: list[str]) -> int:
    parser = _parser(client, prog="corral logout",
                     description="Forget the stored server and token (the token stays valid on "
                                 "the server: revoke it with `corral tokens revoke ID`).")
    parser.parse_args(argv)
    client.out("logged out" if forget(client.env) else "not logged in")
    return EXIT_OK


def overview(client: Client) -> str:
    """The client part of ``corral --help``."""
    ops = client.operations()
    width = max((len(r) for r in ops), default=10)
    lines = ["client commands (talk to a Corral server over its API):",
             f"  {'login URL'.ljust(width)}  store a server and a token (CORRAL_URL / CORRAL_TOKEN override it)",
             f"  {'logout'.ljust(width)}  forget them",
             f"  {'completion'.ljust(width)}  print a bash or zsh completion script",
             "", "  corral RESOURCE VERB [ARGS] [--json]   (corral RESOURCE --help lists the verbs):"]
    for resource, verbs in ops.items():
        lines.append(f"  {resource.ljust(width)}  {' '.join([*verbs, *_extras(verbs)])}")
    lines += ["", "--json prints exactly one JSON document (the API's payload) on stdout; errors are one line on "
              "stderr.", EXIT_CODES_HELP]
    return "\n".join(lines)


def _resource_help(resource: str, verbs: dict[str, Operation]) -> str:
    lines = [f"usage: corral {resource} VERB [ARGS] [--json]", "", "verbs:"]
    extras = _extras(verbs)
    width = max(len(v) for v in [*verbs, *extras])
    for verb, op in verbs.items():
        args = " ".join("OWNER/NAME" if p == "project" else p.upper() for p in op.positionals)
        lines.append(f"  {verb.ljust(width)}  {op.summary}" + (f"  [{args}]" if args else ""))
    for verb, (summary, _run, _op) in extras.items():
        lines.append(f"  {verb.ljust(width)}  {summary}")
    lines += ["", EXIT_CODES_HELP]
    return "\n".join(lines)


def is_client_resource(word: str, verb: str | None, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``corral WORD VERB`` is a client command (used where a server command has the same name)."""
    client = _client(env, None, None, None, None, None)
    verbs, op = client.find(word, verb)
    return verbs is not None and (op is not None or (verb in _extras(verbs)))


def _client(env: Mapping[str, str] | None, transport: Transport | None, document: dict[str, Any] | None,
            stdin: IO[str] | None, stdout: IO[str] | None, stderr: IO[str] | None) -> Client:
    env = os.environ if env is None else env
    return Client(target=load_target(env), transport=transport or UrllibTransport(), env=env,
                  stdin=stdin or sys.stdin, stdout=stdout or sys.stdout, stderr=stderr or sys.stderr,
                  document=document, document_source="given" if document is not None else "")


def client_main(argv: list[str], *, env: Mapping[str, str] | None = None, transport: Transport | None = None,
                document: dict[str, Any] | None = None, stdin: IO[str] | None = None, stdout: IO[str] | None = None,
                stderr: IO[str] | None = None) -> int:
    """Run one client command; returns the exit code (see EXIT_CODES_HELP)."""
    from corral.entrypoints.client.completion import complete, completion_script

    client = _client(env, transport, document, stdin, stdout, stderr)
    try:
        try:
            return _dispatch(client, argv, complete, completion_script)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2, already printed)
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except Exit as exc:
        if exc.message:
            client.err(f"corral: {exc.message}")
        return exc.code
    except Unreachable as exc:
        client.err(f"corral: {exc}")
        return EXIT_SERVER
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _dispatch(client: Client, argv: list[str], complete: Any, completion_script: Any) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        client.out(overview(client))
        return EXIT_OK if argv else EXIT_USAGE
    word, rest = argv[0], argv[1:]
    if word == "login":
        return login(client, rest)
    if word == "logout":
        return logout(client, rest)
    if word == "completion":
        shell = rest[0] if rest else ""
        if shell not in ("bash", "zsh"):
            raise Exit(EXIT_USAGE, "usage: corral completion bash|zsh")
        client.out(completion_script(shell))
        return EXIT_OK
    if word == "__complete":
        for candidate in complete(client, rest, client_commands=CLIENT_COMMANDS, extras=_extras,
                                  operation_parser=operation_parser):
            client.out(candidate)
        return EXIT_OK
    verb = rest[0] if rest and not rest[0].startswith("-") else None
    verbs, op = client.find(word, verb)
    if verbs is None:
        raise Exit(EXIT_USAGE, f"unknown command {word!r}: see `corral --help`")
    if verb is None:
        client.out(_resource_help(word, verbs))
        return EXIT_OK if rest and rest[0] in ("-h", "--help") else EXIT_USAGE
    if op is None:
        extra = _extras(verbs).get(verb)
        if extra is not None:
            return int(extra[1](client, extra[2], rest[1:]))
        raise Exit(EXIT_USAGE, f"unknown verb {verb!r} of {word}; verbs: {', '.join([*verbs, *_extras(verbs)])}")
    return run_operation(client, op, rest[1:])


def iter_words(client: Client) -> Iterator[tuple[str, dict[str, Operation]]]:
    yield from client.operations().items()
