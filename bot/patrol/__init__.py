"""Patrol domain: snapshot → deltas → digest. Pure functions over plain dataclasses, no I/O."""
