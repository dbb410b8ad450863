"""when evaluation, the evaluate subset, the ordering rule, file selection and planning."""

from __future__ import annotations

import pytest

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines import (
    SourceFile,
    TriggerContext,
    choose_files,
    load_definition,
    plan_workflows,
    skip_ci,
    step_dependencies,
    topological_order,
)
from corral.core.pipelines.conditions import path_matches, when_matches
from corral.core.pipelines.dag import graph_problems
from corral.core.pipelines.definition import PathFilter, Step
from corral.core.pipelines.expression import ExpressionError, parse_expression

PARSER = PyYamlPipelineFileParser()


def when_of(yaml_when: str):
    text = f"steps:\n  s:\n    image: x\n    commands: [x]\n    when:\n{yaml_when}"
    d = load_definition([SourceFile(".woodpecker.yaml", text)], PARSER)
    assert d.valid, d.errors
    return d.workflows[0].steps[0].when


PUSH_MAIN = TriggerContext(event="push", branch="main", ref="refs/heads/main", changed_files=("src/a.go",))


def test_event_and_branch_globs_or_across_items():
    when = when_of("      - event: push\n        branch: [main, 'release/*']\n      - event: tag\n")
    assert when_matches(when, PUSH_MAIN)
    assert when_matches(when, TriggerContext(event="push", branch="release/1.2"))
    assert not when_matches(when, TriggerContext(event="push", branch="release/1.2/x"))
    assert not when_matches(when, TriggerContext(event="pull_request", branch="main"))
    assert when_matches(when, TriggerContext(event="tag", branch="whatever", ref="refs/tags/v1"))


def test_branch_exclude_and_ref():
    when = when_of("      branch:\n        exclude: [main]\n      ref: refs/heads/*\n")
    assert not when_matches(when, PUSH_MAIN)
    assert when_matches(when, TriggerContext(event="push", branch="dev", ref="refs/heads/dev"))
    assert not when_matches(when, TriggerContext(event="push", branch="dev", ref="refs/tags/dev"))


def test_path_include_exclude_and_on_empty():
    when = when_of("      path:\n        include: ['src/**', '*.go']\n        exclude: ['**/*.md']\n"
                   "        on_empty: false\n")
    assert when_matches(when, PUSH_MAIN)
    assert not when_matches(when, TriggerContext(event="push", branch="main", changed_files=("docs/x.txt",)))
    # Woodpecker: any changed file matching an exclude glob refuses
    assert not when_matches(when, TriggerContext(event="push", branch="main",
                                                 changed_files=("src/a.go", "README.md")))
    assert not when_matches(when, TriggerContext(event="push", branch="main", changed_files=()))
    # paths are only checked for push and pull request events
    assert when_matches(when, TriggerContext(event="manual", branch="main"))
    assert path_matches(PathFilter(include=("x",), ignore_message="[all]"), ("y",), "run [ALL] please")


def test_status_decides_failure_steps():
    assert when_of("      status: [success, failure]\n").runs_on_failure
    assert not when_of("      event: push\n").runs_on_failure
    assert when_of("      event: push\n").runs_on_success


def test_cron_and_matrix_constraints():
    when = when_of("      cron: nightly\n      matrix:\n        GO: '1.2*'\n")
    cron = TriggerContext(event="cron", branch="main", cron="nightly")
    assert when_matches(when, cron, axis={"GO": "1.22"})
    assert not when_matches(when, cron, axis={"GO": "1.19"})
    assert not when_matches(when, TriggerContext(event="cron", branch="main", cron="weekly"), axis={"GO": "1.22"})
    assert when_matches(when, cron, axis={"GO": "1.19"}, workflow_level=True)  # matrix is a step filter


