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
      text(row.querySelector("[data-field=last_contact]"), localTime(event.last_contact_at));
    });
  }

  function showSession(event) {
    var box = document.getElementById("session-live");
    if (!box) return;
    if (event.kind === "telemetry") {
      text(document.getElementById("live-tick"), String(event.tick));
      text(document.getElementById("live-force"), event.force_n.map(function (f) { return f.toFixed(2); }).join(", "));
      var table = document.getElementById("live-metrics");
      table.textContent = "";
      Object.keys(event.metrics).sort().forEach(function (name) {
        var tr = document.createElement("tr");
        var th = document.createElement("th"); th.textContent = name;
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

  document.querySelectorAll("[data-live-topic]").forEach(function (el) {
    var topic = el.dataset.liveTopic;
    var handler = topic.indexOf("session.") === 0 ? showSession : showStation;
    OsteonLive.subscribe(topic, handler);
  });
})();
