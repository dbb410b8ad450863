"""Git smart HTTP (``/{owner}/{name}.git/...``): discovery, upload-pack, receive-pack, streamed both ways.

The pack programs run in stateless-rpc mode; request bodies go to git as the connection delivers them
(corral.adapters.git_pipe), responses are copied in pieces of at most 1 MiB, so a pack is never held in
memory. Pushes: project:write is checked before git starts; the ref advertisement is read from the ref files
(corral.adapters.git_refs); branch protection is enforced by the pre-receive hook (its reason reaches the
client as "remote: ..."), started only when a rule matches a pushed branch; every ref that moved becomes a
``push`` event in the outbox before the response ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from corral.adapters.git_cli import GitError
from corral.adapters.git_pipe import PipeWriter
from corral.core.errors import PermissionDenied, Unauthenticated
from corral.core.git.model import PushRule
from corral.core.git.service import (
    finished_report,
    hook_rules,
    parse_commands,
    push_rules,
    report_status,
)
from corral.core.projects.model import BranchProtection, Project
from corral.entrypoints.web.git_pushes import announce, record_moved
from corral.entrypoints.web.keys import WEB_AUTH, principal_of
from corral.entrypoints.web.project_access import can, kit, project_of
from corral.entrypoints.web.routing import RouteTable

__all__ = ["routes"]

log = logging.getLogger("corral.git")
routes = RouteTable(tag="git")

REPO = "/{owner}/{name}"
_CHUNK = 64 * 1024
_PACK_CHUNK = 1024 * 1024  # reads of git's output (the adapter gives its pipes a buffer this large)
_COMMANDS_LIMIT = 1024 * 1024
_PROTOCOL = re.compile(r"^[A-Za-z0-9=:.,_-]{1,200}$")
_SERVICES = {"git-upload-pack": "upload-pack", "git-receive-pack": "receive-pack"}
# git sends a request larger than http.postBuffer (1 MiB) chunked, after a probe whose body is a lone flush
# packet (it checks the credentials before streaming). Both pack programs answer a lone flush in stateless-rpc
# mode with nothing at all (exit 0, no output: tests/e2e/test_git_probe.py compares with real git), so the
# probe is answered here without starting git: it sits between the pack's first MiB and the rest of it.
_PROBE = b"0000"
_LS_REFS = b"0014command=ls-refs\n"  # a v2 request's first pkt-line names its command
_LS_REFS_REQUEST_LIMIT = 64 * 1024
_GATED_TAIL = 4  # body bytes held back until a gate (the push's intent) is through: see _feed


def _text(status: int, message: str) -> web.Response:
    """git prints a text/plain error body to the user as 'remote: ...'."""
    return web.Response(status=status, text=message.rstrip() + "\n", content_type="text/plain",
                        headers={"Cache-Control": "no-cache"})


def _protocol(request: web.Request) -> str | None:
    value = request.headers.get("Git-Protocol")
    return value if value and _PROTOCOL.match(value) else None


async def _writable(request: web.Request, project: Project) -> None:
    """project:write, and not archived; raise with a message git will show."""
    try:
        await request.app[WEB_AUTH].authorize(request, principal_of(request), "project:write", project.id)
    except PermissionDenied as exc:
        raise PermissionDenied(f"Corral: you may not push to {project.full_name}: {exc.message}") from None
    if project.archived:
        raise PermissionDenied(f"Corral: {project.full_name} is archived and read-only")


async def _drain(stream: asyncio.StreamReader | None, sink: list[bytes] | None = None) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_CHUNK):
        if sink is not None and sum(map(len, sink)) < 4096:
            sink.append(chunk)


async def _read_probe(request: web.Request) -> bytes | None:
    """The body when it is small enough to be git's probe (then it has been read); None otherwise."""
    if request.content_length != len(_PROBE) or request.headers.get("Content-Encoding"):
        return None
    try:
        return await request.content.readexactly(len(_PROBE))
    except asyncio.IncompleteReadError as exc:
        return exc.partial


def _probe_answer(service: str) -> web.Response:
    """What ``git <service> --stateless-rpc`` answers to a lone flush packet: an empty result."""
    return web.Response(status=200, body=b"", headers={"Content-Type": f"application/x-git-{service}-result",
                                                       "Cache-Control": "no-cache"})


