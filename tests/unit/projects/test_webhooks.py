"""Webhook configuration, fan-out, signed delivery, retries and redelivery on fakes."""

from __future__ import annotations

import hashlib
import hmac
import json

import attrs
import pytest

from corral.core.errors import InvalidInput
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.projects.commands import NewIssue, NewProject, NewWebhook, WebhookChanges
from corral.core.projects.issues import IssueService
from corral.core.projects.model import WEBHOOK_EVENTS, DeliveryStatus, event_for_topic
from corral.core.projects.payloads import webhook_json
from corral.core.projects.service import ProjectService
from corral.core.projects.webhook_seal import WebhookKeyRewrap, WebhookSecretSealer, seal_plaintext_webhook_secrets
from corral.core.projects.webhooks import WebhookService
from corral.core.secrets.model import SecretUndecryptable
from corral.fakes.secrets import FakeCipher, FakeKeyWrapper


@pytest.fixture
def sealer() -> WebhookSecretSealer:
    return WebhookSecretSealer(FakeCipher(), FakeKeyWrapper(b"k" * 32))


@pytest.fixture
def hooks(world, transport, clock, sealer) -> WebhookService:
    return WebhookService(world, transport, clock, retry_base_seconds=10, max_attempts=3, sealer=sealer)


@pytest.fixture
async def project(world, repos, clock, alice):
    return await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))


async def _relay(world, hooks) -> None:
    """What the outbox relay does: hand each event to the webhook fan-out in a unit of work."""
    async with world() as uow:
        events = await uow.outbox.claim(1000)
        for event in events:
            await hooks.fan_out(uow, event)
        await uow.outbox.mark_processed([e.id for e in events])
        await uow.commit()


def test_topics_map_to_events_exactly() -> None:
    assert event_for_topic(topics.PUSH) == "push"
    assert event_for_topic(topics.PIPELINE) == "pipeline"
    assert event_for_topic(topics.DEPLOYMENT) == "deployment"
    # no prefix matching: notification topics and look-alikes are not webhook events
    for topic in (topics.MR_MERGED, topics.BUILD_FAILED, topics.DEPLOY_STATUS, "deployment.promoted", "pipelines",
                  "push.mirror", "issue_x", "user.created"):
        assert event_for_topic(topic) is None, topic
    assert set(WEBHOOK_EVENTS) == set(topics.WEBHOOK_EVENT_OF_TOPIC.values())


async def test_pipeline_and_deployment_events_reach_their_subscribers(hooks, world, project, alice, transport) -> None:
    ci = await hooks.create(alice, project, NewWebhook(url="http://example.com/ci", events=["pipeline"]))
    cd = await hooks.create(alice, project, NewWebhook(url="http://example.com/cd", events=["deployment"]))
    async with world() as uow:
        await uow.outbox.add(topics.PIPELINE, {"action": "completed", "pipeline": {"number": 7, "status": "success"}},
                             project_id=project.id)
        await uow.outbox.add(topics.DEPLOYMENT, {"action": "succeeded", "deployment": {"environment": "prod"}},
                             project_id=project.id)
        await uow.outbox.add(topics.BUILD_FAILED, {"pipeline": 8}, project_id=project.id)
        await uow.outbox.add(topics.DEPLOY_STATUS, {"deployment": 9}, project_id=project.id)
        await uow.commit()
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 2
    sent = {p.url: (p.headers["X-Corral-Event"], p.headers["X-GitHub-Event"], json.loads(p.body))
            for p in transport.posts}
    assert sent["http://example.com/ci"][:2] == ("pipeline", "workflow_run")
    assert sent["http://example.com/ci"][2]["pipeline"]["number"] == 7
    assert sent["http://example.com/cd"][:2] == ("deployment", "deployment")
    assert [d.event for d in (await hooks.deliveries(project, ci.id)).items] == ["pipeline"]
    assert [d.event for d in (await hooks.deliveries(project, cd.id)).items] == ["deployment"]


