"""Identity and authorization: HS256 tokens (query, Authorization header, cookie), user/group/session
channels, permissions and their secure defaults, Origin allowlists."""

import base64
import json
import os
import sys
import time

import harness as h
from harness import with_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from mint_token import mint  # noqa: E402

SECRET = "s3cret-for-tests"
AUTH = dict(WSGATE_JWT_SECRET=SECRET, WSGATE_ANONYMOUS_PUBLISH="0")


def token(**claims):
    claims.setdefault("exp", int(time.time()) + 600)
    return mint(SECRET, claims)


def refused(gateway, path, headers=None):
    return gateway.raw().handshake(path, headers=headers)


@with_env(WSGATE_ANONYMOUS_PUBLISH="0")
def test_anonymous_publishing_is_refused_by_default(gateway):
    resp = refused(gateway, "/ws/a?subscribe-broadcast&publish-broadcast")
    assert resp.status == 403 and "publishing is disabled" in resp.text, resp
    ws = gateway.open_raw("/ws/a?subscribe-broadcast")  # subscribing stays open to all
    assert ws.ping_roundtrip() == []


@with_env(WSGATE_ANONYMOUS_PUBLISH="1")
def test_anonymous_publishing_with_the_switch(gateway):
    ws = gateway.open_raw("/ws/a?publish-broadcast")
    sub = h.Subscriber("broadcast:a")
    ws.send_text("hi")
    assert sub.get(3) == b"hi"


@with_env(**AUTH)
def test_identity_channels_need_a_token(gateway):
    for q in ("subscribe-user", "subscribe-group", "subscribe-session", "publish-user"):
        resp = refused(gateway, f"/ws/f?{q}")
        assert resp.status == 403 and "identity" in resp.text, (q, resp)
    assert h.pubsub_channels() == []


@with_env(**AUTH)
def test_token_for_john_in_admins_gets_his_channels_only(gateway):
    t = token(sub="john", groups=["admins", "staff"], sid="abc")
    ws = gateway.open_raw(f"/ws/f?subscribe-user&subscribe-group&subscribe-session&token={t}")
    for ch in ("user:john:f", "group:admins:f", "group:staff:f", "session:abc:f"):
        h.wait_numsub(ch, 1)
    h.publish("user:mary:f", "not for john")
    h.publish("broadcast:f", "not subscribed")
    for ch in ("user:john:f", "group:admins:f", "group:staff:f", "session:abc:f"):
        h.publish(ch, f"to {ch}")
    got = [ws.recv_text() for _ in range(4)]
    assert got == ["to user:john:f", "to group:admins:f", "to group:staff:f", "to session:abc:f"], got
    ws.expect_silence(0.3)
    assert gateway.wait_log(r"event=conn_open .*user=john ")
    assert t not in gateway.log_text()  # tokens never reach the logs


@with_env(**AUTH)
def test_forged_tokens_get_401_and_subscribe_nothing(gateway):
    good = token(sub="john")
    header, payload, sig = good.split(".")
    expired = token(sub="john", exp=int(time.time()) - 3600)
    future = token(sub="john", nbf=int(time.time()) + 3600)
    wrong_key = mint("another-secret", {"sub": "john"})
    none_alg = (base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode() + "." + payload
                + ".")
    tampered = header + "." + base64.urlsafe_b64encode(b'{"sub":"mary"}').rstrip(b"=").decode() + "." + sig
    cases = {
        "expired": expired, "not yet valid": future, "wrong key": wrong_key, "alg none": none_alg,
        "tampered": tampered, "garbage": "abc.def", "bad base64": "a+b.c/d.e=f",
    }
    for name, t in cases.items():
        resp = refused(gateway, f"/ws/f?subscribe-user&token={t}")
        assert resp.status == 401, (name, resp)
        assert resp.text.strip(), name  # a reason is given
    assert h.pubsub_channels() == []


@with_env(**AUTH)
def test_token_in_authorization_header(gateway):
    t = token(sub="ann")
    ws = gateway.open_raw("/ws/f?subscribe-user", headers={"Authorization": f"Bearer {t}"})
    h.wait_numsub("user:ann:f", 1)
    h.publish("user:ann:f", "hello ann")
    assert ws.recv_text() == "hello ann"


@with_env(WSGATE_TOKEN_COOKIE="wsgate_token", **AUTH)
def test_token_in_cookie(gateway):
    t = token(sub="bob")
    ws = gateway.open_raw("/ws/f?subscribe-user", headers={"Cookie": f"sessionid=x; wsgate_token={t}"})
    h.wait_numsub("user:bob:f", 1)


@with_env(**AUTH)
def test_publish_user_lands_in_the_user_channel_and_key(gateway):
    t = token(sub="john")
    sub = h.Subscriber("user:john:f")
    ws = gateway.open_raw(f"/ws/f?publish-user&token={t}")
    ws.send_text("note to self")
    assert sub.get(3) == b"note to self"
    # SETEX follows PUBLISH: the subscriber may hear the message before Redis has run the SETEX.
    h.wait_until(lambda: h.redis_client().get("user:john:f") == b"note to self", 3, what="the stored copy")


@with_env(**AUTH)
def test_allow_claim_limits_permissions(gateway):
    t = token(sub="eve", allow=["subscribe-broadcast", "subscribe-user"])
    assert refused(gateway, f"/ws/f?publish-broadcast&token={t}").status == 403
    assert refused(gateway, f"/ws/f?subscribe-group&token={t}").status == 403
    ws = gateway.open_raw(f"/ws/f?subscribe-broadcast&subscribe-user&token={t}")
    assert ws.ping_roundtrip() == []


@with_env(**AUTH)
def test_channels_claim_limits_facilities(gateway):
    t = token(sub="eve", channels=["chat"])
    resp = refused(gateway, f"/ws/other?subscribe-broadcast&token={t}")
    assert resp.status == 403 and "facility" in resp.text, resp
    gateway.open_raw(f"/ws/chat?subscribe-broadcast&token={t}")


@with_env(WSGATE_ALLOWED_ORIGINS="https://app.example.com, https://*.example.org")
def test_origin_allowlist(gateway):
    ok = gateway.open_raw("/ws/o?subscribe-broadcast", headers={"Origin": "https://app.example.com"})
    ok2 = gateway.open_raw("/ws/o?subscribe-broadcast", headers={"Origin": "https://a.b.example.org"})
    for bad in ("https://evil.example.com", "http://app.example.com", "https://example.org", "null"):
        resp = refused(gateway, "/ws/o?subscribe-broadcast", headers={"Origin": bad})
        assert resp.status == 403 and "Origin" in resp.text, (bad, resp)
    # Clients that are not browsers send no Origin.
    gateway.open_raw("/ws/o?subscribe-broadcast")


def test_bad_origin_list_stops_start_up(run_gateway):
    status, out = run_gateway(WSGATE_ALLOWED_ORIGINS="https://ok.example, ftp://")
    assert status == 2 and "WSGATE_ALLOWED_ORIGINS" in out, (status, out)


def test_secret_file_is_read_and_trailing_newline_ignored(start_gateway):
    path = os.path.join(h.ARTIFACTS, "jwt-secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    gw = start_gateway(WSGATE_JWT_SECRET_FILE=path, WSGATE_JWT_SECRET="ignored")
    gw.open_raw(f"/ws/f?subscribe-user&token={token(sub='sam')}")
    h.wait_numsub("user:sam:f", 1)
