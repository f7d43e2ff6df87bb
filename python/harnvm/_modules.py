"""Where Harn modules come from: the resolver behind ``import``.

The native compiler asks a ``ModuleResolver`` for the source of every
module it imports (once per module and compilation; compiled modules are
cached by the key returned here). Resolution of an import path ``spec``
written in the file ``importer``:

1. ``module_providers``, in order: a mapping ``{import_path: source}`` or a
   callable ``provider(import_path) -> source | None``. The key is
   ``provider:<import_path>``.
2. ``std/NAME``: the Harn standard library shipped in this package
   (``harnvm/stdlib/NAME.harn``; a nested path such as ``std/json/stream``
   is ``harnvm/stdlib/json/stream.harn``). The key is ``std/NAME``.
3. Files, unless ``allow_files`` is false: relative to the importing
   file's directory (the current directory for source text and host
   calls), then under each of ``module_paths``; ``.harn`` is appended when
   the path has no extension. The key is the file's real path.

File imports are confined: the import path must be relative, must not
contain a ``..`` component, must name a ``.harn`` file, and the file's real
path (symlinks resolved) must lie inside the directory it was looked up in.
Anything else is "no such module", so a failed import never reads, and an
error never quotes, a file that is not a Harn module inside those roots.
To allow more of the file system, list the directories in ``module_paths``.

``None`` from ``resolve`` means "no such module".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

# pathlib is imported where a path is handled, not here: `import harnvm` stays
# cheap (see the coldstart suite of `python -m perf`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DEFAULT_RESOLVER", "STDLIB_DIR", "ModuleProvider", "ModuleResolver", "stdlib_modules"]

STDLIB_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "stdlib")
"""Where the std modules' sources are (a str path)."""

ModuleProvider = Mapping[str, str] | Callable[[str], str | None]
"""A source of modules: a mapping ``{import_path: source}`` or a callable
``(import_path) -> source | None``."""

_PROVIDER_PREFIX = "provider:"


def stdlib_modules() -> list[str]:
    """Import paths of the std modules shipped with harnvm (``std/semver``,
    ``std/json/stream``, ...)."""
    found = []
    for folder, dirs, files in os.walk(STDLIB_DIR):
        dirs[:] = [d for d in dirs if _std_segment(d)]
        prefix = os.path.relpath(folder, STDLIB_DIR).replace(os.sep, "/")
        for name in files:
            if name.endswith(".harn") and _std_segment(name[:-5]):
                found.append("std/" + (name[:-5] if prefix == "." else f"{prefix}/{name[:-5]}"))
    return sorted(found)


def _std_segment(part: str) -> bool:
    """One component of a std module path: a plain name (no dots, separators
    or NUL), so a std import never leaves the stdlib directory."""
    return bool(part) and "." not in part and "\\" not in part and "/" not in part and "\0" not in part


def _candidates(spec: str) -> list[str]:
    """``lib/x`` → ``lib/x.harn``; a path with an extension is used as written."""
    name = spec.replace("\\", "/").rsplit("/", 1)[-1]
    return [spec] if "." in name else [spec + ".harn"]


def _read(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


# The std modules ship with the package and do not change while it runs:
# their sources are read once per process.
_STD_SOURCES: dict[str, str] = {}


def _std_source(name: str) -> str | None:
    source = _STD_SOURCES.get(name)
    if source is None:
        parts = name.split("/")
        if not all(_std_segment(part) for part in parts):
            return None
        path = os.path.join(STDLIB_DIR, *parts[:-1], f"{parts[-1]}.harn")
        if not os.path.isfile(path):
            return None
        source = _STD_SOURCES[name] = _read(path)
    return source


def _confined_spec(spec: str) -> bool:
    """A relative import path with no ``..`` (or empty) component, no drive
    and no NUL byte."""
    if not spec or "\0" in spec:
        return False
    text = spec.replace("\\", "/")
    if text.startswith("/") or os.path.isabs(spec) or (len(text) > 1 and text[1] == ":"):
        return False
    return all(part not in ("..", "") for part in text.split("/"))


def _inside(path: str, root: str) -> bool:
    """Whether the real path ``path`` lies inside the real directory ``root``."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


class ModuleResolver:
    """Finds module sources for import paths (see the module docs)."""

    def __init__(
        self,
        module_paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        module_providers: Iterable[ModuleProvider] | ModuleProvider | None = None,
        *,
        allow_files: bool = True,
    ) -> None:
        paths: list[Path] = []
        if module_paths is not None:
            from pathlib import Path

            if isinstance(module_paths, (str, os.PathLike)):
                paths = [Path(module_paths)]
            else:
                paths = [Path(p) for p in module_paths]
        if module_providers is None:
            providers: list[ModuleProvider] = []
        elif isinstance(module_providers, Mapping) or callable(module_providers):
            providers = [module_providers]
        else:
            providers = list(module_providers)
        for p in providers:
            if not (isinstance(p, Mapping) or callable(p)):
                raise TypeError(
                    "a module provider must be a mapping {import_path: source} or a callable "
                    f"(import_path) -> source | None, got {type(p).__name__}"
                )
        self.module_paths: tuple[Path, ...] = tuple(paths)
        self.module_providers: tuple[ModuleProvider, ...] = tuple(providers)
        self.allow_files = bool(allow_files)

    def __repr__(self) -> str:
        paths = [str(p) for p in self.module_paths]
        files = "" if self.allow_files else ", allow_files=False"
        return f"ModuleResolver(module_paths={paths!r}, module_providers={len(self.module_providers)}{files})"

    def resolve(self, spec: str, importer: str) -> tuple[str, str] | None:
        """``(key, source)`` of the module ``spec`` imported from ``importer``, or None."""
        for provider in self.module_providers:
            if isinstance(provider, Mapping):
                source = provider.get(spec)
            else:
                source = provider(spec)
            if source is not None:
                if not isinstance(source, str):
                    raise TypeError(
                        f"module provider returned {type(source).__name__} for {spec!r}; expected str or None"
                    )
                return _PROVIDER_PREFIX + spec, source
        if spec.startswith("std/"):
            source = _std_source(spec[4:])
            return None if source is None else (spec, source)
        if not self.allow_files or not _confined_spec(spec):
            return None
        for base in self._bases(importer):
            for candidate in _candidates(spec):
                if not candidate.endswith(".harn"):
                    continue
                path = base / candidate
                if not path.is_file():
                    continue
                real = os.path.realpath(path)
                if not _inside(real, os.path.realpath(base)):
                    continue
                return real, _read(real)
        return None

    def _bases(self, importer: str) -> list[Path]:
        from pathlib import Path

        if importer.startswith(_PROVIDER_PREFIX) or importer.startswith("std/") or importer.startswith("<"):
            first = Path.cwd()
        else:
            first = Path(importer).parent
        return [first, *self.module_paths]


DEFAULT_RESOLVER = ModuleResolver()
"""The resolver of ``harnvm.compile`` and ``harnvm.run``: std modules and relative paths."""
