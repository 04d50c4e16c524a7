// The live watch page: each stream of the session plays from the relay through Media Source
// Extensions. The relay sends, per WebSocket, the init segment, then fragmented-MP4 fragments
// (first one on a keyframe), and JSON text signals: signal_lost (the source stopped: say so over
// the picture rather than leave it frozen) and signal_restored (a new ffmpeg: its init segment
// follows, so the player starts a fresh MediaSource). Tokens come from the shell's API; the
// relay's secret never reaches the page.
//
// Quality: by hand (one rung for every tile) or automatic (自动, the default: each tile on its
// own, from its buffer and the throughput it measures). A switch is made before the old rung is
// let go: the new rung's socket opens beside the old one, and the picture changes over only
// when the new rung's init segment and first fragment (a keyframe) are in hand, so the tile
// never waits on an empty buffer and the other tiles are not touched.
(function () {
  "use strict";
  // a late joiner's first fragment is not at time 0; past this much buffered ahead, jump to
  // the live edge (the picture is live, not a recording) [s]
  var MAX_LAG_S = 1.5;
  // where the player sits behind the newest frame it has [s]: a fragment comes every 0.2 s
  // (streaming/sources.py FRAGMENT_S), so less than that stalls between fragments
  // (a page may say otherwise in data-behind-s, for fragments cut more often: benchmarks)
  var JOIN_BEHIND_S = 0.3;
  // past JOIN_BEHIND_S + this ahead it plays a little faster until back within 0.1 s of
  // JOIN_BEHIND_S [s]
  var CATCH_UP_MARGIN_S = 0.5;
  var CATCH_UP_RATE = 1.1;
  // automatic quality: checked once a second per tile
  var ABR_CHECK_MS = 1000;
  var ABR_WINDOW_MS = 4000; // throughput and arrival rate over this much wall time
  // below this much media received per second of wall time, the link does not keep up
  var ABR_SLOW_ARRIVAL = 0.85;
  var ABR_BAD_CHECKS = 2; // consecutive bad checks before stepping down
  // a step up only after this long without a stall or a slow check [ms], doubled each time a
  // step up had to be taken back (up to ABR_HOLD_MAX_MS), so a link at its limit is not
  // probed every few seconds
  var ABR_HOLD_MS = 8000;
  var ABR_HOLD_MAX_MS = 120000;
  // a rung's bitrate (video + audio, streaming/sources.py LADDER) must fit in the measured
  // throughput with this headroom to be chosen when stepping down [kbit/s]
  var RUNG_KBPS = {"1080p": 4628, "720p": 2628, "360p": 896};
  var ABR_HEADROOM = 1.25;
  var ABR_SWITCH_TIMEOUT_MS = 6000;
  var KEEP_BEHIND_S = 20.0;
  var RECONNECT_MAX_MS = 10000;
  // application close codes of the relay (streaming/relay.py, streaming/tokens.py)
  var CLOSE_REFUSED = [4401, 4403];
  var CLOSE_NOT_FOUND = 4404;
  var FALLBACK_CODECS = 'video/mp4; codecs="avc1.4D401E, mp4a.40.2"';

  var root = document.getElementById("live-watch");
  if (!root) return;
  var text = root.dataset;
  var behind = parseFloat(text.behindS);
  if (behind >= 0.05 && behind <= 2) JOIN_BEHIND_S = behind;
  var quality = document.getElementById("live-quality");
  // the ladder offered, lowest first ("360p" < "720p" < "1080p")
  var RUNGS = Array.prototype.map.call(quality.options, function (o) { return o.value; })
    .filter(function (q) { return q !== "auto"; })
    .sort(function (a, b) { return parseInt(a, 10) - parseInt(b, 10); });
  var grid = document.getElementById("live-grid");
  var errorBox = document.getElementById("live-error");
  var cached = null; // {token, url, expiresMs}

  // one token (one audited join) serves every stream of the room while it is fresh
  var pending = null;
  function token() {
    if (cached && cached.expiresMs - Date.now() > 15000) return Promise.resolve(cached);
    if (pending) return pending;
    pending = fetch(text.tokenUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {Accept: "application/json", "X-CSRFToken": text.csrf},
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.detail || String(r.status));
        cached = {token: body.token, url: body.url, expiresMs: Date.parse(body.expires_at)};
        return cached;
      });
    }).finally(function () { pending = null; });
    return pending;
  }

  // "avc1.PPCCLL" from the init segment's avcC box, and mp4a when there is an audio track
  function codecsOf(init) {
    var bytes = new Uint8Array(init);
    var video = null, audio = false;
    for (var i = 4; i + 8 < bytes.length; i++) {
      if (bytes[i] === 0x61 && bytes[i + 1] === 0x76 && bytes[i + 2] === 0x63 && bytes[i + 3] === 0x43) {
        var hex = "";
        for (var k = 5; k <= 7; k++) hex += ("0" + bytes[i + k].toString(16)).slice(-2);
        video = "avc1." + hex.toUpperCase();
      }
      if (bytes[i] === 0x6d && bytes[i + 1] === 0x70 && bytes[i + 2] === 0x34 && bytes[i + 3] === 0x61) audio = true;
    }
    if (!video) return FALLBACK_CODECS;
    return 'video/mp4; codecs="' + video + (audio ? ', mp4a.40.2"' : '"');
  }

  function Player(tile) {
    this.tile = tile;
    this.stream = tile.dataset.stream;
    this.video = tile.querySelector("video");
    this.overlay = tile.querySelector('[data-role="overlay"]');
    this.status = tile.querySelector('[data-role="status"]');
    this.ws = null;
    this.media = null;
    this.buffer = null;
    this.queue = [];
    this.wantInit = true;
    this.retryMs = 500;
    this.generation = 0;
    this.restoredTimer = null;
    this.quality = this.tile.querySelector('[data-role="quality"]');
    // automatic quality: start on the lowest rung, step up once it plays well
    this.auto = quality.value === "auto";
    this.rung = this.auto ? RUNGS[0] : quality.value;
    this.pending = null; // a switch under way: {quality, ws, init}
    this.unavailable = {}; // rungs the relay does not run for this stream (4404)
    this.received = []; // [wall ms, bytes] of recent messages
    this.edges = []; // [wall ms, buffered end s] at each check
    this.stalls = 0;
    this.badChecks = 0;
    this.holdMs = ABR_HOLD_MS;
    this.healthySince = performance.now();
    this.steppedUpAt = -Infinity;
    var self = this;
    this.video.addEventListener("waiting", function () {
      if (self.tile.dataset.state === "playing") self.stalls += 1;
    });
  }

  Player.prototype.urlFor = function (pass, rung) {
    return pass.url + "/streams/" + encodeURIComponent(this.stream) + "/" +
      encodeURIComponent(rung) + "?token=" + encodeURIComponent(pass.token);
  };

  // say which rung is playing: "自动 · 720p" or, chosen by hand, "720p"
  Player.prototype.label = function () {
    this.tile.dataset.quality = this.rung;
    this.tile.dataset.auto = String(this.auto);
    this.quality.textContent = (text.textQualityPlaying || "") +
      (this.auto ? text.textAuto + " · " : "") + this.rung;
  };

  Player.prototype.show = function (state, message) {
    this.tile.dataset.state = state;
    this.overlay.hidden = !message;
    this.overlay.textContent = message || "";
  };

  Player.prototype.connect = function () {
    var self = this;
    var generation = ++this.generation;
    this.close();
    this.show("connecting", text.textConnecting);
    this.label();
    token().then(function (pass) {
      if (generation !== self.generation) return;
      var ws = new WebSocket(self.urlFor(pass, self.rung));
      ws.binaryType = "arraybuffer";
      self.ws = ws;
      self.wantInit = true;
      ws.onmessage = function (event) { self.onMessage(event.data); };
      ws.onclose = function (event) { if (self.ws === ws) self.onClose(event); };
    }).catch(function (err) {
      if (generation !== self.generation) return;
      errorBox.textContent = text.textTokenFailed + " " + err.message;
      self.show("refused", text.textRefused);
    });
  };

  Player.prototype.close = function () {
    this.cancelSwitch();
    if (this.ws) {
      var ws = this.ws;
      this.ws = null;
      ws.close();
    }
    this.resetMedia();
  };

  Player.prototype.resetMedia = function () {
    this.queue = [];
    this.buffer = null;
    if (this.media) {
      this.video.removeAttribute("src");
      this.video.load();
      URL.revokeObjectURL(this.objectUrl);
      this.media = null;
    }
  };

  // make before break: open the new rung beside the playing one; change over at its first
  // fragment (a keyframe), or give up quietly if it fails (4404: not run for this stream)
  Player.prototype.switchTo = function (rung) {
    if (this.pending || rung === this.rung) return;
    var self = this, generation = this.generation;
    var pending = {quality: rung, ws: null, init: null};
    this.pending = pending;
    // a rung that has not delivered a keyframe by then (a link too slow even to try it) is
    // given up, so the next check may choose again
    setTimeout(function () {
      if (self.pending === pending) self.cancelSwitch();
    }, ABR_SWITCH_TIMEOUT_MS);
    token().then(function (pass) {
      if (generation !== self.generation || self.pending !== pending) return;
      var ws = new WebSocket(self.urlFor(pass, rung));
      ws.binaryType = "arraybuffer";
      pending.ws = ws;
      ws.onmessage = function (event) {
        if (self.pending !== pending) return;
        if (typeof event.data === "string") {
          // the new rung's source is down: stay where we are
          self.cancelSwitch();
          return;
        }
        self.count(event.data.byteLength);
        if (!pending.init) { pending.init = event.data; return; }
        self.commitSwitch(pending, event.data);
      };
      ws.onclose = function (event) {
        if (self.pending !== pending) return;
        self.pending = null;
        if (event.code === CLOSE_NOT_FOUND) self.unavailable[rung] = true;
      };
    }).catch(function () { if (self.pending === pending) self.pending = null; });
  };

  Player.prototype.cancelSwitch = function () {
    var pending = this.pending;
    this.pending = null;
    if (pending && pending.ws) pending.ws.close();
  };

  Player.prototype.commitSwitch = function (pending, firstFragment) {
    var self = this, ws = pending.ws, old = this.ws;
    this.pending = null;
    this.ws = ws;
    if (old) old.close(); // its onclose sees self.ws !== old and does nothing
    ws.onmessage = function (event) { self.onMessage(event.data); };
    ws.onclose = function (event) { if (self.ws === ws) self.onClose(event); };
    this.rung = pending.quality;
    this.wantInit = false;
    this.start(pending.init);
    this.queue.push(firstFragment);
    this.edges = [];
    this.stalls = 0;
    this.badChecks = 0;
    this.healthySince = performance.now();
    this.label();
  };

  Player.prototype.count = function (bytes) {
    var now = performance.now();
    this.received.push([now, bytes]);
    while (this.received.length && now - this.received[0][0] > ABR_WINDOW_MS) this.received.shift();
  };

  // once a second, automatic quality only: step down when the buffer stalls or media arrives
  // slower than it plays; step up after a quiet spell
  Player.prototype.assess = function () {
    if (!this.auto || this.pending || this.tile.dataset.state !== "playing") return;
    var now = performance.now(), video = this.video, ranges = video.buffered;
    if (!ranges.length) return;
    this.edges.push([now, ranges.end(ranges.length - 1)]);
    while (this.edges.length && now - this.edges[0][0] > ABR_WINDOW_MS) this.edges.shift();
    var first = this.edges[0], last = this.edges[this.edges.length - 1];
    var wallS = (last[0] - first[0]) / 1000;
    // seconds of picture received per second: 1 when the link keeps up with the live source
    var arrival = wallS >= ABR_WINDOW_MS / 2000 ? (last[1] - first[1]) / wallS : 1;
    var bytes = 0;
    this.received.forEach(function (r) { bytes += r[1]; });
    var kbps = bytes * 8 / (ABR_WINDOW_MS / 1000) / 1000;
    this.tile.dataset.kbps = String(Math.round(kbps));
    var stalled = this.stalls > 0;
    this.stalls = 0;
    this.badChecks = stalled || arrival < ABR_SLOW_ARRIVAL ? this.badChecks + 1 : 0;
    var below = RUNGS.slice(0, RUNGS.indexOf(this.rung)).filter(this.isOffered, this);
    var above = RUNGS.slice(RUNGS.indexOf(this.rung) + 1).filter(this.isOffered, this);
    if (this.badChecks >= ABR_BAD_CHECKS) {
      this.healthySince = now;
      if (!below.length) return;
      // a step up that did not last: wait twice as long before the next one
      if (now - this.steppedUpAt < 2 * this.holdMs) {
        this.holdMs = Math.min(this.holdMs * 2, ABR_HOLD_MAX_MS);
      }
      // when starved the throughput measured is about what the link carries: the best rung
      // that fits it, else one rung down
      var fits = below.filter(function (q) { return RUNG_KBPS[q] * ABR_HEADROOM <= kbps; });
      this.switchTo(fits.length ? fits[fits.length - 1] : below[below.length - 1]);
    } else if (this.badChecks === 0 && above.length && now - this.healthySince >= this.holdMs) {
      this.steppedUpAt = now;
      this.healthySince = now; // a failed attempt (4404) waits a whole spell before the next
      this.switchTo(above[0]);
    }
  };

  Player.prototype.isOffered = function (rung) { return !this.unavailable[rung]; };

  // by hand: every tile on that rung now; automatic: each tile carries on from where it is
  Player.prototype.choose = function (value) {
    if (value === "auto") {
      this.auto = true;
      this.healthySince = performance.now();
      this.label();
      return;
    }
    this.auto = false;
    this.rung = value;
    this.connect();
  };

  Player.prototype.onMessage = function (data) {
    var self = this;
    if (typeof data !== "string") this.count(data.byteLength);
    if (typeof data === "string") {
      var signal = JSON.parse(data);
      if (signal.type === "signal_lost") {
        clearTimeout(this.restoredTimer);
        this.show("lost", text.textLost);
      } else if (signal.type === "signal_restored") {
        // a new encoder: its init segment comes next and its timestamps start again
        this.wantInit = true;
        this.show("restored", text.textRestored);
        this.restoredTimer = setTimeout(function () {
          if (self.tile.dataset.state === "restored") self.show("playing", "");
        }, 2000);
      }
      return;
    }
    if (this.wantInit) {
      this.wantInit = false;
      this.start(data);
      return;
    }
    this.queue.push(data);
    this.pump();
  };

  // a fresh MediaSource for an init segment: the first one, or a restarted source's
  Player.prototype.start = function (init) {
    var self = this;
    this.resetMedia();
    var type = codecsOf(init);
    if (!window.MediaSource || !MediaSource.isTypeSupported(type)) {
      this.show("unsupported", text.textUnsupported);
      return;
    }
    var media = new MediaSource();
    this.media = media;
    this.queue = [init];
    this.objectUrl = URL.createObjectURL(media);
    media.addEventListener("sourceopen", function () {
      if (self.media !== media) return;
      self.buffer = media.addSourceBuffer(type);
      self.buffer.mode = "segments";
      self.buffer.addEventListener("updateend", function () { self.onAppended(); });
      self.pump();
    });
    this.video.src = this.objectUrl;
  };

  Player.prototype.pump = function () {
    if (!this.buffer || this.buffer.updating || !this.queue.length) return;
    try {
      this.buffer.appendBuffer(this.queue.shift());
    } catch (err) {
      // QuotaExceeded or a closed source: start over from the next init
      this.connect();
    }
  };

  Player.prototype.onAppended = function () {
    var video = this.video, ranges = video.buffered;
    if (ranges.length) {
      var start = ranges.start(0), end = ranges.end(ranges.length - 1);
      var last = ranges.start(ranges.length - 1);
      // join at the live edge: a late joiner's first fragment is not at time 0; the relay
      // skipping a slow viewer to the next keyframe leaves a hole the player would wait at
      if (video.currentTime < start || end - video.currentTime > MAX_LAG_S ||
          ranges.length > 1 && video.currentTime < last &&
          ranges.end(ranges.length - 2) - video.currentTime < 0.1) {
        video.currentTime = Math.max(last, end - JOIN_BEHIND_S);
      }
      // stay near the live edge: a little faster while well behind, normal speed near it
      var ahead = end - video.currentTime;
      if (ahead > JOIN_BEHIND_S + CATCH_UP_MARGIN_S) video.playbackRate = CATCH_UP_RATE;
      else if (ahead < JOIN_BEHIND_S + 0.1) video.playbackRate = 1.0;
      if (video.paused) video.play().catch(function () {});
      if (this.tile.dataset.state === "connecting") this.show("playing", "");
      this.retryMs = 500;
      if (!this.buffer.updating && video.currentTime - start > KEEP_BEHIND_S * 1.5) {
        this.buffer.remove(start, video.currentTime - KEEP_BEHIND_S);
        return;
      }
    }
    this.pump();
  };

  Player.prototype.onClose = function (event) {
    var self = this;
    this.ws = null;
    if (CLOSE_REFUSED.indexOf(event.code) >= 0) {
      cached = null;
      // the shell took this viewer off the list, or ended the session: say which
      var why = event.reason === "access revoked" ? text.textRevoked
        : event.reason === "session ended" ? text.textEnded : text.textRefused;
      this.show("refused", why || text.textRefused);
      // the relay's own words (English) only where the page has none of its own
      this.status.textContent = why === text.textRefused ? (event.reason || "") : "";
      return;
    }
    if (event.code === CLOSE_NOT_FOUND) {
      // automatic: the relay does not run this rung for this stream; try the next one down
      this.unavailable[this.rung] = true;
      var offered = RUNGS.filter(this.isOffered, this);
      if (this.auto && offered.length) {
        this.rung = offered[0];
        this.connect();
        return;
      }
      this.show("unavailable", text.textUnavailable + " (" + this.stream + " " + this.rung + ")");
      this.quality.textContent = ""; // nothing is playing
      return;
    }
    this.show("reconnecting", text.textReconnecting);
    var wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    var generation = this.generation;
    setTimeout(function () { if (generation === self.generation) self.connect(); }, wait);
  };

  var players = Array.prototype.map.call(grid.querySelectorAll(".live-tile"), function (tile) {
    var player = new Player(tile);
    function toggle() {
      var large = !tile.classList.contains("large");
      grid.querySelectorAll(".live-tile").forEach(function (t) {
        t.classList.remove("large");
        t.setAttribute("aria-pressed", "false");
      });
      tile.classList.toggle("large", large);
      tile.setAttribute("aria-pressed", String(large));
      grid.classList.toggle("has-large", large);
    }
    tile.addEventListener("click", toggle);
    tile.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
    return player;
  });
  quality.addEventListener("change", function () {
    players.forEach(function (p) { p.choose(quality.value); });
  });
  setInterval(function () { players.forEach(function (p) { p.assess(); }); }, ABR_CHECK_MS);
  window.addEventListener("pagehide", function () {
    players.forEach(function (p) { p.generation++; p.close(); });
  });
  players.forEach(function (p) { p.connect(); });
})();
