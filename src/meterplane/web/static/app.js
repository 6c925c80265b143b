// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');

  // htmx requests carry the CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf.content;
  });

  // Confirm destructive actions: <button data-confirm="Void this invoice?">.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // "Select all" checkbox: <input type="checkbox" data-select-all="name">.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.dataset && box.dataset.selectAll) {
      document.querySelectorAll('input[name="' + box.dataset.selectAll + '"]').forEach(function (item) {
        item.checked = box.checked;
      });
    }
  });

  // Live preview: <input data-preview="#target"> copies its value into the target.
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (input.dataset && input.dataset.preview) {
      var target = document.querySelector(input.dataset.preview);
      if (target) {
        target.textContent = input.value || target.dataset.placeholder || "";
        var line = target.closest("[data-preview-line]");
        if (line) line.hidden = !input.value;
      }
    }
  });
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type === "file" && input.dataset.previewImage && input.files && input.files[0]) {
      var image = document.querySelector(input.dataset.previewImage);
      if (image) {
        image.src = URL.createObjectURL(input.files[0]);
        image.hidden = false;
      }
    }
  });

  // Charts: <canvas data-chart="id"> + <script type="application/json" id="id">{type,data,options}</script>
  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var config = JSON.parse(source.textContent);
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
      new window.Chart(canvas, config);
      canvas.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
})();
