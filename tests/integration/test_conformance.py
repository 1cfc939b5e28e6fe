"""RFC 6455 conformance of the server side, organised like the case groups of the Autobahn TestSuite
(fuzzingclient): 1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close
handling, 9 limits. Each test is named after its group (test_<group>_<case>_...).

Data messages are observed through the echo path: a connection to `?subscribe-broadcast&publish-broadcast&echo`
publishes every message to Redis and gets it back, as a text frame when the payload is valid UTF-8 and as a
binary frame otherwise (README, "URL scheme"); so binary payloads here start with a byte that is never UTF-8.

Failures are checked strictly: when a case must fail the connection, the next frame from the server must be the
close frame with the expected code (no pong for a ping that follows the bad frame, no echo of a message sent after
it), its reason must be valid UTF-8, and the server must close the TCP connection once the client answers.
Deliberate choices of the gateway that this suite takes as the spec: 1012-1014 are invalid close codes (as in
Autobahn, they are not in RFC 6455), invalid UTF-8 fails the connection as soon as the bad byte arrives (Autobahn's
"strict" grade), and an empty close is answered with 1000.
"""

import socket
import struct
import time

import harness as h
from harness import with_env

ECHO = "?subscribe-broadcast&publish-broadcast&echo"
# Connections that only need to fail (nothing subscribed): they may publish, so a Subscriber on
# broadcast:conf-bad proves that a failed message was never published.
BAD_PATH = "/ws/conf-bad?publish-broadcast"
BAD_CHANNEL = "broadcast:conf-bad"

BIN = b"\xfe"  # never part of UTF-8: a payload starting with it comes back as a binary frame


# -- Helpers ---------------------------------------------------------------------------------------------------

def is_utf8(data):
    try:
        data.decode("utf-8")  # Python's decoder is strict RFC 3629: no surrogates, overlongs, > U+10FFFF
        return True
    except UnicodeDecodeError:
        return False


def echo_op(payload):
    """The opcode the gateway relays `payload` with."""
    return h.OP_TEXT if is_utf8(payload) else h.OP_BINARY


def _numsubs(channels):
    reply = h.redis_client().execute_command("PUBSUB", "NUMSUB", *channels)
    if reply and isinstance(reply[0], (tuple, list)):
        pairs = reply
    else:
        pairs = list(zip(reply[0::2], reply[1::2]))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in pairs}


def open_echo(gateway, n=1, others=0):
    """`n` echo connections, each on a facility of its own, once the gateway's subscriptions are confirmed
    (`others`: Redis subscribers of those channels besides the gateway). Each RawWS gets .channel."""
    conns = []
    for _ in range(n):
        facility = h.rand_name("conf")
        ws = gateway.open_raw(f"/ws/{facility}{ECHO}")
        ws.channel = f"broadcast:{facility}"
        conns.append(ws)
    channels = [ws.channel for ws in conns]
    h.wait_until(lambda: all(v == 1 + others for v in _numsubs(channels).values()), h.DEFAULT_TIMEOUT,
                 what=f"gateway subscriptions of {len(channels)} channels")
    return conns


def echo1(gateway, others=0):
    return open_echo(gateway, 1, others)[0]


def open_bad(gateway, n):
    return [gateway.open_raw(BAD_PATH) for _ in range(n)]


def expect_echo(ws, payload, timeout=h.DEFAULT_TIMEOUT):
    if isinstance(payload, str):
        payload = payload.encode()
    op, got = ws.recv_message(timeout)
    want = echo_op(payload)
    assert (op, got) == (want, payload), \
        f"expected echo opcode {want} of {len(payload)} bytes {payload[:40]!r}, got opcode {op} " \
        f"{len(got)} bytes {got[:40]!r}"


def roundtrip(ws, opcode, payload):
    ws.send_frame(opcode, payload)
    expect_echo(ws, payload)


def expect_fail(ws, code, timeout=h.DEFAULT_TIMEOUT):
    """Strict: the next frame is a close with `code` and a valid reason; we answer it and the server closes
    the TCP connection."""
    fin, op, payload = ws.recv_frame(timeout)
    assert op == h.OP_CLOSE, f"expected close {code} as the next frame, got opcode {op} payload {payload[:60]!r}"
    assert len(payload) >= 2, f"expected close {code}, got a close without code {payload!r}"
    got = struct.unpack("!H", payload[:2])[0]
    assert got == code, f"expected close {code}, got {got} (reason {payload[2:]!r})"
    assert is_utf8(payload[2:]), f"server close reason is not UTF-8: {payload[2:]!r}"
    try:
        ws.send_close(code)
    except OSError:
        pass
    ws.wait_eof()


def expect_close_echo(ws, code, timeout=h.DEFAULT_TIMEOUT):
    """Strict: the next frame is the close answering ours with `code`, then the TCP close and nothing else."""
    fin, op, payload = ws.recv_frame(timeout)
    assert op == h.OP_CLOSE, f"expected close {code} as the next frame, got opcode {op} payload {payload[:60]!r}"
    got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    assert got == code, f"expected close {code}, got {got} ({payload!r})"
    expect_eof_only(ws, timeout)


