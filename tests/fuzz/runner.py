"""Runs a fuzz campaign in worker subprocesses and collects findings.

    python -m tests.fuzz --count 1000000 --seed 1 [--jobs 2] [--batch 5000]
                         [--time-limit 1.0] [--save tests/fuzz_findings]

Each worker runs a batch of programs (generated from the stream `seed`, by
index) in one process. A worker that dies (signal or non-zero exit) names
the program it was running; one that prints nothing for `--watchdog`
seconds is killed and its program counted as a hang. The campaign goes on
from the next program. Findings are saved as `<class>-<seed>-<index>.harn`
(with the reason in a comment at the top) under `--save`.

The summary gives programs run, outcomes by class, and findings by class:
`death`, `hang`, `internal`, `overrun`, `python:<Type>`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.generate import program

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Finding:
    cls: str
    seed: int
    index: int
    detail: str


@dataclass
class Campaign:
    seed: int
    time_limit: float
    watchdog: float
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: list[Finding] = field(default_factory=list)

    @property
    def programs(self) -> int:
        return sum(self.outcomes.values())

    def finding_counts(self) -> dict[str, int]:
        return dict(collections.Counter(f.cls for f in self.findings))

    @property
    def failures(self) -> list[Finding]:
        """Findings that fail a campaign (all but load-induced wall-time overruns)."""
        return [f for f in self.findings if f.cls not in INFORMATIONAL]


#: Outcome of programs that ran in a worker stopped with the campaign (classes not reported).
STOPPED = "ran, unclassified (campaign stopped)"

#: Finding classes reported but not failing a campaign.
INFORMATIONAL = {"overrun-wall-only"}


def _spawn(seed: int, start: int, count: int, time_limit: float) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fuzz.worker", str(seed), str(start), str(count), str(time_limit)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


class Batch:
    """One worker running programs [start, end)."""

    def __init__(self, campaign: Campaign, start: int, end: int) -> None:
        self.campaign, self.start, self.end = campaign, start, end
        self.current: int | None = None
        self.buffer = b""
        self.last_news = time.monotonic()
        self.done = False
        self.proc = _spawn(campaign.seed, start, end - start, campaign.time_limit)

    def feed(self, data: bytes) -> None:
        self.last_news = time.monotonic()
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            tag, _, rest = line.decode().partition(" ")
            if tag == "S":
                self.current = int(rest)
            elif tag == "F":
                index, _, payload = rest.partition(" ")
                info = json.loads(payload)
                self.campaign.findings.append(Finding(info["class"], self.campaign.seed, int(index), info["detail"]))
                print(f"finding: {info['class']} at {self.campaign.seed}/{index}: {info['detail'][:300]}", file=sys.stderr, flush=True)
            elif tag == "D":
                self.campaign.outcomes.update(json.loads(rest))
                self.done = True

    def finish(self, hung: bool) -> int | None:
        """Reaps the worker; returns the index to resume from, if any."""
        if hung:
            self.proc.kill()
        stderr = self.proc.communicate()[1].decode(errors="replace")
        if self.done and not hung and self.proc.returncode == 0:
            return None
        index = self.current if self.current is not None else self.start
        cls = "hang" if hung else "death"
        detail = f"worker exit status {self.proc.returncode}; stderr tail:\n{stderr[-3000:]}"
        if hung:
            detail = f"no progress for {self.campaign.watchdog}s"
        self.campaign.findings.append(Finding(cls, self.campaign.seed, index, detail))
        self.campaign.outcomes[cls] += 1
        # The programs this worker finished before it died (their classes were not reported).
        self.campaign.outcomes["ran before a death"] += index - self.start
        return index + 1 if index + 1 < self.end else None


def run_campaign(
    count: int,
    seed: int = 0,
    start: int = 0,
    jobs: int = 1,
    batch: int = 2000,
    time_limit: float = 1.0,
    watchdog: float = 60.0,
    progress: float = 0.0,
) -> Campaign:
    """Runs programs `start .. start+count` of stream `seed` in `jobs` parallel
    workers; with `progress` (seconds), reports finished programs that often on stderr."""
    campaign = Campaign(seed, time_limit, watchdog)
    pending = [(s, min(s + batch, start + count)) for s in range(start, start + count, batch)]
    pending.reverse()
    running: dict[int, Batch] = {}
    sel = selectors.DefaultSelector()
    began = last_report = time.monotonic()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                s, e = pending.pop()
                b = Batch(campaign, s, e)
                running[b.proc.stdout.fileno()] = b  # type: ignore[union-attr]
                sel.register(b.proc.stdout, selectors.EVENT_READ, b)  # type: ignore[arg-type]
            for key, _ in sel.select(timeout=1.0):
                b = key.data
                data = os.read(key.fd, 65536)
                if data:
                    b.feed(data)
                    continue
                sel.unregister(key.fileobj)
                del running[key.fd]
                resume = b.finish(hung=False)
                if resume is not None:
                    pending.append((resume, b.end))
            now = time.monotonic()
            for fd, b in list(running.items()):
                if now - b.last_news > watchdog:
                    sel.unregister(b.proc.stdout)  # type: ignore[arg-type]
                    del running[fd]
                    resume = b.finish(hung=True)
                    if resume is not None:
                        pending.append((resume, b.end))
            if progress and now - last_report >= progress:
                last_report = now
                finished = campaign.programs + sum(b.current - b.start for b in running.values() if b.current is not None)
                rate = finished / max(now - began, 1e-9)
                print(
                    f"{time.strftime('%H:%M:%S')} {finished} programs finished ({rate:.0f}/s), "
                    f"findings {campaign.finding_counts()}",
                    file=sys.stderr,
                    flush=True,
                )
    except (Stopped, KeyboardInterrupt):
        for b in running.values():
            b.proc.kill()
            b.proc.communicate()
            campaign.outcomes[STOPPED] += (b.current - b.start) if b.current is not None else 0
    return campaign


def save_findings(campaign: Campaign, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    for f in campaign.findings:
        source, filename = program(f.seed, f.index)
        header = "".join(f"// {line}\n" for line in [f"class: {f.cls}", f"stream {f.seed} index {f.index}", f"from: {filename}"])
        header += "".join(f"// {line}\n" for line in f.detail.splitlines()[-20:])
        path = directory / f"{f.cls.replace(':', '_')}-{f.seed}-{f.index}.harn"
        path.write_text(header + source, encoding="utf-8")
        saved.append(path)
    return saved


class Stopped(Exception):
    pass


def _stop(*_args: object) -> None:
    raise Stopped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first program index")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=5000, help="programs per worker process")
    ap.add_argument("--time-limit", type=float, default=1.0)
    ap.add_argument("--watchdog", type=float, default=60.0)
    ap.add_argument("--save", type=Path, default=REPO_ROOT / "tests" / "fuzz_findings")
    ap.add_argument("--progress", type=float, default=60.0, help="seconds between progress lines (0: none)")
    args = ap.parse_args(argv)
    began = time.monotonic()
    signal.signal(signal.SIGTERM, _stop)
    campaign = run_campaign(
        args.count, args.seed, args.start, args.jobs, args.batch, args.time_limit, args.watchdog, progress=args.progress
    )
    elapsed = time.monotonic() - began
    print(f"programs run: {campaign.programs} (stream {args.seed}, indices {args.start}..{args.start + args.count}) in {elapsed:.0f}s")
    print("outcomes:", json.dumps(dict(sorted(campaign.outcomes.items())), indent=None))
    counts = campaign.finding_counts()
    for cls in ("death", "hang", "internal", "overrun"):
        counts.setdefault(cls, 0)
    print("findings:", json.dumps(dict(sorted(counts.items()))))
    for path in save_findings(campaign, args.save):
        print("saved", path)
    return 1 if campaign.failures else 0
