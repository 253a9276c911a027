"""The `restart-patrol` command line (also `python -m bot`).

Errors print one line on stderr and exit 2 (usage) or 1 (failure); `--debug` shows the
traceback. Settings are loaded once here and passed down.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bot.errors import NotFoundError, PatrolError, StoreError, UnknownCrashError, UsageError
from bot.patrol.durations import parse_duration
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from bot.cluster.client import ClusterClient
    from bot.patrol.story import Investigation
    from bot.runtime import Runtime
    from bot.service import Demo
    from bot.store import Store

# Heavy libraries (kubernetes, sqlalchemy, slack, apscheduler, jinja2) are imported inside
# the commands that use them, so `--help` and `diagnose` start fast (docs/design.md,
# "Start-up"; tests/e2e/test_startup.py checks it).

Handler = Callable[[argparse.Namespace, Settings, "Runtime"], int]


def _write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _dump_json(data: object) -> None:
    """`data` as indented JSON on stdout. Iterators among the values of `data` (a dict, or
    a list of dicts) are written item by item as JSON lists, so a large digest's rows
    never exist all at once (as dicts, nor as one text)."""
    streams: list[Iterator[object]] = []
    tag = secrets.token_hex(8)  # the placeholder of each stream: no data can match it

    def hold(value: object) -> object:
        if isinstance(value, Iterator):
            streams.append(value)
            return f"\x00{tag}-{len(streams) - 1}"
        return value

    def held(item: object) -> object:
        return {k: hold(v) for k, v in item.items()} if isinstance(item, dict) else item

    shaped = [held(d) for d in data] if isinstance(data, list) else held(data)
    text = orjson.dumps(shaped, option=orjson.OPT_INDENT_2)
    out = getattr(sys.stdout, "buffer", None)
    write = out.write if out is not None else (lambda b: sys.stdout.write(b.decode()))
    sys.stdout.flush()
    start = 0
    for n, stream in enumerate(streams):
        marker = f'"\\u0000{tag}-{n}"'.encode()
        at = text.index(marker, start)
        write(text[start:at])
        line = text.rindex(b"\n", 0, at) + 1
        indent = b"\n" + b" " * (len(text[line:at]) - len(text[line:at].lstrip(b" ")) + 2)
        first = True
        for item in stream:
            write((b"[" if first else b",") + indent
                  + orjson.dumps(item, option=orjson.OPT_INDENT_2).replace(b"\n", indent))
            first = False
        write(b"[]" if first else indent[:-2] + b"]")
        start = at + len(marker)
    write(text[start:] + b"\n")
    if out is not None:
        out.flush()


def _progress(templates_dir: str | None) -> Callable[[int], None] | None:
    """A pod counter on stderr while a long list runs, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from bot.render.environment import phrase

    def show(count: int) -> None:
        sys.stderr.write("\r" + phrase("listing_pods", templates_dir, count=count))
        sys.stderr.flush()

    return show


