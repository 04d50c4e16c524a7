// Live station and session pages: follow "stations" / "station.<id>" / "session.<id>" through
// OsteonLive (clinical_shell/realtime/static/realtime/live.js) and update the cells in place.
(function () {
  "use strict";
  var labels = JSON.parse(document.getElementById("station-labels").textContent);

  function text(el, value) { if (el) el.textContent = value; }

  function localTime(iso) {
    if (!iso) return labels.never;
    var d = new Date(iso);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  function showStation(event) {
    document.querySelectorAll('[data-station-id="' + event.id + '"]').forEach(function (row) {
      var presence = row.querySelector("[data-field=presence]");
      if (presence) {
        presence.textContent = labels.presence[event.presence] || event.presence;
        presence.className = "presence presence-" + event.presence;
        presence.dataset.presence = event.presence;
      }
      text(row.querySelector("[data-field=user]"), event.signed_in_user || "—");
      var session = row.querySelector("[data-field=session]");
      if (session) {
        session.textContent = "";
        if (event.current_session) {
          var a = document.createElement("a");
          a.href = labels.session_url.replace(/0\/$/, event.current_session.id + "/");
          a.textContent = "#" + event.current_session.id + " " + event.current_session.scenario;
          session.appendChild(a);
        } else {
          session.textContent = "—";
        }
      }
      text(row.querySelector("[data-field=last_contact]"),
        event.last_contact_local || localTime(event.last_contact_at));
    });
  }

  function showSession(event) {
    var box = document.getElementById("session-live");
    if (!box) return;
    if (event.kind === "telemetry") {
      if (!document.getElementById("live-metrics")) return;
      text(document.getElementById("live-tick"), String(event.tick));
      text(document.getElementById("live-force"), event.force_n.map(function (f) { return f.toFixed(2); }).join(", "));
      var table = document.getElementById("live-metrics");
      table.textContent = "";
      Object.keys(event.metrics).sort().forEach(function (name) {
        var tr = document.createElement("tr");
        var th = document.createElement("th"); th.textContent = labels.metrics[name] || name;
        var td = document.createElement("td"); td.textContent = Number(event.metrics[name]).toFixed(3);
        tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
      });
      box.dataset.state = event.state;
      return;
    }
    // a change of state or of the result: the page renders it best (verification reason, metrics)
    var resultKey = event.result ? event.result.id + ":" + event.result.verification : "";
    if (event.state !== box.dataset.sessionState || resultKey !== box.dataset.resultKey) {
      window.location.reload();
    }
  }

  // live events arrive at once when the bridge can reach this server (same process, or Redis);
  // a refresh every REFRESH_MS covers the rest, so a change shows within a second either way
  var REFRESH_MS = 1000;

  function refresh(url, apply) {
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) apply(data); })
        .catch(function () {})
        .then(function () { setTimeout(tick, REFRESH_MS); });
    }
    setTimeout(tick, REFRESH_MS);
  }

  document.querySelectorAll("[data-live-topic]").forEach(function (el) {
    var topic = el.dataset.liveTopic;
    if (topic.indexOf("session.") === 0) {
      OsteonLive.subscribe(topic, showSession);
      var id = topic.slice("session.".length);
      refresh(labels.session_state_url.replace(/0\/state\.json$/, id + "/state.json"), function (data) {
        if (data.metrics && data.metrics.metrics) showSession(Object.assign({ kind: "telemetry" }, data.metrics));
        showSession(data);
      });
    } else {
      OsteonLive.subscribe(topic, showStation);
      refresh(labels.states_url, function (data) { data.stations.forEach(showStation); });
    }
  });
})();