async def test_create_validates(hooks, project, alice, transport) -> None:
    for spec, field in [
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://127.0.0.1/hook"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "http://example.com", "events": ["nope"]}, "events"),
        ({"url": "http://example.com", "events": []}, "events"),
    ]:
        with pytest.raises(InvalidInput) as err:
            await hooks.create(alice, project, NewWebhook(**spec))
        assert err.value.field == field
    assert await hooks.list(project) == []


async def test_signed_delivery(hooks, world, clock, users, project, alice, transport) -> None:
    hook = await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["issue"], secret="s3"))
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 1
    post = transport.posts[0]
    expected = hmac.new(b"s3", post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-Gitea-Signature"] == expected
    assert post.headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert post.headers["X-Corral-Event"] == "issue"
    assert post.headers["X-GitHub-Event"] == "issues"
    body = json.loads(post.body)
    assert body["event"] == "issue"
    assert body["issue"]["title"] == "bug"
    assert body["action"] == "opened"
    log = (await hooks.deliveries(project, hook.id)).items
    assert log[0].status is DeliveryStatus.DELIVERED
    assert log[0].status_code == 200
    assert post.headers["X-Corral-Delivery"] == str(log[0].id)
    assert await hooks.deliver_due() == 0


async def test_unsubscribed_and_inactive_hooks_get_nothing(hooks, world, clock, users, project, alice) -> None:
    await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["push"]))
    await hooks.create(alice, project, NewWebhook(url="http://example.com/i", events=["issue"], active=False))
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 0


async def test_retries_with_backoff_then_fail_then_redeliver(hooks, world, clock, users, project, alice,
                                                             transport) -> None:
    hook = await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["issue"]))
    transport.script = [500, 0, 503]
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 1
    (d,) = (await hooks.deliveries(project, hook.id)).items
    assert d.status is DeliveryStatus.PENDING
    assert d.attempts == 1
    assert d.status_code == 500
    clock.advance(9)
    assert await hooks.deliver_due() == 0  # backoff: 10 s
    clock.advance(1)
    assert await hooks.deliver_due() == 1
    clock.advance(19)
    assert await hooks.deliver_due() == 0  # backoff: 20 s
    clock.advance(1)
    assert await hooks.deliver_due() == 1
    (d,) = (await hooks.deliveries(project, hook.id)).items
    assert d.status is DeliveryStatus.FAILED
    assert d.attempts == 3
    assert d.status_code == 503
    assert len({p.headers["X-Corral-Delivery"] for p in transport.posts}) == 1
    again = await hooks.redeliver(alice, project, hook.id, d.id)
    assert await hooks.deliver_due() == 1
    latest = (await hooks.deliveries(project, hook.id)).items[0]
    assert latest.id == again.id
    assert latest.status is DeliveryStatus.DELIVERED
    assert latest.redelivery_of == d.id
    assert transport.posts[-1].body == transport.posts[0].body


async def test_a_push_delivery_carries_its_commits_read_once(world, transport, clock, repos, project, alice,
                                                             monkeypatch) -> None:
    from corral.core.git.model import RefUpdate
    from corral.core.git.service import record_push

    hooks = WebhookService(world, transport, clock, retry_base_seconds=10, max_attempts=3, repos=repos)
    first = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    second = repos.commit(project.repo_path, "main", {"a": b"2"}, "two")
    await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["push"]))
    await hooks.create(alice, project, NewWebhook(url="http://example.com/i", events=["push"]))
    reads: list[str] = []
    original = type(repos).commits_between

    async def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(args[2])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(type(repos), "commits_between", counting)
    async with world() as uow:
        await record_push(uow, project, alice, [RefUpdate(first, second, "refs/heads/main")], clock=clock)
        await uow.commit()
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 2
    bodies = [json.loads(post.body) for post in transport.posts]
    assert [[c["message"] for c in b["commits"]] for b in bodies] == [["two"], ["two"]]
    assert bodies[0]["head_commit"]["sha"] == second and bodies[0]["after"] == second
    assert reads == [second]  # once for both webhooks