def _clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---- commands -----------------------------------------------------------------------
def cmd_patrol(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    """One patrol per served cluster (KUBE_CONTEXTS; `--cluster` picks one). With one
    cluster `--json` prints the digest object; with several, a list of them. A cluster
    that fails is named on stderr, the others still patrol, and the exit code is 1."""
    from bot.answers.patrol import PatrolPlan, patrol
    from bot.cluster.fleet import connect_fleet
    from bot.render.digest_json import digest_to_json
    from bot.render.terminal import digest_text
    from bot.store import Store

    if not (args.print or args.json):
        raise UsageError("posting the digest needs the Slack app (restart-patrol serve); "
                         "use --print or --json to see it here")
    if args.digest and args.since is not None:
        raise UsageError("--digest takes its window from the previous digest: leave out "
                         "--since")
    namespaces = args.namespace or ()
    plan = (PatrolPlan.digest(namespaces) if args.digest
            else PatrolPlan.adhoc(namespaces, args.since))
    fleet = connect_fleet(settings, runtime=runtime)
    clusters = [fleet.get(args.cluster)] if args.cluster else list(fleet)
    if args.timeout is not None and args.timeout < settings.limits.patrol_deadline:
        clusters = [c.bounded(args.timeout, "--timeout") for c in clusters]  # one deadline
    store = Store.open(settings.store.database_url)
    digests: list[dict[str, object]] = []
    failed: list[PatrolError] = []
    try:
        for cluster in clusters:
            try:
                run = patrol(cluster, store, settings, plan,
                             progress=_progress(settings.templates_dir))
            except (NotFoundError, UsageError, StoreError, CommandTimeout):
                raise
            except PatrolError as exc:
                if len(clusters) == 1:
                    raise
                _clear_progress()
                print(f"restart-patrol: {exc}", file=sys.stderr)
                failed.append(exc)
                continue
            finally:
                _clear_progress()
            if args.json:
                digests.append(digest_to_json(run.digest, run.diagnoses,
                                              [u.to_json() for u in run.unreadable],
                                              lazy=True))
            else:
                _write(digest_text(run.digest, run.diagnoses, top=args.top, notes=run.notes,
                                   unreadable=run.unreadable,
                                   templates_dir=settings.templates_dir))
    finally:
        store.close()
        fleet.close()
    if args.json:
        _dump_json(digests[0] if len(clusters) == 1 else digests)
    return 1 if failed else 0


def _open_history(settings: Settings) -> Store | None:
    """The database for recorded history; `why` still answers live without it."""
    from bot.store import Store

    try:
        return Store.open(settings.store.database_url)
    except StoreError as exc:
        sys.stderr.write(f"restart-patrol: no recorded history: {exc}\n")
        return None


def cmd_why(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.answers.investigation import DEFAULT_WINDOW, Question, investigate
    from bot.cluster.fleet import connect_fleet
    from bot.render.terminal import reports_text
    from bot.render.why_json import why_json
    from bot.store import Store

    chart = _chart_path(args.chart) if args.chart is not None else None
    fleet = connect_fleet(settings, runtime=runtime)
    store = None
    png: bytes | None = None
    try:
        scope = fleet.locate(args.namespace)
        args.namespace = scope.namespace
        store = Store.open(settings.store.database_url) if args.log is not None else (
            _open_history(settings))
        if args.log is not None:
            assert store is not None
            return _print_recorded_log(scope.cluster, store, args, settings.templates_dir)
        found = investigate(scope.cluster, settings, Question(
            scope.namespace, args.target, args.container, since=args.since or DEFAULT_WINDOW),
            store=store)
        if chart is not None and store is not None and found.answers:
            from bot.answers.chart import workload_chart

            first = found.answers[0]
            png = workload_chart(store, found.cluster, first.namespace, first.workload_kind,
                                 first.workload_name, until=found.window_to,
                                 templates_dir=settings.templates_dir)
    finally:
        if store is not None:
            store.close()
        fleet.close()
    if args.json:
        _dump_json(why_json(found))
    else:
        _write(reports_text(found, settings.limits.log_tail_lines, settings.templates_dir))
    if chart is not None:
        _write_chart(chart, png, found, settings.templates_dir)
    return 0


def _chart_path(name: str) -> Path:
    """`--chart FILE`, checked before any work: its directory exists and is writable, and
    it is not a directory itself."""
    path = Path(name)
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"cannot write the chart to {name}: it is a directory")
    if not folder.is_dir():
        raise UsageError(f"cannot write the chart to {name}: no directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write the chart to {name}: permission denied")
    return path


def _write_chart(path: Path, png: bytes | None, found: Investigation,
                 templates_dir: str | None) -> None:
    """Write the chart `why --chart` drew; with no recorded crash to draw, say so on
    stderr and write nothing (as the drill-down uploads nothing)."""
    if png is None:
        from bot.answers.chart import CHART_DAYS
        from bot.render.environment import phrase

        what = (f"{found.namespace}/{found.answers[0].workload_name}" if found.answers
                else f"{found.namespace}/{found.target}")
        sys.stderr.write("restart-patrol: " + phrase("no_chart_written", templates_dir,
                                                     what=what, days=CHART_DAYS) + "\n")
        return
    try:
        path.write_bytes(png)
    except OSError as exc:
        raise PatrolError(f"cannot write the chart to {path}: {exc.strerror}") from None


def _print_recorded_log(cluster: ClusterClient, store: Store, args: argparse.Namespace,
                        templates_dir: str | None) -> int:
    from bot.render.environment import render
    from bot.render.why_json import crash_json

    found = store.history.log_of(cluster.name, args.log)
    if found is None or found[0].namespace != args.namespace:
        raise UnknownCrashError(f"no recorded crash #{args.log} in namespace "
                                f"{args.namespace} of cluster {cluster.name}")
    crash, text = found
    if args.json:
        _dump_json({**crash_json(crash), "log": text, "redactions": crash.redactions})
    else:
        _write(render("recorded_log.txt.j2", templates_dir, c=crash, log=text))
    return 0


def cmd_diagnose(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.diagnosis.engine import Evidence, diagnose
    from bot.render.terminal import diagnosis_text

    log = ""
    if args.log_file == "-":
        log = sys.stdin.read()
    elif args.log_file:
        try:
            log = Path(args.log_file).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read log file {args.log_file}: {exc.strerror}") from None
    if args.exit_code is None and args.reason is None and not log.strip():
        raise UsageError("nothing to diagnose: give --exit-code, --reason or --log-file")
    diagnosis = diagnose(Evidence(exit_code=args.exit_code, signal=args.signal,
                                  reason=args.reason, log=log, image=args.image,
                                  memory_limit=args.memory_limit))
    if args.json:
        _dump_json(diagnosis.to_json())
    else:
        _write(diagnosis_text(diagnosis, settings.templates_dir))
    return 0


def cmd_sim(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.render.environment import phrase
    from bot.sim.scenario import ScenarioError, build_world, load_scenario
    from bot.sim.server import SimServer

    try:
        world, _ = build_world(load_scenario(args.scenario))
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    runtime.install_signals()
    try:
        server = runtime.service(SimServer(world, port=args.port, runtime=runtime))
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    kubeconfig = server.kubeconfig()
    if args.kubeconfig:
        Path(args.kubeconfig).write_text(kubeconfig)
    else:
        _write(kubeconfig)
    sys.stderr.write(phrase("sim_serving", settings.templates_dir, url=server.url,
                            kubeconfig=args.kubeconfig) + "\n")
    sys.stderr.flush()
    if args.speed > 0:
        def tick() -> None:
            while not runtime.stopping.wait(1.0):
                world.advance(timedelta(seconds=args.speed))
        runtime.thread("sim-clock", tick)
    runtime.wait()
    return 0


def _logging(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_serve(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.allocator import tune_allocator
    from bot.service import serve

    tune_allocator()  # a long-running process: before its threads start (bot.allocator)
    _logging(args)
    return serve(settings, runtime)


def cmd_record(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.allocator import tune_allocator
    from bot.service import record

    tune_allocator()
    _logging(args)
    return record(settings, runtime)


def cmd_demo(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    from bot.service import demo

    with demo(settings, runtime) as parts:
        _demo_steps(args, parts)
    return 0


def _demo_steps(args: argparse.Namespace, parts: Demo) -> None:
    from bot.answers.investigation import Question, investigate
    from bot.answers.patrol import PatrolPlan, patrol
    from bot.render.environment import render
    from bot.render.terminal import digest_text, reports_text

    settings, cluster, store, url, world = (parts.settings, parts.cluster, parts.store,
                                            parts.url, parts.world)
    tdir = settings.templates_dir
    _write(render("demo.txt.j2", tdir, step="intro", url=url, pods=world.count("pods")))
    first = patrol(cluster, store, settings, PatrolPlan.digest())
    _write(digest_text(first.digest, first.diagnoses, top=args.top, templates_dir=tdir))
    span = timedelta(days=1)
    world.advance(span)
    _write(render("demo.txt.j2", tdir, step="advance", span="24h"))
    second = patrol(cluster, store, settings, PatrolPlan.digest())
    _write(digest_text(second.digest, second.diagnoses, top=args.top, templates_dir=tdir))
    focus = next((w for w in second.digest.workloads if w.namespace == "qld2-production"),
                 second.digest.workloads[0] if second.digest.workloads else None)
    if focus is not None:
        _write(render("demo.txt.j2", tdir, step="why", namespace=focus.namespace,
                      target=focus.name))
        found = investigate(cluster, settings, Question(focus.namespace, focus.name,
                                                        max_pods=1))
        _write(reports_text(found, 20, tdir))
    if parts.slack is not None and settings.slack.patrol_channel:
        from bot.slack.posting import Services, digest_message

        parts.slack.chat_postMessage(channel=settings.slack.patrol_channel, **digest_message(
            second, Services(settings, cluster, store)))
        _write(render("demo.txt.j2", tdir, step="slack", channel=settings.slack.patrol_channel))
    else:
        _write(render("demo.txt.j2", tdir, step="no-slack"))


# ---- silences -------------------------------------------------------------------------
def cmd_silences(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    """`silences [list|add|remove]`: the silences Slack users set (who, scope, until, why);
    add and lift them from the terminal. Reads and writes the database only."""
    import getpass
    from datetime import UTC, datetime

    from bot.render.environment import render
    from bot.store import Store

    now = datetime.now(UTC)
    store = Store.open(settings.store.database_url)
    runtime.on_stop(store.close, "store")
    action = args.action or "list"
    if action == "add":
        if args.duration <= timedelta(0):
            raise UsageError("--for needs a duration longer than zero, e.g. --for 24h")
        cluster, _, namespace = args.namespace.rpartition("/")
        kind, _, name = args.workload.rpartition("/")
        if not namespace or not name:
            raise UsageError("give the workload as [CLUSTER/]NAMESPACE [KIND/]NAME")
        found = store.silences.recorded_workloads(namespace, name, kind or None,
                                                  cluster or None)
        if not found:
            raise NotFoundError(f"no crash of {args.namespace} {args.workload} is recorded "
                                "(silences are about recorded workloads)")
        if len(found) > 1:
            raise UsageError(f"{args.namespace} {args.workload} is ambiguous: " + ", ".join(
                f"{w.cluster}/{w.namespace} {w.kind}/{w.name}" for w in found))
        by = args.by or f"cli:{getpass.getuser()}"
        silence = store.silences.add(found[0], args.fingerprint, by=by, now=now,
                                     until=now + args.duration, reason=args.reason)
        _write(render("silences.txt.j2", settings.templates_dir, silences=[silence],
                      now=now, added=True, lifted=None))
        return 0
    if action == "remove":
        by = args.by or f"cli:{getpass.getuser()}"
        lifted = store.silences.lift(args.id, by=by, now=now, reason=args.reason)
        if lifted is None:
            known = store.silences.get(args.id)
            raise NotFoundError(f"silence #{args.id} " + (
                "does not exist" if known is None else "has already ended"))
        _write(render("silences.txt.j2", settings.templates_dir, silences=[], now=now,
                      added=False, lifted=lifted))
        return 0
    active = store.silences.active(now)
    if args.json:
        _dump_json([{"id": s.id, "cluster": s.workload.cluster,
                     "namespace": s.workload.namespace, "kind": s.workload.kind,
                     "workload": s.workload.name, "fingerprint": s.identity,
                     "by": s.created_by, "at": s.created_at.isoformat(),
                     "until": s.until.isoformat(), "reason": s.reason,
                     "channel": s.channel} for s in active])
        return 0
    _write(render("silences.txt.j2", settings.templates_dir, silences=active, now=now,
                  added=False, lifted=None))
    return 0


# ---- waiting: retry notes and --timeout ---------------------------------------------
class CommandTimeout(PatrolError):
    """The command's --timeout ran out."""


TIMEOUT_BACKSTOP = 5.0  # seconds past --timeout before the process exits regardless


def _timeout_seconds(text: str) -> float:
    try:
        seconds = float(text) if text.replace(".", "", 1).isdigit() else (
            parse_duration(text).total_seconds())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def _timeout_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--timeout", type=_timeout_seconds, metavar="SECONDS",
                         help="give up after this long (seconds, or 90s, 5m): one line on "
                              "stderr and exit 1")


class _RetryNotes(logging.Handler):
    """Retry notes of the one request function, said on stderr as they happen (on a line
    of their own when a progress counter is showing)."""

    def emit(self, record: logging.LogRecord) -> None:
        fresh = "\r\x1b[K" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{fresh}restart-patrol: {record.getMessage()}\n")
        sys.stderr.flush()


def _say_retries() -> None:
    """Say on stderr when a call to the cluster is being retried (the notes come from
    bot.cluster.transport's logger; nothing is printed there)."""
    notes = logging.getLogger("restart_patrol.cluster.retries")
    if not any(isinstance(h, _RetryNotes) for h in notes.handlers):
        notes.addHandler(_RetryNotes())
    notes.setLevel(logging.WARNING)
    notes.propagate = False


@contextlib.contextmanager
def _capped(seconds: float | None, runtime: Runtime) -> Iterator[None]:
    """Cap the command at `seconds`: calls to the cluster end at that deadline (`patrol`
    bounds its clusters by it); at `seconds` + 1 the main thread is interrupted with a
    CommandTimeout (one line, exit 1, the usual clean-up); should it be stuck in C code,
    the process exits `TIMEOUT_BACKSTOP` seconds later with the same line."""
    if seconds is None:
        yield
        return
    message = f"gave up after {seconds:g} s (--timeout)"

    def backstop() -> None:
        if not runtime.stopping.wait(seconds + 1 + TIMEOUT_BACKSTOP):
            sys.stderr.write(f"restart-patrol: {message}\n")
            sys.stderr.flush()
            os._exit(1)

    def interrupt(_signum: int, _frame: object) -> None:
        raise CommandTimeout(message)

    runtime.thread("timeout", backstop)
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: the backstop alone caps it
        return
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds + 1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restart-patrol",
        description="Tells on-call SREs why Kubernetes pods keep restarting.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a patrol on the built-in simulated cluster, "
                                       "advance a day, show the digest and a diagnosis")
    demo.add_argument("--top", type=int, default=15, help="workloads to show (default 15)")
    demo.set_defaults(handler=cmd_demo)

    patrol = sub.add_parser("patrol", help="one patrol now against the configured cluster")
    patrol.add_argument("--print", action="store_true", help="render for the terminal")
    patrol.add_argument("--json", action="store_true", help="print the digest as JSON")
    patrol.add_argument("-n", "--namespace", action="append", metavar="NS",
                        help="patrol only this namespace (repeatable)")
    patrol.add_argument("--since", type=_duration, metavar="DUR",
                        help="baseline: latest snapshot at or before DUR ago (e.g. 24h)")
    patrol.add_argument("--digest", action="store_true",
                        help="window from the previous digest, and record this as a digest")
    patrol.add_argument("--top", type=int, default=20,
                        help="workloads to list (0 = all; default 20)")
    patrol.add_argument("--cluster", metavar="NAME",
                        help="only this cluster (one of KUBE_CONTEXTS; default: all)")
    _timeout_option(patrol)
    patrol.set_defaults(handler=cmd_patrol)

    why = sub.add_parser("why", help="live diagnosis of a pod or workload")
    why.add_argument("namespace", metavar="[CLUSTER/]NAMESPACE")
    why.add_argument("target", metavar="POD_OR_WORKLOAD")
    why.add_argument("-c", "--container")
    why.add_argument("--json", action="store_true")
    why.add_argument("--log", type=int, metavar="ID",
                     help="print the log tail recorded with crash #ID (see its history)")
    why.add_argument("--since", type=_duration, metavar="DUR",
                     help="the window of its recorded crashes (default 24h)")
    why.add_argument("--chart", metavar="FILE",
                     help="also write the workload's restarts per hour over 14 days, from "
                          "the recorded crashes, as a PNG to FILE")
    _timeout_option(why)
    why.set_defaults(handler=cmd_why)

    diag = sub.add_parser("diagnose", help="offline diagnosis of an exit code and a log (or "
                                           "kubectl describe pod / event list text)")
    diag.add_argument("--exit-code", type=int)
    diag.add_argument("--signal", type=int)
    diag.add_argument("--reason")
    diag.add_argument("--log-file", metavar="F|-",
                      help="log text file, or - for stdin; `kubectl describe pod` output or "
                           "an event list is recognised and read for the termination and events")
    diag.add_argument("--image", help="container image (helps infer the runtime)")
    diag.add_argument("--memory-limit", help="the container's memory limit, e.g. 512Mi")
    diag.add_argument("--json", action="store_true")
    diag.set_defaults(handler=cmd_diagnose)

    serve = sub.add_parser("serve", help="the Slack bot: /restarts, daily digest, health "
                                         "and metrics on PORT")
    serve.set_defaults(handler=cmd_serve)

    record = sub.add_parser("record", help="the flight recorder alone, until SIGTERM: store "
                                           "every crash with its log tail and events")
    record.set_defaults(handler=cmd_record)

    sim = sub.add_parser("sim", help="serve the simulated cluster as a standalone API server")
    sim.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    sim.add_argument("--scenario", metavar="FILE", help="scenario YAML (default: built-in)")
    sim.add_argument("--kubeconfig", metavar="FILE", help="write a kubeconfig here "
                                                          "(default: print it)")
    sim.add_argument("--speed", type=float, default=1.0,
                     help="simulated seconds per real second (default 1; 0 stops the clock)")
    sim.set_defaults(handler=cmd_sim)

    silences = sub.add_parser("silences", help="the silences set on alerts (who, scope, "
                                               "until, why); add and lift them")
    silences.add_argument("--json", action="store_true", help="list as JSON")
    silences.set_defaults(handler=cmd_silences, action=None)
    what = silences.add_subparsers(dest="action", metavar="list|add|remove")
    what.add_parser("list", help="the active silences (default)").add_argument(
        "--json", action="store_true", help="as JSON")
    add = what.add_parser("add", help="silence a recorded workload, or one of its crashes")
    add.add_argument("namespace", metavar="[CLUSTER/]NAMESPACE")
    add.add_argument("workload", metavar="[KIND/]WORKLOAD")
    add.add_argument("--for", dest="duration", type=_duration, required=True, metavar="DUR",
                     help="how long, e.g. 1h, 24h, 7d")
    add.add_argument("--reason", required=True, help="why (shown wherever it is listed)")
    add.add_argument("--fingerprint", metavar="ID",
                     help="only this crash (its fingerprint, as `why --json` shows it); "
                          "default: the whole workload")
    add.add_argument("--by", metavar="NAME", help="who (default: cli:<your login>)")
    remove = what.add_parser("remove", help="lift a silence now")
    remove.add_argument("id", type=int, metavar="ID")
    remove.add_argument("--reason", default="lifted from the terminal", help="why")
    remove.add_argument("--by", metavar="NAME", help="who (default: cli:<your login>)")
    return parser


def _exit_now(code: int) -> None:
    """End a service process once its runtime has stopped everything: logs flushed, then
    `os._exit`, skipping the interpreter's teardown of a large heap (3 s after a 100k-pod
    recorder on a quiet machine, 30 s and more under load — past a Deployment's grace
    period). Nothing is left to finish: the runtime stopped or abandoned every thread."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from bot.runtime import Runtime

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("serve", "record"):  # those two log as a service does
        _say_retries()
    try:
        settings = load_settings()
        handler: Handler = args.handler
        with (Runtime(f"restart-patrol {args.command}") as runtime,  # stopped on the way out
              _capped(getattr(args, "timeout", None), runtime)):
            code = handler(args, settings, runtime)
        if args.command in ("serve", "record"):
            _exit_now(code)
        return code
    except PatrolError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"restart-patrol: {exc}\n")
        suggestions = getattr(exc, "suggestions", ())
        if suggestions:
            sys.stderr.write(f"restart-patrol: did you mean {', '.join(suggestions)}?\n")
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
