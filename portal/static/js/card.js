// Card entry with Stripe.js: the card number goes from the browser straight to the processor.
// On submit: ask our server for a SetupIntent, confirm it with the Card Element (3-D Secure
// included), then post only the SetupIntent id back to our server.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  const errors = document.getElementById("card-errors");
  const submit = document.getElementById("card-submit");
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");

  const showError = (message) => {
    errors.textContent = message;
    errors.hidden = false;
    submit.disabled = false;
  };

  form.addEventListener("submit", async (event) => {
    if (document.getElementById("setup-intent").value) return; // confirmed: let the form post
    event.preventDefault();
    submit.disabled = true;
    errors.hidden = true;
    let secret;
    try {
      const response = await fetch(form.dataset.setupUrl, {
        method: "POST",
        headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value, Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) return showError(body.error);
      secret = body.client_secret;
    } catch (error) {
      return showError(form.dataset.networkError || "We could not reach the server. Please try again.");
    }
    const result = await stripe.confirmCardSetup(secret, { payment_method: { card } });
    if (result.error) return showError(result.error.message || "Your card was not accepted.");
    document.getElementById("setup-intent").value = result.setupIntent.id;
    form.submit();
  });
});
