// A classic script, run before the modules load: it starts the session request and the first
// view's data at once, instead of after the module graph (api.js takes each response once).
(function () {
  var store = (window.__ghcPrefetch = {});
  function get(path) {
    store[path] = fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  }
  get("/console/api/session");
  var route = (location.hash.slice(2) || "fleet").split("/")[0];
  if (route === "fleet") get("/api/v1/fleet?limit=1000");
  if (route === "alarms") get("/api/v1/alarms?active=true&limit=500");
})();
