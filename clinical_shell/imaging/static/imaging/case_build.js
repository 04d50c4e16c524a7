// the case build page (imaging/case_build.html): live progress, polling as the fallback
(function () {
  const root = document.getElementById("case-build");
  const q = (role) => root.querySelector(`[data-role="${role}"]`);
  const finished = (status) => status === "done" || status === "failed" || status === "cancelled";
  if (!root) return;
  // status words in the page's language, from data-label-<status> attributes
  const labels = {
    queued: root.dataset.labelQueued, running: root.dataset.labelRunning,
    done: root.dataset.labelDone, failed: root.dataset.labelFailed,
    cancelled: root.dataset.labelCancelled,
  };
  const steps = JSON.parse(document.getElementById("step-labels").textContent);
  // the same fields arrive from the live topic (a job event) and from the build's API (polling)
  function show(job) {
    root.dataset.status = job.status;
    const pct = Math.round(job.progress * 100);
    const status = labels[job.status] || job.status;
    const step = steps[job.step] || job.step;
    q("status").textContent = status;
    q("step").textContent = step === status ? "" : step;
    q("progress").value = pct;
    q("percent").textContent = pct + "%";
    q("line").hidden = !job.queue_position;
    if (job.queue_position) q("position").textContent = job.queue_position;
    if (job.attempts > 1) { q("attempts").hidden = false; q("attempt").textContent = job.attempts; }
    if (q("cancel")) q("cancel").hidden = finished(job.status) || job.cancel_requested;
    q("error").hidden = job.status !== "failed";
    if (job.status === "failed") q("error-text").textContent = job.error;
    q("cancelled").hidden = job.status !== "cancelled";
    // offered only to those who may change the record (the server decides again on submit)
    if (q("retry")) q("retry").hidden = !(job.status === "failed" || job.status === "cancelled");
  }
  async function refresh() {
    const response = await fetch(root.dataset.statusUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) return false;
    const build = await response.json();
    show(build);
    return finished(build.status);
  }
  // polling is the fallback: a worker in another process reaches the websocket only through a
  // shared channel layer (Redis); without one, the page still moves every two seconds.
  // Once finished, the page reloads: the server shows the case or the error in full.
  async function poll() {
    try { if (await refresh()) { window.location.reload(); return; } } catch (e) { /* network hiccup: try again */ }
    setTimeout(poll, 2000);
  }
  if (finished(root.dataset.status)) return;
  OsteonLive.subscribe(root.dataset.topic, function (job) {
    show(job);
    if (finished(job.status)) window.location.reload();
  });
  poll();
})();
