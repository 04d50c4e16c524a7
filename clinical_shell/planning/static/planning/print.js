// The plan summary's print button (no inline handlers under the CSP).
(function () {
  "use strict";
  var button = document.getElementById("print-plan");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
