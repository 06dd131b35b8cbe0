// A classic (non-module) script that starts the first page's requests while the modules are
// still loading, so that the first render does not wait for the whole import chain first:
// the session, the alarm list, and the data and modules of the view the address names.
// api.js takes these responses over (once); nothing else reads them.
(function () {
  var opts = { credentials: "same-origin", headers: { Accept: "application/json" } };
  var store = {};
  function early(path) {
    store[path] = fetch(path, opts);
  }
  function preload(module) {
    var link = document.createElement("link");
    link.rel = "modulepreload";
    link.href = "/static/js/views/" + module;
    document.head.appendChild(link);
  }
  early("/api/session");
  early("/api/alarms");
  var hash = location.hash || "";
  if (hash === "#/site") {
    early("/api/site");
    preload("site.js");
    preload("sitedata.js");
  }
  window.__ghPrefetch = store;
})();
