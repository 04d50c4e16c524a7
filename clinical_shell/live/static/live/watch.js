// The live watch page: each stream of the session plays from the relay through Media Source
// Extensions. The relay sends, per WebSocket, the init segment, then fragmented-MP4 fragments
// (first one on a keyframe), and JSON text signals: signal_lost (the source stopped: say so over
// the picture rather than leave it frozen) and signal_restored (a new ffmpeg: its init segment
// follows, so the player starts a fresh MediaSource). Tokens come from the shell's API; the
// relay's secret never reaches the page.
(function () {
  "use strict";
  // a late joiner's first fragment is not at time 0; past this much buffered ahead, jump to
  // the live edge (the picture is live, not a recording) [s]
  var MAX_LAG_S = 3.0;
  var KEEP_BEHIND_S = 20.0;
  var RECONNECT_MAX_MS = 10000;
  // application close codes of the relay (streaming/relay.py, streaming/tokens.py)
  var CLOSE_REFUSED = [4401, 4403];
  var CLOSE_NOT_FOUND = 4404;
  var FALLBACK_CODECS = 'video/mp4; codecs="avc1.4D401E, mp4a.40.2"';

  var root = document.getElementById("live-watch");
  if (!root) return;
  var text = root.dataset;
  var quality = document.getElementById("live-quality");
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
  }

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
    token().then(function (pass) {
      if (generation !== self.generation) return;
      var url = pass.url + "/streams/" + encodeURIComponent(self.stream) + "/" +
        encodeURIComponent(quality.value) + "?token=" + encodeURIComponent(pass.token);
      var ws = new WebSocket(url);
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

  Player.prototype.onMessage = function (data) {
    var self = this;
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
      // join at the live edge: a late joiner's first fragment is not at time 0
      if (video.currentTime < start || end - video.currentTime > MAX_LAG_S) {
        video.currentTime = Math.max(start, end - 0.5);
      }
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
      this.show("unavailable", text.textUnavailable + " (" + this.stream + " " + quality.value + ")");
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
    players.forEach(function (p) { p.connect(); });
  });
  window.addEventListener("pagehide", function () {
    players.forEach(function (p) { p.generation++; p.close(); });
  });
  players.forEach(function (p) { p.connect(); });
})();
