"""Files served on the WebSocket port: /wsgate.js always, the demo page and /demo-settings.json (what the page
must follow: the broadcast channel prefix for its redis-cli hint, WEBSOCKET_URL, the heartbeat) with
WSGATE_DEMO=1 only."""

import json

import harness as h


def http_get(gateway, path, method="GET"):
    ws = gateway.raw()
    return ws.request(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")


def test_without_the_demo_only_the_client_is_served(gateway):
    resp = http_get(gateway, "/wsgate.js")
    assert resp.status == 200 and "javascript" in resp.headers["content-type"], resp
    for path in ("/", "/demo-settings.json"):
        resp = http_get(gateway, path)
        assert resp.status == 404, (path, resp)


def test_demo_settings_follow_the_gateway(start_gateway):
    gw = start_gateway(WSGATE_DEMO="1", WS4REDIS_PREFIX="site", WEBSOCKET_URL="/live/", WS4REDIS_HEARTBEAT="--hb--")
    resp = http_get(gw, "/")
    assert resp.status == 200 and 'id="hint"' in resp.text, resp
    resp = http_get(gw, "/demo-settings.json")
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json", resp
    settings = json.loads(resp.body)
    assert settings == {"broadcast_channel_prefix": "site:broadcast:", "websocket_url": "/live/",
                        "heartbeat": "--hb--", "heartbeat_mode": "ws4redis"}, settings
    # The channel the page names in its hint is the one its clients hear.
    ws = gw.open_raw(settings["websocket_url"] + "demo?subscribe-broadcast")
    channel = settings["broadcast_channel_prefix"] + "demo"
    h.wait_numsub(channel, 1)
    h.publish(channel, "as the hint says")
    assert ws.recv_text() == "as the hint says"
    assert http_get(gw, "/demo-settings.json", method="POST").status == 404


def test_demo_settings_without_prefix_or_heartbeat(start_gateway):
    gw = start_gateway(WSGATE_DEMO="1", WSGATE_HEARTBEAT_MODE="json")
    resp = http_get(gw, "/demo-settings.json")
    assert resp.status == 200, resp
    assert json.loads(resp.body) == {"broadcast_channel_prefix": "broadcast:", "websocket_url": "/ws/",
                                     "heartbeat": None, "heartbeat_mode": "json"}, resp