def expect_eof_only(ws, timeout=h.DEFAULT_TIMEOUT):
    """The server sends nothing more and closes the TCP connection (we keep ours open)."""
    deadline = time.monotonic() + timeout
    while not ws.buf:
        try:
            if not ws._fill(deadline):
                return
        except socket.timeout:
            raise AssertionError(f"server did not close the TCP connection within {timeout}s") from None
    raise AssertionError(f"server sent {ws.buf[:60]!r} after its close frame")


def send_octets(ws, data, pause=0.0005):
    """Sends `data` one byte per write (TCP_NODELAY is on), so that the server reads it in pieces."""
    for i in range(len(data)):
        ws.send_raw(data[i:i + 1])
        if pause:
            time.sleep(pause)


def send_chops(ws, data, size):
    for i in range(0, len(data), size):
        ws.send_raw(data[i:i + size])


def send_quietly(ws, data):
    """Sends what may arrive after the server has already failed the connection."""
    try:
        ws.send_raw(data)
    except OSError:
        pass


def fragments(opcode, payload, size):
    """The frames of one message cut into pieces of `size` bytes (at least one frame)."""
    if isinstance(payload, str):
        payload = payload.encode()
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = b""
    for i, part in enumerate(parts):
        out += h.build_frame(opcode if i == 0 else h.OP_CONT, part, fin=i == len(parts) - 1)
    return out


def all_cases(cases, check):
    """Runs check(case) for every case, reporting the case that failed."""
    for case in cases:
        try:
            check(case)
        except AssertionError as e:
            raise AssertionError(f"case {case!r}: {e}") from None


LENGTHS = (0, 125, 126, 127, 128, 65535, 65536)


# -- 1 Framing -------------------------------------------------------------------------------------------------

@with_env(WSGATE_MAX_PAYLOAD="128KiB")
def test_1_1_text_payload_lengths(gateway):
    ws = echo1(gateway)
    for n in LENGTHS:  # 7-bit, 16-bit and 64-bit length encodings and their boundaries
        roundtrip(ws, h.OP_TEXT, "*" * n)


@with_env(WSGATE_MAX_PAYLOAD="128KiB")
def test_1_1_8_text_65536_in_997_byte_chops(gateway):
    ws = echo1(gateway)
    payload = ("0123456789abcdef" * 4096).encode()
    send_chops(ws, h.build_frame(h.OP_TEXT, payload), 997)
    expect_echo(ws, payload)


def test_1_1_text_frames_split_into_1_byte_chunks(gateway):
    ws = echo1(gateway)
    for n in (0, 1, 125, 126, 127, 128):
        payload = ("x" * n).encode()
        send_octets(ws, h.build_frame(h.OP_TEXT, payload))
        expect_echo(ws, payload)


@with_env(WSGATE_MAX_PAYLOAD="128KiB")
def test_1_2_binary_payload_lengths(gateway):
    ws = echo1(gateway)
    for n in LENGTHS:
        payload = (BIN + bytes(range(256)) * 257)[:n]  # empty: relayed as an (empty) text frame
        roundtrip(ws, h.OP_BINARY, payload)


@with_env(WSGATE_MAX_PAYLOAD="128KiB")
def test_1_2_8_binary_65536_in_997_byte_chops(gateway):
    ws = echo1(gateway)
    payload = BIN * 65536
    send_chops(ws, h.build_frame(h.OP_BINARY, payload), 997)
    expect_echo(ws, payload)


def test_1_2_binary_frames_split_into_1_byte_chunks(gateway):
    ws = echo1(gateway)
    for n in (1, 125, 126, 127, 128):
        payload = (BIN + bytes(range(256)))[:n]
        send_octets(ws, h.build_frame(h.OP_BINARY, payload))
        expect_echo(ws, payload)


def test_1_3_several_frames_in_one_write(gateway):
    ws = echo1(gateway)
    msgs = [f"batch-{i}".encode() for i in range(20)]
    ws.send_raw(b"".join(h.build_frame(h.OP_TEXT, m) for m in msgs))
    for m in msgs:
        expect_echo(ws, m)


def test_1_4_mask_keys(gateway):
    ws = echo1(gateway)
    for key in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"):
        ws.send_frame(h.OP_TEXT, "masked with " + key.hex(), mask_key=key)
        expect_echo(ws, "masked with " + key.hex())


def test_1_5_unmasked_client_frames_get_1002(gateway):
    """RFC 6455 5.1: a server must fail the connection on an unmasked client frame (data or control)."""
    cases = [(h.OP_TEXT, b"unmasked"), (h.OP_BINARY, BIN), (h.OP_PING, b"unmasked"),
             (h.OP_CLOSE, h.close_payload(1000))]
    conns = open_bad(gateway, len(cases))
    for ws, (op, payload) in zip(conns, cases):
        send_quietly(ws, h.build_frame(op, payload, mask=False))
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))


def test_1_6_non_minimal_length_encoding_gets_1002(gateway):
    """RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length". The gateway (wslay) holds
    clients to it and fails the connection; Autobahn has no case for it (its frames are always minimal)."""
    cases = [(h.OP_TEXT, 5, 16), (h.OP_TEXT, 125, 16), (h.OP_BINARY, 200, 64), (h.OP_TEXT, 0, 64), (h.OP_PING, 3, 16)]
    conns = open_bad(gateway, len(cases))
    for ws, (op, n, bits) in zip(conns, cases):
        send_quietly(ws, h.build_frame(op, b"a" * n, length_bits=bits))
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))


