"""Stopping a served `restart-patrol` process in tests, with evidence when it hangs.

A process that outlives its stop budget is not just killed: it gets SIGABRT first, which
`PYTHONFAULTHANDLER=1` (set by `diagnosable`) turns into a dump of every thread's stack,
and the kernel's view of its signal state (pending, blocked, caught; per thread, with
the wait channel) goes into the failure message. A shutdown hang under load is then
diagnosable from the CI log alone.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


def diagnosable(env: dict[str, str]) -> dict[str, str]:
    """`env` for a served process whose hang can be explained (faulthandler on)."""
    return env | {"PYTHONFAULTHANDLER": "1"}


def signal_state(pid: int) -> str:
    """The kernel's view of `pid`: process-wide signal masks, then each thread's name,
    state, blocked mask and wait channel ('' if the process is gone)."""
    root = Path(f"/proc/{pid}")
    lines: list[str] = []
    try:
        status = (root / "status").read_text().splitlines()
        lines += [s for s in status if s.startswith(("State", "SigQ", "SigPnd", "ShdPnd",
                                                      "SigBlk", "SigIgn", "SigCgt"))]
        for task in sorted((root / "task").iterdir(), key=lambda p: int(p.name)):
            fields = dict(s.split(":\t", 1) for s in (task / "status").read_text().splitlines()
                          if ":\t" in s)
            wchan = (task / "wchan").read_text() if (task / "wchan").exists() else "?"
            lines.append(f"  task {task.name} {fields.get('Name', '?')!r} "
                         f"{fields.get('State', '?')} SigPnd={fields.get('SigPnd', '?')} "
                         f"SigBlk={fields.get('SigBlk', '?')} wchan={wchan}")
    except OSError:
        pass
    return "\n".join(lines)


def stop(proc: subprocess.Popen[str], within: float, *,
         signum: signal.Signals = signal.SIGTERM, log: Path | None = None) -> str:
    """Send `signum`, wait up to `within` seconds for the exit and return the output read
    from its pipe, or the text of `log` when it writes there. On a hang: the signal
    state, a faulthandler dump (SIGABRT), then SIGKILL, all in the AssertionError."""
    proc.send_signal(signum)
    try:
        out = proc.communicate(timeout=within)[0] or ""
        return log.read_text() if log is not None else out
    except subprocess.TimeoutExpired:
        state = signal_state(proc.pid)
        proc.send_signal(signal.SIGABRT)
        try:
            out = proc.communicate(timeout=10)[0] or ""
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0] or ""
        if log is not None:
            out = log.read_text()
        raise AssertionError(
            f"pid {proc.pid} still running {within:.0f} s after {signum.name}\n"
            f"kernel signal state at the deadline:\n{state}\n"
            f"output (a faulthandler dump at the end):\n{out[-12000:]}") from None
