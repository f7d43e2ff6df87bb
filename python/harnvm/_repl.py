"""The interactive session of ``python -m harnvm`` (``harnvm repl``).

Each entry runs as a small script-mode program on one ``Vm``. What a line
binds stays for the lines after it:

* ``let``/``var`` bindings: their values are read back after the line ran
  and bound again (as ``var``) at the start of every later program, so
  ``x = x + 1`` works and functions stored in variables stay callable;
* declarations (``fn``, ``struct``, ``enum``, ``import``, ``type``, ...):
  their text is kept and compiled in front of every later program.

An expression's value is printed in Harn's display form (nothing for
``nil``); ``println`` output appears as it is written. Errors are printed
and leave the session as it was. A line that ends inside an open bracket
or string asks for more (``...>``).
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

import harnvm

_DECLARATION = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s*)*(?:pub\s+)?(?:gen\s+fn|fn|struct|enum|import|type|interface|impl|tool)\b")
_BINDING = re.compile(r"^\s*(?:let|var)\s+([A-Za-z_]\w*)\s*(?::[^=]*)?=")
_VALUE = "__repl_value"
_ENV = "__repl_env"


class Repl:
    def __init__(self, output: TextIO | None = None) -> None:
        self.out = output or sys.stdout
        self.declarations: list[str] = []
        self.values: dict[str, Any] = {}
        self.vm = harnvm.Vm(output=self._write, typecheck=False)
        self.vm.register(_ENV, lambda: dict(self.values))

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _program(self, body: str, names: list[str]) -> str:
        lines = list(self.declarations)
        if self.values:
            lines.append(f"let __repl_bound = {_ENV}()")
            lines += [f'var {n} = __repl_bound["{n}"]' for n in self.values if n not in names]
        lines.append(body)
        fields = ", ".join(f'"{n}": {n}' for n in [*self.values, *names] if n != _VALUE)
        lines.append(f'{{"{_VALUE}": {_VALUE}{", " if fields else ""}{fields}}}')
        return "\n".join(lines)

    def compile_entry(self, text: str) -> tuple[str, Any]:
        """How ``text`` runs: ``("declaration", program)``, ``("expression", program)``
        or ``("statement", program)``. Raises ``HarnSyntaxError``."""
        if _DECLARATION.match(text):
            program = "\n".join([*self.declarations, text])
            return "declaration", harnvm.compile(program, "<repl>", typecheck=False)
        try:
            source = self._program(f"let {_VALUE} = (\n{text}\n)", [])
            return "expression", harnvm.compile(source, "<repl>", typecheck=False)
        except harnvm.HarnSyntaxError:
            bound = _BINDING.match(text)
            names = [bound.group(1)] if bound else []
            source = self._program(f"{text}\nlet {_VALUE} = nil", names)
            return "statement", harnvm.compile(source, "<repl>", typecheck=False)

    def execute(self, text: str) -> None:
        """Runs one entry; prints its value or its error."""
        try:
            kind, program = self.compile_entry(text)
            if kind == "declaration":
                self.vm.run(program)
                self.declarations.append(text)
                return
            result = self.vm.run(program)
        except harnvm.HarnError as e:
            self.out.flush()
            print(str(e), file=sys.stderr, flush=True)
            return
        value = result.pop(_VALUE, None)
        self.values.update(result)
        if value is not None:
            self._write(harnvm.display(value) + "\n")

    @staticmethod
    def _incomplete(text: str) -> bool:
        """Whether ``text`` stops inside an open bracket or string."""
        try:
            harnvm.compile(text, "<repl>", typecheck=False)
        except harnvm.HarnSyntaxError as e:
            message = e.message.lower()
            return "eof" in message or "end of file" in message or "unterminated" in message
        return False

    def loop(self, source: TextIO, *, interactive: bool) -> int:
        """Reads entries from ``source`` until its end; returns the exit status."""
        if interactive:
            self._write(f"harnvm {harnvm.__version__} (Harn). Ctrl-D to leave.\n")
        pending: list[str] = []
        while True:
            if interactive:
                self._write("...> " if pending else "harn> ")
            try:
                line = source.readline()
            except KeyboardInterrupt:
                self._write("\n")
                pending = []
                continue
            if not line:
                if pending:
                    self.execute("\n".join(pending))
                if interactive:
                    self._write("\n")
                return 0
            pending.append(line.rstrip("\n"))
            text = "\n".join(pending)
            if not text.strip():
                pending = []
                continue
            if self._incomplete(text):
                continue
            pending = []
            self.execute(text)
