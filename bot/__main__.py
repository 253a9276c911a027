"""`python -m bot` is the same as the `restart-patrol` console script."""

from __future__ import annotations

from bot.cli import main

raise SystemExit(main())
