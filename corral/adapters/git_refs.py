"""receive-pack's ref advertisement, written without starting git.

A push over smart HTTP begins with ``GET info/refs?service=git-receive-pack``; git answers it by starting
``git receive-pack --advertise-refs``, whose whole work is listing the refs. Here the refs are read from the
repository's files (loose refs under ``refs/``, then ``packed-refs``, exactly the two places git's files
backend keeps them) and the lines are written as git writes them; the capability list is the one this
machine's git itself advertises (asked once per process). Anything this reader does not model (alternates,
hidden refs, another object format or ref storage, a protocol version request) makes it answer None and
the caller starts git as before. tests/integration/test_git_refs.py compares the bytes with git's.

The advertisement is advisory: receive-pack moves a ref only if it still has the old value the client
sends, so a ref that moves between this read and the push is refused by git, never overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["advertisement", "capabilities_from", "read_refs", "refs_state"]

ZERO = "0" * 40
_SHA = re.compile(rb"^[0-9a-f]{40}$")
# git's check_refname_format, enough to skip what git skips: lock files, dot-components, forbidden bytes
_BAD_COMPONENT = re.compile(r"(^\.|\.lock$|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|^$)")
# repository configuration this reader does not model (matched case-insensitively in .git/config)
_UNMODELLED_CONFIG = ("[receive", "[transfer", "hiderefs", "[extensions", "refstorage", "objectformat")


def _valid(name: str) -> bool:
    return name.startswith("refs/") and not name.endswith("/") and not any(
        _BAD_COMPONENT.search(part) for part in name.split("/")
    )


def _loose(repo: Path) -> dict[str, bytes]:
    """Loose refs: name -> file content (a SHA or ``ref: target``); files that vanish while read are skipped."""
    found: dict[str, bytes] = {}
    base = repo / "refs"
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, repo).replace(os.sep, "/")
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            name = f"{rel}/{filename}"
            if not _valid(name):
                continue
            try:
                with open(os.path.join(dirpath, filename), "rb") as f:
                    found[name] = f.read(4096).strip()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue  # packed meanwhile (it is in packed-refs, read after this) or deleted
    return found


def _packed(repo: Path) -> dict[str, str]:
    try:
        data = (repo / "packed-refs").read_bytes()
    except FileNotFoundError:
        return {}
    refs: dict[str, str] = {}
    for line in data.splitlines():
        if not line or line[:1] in (b"#", b"^"):
            continue
        sha, _, name = line.partition(b" ")
        if _SHA.match(sha):
            text = name.decode("utf-8", "surrogateescape")
            if _valid(text):
                refs[text] = sha.decode()
    return refs


def read_refs(repo: Path) -> list[tuple[str, str]] | None:
    """(name, sha) of every ref under ``refs/``, sorted by name as git sorts them; None when a loose ref is
    symbolic or broken (git resolves or skips those; the caller lets git answer).

    Loose refs are read before ``packed-refs``: a concurrent ``pack-refs`` writes the packed file before it
    deletes the loose one, so a ref is found in one of the two.
    """
    loose = _loose(repo)
    refs = _packed(repo)
    for name, value in loose.items():
        if not _SHA.match(value):
            return None
        refs[name] = value.decode()  # a loose ref overrides its packed value
    return sorted(refs.items(), key=lambda ref: ref[0].encode("utf-8", "surrogateescape"))


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def _config(repo: Path) -> bytes | None:
    """The repository's config when ``read_refs`` sees what git would list for it; None otherwise."""
    if (repo / "objects" / "info" / "alternates").exists() or (repo / "reftable").exists():
        return None
    try:
        config = (repo / "config").read_bytes()
    except FileNotFoundError:
        return None
    lowered = config.decode("utf-8", "replace").lower()
    return None if any(word in lowered for word in _UNMODELLED_CONFIG) else config


def modelled(repo: Path) -> bool:
    """Whether ``read_refs`` sees what git would advertise for this repository."""
    return _config(repo) is not None


def advertisement(repo: Path, capabilities: bytes) -> bytes | None:
    """What ``git receive-pack --stateless-rpc --advertise-refs`` writes for ``repo`` (protocol v0), or None
    when the repository has something this reader does not model."""
    refs = read_refs(repo) if modelled(repo) else None
    if refs is None:
        return None
    lines = []
    if not refs:
        lines.append(_pkt(f"{ZERO} capabilities^{{}}".encode() + b"\x00" + capabilities + b"\n"))
    for i, (name, sha) in enumerate(refs):
        line = f"{sha} {name}".encode("utf-8", "surrogateescape")
        lines.append(_pkt(line + (b"\x00" + capabilities if i == 0 else b"") + b"\n"))
    lines.append(b"0000")
    return b"".join(lines)


def capabilities_from(advertised: bytes) -> bytes | None:
    """The capability list of a v0 advertisement written by git (the text after NUL on its first line)."""
    if len(advertised) < 4:
        return None
    try:
        size = int(advertised[:4], 16)
    except ValueError:
        return None
    first = advertised[4:size]
    _, nul, caps = first.partition(b"\x00")
    return caps.rstrip(b"\n") if nul else None


def refs_state(repo: Path) -> tuple[object, ...] | None:
    """Everything a protocol v2 ``ls-refs`` answer depends on besides the request and the git binary: the
    refs, HEAD and the configuration (hidden refs, unborn); None when ``read_refs`` cannot see the refs."""
    config = _config(repo)
    refs = read_refs(repo) if config is not None else None
    if refs is None:
        return None
    try:
        head = (repo / "HEAD").read_bytes()
    except OSError:
        return None
    return tuple(refs), head, config
