"""The static gate's ratchet: no file may have more lint or type errors than the baseline lists.

The tree had ~365 ruff and ~336 mypy errors when the gate was set up, and engineers were working
in many of those files at once, so fixing them all in one go would have conflicted with each of
them. The gate therefore fails on any error a change adds (more errors in a file than it had, or
errors in a file that had none) and lets the count only fall. `--update` writes the current
counts (run it after fixing some, so they cannot come back); `--strict` counts every error.

Usage: static_baseline.py [--strict | --update] RUFF_OUTPUT MYPY_OUTPUT
  (the concise outputs of `ruff check --output-format concise` and of `mypy`, in files)
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

BASELINE = Path(__file__).resolve().parent.parent / ".ci" / "static-baseline.txt"
# ruff concise: "path:line:col: CODE message"; mypy: "path:line: error: message  [code]"
RUFF_LINE = re.compile(r"^(?P<path>[^:\s][^:]*):\d+:\d+: [A-Z]+\d+ ")
MYPY_LINE = re.compile(r"^(?P<path>[^:\s][^:]*):\d+: error: ")


def errors(ruff_out: str, mypy_out: str) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    counts: Counter[tuple[str, str]] = Counter()
    lines: dict[tuple[str, str], list[str]] = {}
    for tool, text, pattern in (("ruff", ruff_out, RUFF_LINE), ("mypy", mypy_out, MYPY_LINE)):
        for line in text.splitlines():
            m = pattern.match(line)
            if m:
                key = (tool, m["path"])
                counts[key] += 1
                lines.setdefault(key, []).append(line)
    return counts, lines


def read_baseline() -> Counter[tuple[str, str]]:
    base: Counter[tuple[str, str]] = Counter()
    if BASELINE.exists():
        for line in BASELINE.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                tool, path, count = line.split()
                base[(tool, path)] = int(count)
    return base


def write_baseline(counts: Counter[tuple[str, str]]) -> None:
    head = (
        "# Lint (ruff) and type (mypy) errors per file that the static gate still tolerates; scripts/check\n"
        "# fails on any more. Lower it with `scripts/check --update-baseline` after fixing some. Goal: empty.\n"
    )
    body = "".join(f"{tool} {path} {n}\n" for (tool, path), n in sorted(counts.items()) if n)
    BASELINE.write_text(head + body)


def main(argv: list[str]) -> int:
    mode = argv[0] if argv and argv[0].startswith("--") else ""
    ruff_file, mypy_file = [a for a in argv if not a.startswith("--")]
    counts, lines = errors(Path(ruff_file).read_text(), Path(mypy_file).read_text())
    total = {t: sum(n for (tool, _), n in counts.items() if tool == t) for t in ("ruff", "mypy")}
    if mode == "--update":
        write_baseline(counts)
        print(f"baseline written: {total['ruff']} ruff, {total['mypy']} mypy errors", file=sys.stderr)
        return 0
    base = Counter() if mode == "--strict" else read_baseline()
    worse = sorted(k for k, n in counts.items() if n > base[k])
    for key in worse:
        tool, path = key
        print(f"{tool}: {path} has {counts[key]} errors, {base[key]} allowed:", file=sys.stderr)
        for line in lines[key]:
            print("  " + line, file=sys.stderr)
    allowed = {t: sum(n for (tool, _), n in base.items() if tool == t) for t in ("ruff", "mypy")}
    print(
        f"static errors: ruff {total['ruff']} (baseline {allowed['ruff']}), "
        f"mypy {total['mypy']} (baseline {allowed['mypy']})",
        file=sys.stderr,
    )
    if not worse and any(counts[k] < n for k, n in base.items()):
        print("fewer errors than the baseline: run scripts/check --update-baseline to keep it so", file=sys.stderr)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
