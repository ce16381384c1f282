"""Stream elements out of untrusted XML bytes (GPX, TCX) without trusting the document.

One entry point, :func:`iter_xml_events`. What it guarantees:

* **No entity expansion, no network, no DTD.** Any ``<!DOCTYPE`` is refused before parsing
  (GPX and TCX never need one): with entity declarations it is the billion-laughs / XXE
  pattern and the message says so. lxml is additionally run with ``resolve_entities=False``,
  ``no_network=True``, ``load_dtd=False`` and ``huge_tree=False`` (libxml2's own size limits
  stay on), and the parsed document's ``docinfo`` is checked again once the root opens.
* **Bounded shape.** Nesting deeper than :data:`MAX_DEPTH` elements is refused as soon as it
  is seen; an attribute value or text node longer than :data:`MAX_VALUE_CHARS` characters is
  refused before parsing starts (a vectorised scan for the longest stretch without ``<``,
  which no attribute value or character data may contain).
* **Real-world prologs.** Leading whitespace and byte-order marks before the XML declaration
  are stripped (line numbers in errors still count from the file's first line); UTF-16 input
  (with or without a BOM) is transcoded to UTF-8.
* **Undeclared namespace prefixes are tolerated**, as in
  ``runpandas/tests/io/data/tcx/malformed.tcx`` (``xsi:type`` with no ``xmlns:xsi``, also a
  file whose root element is missing): lxml runs in recover mode, and afterwards every
  logged error that is *not* a namespace error becomes a :class:`FileReadError`, so truncated or
  broken XML is still refused.
* **Local names only.** Elements are reported by local name (``{ns}hr``, ``gpxtpx:hr`` and
  ``hr`` are all ``"hr"``) with the path of local names from the root, so any prefix works.
* **Flat memory.** Each element is cleared after its ``end`` event has been handled and its
  already-processed previous siblings are removed from the tree.

Every lxml failure becomes ``FileReadError`` with a one-line reason and the line number.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np
from lxml import etree

from runlog.errors import FileReadError

#: Deepest element nesting accepted [elements]. GPX and TCX need at most ~10.
MAX_DEPTH = 64
#: Longest attribute value or text node accepted [characters].
MAX_VALUE_CHARS = 1_000_000

ENTITY_REFUSAL = "refused: XML declares entities (possible entity-expansion attack)"
DTD_REFUSAL = "refused: XML has a DOCTYPE/DTD, which GPX and TCX never use"

_LEADING_JUNK = b" \t\r\n\xef\xbb\xbf"          # whitespace and the UTF-8 BOM
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*\?>")
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


class XmlTruncatedError(FileReadError):
    """The XML stops before its end, as a partial copy or download does: every error is on
    the last line. Raised after every event before the cut was yielded, so a reader that
    collected them can keep what is complete (and must say the file is damaged)."""


def _local_name(tag: str) -> str:
    """``{ns}name`` / ``prefix:name`` / ``name`` → ``name``."""
    return tag.rpartition("}")[2].rpartition(":")[2]


def _prepare(data: bytes, name: str) -> tuple[bytes, int]:
    """Strip BOMs/whitespace before the declaration, transcode UTF-16, refuse DOCTYPEs.

    Returns the bytes to parse and the number of lines removed from the front (added back
    to line numbers in error messages).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FileReadError("not XML: expected bytes", path=name)
    data = bytes(data)
    utf16 = ("utf-16" if data.startswith(_UTF16_BOMS) else "utf-16-le"
             if data.startswith(b"<\x00?\x00") else "utf-16-be"
             if data.startswith(b"\x00<\x00?") else None)
    if utf16 is not None:
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError as exc:
            raise FileReadError(f"not XML: bad UTF-16 ({exc.reason})", path=name) from None
        data = text.lstrip("\ufeff").encode("utf-8")
        data = _XML_DECLARATION.sub(b"", data.lstrip(), count=1)  # it named UTF-16
    stripped = data.lstrip(_LEADING_JUNK)
    lines_removed = data[: len(data) - len(stripped)].count(b"\n")
    if not stripped:
        raise FileReadError("not XML: the file is empty", path=name)
    root_at = _FIRST_ELEMENT.search(stripped)
    prolog = stripped[: root_at.start()] if root_at else stripped
    if _DOCTYPE.search(prolog):
        reason = ENTITY_REFUSAL if _ENTITY.search(prolog) else DTD_REFUSAL
        raise FileReadError(reason, path=name)
    if _longest_run_without_markup(stripped) > MAX_VALUE_CHARS:
        raise FileReadError(
            f"refused: XML attribute or text longer than {MAX_VALUE_CHARS} characters",
            path=name)
    return stripped, lines_removed


