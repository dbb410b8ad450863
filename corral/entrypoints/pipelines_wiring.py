"""Wiring of the pipelines domain: the pipeline file parser (the engine will add its services here)."""

from __future__ import annotations

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines.ports import PipelineFileParser
from corral.entrypoints.platform import Platform

__all__ = ["wire_pipelines"]


async def wire_pipelines(platform: Platform) -> None:
    platform.register(PipelineFileParser, PyYamlPipelineFileParser())
