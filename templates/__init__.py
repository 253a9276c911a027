"""User-facing wording of restart-patrol (jinja2). Installed as `restart_patrol_templates`;
operators can point TEMPLATES_DIR at their own copy."""
