"""Wiring of the pipelines domain: the pipeline file parser (the engine will add its services here)."""

from __future__ import annotations

from typing import Any

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines.ports import PipelineFileParser

__all__ = ["wire_pipelines"]


async def wire_pipelines(platform: Any) -> None:
    platform.register(PipelineFileParser, PyYamlPipelineFileParser())
