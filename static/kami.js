// Kami storefront behaviour: copy buttons, and the order page refreshing itself until the
// keys land (polling now; a push channel can replace it without changing the markup).
// Every page's script is a file like this one: the Content-Security-Policy allows no inline
// script, so data reaches scripts through data-* attributes, never through markup.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* select-all on the key still works */ }
      area.remove();
    }
  });

  // Read-only fields meant to be copied (the promoter's link) select themselves on focus; a
  // listener here, not an onfocus attribute, because the CSP allows no inline script.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field.matches && field.matches("input[data-select-on-focus]")) field.select();
  });

  // Order numbers are upper case (K + date + base32); accept one typed in lower case.
  document.addEventListener("submit", function (event) {
    var field = event.target.querySelector && event.target.querySelector("input[name=order_no]");
    if (field) field.value = field.value.trim().toUpperCase();
  });

  var panel = document.getElementById("order-panel");
  if (!panel) return;
  var WAITING = { pending: true, paid: true, backordered: true, on_hold: true };
  var delay = 700, started = Date.now();
  function poll() {
    fetch(panel.getAttribute("data-panel-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        var status = response.headers.get("X-Order-Status");
        return response.text().then(function (html) {
          if (status !== panel.getAttribute("data-status")) {
            panel.innerHTML = html;
            panel.setAttribute("data-status", status);
          }
          return status;
        });
      })
      .catch(function () { return panel.getAttribute("data-status"); })
      .then(function (status) {
        if (!WAITING[status]) return;
        // Fast while a payment is likely in flight, gentler for long waits (backorders).
        var elapsed = Date.now() - started;
        delay = elapsed < 120000 ? 700 : Math.min(delay * 1.5, 15000);
        setTimeout(poll, delay);
      });
  }
  if (WAITING[panel.getAttribute("data-status")]) setTimeout(poll, delay);
})();
