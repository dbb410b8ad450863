"""Outbox topic names: the one list producers write and consumers (webhooks, notifications) match on.

Consumers match topics exactly (never by prefix), so a new topic reaches a consumer only when it is
added here and to that consumer's table.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AGENT_COMPLETED",
    "ALERT_FIRING",
    "ALERT_RESOLVED",
    "BUILD_FAILED",
    "DEPLOYMENT",
    "DEPLOY_STATUS",
    "ISSUE",
    "MERGE_REQUEST",
    "MR_CREATED",
    "MR_MERGED",
    "PIPELINE",
    "PUSH",
    "RELEASE",
    "REVIEW",
    "REVIEW_REQUESTED",
    "WEBHOOK_EVENT_OF_TOPIC",
]

# Webhook-shaped events (payloads as receivers of Gitea/GitHub webhooks expect them).
PUSH: Final = "push"  # refs moved (push or merge): before/after SHAs, pusher, commits
ISSUE: Final = "issue"  # an issue opened, edited, closed, reopened or commented
MERGE_REQUEST: Final = "merge_request"  # a merge request opened, updated, merged, closed or commented
REVIEW: Final = "review"  # a review submitted on a merge request
PIPELINE: Final = "pipeline"  # a pipeline run changed status (created, running, success, failure, ...)
DEPLOYMENT: Final = "deployment"  # a deployment changed status
RELEASE: Final = "release"  # a release published (created as one, or a draft made public)

# Notification events (people are told; no webhook of their own).
BUILD_FAILED: Final = "build_failed"
MR_CREATED: Final = "mr_created"
MR_MERGED: Final = "mr_merged"
REVIEW_REQUESTED: Final = "review_requested"
AGENT_COMPLETED: Final = "agent_completed"
DEPLOY_STATUS: Final = "deploy_status"
ALERT_FIRING: Final = "alert_firing"
ALERT_RESOLVED: Final = "alert_resolved"

# Which webhook event (the names a webhook subscribes to) each topic is delivered as.
WEBHOOK_EVENT_OF_TOPIC: Final[dict[str, str]] = {
    PUSH: "push",
    ISSUE: "issue",
    MERGE_REQUEST: "merge_request",
    REVIEW: "review",
    PIPELINE: "pipeline",
    DEPLOYMENT: "deployment",
    RELEASE: "release",
}
