// The element form: the implant list offers only the implants of the chosen kind (the server
// checks it again); the "none" choice stays for the kinds that may go without one.
(function () {
  "use strict";
  var kind = document.getElementById("id_kind");
  var implant = document.getElementById("id_implant_id");
  if (!kind || !implant) return;
  function filter() {
    var wanted = kind.options[kind.selectedIndex].text;
    var groups = implant.getElementsByTagName("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var match = groups[i].label === wanted;
      groups[i].hidden = !match;
      groups[i].disabled = !match;
      if (!match && implant.selectedOptions.length && implant.selectedOptions[0].parentNode === groups[i]) {
        implant.value = "";
      }
    }
  }
  kind.addEventListener("change", filter);
  filter();
})();
