// Telestration: arrows, circles and freehand strokes over the pictures of a live session.
// Watch page (#live-watch): a canvas over each stream; with a tool chosen, a drag draws; the
// drawing goes to the shell's drawing socket (/ws/live/sessions/<id>/draw/, see
// clinical_shell/live/consumers.py) stamped with the stream's video.currentTime, and every
// viewer of the session draws what the socket sends. Coordinates are 0..1 of the picture.
// Recordings page (#live-recordings): the drawings made while a file was recorded are drawn
// over it from their time in the file until their author cleared them.
// Debug hook for tests: window.OsteonTelestration.annotations() / .state().
(function () {
  "use strict";
  var MAX_POINTS = 512;
  var MIN_STEP = 0.004; // a freehand point closer than this to the last one is dropped [0..1]

  // the rectangle the picture takes in a box of w x h (object-fit: contain)
  function pictureRect(video, w, h) {
    var vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return {x: 0, y: 0, w: w, h: h};
    var scale = Math.min(w / vw, h / vh);
    return {x: (w - vw * scale) / 2, y: (h - vh * scale) / 2, w: vw * scale, h: vh * scale};
  }

  function fit(canvas) {
    var ratio = window.devicePixelRatio || 1;
    var w = Math.round(canvas.clientWidth * ratio), h = Math.round(canvas.clientHeight * ratio);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return ratio;
  }

  function drawShape(ctx, a, rect, ratio) {
    var pts = a.points.map(function (p) { return [rect.x + p[0] * rect.w, rect.y + p[1] * rect.h]; });
    ctx.strokeStyle = a.color;
    ctx.lineWidth = 3 * ratio;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.shadowColor = "rgba(0,0,0,.6)";
    ctx.shadowBlur = 2 * ratio;
    ctx.beginPath();
    if (a.shape === "circle") {
      var r = Math.hypot(pts[1][0] - pts[0][0], pts[1][1] - pts[0][1]);
      ctx.arc(pts[0][0], pts[0][1], r, 0, 2 * Math.PI);
    } else {
      ctx.moveTo(pts[0][0], pts[0][1]);
      for (var i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
      if (a.shape === "arrow") {
        var tail = pts[0], head = pts[1];
        var angle = Math.atan2(head[1] - tail[1], head[0] - tail[0]);
        var len = 16 * ratio;
        ctx.moveTo(head[0], head[1]);
        ctx.lineTo(head[0] - len * Math.cos(angle - 0.45), head[1] - len * Math.sin(angle - 0.45));
        ctx.moveTo(head[0], head[1]);
        ctx.lineTo(head[0] - len * Math.cos(angle + 0.45), head[1] - len * Math.sin(angle + 0.45));
      }
    }
    ctx.stroke();
  }

  function paint(canvas, video, list) {
    var ratio = fit(canvas);
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    var rect = pictureRect(video, canvas.width, canvas.height);
    list.forEach(function (a) { drawShape(ctx, a, rect, ratio); });
    canvas.dataset.count = String(list.length);
  }

  // --- the watch page -----------------------------------------------------------------------
  function watchPage(root) {
    var text = root.dataset;
    var grid = document.getElementById("live-grid");
    var statusBox = document.getElementById("live-draw-status");
    var shown = {}; // id -> annotation
    var tool = null, color = null, socket = null, state = "connecting", delayMs = 500;
    var tiles = Array.prototype.slice.call(grid.querySelectorAll(".live-tile"));

    function repaint() {
      tiles.forEach(function (tile) {
        var list = Object.keys(shown).map(function (k) { return shown[k]; })
          .filter(function (a) { return a.stream === tile.dataset.stream; });
        paint(tile.querySelector("canvas"), tile.querySelector("video"), list);
      });
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(scheme + "//" + window.location.host + text.drawUrl);
      socket = ws;
      ws.onopen = function () { state = "open"; delayMs = 500; statusBox.textContent = ""; };
      ws.onmessage = function (message) {
        var frame = JSON.parse(message.data);
        if (frame.type === "snapshot") {
          shown = {};
          frame.annotations.forEach(function (a) { shown[a.id] = a; });
        } else if (frame.type === "drawn") {
          shown[frame.annotation.id] = frame.annotation;
        } else if (frame.type === "cleared") {
          frame.ids.forEach(function (id) { delete shown[id]; });
        } else if (frame.type === "error") {
          statusBox.textContent = text.textDrawError + " " + frame.message;
          return;
        }
        repaint();
      };
      ws.onclose = function (closed) {
        if (socket !== ws) return;
        socket = null;
        if (closed.code === 4401 || closed.code === 4403) {
          state = "refused";
          statusBox.textContent = text.textDrawRefused;
          choose(null);
          return;
        }
        state = "reconnecting";
        statusBox.textContent = text.textDrawReconnecting;
        setTimeout(connect, delayMs);
        delayMs = Math.min(delayMs * 2, 10000);
      };
    }

    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    }

    function choose(next) {
      tool = tool === next ? null : next;
      root.querySelectorAll("[data-tool]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
      });
      grid.classList.toggle("drawing", tool !== null);
    }
    root.querySelectorAll("[data-tool]").forEach(function (b) {
      b.addEventListener("click", function () { if (state !== "refused") choose(b.dataset.tool); });
    });
    var swatches = root.querySelectorAll(".live-color");
    swatches.forEach(function (b) {
      if (b.getAttribute("aria-checked") === "true") color = b.dataset.color;
      b.addEventListener("click", function () {
        color = b.dataset.color;
        swatches.forEach(function (o) { o.setAttribute("aria-checked", String(o === b)); });
      });
    });
    document.getElementById("live-draw-clear").addEventListener("click", function () {
      send({type: "clear"});
    });

    tiles.forEach(function (tile) {
      var canvas = tile.querySelector("canvas"), video = tile.querySelector("video");
      var stroke = null;
      function at(event) {
        var box = canvas.getBoundingClientRect();
        var rect = pictureRect(video, box.width, box.height);
        var x = (event.clientX - box.left - rect.x) / rect.w;
        var y = (event.clientY - box.top - rect.y) / rect.h;
        return [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
      }
      function preview() {
        var list = Object.keys(shown).map(function (k) { return shown[k]; })
          .filter(function (a) { return a.stream === tile.dataset.stream; });
        if (stroke && stroke.points.length >= 2) list = list.concat([stroke]);
        paint(canvas, video, list);
      }
      // a drawing tool swallows the click that would enlarge the tile
      canvas.addEventListener("click", function (e) { e.stopPropagation(); });
      canvas.addEventListener("pointerdown", function (e) {
        if (!tool) return;
        e.preventDefault();
        e.stopPropagation();
        canvas.setPointerCapture(e.pointerId);
        var p = at(e);
        stroke = {shape: tool, color: color, points: [p, p], mediaTime: video.currentTime || 0};
      });
      canvas.addEventListener("pointermove", function (e) {
        if (!stroke) return;
        var p = at(e), pts = stroke.points;
        if (stroke.shape === "freehand") {
          var last = pts[pts.length - 1];
          if (pts.length < MAX_POINTS && Math.hypot(p[0] - last[0], p[1] - last[1]) >= MIN_STEP) pts.push(p);
        } else {
          pts[1] = p;
        }
        preview();
      });
      canvas.addEventListener("pointerup", function (e) {
        if (!stroke) return;
        e.stopPropagation();
        var done = stroke;
        stroke = null;
        var pts = done.points;
        // a click without a drag draws nothing
        if (Math.hypot(pts[pts.length - 1][0] - pts[0][0], pts[pts.length - 1][1] - pts[0][1]) < 0.01 &&
            done.shape !== "freehand") { preview(); return; }
        if (done.shape === "freehand" && pts.length > 2) pts.splice(0, 1);
        send({
          type: "draw", stream: tile.dataset.stream, shape: done.shape, color: done.color,
          points: pts.map(function (p) { return [Math.round(p[0] * 1e4) / 1e4, Math.round(p[1] * 1e4) / 1e4]; }),
          media_time: Math.round(done.mediaTime * 1000) / 1000,
        });
        preview();
      });
    });
    window.addEventListener("resize", repaint);
    window.OsteonTelestration = {
      annotations: function () { return Object.keys(shown).map(function (k) { return shown[k]; }); },
      state: function () { return state; },
      send: send,
    };
    connect();
  }

  // --- the recordings page: replay over each file -------------------------------------------
  function recordingsPage(root) {
    var data = document.getElementById("live-replay-data");
    if (!data) return;
    var replay = JSON.parse(data.textContent);
    root.querySelectorAll(".live-recording").forEach(function (figure) {
      var list = replay[figure.dataset.recordingId] || [];
      var video = figure.querySelector("video"), canvas = figure.querySelector("canvas");
      if (!canvas) return;
      function visible() {
        var t = video.currentTime;
        return list.filter(function (a) {
          return a.at <= t && (a.shown_s === null || t < a.at + a.shown_s);
        });
      }
      var frame = null;
      function tick() {
        paint(canvas, video, visible());
        frame = video.paused ? null : window.requestAnimationFrame(tick);
      }
      ["timeupdate", "seeked", "loadedmetadata"].forEach(function (name) {
        video.addEventListener(name, function () { paint(canvas, video, visible()); });
      });
      video.addEventListener("play", function () { if (frame === null) tick(); });
    });
  }

  var watch = document.getElementById("live-watch");
  if (watch && watch.dataset.drawUrl) watchPage(watch);
  var recordings = document.getElementById("live-recordings");
  if (recordings) recordingsPage(recordings);
})();
