"""Receive-pack command parsing, push rules and push events."""

from __future__ import annotations

from corral.core.git.model import ZERO_SHA, PushRule, RefUpdate
from corral.core.git.service import hook_rules, parse_commands, push_history, push_rules, record_push
from corral.core.projects.commands import NewProject
from corral.core.projects.model import BranchProtection
from corral.core.projects.service import ProjectService


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def test_parse_commands() -> None:
    a, b = "a" * 40, "b" * 40
    body = pkt(f"{a} {b} refs/heads/main\x00report-status side-band-64k\n".encode())
    body += pkt(f"{ZERO_SHA} {b} refs/heads/new\n".encode()) + b"0000PACK...."
    updates, complete = parse_commands(body)
    assert complete
    assert updates == [RefUpdate(a, b, "refs/heads/main"), RefUpdate(ZERO_SHA, b, "refs/heads/new")]
    assert updates[1].is_create
    assert updates[0].branch == "main"
    partial, complete = parse_commands(body[:30])
    assert not complete
    assert partial == []


def test_hook_runs_only_when_a_rule_can_refuse_a_pushed_branch() -> None:
    a, b = "a" * 40, "b" * 40
    rules = [PushRule("main"), PushRule("release/*", allow_force_push=True)]
    feature = [RefUpdate(a, b, "refs/heads/feature/x"), RefUpdate(ZERO_SHA, b, "refs/tags/main")]
    assert hook_rules(rules, feature, complete=True) == []  # a tag named like a branch rule is not a branch
    assert hook_rules(rules, [*feature, RefUpdate(a, ZERO_SHA, "refs/heads/main")], complete=True) == rules
    assert hook_rules(rules, [RefUpdate(a, b, "refs/heads/release/1.0")], complete=True) == rules
    assert hook_rules(rules, feature, complete=False) == rules  # commands cut short: every rule stays
    assert hook_rules([], feature, complete=True) == []
    # the hook matches with the shell's case: where fnmatch could read a pattern differently, keep the hook
    for odd in (PushRule("[!f]*"), PushRule("feat\\ure")):
        assert hook_rules([odd], feature, complete=True) == [odd]


def test_push_rules_from_protections(clock) -> None:
    import uuid

    rule = BranchProtection(uuid.uuid4(), uuid.uuid4(), "main", clock.now(), allow_deletion=True,
                            require_merge_request=True)
    (r,) = push_rules([rule])
    assert (r.pattern, r.allow_force_push, r.allow_deletion, r.require_merge_request) == ("main", False, True, True)


async def test_record_push_event(world, repos, clock, alice) -> None:
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    first = repos.commit(p.repo_path, "main", {"a": b"1"}, "one")
    second = repos.commit(p.repo_path, "main", {"a": b"2"}, "two")
    async with world() as uow:
        await record_push(uow, p, alice, [RefUpdate(first, second, "refs/heads/main"),
                                                 RefUpdate(first, ZERO_SHA, "refs/heads/gone")])
        await uow.commit()
    main, gone = [e.payload for e in world.events if e.topic == "push"]
    assert "commits" not in main  # read by the consumers that need them, not while the push waits
    assert main["pusher"]["name"] == "alice"
    assert gone["deleted"]
    history = await push_history(repos, p, main)
    assert [c["message"] for c in history["commits"]] == ["two"] and history["head_commit"]["sha"] == second
    assert await push_history(repos, p, gone) == {"commits": [], "head_commit": None}
    created = {**main, "created": True, "before": ZERO_SHA}
    assert [c["message"] for c in (await push_history(repos, p, created))["commits"]] == ["two", "one"]


def test_report_status_plain_and_sideband() -> None:
    from corral.core.git.service import report_status

    a, b = "a" * 40, "b" * 40
    head = pkt(f"{a} {b} refs/heads/main\x00report-status side-band-64k\n".encode())
    head += pkt(f"{a} {b} refs/heads/dev\n".encode()) + b"0000"
    inner = pkt(b"unpack ok\n") + pkt(b"ok refs/heads/main\n") + pkt(b"ng refs/heads/dev pre-receive hook declined\n")
    inner += b"0000"
    banded = pkt(b"\x02Resolving deltas\n") + pkt(b"\x01" + inner) + b"0000"
    assert report_status(head, banded) == {"refs/heads/main": True, "refs/heads/dev": False}
    plain_head = pkt(f"{a} {b} refs/heads/main\x00report-status\n".encode()) + b"0000"
    assert report_status(plain_head, inner) == {"refs/heads/main": True, "refs/heads/dev": False}
    no_report = pkt(f"{a} {b} refs/heads/main\x00side-band-64k\n".encode()) + b"0000"
    assert report_status(no_report, banded) is None
    assert report_status(head, b"garbage") is None


def test_finished_report_waits_for_the_closing_flush() -> None:
    from corral.core.git.service import finished_report

    a, b = "a" * 40, "b" * 40
    head = pkt(f"{a} {b} refs/heads/main\x00report-status side-band-64k\n".encode()) + b"0000"
    inner = pkt(b"unpack ok\n") + pkt(b"ok refs/heads/main\n") + b"0000"
    banded = pkt(b"\x01" + inner)
    # the report so far: its closing flush has not arrived (a partial packet, or a report split in two)
    assert finished_report(head, banded[:-3]) is None
    assert finished_report(head, pkt(b"\x01" + inner[:-4])) is None
    # complete: recorded while git still runs gc --auto (the answer's own final flush comes later)
    assert finished_report(head, banded) == {"refs/heads/main": True}
    assert finished_report(head, pkt(b"\x01" + inner[:-4]) + pkt(b"\x01" + b"0000")) == {"refs/heads/main": True}
    plain = pkt(f"{a} {b} refs/heads/main\x00report-status\n".encode()) + b"0000"
    assert finished_report(plain, inner[:-4]) is None
    assert finished_report(plain, inner) == {"refs/heads/main": True}
    no_report = pkt(f"{a} {b} refs/heads/main\x00side-band-64k\n".encode()) + b"0000"
    assert finished_report(no_report, banded) is None
