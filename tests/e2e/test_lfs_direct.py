"""Git LFS through signed object-store URLs: the real ``git lfs`` client uploads to and downloads from the
store directly (Corral's own signed links on the local store, presigned URLs on S3/SeaweedFS); ``verify``
comes to Corral, which checks size and SHA-256 and audits the upload."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from corral.adapters.localfs import LocalFsObjectStore
from tests.e2e.gitkit import git, start_corral, stop_corral, write
from tests.helpers import require_tool

pytestmark = pytest.mark.e2e

LFS_JSON = "application/vnd.git-lfs+json"


@pytest.fixture(params=["local", "s3"])
async def corral(request: pytest.FixtureRequest, tmp_path: Path):
    require_tool("git-lfs", "./dev test installs it")
    closers: list[Any] = []
    if request.param == "local":
        def objects(base: str) -> Any:
            return LocalFsObjectStore(tmp_path / "objects", signing_key=b"k" * 32, base_url=base)
    else:
        from corral.adapters.s3 import S3ObjectStore

        s3 = request.getfixturevalue("s3")
        bucket = request.getfixturevalue("s3_bucket")

        def objects(base: str) -> Any:
            store = S3ObjectStore(endpoint=s3.endpoint, bucket=bucket, access_key=s3.access_key,
                                  secret_key=s3.secret_key, region=s3.region)
            closers.append(store.aclose)
            return store
    c = await start_corral(tmp_path, objects=objects)
    yield c
    await stop_corral(c)
    for close in closers:
        await close()


async def _batch(c, url: str, token: str, operation: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": LFS_JSON, "Content-Type": LFS_JSON}
    async with aiohttp.ClientSession() as s, s.post(
        f"{url}/info/lfs/objects/batch", json={"operation": operation, "transfers": ["basic"], "objects": objects},
        headers=headers,
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json(content_type=None)


async def _media_project(corral) -> tuple[str, str]:
    """alice (an admin) and her new project alice/media: (alice's token, its clone URL)."""
    alice = await corral.user("alice", admin=True)
    async with aiohttp.ClientSession() as s, s.post(f"{corral.base}/api/v1/projects", json={"name": "media"},
                                                    headers={"Authorization": f"Bearer {alice}"}) as r:
        assert r.status == 201
    return alice, corral.url("alice/media")


async def _pushed_lfs_object(corral, tmp_path: Path, size: int) -> tuple[str, str, bytes, str, str]:
    """alice pushes a random ``size``-byte LFS file with real git lfs to a new project alice/media, cloned in
    ``tmp_path / "w"``; the object is in the store. Returns (alice's token, clone URL, bytes, oid, store key)."""
    alice, url = await _media_project(corral)
    project = await corral.kit.projects.get("alice", "media")
    work = tmp_path / "w"
    await git(tmp_path, "lfs", "install")
    await git(tmp_path, "clone", url, "w", token=alice)
    await git(work, "lfs", "track", "*.bin")
    blob = os.urandom(size)
    oid = hashlib.sha256(blob).hexdigest()
    write(work / "data.bin", blob)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "lfs")
    await git(work, "push", "origin", "main", token=alice)
    key = f"lfs/{project.id}/{oid[:2]}/{oid[2:4]}/{oid}"
    assert await corral.kit.objects.read(key) == blob
    return alice, url, blob, oid, key


async def test_git_lfs_talks_to_the_store_directly(corral, tmp_path: Path) -> None:
    alice, url, blob, oid, _ = await _pushed_lfs_object(corral, tmp_path, 700_000)
    uploads = [a.detail for a in corral.memory.audit if a.action == "lfs.upload"]
    assert uploads == [{"oid": oid, "size": len(blob), "via": "signed_url"}]
    await git(tmp_path, "clone", url, "c", token=alice)
    assert (tmp_path / "c" / "data.bin").read_bytes() == blob
    # the bytes never went through Corral's streaming LFS routes
    lfs_objects = f"/alice/media.git/info/lfs/objects/{oid}"
    assert not [r for r in corral.requests if r[1] == lfs_objects]
    assert ("POST", "/alice/media.git/info/lfs/verify") in corral.requests
    # the batch answer: signed hrefs with no Corral credentials attached, verify through Corral
    got = await _batch(corral, url, alice, "download", [{"oid": oid, "size": len(blob)}])
    action = got["objects"][0]["actions"]["download"]
    assert action["expires_in"] > 0 and "Authorization" not in action.get("header", {})
    if isinstance(corral.kit.objects, LocalFsObjectStore):
        assert action["href"].startswith(f"{corral.base}/api/v1/objects/lfs/")
    else:
        assert action["href"].startswith(corral.kit.objects.endpoint) and "X-Amz-Signature" in action["href"]
    async with aiohttp.ClientSession() as s, s.get(action["href"]) as r:
        assert r.status == 200 and await r.read() == blob


