"""Opening handshake: ws4redis status codes and texts, RFC 6455 accept key, subprotocols, URL and query rules."""

import time

import harness as h
from harness import with_env


def error_response(gateway, path="/ws/foo?subscribe-broadcast", headers=None, method="GET", version="HTTP/1.1",
                   head=None):
    """Sends one request, returns the response, and checks the server then closes the connection."""
    ws = gateway.raw()
    if head is not None:
        resp = ws.request(head)
    else:
        resp = ws.handshake(path, headers=headers, method=method, version=version)
    ws.wait_eof()
    return resp


def assert_error(resp, status, text=None):
    assert resp.status == status, f"expected {status}, got {resp!r}"
    if text is not None:
        assert text in resp.text, f"body {resp.body!r} lacks {text!r}"


# -- Accepted upgrades -----------------------------------------------------------------------------------------

def test_valid_upgrade_returns_101_with_correct_accept_key(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo?subscribe-broadcast")
    ws.assert_upgraded(resp)  # status, Upgrade, Connection and Sec-WebSocket-Accept
    assert "sec-websocket-protocol" not in resp.headers, resp
    assert "sec-websocket-extensions" not in resp.headers, resp
    ws.close_handshake(1000)


def test_accept_key_for_rfc_example_key(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 101, resp
    assert resp.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_first_offered_subprotocol_is_echoed(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo?subscribe-broadcast", headers={"Sec-WebSocket-Protocol": "chat, superchat"})
    ws.assert_upgraded(resp)
    assert resp.headers.get("sec-websocket-protocol") == "chat", resp


async def test_real_client_negotiates_first_subprotocol(gateway):
    ws = await gateway.connect("/ws/foo?subscribe-broadcast", subprotocols=["chat", "superchat"])
    assert ws.subprotocol == "chat"
    await ws.close()
    assert ws.close_code == 1000


def test_only_a_token_subprotocol_is_echoed(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"Sec-WebSocket-Protocol": "a b, \"q\", x/y, v1.chat"})
    ws.assert_upgraded(resp)
    assert resp.headers.get("sec-websocket-protocol") == "v1.chat", resp
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"Sec-WebSocket-Protocol": "a b, (c)"})
    ws.assert_upgraded(resp)
    assert "sec-websocket-protocol" not in resp.headers, resp  # nothing that is not a token is reflected


def test_folded_header_lines_are_refused_and_never_reflected(gateway):
    """obs-fold (RFC 7230 3.2.4): a line that starts with white space continues the previous header. A folded
    Sec-WebSocket-Protocol must not carry a forged header into the 101; a folded Cookie or Authorization must not
    reach the authorization callback as it is."""
    for name, folded in (("Sec-WebSocket-Protocol", "chat\r\n Set-Cookie: a=b"),
                         ("Cookie", "a=b\r\n\tsessionid=forged"),
                         ("Authorization", "Bearer x\r\n y")):
        resp = error_response(gateway, head=h.upgrade_request("/ws/foo", headers={name: folded}))
        assert_error(resp, 400, "Header lines must not be folded")
        assert "set-cookie" not in resp.headers and b"Set-Cookie" not in resp.raw_head, resp
    assert gateway.wait_log(r"event=handshake_refused .*status=400")


def test_bare_cr_and_control_characters_in_headers_are_refused(gateway):
    for value in ("a\rb", "a\x00b", "a\x01b", "a\x7fb"):
        resp = error_response(gateway, head=h.upgrade_request("/ws/foo", headers={"X-Test": value}))
        assert_error(resp, 400, "control characters")
    ws = gateway.raw()  # a tab and UTF-8 are fine
    ws.assert_upgraded(ws.handshake("/ws/foo", headers={"X-Test": "a\tb caf\u00e9"}))


def test_upgrade_header_is_case_insensitive(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"Upgrade": "WebSocket"})
    ws.assert_upgraded(resp)


def test_connection_header_token_list_with_upgrade_is_accepted(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"Connection": "keep-alive, Upgrade"})
    ws.assert_upgraded(resp)


def test_request_sent_in_small_pieces_is_accepted(gateway):
    ws = gateway.raw()
    ws.key = h.new_key()
    head = h.upgrade_request("/ws/foo?subscribe-broadcast", key=ws.key)
    for i in range(0, len(head), 7):
        ws.send_raw(head[i:i + 7])
        time.sleep(0.001)
    ws.assert_upgraded(ws.read_response())
    h.wait_numsub("broadcast:foo", 1)


def test_request_head_of_7kib_is_accepted(gateway):
    ws = gateway.raw()
    resp = ws.handshake("/ws/foo", headers={"X-Filler": "a" * 7000})
    ws.assert_upgraded(resp)


# -- Refusals (ws4redis status codes and texts) ----------------------------------------------------------------

def test_path_outside_websocket_url_is_404(gateway):
    for path in ("/other/foo?subscribe-broadcast", "/", "/ws", "/wsfoo"):
        assert_error(error_response(gateway, path), 404)
    assert h.pubsub_channels() == []


def test_non_get_method_is_400(gateway):
    for method in ("POST", "PUT", "DELETE"):
        assert_error(error_response(gateway, method=method), 400, "HTTP method must be a GET")


def test_http_1_0_is_400(gateway):
    assert_error(error_response(gateway, version="HTTP/1.0"), 400, "HTTP server protocol must be 1.1")


def test_missing_upgrade_header_is_400(gateway):
    assert_error(error_response(gateway, headers={"Upgrade": None}), 400,
                 "Client does not wish to upgrade to a websocket")


def test_upgrade_to_other_protocol_is_400(gateway):
    assert_error(error_response(gateway, headers={"Upgrade": "h2c"}), 400,
                 "Client does not wish to upgrade to a websocket")


