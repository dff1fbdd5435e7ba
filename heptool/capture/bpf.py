"""A BPF-like filter for capture files: a pcap-filter(7) subset compiled to a predicate.

:func:`compile_filter` turns ``udp port 5060 and not host 10.0.0.1`` into a
``predicate(Transport) -> bool``; live capture hands the expression to the kernel instead,
as the program :func:`compile_bpf` has libpcap compile (any pcap-filter(7) expression).
"""

from __future__ import annotations

from typing import Any

from ..core.addr import port_number

__all__ = ["DLT_RAW", "FilterSyntaxError", "compile_bpf", "compile_filter"]


def _both(a: Any, b: Any) -> Any:
    return lambda t: a(t) and b(t)


def _either(a: Any, b: Any) -> Any:
    return lambda t: a(t) or b(t)


class FilterSyntaxError(ValueError):
    """A ``--filter`` expression outside the supported subset (one line, names the token)."""


_FILTER_HELP = ("supported: [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N, "
                "[src|dst] portrange A-B, udp, tcp, ip, ip6, not/!, and/&&, or/||, ( )")


def compile_filter(text: str) -> Any:
    """``predicate(transport) -> bool`` for a pcap-filter(7)-like expression, for files.

    The subset: ``[src|dst] host ADDR``, ``[src|dst] net CIDR``, ``[src|dst] port N``,
    ``[src|dst] portrange A-B``, ``udp``, ``tcp``, ``ip``, ``ip6``, combined with
    ``not``/``!``, ``and``/``&&``, ``or``/``||`` (and and or of equal precedence, left to
    right, as in pcap-filter; two terms side by side mean and: ``udp port 5060``) and
    parentheses.  The predicate takes a
    :class:`~heptool.capture.pcap.Transport` (after IP reassembly: a fragmented datagram is
    matched once it is whole).  Live capture hands the expression to the kernel instead.
    Raises :class:`FilterSyntaxError`.
    """
    import ipaddress
    import re

    tokens = re.findall(r"\(|\)|&&|\|\||!|[^\s()!]+", text)
    if not tokens:
        raise FilterSyntaxError(f"empty filter ({_FILTER_HELP})")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterSyntaxError(f"filter {text!r} ends too early ({_FILTER_HELP})")
        pos += 1
        return tokens[pos - 1]

    def port_num(tok: str) -> int:
        port = port_number(tok)
        if port is None:
            raise FilterSyntaxError(f"filter: {tok!r} is not a port number")
        return port

    def primary() -> Any:
        tok = take()
        low = tok.lower()
        if tok == "(":
            e = expr()
            if take() != ")":
                raise FilterSyntaxError(f"filter {text!r}: missing ')'")
            return e
        if low in ("not", "!"):
            inner = primary()
            return lambda t: not inner(t)
        if low in ("udp", "tcp"):
            proto = 17 if low == "udp" else 6
            return lambda t: t.proto == proto
        if low in ("ip", "ip6"):
            fam = 4 if low == "ip" else 6
            return lambda t: t.family == fam
        side = None
        if low in ("src", "dst"):
            side = low
            tok = take()
            low = tok.lower()
        if low == "host":
            arg = take()
            try:
                addr = ipaddress.ip_address(arg).compressed
            except ValueError:
                raise FilterSyntaxError(f"filter: {arg!r} is not an IP address") from None
            if side == "src":
                return lambda t: t.src == addr
            if side == "dst":
                return lambda t: t.dst == addr
            return lambda t: t.src == addr or t.dst == addr
        if low == "net":
            arg = take()
            try:
                net = ipaddress.ip_network(arg, strict=False)
            except ValueError:
                raise FilterSyntaxError(f"filter: {arg!r} is not a network") from None

            def in_net(a: str) -> bool:
                try:
                    return ipaddress.ip_address(a) in net
                except ValueError:
                    return False
            if side == "src":
                return lambda t: in_net(t.src)
            if side == "dst":
                return lambda t: in_net(t.dst)
            return lambda t: in_net(t.src) or in_net(t.dst)
        if low in ("port", "portrange"):
            arg = take()
            if low == "port":
                lo = hi = port_num(arg)
            else:
                a, sep, b = arg.partition("-")
                if not sep:
                    raise FilterSyntaxError(f"filter: portrange needs A-B, not {arg!r}")
                lo, hi = port_num(a), port_num(b)
            if side == "src":
                return lambda t: lo <= t.sport <= hi
            if side == "dst":
                return lambda t: lo <= t.dport <= hi
            return lambda t: lo <= t.sport <= hi or lo <= t.dport <= hi
        raise FilterSyntaxError(f"filter: {tok!r} is not supported for files ({_FILTER_HELP})")

    def expr() -> Any:
        left = primary()
        while peek() is not None and peek() != ")":
            op = peek().lower()  # type: ignore[union-attr]
            if op in ("and", "&&", "or", "||"):
                take()
            else:
                op = "and"  # juxtaposition, as in 'udp port 5060'
            right = primary()
            left = _both(left, right) if op in ("and", "&&") else _either(left, right)
        return left

    pred = expr()
    if pos != len(tokens):
        raise FilterSyntaxError(f"filter {text!r}: unexpected {tokens[pos]!r}")
    return pred


#: pcap DLT of frames without a link header (what live capture reads: IPv4/IPv6 packets)
DLT_RAW = 12


def compile_bpf(text: str, dlt: int = DLT_RAW, snaplen: int = 262144) -> bytes:
    """The kernel BPF program (an array of ``struct sock_filter``, 8 bytes an instruction)
    of a pcap-filter(7) expression, compiled by libpcap for link type ``dlt`` (default
    raw IP: live capture reads packets without their link header).

    Raises :class:`FilterSyntaxError` with libpcap's own words for an expression libpcap
    refuses, and :class:`OSError` when libpcap cannot be loaded.
    """
    import ctypes
    import ctypes.util

    lib = None
    # the usual sonames first (dlopen only); find_library runs ldconfig (a subprocess)
    for name in ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so", "find"):
        if name == "find":
            name = ctypes.util.find_library("pcap")  # type: ignore[assignment]
            if name is None:
                break
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise OSError("a capture --filter needs libpcap (the libpcap0.8 / libpcap package) "
                      "to be compiled for the kernel")

    class Program(ctypes.Structure):
        _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]

    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(Program), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    handle = lib.pcap_open_dead(dlt, snaplen)
    if not handle:
        raise OSError("libpcap: pcap_open_dead failed")
    prog = Program()
    try:
        try:
            expr = text.encode("utf-8")
        except UnicodeEncodeError:
            raise FilterSyntaxError(f"filter {text!r}: not valid text") from None
        if b"\0" in expr:
            raise FilterSyntaxError(f"filter {text!r}: holds a NUL character")
        if lib.pcap_compile(handle, ctypes.byref(prog), expr, 1, 0xFFFFFFFF) != 0:
            why = (lib.pcap_geterr(handle) or b"cannot be compiled").decode("utf-8", "replace")
            raise FilterSyntaxError(f"filter {text!r}: {why}")
        code = ctypes.string_at(prog.bf_insns, prog.bf_len * 8)
        lib.pcap_freecode(ctypes.byref(prog))
        return code
    finally:
        lib.pcap_close(handle)
