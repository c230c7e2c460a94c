// Card payment with Stripe.js: the card goes from the browser to the payment processor as a
// one-time token; the server attaches it to the order's PaymentIntent and confirms. Only calls that
// both Stripe.js v3 and the local emulator's script implement are used: elements().create("card"),
// createToken(card) and confirmCardPayment(clientSecret) for 3-D Secure (after which the server is told,
// so it settles the payment without waiting for the webhook).
(function () {
  "use strict";
  var form = document.querySelector("[data-pay-form]");
  if (!form) { return; }
  var data = form.dataset;
  var errors = document.getElementById("card-errors");
  var statusLine = document.getElementById("card-status");
  var button = document.getElementById("card-pay-button");
  var busy = false;

  function showError(message) {
    statusLine.textContent = "";
    errors.textContent = message;
  }
  function showStatus(message) {
    errors.textContent = "";
    statusLine.textContent = message;
  }
  function setBusy(value) {
    busy = value;
    button.disabled = value;
    form.setAttribute("aria-busy", value ? "true" : "false");
  }

  if (typeof window.Stripe !== "function") {
    showError(data.msgUnavailable);
    return;
  }
  var stripe = window.Stripe(data.publishableKey, { locale: data.locale });
  var card = stripe.elements({ locale: data.locale }).create("card", { hidePostalCode: true });
  card.mount("#card-element");
  var plainFields = emulatorFields();
  button.disabled = false;

  // The emulator's card element is five plain inputs named only by their placeholder ("exp_month",
  // "postal_code" …, cut by their size), and it takes the number and the year exactly as typed. Give
  // the inputs labels in the page's language and autofill hints, hide the postal code (not asked for),
  // and read what people type: spaces or dashes in the number as printed on the card, a four-digit year.
  // Stripe's own element (an iframe) does all of this itself; then this returns null.
  function emulatorFields() {
    var root = document.getElementById("card-element");
    var find = function (name) { return root.querySelector("input[placeholder='" + name + "']"); };
    var fields = { number: find("number"), expMonth: find("exp_month"), expYear: find("exp_year"),
                   cvc: find("cvc"), postal: find("postal_code") };
    if (!fields.number || !fields.expMonth || !fields.expYear || !fields.cvc) { return null; }
    Array.prototype.forEach.call(root.querySelectorAll("span"), function (span) { span.hidden = true; });
    var described = "card-element-hint";
    [["number", "card-number", data.labelNumber, "1234 1234 1234 1234", "cc-number", 19],
     ["expMonth", "card-exp-month", data.labelExpMonth, data.placeholderMonth, "cc-exp-month", 2],
     ["expYear", "card-exp-year", data.labelExpYear, data.placeholderYear, "cc-exp-year", 4],
     ["cvc", "card-cvc", data.labelCvc, "123", "cc-csc", 4]].forEach(function (spec) {
      var input = fields[spec[0]];
      var wrapper = document.createElement("span");
      var label = document.createElement("label");
      wrapper.className = "card-field card-field-" + spec[0];
      input.id = spec[1];
      label.htmlFor = spec[1];
      label.textContent = spec[2];
      input.setAttribute("placeholder", spec[3]);
      input.setAttribute("autocomplete", spec[4]);
      input.setAttribute("inputmode", "numeric");
      input.setAttribute("maxlength", spec[0] === "number" ? "23" : String(spec[5]));
      input.setAttribute("size", String(spec[5]));
      input.setAttribute("aria-describedby", described + " card-errors");
      input.parentNode.insertBefore(wrapper, input);
      wrapper.appendChild(label);
      wrapper.appendChild(input);
    });
    if (fields.postal) {
      fields.postal.hidden = true;
      fields.postal.setAttribute("aria-hidden", "true");
      fields.postal.tabIndex = -1;
    }
    return fields;
  }

  // Put what was typed into the shape the emulator takes, then say what is missing or wrong, the
  // field first in the order of the form ("" when all is well).
  function checkPlainFields(fields) {
    var number = fields.number.value.replace(/[\s-]/g, "");
    var month = fields.expMonth.value.trim();
    var year = fields.expYear.value.trim();
    var cvc = fields.cvc.value.trim();
    if (/^\d{4}$/.test(year)) { year = year.slice(2); }
    if (/^\d$/.test(month)) { month = "0" + month; }
    fields.number.value = number;
    fields.expMonth.value = month;
    fields.expYear.value = year;
    fields.cvc.value = cvc;
    // The emulator reads its inputs on their input event.
    (fields.postal || fields.cvc).dispatchEvent(new Event("input", { bubbles: true }));
    Object.keys(fields).forEach(function (key) { if (fields[key]) { fields[key].removeAttribute("aria-invalid"); } });
    var problems = [
      [fields.number, !number, data.msgMissingNumber],
      [fields.number, !/^\d{12,19}$/.test(number), data.msgBadNumber],
      [fields.expMonth, !month, data.msgMissingExpiry],
      [fields.expYear, !year, data.msgMissingExpiry],
      [fields.expMonth, !/^(0[1-9]|1[0-2])$/.test(month), data.msgBadMonth],
      [fields.expYear, !/^\d{2}$/.test(year), data.msgBadYear],
      [fields.cvc, !cvc, data.msgMissingCvc],
      [fields.cvc, !/^\d{3,4}$/.test(cvc), data.msgBadCvc]
    ];
    for (var i = 0; i < problems.length; i += 1) {
      if (problems[i][1]) {
        problems[i][0].setAttribute("aria-invalid", "true");
        problems[i][0].focus();
        return problems[i][2];
      }
    }
    return "";
  }

  // What to say about an error from Stripe.js (card fields, network) in the page's language.
  function clientErrorMessage(error) {
    if (!error) { return data.msgInvalid; }
    if (error.code === "payment_intent_authentication_failure") { return data.msgAuthFailed; }
    if (error.type === "api_connection_error" || error instanceof TypeError) { return data.msgNetwork; }
    if (error.code && /^incomplete_/.test(error.code)) { return data.msgIncomplete; }
    return data.msgInvalid;
  }

  function csrfToken() {
    var input = form.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    });
  }

  function postToken(tokenId) {
    return postJson(data.payUrl, { token: tokenId }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var message = body && body.error && body.error.message;
          throw { shown: message || data.msgNetwork };
        }
        return body;
      });
    }, function () {
      throw { shown: data.msgNetwork };
    });
  }

  function authenticate(clientSecret) {
    showStatus(data.msgAuthenticating);
    return stripe.confirmCardPayment(clientSecret).then(function (result) {
      if (result.error) { throw { shown: clientErrorMessage(result.error) }; }
      // The emulator reports a failed authentication as a PaymentIntent waiting for a new card.
      var status = result.paymentIntent && result.paymentIntent.status;
      if (status !== "succeeded" && status !== "processing") { throw { shown: data.msgAuthFailed }; }
      return settleAuthenticated().then(function () { return status; });
    });
  }

  // The browser learns of the bank's answer before the server: ask the server to settle the payment now
  // (it reads the PaymentIntent from Stripe). Whatever it answers, the webhook and the periodic re-read
  // settle it anyway, so a failure here is not the buyer's problem.
  function settleAuthenticated() {
    if (!data.authenticatedUrl) { return Promise.resolve(); }
    return postJson(data.authenticatedUrl, {}).catch(function () {});
  }

  function finished() {
    showStatus(data.msgSucceeded);
    if (data.returnUrl) { window.location.assign(data.returnUrl); }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }
    var problem = plainFields ? checkPlainFields(plainFields) : "";
    if (problem) { showError(problem); return; }
    setBusy(true);
    showStatus(data.msgProcessing);
    stripe.createToken(card).then(function (result) {
      if (result.error || !result.token) { throw { shown: clientErrorMessage(result.error) }; }
      return postToken(result.token.id);
    }).then(function (body) {
      if (body.status === "requires_action") { return authenticate(body.client_secret); }
      if (body.status !== "succeeded" && body.status !== "processing") { throw { shown: data.msgInvalid }; }
      return body.status;
    }).then(finished, function (failure) {
      showError(failure && failure.shown ? failure.shown : data.msgNetwork);
      setBusy(false);
    });
  });
})();
