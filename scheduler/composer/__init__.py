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
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from scheduler.composer import filters
from scheduler.errors import ComposeError, TemplateError, TooLongError
from scheduler.textrules import TextRule, find_urls, first_broken, hashtag_spans

KINDS = ("product_highlight", "daily_highlight", "event_announcement", "event_reminder", "event_dayof",
         "event_ongoing", "event_cancelled", "free_text", "alert")
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
                line = stripped[:-2] + "+%}" + line[len(stripped):]
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
                link: str | None = None, title: str | None = None) -> Composed:
        """Render and fit. ``body`` = (dotted path in context, text) that may be shortened."""
        name = self.template_name(kind, platform, template)
        text = self.render(name, context)
        broken = first_broken(rules, text)
        shortened = False
        if broken is not None:
            if body is None or not body[1]:
                _raise_too_long(text, rules, name)
            path, full = body
            text = self._shorten(name, context, rules, path, full, text)
            shortened = True
        counts = tuple((r, r.count(text)) for r in rules)
        summary = context.get("summary") if isinstance(context.get("summary"), str) else None
        return Composed(text=text, template=name, counts=counts, shortened=shortened, link=link,
                        title=title, summary=summary)

    def _shorten(self, name: str, context: Mapping[str, Any], rules: tuple[TextRule, ...], path: str,
                 full: str, original: str) -> str:
        cuts = cut_points(full)
        # A record's description may go entirely (the post still has its title); free text
        # is the whole post, so at least its first words must stay.
        may_drop = path != "text"
        if may_drop:
            cuts = ["", *cuts]
        best: str | None = None
        lo, hi = 0, len(cuts) - 1
        # Length grows with the cut position, so binary-search the longest body that fits.
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = self.render(name, _with(context, path, cuts[mid]))
            if first_broken(rules, candidate) is None:
                best = candidate
                lo = mid + 1
            else:
                hi = mid - 1
        if best is None:
            shortest = self.render(name, _with(context, path, cuts[0])) if cuts else original
            how = ("even with the description left out" if may_drop else
                   "even cut after its first words" if cuts else "and it cannot be cut at a word boundary")
            _raise_too_long(shortest, rules, name, how)
        assert best is not None
        return best


def _raise_too_long(text: str, rules: tuple[TextRule, ...], name: str,
                    how: str = "and it has no description to shorten") -> NoReturn:
    broken = first_broken(rules, text)
    assert broken is not None
    rule, n = broken
    raise TooLongError(f"{name}: text is {n} against a limit of {rule.describe()}, {how}; "
                       f"shorten the template or the text", length=n, limit=rule.limit)


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


_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


_TAIL_TOKEN = re.compile(r"(?:https?://\S+|#\w+)")


def _split_tail(text: str) -> tuple[str, str, str]:
    """(prose, separator, tail): the tail is the trailing run of links and hashtags."""
    tokens = list(re.finditer(r"\S+", text))
    i = len(tokens)
    while i > 0 and _TAIL_TOKEN.fullmatch(tokens[i - 1].group(0)):
        i -= 1
    if i == len(tokens) or i == 0:
        return text, "", ""
    prose_end = tokens[i - 1].end()
    tail_start = tokens[i].start()
    return text[:prose_end], text[prose_end:tail_start], text[tail_start:]


def cut_points(text: str) -> list[str]:
    """Shorter versions of ``text``, ending at sentence ends or word ends, shortest first
    (never the empty text: whether a body may go entirely is the caller's decision).

    A cut never removes a URL or hashtag: a trailing run of links and hashtags is kept
    after the shortened prose, and a link or hashtag inside the prose is never cut (the
    prose keeps at least everything up to the last one). Word cuts get an ellipsis,
    sentence cuts end cleanly.
    """
    prose, sep, tail = _split_tail(text.strip())
    protected = 0
    for url in find_urls(prose):
        protected = max(protected, prose.rfind(url) + len(url))
    for _start, end, _tag in hashtag_spans(prose):
        protected = max(protected, end)
    options: dict[int, str] = {}
    for m in _SENTENCE_END.finditer(prose):
        end = m.end()
        if end >= protected and end < len(prose):
            options[end] = prose[:end]
    for m in re.finditer(r"\S(?=\s)", prose):
        end = m.end()
        if end >= protected and end not in options:
            options[end] = prose[:end].rstrip(",;:—–-") + ELLIPSIS
    if 0 < protected < len(prose):
        options.setdefault(protected, prose[:protected])
    if not tail:
        return [options[k] for k in sorted(options)]
    return [options[k] + sep + tail for k in sorted(options)]


def tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out)


def _template_line(exc: BaseException, name: str) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and frame.filename.replace("\\", "/").endswith(name):
            return frame.lineno
    return None


# --- contexts from records ---------------------------------------------------------------

def product_context(product: Any, *, now: dt.datetime | None = None) -> dict[str, Any]:
    umkm = product.umkm
    return {
        "product": {"id": product.external_id, "name": product.name, "description": product.description or "",
                    "price": product.price, "url": product.url, "tags": list(product.tags or []),
                    "image": product.image},
        "umkm": {"id": umkm.external_id, "name": umkm.name, "owner": umkm.owner or "", "city": umkm.city or "",
                 "district": umkm.district or "", "category": umkm.category or "", "phone": umkm.phone or "",
                 "instagram": umkm.instagram or "", "website": umkm.website or ""},
        "link": product.url or umkm.website or "",
        "summary": product.description or "",
    }


def event_context(event: Any, *, now: dt.datetime | None = None, tz: ZoneInfo | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    days_left = None
    if tz is not None:
        days_left = (event.starts_at.astimezone(tz).date() - now.astimezone(tz).date()).days
    return {
        "event": {"id": event.external_id, "name": event.name, "description": event.description or "",
                  "venue": event.venue or "", "city": event.city or "", "starts_at": event.starts_at,
                  "ends_at": event.ends_at, "url": event.url, "tags": list(event.tags or []),
                  "status": event.status, "multi_day": bool(event.ends_at and tz and
                                                            event.ends_at.astimezone(tz).date()
                                                            != event.starts_at.astimezone(tz).date())},
        "days_left": days_left,
        "link": event.url or "",
        "summary": event.description or "",
    }


def text_context(text: str, link: str | None = None) -> dict[str, Any]:
    return {"text": text, "link": link or "", "summary": ""}


ContextBuilder = Callable[..., dict[str, Any]]