def test_1_7_64_bit_length_with_the_top_bit_set_gets_1002(gateway):
    """RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0."""
    ws = gateway.open_raw(BAD_PATH)
    send_quietly(ws, h.build_frame(h.OP_BINARY, b"", length=(1 << 63) + 5, length_bits=64))
    expect_fail(ws, 1002)


# -- 2 Ping / pong ---------------------------------------------------------------------------------------------

def test_2_1_ping_without_payload(gateway):
    ws = gateway.open_raw(BAD_PATH)
    ws.send_ping(b"")
    assert ws.recv_frame() == (True, h.OP_PONG, b"")


def test_2_2_ping_with_text_and_binary_payload(gateway):
    ws = gateway.open_raw(BAD_PATH)
    for payload in (b"Hello, world!", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", "κόσμε".encode()):
        ws.send_ping(payload)
        assert ws.recv_frame() == (True, h.OP_PONG, payload)


def test_2_4_ping_with_125_byte_binary_payload(gateway):
    ws = gateway.open_raw(BAD_PATH)
    payload = bytes((i * 31) & 0xFF for i in range(125))
    ws.send_ping(payload)
    assert ws.recv_frame() == (True, h.OP_PONG, payload)


def test_2_5_ping_over_125_bytes_gets_1002(gateway):
    cases = (126, 1000, 65536)
    conns = open_bad(gateway, len(cases))
    for ws, n in zip(conns, cases):
        send_quietly(ws, h.build_frame(h.OP_PING, b"p" * n))
    for ws, n in zip(conns, cases):
        try:
            expect_fail(ws, 1002)  # strict: no pong first
        except AssertionError as e:
            raise AssertionError(f"ping of {n} bytes: {e}") from None


def test_2_6_ping_125_bytes_in_1_byte_chunks(gateway):
    ws = gateway.open_raw(BAD_PATH)
    payload = bytes(range(125))
    send_octets(ws, h.build_frame(h.OP_PING, payload))
    assert ws.recv_frame() == (True, h.OP_PONG, payload)


def test_2_7_unsolicited_pong_is_ignored(gateway):
    ws = echo1(gateway)
    ws.send_pong(b"")
    ws.send_pong(b"unsolicited pong payload")
    ws.send_ping(b"ping after pongs")
    # Strict: the only answer is the pong of our ping; the pongs were neither answered nor published.
    assert ws.recv_frame() == (True, h.OP_PONG, b"ping after pongs")
    ws.expect_silence(0.2)
    roundtrip(ws, h.OP_TEXT, "still open")


def test_2_10_ten_pings_answered_in_order(gateway):
    """Autobahn 2.10: pongs for our pings, in order; it is fine to answer only the last of pings that arrive
    together (the gateway coalesces waiting pongs)."""
    ws = gateway.open_raw(BAD_PATH)
    payloads = [f"payload-{i}".encode() for i in range(10)]
    ws.send_raw(b"".join(h.build_frame(h.OP_PING, p) for p in payloads))
    ws.recv_pongs(payloads)
    ws.expect_silence()


def test_2_11_ten_pings_in_1_byte_chunks_answered_in_order(gateway):
    ws = gateway.open_raw(BAD_PATH)
    payloads = [f"payload-{i}".encode() for i in range(10)]
    send_octets(ws, b"".join(h.build_frame(h.OP_PING, p) for p in payloads), pause=0.0002)
    ws.recv_pongs(payloads)


# -- 3 Reserved bits -------------------------------------------------------------------------------------------

RSV_FRAMES = {
    "text": (h.OP_TEXT, b"reserved bits"),
    "binary": (h.OP_BINARY, BIN + b"reserved bits"),
    "ping": (h.OP_PING, b"reserved bits"),
    "close": (h.OP_CLOSE, h.close_payload(1000)),
}
RSV_CASES = [(kind, rsv) for kind in RSV_FRAMES for rsv in range(1, 8)]


def test_3_1_rsv_bits_on_each_frame_type_get_1002(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    conns = open_bad(gateway, len(RSV_CASES))
    for ws, (kind, rsv) in zip(conns, RSV_CASES):
        op, payload = RSV_FRAMES[kind]
        send_quietly(ws, h.build_frame(op, payload, rsv=rsv))
    # Strict: a close 1002, not a pong (ping), not a close echo (close), nothing published (text, binary).
    all_cases(zip(conns, RSV_CASES), lambda c: expect_fail(c[0], 1002))
    sub.expect_none(0.1)


def test_3_2_valid_message_before_rsv_frame_still_got_through(gateway):
    conns = open_echo(gateway, len(RSV_CASES))
    for i, ws in enumerate(conns):
        ws.send_text(f"before-{i}")
    for i, (ws, (kind, rsv)) in enumerate(zip(conns, RSV_CASES)):
        expect_echo(ws, f"before-{i}")
        op, payload = RSV_FRAMES[kind]
        # a ping after the bad frame must not be answered
        send_quietly(ws, h.build_frame(op, payload, rsv=rsv) + h.build_frame(h.OP_PING, b"after"))
    all_cases(zip(conns, RSV_CASES), lambda c: expect_fail(c[0], 1002))


def test_3_3_valid_message_pipelined_with_rsv_frame_is_published(gateway):
    """The valid message and the bad frame in one write: the message is published before the connection fails
    (its echo may be cut off by the close, which Autobahn also accepts)."""
    ws = gateway.open_raw(BAD_PATH)
    sub = h.Subscriber(BAD_CHANNEL)
    ws.send_raw(h.build_frame(h.OP_TEXT, "valid first") + h.build_frame(h.OP_TEXT, "bad", rsv=4))
    ws.expect_close(1002)
    assert sub.get() == b"valid first"
    sub.expect_none(0.1)


def test_3_4_rsv_frame_in_1_byte_chunks_after_valid_message(gateway):
    ws = echo1(gateway)
    roundtrip(ws, h.OP_TEXT, "Hello, world!")
    send_octets(ws, h.build_frame(h.OP_TEXT, "Hello, world!", rsv=4) + h.build_frame(h.OP_PING, b""))
    expect_fail(ws, 1002)


# -- 4 Opcodes -------------------------------------------------------------------------------------------------

RESERVED_OPCODES = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)


def test_4_1_reserved_non_control_opcodes_get_1002(gateway):
    cases = [(op, p) for op in (3, 4, 5, 6, 7) for p in (b"", b"reserved opcode")]
    conns = open_bad(gateway, len(cases))
    for ws, (op, p) in zip(conns, cases):
        send_quietly(ws, h.build_frame(op, p) + h.build_frame(h.OP_PING, b"after"))
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))