def test_connection_header_without_upgrade_token_is_400(gateway):
    assert_error(error_response(gateway, headers={"Connection": "keep-alive"}), 400,
                 "Connection header must include Upgrade")
    assert_error(error_response(gateway, headers={"Connection": None}), 400,
                 "Connection header must include Upgrade")


def test_missing_websocket_version_is_426_with_version_header(gateway):
    resp = error_response(gateway, headers={"Sec-WebSocket-Version": None})
    assert_error(resp, 426)
    assert resp.headers.get("sec-websocket-version") == "13", resp


def test_websocket_version_8_is_400(gateway):
    assert_error(error_response(gateway, headers={"Sec-WebSocket-Version": "8"}), 400,
                 "Unsupported WebSocket Version")


def test_missing_or_malformed_key_is_400(gateway):
    short_key = h.base64.b64encode(b"x" * 15).decode()
    long_key = h.base64.b64encode(b"x" * 17).decode()
    for key in (None, short_key, long_key, "not base64!!", ""):
        resp = error_response(gateway, headers={"Sec-WebSocket-Key": key})
        assert_error(resp, 400, "Invalid key")


def test_request_head_over_8kib_is_431(gateway):
    ws = gateway.raw()
    try:
        resp = ws.handshake("/ws/foo", headers={"X-Filler": "a" * 9000})
    except h.ServerClosed as e:
        raise AssertionError(f"connection closed without a 431 response: {e}") from None
    assert_error(resp, 431)


def test_facility_over_256_bytes_is_400(gateway):
    assert_error(error_response(gateway, "/ws/" + "a" * 257 + "?subscribe-broadcast"), 400)
    # The limit applies after percent-decoding: 129 two-byte characters are 258 bytes.
    assert_error(error_response(gateway, "/ws/" + "%C3%A9" * 129 + "?subscribe-broadcast"), 400)
    assert h.pubsub_channels() == []


def test_facility_of_exactly_256_bytes_is_accepted(gateway):
    ws = gateway.open_raw("/ws/" + "%C3%A9" * 128 + "?subscribe-broadcast")
    h.wait_numsub("broadcast:" + "é" * 128, 1)
    ws.close_handshake()


def test_facility_with_control_character_is_400(gateway):
    for fac in ("a%01b", "a%7Fb", "%0A", "a%00"):
        assert_error(error_response(gateway, f"/ws/{fac}?subscribe-broadcast"), 400)
    assert h.pubsub_channels() == []


def test_facility_with_invalid_utf8_is_400(gateway):
    for fac in ("a%ff", "%C3", "%C3%28", "%ED%A0%80"):  # bad byte, truncated, bad continuation, surrogate
        assert_error(error_response(gateway, f"/ws/{fac}?subscribe-broadcast"), 400)
    assert h.pubsub_channels() == []


def test_identity_channels_are_403_until_auth_exists(gateway):
    for key in ("subscribe-user", "subscribe-group", "subscribe-session", "publish-user", "publish-group",
                "publish-session"):
        resp = error_response(gateway, f"/ws/foo?{key}")
        assert_error(resp, 403)
        assert h.re.search(r"(?i)identity|authenticat", resp.text), f"{key}: body {resp.body!r}"


def test_identity_channel_refusal_subscribes_nothing(gateway):
    resp = error_response(gateway, "/ws/foo?subscribe-broadcast&subscribe-user&publish-broadcast")
    assert_error(resp, 403)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        assert h.pubsub_channels() == [], h.pubsub_channels()
        time.sleep(0.02)


# -- URL and query rules ---------------------------------------------------------------------------------------

def test_query_keys_are_case_insensitive(gateway):
    ws = gateway.open_raw("/ws/foo?Subscribe-Broadcast")
    h.wait_numsub("broadcast:foo", 1)
    h.publish("broadcast:foo", "hi")
    assert ws.recv_text() == "hi"


def test_query_values_are_ignored(gateway):
    ws = gateway.open_raw("/ws/foo?subscribe-broadcast=0")
    h.wait_numsub("broadcast:foo", 1)
    h.publish("broadcast:foo", "hi")
    assert ws.recv_text() == "hi"


def test_query_keys_are_percent_decoded_and_trimmed(gateway):
    ws = gateway.open_raw("/ws/foo?%20echo%20&subscribe-broadcast&publish-broadcast")
    h.wait_numsub("broadcast:foo", 1)
    ws.send_text("mine")
    assert ws.recv_text() == "mine"  # echo took effect


def test_unknown_query_keys_are_ignored(gateway):
    ws = gateway.open_raw("/ws/foo?foo=bar&subscribe-broadcast&x")
    h.wait_numsub("broadcast:foo", 1)
    assert h.pubsub_channels() == [b"broadcast:foo"]
    h.publish("broadcast:foo", "hi")
    assert ws.recv_text() == "hi"


def test_facility_is_percent_decoded_and_kept_verbatim(gateway):
    a = gateway.open_raw("/ws/caf%C3%A9?subscribe-broadcast")
    b = gateway.open_raw("/ws/a%2Fb/?subscribe-broadcast")
    h.wait_numsub("broadcast:café", 1)
    h.wait_numsub("broadcast:a/b/", 1)
    h.publish("broadcast:café", "x")
    assert a.recv_text() == "x"
    b.expect_silence(0.1)


@with_env(WEBSOCKET_URL="/sock/")
def test_custom_websocket_url(gateway):
    ws = gateway.open_raw("/sock/foo?subscribe-broadcast")
    h.wait_numsub("broadcast:foo", 1)
    assert_error(error_response(gateway, "/ws/foo?subscribe-broadcast"), 404)
    ws.close_handshake()
