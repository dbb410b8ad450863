"""Observability: OTLP telemetry (logs, spans, metric points), its two storage tiers, queries and alerts."""