def test_4_2_reserved_control_opcodes_get_1002(gateway):
    cases = [(op, p) for op in (11, 12, 13, 14, 15) for p in (b"", b"reserved opcode")]
    conns = open_bad(gateway, len(cases))
    for ws, (op, p) in zip(conns, cases):
        send_quietly(ws, h.build_frame(op, p) + h.build_frame(h.OP_PING, b"after"))
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))


def test_4_1_3_valid_message_before_reserved_opcode_still_got_through(gateway):
    conns = open_echo(gateway, len(RESERVED_OPCODES))
    for op, ws in zip(RESERVED_OPCODES, conns):
        ws.send_text(f"before opcode {op}")
    for op, ws in zip(RESERVED_OPCODES, conns):
        expect_echo(ws, f"before opcode {op}")
        send_quietly(ws, h.build_frame(op, b"reserved") + h.build_frame(h.OP_PING, b"after"))
    all_cases(zip(conns, RESERVED_OPCODES), lambda c: expect_fail(c[0], 1002))


def test_4_1_4_valid_message_pipelined_with_reserved_opcode_is_published(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    conns = open_bad(gateway, len(RESERVED_OPCODES))
    for op, ws in zip(RESERVED_OPCODES, conns):
        send_quietly(ws, h.build_frame(h.OP_TEXT, f"pipelined {op}") + h.build_frame(op, b"reserved"))
    for ws in conns:
        ws.expect_close(1002)
    got = sorted(sub.get() for _ in RESERVED_OPCODES)
    assert got == sorted(f"pipelined {op}".encode() for op in RESERVED_OPCODES)
    sub.expect_none(0.1)


# -- 5 Fragmentation -------------------------------------------------------------------------------------------

def test_5_1_fragmented_ping_gets_1002(gateway):
    ws = gateway.open_raw(BAD_PATH)
    send_quietly(ws, h.build_frame(h.OP_PING, "frag1", fin=False) + h.build_frame(h.OP_CONT, "frag2"))
    expect_fail(ws, 1002)  # strict: no pong


def test_5_2_fragmented_pong_gets_1002(gateway):
    ws = gateway.open_raw(BAD_PATH)
    send_quietly(ws, h.build_frame(h.OP_PONG, "frag1", fin=False) + h.build_frame(h.OP_CONT, "frag2"))
    expect_fail(ws, 1002)


def test_5_2_fragmented_close_gets_1002(gateway):
    ws = gateway.open_raw(BAD_PATH)
    send_quietly(ws, h.build_frame(h.OP_CLOSE, h.close_payload(1000), fin=False)
                 + h.build_frame(h.OP_CONT, "x"))
    expect_fail(ws, 1002)


def test_5_3_text_in_two_fragments(gateway):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_CONT, "fragment2"))
    expect_echo(ws, "fragment1fragment2")
    ws.send_raw(h.build_frame(h.OP_BINARY, BIN + b"frag1", fin=False) + h.build_frame(h.OP_CONT, b"frag2"))
    expect_echo(ws, BIN + b"frag1frag2")


def test_5_4_two_fragments_in_1_byte_chunks(gateway):
    ws = echo1(gateway)
    send_octets(ws, h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_CONT, "fragment2"))
    expect_echo(ws, "fragment1fragment2")


def test_5_6_ping_between_fragments(gateway):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_PING, "pongme!")
                + h.build_frame(h.OP_CONT, "fragment2"))
    assert ws.recv_frame() == (True, h.OP_PONG, b"pongme!")
    expect_echo(ws, "fragment1fragment2")


def test_5_8_ping_between_fragments_in_1_byte_chunks(gateway):
    ws = echo1(gateway)
    send_octets(ws, h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_PING, "pongme!")
                + h.build_frame(h.OP_CONT, "fragment2"))
    assert ws.recv_frame() == (True, h.OP_PONG, b"pongme!")
    expect_echo(ws, "fragment1fragment2")


