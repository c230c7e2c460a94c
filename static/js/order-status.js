// The order page follows its order without reloading: it polls the status until the certificate is
// ready (or the order ends), and updates the progress steps, the live status line and the certificate
// links in place. Actions that only make sense in the old state (pay, cancel) are hidden when it moves on.
(function () {
  "use strict";
  var box = document.getElementById("order-progress");
  if (!box) { return; }
  var steps = ["pending_payment", "paid", "retiring", "completed"];
  var final = ["completed", "cancelled", "expired", "refunded"];
  var labels = JSON.parse(box.getAttribute("data-labels") || "{}");
  var status = box.getAttribute("data-status");
  var url = box.getAttribute("data-status-url");
  var delay = 1500;

  function text(tag, content, className) {
    var node = document.createElement(tag);
    node.textContent = content;
    if (className) { node.className = className; }
    return node;
  }

  function link(href, content) {
    var a = text("a", content);
    a.href = href;
    return a;
  }

  function show(data) {
    var index = steps.indexOf(data.status);
    var items = box.querySelectorAll("[data-step]");
    for (var i = 0; i < items.length; i++) {
      items[i].className = (index >= 0 && i <= index) ? "done" : "";
    }
    if (data.status !== status) {
      status = data.status;
      var line = document.getElementById("order-status-text");
      line.textContent = "";
      line.appendChild(document.createTextNode(box.getAttribute("data-status-label") + " "));
      line.appendChild(text("span", labels[status] || status, "status status-" + status));
      var stale = document.querySelectorAll("[data-while-pending]");
      for (var j = 0; j < stale.length; j++) {
        if (stale[j].getAttribute("data-while-pending").split(" ").indexOf(status) < 0) { stale[j].hidden = true; }
      }
    }
    var holder = document.getElementById("certificate-link");
    if (data.certificate_number && holder && !holder.querySelector("a")) {
      holder.appendChild(document.createTextNode(box.getAttribute("data-ready-text") + " "));
      holder.appendChild(link(data.verify_url, data.certificate_number));
      holder.appendChild(document.createTextNode(" · "));
      holder.appendChild(link(data.pdf_url, box.getAttribute("data-download-text")));
    }
  }

  function poll() {
    if (final.indexOf(status) >= 0 && document.querySelector("#certificate-link a")) { return; }
    if (final.indexOf(status) >= 0 && status !== "completed") { return; }
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () {})
      .then(function () { delay = Math.min(delay * 1.3, 10000); window.setTimeout(poll, delay); });
  }
  window.setTimeout(poll, delay);
}());
