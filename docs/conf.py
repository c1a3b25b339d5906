"""Sphinx configuration for the trio_bufwriter documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``
(``nox -s docs`` does this and runs the snippets' tests).

Intersphinx links to the Python and Trio docs need their inventories, which
are fetched over the network.  A failed fetch is a warning, and the build
treats warnings as errors, so the links are only enabled when the inventories
can be reached:

* ``TRIO_BUFWRITER_DOCS_OFFLINE=1`` turns them off, ``=0`` forces them on;
* on Read the Docs they are always on;
* otherwise they are on if docs.python.org can be reached.

References into those projects (``trio.*``, ``ssl.*``, builtins...) are
exempt from nitpicky checking either way (see ``nitpick_ignore_regex``), so
the offline and online builds check the same thing: every reference to this
package's own API must resolve.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sphinx.application import Sphinx  # noqa: E402
from sphinx.ext.napoleon import Config as NapoleonConfig  # noqa: E402
from sphinx.ext.napoleon.docstring import GoogleDocstring  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402

import trio_bufwriter  # noqa: E402

project = "trio_bufwriter"
author = "trio_bufwriter developers"
copyright = "trio_bufwriter developers"
release = trio_bufwriter.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinxcontrib_trio",
]

exclude_patterns = ["_build", "snippets", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"trio_bufwriter {release}"

default_role = "py:obj"
nitpicky = True
nitpick_ignore_regex = [
    # Other projects' objects: linked when intersphinx is on, plain text when not.
    (
        r"py:.*",
        r"(trio|anyio|os|ssl|socket|typing|typing_extensions|collections|contextlib|enum|types)"
        r"(\..*)?",
    ),
    (r"py:.*", r"(int|float|str|bytes|bytearray|memoryview|bool|object|list|dict|tuple|type)"),
    (r"py:.*", r"(None|Exception|BaseException|ExceptionGroup|BaseExceptionGroup)"),
    (r"py:.*", r"(TypeError|ValueError|RuntimeError|KeyboardInterrupt|OSError)"),
    (r"py:.*", r"(Literal|Iterable|Iterator|AsyncIterator|Unpack|TypeAlias|NoReturn)"),
    # Type aliases and TypedDicts that exist only for type checkers.
    (r"py:.*", r"(trio_bufwriter\._\w+\.)?(WriterOptions|BytesLike|Range|WriterStatistics_)"),
    # Type variables (receive_frames(decode: Callable[[FrameReader], T]) -> list[T]).
    (r"py:.*", r"(trio_bufwriter\._\w+\.)?T"),
    (r"py:.*", r"(AbstractAsyncContextManager|TaskStatus)(\[.*\])?"),
]

# autodoc: members in source order; signatures as written (the package uses
# ``from __future__ import annotations`` and TYPE_CHECKING-only names).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options: dict[str, object] = {}
autoclass_content = "class"


def _inventories_reachable() -> bool:
    setting = os.environ.get("TRIO_BUFWRITER_DOCS_OFFLINE")
    if setting is not None:
        return setting.strip().lower() in ("0", "", "no", "false")
    if os.environ.get("READTHEDOCS"):
        return True
    try:
        socket.create_connection(("docs.python.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


if _inventories_reachable():
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "trio": ("https://trio.readthedocs.io/en/stable", None),
    }
else:
    intersphinx_mapping = {}
intersphinx_timeout = 10


# ----------------------------------------------------------------------
# Google-style docstrings ("Args:", "Raises:"), converted with napoleon's
# parser, but not through the napoleon extension itself: napoleon reads the
# first line of a property's or attribute's docstring as "type: description",
# and this package's one-line summaries contain colons ("The most bytes the
# writer will hold (None: no limit)...").

_NAPOLEON = NapoleonConfig(napoleon_google_docstring=True, napoleon_numpy_docstring=False)


def _restore_defining_modules() -> None:
    """Point each public class's ``__module__`` back at the module defining it.

    The package sets it to ``trio_bufwriter`` (as trio does, for reprs), so
    autodoc would look for the ``#:`` attribute comments and the source order
    in ``__init__.py`` and find neither.  The documented names stay
    ``trio_bufwriter.X``: they come from the directives.  (Only in this
    process, for the build.)
    """
    modules = [name for name in sys.modules if name.startswith("trio_bufwriter._")]
    for name in trio_bufwriter.__all__:
        obj = getattr(trio_bufwriter, name)
        if not isinstance(obj, type) or obj.__module__ != "trio_bufwriter":
            continue
        for module in modules:
            if vars(sys.modules[module]).get(name) is not obj:
                continue
            if name in ModuleAnalyzer.for_module(module).find_tags():
                obj.__module__ = module
                break


_restore_defining_modules()


def _google_docstrings(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    if what in ("attribute", "data", "property"):
        return  # one-line summaries, not napoleon's "type: description"
    converted = GoogleDocstring(lines, _NAPOLEON, app, what, name, obj)
    lines[:] = converted.lines()


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", _google_docstrings)
