// The footprint chart: reads its figures from data-chart (JSON) and draws them with ECharts.
// The same figures are in the table beside it, so the page says everything without this file.
(function () {
  "use strict";
  var element = document.getElementById("footprint-chart");
  if (!element || typeof window.echarts === "undefined") {
    return;
  }
  var chart;
  try {
    chart = JSON.parse(element.getAttribute("data-chart"));
  } catch (error) {
    return;
  }
  element.classList.add("chart-ready");
  // Canvas, not SVG, and a canvas-drawn tooltip: the CSP allows no inline style attributes.
  var instance = window.echarts.init(element, null, { renderer: "canvas" });
  instance.setOption({
    animation: false,
    grid: { left: 8, right: 56, top: 8, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" },
               valueFormatter: function (value) { return value + " " + chart.unit; } },
    xAxis: { type: "value", name: chart.unit },
    yAxis: { type: "category", data: chart.labels.slice().reverse() },
    series: [{
      type: "bar",
      // Drawing needs numbers; the exact decimal strings are shown as the labels.
      data: chart.values.slice().reverse().map(function (text) {
        return { value: Number(text), label: { show: true, position: "right", formatter: text } };
      }),
      itemStyle: { color: "#1f6f4a" }
    }]
  });
  window.addEventListener("resize", function () { instance.resize(); });
})();
