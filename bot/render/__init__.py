"""Rendering: jinja2 over `templates/` (StrictUndefined) → terminal text and JSON shapes."""
