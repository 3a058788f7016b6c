"""How templates are read: Jinja's file loader that names a file that is not UTF-8, and the
``LineTags`` extension that keeps a line's newline when a tag ends a line of text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import jinja2
from jinja2.ext import Extension

from scheduler.errors import TemplateError

_TAG = re.compile(r"{%.*?%}", re.S)


class LineTags(Extension):
    """``trim_blocks`` only for block tags that stand alone on their line.

    With plain ``trim_blocks`` a tag at the end of a line of text (``…{% endif %}``) eats
    that line's newline, gluing it to the next line and losing blank lines. Here a line
    that holds text besides its tags keeps its newline (the last tag gets Jinja's ``+%}``).
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        out = []
        for line in source.split("\n"):
            stripped = line.rstrip()
            if (stripped.endswith("%}") and not stripped.endswith(("-%}", "+%}"))
                    and _TAG.sub("", stripped).strip()):
                out.append(stripped[:-2] + "+%}" + line[len(stripped):])
            else:
                out.append(line)
        return "\n".join(out)


class _Loader(jinja2.FileSystemLoader):
    """Jinja's file loader, but a file that is not UTF-8 is a :class:`TemplateError` naming it.

    (Jinja lets the ``UnicodeDecodeError`` through, with a position inside its read buffer.)
    """

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError:
            path = Path(self.searchpath[0], *template.split("/"))
            raw = path.read_bytes()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = raw.count(b"\n", 0, exc.start) + 1
                raise TemplateError(f"{path}: not UTF-8 (byte {exc.start}, line {line}: "
                                    f"{raw[exc.start:exc.start + 1]!r}); save the file as UTF-8") from None
            raise
