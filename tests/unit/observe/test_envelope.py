import uuid

import pytest

from corral.core.observe.envelope import (
    ProjectRejected,
    UnknownProjects,
    level_from_severity,
    resolve_envelope,
    strip_envelope,
)
from corral.core.observe.model import Caller

PID = uuid.uuid4()
UID = uuid.uuid4()


def lookup(path):
    return {"acme/app": PID, "acme/none": None}.get(path, object())


def test_defaults_come_from_the_token():
    env = resolve_envelope({}, Caller(user_id=UID, default_project_id=PID), lookup)
    assert (env.service, env.project_id, env.user_id, env.session_id) == ("unknown_service", PID, UID, None)


def test_resource_keys_fill_the_envelope_and_records_override():
    other = uuid.uuid4()
    res = resolve_envelope(
        {
            "service.name": "api",
            "corral.project": "acme/app",
            "corral.session_id": "s1",
            "enduser.id": str(other),
        },
        Caller(user_id=UID),
        lookup,
    )
    assert (res.service, res.project_id, res.session_id, res.user_id) == ("api", PID, "s1", other)
    rec = resolve_envelope({"session.id": "s2", "x": 1}, Caller(), lookup, res)
    assert (rec.service, rec.session_id, rec.project_id) == ("api", "s2", PID)
    assert resolve_envelope({"x": 1}, Caller(), lookup, res) is res


def test_non_uuid_enduser_keeps_the_token_user():
    env = resolve_envelope({"enduser.id": "alice"}, Caller(user_id=UID), lookup)
    assert env.user_id == UID


def test_unknown_path_asks_for_resolution_and_missing_project_is_rejected():
    with pytest.raises(UnknownProjects) as exc:
        resolve_envelope({"corral.project": "acme/new"}, Caller(), lookup)
    assert exc.value.paths == {"acme/new"}
    with pytest.raises(ProjectRejected, match="names no project"):
        resolve_envelope({"corral.project": "acme/none"}, Caller(), lookup)
    with pytest.raises(ProjectRejected, match="not a UUID"):
        resolve_envelope({"corral.project_id": "nope"}, Caller(), lookup)


def test_restricted_token_only_writes_its_project():
    restricted = Caller(project_id=PID)
    assert resolve_envelope({}, restricted, lookup).project_id == PID
    assert resolve_envelope({"corral.project_id": str(PID)}, restricted, lookup).project_id == PID
    with pytest.raises(ProjectRejected, match="restricted"):
        resolve_envelope({"corral.project_id": str(uuid.uuid4())}, restricted, lookup)


def test_strip_envelope_removes_only_envelope_keys():
    assert strip_envelope({"service.name": "a", "corral.session_id": "s", "k": 1}) == {"k": 1}


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", "trace"),
        (5, "", "debug"),
        (9, "", "info"),
        (13, "", "warn"),
        (17, "", "error"),
        (21, "", "fatal"),
        (0, "WARNING", "warn"),
        (0, "Error", "error"),
        (0, "", "info"),
        (0, "weird", "info"),
    ],
)
def test_severity_mapping(number, text, level):
    assert level_from_severity(number, text) == level