async def test_secret_is_sealed_at_rest_bound_to_its_webhook(hooks, world, project, alice, sealer) -> None:
    hook = await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["issue"],
                                               secret="s3cr3t-value"))
    stored = world.data.webhooks[hook.id]
    assert stored.secret is not None and b"s3cr3t-value" not in stored.secret.ciphertext
    assert "s3cr3t-value" not in repr(stored)
    assert sealer.open(hook.id, stored.secret) == "s3cr3t-value"
    other = await hooks.create(alice, project, NewWebhook(url="http://example.com/i", events=["issue"]))
    with pytest.raises(SecretUndecryptable):  # copied onto another webhook's row, it does not open
        sealer.open(other.id, stored.secret)
    updated = await hooks.update(alice, project, hook.id, WebhookChanges(secret="next"))
    assert sealer.open(hook.id, world.data.webhooks[hook.id].secret) == "next"
    assert updated.secret != stored.secret
    assert "secret" not in webhook_json(updated) and webhook_json(updated)["has_secret"] is True
    assert "next" not in json.dumps(webhook_json(updated))


async def test_plaintext_secrets_are_sealed_once_at_start_and_delivered_signed(
    hooks, world, clock, users, project, alice, transport, sealer,
) -> None:
    hook = await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["issue"]))
    legacy = attrs.evolve(hook, id=uuid7(), url="http://example.com/legacy")
    async with world() as uow:
        uow.webhooks.add_plaintext(legacy, "old-plain")
        await uow.commit()
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    await hooks.deliver_due()
    [d] = [d for d in world.data.deliveries.values() if d.webhook_id == legacy.id]
    assert d.status is DeliveryStatus.PENDING and "not encrypted yet" in d.error  # never sent unsigned
    assert [p.url for p in transport.posts] == ["http://example.com/h"]
    assert await seal_plaintext_webhook_secrets(world, sealer, clock) == 1
    assert await seal_plaintext_webhook_secrets(world, sealer, clock) == 0  # idempotent
    assert world.data.webhook_plaintext == {}
    assert sealer.open(legacy.id, world.data.webhooks[legacy.id].secret) == "old-plain"
    assert any(a.action == "webhook.encrypt" for a in world.audit)
    clock.advance(3600)
    await hooks.deliver_due()
    post = transport.posts[-1]
    assert post.url == "http://example.com/legacy"
    assert post.headers["X-Gitea-Signature"] == hmac.new(b"old-plain", post.body, hashlib.sha256).hexdigest()


async def test_master_key_rotation_rewraps_webhook_secrets(hooks, world, project, alice) -> None:
    old, new = b"o" * 32, b"n" * 32
    hooks.sealer = WebhookSecretSealer(FakeCipher(), FakeKeyWrapper(old))
    hook = await hooks.create(alice, project, NewWebhook(url="http://example.com/h", events=["push"], secret="x"))
    rotated = WebhookSecretSealer(FakeCipher(), FakeKeyWrapper(new, old))
    rewrap = WebhookKeyRewrap(rotated)
    async with world() as uow:
        counts = await rewrap.count_by_key(uow)
        assert list(counts.values()) == [1] and rotated.keys.current_key_id not in counts
        assert await rewrap.rewrap_batch(uow, 10) == (1, set(counts))
        await uow.commit()
    async with world() as uow:
        assert await rewrap.count_by_key(uow) == {rotated.keys.current_key_id: 1}
        assert await rewrap.rewrap_batch(uow, 10) == (0, set())
    sealed = world.data.webhooks[hook.id].secret
    assert WebhookSecretSealer(FakeCipher(), FakeKeyWrapper(new)).open(hook.id, sealed) == "x"
