// Keeps the header's unread badge current: the server pushes the count on the person's topic.
(function () {
  "use strict";
  function start() {
    var badge = document.getElementById("notification-badge");
    if (!badge || !window.OsteonLive) { return; }
    var topic = "user." + badge.dataset.userId;
    window.OsteonLive.subscribe(topic, function (event) {
      if (!event || event.kind !== "notification" || typeof event.unread !== "number") { return; }
      badge.textContent = event.unread > 0 ? String(event.unread) : "";
      badge.hidden = event.unread === 0;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
