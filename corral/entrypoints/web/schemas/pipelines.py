"""Response shapes of the pipeline routes."""

from __future__ import annotations

import attrs

__all__ = ["LintError", "LintResult", "LintWorkflow"]


@attrs.frozen
class LintError:
    """One mistake: what is wrong, its 1-based line (null when it concerns the whole file) and key path."""

    message: str
    line: int | None
    path: str


@attrs.frozen
class LintWorkflow:
    """A workflow the file defines and its steps, in file order."""

    name: str
    steps: list[str]


@attrs.frozen
class LintResult:
    """Whether a pipeline file is valid; every error when it is not."""

    valid: bool
    errors: list[LintError]
    workflows: list[LintWorkflow]
