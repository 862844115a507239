"""Make trex-stl-lib 0.3 (PyPI) resolve packet offsets by name with current scapy.

trex-stl-lib was written against TRex's patched scapy 2.3, whose ``Packet.build()`` left an ``_offset``
attribute on every layer and field. Current scapy (2.5+) sets none, so every field-engine instruction
written with names crashes at compile time::

    STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src")  # AttributeError: _offset
    STLVmFixIpv4(offset="IP")                           # AttributeError: _offset

and ``STLVmFixChecksumHw`` with *numeric* offsets emits ``l2_len=0`` (it sets ``l2_len`` only when
``l3_offset`` is a name; upstream TRex later fixed this the same way as here).

:func:`apply` replaces the three offset methods of ``CTRexScapyPktUtl`` and
``STLVmFixChecksumHw.compile`` with versions that compute offsets from the built packet:

* a layer's offset is ``len(raw(packet)) - len(raw(layer))``;
* a field's offset and size come from walking the layer's ``fields_desc`` with ``getfield`` over the
  packet bytes at that offset, the way scapy itself dissects (bit fields included).

Layer names are matched against both ``layer.name`` and the class name (``"802.1Q"`` or ``"Dot1Q"``,
``"Ethernet"`` or ``"Ether"``); ``"|"`` stands for ``"."`` (``"802|1Q.vlan"``); ``"IP:1"`` is the second
IP layer. For a bit field the offset is the byte holding its first bit and the size is the number of
bytes it touches (``"IP.flags"`` -> (20, 1), ``"IP.frag"`` -> (20, 2)).

``apply()`` is idempotent and runs when this module is imported (``harness/traffic/__init__.py`` imports
it, so ``import harness.traffic`` is enough).
"""

from __future__ import annotations

from typing import Any

_MARK = "_serpens_stl_compat"


def parse_layer(desc: str) -> tuple[str, int]:
    """``"IP:1"`` -> ``("IP", 1)``; ``"802|1Q"`` -> ``("802.1Q", 0)``."""
    name, _, index = desc.partition(":")
    name = name.replace("|", ".").strip()
    if not name:
        raise ValueError(f"empty layer name in {desc!r}")
    try:
        count = int(index) if index else 0
    except ValueError:
        raise ValueError(f"bad layer index in {desc!r}: expected LAYER or LAYER:N") from None
    if count < 0:
        raise ValueError(f"bad layer index in {desc!r}: must be >= 0")
    return name, count


def _layers(pkt: Any) -> list[Any]:
    from scapy.packet import NoPayload

    out = []
    layer = pkt
    while layer is not None and not isinstance(layer, NoPayload):
        out.append(layer)
        layer = layer.payload
    return out


def find_layer(pkt: Any, name: str, count: int = 0) -> Any:
    """The ``count``-th layer (from 0) of ``pkt`` whose scapy name or class name is ``name``."""
    seen = count
    for layer in _layers(pkt):
        if name in (layer.name, type(layer).__name__):
            if seen == 0:
                return layer
            seen -= 1
    present = ":".join(type(layer).__name__ for layer in _layers(pkt))
    raise LookupError(f"no layer {name}:{count} in packet {present}")


def layer_offset(pkt: Any, desc: str) -> int:
    """Byte offset of the layer named by ``desc`` (``"IP"``, ``"IP:1"``, ``"802|1Q"``) in ``pkt``."""
    name, count = parse_layer(desc)
    return _offset_of(pkt, find_layer(pkt, name, count))


def _offset_of(pkt: Any, layer: Any) -> int:
    return len(bytes(pkt)) - len(bytes(layer))


def _position(data_len: int, rest: bytes | tuple[bytes, int]) -> int:
    """Bit position in the layer's bytes where ``rest`` (a getfield remainder) starts."""
    if isinstance(rest, tuple):
        remaining, bits_done = rest
        return (data_len - len(remaining)) * 8 + bits_done
    return (data_len - len(rest)) * 8