def test_5_9_continuation_without_start_gets_1002(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    cases = [("fin", True, False), ("no fin", False, False), ("fin, 1-byte chunks", True, True),
             ("no fin, 1-byte chunks", False, True)]
    conns = open_bad(gateway, len(cases))
    for ws, (_, fin, octets) in zip(conns, cases):
        data = h.build_frame(h.OP_CONT, "non-continuation payload", fin=fin) + h.build_frame(h.OP_TEXT, "Hello")
        if octets:
            try:
                send_octets(ws, data, pause=0)
            except OSError:
                pass
        else:
            send_quietly(ws, data)
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))
    sub.expect_none(0.1)


def test_5_15_continuation_after_final_fragment_gets_1002(gateway):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_CONT, "fragment2"))
    expect_echo(ws, "fragment1fragment2")
    send_quietly(ws, h.build_frame(h.OP_CONT, "fragment3", fin=False) + h.build_frame(h.OP_TEXT, "fragment4"))
    expect_fail(ws, 1002)


def test_5_18_new_message_inside_fragmented_message_gets_1002(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    cases = [(h.OP_TEXT, h.OP_TEXT, True), (h.OP_TEXT, h.OP_TEXT, False), (h.OP_TEXT, h.OP_BINARY, True),
             (h.OP_BINARY, h.OP_TEXT, True), (h.OP_BINARY, h.OP_BINARY, False)]
    conns = open_bad(gateway, len(cases))
    for ws, (first, second, fin) in zip(conns, cases):
        send_quietly(ws, h.build_frame(first, "fragment1", fin=False) + h.build_frame(second, "fragment2", fin=fin)
                     + h.build_frame(h.OP_PING, b"after"))
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1002))
    sub.expect_none(0.1)


def test_5_19_pings_interleaved_in_five_fragments(gateway):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_CONT, "fragment2", fin=False)
                + h.build_frame(h.OP_PING, "pongme 1!") + h.build_frame(h.OP_CONT, "fragment3", fin=False)
                + h.build_frame(h.OP_PONG, "unsolicited") + h.build_frame(h.OP_CONT, "fragment4", fin=False)
                + h.build_frame(h.OP_PING, "pongme 2!") + h.build_frame(h.OP_CONT, "fragment5"))
    ws.recv_pongs([b"pongme 1!", b"pongme 2!"])
    expect_echo(ws, "fragment1fragment2fragment3fragment4fragment5")


def test_5_many_1_byte_fragments(gateway):
    ws = echo1(gateway)
    text = "".join(chr(ord("a") + i % 26) for i in range(300))
    ws.send_raw(fragments(h.OP_TEXT, text, 1))
    expect_echo(ws, text)
    data = BIN + bytes(range(200))
    ws.send_raw(fragments(h.OP_BINARY, data, 1))
    expect_echo(ws, data)


def test_5_empty_fragments(gateway):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "", fin=False) + h.build_frame(h.OP_CONT, "", fin=False)
                + h.build_frame(h.OP_CONT, ""))
    expect_echo(ws, "")
    ws.send_raw(h.build_frame(h.OP_TEXT, "", fin=False) + h.build_frame(h.OP_CONT, "middle", fin=False)
                + h.build_frame(h.OP_CONT, ""))
    expect_echo(ws, "middle")


# -- 6 UTF-8 ---------------------------------------------------------------------------------------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε", Markus Kuhn's UTF-8 test file, 1

VALID_UTF8 = [
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),      # 6.2.1
    KOSME,                                   # 6.5.1
    b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80",  # 6.7: first sequence of each length
    b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf",  # 6.9: last sequence of each length
    b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd",            # 6.11: U+D7FF, U+E000, U+FFFD
    b"\xef\xbf\xbe", b"\xef\xb7\x90", b"\xf0\x9f\xbf\xbf", b"\xf4\x8f\xbf\xbe",  # 6.22: noncharacters
    b"\xef\xbb\xbf",                                              # U+FEFF
    "😀 𝄞 𐍈 €".encode(),                                          # 4-byte characters
    b"\xf0\x9f\x98\x80" * 20,
]

INVALID_UTF8 = [
    KOSME + b"\xed\xa0\x80edited",            # 6.3.1: "κόσμε-edited" with a surrogate
    b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",          # 6.8: 5 and 6-byte sequences
    b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf",  # 6.10
    b"\xf4\x90\x80\x80",                      # 6.11.5: U+110000, above U+10FFFF
    b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",  # 6.12: unexpected continuation
    bytes(range(0x80, 0xC0)),                 # 6.12.8: all continuation bytes
    b"\xc0 ", b"\xdf ", b"\xe0 ", b"\xef ", b"\xf0 ", b"\xf7 ",  # 6.13: lonely start bytes
    b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",  # 6.14: last byte missing
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"caf\xc3",               # truncated valid characters
    b"\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf",            # 6.15: concatenated incomplete
    b"\xfe", b"\xff", b"\xfe\xfe\xff\xff",    # 6.16: impossible bytes
    b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",  # 6.17: overlong "/"
    b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf",              # 6.18: maximal overlongs
    b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",              # 6.19: overlong NUL
    b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",  # 6.20: single surrogates
    b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80", b"\xed\xaf\xbf\xed\xbf\xbf",      # 6.21: paired surrogates
    b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc", b"\xf0\x90\x28\xbc",  # bad continuation
    b"Hello \xed\xa0\x80 World",
]


