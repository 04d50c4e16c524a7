// The replay page: follows the video's making (reloads when it is ready), draws the force over
// time under the video, and seeks the video to an event (or to where the force chart is clicked).
(function () {
  "use strict";
  function follow(box) {
    var state = box.dataset.state;
    if (state !== "queued" && state !== "rendering") return;
    var bar = document.getElementById("replay-progress");
    var step = document.getElementById("replay-step");
    var timer = setInterval(function () {
      fetch(box.dataset.stateUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (bar) bar.value = Math.round((s.progress || 0) * 100);
          if (step && s.step) step.textContent = s.step;
          if (s.state === "ready" || s.state === "failed") {
            clearInterval(timer);
            window.location.reload();
          }
        })
        .catch(function () { /* the next tick tries again */ });
    }, 1500);
  }

  function drawForce(canvas, video, timeline) {
    var ctx = canvas.getContext("2d");
    var forces = timeline.force_n || [];
    var fps = timeline.fps || 25;
    var limit = timeline.force_limit_n || 0;
    var top = Math.max(limit * 1.2, Math.max.apply(null, forces.concat([1])));
    function draw() {
      var w = canvas.clientWidth, h = canvas.clientHeight;
      canvas.width = w; canvas.height = h;
      ctx.clearRect(0, 0, w, h);
      ctx.fillStyle = "#f5f7fa"; ctx.fillRect(0, 0, w, h);
      var duration = forces.length / fps || 1;
      if (limit > 0) {
        var y = h - (limit / top) * h;
        ctx.strokeStyle = "#b42318"; ctx.setLineDash([4, 4]);
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke(); ctx.setLineDash([]);
      }
      ctx.strokeStyle = "#0b5c7a"; ctx.lineWidth = 1.5; ctx.beginPath();
      forces.forEach(function (f, i) {
        var x = (i / fps) / duration * w, yy = h - (f / top) * h;
        if (i === 0) ctx.moveTo(x, yy); else ctx.lineTo(x, yy);
      });
      ctx.stroke();
      (timeline.events || []).forEach(function (e) {
        var x = e.t_s / duration * w;
        ctx.fillStyle = e.kind === "force" ? "#0b5c7a" : e.kind === "plunge" ? "#9a6700" : "#b42318";
        ctx.fillRect(x - 1, 0, 3, h);
      });
      var now = video.currentTime / duration * w;
      ctx.fillStyle = "#1d2733"; ctx.fillRect(now - 1, 0, 2, h);
    }
    canvas.addEventListener("click", function (ev) {
      var rect = canvas.getBoundingClientRect();
      var duration = forces.length / fps || 0;
      video.currentTime = (ev.clientX - rect.left) / rect.width * duration;
    });
    video.addEventListener("timeupdate", draw);
    video.addEventListener("seeked", draw);
    window.addEventListener("resize", draw);
    draw();
  }

  function ready() {
    var box = document.getElementById("replay");
    if (box) follow(box);
    var video = document.getElementById("replay-video");
    if (!video) return;
    document.querySelectorAll("button.seek").forEach(function (button) {
      button.addEventListener("click", function () {
        video.currentTime = parseFloat(button.dataset.t);
        video.pause();
      });
    });
    var canvas = document.getElementById("replay-force");
    if (canvas && video.dataset.timelineUrl) {
      fetch(video.dataset.timelineUrl, {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (timeline) { drawForce(canvas, video, timeline); });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
