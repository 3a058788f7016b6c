"""The composer: records + a Jinja2 template + a platform's text rules → post text.

Templates live in ``templates/<kind>/<platform>.j2`` with a ``_default.j2`` fallback per
kind; English variants are ``<platform>.en.j2`` / ``_default.en.j2`` (PROMO_LANGUAGE=en).
The environment is sandboxed (staff edit templates; a template cannot reach Python
internals) and strict (a missing field fails at compose time, naming template and line).

A text that does not fit is shortened only by cutting the record's description (or the
body of a free text) at a sentence or word boundary, so the link and hashtags the
template adds stay; if even that does not fit, :class:`TooLongError` says by how much.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import re
import traceback
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from scheduler.composer import filters
from scheduler.composer.context import event_context as event_context
from scheduler.composer.context import product_context as product_context
from scheduler.composer.context import text_context as text_context
from scheduler.composer.loading import LineTags, _Loader
from scheduler.errors import ComposeError, TemplateError, TooLongError
from scheduler.textrules import UNIT_NAMES, TextRule, first_broken, last_link_or_tag_end

ELLIPSIS = "…"


@dataclass(frozen=True)
class Composed:
    text: str
    template: str
    counts: tuple[tuple[TextRule, int], ...]
    shortened: bool
    link: str | None
    title: str | None
    summary: str | None


class _StrictSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, but unsafe access is an error instead of an undefined value.

    Jinja's sandbox hands back an undefined object for ``''.__class__``, which ``is defined``
    or ``| default`` would quietly swallow; staff should learn at once that it is refused.
    """

    #: ``**`` and ``*`` are checked: ``9**9**9`` or ``"x" * 10**9`` would hang or exhaust the service.
    intercepted_binops = frozenset({"**", "*"})
    MAX_RESULT = 10**12
    MAX_REPEAT = 10_000

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64 or isinstance(left, int | float) and abs(left) > 10**6:
                raise SecurityError("exponent too large in a template")
            return left**right
        if operator == "*":
            if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
                count = right if isinstance(right, int) else left
                if isinstance(count, int) and count > self.MAX_REPEAT:
                    raise SecurityError("repetition too large in a template")
            return left * right
        return super().call_binop(context, operator, left, right)


def _refuse_callables(value: Any) -> Any:
    """Output finalizer: printing a method or function shows Python internals (addresses)."""
    if callable(value) and not isinstance(value, jinja2.Undefined):
        raise SecurityError(f"cannot print {type(value).__name__} {getattr(value, '__name__', '')!r}: "
                            "call it or use a field instead")
    return value


