"""WebSocket framing after the upgrade: close codes, protocol errors (1002), UTF-8 (1007), size limit (1009),
PING/PONG, fragments with interleaved control frames."""

import harness as h
from harness import with_env

PATH = "/ws/frames?subscribe-broadcast&publish-broadcast&echo"


def fresh(gateway, path=PATH):
    return gateway.open_raw(path)


# -- Close handshake -------------------------------------------------------------------------------------------

def each_on_own_connection(gateway, cases, send, expect):
    """Opens one connection per case, sends all, then checks all (the server's timers run concurrently)."""
    conns = [(case, fresh(gateway)) for case in cases]
    for case, ws in conns:
        send(ws, case)
    for case, ws in conns:
        try:
            expect(ws, case)
        except AssertionError as e:
            raise AssertionError(f"case {case!r}: {e}") from None


def test_valid_close_codes_are_echoed(gateway):
    def expect(ws, code):
        got, _ = ws.recv_close()
        assert got == code, f"sent {code}, got {got}"
        ws.wait_eof()

    each_on_own_connection(gateway, (1000, 1001, 1003, 1011, 3000, 4999),
                           lambda ws, code: ws.send_close(code, b"reason"), expect)


def test_empty_close_is_answered_with_1000(gateway):
    ws = fresh(gateway)
    ws.send_close()
    assert ws.recv_close()[0] == 1000
    ws.wait_eof()


def test_invalid_close_codes_get_1002(gateway):
    def expect(ws, code):
        got, _ = ws.recv_close()
        assert got == 1002, f"sent {code}, got {got}"
        ws.wait_eof()

    each_on_own_connection(gateway, (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535),
                           lambda ws, code: ws.send_close(code), expect)


def test_one_byte_close_payload_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_CLOSE, b"\x03")
    ws.expect_close(1002)


def test_close_reason_with_invalid_utf8_gets_1007(gateway):
    ws = fresh(gateway)
    ws.send_close(1000, b"bad \xff reason")
    ws.expect_close(1007)


def test_close_reason_of_123_bytes_is_accepted(gateway):
    ws = fresh(gateway)
    ws.send_close(1000, "é" * 61 + "x")  # 123 bytes: the largest legal reason
    assert ws.recv_close()[0] == 1000
    ws.wait_eof()


def test_server_closes_tcp_after_client_answers_its_close(gateway):
    ws = fresh(gateway)
    ws.send_text(b"\xff")  # provokes a server-initiated close (1007)
    assert ws.recv_close()[0] == 1007
    ws.send_close(1007)
    assert ws.wait_eof(2) < 2


def test_server_closes_tcp_when_client_never_answers_its_close(gateway):
    ws = fresh(gateway)
    ws.send_text(b"\xff")
    assert ws.recv_close()[0] == 1007
    ws.wait_eof(10)  # no reply from us: the server gives up after a short timeout


def test_protocol_error_unsubscribes_the_connection(gateway):
    ws = gateway.open_raw("/ws/gone?subscribe-broadcast")
    h.wait_numsub("broadcast:gone", 1)
    ws.send_text("x", mask=False)
    ws.expect_close(1002)
    h.wait_numsub("broadcast:gone", 0)


# -- Protocol errors: 1002 -------------------------------------------------------------------------------------

def test_unmasked_client_frame_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_text("no mask", mask=False)
    ws.expect_close(1002)


def test_rsv_bits_get_1002(gateway):
    # RSV1, RSV2, RSV3; no extension was negotiated
    each_on_own_connection(gateway, (4, 2, 1), lambda ws, rsv: ws.send_text("rsv", rsv=rsv),
                           lambda ws, rsv: ws.expect_close(1002))


def test_unknown_opcodes_get_1002(gateway):
    each_on_own_connection(gateway, (0x3, 0x7, 0xB, 0xF), lambda ws, op: ws.send_frame(op, b"?"),
                           lambda ws, op: ws.expect_close(1002))


def test_continuation_without_start_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_CONT, "orphan", fin=True)
    ws.expect_close(1002)


def test_new_message_inside_fragmented_message_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_TEXT, "start", fin=False)
    ws.send_frame(h.OP_TEXT, "again", fin=True)
    ws.expect_close(1002)


def test_fragmented_control_frame_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_PING, "half", fin=False)
    ws.expect_close(1002)


def test_ping_payload_over_125_bytes_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_ping(b"p" * 126)
    ws.expect_close(1002)


def test_close_payload_over_125_bytes_gets_1002(gateway):
    ws = fresh(gateway)
    ws.send_close(1000, b"r" * 124)
    ws.expect_close(1002)


# -- UTF-8: 1007 -----------------------------------------------------------------------------------------------

def test_invalid_utf8_text_gets_1007(gateway):
    # bad byte, bad continuation, truncated at the end, surrogate, overlong, above U+10FFFF
    each_on_own_connection(gateway, (b"\xff", b"\xc3\x28", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\xaf",
                                     b"\xf4\x90\x80\x80"),
                           lambda ws, bad: ws.send_text(bad), lambda ws, bad: ws.expect_close(1007))


