// Kami storefront behaviour: copy buttons, and the order page updating itself until the keys
// land (pushed over a WebSocket; polling when the socket is not available).
// Every page's script is a file like this one: the Content-Security-Policy allows no inline
// script, so data reaches scripts through data-* attributes, never through markup.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    // The label stays the page's language: "Copied" comes translated from <html data-copied-label>.
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    var copied = document.documentElement.getAttribute("data-copied-label") || "Copied";
    var done = function () { button.textContent = copied; setTimeout(function () { button.textContent = label; }, 1500); };
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

  // The waiting page's hold: "12:34 left", counted down from data-countdown-until (ISO 8601);
  // the server's plain time stays when scripts are off. Found afresh on each tick, so a
  // panel swapped in by the live updates keeps counting.
  function tickCountdowns() {
    var clocks = document.querySelectorAll("[data-countdown-until]");
    for (var i = 0; i < clocks.length; i++) {
      var clock = clocks[i];
      var until = Date.parse(clock.getAttribute("data-countdown-until"));
      if (isNaN(until)) continue;
      var left = Math.max(0, Math.floor((until - Date.now()) / 1000));
      if (left === 0) {
        clock.textContent = clock.getAttribute("data-expired-text") || "0:00";
        continue;
      }
      var minutes = Math.floor(left / 60), seconds = left % 60;
      clock.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " " + (clock.getAttribute("data-left-text") || "");
      clock.setAttribute("data-seconds-left", String(left));
    }
  }
  if (document.querySelector("[data-countdown-until]") || document.getElementById("order-panel")) {
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
  }

  // The product page: the total for the chosen quantity, from the unit price in minor units.
  var total = document.querySelector("output.order-total");
  var quantity = total && total.form ? total.form.querySelector("input[name=quantity]") : null;
  if (!quantity && total) quantity = document.querySelector("#checkout input[name=quantity]");
  if (total && quantity) {
    var showTotal = function () {
      var count = parseInt(quantity.value, 10);
      if (!(count >= 1)) count = 1;
      var digits = parseInt(total.getAttribute("data-exponent"), 10) || 0;
      var minor = parseInt(total.getAttribute("data-unit-minor"), 10) * count;
      var whole = Math.floor(minor / Math.pow(10, digits)), part = String(minor % Math.pow(10, digits));
      while (part.length < digits) part = "0" + part;
      var grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
      total.textContent = (total.getAttribute("data-prefix") || "") + grouped + (digits ? "." + part : "") + (total.getAttribute("data-suffix") || "");
    };
    quantity.addEventListener("input", showTotal);
    showTotal();
  }

  // The order page: pushed over its WebSocket (/ws/orders/{order_no}, contract §7) while the
  // order waits; each status change re-reads the panel once over HTTP (keys never travel on
  // the socket). Polling only when the socket cannot connect or drops.
  var panel = document.getElementById("order-panel");
  if (!panel) return;
  var WAITING = { pending: true, paid: true, backordered: true, on_hold: true };
  var delay = 700, started = Date.now(), polling = false;

  function refresh() {
    return fetch(panel.getAttribute("data-panel-url"), { credentials: "same-origin", cache: "no-store" })
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
      .catch(function () { return panel.getAttribute("data-status"); });
  }

  function poll() {
    refresh().then(function (status) {
      if (!WAITING[status]) return;
      // Fast while a payment is likely in flight, gentler for long waits (backorders).
      var elapsed = Date.now() - started;
      delay = elapsed < 120000 ? 700 : Math.min(delay * 1.5, 15000);
      setTimeout(poll, delay);
    });
  }

  function startPolling() {
    if (polling || !WAITING[panel.getAttribute("data-status")]) return;
    polling = true;
    panel.setAttribute("data-live", "polling");
    setTimeout(poll, delay);
  }

  function subscribe() {
    var path = panel.getAttribute("data-ws-path");
    if (!path || !window.WebSocket) return startPolling();
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + window.location.host + path);
    } catch (e) {
      return startPolling();
    }
    // A message lost on its way (its publish failed while this socket stayed up) would leave
    // the page waiting: a slow safety read, once a minute, bounds that wait.
    var safety = null;
    socket.onopen = function () {
      panel.setAttribute("data-live", "socket");
      safety = setInterval(function () {
        refresh().then(function (status) { if (!WAITING[status]) socket.close(1000); });
      }, 60000);
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type !== "order.status" || message.status === panel.getAttribute("data-status")) return;
      refresh().then(function (status) {
        if (!WAITING[status]) socket.close(1000);
      });
    };
    // Refused, unreachable or dropped: polling takes over (onclose follows every onerror).
    // (startPolling does nothing once the order stopped waiting.)
    socket.onclose = function () {
      if (safety) clearInterval(safety);
      startPolling();
    };
  }

  if (WAITING[panel.getAttribute("data-status")]) subscribe();
})();
