"""A progress bar for long commands (``harnvm conformance``, ``python -m perf``).

Shown only when standard output is a terminal. Uses tqdm when it is
installed (the ``progress`` extra), else a plain one-line counter on stderr.
Messages go through ``Progress.write`` so they do not tear the bar.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, TextIO


class Progress:
    def __init__(self, total: int, label: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self._bar: Any = None
        if self.enabled:
            try:
                # (By name: tqdm is optional and ships no type stubs.)
                tqdm = importlib.import_module("tqdm").tqdm
            except ImportError:
                self._draw()
            else:
                self._bar = tqdm(total=total, desc=label, unit="case" if label == "conformance" else "it", file=self.stream)

    def _draw(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r\x1b[K")

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._draw()

    def write(self, line: str, file: TextIO | None = None) -> None:
        """Prints ``line`` (to stdout by default) above the bar."""
        out = file or sys.stdout
        if self.enabled and self._bar is not None:
            self._bar.write(line, file=out)
            return
        if self.enabled:
            self._clear()
        print(line, file=out, flush=True)
        if self.enabled:
            self._draw()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._clear()
            self.stream.flush()