def test_invalid_utf8_split_across_fragments_gets_1007(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_TEXT, b"ok \xc3", fin=False)
    ws.send_frame(h.OP_CONT, b"\x28 bad", fin=True)
    ws.expect_close(1007)


def test_utf8_character_split_across_fragments_is_valid(gateway):
    sub = h.Subscriber("broadcast:frames")
    ws = fresh(gateway)
    h.wait_numsub("broadcast:frames", 2)
    ws.send_frame(h.OP_TEXT, b"caf\xc3", fin=False)
    ws.send_frame(h.OP_CONT, b"\xa9 \xf0\x9f", fin=False)
    ws.send_frame(h.OP_CONT, b"\x98\x80", fin=True)
    assert sub.get() == "café 😀".encode()
    assert ws.recv_text() == "café 😀"


def test_invalid_utf8_in_binary_message_is_fine(gateway):
    ws = fresh(gateway)
    ws.send_binary(b"\xff\xc3\x28")
    assert ws.recv_message() == (h.OP_BINARY, b"\xff\xc3\x28")


# -- Size limit: 1009 ------------------------------------------------------------------------------------------

@with_env(WSGATE_MAX_PAYLOAD="1000")
def test_message_at_max_payload_is_accepted(gateway):
    ws = fresh(gateway)
    ws.send_text("a" * 1000)
    assert ws.recv_text() == "a" * 1000
    data = b"\xff" * 1000  # not UTF-8, so it is relayed as a binary frame
    ws.send_frame(h.OP_BINARY, data[:500], fin=False)
    ws.send_frame(h.OP_CONT, data[500:], fin=True)
    assert ws.recv_message() == (h.OP_BINARY, data)


@with_env(WSGATE_MAX_PAYLOAD="1000")
def test_message_over_max_payload_gets_1009(gateway):
    each_on_own_connection(gateway, (h.OP_TEXT, h.OP_BINARY), lambda ws, op: ws.send_frame(op, b"a" * 1001),
                           lambda ws, op: ws.expect_close(1009))


@with_env(WSGATE_MAX_PAYLOAD="1000")
def test_fragmented_message_over_max_payload_gets_1009(gateway):
    sub = h.Subscriber("broadcast:frames")
    ws = fresh(gateway)
    ws.send_frame(h.OP_TEXT, "a" * 600, fin=False)
    ws.send_frame(h.OP_CONT, "a" * 600, fin=True)
    ws.expect_close(1009)
    sub.expect_none(0.2)


@with_env(WSGATE_MAX_PAYLOAD="1000")
def test_huge_announced_length_gets_1009_without_payload(gateway):
    ws = fresh(gateway)
    ws.send_raw(h.build_frame(h.OP_BINARY, b"", length=1 << 40, length_bits=64))  # header only
    ws.expect_close(1009)


@with_env(WSGATE_MAX_PAYLOAD="128KiB")
def test_16_and_64_bit_client_lengths_roundtrip(gateway):
    ws = fresh(gateway)
    for n in (125, 126, 65535, 65536, 128 * 1024):
        data = b"\xff" + bytes((i * 7) & 0xFF for i in range(n - 1))  # not UTF-8: relayed as binary
        ws.send_binary(data)
        assert ws.recv_message(10) == (h.OP_BINARY, data), n


# -- PING / PONG -----------------------------------------------------------------------------------------------

def test_ping_gets_pong_with_same_payload(gateway):
    ws = fresh(gateway)
    for payload in (b"", b"hello", bytes(range(125)), b"\xff\x00"):
        ws.send_ping(payload)
        assert ws.recv_message() == (h.OP_PONG, payload)


def test_unsolicited_pong_is_ignored(gateway):
    ws = fresh(gateway)
    ws.send_pong(b"nobody asked")
    assert ws.ping_roundtrip(b"still alive") == []


def test_control_frames_inside_fragmented_message(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_TEXT, "a", fin=False)
    ws.send_ping(b"1")
    ws.send_frame(h.OP_CONT, "b", fin=False)
    ws.send_pong(b"x")
    ws.send_ping(b"2")
    ws.send_frame(h.OP_CONT, "c", fin=True)
    ws.recv_pongs([b"1", b"2"])  # both pings may arrive in one read: then only the latest is answered
    assert ws.recv_text() == "abc"


def test_close_inside_fragmented_message_is_answered(gateway):
    ws = fresh(gateway)
    ws.send_frame(h.OP_TEXT, "unfinished", fin=False)
    ws.send_close(1000)
    assert ws.recv_close()[0] == 1000
    ws.wait_eof()


def test_frame_delivered_one_byte_at_a_time(gateway):
    ws = fresh(gateway)
    h.wait_numsub("broadcast:frames", 1)
    frame = h.build_frame(h.OP_TEXT, "slowly")
    for i in range(len(frame)):
        ws.send_raw(frame[i:i + 1])
        h.time.sleep(0.002)
    assert ws.recv_text() == "slowly"
