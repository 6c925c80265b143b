// The portal's charts (Chart.js, fed by usage.json) and card forms (Stripe.js).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var COLORS = ["#2548c9", "#1f7a3d", "#b45309", "#7c3aed", "#0e7490", "#be123c"];

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok && !data.error) data.error = "The request failed (" + response.status + "). Please try again.";
        return data;
      });
    });
  }

  function show(box, message) {
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ---- Charts ---------------------------------------------------------------------------
  var charts = document.getElementById("charts");
  var status = document.getElementById("charts-status");
  var drawn = [];

  function label(iso, granularity) {
    var d = new Date(iso);
    var month = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
    if (granularity === "day") return month + " " + d.getUTCDate();
    return month + " " + d.getUTCDate() + ", " + String(d.getUTCHours()).padStart(2, "0") + ":00";
  }

  function draw(series) {
    drawn.forEach(function (chart) { chart.destroy(); });
    drawn = [];
    charts.textContent = "";
    charts.dataset.range = series.range;
    var labels = series.labels.map(function (iso) { return label(iso, series.granularity); });
    series.dimensions.forEach(function (dimension, index) {
      var box = document.createElement("figure");
      box.className = "chart-card";
      var caption = document.createElement("figcaption");
      var title = document.createElement("h3");
      title.textContent = dimension.name;
      var total = document.createElement("span");
      total.className = "muted small";
      total.textContent = Number(dimension.total).toLocaleString("en-US", { maximumFractionDigits: 3 }) + " " + dimension.unit + " in total";
      caption.appendChild(title);
      caption.appendChild(total);
      var holder = document.createElement("div");
      holder.className = "chart-box";
      var canvas = document.createElement("canvas");
      canvas.id = "chart-" + dimension.key;
      canvas.dataset.dimension = dimension.key;
      canvas.dataset.values = JSON.stringify(dimension.values);
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", dimension.name + " usage, " + (series.granularity === "hour" ? "per hour over the last 48 hours" : "per day this month") + ": " + total.textContent);
      holder.appendChild(canvas);
      box.appendChild(caption);
      box.appendChild(holder);
      charts.appendChild(box);
      var color = COLORS[index % COLORS.length];
      drawn.push(new window.Chart(canvas, {
        type: series.granularity === "hour" ? "line" : "bar",
        data: {
          labels: labels,
          datasets: [{
            label: dimension.name + " (" + dimension.unit + ")",
            data: dimension.values.map(Number),
            borderColor: color,
            backgroundColor: series.granularity === "hour" ? color + "22" : color + "cc",
            fill: series.granularity === "hour",
            pointRadius: 0,
            borderWidth: 2,
            tension: 0.25
          }]
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { display: false } },
          scales: {
            x: { ticks: { maxTicksLimit: 8, maxRotation: 0 }, grid: { display: false } },
            y: { beginAtZero: true, title: { display: true, text: dimension.unit } }
          }
        }
      }));
    });
    if (status) status.textContent = series.dimensions.length ? "" : "No usage in this period yet.";
    charts.dataset.ready = "1";
  }

  function load(range) {
    charts.dataset.ready = "";
    if (status) status.textContent = "Loading usage…";
    document.querySelectorAll("[data-range]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    });
    fetch(charts.dataset.source + "?range=" + encodeURIComponent(range), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(draw)
      .catch(function () { if (status) status.textContent = "Usage could not be loaded. Reload the page to try again."; });
  }

  if (charts) {
    document.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () { load(button.dataset.range); });
    });
    var start = function () {
      if (typeof window.Chart === "undefined") { if (status) status.textContent = "Charts could not load."; return; }
      load("48h");
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // ---- Stripe ---------------------------------------------------------------------------
  function stripeFor(element) {
    return window.Stripe(element.dataset.stripeKey, { stripeAccount: element.dataset.stripeAccount });
  }

  // Stripe's own Card Element labels its fields inside its frame; a stand-in may render plain
  // inputs with placeholders only, so name them for screen readers.
  var FIELD_NAMES = { number: "Card number", exp_month: "Expiry month (MM)", exp_year: "Expiry year (YY)", cvc: "CVC", postal_code: "Postal code" };
  function labelInputs(container) {
    container.querySelectorAll("input").forEach(function (input) {
      var name = FIELD_NAMES[input.getAttribute("placeholder")];
      if (name && !input.getAttribute("aria-label")) input.setAttribute("aria-label", name);
      if (input.getAttribute("placeholder") === "number") input.setAttribute("autocomplete", "cc-number");
    });
  }

  var form = document.getElementById("card-form");
  if (form && window.Stripe) {
    var stripe = stripeFor(form);
    var card = stripe.elements().create("card", { hidePostalCode: false });
    var mountPoint = document.getElementById("card-element");
    card.mount(mountPoint);
    labelInputs(mountPoint);
    var error = document.getElementById("card-error");
    var button = document.getElementById("save-card");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show(error, "");
      button.disabled = true;
      button.textContent = "Saving…";
      var fail = function (message) {
        show(error, message);
        button.disabled = false;
        button.textContent = "Save card";
      };
      post(form.dataset.setup).then(function (setup) {
        if (setup.error) return fail(setup.error);
        return stripe.confirmCardSetup(setup.client_secret, { payment_method: { card: card } }).then(function (result) {
          if (result.error) return fail(result.error.message || "The card was not accepted.");
          var method = result.setupIntent.payment_method;
          if (typeof method === "object" && method) method = method.id;
          return post(form.dataset.default, { payment_method: method }).then(function (saved) {
            if (saved.error) return fail(saved.error);
            window.location.assign(form.dataset.next);
          });
        });
      }).catch(function () { fail("Something went wrong; your card was not saved. Please try again."); });
    });
  }

  var pay = document.getElementById("pay-button");
  if (pay) {
    var payError = document.getElementById("pay-error");
    var label0 = pay.textContent;
    pay.addEventListener("click", function () {
      show(payError, "");
      pay.disabled = true;
      pay.textContent = "Processing…";
      var fail = function (message) {
        show(payError, message);
        pay.disabled = false;
        pay.textContent = label0;
      };
      post(pay.dataset.pay).then(function (charge) {
        if (charge.error) return fail(charge.error);
        if (charge.status === "requires_action") {
          // The bank wants the cardholder: Stripe.js runs 3-D Secure, then confirms.
          return stripeFor(pay).confirmCardPayment(charge.client_secret).then(function (result) {
            if (result.error) return fail(result.error.message || "The payment was not authenticated.");
            window.location.assign(charge.next);
          });
        }
        window.location.assign(charge.next);
      }).catch(function () { fail("Something went wrong; you were not charged. Please try again."); });
    });
  }
})();
