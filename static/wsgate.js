/*
 * wsgate.js: a small browser client for wsgate (and any ws4redis server), without dependencies.
 * It takes ws4redis.js's options, so `WS4Redis({...})` becomes `WSGate({...})`.
 *
 *   var ws = WSGate({
 *     uri: 'ws://example.com/ws/foobar?subscribe-broadcast&publish-broadcast&echo',
 *     connecting: function () {},             // before every connection attempt
 *     connected: function () {},              // the WebSocket is open
 *     receive_message: function (msg) {},     // every message that is not a heartbeat (string, or
 *                                             // Blob/ArrayBuffer for binary frames, see binary_type)
 *     disconnected: function (evt) {},        // the WebSocket closed (evt: its CloseEvent); a reconnect follows
 *     heartbeat_msg: '--heartbeat--'          // the server's WS4REDIS_HEARTBEAT string
 *   });
 *   ws.send_message('Hello');   // true when sent, false when not connected
 *   ws.close();                 // closes for good: no reconnect
 *
 * Options (all optional but uri):
 *   uri                  ws:// or wss:// URL; a path such as '/ws/foobar?subscribe-broadcast' is taken on the
 *                        page's own host (wss: on https pages).
 *   heartbeat_msg        ws4redis dialect: the magic string. Received ones are swallowed and counted; once the
 *                        server has sent one, the client sends it back every heartbeat_interval and, when
 *                        max_missed_heartbeats of its intervals pass without one from the server, closes the
 *                        connection and reconnects (ws4redis.js: 5 s, 3). Nothing is sent to a server that
 *                        never sends the string (such a server would publish it).
 *   heartbeat_mode       'ws4redis' (default) or 'json': swallow {"type":"heartbeat","timestamp":..,"timeout":..}
 *                        messages, count them, answer {"type":"heartbeat_response","timestamp":<the heartbeat's>},
 *                        and reconnect when no heartbeat came for the server's `timeout` ms (its idle timeout),
 *                        or, without one, for max_missed_heartbeats times the spacing seen between heartbeats.
 *   heartbeat_interval   ms between the client's heartbeat checks in the ws4redis dialect (default 5000).
 *   max_missed_heartbeats  default 3.
 *   reconnect            default true: reconnect after every close but close()'s.
 *   reconnect_min, reconnect_max   backoff bounds in ms (default 500, 30000): after a close the client waits
 *                        a random time between half and all of min(reconnect_max, reconnect_min * 2^k), k being
 *                        the number of connection attempts that failed in a row (0 after a connection that opened).
 *   binary_type          WebSocket binaryType for binary frames: 'blob' (the browser's default) or 'arraybuffer'.
 *   onstate              function (state, info): state is 'connecting', 'connected', 'disconnected' (info:
 *                        {code, reason, reconnect_in: ms or null}) or 'closed' (after close()).
 *   onheartbeat          function (count): after every swallowed heartbeat.
 *   debug                log to the console.
 *   WebSocket            the WebSocket constructor to use (default: the global one; for tests or Node).
 *
 * Methods and properties: send_message(text), close(), get_state() (the WebSocket readyState, as ws4redis.js),
 * state ('connecting', 'connected', 'disconnected', 'closed'), heartbeats (received in all), attempts.
 * Exposed as the global WSGate, or as module.exports under CommonJS.
 */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module && module.exports) {
    module.exports = factory();
  } else {
    root.WSGate = factory();
  }
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var MAX_CONTROL_JSON = 512; // the server parses only messages this short that start with '{'

  function isFunction(f) {
    return typeof f === 'function';
  }

  function resolveUri(uri) {
    if (/^wss?:\/\//i.test(uri) || typeof location === 'undefined') return uri;
    if (/^https?:\/\//i.test(uri)) return uri.replace(/^http/i, 'ws');
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + location.host + (uri.charAt(0) === '/' ? '' : '/') + uri;
  }

  function WSGate(options) {
    if (!(this instanceof WSGate)) return new WSGate(options);
    if (!options || !options.uri) throw new Error('No Websocket URI in options');

    var self = this;
    var opts = {
      heartbeat_msg: null,
      heartbeat_mode: 'ws4redis',
      heartbeat_interval: 5000,
      max_missed_heartbeats: 3,
      reconnect: true,
      reconnect_min: 500,
      reconnect_max: 30000,
      binary_type: null,
      debug: false
    };
    for (var k in options) {
      if (Object.prototype.hasOwnProperty.call(options, k)) opts[k] = options[k];
    }
    var json_mode = opts.heartbeat_mode === 'json';
    var WS = opts.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    if (!WS) throw new Error('No WebSocket implementation');

    var uri = resolveUri(opts.uri);
    var ws = null;
    var reconnect_timer = null;
    var heartbeat_timer = null; // ws4redis: interval timer; json: watchdog timeout
    var missed = 0;
    var last_heartbeat_at = 0;
    var heartbeat_spacing = 0;
    var must_reconnect = opts.reconnect !== false;

    self.state = 'disconnected';
    self.heartbeats = 0;
    self.attempts = 0; // connection attempts since the last successful open

    function log() {
      if (opts.debug && typeof console !== 'undefined') {
        console.log.apply(console, ['wsgate:'].concat([].slice.call(arguments)));
      }
    }

    function setState(state, info) {
      self.state = state;
      if (isFunction(opts.onstate)) opts.onstate(state, info || {});
    }

    function stopHeartbeat() {
      if (heartbeat_timer !== null) {
        clearInterval(heartbeat_timer);
        clearTimeout(heartbeat_timer);
        heartbeat_timer = null;
      }
      missed = 0;
      last_heartbeat_at = 0;
      heartbeat_spacing = 0;
    }

    // A connection that stopped hearing heartbeats may be dead: its close handshake could take long, so it is
    // abandoned at once and reported closed (code 4000) as if the close had completed.
    function dropConnection(why) {
      log('closing:', why);
      var old = ws;
      if (!old) return;
      old.onopen = old.onmessage = old.onclose = null;
      try {
        old.close(4000, why);
      } catch (e) {
        /* already closing */
      }
      onClose({ code: 4000, reason: why, wasClean: false });
    }

    function connect() {
      reconnect_timer = null;
      if (ws && ws.readyState <= 1) return; // connecting or open
      self.attempts++;
      setState('connecting', { attempt: self.attempts });
      if (isFunction(opts.connecting)) opts.connecting();
      log('connecting to', uri);
      try {
        ws = new WS(uri);
      } catch (err) {
        log('cannot connect:', err);
        ws = null;
        setState('disconnected', { code: 0, reason: String(err), reconnect_in: scheduleReconnect() });
        return;
      }
      if (opts.binary_type) ws.binaryType = opts.binary_type;
      var my = ws;
      ws.onopen = function () {
        if (my !== ws) return;
        onOpen();
      };
      ws.onmessage = function (evt) {
        if (my !== ws) return;
        onMessage(evt);
      };
      ws.onerror = function () {
        log('connection error'); // a close event follows
      };
      ws.onclose = function (evt) {
        if (my !== ws) return;
        onClose(evt);
      };
    }

    function scheduleReconnect() {
      if (!must_reconnect || reconnect_timer !== null) return null;
      var n = self.attempts + 1; // 1 after a connection that had opened
      var ceiling = Math.min(opts.reconnect_max, opts.reconnect_min * Math.pow(2, Math.min(n - 1, 30)));
      var delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      log('reconnecting in', delay, 'ms');
      reconnect_timer = setTimeout(connect, delay);
      return delay;
    }

    function onOpen() {
      log('connected');
      self.attempts = 0;
      stopHeartbeat();
      setState('connected');
      if (isFunction(opts.connected)) opts.connected();
    }

    function onClose(evt) {
      log('closed', evt.code, evt.reason);
      stopHeartbeat();
      ws = null;
      if (must_reconnect) {
        setState('disconnected', { code: evt.code, reason: evt.reason, reconnect_in: scheduleReconnect() });
      }
      if (isFunction(opts.disconnected)) opts.disconnected(evt);
    }

    function countHeartbeat() {
      self.heartbeats++;
      if (isFunction(opts.onheartbeat)) opts.onheartbeat(self.heartbeats);
    }

    // ws4redis dialect: ws4redis.js's clock, armed by the server's first heartbeat.
    function ws4redisTick() {
      missed++;
      if (missed > opts.max_missed_heartbeats) {
        dropConnection('too many missed heartbeats');
        return;
      }
      send(opts.heartbeat_msg);
    }

    // JSON dialect: a watchdog re-armed by every heartbeat.
    function armJsonWatchdog(timeout_ms) {
      var now = Date.now();
      if (last_heartbeat_at) heartbeat_spacing = now - last_heartbeat_at;
      last_heartbeat_at = now;
      var limit = timeout_ms > 0 ? timeout_ms : heartbeat_spacing * opts.max_missed_heartbeats;
      if (heartbeat_timer !== null) clearTimeout(heartbeat_timer);
      heartbeat_timer = null;
      if (limit > 0) {
        heartbeat_timer = setTimeout(function () {
          heartbeat_timer = null;
          dropConnection('no heartbeat for ' + limit + ' ms');
        }, limit);
      }
    }

    function parseJsonHeartbeat(data) {
      if (typeof data !== 'string' || data.length > MAX_CONTROL_JSON || data.charAt(0) !== '{') return null;
      var msg;
      try {
        msg = JSON.parse(data);
      } catch (e) {
        return null;
      }
      return msg && msg.type === 'heartbeat' ? msg : null;
    }

    function onMessage(evt) {
      var data = evt.data;
      if (json_mode) {
        var hb = parseJsonHeartbeat(data);
        if (hb) {
          countHeartbeat();
          var ts = typeof hb.timestamp === 'number' ? hb.timestamp : Date.now();
          send(JSON.stringify({ type: 'heartbeat_response', timestamp: ts }));
          armJsonWatchdog(typeof hb.timeout === 'number' ? hb.timeout : 0);
          return;
        }
      } else if (opts.heartbeat_msg && data === opts.heartbeat_msg) {
        missed = 0;
        countHeartbeat();
        if (heartbeat_timer === null) heartbeat_timer = setInterval(ws4redisTick, opts.heartbeat_interval);
        return;
      }
      if (isFunction(opts.receive_message)) opts.receive_message(data);
    }

    function send(message) {
      if (!ws || ws.readyState !== 1) return false;
      ws.send(message);
      return true;
    }

    self.send_message = function (message) {
      return send(message);
    };

    self.get_state = function () {
      return ws ? ws.readyState : 3;
    };

    // Closes for good; `disconnected` still follows when the socket's close completes.
    self.close = function () {
      must_reconnect = false;
      if (reconnect_timer !== null) {
        clearTimeout(reconnect_timer);
        reconnect_timer = null;
      }
      stopHeartbeat();
      if (ws && ws.readyState <= 1) ws.close(1000);
      setState('closed');
    };

    connect();
  }

  return WSGate;
});
