"""Diagnosis accuracy on the real crash fixtures, per file and per fold, for the engine as it
was at given git refs, side by side with the working tree.

Each column is one version of `bot/diagnosis`: `--at REF` extracts that directory from the
ref (`git archive`) into a temporary folder and measures it in a fresh interpreter, so a
column is exactly what that commit knew. The cases always come from today's
`tests/fixtures/`, so an older engine is measured on crashes it had never seen.

`crash_logs_3.jsonl` (the set the engine was tuned on last) is split by source project
(`owner/repo` of the issue URL): fold A when the first byte of the project's SHA-256 is
even, else fold B. A project never straddles the folds. The rules were generalised on
fold A and committed before fold B was read: measured at that commit, fold B is held out.

`local_crashes.jsonl` is the blind corpus of real crashes produced on this machine
(`tests/fixtures/local_crashes.py`), committed before the engine was measured on it; its folds
L1/L2 are by case id. "public (173)" is the three files of public crash excerpts.

Signature % — the signature holds every expected substring (1–8 lines; 0–8 when the case
expects none: nothing in its log explains the end, e.g. an OOM kill); category % — the
category is one the case accepts (the same two checks as tests/unit/test_fixtures.py).

    .venv/bin/python -m tests.bench.bench_diagnose_folds --at 0b656ec=before \\
        --at <fold-A commit>=fold-A [--runtimes] [--misses]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
FILES = ("crash_logs.jsonl", "crash_logs_2.jsonl", "crash_logs_3.jsonl", "local_crashes.jsonl",
         "local_crashes_2.jsonl", "local_crashes_3.jsonl", "local_crashes_4.jsonl",
         "local_crashes_5.jsonl", "local_crashes_6.jsonl", "local_crashes_7.jsonl",
         "local_crashes_8.jsonl", "local_crashes_9.jsonl", "local_crashes_10.jsonl",
         "local_crashes_11.jsonl", "local_crashes_12.jsonl")
FOLDED = "crash_logs_3.jsonl"
# The blind corpus produced on this machine (tests/fixtures/local_crashes.py): every case has
# the same source, so its folds are by case: L1 when the first byte of the id's SHA-256 is
# even, else L2.
LOCAL = "local_crashes.jsonl"
# The fifth blind set is folded the same way (5a even, 5b odd): rules are written reading 5a's
# misses only, and 5b measured at that commit is the held-out figure.
LOCAL5 = "local_crashes_5.jsonl"
LOCAL6 = "local_crashes_6.jsonl"
LOCAL7 = "local_crashes_7.jsonl"
LOCAL8 = "local_crashes_8.jsonl"
LOCAL9 = "local_crashes_9.jsonl"
FOLDS = {FOLDED: ("A", "B"), LOCAL: ("L1", "L2"), LOCAL5: ("5a", "5b"), LOCAL6: ("6a", "6b"),
         LOCAL7: ("7a", "7b"), LOCAL8: ("8a", "8b"), LOCAL9: ("9a", "9b")}
# The sets written to print only messages no earlier fixture printed (`--novel`).
NOVEL = ("local_crashes_7.jsonl", "local_crashes_8.jsonl", LOCAL9, "local_crashes_10.jsonl",
         "local_crashes_11.jsonl", "local_crashes_12.jsonl")

# Runs in a fresh interpreter whose working directory holds the `bot/diagnosis` under test.
WORKER = r"""
import json, sys
import bot.diagnosis.engine as engine
cases = json.load(sys.stdin)
results = []
for c in cases:
    d = engine.diagnose(engine.Evidence(exit_code=c["exit_code"], reason=c["reason"],
                                        log=c["log"]))
    text = "\n".join(d.signature)
    results.append({
        "signature": (0 < len(d.signature) if c["expected_signature"] else True)
                     and len(d.signature) <= 8
                     and all(e in text for e in c["expected_signature"]),
        "category": str(d.category) in c["accept_categories"],
        "got": str(d.category), "lines": list(d.signature)})
json.dump({"engine": engine.__file__, "results": results}, sys.stdout)
"""


def project_of(case: dict[str, Any]) -> str:
    """`owner/repo` of the issue the excerpt comes from, lower-cased."""
    return "/".join(case["source"].split("/")[3:5]).lower()


def fold_of(case: dict[str, Any]) -> str:
    """The fold of a case of a folded file ("" for the others)."""
    if case.get("file") in (LOCAL, LOCAL5, LOCAL6, LOCAL7, LOCAL8, LOCAL9):
        even, odd = FOLDS[case["file"]]
        return even if hashlib.sha256(case["id"].encode()).digest()[0] % 2 == 0 else odd
    if case.get("file") == FOLDED:
        return "A" if hashlib.sha256(project_of(case).encode()).digest()[0] % 2 == 0 else "B"
    return ""


def load_cases(ref: str | None = None) -> list[dict[str, Any]]:
    """The cases of today's fixtures, or of the fixtures as they were at git `ref` (labels
    included: e.g. the blind corpus as committed, before any label was revised)."""
    cases = []
    if ref is not None:  # a commit, also when named by its subject (':/Blind corpus')
        ref = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True,
                             text=True, check=True).stdout.strip()
    for name in FILES:
        if ref is None:
            if not (FIXTURES / name).exists():
                continue  # not made yet
            text = (FIXTURES / name).read_text()
        else:
            shown = subprocess.run(["git", "-C", str(ROOT), "show",
                                    f"{ref}:tests/fixtures/{name}"],
                                   capture_output=True, text=True, check=False)
            if shown.returncode:
                continue  # the file did not exist yet
            text = shown.stdout
        for line in text.splitlines():
            if line.strip():
                cases.append({**json.loads(line), "file": name})
    return cases


def measure(code_dir: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-case results of the `bot/diagnosis` found in `code_dir`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", WORKER], input=json.dumps(cases), capture_output=True,
        text=True, cwd=code_dir, env=env, check=True)
    data = json.loads(out.stdout)
    engine = Path(data["engine"]).resolve()
    if not engine.is_relative_to(code_dir.resolve()):
        raise SystemExit(f"measured {engine}, not the code under {code_dir}")
    return list(data["results"])


def extract(ref: str, into: Path) -> Path:
    """`bot/diagnosis` as it was at `ref`, under `into` (with an empty `bot/__init__.py`)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref,
                              "bot/diagnosis"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    (into / "bot" / "__init__.py").write_text("")
    return into


