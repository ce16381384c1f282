"""Hostile and broken XML: every case ends in FileReadError, quickly, and leaks nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runlog.errors import FileReadError, RunlogError
from runlog.readers.gpx import read_gpx
from runlog.readers.tcx import read_tcx
from runlog.readers.xmlsafe import (
    ENTITY_REFUSAL,
    MAX_DEPTH,
    MAX_VALUE_CHARS,
    XmlTruncatedError,
    iter_xml_events,
)

#: Every hostile input must be refused within this [s].
FAST_S = 2.0

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<gpx version="1.1"><trk><name>&lol9;</name><trkseg>
<trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>
"""


def _consume(data: bytes, name: str = "hostile.xml") -> int:
    return sum(1 for _ in iter_xml_events(data, name))


def _refused_quickly(reader, data: bytes) -> FileReadError:
    """Run ``reader`` on ``data``; it must raise FileReadError (nothing else) within FAST_S."""
    started = time.perf_counter()
    with pytest.raises(RunlogError) as caught:
        reader(data, "hostile.xml")
    elapsed = time.perf_counter() - started
    assert type(caught.value) is FileReadError, caught.value
    assert elapsed < FAST_S, f"took {elapsed:.2f} s"
    assert "\n" not in caught.value.one_line()
    return caught.value


@pytest.mark.parametrize("reader", [_consume, read_gpx, read_tcx])
def test_billion_laughs_refused(reader) -> None:
    error = _refused_quickly(reader, BILLION_LAUGHS)
    assert error.reason == ENTITY_REFUSAL
    assert error.path == "hostile.xml"


@pytest.mark.parametrize("reader", [_consume, read_gpx, read_tcx])
def test_xxe_external_file_entity_refused_and_never_read(reader, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-RUNLOG-CANARY")
    document = (
        f'<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<gpx version="1.1"><trk><name>&xxe;</name><trkseg><trkpt lat="1" lon="2">'
        "<time>2020-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>"
    ).encode()
    error = _refused_quickly(reader, document)
    assert error.reason == ENTITY_REFUSAL
    assert "TOP-SECRET" not in error.one_line()
    assert "TOP-SECRET" not in repr(error.args)


def test_parameter_entity_xxe_refused() -> None:
    document = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY % remote SYSTEM '
                b'"http://127.0.0.1:9/evil.dtd"> %remote;]><gpx/>')
    assert _refused_quickly(_consume, document).reason == ENTITY_REFUSAL


def test_entities_hidden_behind_bom_and_whitespace_refused() -> None:
    assert _refused_quickly(_consume, b"\xef\xbb\xbf \n\t" + BILLION_LAUGHS).reason \
        == ENTITY_REFUSAL


def test_entities_in_utf16_document_refused() -> None:
    document = BILLION_LAUGHS.decode().replace('version="1.0"?>', 'version="1.0" '
                                               'encoding="UTF-16"?>', 1).encode("utf-16")
    assert _refused_quickly(_consume, document).reason == ENTITY_REFUSAL


def test_dtd_without_entities_refused() -> None:
    external = b'<?xml version="1.0"?>\n<!DOCTYPE gpx SYSTEM "http://127.0.0.1:9/gpx.dtd">\n<gpx/>'
    internal = b'<?xml version="1.0"?><!DOCTYPE gpx [<!ELEMENT gpx ANY>]><gpx/>'
    for document in (external, internal):
        error = _refused_quickly(_consume, document)
        assert "DOCTYPE" in error.reason


@pytest.mark.parametrize("reader", [_consume, read_gpx, read_tcx])
def test_100000_deep_nesting_refused(reader) -> None:
    document = b"<gpx>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</gpx>"
    error = _refused_quickly(reader, document)
    assert f"deeper than {MAX_DEPTH}" in error.reason


@pytest.mark.parametrize("reader", [_consume, read_gpx])
def test_50_mb_attribute_refused(reader) -> None:
    document = b'<gpx version="1.1" creator="' + b"A" * 50_000_000 + b'"><trk/></gpx>'
    error = _refused_quickly(reader, document)
    assert "longer than" in error.reason


