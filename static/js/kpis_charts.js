// The KPI page's charts: each drawn from the JSON of the table beside it (the table is the
// figure; without JavaScript the page reads the same).
(function () {
  "use strict";
  var data = document.getElementById("kpi-charts");
  if (!data || typeof Chart === "undefined") return;
  var charts = JSON.parse(data.textContent);
  // the doughnuts list good, bad, pending (accepted, rejected, undecided; met, breached, running)
  var shares = ["#16a34a", "#dc2626", "#9ca3af"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = charts[canvas.dataset.chart];
    if (!spec) { canvas.parentElement.hidden = true; return; }
    var round = spec.type === "doughnut";
    // a bar chart as tall as its rows
    if (!round) canvas.parentElement.style.height = Math.max(120, 60 + 32 * spec.labels.length) + "px";
    new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: [{
          label: spec.label,
          data: spec.values,
          backgroundColor: round ? shares : "#2563eb",
          maxBarThickness: 28
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: round ? undefined : "y",
        plugins: { legend: { display: round, position: "bottom" } }
      }
    });
  });
})();
