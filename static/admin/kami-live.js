// The owner's live order feed: each line pushed on /ws/admin/orders goes on top of the table.
// Reconnects with a growing pause when the socket drops (a deploy, Redis restarting).
(function () {
  "use strict";
  var MAX_ROWS = 200;
  var table, state, retry = 1000;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function show(line) {
    var body = table.tBodies[0];
    var empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    var row = document.createElement("tr");
    row.className = "fresh status-" + line.status;
    row.setAttribute("data-order-no", line.order_no || "");
    cell(row, (line.at || "").replace("T", " ").slice(0, 19));
    var link = document.createElement("a");
    link.href = "/admin/orders/order/?q=" + encodeURIComponent(line.order_no || "");
    link.textContent = line.order_no || "";
    cell(row, "").appendChild(link);
    cell(row, line.product);
    cell(row, line.amount ? line.amount + " " + line.currency : "").className = "amount";
    cell(row, line.status);
    cell(row, line.email);
    cell(row, line.event === "failure" ? "failed: " + (line.error || "") : line.event);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function setState(name, text) {
    state.setAttribute("data-state", name);
    state.textContent = text;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + table.getAttribute("data-socket-path"));
    socket.onopen = function () { retry = 1000; setState("live", "Live: new orders and status changes appear as they happen."); };
    socket.onmessage = function (event) {
      var line;
      try { line = JSON.parse(event.data); } catch (e) { return; }
      if (line.type === "order.feed") show(line);
    };
    socket.onclose = function () {
      setState("offline", "Not connected; retrying…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    table = document.getElementById("kami-live");
    state = document.getElementById("kami-live-state");
    if (table && window.WebSocket) connect();
  });
})();
