// The order page follows its order without reloading: it polls the status until the certificate is
// ready (or the order ends), updating the progress steps and the live region.
(function () {
  "use strict";
  var box = document.getElementById("order-progress");
  if (!box) { return; }
  var order = ["pending_payment", "paid", "retiring", "completed"];
  var final = ["completed", "cancelled", "expired", "refunded"];
  var status = box.getAttribute("data-status");
  var url = box.getAttribute("data-status-url");
  var delay = 1500;

  function show(data) {
    var index = order.indexOf(data.status);
    var steps = box.querySelectorAll("[data-step]");
    for (var i = 0; i < steps.length; i++) {
      steps[i].className = (index >= 0 && i <= index) ? "done" : "";
    }
    if (data.status !== status) {
      status = data.status;
      window.location.reload();  // the page shows the new state with its actions
    }
  }

  function poll() {
    if (final.indexOf(status) >= 0) { return; }
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () {})
      .then(function () { delay = Math.min(delay * 1.3, 10000); window.setTimeout(poll, delay); });
  }
  window.setTimeout(poll, delay);
}());