def _longest_run_without_markup(data: bytes) -> int:
    """Longest stretch of ``data`` without a ``<`` [bytes].

    ``<`` may not appear inside an attribute value or character data, so this bounds every
    attribute and text node before libxml2 spends time on a hostile one (vectorised, ~50 ms
    for 50 MB).
    """
    if len(data) <= MAX_VALUE_CHARS:
        return 0
    opens = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("<"))
    edges = np.concatenate(([-1], opens, [len(data)]))
    return int(np.diff(edges).max()) - 1


def _error_reason(error: etree._LogEntry | etree.LxmlError, lines_removed: int) -> str:
    """One line: ``XML error at line N: message``."""
    if isinstance(error, etree._LogEntry):
        line, message = error.line, error.message
    else:
        line = getattr(error, "lineno", None) or getattr(error, "position", (None,))[0]
        log = getattr(error, "error_log", None)
        last = log.last_error if log is not None else None
        message = last.message if last is not None else str(error)
        line = last.line if last is not None else line
    message = " ".join(str(message).split())
    if line:
        return f"XML error at line {int(line) + lines_removed}: {message}"
    return f"XML error: {message}"


def iter_xml_events(data: bytes, name: str) -> Iterator[tuple[str, str, list[str], etree._Element]]:
    """Yield ``(event, local_name, path, element)`` for every element of ``data``.

    ``event`` is ``"start"`` (attributes are available, children and text are not yet) or
    ``"end"`` (text and children available). ``path`` is the list of local names from the
    root to the element itself inclusive; it is the same list object on every yield, so copy
    it if you keep it. After an ``end`` event has been handled the element is cleared: read
    what you need from it before asking for the next event.

    Errors raised by the iterator are always :class:`FileReadError` (named ``name``): hostile
    constructs are refused, malformed XML is reported with its line number. Because a broken
    document may only be detected when the parser reaches the end, callers must not act on
    the events before the iterator is exhausted (collect, then build). A document cut short
    (every error on its last line) raises :class:`XmlTruncatedError` at the end instead.
    """
    payload, lines_removed = _prepare(data, name)
    context = etree.iterparse(
        io.BytesIO(payload), events=("start", "end"), resolve_entities=False, no_network=True,
        load_dtd=False, dtd_validation=False, huge_tree=False, recover=True,
        remove_blank_text=False,
    )
    path: list[str] = []
    local_names: dict[str, str] = {}         # tag → local name, computed once per tag
    root_checked = False
    try:
        for event, element in context:
            tag = element.tag
            if not isinstance(tag, str):      # comments / processing instructions
                continue
            if event == "start":
                local = local_names.get(tag)
                if local is None:
                    local = local_names[tag] = _local_name(tag)
                path.append(local)
                if len(path) > MAX_DEPTH:
                    raise FileReadError(
                        f"refused: XML nested deeper than {MAX_DEPTH} elements "
                        f"(line {element.sourceline + lines_removed})", path=name)
                if not root_checked:
                    root_checked = True
                    docinfo = element.getroottree().docinfo
                    if docinfo.doctype or docinfo.internalDTD is not None:
                        raise FileReadError(DTD_REFUSAL, path=name)
                yield event, local, path, element
            else:
                yield event, path[-1], path, element
                path.pop()
                element.clear(keep_tail=False)
                parent = element.getparent()
                if parent is not None:        # drop processed previous siblings (the parser
                    while element.getprevious() is not None:     # may already hold later ones)
                        del parent[0]
    except etree.LxmlError as exc:
        raise FileReadError(_error_reason(exc, lines_removed), path=name) from None
    # Recover mode keeps going past real errors: report any that is not a namespace quirk.
    errors = [entry for entry in context.error_log
              if entry.level >= etree.ErrorLevels.ERROR
              and entry.domain != etree.ErrorDomains.NAMESPACE]
    if errors:
        reason = _error_reason(errors[0], lines_removed)
        last_line = payload.count(b"\n") + 1
        if root_checked and all(entry.line >= last_line for entry in errors):
            raise XmlTruncatedError(reason, path=name)
        raise FileReadError(reason, path=name)
    if not root_checked:
        raise FileReadError("not XML: no root element", path=name)


def events_until_cut(data: bytes, name: str, cuts: list[XmlTruncatedError],
                     ) -> Iterator[tuple[str, str, list[str], etree._Element]]:
    """:func:`iter_xml_events`, ending quietly at the end of a document cut short: its
    :class:`XmlTruncatedError` is appended to ``cuts`` (every other error still raises)."""
    try:
        yield from iter_xml_events(data, name)
    except XmlTruncatedError as error:
        cuts.append(error)