def test_50_mb_text_node_refused() -> None:
    document = b"<gpx><trk><name>" + b"B" * 50_000_000 + b"</name></trk></gpx>"
    assert "longer than" in _refused_quickly(_consume, document).reason


def test_attribute_just_below_the_bound_is_accepted() -> None:
    document = b'<gpx creator="' + b"A" * (MAX_VALUE_CHARS - 100) + b'"/>'
    assert _consume(document) == 2


def test_truncated_xml_names_the_line_and_says_it_was_cut_short() -> None:
    """Every error on the last line: a document cut short (XmlTruncatedError, which readers
    may salvage); an error before it is a plain FileReadError."""
    document = (b'<?xml version="1.0"?>\n<gpx version="1.1">\n<trk>\n<trkseg>\n'
                b'<trkpt lat="1" lon="2"><time>2020-01-01T00:')
    with pytest.raises(XmlTruncatedError) as caught:
        _consume(document)
    assert caught.value.reason.startswith("XML error at line 5:"), caught.value.reason
    broken_inside = document.replace(b"<trk>\n", b"<trk>\n</trkseg>\n") + b"00Z</time>"
    error = _refused_quickly(_consume, broken_inside)
    assert error.reason.startswith("XML error at line 4:"), error.reason


def test_line_numbers_count_the_stripped_leading_lines() -> None:
    document = b"\n\n\n" + b'<?xml version="1.0"?>\n<gpx>\n<trk>\n</trkseg>\n</gpx>'
    error = _refused_quickly(_consume, document)
    assert error.reason.startswith("XML error at line 7:"), error.reason


@pytest.mark.parametrize("garbage", [
    b"",
    b"   \n  ",
    b"this is a plain text file, not XML at all",
    bytes(range(256)) * 40,
    b"\x0e\x10\x43\x08\x00\x00\x00\x00.FIT\x00\x00",
    b'{"type": "FeatureCollection"}',
])
def test_not_xml_is_a_file_read_error(garbage: bytes) -> None:
    for reader in (_consume, read_gpx, read_tcx):
        _refused_quickly(reader, garbage)


def test_mismatched_tags_refused_despite_recover_mode() -> None:
    error = _refused_quickly(_consume, b"<gpx>\n<trk>\n</trkseg>\n</gpx>")
    assert "line 3" in error.reason


def test_local_names_and_paths_ignore_prefixes_even_undeclared() -> None:
    document = (b'<?xml version="1.0"?>\n<g:gpx xmlns:g="urn:x"><g:trk>'
                b"<undeclared:hr>150</undeclared:hr></g:trk></g:gpx>")
    ends = [(local, list(path), element.text) for event, local, path, element
            in iter_xml_events(document, "x.gpx") if event == "end"]
    assert ends[0] == ("hr", ["gpx", "trk", "hr"], "150")
    assert [local for local, _, _ in ends] == ["hr", "trk", "gpx"]


def test_leading_whitespace_and_bom_before_declaration_accepted() -> None:
    document = b"\n  \xef\xbb\xbf\r\n<?xml version='1.0' encoding='UTF-8'?><gpx><trk/></gpx>"
    assert _consume(document) == 4


def test_processed_elements_are_cleared() -> None:
    n_points = 100_000
    points = b"".join(b'<p n="%d"><v>%d</v></p>' % (i, i) for i in range(n_points))
    document = b"<root>" + points + b"</root>"
    root = None
    most_children = 0
    for event, local, _path, element in iter_xml_events(document, "x.xml"):
        if event == "start" and local == "root":
            root = element
        if event == "end" and local == "p" and element.get("n").endswith("000"):
            most_children = max(most_children, len(root))   # len() walks the children: sample
    assert root is not None
    # The parser reads ahead one buffer (a few thousand elements), never the whole document:
    # processed <p> siblings are removed as we go.
    assert most_children < n_points / 20
