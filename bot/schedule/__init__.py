"""Scheduling: the daily digest job (APScheduler)."""
