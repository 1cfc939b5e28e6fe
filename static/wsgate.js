/*
 * wsgate.js: a small browser client for wsgate (and any ws4redis server), without dependencies.
 * It takes ws4redis.js's options, so `WS4Redis({...})` becomes `WSGate({...})`.
 *
 *   var ws = WSGate({
 *     uri: 'ws://example.com/ws/foobar?subscribe-broadcast&publish-broadcast&echo',
 *     connecting: function () {},             // before every connection attempt
 *     connected: function () {},              // the WebSocket is open
 *     receive_message: function (msg, meta) {},
 *                                             // every message that is not a heartbeat (string, or
 *                                             // Blob/ArrayBuffer for binary ones, see binary_type);
 *                                             // meta: {channel, id}, see "Stream channels" below
 *     gap: function (info) {},                // messages were lost: {channel, after, reason}
 *     disconnected: function (evt) {},        // the WebSocket closed (evt: its CloseEvent); a reconnect follows
 *     heartbeat_msg: '--heartbeat--'          // the server's WS4REDIS_HEARTBEAT string
 *   });
 *   ws.send_message('Hello');   // true when sent, false when not connected
 *   ws.last_ids();              // {"<channel>": "<stream id>", ...}: where a reconnect resumes
 *   ws.close();                 // closes for good: no reconnect
 *
 * Options (all optional but uri):
 *   uri                  ws:// or wss:// URL; a path such as '/ws/foobar?subscribe-broadcast' is taken on the
 *                        page's own host (wss: on https pages).
 *   protocol             'auto' (default): offer the subprotocol 'wsgate.v1' and speak it when the server picks
 *                        it, else the raw dialect; 'raw': offer nothing and speak the raw dialect, as ws4redis.js.
 *   since                {"<channel>": "<stream id>", ...}: where to resume each stream channel on the first
 *                        connection (e.g. what last_ids() returned on an earlier page, kept in localStorage, or
 *                        written into the page by the server); ids not of the form "<ms>-<seq>" are ignored.
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
 *   binary_type          'blob' (the browser's default) or 'arraybuffer': what binary messages are delivered as,
 *                        binary frames (the WebSocket's binaryType) and wsgate.v1's data_b64 payloads alike (a
 *                        Blob where the environment has none is an ArrayBuffer).
 *   receive_message      function (data, meta): see above; meta is {channel: null, id: null} in the raw dialect.
 *   gap                  function ({channel, after, reason}): see "Stream channels".
 *   onstate              function (state, info): state is 'connecting', 'connected', 'disconnected' (info:
 *                        {code, reason, reconnect_in: ms or null}) or 'closed' (after close()).
 *   onheartbeat          function (count): after every swallowed heartbeat.
 *   debug                log to the console.
 *   WebSocket            the WebSocket constructor to use (default: the global one; for tests or Node).
 *
 * Stream channels (the wsgate.v1 subprotocol). When the server picks 'wsgate.v1' (mode 'v1'), each message comes
 * as one JSON text frame, {"ch": "<channel>", "id": "<stream id>" or null, "data": "<text>"}, or the same with
 * "data_b64": "<base64>" for a binary payload; receive_message gets the payload (a string, or a Blob or an
 * ArrayBuffer as binary_type says) and meta {channel, id}, id being null on plain pub/sub channels.
 *   Exactly once, in order: the client keeps the last id it delivered on each channel (last_ids()) and delivers
 *   a message with an id only when that id is greater. Ids "<ms>-<seq>" are compared part by part as whole
 *   numbers, exactly also beyond 2^53.
 *   Resuming: a connection that offers wsgate.v1 asks the server to replay what it missed. Once last_ids() has
 *   entries, the uri's query gets since.<channel>=<id> for each (both percent-encoded), in place of any
 *   since.* parameter it had; a plain since=<id> written in uri stays (the server applies it to the channels
 *   without their own), and the rest of the query is kept as written. The replay may overlap what was
 *   delivered already: such messages are dropped. since.<channel> parameters written in uri are initial ids
 *   (the since option's win).
 *   Gaps: {"ch": "<channel>", "gap": true, "after": "<id>", "reason": "trimmed" or "replay_max"} says messages
 *   of the channel after `after` are lost (no longer kept by the server, or too many to replay); those after
 *   the notice are delivered as usual. It calls gap({channel, after, reason}) once: a notice repeating the
 *   channel's previous one (as a resumed connection's may) is not reported again.
 *   Anything else (not JSON, no "ch", no payload, an id not of the form "<ms>-<seq>", a binary frame) is
 *   delivered as it came with meta {channel: null, id: null}, and logged in debug mode; nothing throws.
 *   Heartbeats are not wrapped, and are swallowed first. send_message() sends raw text frames in both modes.
 *   Servers that do not know wsgate.v1: ws4redis answers without it (raw mode); an older wsgate echoes it back,
 *   and its raw messages are then delivered as they came. Chromium fails a handshake that leaves out an offered
 *   subprotocol (ws4redis under uWSGI does), so when a connection offering wsgate.v1 fails before it opens and
 *   none of this client's connections has spoken wsgate.v1 yet, the next attempt offers nothing and sends no
 *   since parameters; the one after offers again. protocol: 'raw' saves that attempt where the server is known
 *   not to speak wsgate.v1.
 *
 * Methods and properties: send_message(text), close(), get_state() (the WebSocket readyState, as ws4redis.js),
 * last_ids() (a copy of the channel -> last delivered id map, to keep and pass as `since` later),
 * state ('connecting', 'connected', 'disconnected', 'closed'), mode ('v1' or 'raw' once a connection opened,
 * null before), heartbeats (received in all), attempts.
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
  var SUBPROTOCOL = 'wsgate.v1';
  var STREAM_ID = /^(\d+)-(\d+)$/;
  var BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

  function isFunction(f) {
    return typeof f === 'function';
  }

  function isStreamId(id) {
    return typeof id === 'string' && STREAM_ID.test(id);
  }

  // Both parts of a stream id are uint64s, past 2^53 where Numbers lose digits: they are compared as digit
  // strings, the longer (leading zeros aside) being the greater.
  function compareDigits(a, b) {
    a = a.replace(/^0+(?=\d)/, '');
    b = b.replace(/^0+(?=\d)/, '');
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // < 0, 0 or > 0 as stream id a comes before, is, or comes after b (both "<ms>-<seq>").
  function compareIds(a, b) {
    var x = STREAM_ID.exec(a);
    var y = STREAM_ID.exec(b);
    return compareDigits(x[1], y[1]) || compareDigits(x[2], y[2]);
  }

  function hasOwn(o, k) {
    return Object.prototype.hasOwnProperty.call(o, k);
  }

  // A key such as '__proto__' must stay a plain entry of the map, not reach the object's prototype.
  function setEntry(o, k, v) {
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  }

  function decodeComponent(s) {
    try {
      return decodeURIComponent(s);
    } catch (e) {
      return s;
    }
  }

  // RFC 4648 base64 (padding optional) to a Uint8Array, or null when the text is not base64.
  function decodeBase64(text) {
    var s = text.replace(/={1,2}$/, '');
    if ((s.length !== text.length && text.length % 4 !== 0) || s.length % 4 === 1 || /[^A-Za-z0-9+\/]/.test(s)) {
      return null;
    }
    var out = new Uint8Array((s.length * 3) >> 2);
    var acc = 0;
    var bits = 0;
    var o = 0;
    for (var i = 0; i < s.length; i++) {
      acc = (acc << 6) | BASE64.indexOf(s.charAt(i));
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >> bits) & 0xff;
        acc &= (1 << bits) - 1;
      }
    }
    return out;
  }

  // The since / since.<channel> parameters of a URI's query: {channel: id} for the well-formed since.<channel>.
  function sinceParams(uri) {
    var found = {};
    var query = uri.split('#')[0].split('?')[1];
    if (!query) return found;
    var params = query.split('&');
    for (var i = 0; i < params.length; i++) {
      var eq = params[i].indexOf('=');
      if (eq < 0) continue;
      var name = decodeComponent(params[i].slice(0, eq));
      var value = decodeComponent(params[i].slice(eq + 1));
      if (name.length > 6 && name.indexOf('since.') === 0 && isStreamId(value)) {
        setEntry(found, name.slice(6), value);
      }
    }
    return found;
  }

  function isChannelSinceParam(param) {
    var name = decodeComponent(param.split('=')[0]);
    return name.indexOf('since.') === 0;
  }

  // uri with its since.* parameters replaced by since.<channel>=<id> for each entry of ids; as is when ids is
  // empty. A plain since stays: the server applies it to the channels that have no since.<channel> (those this
  // client has not had a message of yet). The rest of the query keeps its order and spelling.
  function withSince(uri, ids) {
    var added = [];
    for (var ch in ids) {
      if (!hasOwn(ids, ch)) continue;
      try {
        added.push('since.' + encodeURIComponent(ch) + '=' + encodeURIComponent(ids[ch]));
      } catch (e) {
        /* a lone surrogate in the channel's name: it cannot be written into a URL */
      }
    }
    if (!added.length) return uri;
    var hash = uri.indexOf('#') < 0 ? '' : uri.slice(uri.indexOf('#'));
    var rest = uri.slice(0, uri.length - hash.length);
    var q = rest.indexOf('?');
    var base = q < 0 ? rest : rest.slice(0, q);
    var params = q < 0 ? [] : rest.slice(q + 1).split('&');
    var kept = [];
    for (var i = 0; i < params.length; i++) {
      if (!isChannelSinceParam(params[i])) kept.push(params[i]);
    }
    return base + '?' + kept.concat(added).join('&') + hash;
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
      protocol: 'auto',
      since: null,
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
    var may_offer = opts.protocol !== 'raw';
    var is_v1 = false; // the open connection speaks wsgate.v1
    var has_spoken_v1 = false; // some connection of this client did
    var skip_offer = false; // the next attempt offers no subprotocol (see the header)
    var last_ids = Object.create(null); // channel -> last stream id delivered
    var last_gaps = Object.create(null); // channel -> `after` of the last gap notice reported

    self.state = 'disconnected';
    self.mode = null;
    self.heartbeats = 0;
    self.attempts = 0; // connection attempts since the last successful open

    function log() {
      if (opts.debug && typeof console !== 'undefined') {
        console.log.apply(console, ['wsgate:'].concat([].slice.call(arguments)));
      }
    }

    function seed(ids, from) {
      if (!ids || typeof ids !== 'object') return;
      for (var ch in ids) {
        if (!hasOwn(ids, ch)) continue;
        if (ch && isStreamId(ids[ch])) setEntry(last_ids, ch, ids[ch]);
        else log('ignoring', from, 'entry', JSON.stringify(ch), ids[ch]);
      }
    }
    seed(sinceParams(uri), 'uri since');
    seed(opts.since, 'since');

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
      var offer = may_offer && !skip_offer;
      skip_offer = false;
      var url = offer ? withSince(uri, last_ids) : uri;
      log('connecting to', url, offer ? 'offering ' + SUBPROTOCOL : 'offering no subprotocol');
      try {
        ws = offer ? new WS(url, [SUBPROTOCOL]) : new WS(url);
      } catch (err) {
        log('cannot connect:', err);
        ws = null;
        setState('disconnected', { code: 0, reason: String(err), reconnect_in: scheduleReconnect() });
        return;
      }
      if (opts.binary_type) ws.binaryType = opts.binary_type;
      var my = ws;
      var opened = false;
      ws.onopen = function () {
        if (my !== ws) return;
        opened = true;
        onOpen(offer && my.protocol === SUBPROTOCOL);
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
        if (offer && !opened && !has_spoken_v1) skip_offer = true;
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

    function onOpen(v1) {
      is_v1 = v1;
      if (v1) has_spoken_v1 = true;
      self.mode = v1 ? 'v1' : 'raw';
      log('connected, mode', self.mode);
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
      if (is_v1) onStreamMessage(data);
      else deliver(data, null, null);
    }

    function deliver(data, channel, id) {
      if (isFunction(opts.receive_message)) opts.receive_message(data, { channel: channel, id: id });
    }

    function binaryValue(bytes) {
      if (opts.binary_type !== 'arraybuffer' && typeof Blob !== 'undefined') return new Blob([bytes]);
      return bytes.buffer;
    }

    // A wsgate.v1 frame as {ch, id, payload} or {ch, gap: true, after, reason}; null when it is not one.
    function parseEnvelope(data) {
      if (typeof data !== 'string') return null;
      var msg;
      try {
        msg = JSON.parse(data);
      } catch (e) {
        return null;
      }
      if (!msg || typeof msg.ch !== 'string' || !msg.ch) return null;
      if (msg.gap === true) {
        return {
          ch: msg.ch,
          gap: true,
          after: typeof msg.after === 'string' ? msg.after : null,
          reason: typeof msg.reason === 'string' ? msg.reason : null
        };
      }
      var id = msg.id === undefined ? null : msg.id;
      if (id !== null && !isStreamId(id)) return null;
      var payload;
      if (typeof msg.data === 'string') payload = msg.data;
      else if (typeof msg.data_b64 === 'string') {
        var bytes = decodeBase64(msg.data_b64);
        if (!bytes) return null;
        payload = binaryValue(bytes);
      } else return null;
      return { ch: msg.ch, id: id, payload: payload };
    }

    function onStreamMessage(data) {
      var msg = parseEnvelope(data);
      if (!msg) {
        log('not a ' + SUBPROTOCOL + ' message, delivered as it came:', data);
        deliver(data, null, null);
        return;
      }
      if (msg.gap) {
        if (hasOwn(last_gaps, msg.ch) && last_gaps[msg.ch] === msg.after) {
          log('gap notice repeated, not reported again:', msg.ch, 'after', msg.after);
          return;
        }
        setEntry(last_gaps, msg.ch, msg.after);
        log('gap:', msg.ch, 'lost messages after', msg.after, '(' + msg.reason + ')');
        if (isFunction(opts.gap)) opts.gap({ channel: msg.ch, after: msg.after, reason: msg.reason });
        return;
      }
      if (msg.id !== null) {
        if (hasOwn(last_ids, msg.ch) && compareIds(msg.id, last_ids[msg.ch]) <= 0) {
          log('already delivered:', msg.ch, msg.id, '(last', last_ids[msg.ch] + ')');
          return;
        }
        setEntry(last_ids, msg.ch, msg.id); // before the callback, which may read last_ids()
      }
      deliver(msg.payload, msg.ch, msg.id);
    }

    function send(message) {
      if (!ws || ws.readyState !== 1) return false;
      ws.send(message);
      return true;
    }

    self.send_message = function (message) {
      return send(message);
    };

    self.last_ids = function () {
      var copy = {};
      for (var ch in last_ids) setEntry(copy, ch, last_ids[ch]);
      return copy;
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
