"""XMP packets: read dc:description / dc:subject and merge our caption into a packet.

Our properties live in one `rdf:Description` of our own (marked `kohyaorch:CaptionedBy`),
inserted just before `</rdf:RDF>`; the rest of a foreign packet is kept byte for byte, except
foreign dc:description / dc:subject, which are removed (a property may appear only once).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from kohya_orchestrator.dataset.metadata.common import TOOL_NAME, XMP_NAMESPACE, XMP_PREFIX
from kohya_orchestrator.errors import ImageFormatError


# xml.sax.saxutils' escape and quoteattr, byte for byte: importing xml.sax pulls in
# urllib.request and http.client (about 50 ms), which every command that embeds paid.
def escape(data: str) -> str:
    """`&`, `<` and `>` as entities."""
    return data.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def quoteattr(data: str) -> str:
    """An attribute value, escaped and quoted as xml.sax.saxutils.quoteattr quotes it."""
    data = escape(data).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' in data:
        if "'" in data:
            return '"{}"'.format(data.replace('"', "&quot;"))
        return f"'{data}'"
    return f'"{data}"'


RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_BLOCK_START = '<rdf:Description xmlns:rdf="' + RDF + '"'
_BLOCK_RE = re.compile(
    re.escape(_BLOCK_START)
    + r"[^>]*?xmlns:"
    + XMP_PREFIX
    + '="'
    + re.escape(XMP_NAMESPACE)
    + r'".*?</rdf:Description>',
    re.DOTALL,
)
_PACKET_HEAD = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_TAIL = '\n<?xpacket end="w"?>'


def _bad(problem: str) -> ImageFormatError:
    return ImageFormatError(
        f"malformed XMP: {problem}",
        hint="the file's existing XMP packet is damaged; repair or remove it first",
    )


class _Builder(ET.TreeBuilder):
    """A tree builder that also records namespace bindings, so one parse gives both."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: list[tuple[str, str]] = []

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix, uri))


@dataclass
class Packet:
    """A checked XMP packet: its bytes, XML tree and namespace bindings."""

    raw: bytes
    root: ET.Element
    namespaces: list[tuple[str, str]]


def _refuse_dtd(packet: bytes) -> None:
    upper = packet.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise ImageFormatError(
            "XMP packet contains a DTD/ENTITY declaration; refused (entity expansion risk)",
            hint="remove the XMP packet from this file with another tool first",
        )


def parse(packet: bytes) -> Packet:
    """The packet's XML tree; refuses DTD/ENTITY declarations and ill-formed XML."""
    _refuse_dtd(packet)
    builder = _Builder()
    parser = ET.XMLParser(target=builder)
    try:
        parser.feed(packet.rstrip(b"\x00"))
        root = parser.close()
    except ET.ParseError as err:
        raise _bad(str(err)) from None
    return Packet(packet, root, builder.namespaces)


def _descriptions(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{{{RDF}}}Description"))


def read_fields(packet: Packet) -> tuple[dict[str, str], str | None]:
    """Caption-ish XMP fields (name -> text) and the caption we embedded, if marked."""
    root = packet.root
    fields: dict[str, str] = {}
    ours: str | None = None
    for desc in _descriptions(root):
        description = _lang_alt(desc.find(f"{{{DC}}}description"))
        if description is not None:
            fields["XMP dc:description"] = description
            if desc.get(f"{{{XMP_NAMESPACE}}}CaptionedBy") == TOOL_NAME:
                ours = description
        subject = desc.find(f"{{{DC}}}subject")
        if subject is not None:
            items = [li.text or "" for li in subject.iter(f"{{{RDF}}}li")]
            fields["XMP dc:subject"] = ", ".join(items)
    return fields, ours


def _lang_alt(node: ET.Element | None) -> str | None:
    if node is None:
        return None
    items = list(node.iter(f"{{{RDF}}}li"))
    if not items:
        return node.text or ""
    default = next((li for li in items if li.get(XML_LANG) == "x-default"), items[0])
    return default.text or ""


def our_block(caption: str, tags: list[str], about: str) -> str:
    """Our rdf:Description: the marker, dc:description (x-default) and dc:subject."""
    subject = "".join(f"<rdf:li>{escape(tag)}</rdf:li>" for tag in tags)
    return (
        f"{_BLOCK_START} xmlns:dc={quoteattr(DC)}"
        f" xmlns:{XMP_PREFIX}={quoteattr(XMP_NAMESPACE)}"
        f" rdf:about={quoteattr(about)} {XMP_PREFIX}:CaptionedBy={quoteattr(TOOL_NAME)}>"
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(caption)}'
        "</rdf:li></rdf:Alt></dc:description>"
        f"<dc:subject><rdf:Bag>{subject}</rdf:Bag></dc:subject></rdf:Description>"
    )


def _wrap(block: str) -> str:
    body = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{RDF}">{block}</rdf:RDF></x:xmpmeta>'
    )
    return _PACKET_HEAD + body + _PACKET_TAIL


_EMPTY_PACKET = _wrap("")


def new_packet(caption: str, tags: list[str]) -> bytes:
    return _wrap(our_block(caption, tags, "")).encode("utf-8")


def _remove_element(text: str, name: str) -> str:
    pattern = re.compile(
        rf"<{re.escape(name)}(?:\s[^>]*)?/>|<{re.escape(name)}(?:\s[^>]*)?>.*?</{re.escape(name)}\s*>",
        re.DOTALL,
    )
    return pattern.sub("", text)


def merge(packet: Packet | None, caption: str, tags: list[str]) -> bytes:
    """A packet holding our caption: a new one, or `packet` with our block replaced."""
    if packet is None:
        return new_packet(caption, tags)
    try:
        text = packet.raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _bad(f"packet is not UTF-8 ({err.reason} at byte {err.start})") from None
    text = _BLOCK_RE.sub("", text)
    if text == _EMPTY_PACKET:  # only our own block was there: no foreign content to keep
        return new_packet(caption, tags)
    # Prefixes as bound in the foreign part alone (our removed block may bind "dc" too).
    foreign = parse(text.encode("utf-8")).namespaces
    for prefix in {p for p, uri in foreign if uri == DC}:
        for local in ("description", "subject"):
            text = _remove_element(text, f"{prefix}:{local}" if prefix else local)
    rdf_prefixes = {p for p, uri in foreign if uri == RDF}
    closing = [m for p in rdf_prefixes for m in re.finditer(rf"</{re.escape(p)}:RDF\s*>", text)]
    if not closing or "" in rdf_prefixes:
        raise _bad("no rdf:RDF element to add the caption to")
    about = next((d.get(f"{{{RDF}}}about") or "" for d in _descriptions(packet.root)), "")
    at = max(m.start() for m in closing)
    merged = (text[:at] + our_block(caption, tags, about) + text[at:]).encode("utf-8")
    count = sum(1 for _ in parse(merged).root.iter(f"{{{DC}}}description"))
    if count != 1:
        raise _bad(f"cannot merge the caption: {count} dc:description properties after merging")
    return merged
