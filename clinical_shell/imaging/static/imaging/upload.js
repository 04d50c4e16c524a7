// upload with a progress bar; without script the form posts and the server renders the report
(function () {
  const form = document.getElementById('upload-form');
  if (!form) return;
  const bar = document.getElementById('upload-progress');
  const status = document.getElementById('upload-status');
  const out = document.getElementById('upload-result');
  // words in the page's language and the studies link, from the form's data- attributes
  const labels = {stored: form.dataset.labelStored, refused: form.dataset.labelRefused, failed: form.dataset.labelFailed};
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open('POST', form.action);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', function (e) {
      if (e.lengthComputable) { bar.hidden = false; bar.value = Math.round(100 * e.loaded / e.total); status.textContent = bar.value + ' %'; }
    });
    xhr.addEventListener('load', function () {
      bar.value = 100;
      let report;
      try { report = JSON.parse(xhr.responseText); } catch (e) { status.textContent = labels.failed + ' (' + xhr.status + ')'; return; }
      if (xhr.status >= 400) { status.textContent = labels.failed + ': ' + (report.detail || report.message || xhr.status); return; }
      status.textContent = labels.stored + ' ' + report.stored.length + ' · ' + labels.refused + ' ' + report.refused.length;
      const list = document.createElement('ul');
      for (const r of report.refused) { const li = document.createElement('li'); li.className = 'error'; li.textContent = r.name + ': ' + r.reason; list.appendChild(li); }
      for (const s of report.studies) { const li = document.createElement('li'); li.textContent = (s.patient_id ? '✓ ' + s.patient_id : '? ' + s.unlinked_reason_label); if (s.patient_id) { const a = document.createElement('a'); a.href = form.dataset.studiesUrl + 'patients/' + s.patient_id + '/'; a.textContent = ' →'; li.appendChild(a); } list.appendChild(li); }
      out.replaceChildren(list);
    });
    xhr.addEventListener('error', function () { status.textContent = labels.failed; });
    xhr.send(new FormData(form));
  });
})();
