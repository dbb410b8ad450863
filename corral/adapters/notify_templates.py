"""jinja2 templates for notification mails and in-app texts: one subject, text and HTML template per event.

HTML is autoescaped; a missing payload key renders empty. Operators change
wording here, in one place.
"""

from __future__ import annotations

from typing import Any

import jinja2

from corral.core.notify.model import EventType, RenderedMessage

__all__ = ["JinjaRenderer"]

_SUBJECTS: dict[EventType, str] = {
    EventType.BUILD_FAILED: "[{{ project or 'corral' }}] Build failed{% if ref %} on {{ ref }}{% endif %}"
    "{% if title %}: {{ title }}{% endif %}",
    EventType.MR_CREATED: "[{{ project or 'corral' }}] New merge request{% if number %} !{{ number }}{% endif %}"
    "{% if title %}: {{ title }}{% endif %}",
    EventType.MR_MERGED: "[{{ project or 'corral' }}] Merged{% if number %} !{{ number }}{% endif %}"
    "{% if title %}: {{ title }}{% endif %}",
    EventType.REVIEW_REQUESTED: "[{{ project or 'corral' }}] Review requested{% if number %} on !{{ number }}"
    "{% endif %}{% if title %}: {{ title }}{% endif %}",
    EventType.AGENT_COMPLETED: "[{{ project or 'corral' }}] Agent {{ agent or 'session' }} "
    "{{ outcome or 'completed' }}{% if title %}: {{ title }}{% endif %}",
    EventType.DEPLOY_STATUS: "[{{ project or 'corral' }}] Deploy{% if environment %} to {{ environment }}"
    "{% endif %}: {{ status or 'updated' }}",
    EventType.ALERT_FIRING: "[{{ project or 'corral' }}] FIRING: {{ title or alert or 'alert' }}",
    EventType.ALERT_RESOLVED: "[{{ project or 'corral' }}] RESOLVED: {{ title or alert or 'alert' }}",
}

_LEAD: dict[EventType, str] = {
    EventType.BUILD_FAILED: "A pipeline failed.",
    EventType.MR_CREATED: "A merge request was opened.",
    EventType.MR_MERGED: "A merge request was merged.",
    EventType.REVIEW_REQUESTED: "Your review is requested.",
    EventType.AGENT_COMPLETED: "An agent session finished.",
    EventType.DEPLOY_STATUS: "A deployment changed status.",
    EventType.ALERT_FIRING: "An alert is firing.",
    EventType.ALERT_RESOLVED: "An alert was resolved.",
}

_TEXT = """{{ lead }}
{% if title %}
{{ title }}
{% endif %}{% if project %}Project: {{ project }}
{% endif %}{% if ref %}Ref: {{ ref }}
{% endif %}{% if status %}Status: {{ status }}
{% endif %}{% if message %}
{{ message }}
{% endif %}{% if url %}
{{ url }}
{% endif %}
--
Corral notifications. Change what you receive under Settings → Notifications.
"""

_HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<p>{{ lead }}</p>
{% if title %}<h2>{{ title }}</h2>{% endif %}
<table>
{% if project %}<tr><th align="left">Project</th><td>{{ project }}</td></tr>{% endif %}
{% if ref %}<tr><th align="left">Ref</th><td>{{ ref }}</td></tr>{% endif %}
{% if status %}<tr><th align="left">Status</th><td>{{ status }}</td></tr>{% endif %}
</table>
{% if message %}<pre>{{ message }}</pre>{% endif %}
{% if url %}<p><a href="{{ url }}">Open in Corral</a></p>{% endif %}
<p style="color: #666">Corral notifications. Change what you receive under Settings → Notifications.</p>
</body></html>
"""


class JinjaRenderer:
    """MessageRenderer over jinja2 (sandboxed: payload values never execute anything)."""

    def __init__(self) -> None:
        from jinja2.sandbox import SandboxedEnvironment

        common: dict[str, Any] = {"undefined": jinja2.Undefined, "keep_trailing_newline": True}
        self._text_env = SandboxedEnvironment(autoescape=False, **common)  # plain text, not HTML
        self._html_env = SandboxedEnvironment(autoescape=True, **common)
        self._subjects = {e: self._text_env.from_string(t) for e, t in _SUBJECTS.items()}
        self._text = self._text_env.from_string(_TEXT)
        self._html = self._html_env.from_string(_HTML)

    def render(self, event: EventType, context: dict[str, Any]) -> RenderedMessage:
        values = {**context, "lead": _LEAD[event]}
        subject = " ".join(self._subjects[event].render(values).split())[:200]  # one line: no header injection
        return RenderedMessage(subject=subject, text=self._text.render(values), html=self._html.render(values))