class Composer:
    """A sandboxed, strict Jinja2 environment over a templates folder."""

    def __init__(self, templates_dir: Path, tz: ZoneInfo, language: str = "id"):
        self.templates_dir = Path(templates_dir)
        self.tz = tz
        self.language = language
        env = _StrictSandbox(
            loader=_Loader(str(self.templates_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=_refuse_callables,
            extensions=[LineTags],
        )

        # A def rather than a lambda: mypy cannot infer a lambda with a default argument.
        def date_range(s: dt.datetime, e: dt.datetime | None = None) -> str:
            return filters.date_range(s, e, tz, language)

        env.filters.update({
            "rupiah": filters.rupiah,
            "long_date": lambda v: filters.long_date(v, tz, language),
            "short_date": lambda v: filters.short_date(v, tz, language),
            "time_tz": lambda v: filters.time_tz(v, tz, language),
            "date_range": date_range,
            "hashtags": filters.hashtags,
            "number": lambda v: filters.number(v, language),
        })
        env.globals.update({"language": language})
        self.env = env

    # --- templates ------------------------------------------------------------------

    def candidates(self, kind: str, platform: str) -> list[str]:
        names = [f"{kind}/{platform}.j2", f"{kind}/_default.j2"]
        if self.language != "id":
            names = [f"{kind}/{platform}.{self.language}.j2", f"{kind}/_default.{self.language}.j2", *names]
        return names

    def template_name(self, kind: str, platform: str, template: str | None = None) -> str:
        if template:
            for name in (template, f"{kind}/{template}", f"{kind}/{template}.j2"):
                if (self.templates_dir / name).is_file():
                    return name
            raise TemplateError(f"no template {template!r} in {self.templates_dir}/ or {self.templates_dir}/{kind}/")
        for name in self.candidates(kind, platform):
            if (self.templates_dir / name).is_file():
                return name
        raise TemplateError(f"no template for kind {kind!r}: looked for "
                            + ", ".join(f"{self.templates_dir}/{n}" for n in self.candidates(kind, platform)))

    def variant(self, name: str, seed: str | None) -> str:
        """Template variants: beside ``<kind>/<stem>.j2`` any ``<kind>/<stem>~<label>.j2`` is an
        alternative wording. ``seed`` (the record and the day) picks one, the same for the same
        seed, so repeated posts of one record vary from day to day; None = the template itself."""
        if seed is None:
            return name
        folder, _, file = name.rpartition("/")
        stem = file.removesuffix(".j2")
        where = self.templates_dir / folder if folder else self.templates_dir
        found = sorted(p.name for p in where.glob(f"{glob.escape(stem)}~*.j2") if p.is_file())
        if not found:
            return name
        names = [name, *(f"{folder}/{f}" if folder else f for f in found)]
        pick = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % len(names)
        return names[pick]

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            tmpl = self.env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"syntax error: {exc.message}", exc.name or name, exc.lineno) from None
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template {name!r} not found") from None
        try:
            out = tmpl.render(**context)
        except ComposeError:  # an included template that cannot be read (not UTF-8)
            raise
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"unknown field: {exc.message}", name, _template_line(exc, name)) from None
        except SecurityError as exc:
            raise TemplateError(f"not allowed in a template: {exc}", name, _template_line(exc, name)) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(str(exc), name, _template_line(exc, name)) from None
        except Exception as exc:  # anything a template expression can raise (1/0, a bad filter argument…)
            raise TemplateError(f"{type(exc).__name__}: {exc}", name, _template_line(exc, name)) from None
        return tidy(out)

    # --- composing -------------------------------------------------------------------

    def compose(self, kind: str, platform: str, context: Mapping[str, Any], rules: tuple[TextRule, ...], *,
                body: tuple[str, str] | None = None, template: str | None = None,
                link: str | None = None, title: str | None = None,
                refusal: str = "and it has no description to shorten", variant: str | None = None) -> Composed:
        """Render and fit. ``body`` = (dotted path in context, text) that may be shortened.

        Without a body, a text that does not fit raises :class:`TooLongError` saying by how
        much, followed by ``refusal`` (why it was not shortened, what to do).
        """
        name = self.template_name(kind, platform, template)
        if template is None:  # a template asked for by name is used as it is
            name = self.variant(name, variant)
        shortened = False
        if body is not None and len(body[1]) > _CHECK_WHOLE_UP_TO * max((r.limit for r in rules), default=0):
            # A body this long is fitted from its start rather than counted whole first: counting
            # costs time per character (X's counter reads ~60,000 characters a second).
            text, shortened = self._shorten(name, context, rules, body[0], body[1])
        else:
            text = self.render(name, context)
            if first_broken(rules, text) is not None:
                if body is None or not body[1]:
                    _raise_too_long(text, rules, name, refusal)
                text, shortened = self._shorten(name, context, rules, body[0], body[1], whole_fits=False)
        counts = tuple((r, r.count(text)) for r in rules)
        summary = context.get("summary") if isinstance(context.get("summary"), str) else None
        return Composed(text=text, template=name, counts=counts, shortened=shortened, link=link,
                        title=title, summary=summary)

    def _shorten(self, name: str, context: Mapping[str, Any], rules: tuple[TextRule, ...], path: str,
                 full: str, whole_fits: bool | None = None) -> tuple[str, bool]:
        """The longest text that fits, with the body cut at one of its cut points: (text, shortened).

        Candidates, shortest first: no body at all (a record's description may go entirely; the
        post still has its title; free text must keep its first words), each cut point, the
        whole body. Length grows with the cut position, so the search gallops from the start
        (1, 2, 4… cuts) and then halves: every candidate rendered and counted is at most about
        twice as long as the answer, whatever the size of the body, and the body is never copied
        per cut (cuts are positions).
        """
        cuts = Cuts.of(full)
        first = -1 if path != "text" else 0
        last = len(cuts)  # the whole body

        def render(k: int) -> str:
            value = "" if k < 0 else full if k == last else cuts.text(k)
            return self.render(name, _with(context, path, value))

        def fits(k: int) -> str | None:
            if k == last and whole_fits is False:
                return None
            candidate = render(k)
            return candidate if first_broken(rules, candidate) is None else None

        best = fits(first)
        if best is None:
            how = ("even with the description left out" if first < 0 else
                   "even cut after its first words" if len(cuts) else "and it cannot be cut at a word boundary")
            _raise_too_long(render(first), rules, name, how)
        good, bad, step = first, last + 1, 1
        while good < last:  # gallop: find a candidate that does not fit
            k = min(good + step, last)
            text = fits(k)
            if text is None:
                bad = k
                break
            good, best, step = k, text, step * 2
        while bad - good > 1:  # then halve between the last fitting one and it
            k = (good + bad) // 2
            text = fits(k)
            if text is None:
                bad = k
            else:
                good, best = k, text
        assert best is not None
        return best, good != last