def rows_of(cases: list[dict[str, Any]], runtimes: bool) -> list[tuple[str, list[int]]]:
    """(label, indices of the cases it covers), in print order."""
    def pick(pred: Any) -> list[int]:
        return [i for i, c in enumerate(cases) if pred(c)]

    rows: list[tuple[str, list[int]]] = []
    for name in FILES:
        rows.append((f"{name}", pick(lambda c, n=name: c["file"] == n)))
        rows += [(f"  fold {f}", pick(lambda c, f=f: fold_of(c) == f))
                 for f in FOLDS.get(name, ())]
    rows.append(("public", pick(lambda c: not c["file"].startswith("local_"))))
    rows.append(("novel sets 7-12", pick(lambda c: c["file"] in NOVEL)))
    rows.append(("all", list(range(len(cases)))))
    if runtimes:
        for name, folds in FOLDS.items():
            families = sorted({c["runtime"].split(" ")[0] for c in cases if c["file"] == name})
            for fam in families:
                for f in folds:
                    rows.append((f"  {fam} fold {f}", pick(
                        lambda c, fam=fam, f=f: fold_of(c) == f
                        and c["runtime"].split(" ")[0] == fam)))
    return [(label, idx) for label, idx in rows if idx]


def percent(results: list[dict[str, Any]], idx: Iterable[int], key: str) -> str:
    chosen = [results[i][key] for i in idx]
    return f"{100 * sum(chosen) / len(chosen):5.1f}" if chosen else "  -  "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", action="append", default=[], metavar="REF[=LABEL]",
                        help="also measure bot/diagnosis as of this git ref (repeatable)")
    parser.add_argument("--runtimes", action="store_true",
                        help=f"rows per runtime family and fold of {FOLDED}")
    parser.add_argument("--fixtures-at", metavar="REF",
                        help="measure on the fixtures as of this git ref (default: today's)")
    parser.add_argument("--misses", action="store_true",
                        help="list the cases the last column gets wrong")
    parser.add_argument("--fold", choices=("A", "B", "L1", "L2", "5a", "5b", "6a", "6b", "7a",
                                           "7b", "8a", "8b", "9a", "9b"),
                        help="list only the misses of this fold and print no row that includes "
                             "the other fold of its file: keeps it unread while tuning")
    args = parser.parse_args(argv)
    cases = load_cases(args.fixtures_at)
    columns: list[tuple[str, list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, spec in enumerate(args.at):
            ref, _, label = spec.partition("=")
            sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref],
                                 capture_output=True, text=True, check=True).stdout.strip()
            code = extract(ref, Path(tmp) / str(n))
            columns.append((f"{label or ref} ({sha})", measure(code, cases)))
        columns.append(("working tree", measure(ROOT, cases)))
    sizes = {f: sum(1 for c in cases if fold_of(c) == f) for fs in FOLDS.values() for f in fs}
    print(f"{FOLDED} folds by project: A {sizes['A']}, B {sizes['B']} cases; "
          f"{LOCAL} folds by case: L1 {sizes['L1']}, L2 {sizes['L2']} cases; "
          f"{LOCAL5} by case: 5a {sizes['5a']}, 5b {sizes['5b']}; "
          f"{LOCAL6}: 6a {sizes['6a']}, 6b {sizes['6b']}; {LOCAL7}: 7a {sizes['7a']}, "
          f"7b {sizes['7b']}; {LOCAL8}: 8a {sizes['8a']}, 8b {sizes['8b']}; "
          f"{LOCAL9}: 9a {sizes['9a']}, 9b {sizes['9b']}")
    width = 34
    print(f"{'':{width}s}" + "".join(f" | {title:^15.15s}" for title, _ in columns))
    print(f"{'fixtures (cases)':{width}s}" + " | sig %   cat %" * len(columns))
    hidden = {"A": "B", "B": "A", "L1": "L2", "L2": "L1", "5a": "5b", "5b": "5a", "6a": "6b",
              "6b": "6a", "7a": "7b", "7b": "7a", "8a": "8b", "8b": "8a",
              "9a": "9b", "9b": "9a"}.get(args.fold or "")
    for label, idx in rows_of(cases, args.runtimes):
        if hidden and any(fold_of(cases[i]) == hidden for i in idx):
            continue  # --fold: nothing that includes the other fold is shown
        print(f"{label + f' ({len(idx)})':{width}s}" + "".join(
            f" | {percent(res, idx, 'signature')}   {percent(res, idx, 'category')}"
            for _, res in columns))
    if args.misses:
        title, results = columns[-1]
        print(f"\nmisses of {title}:")
        for case, res in zip(cases, results, strict=True):
            if args.fold and fold_of(case) != args.fold:
                continue
            if not (res["signature"] and res["category"]):
                fold = f" fold {fold_of(case)}" if fold_of(case) else ""
                wanted = "ok" if res["signature"] else f"MISSING {case['expected_signature']!r}"
                print(f"- {case['file']}:{case['id']}{fold} got {res['got']} "
                      f"(want {case['accept_categories']}), signature {wanted}: "
                      f"{res['lines'][:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
