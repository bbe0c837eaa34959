"""Server-rendered pages (Jinja2 + htmx) and the live-update channel."""
