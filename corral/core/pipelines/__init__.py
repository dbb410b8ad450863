"""Pipeline definitions: Woodpecker-compatible workflow files, validated into a pure model.

The engine's entry points are in ``selection`` (``skip_ci``, ``choose_files``, ``load_definition``,
``plan_workflows``); the model is in ``definition``; ``when`` evaluation in ``conditions``; the ordering
rule in ``dag``. Files are parsed through the ``PipelineFileParser`` port (``ports``).
"""

from corral.core.pipelines.conditions import TriggerContext, when_matches
from corral.core.pipelines.dag import step_dependencies, topological_order
from corral.core.pipelines.definition import (
    Artifacts,
    Cache,
    Clone,
    Condition,
    FailurePolicy,
    SecretRef,
    Step,
    When,
    Workflow,
    Workspace,
    plugin_environment,
    step_environment,
)
from corral.core.pipelines.expression import ExpressionError
from corral.core.pipelines.nodes import PipelineError, PipelineFileInvalid
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.selection import (
    Definition,
    SourceFile,
    choose_files,
    load_definition,
    plan_workflows,
    skip_ci,
)

__all__ = ["Artifacts", "Cache", "Clone", "Condition", "Definition", "ExpressionError", "FailurePolicy",
           "PipelineError", "PipelineFileInvalid", "PipelineFileParser", "SecretRef", "SourceFile", "Step",
           "TriggerContext", "When", "Workflow", "Workspace", "choose_files", "load_definition",
           "plan_workflows", "plugin_environment", "skip_ci", "step_dependencies", "step_environment",
           "topological_order", "when_matches"]