def _field_in_layer(pkt: Any, layer: Any, field_name: str) -> tuple[int, int]:
    base = _offset_of(pkt, layer)
    data = bytes(pkt)[base:]
    # Dissect into a copy, setting each field as it is read, so that fields whose length or presence
    # depends on earlier ones (IP options on ihl, conditional fields) see the values on the wire.
    shadow = layer.copy()
    rest: bytes | tuple[bytes, int] = data
    for fld in layer.fields_desc:
        start = _position(len(data), rest)
        rest, value = fld.getfield(shadow, rest)
        end = _position(len(data), rest)
        shadow.fields[fld.name] = value
        if fld.name == field_name:
            first_byte = start // 8
            last_byte = (end + 7) // 8
            return base + first_byte, last_byte - first_byte
    known = ", ".join(f.name for f in layer.fields_desc)
    raise LookupError(f"layer {type(layer).__name__} has no field {field_name!r} (fields: {known})")


def field_offset(pkt: Any, desc: str) -> tuple[int, int]:
    """``(offset, size)`` in bytes of the field named ``"LAYER[:N].field"`` (``"IP.src"`` -> (26, 4))."""
    layer_desc, dot, field_name = desc.rpartition(".")
    if not dot or not layer_desc or not field_name:
        raise ValueError(f"field name {desc!r} should be LAYER[:N].FIELD, e.g. IP.src or IP:1.src")
    name, count = parse_layer(layer_desc)
    return _field_in_layer(pkt, find_layer(pkt, name, count), field_name)


def apply() -> None:
    """Patch trex-stl-lib in place. Safe to call any number of times."""
    from trex_stl_lib import trex_stl_packet_builder_scapy as builder

    util = builder.CTRexScapyPktUtl
    if getattr(util, _MARK, False):
        return
    build_error = builder.CTRexPacketBuildException

    def _layer(self: Any, name: str, cnt: int) -> Any:
        try:
            return find_layer(self.pkt, name.replace("|", "."), cnt)
        except LookupError as exc:
            raise build_error(-11, str(exc)) from None

    def _layer_offset(self: Any, name: str, cnt: int = 0) -> tuple[Any, int]:
        layer = _layer(self, name, cnt)
        return layer, _offset_of(self.pkt, layer)

    def layer_offset_method(self: Any, name: str, cnt: int = 0) -> int:
        return _layer_offset(self, name, cnt)[1]

    def get_field_offet(self: Any, layer: str, layer_cnt: int, field_name: str) -> tuple[int, int]:
        found = _layer(self, layer, layer_cnt)
        try:
            return _field_in_layer(self.pkt, found, field_name)
        except LookupError as exc:
            raise build_error(-11, str(exc)) from None

    def fix_checksum_hw_compile(self: Any, parent: Any) -> None:
        # l3_offset / l4_offset are offsets from the packet start, by number or by layer name.
        if isinstance(self.l3_offset, str):
            self.l2_len = parent._pkt_layer_offset(self.l3_offset)
        else:
            self.l2_len = self.l3_offset
        if isinstance(self.l4_offset, str):
            self.l4_offset = parent._pkt_layer_offset(self.l4_offset)
        if self.l4_offset < self.l2_len + 8:
            raise build_error(-11, f"STLVmFixChecksumHw: l4_offset {self.l4_offset} must be at least "
                                   f"l3_offset {self.l2_len} + 8")
        self.l3_len = self.l4_offset - self.l2_len

    util._layer_offset = _layer_offset
    util.layer_offset = layer_offset_method
    util.get_field_offet = get_field_offet
    builder.STLVmFixChecksumHw.compile = fix_checksum_hw_compile
    setattr(util, _MARK, True)


def is_applied() -> bool:
    from trex_stl_lib import trex_stl_packet_builder_scapy as builder

    return bool(getattr(builder.CTRexScapyPktUtl, _MARK, False))


try:
    apply()
except ImportError:  # trex-stl-lib missing: harness.traffic.profiles will say so when imported
    pass
