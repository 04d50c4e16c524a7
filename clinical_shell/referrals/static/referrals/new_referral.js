// The new-referral form shows what fits the direction: the handover fields for a down-referral,
// the outside hospital for a transfer out, and the criteria of that direction (out uses up's).
(function () {
  "use strict";
  var direction = document.getElementById("r-direction");
  if (!direction) return;
  function show() {
    var d = direction.value;
    document.querySelectorAll(".handover").forEach(function (el) { el.hidden = d !== "down"; });
    document.querySelectorAll(".out-of-region").forEach(function (el) { el.hidden = d !== "out"; });
    document.querySelectorAll(".in-network").forEach(function (el) { el.hidden = d === "out"; });
    var wanted = d === "out" ? "up" : d;
    document.querySelectorAll(".criterion").forEach(function (el) {
      el.hidden = el.dataset.direction !== wanted;
      if (el.hidden) el.querySelector("input").checked = false;
    });
  }
  direction.addEventListener("change", show);
  show();
})();
