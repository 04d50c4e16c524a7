// Search-as-you-type for code boxes (data-code-system="icd10|icd9cm3|aoota"): the shell's code
// tables are searched by code, Chinese name or pinyin initials (GET /api/v1/.../codes); picking a
// match fills the code and, when the box names one (data-description) and it is empty, the
// description. The server checks the code again on submit; without this script the box is a
// plain text field and a code outside the table is refused with its reason.
(function () {
  "use strict";
  var DELAY_MS = 180;

  function attach(input, url) {
    var system = input.dataset.codeSystem;
    var list = document.createElement("ul");
    list.className = "code-suggestions";
    list.id = input.id + "-suggestions";
    list.hidden = true;
    list.setAttribute("role", "listbox");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-autocomplete", "list");
    input.parentNode.insertBefore(list, input.nextSibling);
    var timer = null;
    var pending = 0;

    function description() {
      var name = input.dataset.description;
      if (!name || !input.form) return null;
      var prefix = input.name.indexOf("-") > 0 ? input.name.split("-")[0] + "-" : "";
      return input.form.elements.namedItem(prefix + name);
    }

    function close() {
      list.hidden = true;
      list.textContent = "";
    }

    function pick(entry) {
      input.value = entry.code;
      var box = description();
      // the record keeps the Chinese name (the page may be in English)
      if (box && !box.value.trim()) box.value = entry.name_zh;
      close();
      input.focus();
    }

    function show(entries) {
      list.textContent = "";
      if (!entries.length) {
        var empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = list.dataset.empty || input.dataset.emptyText || "—";
        list.appendChild(empty);
      }
      entries.forEach(function (entry) {
        var item = document.createElement("li");
        item.setAttribute("role", "option");
        var button = document.createElement("button");
        button.type = "button";
        var code = document.createElement("code");
        code.textContent = entry.code;
        button.appendChild(code);
        button.appendChild(document.createTextNode(" " + entry.name));
        button.addEventListener("click", function () { pick(entry); });
        button.addEventListener("keydown", function (event) {
          var target = null;
          if (event.key === "ArrowDown") target = item.nextSibling;
          if (event.key === "ArrowUp") target = item.previousSibling;
          if (event.key === "Escape") { close(); input.focus(); event.preventDefault(); return; }
          if (target && target.firstChild) { target.firstChild.focus(); event.preventDefault(); }
          else if (event.key === "ArrowUp") { input.focus(); event.preventDefault(); }
        });
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = false;
    }

    function search() {
      var q = input.value.trim();
      if (!q) { close(); return; }
      var mine = ++pending;
      var params = new URLSearchParams({system: system, q: q, limit: "12", selectable: "true"});
      fetch(url + "?" + params.toString(), {credentials: "same-origin",
          headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (entries) { if (mine === pending) show(entries); })
        .catch(function () { if (mine === pending) close(); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && !list.hidden && list.firstChild && list.firstChild.firstChild) {
        list.firstChild.firstChild.focus();
        event.preventDefault();
      }
      if (event.key === "Escape") close();
    });
    document.addEventListener("click", function (event) {
      if (event.target !== input && !list.contains(event.target)) close();
    });
  }

  function ready() {
    var config = document.getElementById("code-search");
    if (!config) return;
    var url = config.dataset.url;
    var empty = config.dataset.empty;
    document.querySelectorAll("input[data-code-system]").forEach(function (input) {
      input.dataset.emptyText = empty;
      attach(input, url);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