def _raise_too_long(text: str, rules: tuple[TextRule, ...], name: str,
                    how: str = "and it has no description to shorten") -> NoReturn:
    broken = first_broken(rules, text)
    assert broken is not None
    rule, n = broken
    raise TooLongError(f"{name}: text is {n} {UNIT_NAMES[rule.method]}, {n - rule.limit} over the limit of "
                       f"{rule.describe()}, {how}", length=n, limit=rule.limit)


def _with(context: Mapping[str, Any], path: str, value: str) -> dict[str, Any]:
    """A copy of context with the dotted ``path`` set to ``value``."""
    out = dict(context)
    head, _, rest = path.partition(".")
    if rest:
        inner = dict(out[head])
        inner[rest] = value
        out[head] = inner
    else:
        out[head] = value
    return out


#: A body up to this many times the largest limit is rendered and counted whole first.
_CHECK_WHOLE_UP_TO = 4
_WORD_END = re.compile(r"\S(?=\s)")
_TAIL_TOKEN = re.compile(r"https?://\S+|#\w+")
_SENTENCE_MARKS = ".!?…"
_TRAILING_PUNCTUATION = ",;:—–-"


def _split_tail(text: str) -> tuple[str, str, str]:
    """(prose, separator, tail): the tail is the trailing run of links and hashtags.

    Walks back from the end token by token, so it reads only the tail and one word more.
    """
    pos, tail_start, prose_end = len(text), None, None
    while True:
        end = pos
        while end > 0 and text[end - 1].isspace():
            end -= 1
        start = end
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        if start == end:  # no more tokens: all of it is links and hashtags
            break
        if not _TAIL_TOKEN.fullmatch(text, start, end):
            prose_end = end
            break
        tail_start = pos = start
    if tail_start is None or prose_end is None:
        return text, "", ""
    return text[:prose_end], text[prose_end:tail_start], text[tail_start:]


@dataclass(frozen=True)
class Cuts:
    """Where a body may be cut: positions in its prose, shortest first, never copies of it.

    A cut never removes a URL or hashtag: a trailing run of links and hashtags is kept after
    the shortened prose, and a link or hashtag inside the prose is never cut (the prose keeps
    at least everything up to the last one). Word cuts get an ellipsis, sentence cuts end
    cleanly. The empty text is never a cut: whether a body may go entirely is the caller's
    decision. Memory is one machine integer per word end.
    """

    prose: str
    sep: str
    tail: str
    ends: array[int]

    @classmethod
    def of(cls, text: str) -> Cuts:
        prose, sep, tail = _split_tail(text.strip())
        protected = last_link_or_tag_end(prose)
        ends = array("q")
        if 0 < protected < len(prose) and not prose[protected].isspace():
            ends.append(protected)  # up to the last link or hashtag, when no space follows it (e.g. "#tag.")
        for m in _WORD_END.finditer(prose, max(protected - 1, 0)):
            ends.append(m.end())
        return cls(prose, sep, tail, ends)

    def __len__(self) -> int:
        return len(self.ends)

    def text(self, i: int) -> str:
        """The body cut at the ``i``-th position."""
        end = self.ends[i]
        prose = self.prose
        if end < len(prose) and prose[end].isspace() and not prose[end - 1].isspace():
            cut = prose[:end] if prose[end - 1] in _SENTENCE_MARKS else (
                prose[:end].rstrip(_TRAILING_PUNCTUATION) + ELLIPSIS)
        else:
            cut = prose[:end]
        return cut + self.sep + self.tail if self.tail else cut


def tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out)


def _template_line(exc: BaseException, name: str) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and frame.filename.replace("\\", "/").endswith(name):
            return frame.lineno
    return None
