"""The bootstrap builds the shared parts once (typed fields, registered by type) and every domain uses those same
objects; a failing adapter or service constructor stops the start with its own error (no silent fallback)."""

from __future__ import annotations

import punq
import pytest

from corral.adapters.crypto import AesGcmKeyWrapper
from corral.core.clock import Clock
from corral.core.identity.access import Authorizer
from corral.core.identity.kit import IdentityServices
from corral.core.identity.ports import AuthzCache
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.outbox.relay import OutboxRelay
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.rotation import MasterKeyRotation
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints import bootstrap
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.platform import Platform, resolve_optional
from corral.entrypoints.web.project_access import ProjectsKit
from corral.entrypoints.web.security import WebAuth


async def test_the_memory_platform_shares_one_instance_of_each_shared_part(tmp_path):
    platform = await start_platform(Settings(profile="memory", data_dir=tmp_path))
    try:
        for key, field in [(Clock, platform.clock), (UnitOfWorkFactory, platform.uow_factory),
                           (ObjectStore, platform.objects), (AuthzCache, platform.authz_cache),
                           (OutboxRelay, platform.relay), (AesGcmKeyWrapper, platform.key_ring),
                           (Settings, platform.settings)]:
            assert platform.resolve(key) is field, key
        assert platform.pg_pool is None and platform.valkey is None  # the memory profile has neither

        ids = platform.resolve(IdentityServices)
        assert ids.authorizer is platform.authorizer is platform.resolve(Authorizer)
        assert ids.cache is platform.authz_cache and ids.uow_factory is platform.uow_factory
        kit = platform.resolve(ProjectsKit)
        assert kit.uow_factory is platform.uow_factory and kit.objects is platform.objects
        assert kit.clock is platform.clock
        assert ids.authorizer.implicit is not None  # projects gave ownership to the one authorizer
        assert platform.resolve(ObserveRuntime).clock is platform.clock
        assert platform.resolve(NotificationDispatcher).uow_factory is platform.uow_factory

        # one relay: notifications, merge requests and webhooks all consume from it, and one loop runs it
        consumers = [getattr(c, "__qualname__", "") for c in platform.relay.consumers]
        assert consumers == ["NotificationPlanner.fan_out", "MergeRequestService.on_push", "WebhookService.fan_out",
                             "PipelineTriggers.on_event", "wire_deploy.<locals>.wake_on_ops_push"]
        assert [loop.__name__ for loop in platform.background].count("outbox_relay") == 1

        # secrets read through identity's authorizer; master-key rotation covers TOTP and webhook secrets
        reader = platform.resolve(SecretReader)
        assert reader.authorizer._platform is platform
        rotation = platform.resolve(MasterKeyRotation)
        assert rotation.others is platform.key_rewraps
        assert sorted(type(r).__name__ for r in platform.key_rewraps) == ["TotpKeyRewrap", "WebhookKeyRewrap"]
    finally:
        await platform.aclose()


async def test_a_failing_adapter_stops_the_start_with_its_error(tmp_path, monkeypatch):
    def broken(platform: Platform) -> None:
        raise RuntimeError("object store unavailable")

    monkeypatch.setattr(bootstrap, "_memory_parts", broken)
    with pytest.raises(RuntimeError, match="object store unavailable"):
        await start_platform(Settings(profile="memory", data_dir=tmp_path))


async def test_a_failing_service_constructor_in_a_wiring_stops_the_start(tmp_path, monkeypatch):
    from corral.entrypoints import pipelines_wiring

    class Broken:
        def __init__(self) -> None:
            raise ValueError("parser misconfigured")

    monkeypatch.setattr(pipelines_wiring, "PyYamlPipelineFileParser", Broken)
    closed: list[bool] = []
    original = Platform.aclose

    async def aclose(self: Platform) -> None:
        closed.append(True)
        await original(self)

    monkeypatch.setattr(Platform, "aclose", aclose)
    with pytest.raises(ValueError, match="parser misconfigured"):
        await start_platform(Settings(profile="memory", data_dir=tmp_path))
    assert closed == [True]  # what was opened before the failure is closed


def test_resolve_optional_is_none_only_for_a_missing_registration() -> None:
    container = punq.Container()
    assert resolve_optional(container, WebAuth) is None

    def boom() -> WebAuth:
        raise RuntimeError("cannot build")

    container.register(WebAuth, factory=boom)
    with pytest.raises(RuntimeError, match="cannot build"):
        resolve_optional(container, WebAuth)
