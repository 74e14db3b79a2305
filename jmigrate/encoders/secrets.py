"""Keeping API keys out of every output: a masked holder, and a scrubber for whatever a server says.

A server can echo the key back anywhere: in an error detail, a reason phrase, a header (which
httpcore logs at DEBUG), even in the model name of a successful answer (which goes into the
manifest). Every server-supplied string is therefore scrubbed before it is cut, stored, logged or
raised, and pieces of the key count too: a shortened echo (`jina_abc...`), its tail, or the key
broken up by whitespace would still give most of it away.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"
# Shorter pieces are left alone: the public `jina_` prefix and random coincidences would be masked
# everywhere, and a piece this short does not narrow a 60-character key down usefully.
MIN_PIECE = 8
# Loggers of the HTTP stack (httpx logs reason phrases at INFO, httpcore whole response headers at
# DEBUG), and jmigrate's own as a second net. httpcore's modules (and their loggers) are imported on
# first use, so their names are listed rather than discovered.
HTTP_LOGGERS = ("httpx", "httpcore", "jmigrate")
_NAMED_LOGGERS = ("httpcore.connection", "httpcore.connection_pool", "httpcore.http11", "httpcore.http2",
                  "httpcore.proxy", "httpcore.socks")

_known: set[str] = set()
_known_lock = threading.Lock()


class Secret:
    """Holds a key; every printable form of it is masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"'{MASK}'"

    __str__ = __repr__


def scrub(text: str, secrets: list[str] | tuple[str, ...] | set[str]) -> str:
    """`text` with every occurrence of each secret, and every piece of one at least MIN_PIECE long,
    replaced by `***`. Linear in len(text)."""
    secrets = [s for s in secrets if s]
    if not secrets or not text:
        return text
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, MASK)
    spans: list[tuple[int, int]] = []
    for s in secrets:
        n = min(MIN_PIECE, len(s))
        pieces = {s[i:i + n] for i in range(len(s) - n + 1)}
        i = 0
        while i <= len(text) - n:
            if text[i:i + n] in pieces:
                end = i + n
                # Extend while the next character still continues some piece of the key.
                while end < len(text) and text[end - n + 1:end + 1] in pieces:
                    end += 1
                spans.append((i, end))
                i = end
            else:
                i += 1
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    pos = 0
    for a, z in spans:
        if z <= pos:
            continue
        out.append(text[pos:max(a, pos)])
        out.append(MASK)
        pos = z
    out.append(text[pos:])
    return "".join(out)


def clean_server_text(text: object, secrets: list[str] | tuple[str, ...] | set[str], limit: int) -> str:
    """A server-supplied value made fit for a one-line message or a file: whitespace runs collapsed,
    secrets scrubbed, THEN cut to `limit` characters (cutting first could leave all but the end of a
    key that crossed the cut)."""
    one_line = " ".join(str(text).split())
    # Only the part that can survive the cut needs scrubbing (a hostile server may send megabytes):
    # a key or piece reaching into the first `limit` characters ends within the longest key of them.
    reach = limit + 2 * max((len(s) for s in secrets), default=0) + 16
    cleaned = scrub(one_line[:reach], secrets)
    return cleaned if len(cleaned) <= limit else cleaned[: max(0, limit - 3)] + "..."


def remember(secret: str) -> None:
    """Scrub `secret` from every record of the HTTP stack's loggers from now on (process-wide: a key
    once used is never logged, whichever encoder or thread the record comes from)."""
    if not secret:
        return
    with _known_lock:
        _known.add(secret)
    _install_log_filter()


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            try:
                message = record.getMessage()
            except Exception:  # a broken record is the logging module's to report, not ours
                return True
            clean = scrub(message, tuple(_known))
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FILTER = _ScrubFilter()


def _install_log_filter() -> None:
    # A logger's filters see only records logged on that very logger, so each HTTP-stack logger gets
    # one (httpcore names a logger per module: httpcore.http11, httpcore.connection, ...).
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if any(n == p or n.startswith(p + ".") for p in HTTP_LOGGERS)]
    for name in {*names, *HTTP_LOGGERS, *_NAMED_LOGGERS}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
