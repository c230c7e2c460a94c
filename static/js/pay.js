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
  button.disabled = false;

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
