"""Real-world Woodpecker files are accepted and turned into the model; broken ones are rejected with every
error, each with its file, line and key path."""

from __future__ import annotations

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines import (
    FailurePolicy,
    SecretRef,
    SourceFile,
    load_definition,
    plugin_environment,
    step_environment,
)

PARSER = PyYamlPipelineFileParser()


def load(text: str, path: str = ".woodpecker.yaml", **kw):
    return load_definition([SourceFile(path, text)], PARSER, **kw)


def errors(text: str, path: str = ".woodpecker.yaml") -> list[str]:
    d = load(text, path)
    assert not d.valid
    return [str(e) for e in d.errors]


GO = """\
when:
  - event: [push, pull_request]
    branch: main
  - event: tag

steps:
  - name: lint
    image: golangci/golangci-lint:v1.59
    commands:
      - golangci-lint run
  - name: test
    image: golang:1.22
    environment:
      CGO_ENABLED: 0
      GOFLAGS: -mod=readonly
    commands: go test -race ./...
  - name: build
    image: golang:1.22
    commands:
      - go build -o bin/app ./cmd/app
    when:
      event: tag
"""


def test_go_pipeline_runs_in_file_order():
    d = load(GO)
    assert d.valid, d.errors
    (w,) = d.workflows
    assert w.name == "woodpecker" and [s.name for s in w.steps] == ["lint", "test", "build"]
    assert w.dependencies == {"lint": (), "test": ("lint",), "build": ("test",)}
    test = w.step("test")
    assert test.commands == ("go test -race ./...",)
    assert step_environment(test, lambda n: "") == {"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    assert len(w.when.conditions) == 2 and w.when.conditions[0].branch.include == ("main",)
    assert w.step("lint").line == 7


NODE_WITH_SERVICES_AND_PLUGINS = """\
services:
  postgres:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: test
    ports: [5432]

steps:
  install:
    image: node:20
    commands:
      - npm ci
    cache:
      key: npm-${CI_COMMIT_BRANCH}
      paths: [node_modules]
  test:
    image: node:20
    depends_on: [install]
    environment:
      DATABASE_URL: postgres://postgres:test@postgres/postgres
    commands: [npm test]
    timeout: 15m
    artifacts:
      paths: [coverage/**]
      expire_in: 7d
  lint:
    image: node:20
    depends_on: [install]
    commands: [npm run lint]
    failure: ignore
  publish:
    image: woodpeckerci/plugin-docker-buildx:4
    depends_on: [test, lint]
    settings:
      repo: registry.example.org/app
      tags: [latest, "${CI_COMMIT_SHA}"]
      password:
        from_secret: registry_password
      build_args:
        NODE_ENV: production
      dry-run: false
    privileged: true
    when:
      branch: main
      event: push
  notify:
    image: alpine
    commands: [echo failed]
    when:
      status: [failure]
"""


def test_node_pipeline_with_services_plugins_and_extensions():
    d = load(NODE_WITH_SERVICES_AND_PLUGINS, ".woodpecker/ci.yml")
    assert d.valid, d.errors
    (w,) = d.workflows
    assert w.name == "ci"
    assert [s.name for s in w.services] == ["postgres"]
    assert dict(w.services[0].container_options) == {"ports": [5432]}
    # once a step has depends_on, steps without it have no dependencies
    assert w.dependencies == {"install": (), "test": ("install",), "lint": ("install",),
                              "publish": ("test", "lint"), "notify": ()}
    install, test, lint, publish, notify = w.steps
    assert install.cache is not None and install.cache.paths == ("node_modules",)
    assert test.timeout_seconds == 900
    assert test.artifacts is not None and test.artifacts.expire_in_seconds == 7 * 86400
    assert lint.failure is FailurePolicy.IGNORE
    assert publish.is_plugin and publish.secrets() == {"registry_password"}
    assert dict(publish.container_options) == {"privileged": True}
    env = plugin_environment(publish, lambda name: f"<{name}>")
    assert env == {"PLUGIN_REPO": "registry.example.org/app", "PLUGIN_TAGS": "latest,${CI_COMMIT_SHA}",
                   "PLUGIN_PASSWORD": "<registry_password>", "PLUGIN_BUILD_ARGS": '{"NODE_ENV":"production"}',
                   "PLUGIN_DRY_RUN": "false"}
    assert notify.when.runs_on_failure and not notify.when.runs_on_success
    assert not install.when.runs_on_failure and install.when.runs_on_success


PYTHON_MATRIX = """\
matrix:
  include:
    - PYTHON: "3.11"
      DB: postgres
    - PYTHON: "3.12"
      DB: sqlite

steps:
  test:
    image: python:${PYTHON}
    environment:
      DB: ${DB}
    commands:
      - pip install -e .[dev]
      - pytest
    when:
      matrix:
        DB: postgres
"""


def test_matrix_include_is_substituted_per_combination():
    d = load(PYTHON_MATRIX, ".woodpecker/test.yaml")
    assert d.valid, d.errors
    images = [(w.axis, w.steps[0].image) for w in d.workflows]
    assert images == [((("PYTHON", "3.11"), ("DB", "postgres")), "python:3.11"),
                      ((("PYTHON", "3.12"), ("DB", "sqlite")), "python:3.12")]
    assert d.workflows[1].display_name == "test (PYTHON=3.12, DB=sqlite)"


def test_matrix_axes_make_the_cartesian_product():
    text = "matrix:\n  GO: ['1.21', '1.22']\n  OS: [linux, darwin]\nsteps:\n  b:\n    image: golang:${GO}\n" \
           "    commands:\n      - echo $${HOME} ${OS}\n"
    d = load(text)
    assert d.valid, d.errors
    assert [dict(w.axis) for w in d.workflows] == [{"GO": "1.21", "OS": "linux"}, {"GO": "1.21", "OS": "darwin"},
                                                   {"GO": "1.22", "OS": "linux"}, {"GO": "1.22", "OS": "darwin"}]
    assert d.workflows[1].steps[0].commands == ("echo ${HOME} darwin",)


ANCHORS = """\
variables:
  - &go_image golang:1.22
  - &go_env
    GOPATH: /go
    GOCACHE: /go/cache
  - &prepare
    - go mod download
    - go generate ./...

clone:
  git:
    image: woodpeckerci/plugin-git
    settings:
      depth: 50
      lfs: false

workspace:
  base: /go
  path: src/example.org/app

labels:
  platform: linux/amd64

steps:
  build:
    image: *go_image
    environment:
      <<: *go_env
      CGO_ENABLED: "0"
    commands:
      - <<: *prepare
      - go build ./...
"""


def test_anchors_merge_keys_clone_and_workspace():
    d = load(ANCHORS)
    assert d.valid, d.errors
    (w,) = d.workflows
    build = w.step("build")
    assert build.image == "golang:1.22"
    assert build.commands == ("go mod download", "go generate ./...", "go build ./...")
    assert dict(build.environment) == {"GOPATH": "/go", "GOCACHE": "/go/cache", "CGO_ENABLED": "0"}
    assert w.workspace.base == "/go" and w.workspace.path == "src/example.org/app"
    assert [s.name for s in w.clone.steps] == ["git"] and dict(w.clone.steps[0].settings)["depth"] == 50
    assert w.labels == (("platform", "linux/amd64"),)


def test_multi_workflow_directory_with_workflow_dependencies():
    files = [
        SourceFile(".woodpecker/build.yaml", "steps:\n  b:\n    image: alpine\n    commands: [make]\n"),
        SourceFile(".woodpecker/deploy.yaml",
                   "depends_on: [build]\nruns_on: [success, failure]\nwhen:\n  branch: main\n"
                   "skip_clone: true\nsteps:\n  d:\n    image: alpine\n    commands: [./deploy]\n"),
    ]
    d = load_definition(files, PARSER)
    assert d.valid, d.errors
    build, deploy = d.workflows
    assert build.name == "build" and build.depends_on == ()
    assert deploy.depends_on == ("build",) and deploy.runs_on == ("success", "failure") and deploy.clone.skip


def test_workflow_dependencies_unknown_and_cyclic():
    files = [
        SourceFile(".woodpecker/a.yaml", "depends_on: [b]\nsteps:\n  s:\n    image: x\n    commands: [x]\n"),
        SourceFile(".woodpecker/b.yaml", "depends_on: [a, c]\nsteps:\n  s:\n    image: x\n    commands: [x]\n"),
    ]
    msgs = [str(e) for e in load_definition(files, PARSER).errors]
    assert any("'c', which does not exist" in m for m in msgs)
    assert any("dependency cycle: a -> b -> a" in m or "dependency cycle: b -> a -> b" in m for m in msgs)


def test_secrets_list_of_woodpecker_2():
    d = load("steps:\n  s:\n    image: x\n    commands: [x]\n    secrets: [docker_username, "
             "{source: prod_pw, target: docker_password}]\n")
    assert d.valid, d.errors
    assert d.workflows[0].steps[0].environment == (("docker_username", SecretRef("docker_username")),
                                                   ("DOCKER_PASSWORD", SecretRef("prod_pw")))


# ---- broken files --------------------------------------------------------------------------------------------
BROKEN = """\
steps:
  test:
    image: golang
    comand: [go test]
    timeout: ten minutes
    failure: maybe
    detach: "yes please"
    when:
      event: pushh
      branch: {include: main, exclud: dev}
      evaluate: 'CI_COMMIT_BRANCH matches "x"'
  build:
    commands:
      - echo building: now
    depends_on: [tset]
    cache: {paths: [x]}
stages: {}
"""


def test_every_error_is_reported_with_file_line_and_key():
    assert errors(BROKEN, ".woodpecker/build.yaml") == [
        ".woodpecker/build.yaml:4: steps.test.comand: unknown key (did you mean commands?)",
        ".woodpecker/build.yaml:5: steps.test.timeout: 'ten minutes' is not a duration: "
        "write it like 90s, 10m, 1h30m or 7d",
        ".woodpecker/build.yaml:6: steps.test.failure: must be ignore or fail, not 'maybe'",
        ".woodpecker/build.yaml:7: steps.test.detach: must be true or false, not string 'yes please'",
        ".woodpecker/build.yaml:9: steps.test.when.event: unknown value 'pushh' (did you mean push?); one of: "
        "cron, deployment, manual, pull_request, pull_request_closed, pull_request_metadata, push, release, tag",
        ".woodpecker/build.yaml:10: steps.test.when.branch.exclud: unknown key (did you mean exclude?)",
        ".woodpecker/build.yaml:11: steps.test.when.evaluate: invalid expression: "
        "'matches' is not supported in evaluate (position 18)",
        ".woodpecker/build.yaml:12: steps.build.image: is required",
        ".woodpecker/build.yaml:14: steps.build.commands[0]: must be a string, not a map "
        "(quote it: a ': ' inside makes YAML read a map)",
        ".woodpecker/build.yaml:15: steps.build.depends_on: depends_on 'tset', which does not exist "
        "(known: test, build)",
        ".woodpecker/build.yaml:16: steps.build.cache.key: is required",
        ".woodpecker/build.yaml:17: stages: unknown key (did you mean steps?)",
    ]


def test_cycles_and_duplicate_names():
    text = """\
steps:
  - name: a
    image: x
    commands: [x]
    depends_on: [c]
  - name: b
    image: x
    commands: [x]
    depends_on: [a]
  - name: c
    image: x
    commands: [x]
    depends_on: [b]
  - name: a
    image: x
    commands: [x]
"""
    assert errors(text) == [
        ".woodpecker.yaml:5: steps.a.depends_on: dependency cycle: a -> c -> b -> a",
        ".woodpecker.yaml:14: steps.a: duplicate step name 'a' (first at line 2)",
    ]


def test_wrong_types_everywhere():
    text = """\
steps: [1, "two"]
services: yes
workspace: {base: relative, path: ../escape}
labels: [a]
when: push
"""
    assert errors(text) == [
        ".woodpecker.yaml:1: steps[0]: must be a map, not a integer",
        ".woodpecker.yaml:1: steps[1]: must be a map, not a string",
        ".woodpecker.yaml:2: services: must be a map or a list of services, not boolean 'yes'",
        ".woodpecker.yaml:3: workspace.base: must be an absolute path",
        ".woodpecker.yaml:3: workspace.path: must be a relative path inside the base, without '..'",
        ".woodpecker.yaml:4: labels: must be a map, not a list",
        ".woodpecker.yaml:5: when: must be a map or a list of maps, not string 'push'",
    ]


def test_repeated_keys_commands_with_settings_and_bad_durations():
    text = """\
steps:
  p:
    image: plugin
    image: plugin2
    commands: [x]
    settings: {a: 1}
    artifacts: {paths: [dist/*], expire_in: 0s}
"""
    assert errors(text) == [
        ".woodpecker.yaml:2: steps.p: has both commands and settings: a step is either commands or a plugin",
        ".woodpecker.yaml:4: steps.p.image: repeated key",
        ".woodpecker.yaml:7: steps.p.artifacts.expire_in: '0s': a duration must be longer than zero",
    ]


def test_invalid_yaml_reports_its_line():
    (msg,) = errors("steps:\n  a:\n    image: x\n    commands: [unclosed\n  b: {}\n")
    assert msg.startswith(".woodpecker.yaml:5: invalid YAML")


def test_missing_and_empty_steps():
    assert errors("") == [".woodpecker.yaml:1: steps: is required: a workflow needs at least one step"]
    assert errors("steps: {}\n") == [".woodpecker.yaml:1: steps: must not be empty"]


def test_unsupported_substitution_is_an_error_with_its_line():
    text = "matrix:\n  A: [x]\nsteps:\n  s:\n    image: x\n    commands: ['echo ${A/x/y}']\n"
    assert errors(text) == [".woodpecker.yaml:6: unsupported substitution '${A/x/y}' "
                            "(write $${...} for a literal)"]