async def _feed(
    request: web.Request, stdin: PipeWriter, prefix: bytes = b"", gate: asyncio.Future[Any] | None = None,
) -> None:
    """Copy the request body (after ``prefix``, bytes already read from it) into git's stdin: each write is
    everything the connection has delivered since the last one (aiohttp bounds that), so a slow git holds
    back the client through TCP, never through memory.

    With a ``gate`` the body's last bytes wait for it: git cannot finish a request it has not wholly read (the
    last bytes are the pack's checksum, or the flush after the commands of a push without a pack), so no ref
    moves before the gate is through, while everything before them streams as it arrives."""
    hold = _GATED_TAIL if gate is not None else 0
    tail = b""
    try:
        piece = prefix
        while True:
            if piece:
                data = tail + piece
                cut = max(len(data) - hold, 0)
                tail = data[cut:]
                await stdin.write(data[:cut])
            piece = await request.content.readany()
            if not piece:
                break
        if gate is not None:
            await gate
            await stdin.write(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass  # git stopped reading (it answers with an error of its own)
    finally:
        stdin.close()


async def _read_commands(request: web.Request, prefix: bytes) -> bytes:
    """The start of a receive-pack request up to the flush ending its ref update commands (or 1 MiB of it,
    or up to what is not a pkt-line: git answers that itself). Each byte is looked at once."""
    data = bytearray(prefix)
    pos = 0  # start of the first pkt-line not yet complete
    while True:
        while pos + 4 <= len(data):
            try:
                size = int(data[pos : pos + 4], 16)
            except ValueError:
                return bytes(data)
            if size < 4:  # the flush (or a packet commands never hold)
                return bytes(data)
            if pos + size > len(data):
                break
            pos += size
        if len(data) >= _COMMANDS_LIMIT:
            return bytes(data)
        chunk = await request.content.readany()
        if not chunk:
            return bytes(data)
        data.extend(chunk)


@routes.get(f"{REPO}/info/refs", summary="Git smart HTTP discovery (?service=git-upload-pack|git-receive-pack)",
            permission="project:read", project="path", anonymous=True, challenge='Basic realm="Corral"',
            query=(("service", "string", "git-upload-pack or git-receive-pack"),))
async def info_refs(request: web.Request) -> web.StreamResponse:
    service = _SERVICES.get(request.query.get("service", ""))
    if service is None:
        return _text(403, "Corral serves the smart HTTP protocol only: use a git client (service= is required)")
    project = await project_of(request)
    if service == "receive-pack":
        if principal_of(request) is None:
            raise Unauthenticated("authentication required to push")
        try:
            await _writable(request, project)
        except PermissionDenied as exc:
            return _text(403, exc.message)
    protocol = _protocol(request)
    headers = {"Content-Type": f"application/x-git-{service}-advertisement", "Cache-Control": "no-cache",
               "Expires": "Fri, 01 Jan 1980 00:00:00 GMT", "Pragma": "no-cache"}
    if service == "receive-pack":
        # a push: read its branch protection while the refs are listed (the pack request reuses the read)
        policy = asyncio.ensure_future(_push_policy(request, project, fresh=True))
        try:
            listed = None if protocol else await kit(request).git.receive_advertisement(project.repo_path)
            if listed is not None:
                await policy
                return web.Response(body=_service_line(service) + listed, headers=headers)
        except BaseException:
            policy.cancel()
            raise
    else:
        if protocol and "version=2" in protocol:  # v2 discovery: capabilities only, kept from git's own answer
            return web.Response(body=await kit(request).git.upload_v2_advertisement(project.repo_path, protocol),
                                headers=headers)
        policy = None
    try:
        spawned = await kit(request).git.spawn_service(project.repo_path, service, advertise=True, protocol=protocol)
    except BaseException:
        if policy is not None:
            policy.cancel()
        raise
    proc = spawned.process
    assert proc.stdout is not None
    errors: list[bytes] = []
    stderr = asyncio.create_task(_drain(proc.stderr, errors))
    response = web.StreamResponse(headers=headers)
    ok = False
    try:
        first = await proc.stdout.read(_PACK_CHUNK)
        await response.prepare(request)
        if not (service == "upload-pack" and protocol and "version=2" in protocol):
            await response.write(_service_line(service))
        while first:
            await response.write(first)
            first = await proc.stdout.read(_PACK_CHUNK)
        if policy is not None:  # kept for the pack request before the client can send it
            with contextlib.suppress(Exception):  # else the pack request reads it itself (and fails there)
                await policy
        await response.write_eof()
        ok = True
    finally:
        if policy is not None and not policy.done():
            policy.cancel()
        if not ok and proc.returncode is None:
            proc.kill()
        await _finish(proc, stderr, errors)
    return response


def _service_line(service: str) -> bytes:
    """The smart HTTP preamble before a v0/v1 advertisement: ``# service=git-<service>`` and a flush."""
    line = f"# service=git-{service}\n".encode()
    return b"%04x" % (len(line) + 4) + line + b"0000"


async def _finish(
    proc: asyncio.subprocess.Process, stderr: asyncio.Task[None], errors: list[bytes], *, stopped: bool = False,
) -> None:
    """Wait for git (30 s at most) and log a failure; ``stopped``: Corral killed it (the client went away)."""
    if proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    with contextlib.suppress(Exception):
        await stderr
    if proc.returncode and not stopped:
        log.warning("git exited %s: %s", proc.returncode, b"".join(errors).decode("utf-8", "replace")[:500])


async def _rpc(
    request: web.Request, service: str, project: Project, rules: list[PushRule] | None = None, prefix: bytes = b"",
    watch: Callable[[bytes], None] | None = None, gate: asyncio.Future[Any] | None = None,
) -> tuple[web.StreamResponse, bytes]:
    """Run one stateless-rpc exchange; returns the response and (for receive-pack) the first MiB of git's
    answer (its report-status). ``prefix``: body bytes the caller has already read; ``watch`` (receive-pack)
    sees git's answer so far after each read of it; ``gate``: git gets the body's last bytes only once it is
    done (its error, raised before any answer, ends the request)."""
    k = kit(request)
    principal = principal_of(request)
    spawned = await k.git.spawn_service(project.repo_path, service, advertise=False, protocol=_protocol(request),
                                        push_rules=rules or [], pusher=getattr(principal, "name", "") or "",
                                        auto_gc=k.maintenance is None)
    proc = spawned.process
    assert proc.stdout is not None and spawned.stdin is not None
    keep = bytearray() if service == "receive-pack" else None
    errors: list[bytes] = []
    feeder = asyncio.create_task(_feed(request, spawned.stdin, prefix, gate))
    stderr = asyncio.create_task(_drain(proc.stderr, errors))
    response = web.StreamResponse(headers={"Content-Type": f"application/x-git-{service}-result",
                                           "Cache-Control": "no-cache"})
    ok = False
    try:
        chunk = await proc.stdout.read(_PACK_CHUNK)
        if gate is not None:
            await gate  # git answers nothing before its input: a failed gate is why it stopped
        await response.prepare(request)
        while chunk:
            if keep is not None and len(keep) < _COMMANDS_LIMIT:
                keep.extend(chunk)
                if watch is not None:
                    watch(bytes(keep))
            await response.write(chunk)
            chunk = await proc.stdout.read(_PACK_CHUNK)
        await feeder
        if service != "receive-pack":
            await response.write_eof()  # receive-pack: the caller records the push first, then ends the response
        ok = True
    except ConnectionResetError:  # the client went away: git is stopped below; nothing to answer, no error
        log.info("the client went away during git %s of %s", service, project.full_name)
    finally:
        if not feeder.done():
            feeder.cancel()
        elif not feeder.cancelled():
            feeder.exception()  # retrieved: it is the gate's error, raised above
        stopped = not ok and proc.returncode is None
        if stopped:
            proc.kill()  # the client went away: stop git at once
        await _finish(proc, stderr, errors, stopped=stopped)
    return response, bytes(keep or b"")


@routes.post(f"{REPO}/git-upload-pack", summary="Git smart HTTP fetch/clone", permission="project:read",
             project="path", anonymous=True, challenge='Basic realm="Corral"')
async def upload_pack(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    prefix = await _read_probe(request)
    if prefix == _PROBE:
        return _probe_answer("upload-pack")
    if prefix is None and request.headers.get("Content-Encoding"):
        # the first bytes before git's answer starts: a body not matching its Content-Encoding is a clean 400
        prefix = await request.content.readany()
    protocol = _protocol(request)
    if protocol and "version=2" in protocol and request.content_length is not None \
            and request.content_length <= _LS_REFS_REQUEST_LIMIT and not request.headers.get("Content-Encoding"):
        body = (prefix or b"") + await request.content.read()
        if body.startswith(_LS_REFS):  # listing the refs: git's answer is kept while they do not move
            try:
                answer = await kit(request).git.ls_refs(project.repo_path, protocol, body)
            except GitError:
                answer = None  # git refused the request: let it say why, as below
            if answer is not None:
                return web.Response(body=answer, headers={"Content-Type": "application/x-git-upload-pack-result",
                                                          "Cache-Control": "no-cache"})
        prefix = body
    response, _ = await _rpc(request, "upload-pack", project, prefix=prefix or b"")
    return response


@routes.post(f"{REPO}/git-receive-pack", summary="Git smart HTTP push (branch protection enforced)",
             permission="project:write", project="path", challenge='Basic realm="Corral"')
async def receive_pack(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    if project.archived:  # project:write was checked by the route declaration
        return _text(403, f"Corral: {project.full_name} is archived and read-only")
    prefix = await _read_probe(request)
    if prefix == _PROBE:
        return _probe_answer("receive-pack")
    rules, bypassed = await _push_policy(request, project)
    # the ref update commands come first in the body: with them, the hook runs only if a rule can refuse one
    head = await _read_commands(request, prefix or b"")
    updates, complete = parse_commands(head)
    # the push's intent is committed while git starts and reads the body; git gets the body's last bytes (and
    # so moves no ref) only after it (git_pushes)
    intent = asyncio.ensure_future(announce(request, project, updates, bypassed)) if updates else None
    recording: list[asyncio.Task[None]] = []

    def record(report: dict[str, bool] | None) -> Coroutine[Any, Any, None]:
        return record_moved(request, project, updates, report, bypassed, intent.result() if intent else None)

    def on_answer(answer: bytes) -> None:
        # git reports once the refs moved, then (unless Corral runs it later) ``gc --auto``: record meanwhile
        if not recording and (report := finished_report(head, answer)) is not None:
            recording.append(asyncio.create_task(record(report)))

    try:
        response, answer = await _rpc(request, "receive-pack", project, hook_rules(rules, updates, complete=complete),
                                      head, on_answer, gate=intent)
    except BaseException:
        # no record here: git may have moved nothing (the recovery then drops the intent after a day) or, cut
        # off after moving refs, the recovery records them; either way the intent is no longer this request's
        if intent is not None:
            if not intent.done():
                intent.cancel()  # announce() forgets an intent it did not finish writing
            elif not intent.cancelled() and intent.exception() is None:
                kit(request).pushes_in_flight.discard(intent.result().id)
        raise
    finally:
        if recording:  # the refs moved: the push is recorded even when the client went away
            await asyncio.shield(recording[0])
    if not recording:
        await record(report_status(head, answer))
    with contextlib.suppress(ConnectionResetError):  # a client gone meanwhile: the push is recorded all the same
        await response.write_eof()  # only after the push event and its audit row are committed
    if kit(request).maintenance is not None and head:  # git's gc --auto, now that the client has its answer
        kit(request).maintenance.request(project.repo_path)
    return response


def _policy_key(request: web.Request, project: Project) -> tuple[object, ...]:
    principal = principal_of(request)
    scopes = getattr(principal, "scopes", None)
    return ("push-policy", project.id, getattr(principal, "user_id", None), getattr(principal, "token_id", None),
            getattr(principal, "session_id", None), frozenset(scopes) if scopes is not None else None)


async def _push_policy(
    request: web.Request, project: Project, *, fresh: bool = False,
) -> tuple[list[PushRule], list[tuple[BranchProtection, str]]]:
    """The branch protection rules for this pusher (and the rules whose merge-request requirement they
    bypass). Discovery for a push reads them (``fresh``) while git advertises the refs; the pack request
    that follows on the same connection moments later uses that read (corral.entrypoints.web.git_sequence)."""
    k = kit(request)
    key = _policy_key(request, project)
    if not fresh and (kept := k.git_memo.get(request, key)) is not None:
        return kept
    protections = await k.protections.list(project)
    user_id = getattr(principal_of(request), "user_id", None)
    is_admin = any(p.bypass_admins and p.require_merge_request for p in protections) and await can(
        request, "project:admin", project)
    bypassed = [(p, why) for p in protections if (why := p.bypassed_by(user_id, is_admin=is_admin)) is not None]
    policy = (push_rules(protections, [p for p, _ in bypassed]), bypassed)
    k.git_memo.put(request, key, policy)
    return policy
