"""Diagnosis domain: exit codes, crash signatures, categories, fingerprints, redaction.

Pure functions, no I/O. `diagnose()` in `bot.diagnosis.engine` is the entry point.
"""
