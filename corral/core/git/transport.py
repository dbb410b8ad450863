"""The GitTransport port: what git's smart HTTP protocol needs from the repositories' side.

The web layer authenticates, authorises, reads the request and writes the response; everything that talks to
git (ref advertisements, the pack programs in stateless-rpc mode, the hook that enforces branch protection)
is behind this port. Adapters map their failures here: a repository that is not there is ``NotFound``, a path
that would leave the repositories root ``InvalidInput``, git that cannot be started ``Unavailable``, and git
failing on its own ``GitProtocolError`` (a server-side fault, never the caller's).

The byte streams are the pack programs' own: ``PackExchange.output`` and ``PackExchange.input`` are read and
written by the caller without copies or wrappers in between (this path is benchmarked: tests/bench/bench_git.py).
"""

from __future__ import annotations

from typing import Literal, Protocol

from corral.core.git.model import PushRule
from corral.core.git.ports import GitRepositories

__all__ = ["GitProtocolError", "GitServer", "GitService", "GitTransport", "PackExchange", "PackInput",
           "PackOutput"]

GitService = Literal["upload-pack", "receive-pack"]


class GitProtocolError(Exception):
    """git failed unexpectedly while serving a request (it exited non-zero, or stopped reading its input).

    Not a ``CorralError``: nothing the caller sent is at fault, so it is answered as a 500 and logged, unless
    the caller has a fallback (e.g. letting git itself answer the request)."""


class PackOutput(Protocol):
    """What a pack program writes (its stdout)."""

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, as soon as some are there; ``b""`` once git has closed its output."""
        ...


class PackInput(Protocol):
    """The request body's way into a pack program (its stdin)."""

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; returns when git has room for the last byte (a slow git holds the writer
        back, never memory). GitProtocolError: git stopped reading (it answers with an error of its own)."""
        ...

    def close(self) -> None:
        """End git's input (at once, or right after a write still in flight returns)."""
        ...


class PackExchange(Protocol):
    """One pack program run for one smart HTTP exchange."""

    @property
    def output(self) -> PackOutput:
        """git's answer, to be streamed to the client."""
        ...

    @property
    def input(self) -> PackInput | None:
        """Where the request body goes; None for a ref advertisement (it reads nothing)."""
        ...

    async def finish(self, *, abort: bool = False) -> None:
        """Wait for git to exit (30 s at most, then it is killed) and log its failure. ``abort``: the exchange
        is given up (the client went away): git is stopped at once if it still runs, and that is no failure."""
        ...


class GitTransport(Protocol):
    """The repositories' side of git's smart HTTP protocol (``repo``: a path under the repositories root).

    Each method raises NotFound for a repository that does not exist, InvalidInput for a path that would leave
    the root, Unavailable when git cannot be started and GitProtocolError when git fails on its own.
    """

    async def receive_advertisement(self, repo: str) -> bytes | None:
        """What ``git receive-pack --stateless-rpc --advertise-refs`` writes (protocol v0/v1, without the smart
        HTTP preamble), produced without starting git; None when git must answer itself (``open_exchange``)."""
        ...

    async def upload_v2_advertisement(self, repo: str, protocol: str) -> bytes:
        """upload-pack's protocol v2 discovery answer (capabilities only, no refs), kept while the
        repository's configuration stays the same; ``protocol``: the client's ``Git-Protocol`` header."""
        ...

    async def ls_refs(self, repo: str, protocol: str, request: bytes) -> bytes | None:
        """git's answer to a whole protocol v2 ``command=ls-refs`` request body, kept while the refs, HEAD and
        configuration stay the same; None when the refs cannot be read here (run the request as usual)."""
        ...

    async def open_exchange(
        self, repo: str, service: GitService, *, advertise: bool, protocol: str | None,
        push_rules: list[PushRule] | tuple[PushRule, ...] = (), pusher: str = "", auto_gc: bool = True,
    ) -> PackExchange:
        """Start ``git upload-pack`` or ``git receive-pack`` in stateless-rpc mode for one exchange.

        ``advertise``: list the refs (discovery; the exchange has no input). ``protocol``: the client's
        ``Git-Protocol`` header (``GIT_PROTOCOL``). receive-pack only: ``push_rules`` are enforced by the
        pre-receive hook, whose refusal reaches the client as ``remote: ...`` lines (no rules: no hook runs);
        ``pusher`` names the committer of what git writes; ``auto_gc=False``: git skips its own maintenance
        (the caller runs it after the response). InvalidInput for another service.
        """
        ...


class GitServer(GitRepositories, GitTransport, Protocol):
    """Repositories that also serve git's smart HTTP protocol (the web layer's ``ProjectsKit.git``)."""