def test_6_0_utf8_tables_are_right():
    """The case tables themselves, against Python's strict decoder (no gateway)."""
    assert all(is_utf8(s) for s in VALID_UTF8)
    assert not any(is_utf8(s) for s in INVALID_UTF8)


def test_6_1_empty_text_and_empty_fragments(gateway):
    ws = echo1(gateway)
    roundtrip(ws, h.OP_TEXT, b"")
    ws.send_raw(h.build_frame(h.OP_TEXT, "", fin=False) + h.build_frame(h.OP_CONT, "", fin=False)
                + h.build_frame(h.OP_CONT, ""))
    expect_echo(ws, b"")


def test_6_2_valid_multibyte_text_single_frame(gateway):
    ws = echo1(gateway)
    for payload in VALID_UTF8:
        roundtrip(ws, h.OP_TEXT, payload)


def test_6_2_2_valid_text_with_fragment_boundaries_inside_characters(gateway):
    ws = echo1(gateway)
    for payload in VALID_UTF8:
        ws.send_raw(fragments(h.OP_TEXT, payload, 1))  # every multi-byte character is cut
        expect_echo(ws, payload)
    text = "κόσμε 😀 𝄞 €".encode()
    for cut in range(1, len(text)):  # every single cut position, incl. inside 2-, 3- and 4-byte characters
        ws.send_raw(h.build_frame(h.OP_TEXT, text[:cut], fin=False) + h.build_frame(h.OP_CONT, text[cut:]))
        expect_echo(ws, text)


def test_6_2_4_valid_text_in_1_byte_chunks_of_one_frame(gateway):
    ws = echo1(gateway)
    payload = "κόσμε 😀".encode()
    send_octets(ws, h.build_frame(h.OP_TEXT, payload))
    expect_echo(ws, payload)


def fail_1007_all(gateway, datas):
    sub = h.Subscriber(BAD_CHANNEL)
    conns = open_bad(gateway, len(datas))
    for ws, data in zip(conns, datas):
        send_quietly(ws, data)
    all_cases(zip(conns, datas), lambda c: expect_fail(c[0], 1007))
    sub.expect_none(0.1)  # nothing invalid was ever published


def test_6_3_invalid_utf8_single_frame_gets_1007(gateway):
    fail_1007_all(gateway, [h.build_frame(h.OP_TEXT, s) + h.build_frame(h.OP_PING, b"after")
                            for s in INVALID_UTF8])


def test_6_3_2_invalid_utf8_in_1_byte_fragments_gets_1007(gateway):
    fail_1007_all(gateway, [fragments(h.OP_TEXT, s, 1) for s in INVALID_UTF8])


def test_6_3_invalid_utf8_split_across_two_fragments_gets_1007(gateway):
    cases = [(b"ok \xc3", b"\x28 bad"), (b"\xed", b"\xa0\x80"), (b"\xe0\x80", b"\xaf"), (b"\xf4\x90", b"\x80\x80"),
             (KOSME, b"\xed\xa0\x80edited"), (b"\xf0\x9f\x98", b"")]  # the last: message ends mid-character
    fail_1007_all(gateway, [h.build_frame(h.OP_TEXT, a, fin=False) + h.build_frame(h.OP_CONT, b)
                            for a, b in cases])


def test_6_4_invalid_utf8_fails_fast(gateway):
    """Autobahn 6.4.x: the connection fails on the fragment (or even the part of a frame) holding the bad
    bytes, before the rest of the message is sent."""
    bad = b"\xf4\x90\x80\x80"
    cases = [
        h.build_frame(h.OP_TEXT, KOSME, fin=False) + h.build_frame(h.OP_CONT, bad, fin=False),  # 6.4.1
        h.build_frame(h.OP_TEXT, KOSME + b"\xf4", fin=False) + h.build_frame(h.OP_CONT, b"\x90", fin=False),  # 6.4.2
        h.build_frame(h.OP_TEXT, KOSME + bad + b"edited")[:6 + len(KOSME) + 4],  # 6.4.3: a partial frame
        h.build_frame(h.OP_TEXT, KOSME + bad + b"edited")[:6 + len(KOSME) + 2],  # 6.4.4: cut inside the bad char
    ]
    conns = open_bad(gateway, len(cases))
    for ws, data in zip(conns, cases):
        ws.send_raw(data)
    all_cases(zip(conns, range(len(cases))), lambda c: expect_fail(c[0], 1007, timeout=1.0))


def test_6_kuhn_classic_cases(gateway):
    """A few of Markus Kuhn's UTF-8 decoder stress test cases, each ending in the same ASCII tail."""
    ws = echo1(gateway)
    roundtrip(ws, h.OP_TEXT, "2.1.4 first 4-byte: \U00010000|".encode())
    roundtrip(ws, h.OP_TEXT, "2.3.5 last valid: \U0010FFFF|".encode())
    roundtrip(ws, h.OP_TEXT, "5.3.1 U+FFFE: \ufffe|".encode())
    roundtrip(ws, h.OP_TEXT, "3 mixed: Σὲ γνωρίζω ἀπὸ τὴν κόψη 😀|".encode())
    fail_1007_all(gateway, [h.build_frame(h.OP_TEXT, b"3.2.1 lonely start: \xc0 |"),
                            h.build_frame(h.OP_TEXT, b"3.5.1 impossible: \xfe|"),
                            h.build_frame(h.OP_TEXT, b"4.1.1 overlong slash: \xc0\xaf|"),
                            h.build_frame(h.OP_TEXT, b"4.2.1 max overlong: \xc1\xbf|"),
                            h.build_frame(h.OP_TEXT, b"5.1.1 surrogate: \xed\xa0\x80|"),
                            h.build_frame(h.OP_TEXT, b"5.2.1 paired surrogates: \xed\xa0\x80\xed\xb0\x80|")])


