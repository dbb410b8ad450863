"""The web UI: server-rendered jinja2 pages over the same core services as the API (see routes/ui.py)."""
