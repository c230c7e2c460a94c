// Dashboard charts: each .dash-chart element carries its figures in data-chart (JSON) and is drawn
// with ECharts. The same figures are in the table beside it, so the page says everything without
// this file. Canvas renderer and canvas-drawn tooltips: the CSP allows no inline style attributes.
(function () {
  "use strict";
  if (typeof window.echarts === "undefined") {
    return;
  }
  // Each at least 3:1 against the white chart (WCAG 2.2, 1.4.11), and of distinct hues.
  var COLOURS = ["#1f6f4a", "#b35c00", "#3c6e91", "#8a5a9e"];
  var zh = document.documentElement.lang === "zh-CN";
  var font = zh ? "\"PingFang SC\", \"Noto Sans CJK SC\", \"Microsoft YaHei\", \"WenQuanYi Zen Hei\", sans-serif"
                : "system-ui, sans-serif";

  function draw(element) {
    var chart;
    try {
      chart = JSON.parse(element.getAttribute("data-chart"));
    } catch (error) {
      return;
    }
    if (!chart.labels || chart.labels.length === 0) {
      return;
    }
    element.classList.add("chart-ready");
    if (chart.horizontal) {
      element.classList.add("chart-tall");
    }
    var instance = window.echarts.init(element, null, { renderer: "canvas" });
    var categories = chart.horizontal ? chart.labels.slice().reverse() : chart.labels;
    var series = chart.series.map(function (s, n) {
      var values = chart.horizontal ? s.values.slice().reverse() : s.values;
      return {
        name: s.name,
        type: "bar",
        barMaxWidth: 28,
        itemStyle: { color: COLOURS[n % COLOURS.length] },
        // Drawing needs numbers; the exact decimal strings are what the labels and tooltips show.
        data: values.map(function (text) { return { value: Number(text), exact: text }; }),
        label: chart.horizontal ? { show: true, position: "right", formatter: function (p) { return p.data.exact; } }
                                : { show: false }
      };
    });
    var valueAxis = { type: "value", name: chart.unit, axisLabel: { fontFamily: font } };
    var categoryAxis = {
      type: "category", data: categories,
      axisLabel: { fontFamily: font, interval: 0, rotate: (!chart.horizontal && categories.length > 8) ? 40 : 0,
                   width: chart.horizontal ? 180 : 90, overflow: "truncate" }
    };
    instance.setOption({
      animation: false,
      textStyle: { fontFamily: font },
      color: COLOURS,
      legend: { show: chart.series.length > 1, top: 0, textStyle: { fontFamily: font } },
      grid: { left: 8, right: chart.horizontal ? 72 : 16, top: chart.series.length > 1 ? 32 : 16, bottom: 8,
              containLabel: true },
      tooltip: {
        trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" },
        formatter: function (items) {
          var lines = [items[0].name];
          items.forEach(function (p) { lines.push(p.seriesName + ": " + p.data.exact); });
          return lines.join("\n");
        }
      },
      xAxis: chart.horizontal ? valueAxis : categoryAxis,
      yAxis: chart.horizontal ? categoryAxis : valueAxis,
      series: series
    });
    window.addEventListener("resize", function () { instance.resize(); });
  }

  var elements = document.querySelectorAll(".dash-chart");
  for (var i = 0; i < elements.length; i += 1) {
    draw(elements[i]);
  }
})();
