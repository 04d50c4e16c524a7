// Emergency pre-notification: the receiving team's pages hear "referrals.<institution id>" and
// show a banner at once, linking to the referral (no patient details travel on the topic).
(function () {
  "use strict";
  var box = document.getElementById("emergency-alerts");
  if (!box || !window.OsteonLive) return;
  var ids = (box.dataset.institutions || "").split(",").filter(function (s) { return /^\d+$/.test(s); });
  ids.forEach(function (id) {
    window.OsteonLive.subscribe("referrals." + id, function (event) {
      if (!event || event.kind !== "emergency_referral") return;
      var note = document.createElement("div");
      note.className = "emergency-alert";
      note.setAttribute("role", "alert");
      note.textContent = box.dataset.text + " ";
      var link = document.createElement("a");
      link.href = "/referrals/" + Number(event.referral) + "/";
      link.textContent = box.dataset.open + " #" + Number(event.referral);
      note.appendChild(link);
      box.prepend(note);
    });
  });
})();
