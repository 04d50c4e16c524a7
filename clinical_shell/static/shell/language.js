// the language switch in base.html's header: a choice submits its form at once (without
// script, the form's own button does); a static file because the CSP allows no inline script
document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
