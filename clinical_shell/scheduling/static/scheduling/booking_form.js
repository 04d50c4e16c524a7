// The booking form asks the shell, as it is filled in, whether the booking would be allowed,
// and shows the exact refusal at once (the server decides again on submit).
(function () {
  "use strict";
  function ready() {
    var form = document.getElementById("booking-form");
    var box = document.getElementById("live-check");
    if (!form || !box) return;
    var reason = document.getElementById("id_override_reason");
    var emergency = document.getElementById("id_emergency_override");
    function showReason() {
      if (!reason || !emergency) return;
      var row = reason.closest("div");
      var label = form.querySelector("label[for=id_override_reason]");
      var show = emergency.checked || reason.value.trim() !== "";
      if (row) row.hidden = !show;
      if (label) label.hidden = !show;
    }
    function value(name) {
      var field = form.elements.namedItem(name);
      return field ? field.value : "";
    }
    var pending = 0;
    function check() {
      var params = new URLSearchParams({
        surgeon_id: value("surgeon"),
        institution_id: value("institution"),
        grade: value("grade"),
        technique_code: value("technique_code"),
        on: value("scheduled_on"),
      });
      if (!params.get("surgeon_id") || !params.get("institution_id") || !params.get("on")) {
        box.textContent = "";
        return;
      }
      var mine = ++pending;
      fetch(box.dataset.url + "?" + params.toString(), {credentials: "same-origin",
          headers: {Accept: "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (mine !== pending) return;
          // the server's refusal of the submitted form already says the same: say it once
          var shown = document.getElementById("booking-refusal");
          if (shown && shown.dataset.code === body.code) {
            box.textContent = "";
            return;
          }
          box.className = body.ok ? "muted live-ok" : "banner-error live-refused";
          box.dataset.code = body.code || "";
          box.textContent = body.reason || body.detail || "";
        })
        .catch(function () { if (mine === pending) box.textContent = ""; });
    }
    ["surgeon", "institution", "grade", "technique_code", "scheduled_on"].forEach(function (n) {
      var field = form.elements.namedItem(n);
      if (field) field.addEventListener("change", check);
    });
    if (emergency) emergency.addEventListener("change", showReason);
    showReason();
    check();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
