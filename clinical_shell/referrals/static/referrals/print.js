// The letter's print button (no inline handlers under the CSP).
(function () {
  "use strict";
  var button = document.getElementById("print-letter");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