def test_evaluate():
    when = when_of("""      evaluate: 'CI_COMMIT_BRANCH == "main" && !(CI_COMMIT_AUTHOR in ["bot", "renovate"])'\n""")
    env = {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_AUTHOR": "ann"}
    assert when_matches(when, TriggerContext(event="push", branch="main", environ=env))
    env_bot = {**env, "CI_COMMIT_AUTHOR": "renovate"}
    assert not when_matches(when, TriggerContext(event="push", branch="main", environ=env_bot))


@pytest.mark.parametrize(("source", "expected"), [
    ('CI_COMMIT_TAG startsWith "v" or CI_COMMIT_MESSAGE contains "[deploy]"', True),
    ("CI_COMMIT_TAG endsWith '-rc' and not (CI_X != '')", False),
    ('CI_UNKNOWN == ""', True),
    ('CI_COMMIT_BRANCH not in ["main"]', True),
    ("true && (false || !false)", True),
])
def test_evaluate_subset(source, expected):
    env = {"CI_COMMIT_TAG": "v1.0", "CI_COMMIT_MESSAGE": "ship it [deploy]", "CI_COMMIT_BRANCH": "dev"}
    assert parse_expression(source).evaluate(env) is expected


@pytest.mark.parametrize("source", ["os.system('x')", "__import__('os')", "1 + 2", "CI_A matches 'x'", "(a",
                                    "a ==", "a.b == 'x'", ""])
def test_evaluate_rejects_anything_else(source):
    with pytest.raises(ExpressionError):
        parse_expression(source)


def test_evaluate_must_be_boolean():
    with pytest.raises(ExpressionError):
        parse_expression("CI_COMMIT_BRANCH").evaluate({"CI_COMMIT_BRANCH": "main"})


def _steps(*specs: tuple[str, tuple[str, ...] | None]) -> list[Step]:
    return [Step(name=n, image="x", commands=("x",), depends_on=d) for n, d in specs]


def test_ordering_rule():
    assert step_dependencies(_steps(("a", None), ("b", None), ("c", None))) == {"a": (), "b": ("a",), "c": ("b",)}
    # one depends_on (even an empty one) turns the workflow into a DAG: the others have no dependencies
    assert step_dependencies(_steps(("a", None), ("b", ()), ("c", None))) == {"a": (), "b": (), "c": ()}
    deps = step_dependencies(_steps(("a", None), ("b", ("a",)), ("c", None), ("d", ("b", "c"))))
    assert deps == {"a": (), "b": ("a",), "c": (), "d": ("b", "c")}
    assert topological_order(deps) == ["a", "b", "c", "d"]
    assert graph_problems({"a": ("a",), "b": ("zz",)}) == [
        ("a", "depends on itself"), ("b", "depends_on 'zz', which does not exist (known: a, b)")]
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ("b",), "b": ("a",)})


def test_choose_files_and_skip_ci():
    assert choose_files([".woodpecker.yaml", ".corral.yaml", ".woodpecker/a.yaml"]) == [".corral.yaml"]
    assert choose_files([".platform.yml", ".woodpecker.yml"]) == [".platform.yml"]
    assert choose_files([".woodpecker.yaml", ".woodpecker/b.yml", ".woodpecker/a.yaml",
                         ".woodpecker/notes.md", ".woodpecker/sub/c.yaml"]) == [".woodpecker/a.yaml",
                                                                               ".woodpecker/b.yml"]
    assert choose_files([".woodpecker.yml", "README.md"]) == [".woodpecker.yml"]
    assert choose_files(["README.md"]) == []
    assert skip_ci("docs: typo [SKIP CI]") and skip_ci("x\n\n[ci skip]") and not skip_ci("skip ci")


def test_plan_filters_workflows_and_steps_and_recomputes_dependencies():
    files = [
        SourceFile(".woodpecker/build.yaml", """\
steps:
  compile:
    image: x
    commands: [make]
  docs:
    image: x
    commands: [make docs]
    when:
      path: 'docs/**'
  package:
    image: x
    commands: [make dist]
"""),
        SourceFile(".woodpecker/release.yaml", """\
when:
  event: tag
depends_on: [build]
steps:
  upload:
    image: x
    commands: [upload]
"""),
        SourceFile(".woodpecker/after-release.yaml", """\
depends_on: [release]
steps:
  announce:
    image: x
    commands: [announce]
"""),
    ]
    d = load_definition(files, PARSER)
    assert d.valid, d.errors
    plan = plan_workflows(d, PUSH_MAIN)
    assert [w.name for w in plan] == ["build"]  # release does not match; after-release waits for it: dropped
    (build,) = plan
    assert [s.name for s in build.steps] == ["compile", "package"]
    assert build.dependencies == {"compile": (), "package": ("compile",)}
    tag = plan_workflows(d, TriggerContext(event="tag", ref="refs/tags/v1", changed_files=("docs/a.md",)))
    assert [w.name for w in tag] == ["build", "release", "after-release"]
