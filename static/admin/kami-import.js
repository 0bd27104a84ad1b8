// Kami admin key import: send the form with XMLHttpRequest so a big upload shows progress.
// Without this script the form posts normally and the page answers in HTML; with it the same
// view answers JSON (it sees X-Requested-With) and the report is shown in place.
// fetch() is not used on purpose: it cannot report upload progress, XMLHttpRequest can.
(function () {
  "use strict";

  var form = document.getElementById("kami-import-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;

  var statusBox = document.getElementById("kami-import-status");
  var bar = document.getElementById("kami-import-progress");
  var statusText = document.getElementById("kami-import-status-text");
  var result = document.getElementById("kami-import-result");
  var errorsBox = document.getElementById("kami-import-errors");
  var submit = form.querySelector("[type=submit]");

  function show(kind, lines) {
    // textContent only: messages may echo a file name, which must never become markup.
    var list = document.createElement("ul");
    list.className = "messagelist";
    lines.forEach(function (line) {
      var item = document.createElement("li");
      item.className = kind;
      item.textContent = line;
      list.appendChild(item);
    });
    result.replaceChildren(list);
  }

  function updateStock(stock) {
    if (!stock) return;
    Object.keys(stock).forEach(function (name) {
      var cell = document.querySelector('[data-stock="' + name + '"]');
      if (cell) cell.textContent = stock[name];
    });
  }

  function addRecentImport(batch) {
    var table = document.getElementById("kami-recent-imports");
    if (!table || !batch) return;
    var row = document.createElement("tr");
    [batch.id, batch.created_at, batch.source, batch.created_by || "—", batch.imported,
      batch.duplicates, batch.skipped].forEach(function (value) {
      var cell = document.createElement("td");
      cell.textContent = value;
      row.appendChild(cell);
    });
    table.tBodies[0].insertBefore(row, table.tBodies[0].firstChild);
    table.hidden = false;
    var empty = document.getElementById("kami-no-imports");
    if (empty) empty.hidden = true;
  }

  function finish() {
    statusBox.hidden = true;
    submit.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (submit.disabled) return; // one import at a time: a double click must not post twice

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action") || window.location.pathname);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");

    submit.disabled = true;
    result.replaceChildren();
    errorsBox.replaceChildren();
    statusBox.hidden = false;
    bar.max = 100;
    bar.value = 0;
    statusText.textContent = "Uploading… 0%";

    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      bar.max = e.total;
      bar.value = e.loaded;
      statusText.textContent = "Uploading… " + Math.floor((e.loaded / e.total) * 100) + "%";
    };
    xhr.upload.onload = function () {
      // Upload done, server still encrypting and inserting: an indeterminate bar says "busy".
      bar.removeAttribute("value");
      statusText.textContent = "Processing…";
    };

    xhr.onload = function () {
      finish();
      var data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch (e) {
        // An HTML answer: most likely the session expired and we got the login page.
        show("error", ["Unexpected answer from the server (status " + xhr.status +
          "). Reload the page to check the recent imports; importing again is safe, " +
          "duplicates are skipped."]);
        return;
      }
      if (data.ok) {
        show("success", [data.message]);
        updateStock(data.stock);
        addRecentImport(data.batch);
        form.reset(); // the keys are in: clear them so a second click cannot re-send them
      } else {
        show("error", ["Nothing was imported."].concat(data.errors || [data.message || "Error"]));
      }
    };
    xhr.onerror = function () {
      finish();
      show("error", ["The upload failed (network error). Reload the page to check the recent " +
        "imports; importing again is safe, duplicates are skipped."]);
    };

    xhr.send(new FormData(form));
  });
})();
