"""The git smart HTTP, LFS and signed object routes declare their query, bodies and answers: what git and
git-lfs send is accepted, anything else in the query is a 400 naming it, and the document shows the binary
content types."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from corral.core.errors import InvalidInput
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.operation import parse_query
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routes.git_http import DiscoveryQuery
from corral.entrypoints.web.routes.lfs import VerifyQuery
from corral.entrypoints.web.routes.objects import SignedLinkQuery

DOC = build_openapi([s for t in ROUTE_TABLES for s in t.specs], server_url="http://x")


def test_discovery_takes_the_service_git_sends_and_nothing_else() -> None:
    assert parse_query(MultiDict(service="git-upload-pack"), DiscoveryQuery) == DiscoveryQuery("git-upload-pack")
    assert parse_query(MultiDict(), DiscoveryQuery) == DiscoveryQuery(None)  # the dumb protocol: a 403 later
    with pytest.raises(InvalidInput) as caught:
        parse_query(MultiDict(service="git-upload-pack", foo="1"), DiscoveryQuery)
    assert caught.value.field == "foo"


def test_verify_and_object_links_take_the_parameters_corral_puts_in_them() -> None:
    nonce = "ab" * 16
    assert parse_query(MultiDict(direct="1", upload=nonce), VerifyQuery) == VerifyQuery(1, nonce)
    with pytest.raises(InvalidInput) as caught:
        parse_query(MultiDict(direct="2"), VerifyQuery)
    assert caught.value.field == "direct"
    link = parse_query(MultiDict(expires="1700000000", signature="ff"), SignedLinkQuery)
    assert link == SignedLinkQuery("1700000000", "ff")
    with pytest.raises(InvalidInput):
        parse_query(MultiDict(expires="1", signature="ff", other="x"), SignedLinkQuery)


def test_the_document_shows_gits_content_types() -> None:
    refs = DOC["paths"]["/{owner}/{name}/info/refs"]["get"]
    assert set(refs["responses"]["200"]["content"]) == {"application/x-git-upload-pack-advertisement",
                                                         "application/x-git-receive-pack-advertisement"}
    assert [p["name"] for p in refs["parameters"] if p["in"] == "query"] == ["service"]
    push = DOC["paths"]["/{owner}/{name}/git-receive-pack"]["post"]
    assert list(push["requestBody"]["content"]) == ["application/x-git-receive-pack-request"]
    assert list(push["responses"]["200"]["content"]) == ["application/x-git-receive-pack-result"]
    batch = DOC["paths"]["/{owner}/{name}/info/lfs/objects/batch"]["post"]
    assert "application/vnd.git-lfs+json" in batch["requestBody"]["content"]
    assert list(batch["responses"]["200"]["content"]) == ["application/vnd.git-lfs+json"]
