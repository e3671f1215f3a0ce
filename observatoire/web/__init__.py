"""The observatory's web page and JSON API (FastAPI + Jinja2), over the published snapshot only."""