def test_6_binary_messages_are_not_utf8_checked(gateway):
    ws = echo1(gateway)
    for payload in (b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", bytes(range(0x80, 0xC0))):
        roundtrip(ws, h.OP_BINARY, payload)


# -- 7 Close handling ------------------------------------------------------------------------------------------

VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
INVALID_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def test_7_1_1_message_then_close(gateway, redis):
    ws = echo1(gateway)
    ws.send_raw(h.build_frame(h.OP_TEXT, "Hello World!") + h.build_frame(h.OP_CLOSE, h.close_payload(1000)))
    code, _ = ws.recv_close()  # the echo may come first or be cut off by the close
    assert code == 1000
    # README: a message sent right before the close is in Redis before the close is answered.
    assert redis.get(ws.channel) == b"Hello World!"
    expect_eof_only(ws)


def test_7_1_2_second_close_is_ignored(gateway):
    ws = gateway.open_raw(BAD_PATH)
    ws.send_raw(h.build_frame(h.OP_CLOSE, h.close_payload(1000)) * 2)
    expect_close_echo(ws, 1000)


def test_7_1_3_ping_after_close_is_not_answered(gateway):
    ws = gateway.open_raw(BAD_PATH)
    ws.send_raw(h.build_frame(h.OP_CLOSE, h.close_payload(1000)) + h.build_frame(h.OP_PING, "Hello World!"))
    expect_close_echo(ws, 1000)


def test_7_1_4_data_after_close_is_ignored(gateway):
    ws = echo1(gateway)
    sub = h.Subscriber(ws.channel)
    ws.send_raw(h.build_frame(h.OP_CLOSE, h.close_payload(1000)) + h.build_frame(h.OP_TEXT, "after close")
                + h.build_frame(h.OP_BINARY, BIN + b"after close"))
    expect_close_echo(ws, 1000)  # no echo either
    sub.expect_none(0.2)


def test_7_1_5_fragment_close_fragment(gateway):
    ws = echo1(gateway)
    sub = h.Subscriber(ws.channel)
    ws.send_raw(h.build_frame(h.OP_TEXT, "fragment1", fin=False) + h.build_frame(h.OP_CLOSE, h.close_payload(1000))
                + h.build_frame(h.OP_CONT, "fragment2"))
    expect_close_echo(ws, 1000)
    sub.expect_none(0.2)


def test_7_1_6_server_closes_tcp_after_the_closing_handshake(gateway):
    # Client-initiated: the server answers and closes TCP first (RFC 6455 7.1.1), without waiting for us.
    ws = gateway.open_raw(BAD_PATH)
    ws.send_close(1000)
    assert ws.recv_close()[0] == 1000
    # (bounds well under WSGATE_CLOSE_TIMEOUT, 5 s, the fallback when nobody closes)
    start = time.monotonic()
    expect_eof_only(ws, 4.0)
    assert time.monotonic() - start < 2.5
    # Server-initiated (a protocol error): once we answer, TCP is closed at once.
    ws = gateway.open_raw(BAD_PATH)
    ws.send_text("bad", rsv=2)
    assert ws.recv_close()[0] == 1002
    ws.send_close(1002)
    assert ws.wait_eof(4.0) < 2.5


@with_env(WSGATE_CLOSE_TIMEOUT="2s")
def test_7_1_7_no_data_frame_after_the_servers_close(gateway):
    """RFC 6455 5.5.1: after sending a close frame an endpoint MUST NOT send data frames, even when messages for
    the connection keep arriving from Redis."""
    a, b = open_echo(gateway, 2)
    h.publish(a.channel, "before")
    assert a.recv_text() == "before"
    a.send_text("bad", rsv=1)  # the server fails the connection (1002)...
    b.send_close(1000)  # ...and answers this client's close
    for i in range(50):  # while messages keep coming for both
        h.publish(a.channel, f"after {i}")
        h.publish(b.channel, f"after {i}")
    for ws, code in ((a, 1002), (b, 1000)):
        while True:  # data frames published before the close frame went out are fine
            fin, op, payload = ws.recv_frame()
            if op == h.OP_CLOSE:
                assert struct.unpack("!H", payload[:2])[0] == code
                break
            assert op == h.OP_TEXT, (op, payload)
        expect_eof_only(ws)


def test_7_3_close_frame_payloads(gateway):
    cases = [
        (b"", 1000),                               # 7.3.1 empty close
        (b"\x03", 1002),                           # 7.3.2 1-byte payload
        (h.close_payload(1000), 1000),             # 7.3.3 code only
        (h.close_payload(1000, "Hello World!"), 1000),  # 7.3.4 code and reason
        (h.close_payload(1000, "*" * 123), 1000),  # 7.3.5 longest reason
        (h.close_payload(1000, "é" * 61 + "x"), 1000),  # 123 bytes with multi-byte characters
        (h.close_payload(1000, "*" * 124), 1002),  # 7.3.6 control frame over 125 bytes
    ]
    conns = open_bad(gateway, len(cases))
    for ws, (payload, _) in zip(conns, cases):
        send_quietly(ws, h.build_frame(h.OP_CLOSE, payload))

    def check(c):
        ws, (payload, code) = c
        if code == 1000:
            expect_close_echo(ws, 1000)
        else:
            expect_fail(ws, code)

    all_cases(zip(conns, cases), check)


def test_7_3_close_frame_in_1_byte_chunks(gateway):
    ws = gateway.open_raw(BAD_PATH)
    send_octets(ws, h.build_frame(h.OP_CLOSE, h.close_payload(1001, "κόσμε 😀 going away")))
    expect_close_echo(ws, 1001)


def test_7_5_1_invalid_utf8_close_reason_gets_1007(gateway):
    cases = [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", b"bad \xff",
             b"\xc0\xaf", b"cut \xf0\x9f\x98"]
    conns = open_bad(gateway, len(cases))
    for ws, reason in zip(conns, cases):
        ws.send_close(1000, reason)
    all_cases(zip(conns, cases), lambda c: expect_fail(c[0], 1007))


def test_7_7_valid_close_codes_are_echoed(gateway):
    conns = open_bad(gateway, len(VALID_CLOSE_CODES))
    for ws, code in zip(conns, VALID_CLOSE_CODES):
        ws.send_close(code, b"Hello")
    all_cases(zip(conns, VALID_CLOSE_CODES), lambda c: expect_close_echo(c[0], c[1]))


def test_7_9_invalid_close_codes_get_1002(gateway):
    conns = open_bad(gateway, len(INVALID_CLOSE_CODES))
    for ws, code in zip(conns, INVALID_CLOSE_CODES):
        ws.send_close(code, b"Hello")
    all_cases(zip(conns, INVALID_CLOSE_CODES), lambda c: expect_fail(c[0], 1002))


# -- 9 Limits --------------------------------------------------------------------------------------------------

DEFAULT_MAX = 16 * 1024  # WSGATE_MAX_PAYLOAD default (README: 16KiB)


def test_9_1_messages_up_to_the_default_max_payload_pass(gateway):
    ws = echo1(gateway)
    for n in (DEFAULT_MAX - 1, DEFAULT_MAX):
        roundtrip(ws, h.OP_TEXT, "t" * n)
        roundtrip(ws, h.OP_BINARY, BIN * n)


def test_9_1_one_byte_over_the_default_max_payload_gets_1009(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    cases = [(h.OP_TEXT, b"t" * (DEFAULT_MAX + 1)), (h.OP_BINARY, BIN * (DEFAULT_MAX + 1)),
             (h.OP_BINARY, BIN * (4 * DEFAULT_MAX))]
    conns = open_bad(gateway, len(cases))
    for ws, (op, payload) in zip(conns, cases):
        send_quietly(ws, h.build_frame(op, payload))
    all_cases(zip(conns, [len(p) for _, p in cases]), lambda c: expect_fail(c[0], 1009))
    sub.expect_none(0.1)


def test_9_2_message_at_the_limit_in_fragments_of_several_sizes(gateway):
    ws = echo1(gateway)
    text = ("abcdefghijklmnop" * (DEFAULT_MAX // 16)).encode()
    for size in (64, 256, 1024, 4096, DEFAULT_MAX):
        ws.send_raw(fragments(h.OP_TEXT, text, size))
        expect_echo(ws, text)
    data = BIN * DEFAULT_MAX
    ws.send_raw(fragments(h.OP_BINARY, data, 1000))
    expect_echo(ws, data)


def test_9_2_fragmented_total_over_the_limit_gets_1009(gateway):
    sub = h.Subscriber(BAD_CHANNEL)
    over = DEFAULT_MAX + 1
    cases = [fragments(h.OP_TEXT, b"t" * over, 4096), fragments(h.OP_BINARY, BIN * over, 1024),
             fragments(h.OP_TEXT, b"t" * over, DEFAULT_MAX), fragments(h.OP_TEXT, b"t" * (3 * DEFAULT_MAX), 1000)]
    conns = open_bad(gateway, len(cases))
    for ws, data in zip(conns, cases):
        send_quietly(ws, data)
    all_cases(zip(conns, range(len(cases))), lambda c: expect_fail(c[0], 1009))
    sub.expect_none(0.1)


@with_env(WSGATE_MAX_PAYLOAD="256KiB")
def test_9_3_configured_max_payload(gateway):
    limit = 256 * 1024
    ws = echo1(gateway)
    payload = bytes((BIN[0],)) + bytes((i * 13) & 0xFF for i in range(limit - 1))
    send_chops(ws, h.build_frame(h.OP_BINARY, payload), 65536)
    expect_echo(ws, payload, timeout=10)
    ws.send_raw(fragments(h.OP_TEXT, b"f" * limit, 16384))
    expect_echo(ws, b"f" * limit, timeout=10)
    ws2 = gateway.open_raw(BAD_PATH)
    send_quietly(ws2, h.build_frame(h.OP_BINARY, payload + b"!"))
    expect_fail(ws2, 1009)
    ws3 = gateway.open_raw(BAD_PATH)
    send_quietly(ws3, fragments(h.OP_TEXT, b"f" * (limit + 1), 65536))
    expect_fail(ws3, 1009)