async def test_verify_refuses_content_that_does_not_hash_to_the_oid(corral) -> None:
    alice, url = await _media_project(corral)
    claimed = hashlib.sha256(b"the real thing").hexdigest()
    got = await _batch(corral, url, alice, "upload", [{"oid": claimed, "size": 14}])
    actions = got["objects"][0]["actions"]
    assert actions["upload"]["expires_in"] > 0 and "Authorization" not in actions["upload"].get("header", {})
    assert actions["verify"]["header"]["Authorization"] == f"Bearer {alice}"
    async with aiohttp.ClientSession() as s:
        async with s.put(actions["upload"]["href"], data=b"something else") as r:  # same size, other bytes
            assert r.status in (200, 201), await r.text()
        async with s.post(actions["verify"]["href"], json={"oid": claimed, "size": 14},
                          headers=actions["verify"]["header"]) as r:
            assert r.status == 422 and "does not hash" in (await r.json(content_type=None))["message"]
    project = await corral.kit.projects.get("alice", "media")
    assert not await corral.kit.objects.exists(f"lfs/{project.id}/{claimed[:2]}/{claimed[2:4]}/{claimed}")
    assert not [a for a in corral.memory.audit if a.action == "lfs.upload"]
    # a viewer may not verify (a write) and gets no upload links
    vic = await corral.user("vic", "viewer")
    async with aiohttp.ClientSession() as s, s.post(
        f"{url}/info/lfs/objects/batch", json={"operation": "upload", "objects": [{"oid": claimed, "size": 14}]},
        headers={"Authorization": f"Bearer {vic}", "Accept": LFS_JSON},
    ) as r:
        assert r.status == 403


async def test_a_verified_object_cannot_be_overwritten(corral, tmp_path: Path) -> None:
    """The attack: once an object was uploaded (real git lfs) and verified, a writer asked the batch API to
    upload the same oid with another size and got a signed link to the object's own key, and replaced its
    bytes. Now: no upload action for a stored oid (422 for a size mismatch), links name a staging key, and
    nothing reaches the object's key unless it hashes to the oid and the key is absent."""
    alice, url, blob, oid, key = await _pushed_lfs_object(corral, tmp_path, 200_000)
    project = await corral.kit.projects.get("alice", "media")

    same = (await _batch(corral, url, alice, "upload", [{"oid": oid, "size": len(blob)}]))["objects"][0]
    assert "actions" not in same and "error" not in same  # present: nothing to upload
    other = (await _batch(corral, url, alice, "upload", [{"oid": oid, "size": 5}]))["objects"][0]
    assert "actions" not in other and other["error"]["code"] == 422
    auth = {"Authorization": f"Bearer {alice}"}
    async with aiohttp.ClientSession() as s:
        # straight at Corral's streaming upload route: other bytes are refused, the same bytes change nothing
        async with s.put(f"{url}/info/lfs/objects/{oid}", data=b"evil", headers=auth) as r:
            assert r.status == 422
        async with s.put(f"{url}/info/lfs/objects/{oid}", data=blob, headers=auth) as r:
            assert r.status == 200
        # a link handed out before the object was stored (two uploaders racing): bad bytes never get through
        fresh = os.urandom(1000)
        fresh_oid = hashlib.sha256(fresh).hexdigest()
        fresh_key = f"lfs/{project.id}/{fresh_oid[:2]}/{fresh_oid[2:4]}/{fresh_oid}"
        first, second = [(await _batch(corral, url, alice, "upload", [{"oid": fresh_oid, "size": 1000}]))
                         ["objects"][0]["actions"] for _ in range(2)]
        assert "lfs-staging" in first["upload"]["href"] and fresh_oid[:2] + "/" not in first["upload"]["href"]
        async with s.put(first["upload"]["href"], data=fresh) as r:
            assert r.status in (200, 201)
        assert not await corral.kit.objects.exists(fresh_key)  # not visible before it was checked
        async with s.post(first["verify"]["href"], json={"oid": fresh_oid, "size": 1000},
                          headers=first["verify"]["header"]) as r:
            assert r.status == 200, await r.text()
        assert await corral.kit.objects.read(fresh_key) == fresh
        async with s.put(second["upload"]["href"], data=os.urandom(1000)) as r:  # same size, other bytes
            assert r.status in (200, 201)
        async with s.post(second["verify"]["href"], json={"oid": fresh_oid, "size": 1000},
                          headers=second["verify"]["header"]) as r:
            assert r.status == 422
        async with s.post(first["verify"]["href"], json={"oid": fresh_oid, "size": 1000},  # a retried verify
                          headers=first["verify"]["header"]) as r:
            assert r.status == 200
    assert await corral.kit.objects.read(fresh_key) == fresh
    assert await corral.kit.objects.read(key) == blob
    assert (await corral.kit.objects.list(f"lfs-staging/{project.id}/")).objects == []  # nothing left staged
    uploads = [(a.detail["oid"], a.detail["via"]) for a in corral.memory.audit if a.action == "lfs.upload"]
    assert uploads == [(oid, "signed_url"), (fresh_oid, "signed_url")]
    await git(tmp_path, "clone", url, "c", token=alice)  # the real client still gets the original bytes
    assert (tmp_path / "c" / "data.bin").read_bytes() == blob
