// The owner's reports: draws each chart from the JSON block beside it with Apache ECharts
// (vendored in static/vendor/echarts). No inline script anywhere: the page works under a
// Content-Security-Policy of script-src 'self'. The numbers are in the table next to each chart.
(function () {
  "use strict";
  var PALETTE = ["#417690", "#e0a040", "#7ba05b", "#ba2121", "#8e6fb0", "#5c8fbf"];

  function axisBase(spec) {
    return {
      color: PALETTE,
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true }
    };
  }

  function bars(spec, opts) {
    var o = axisBase(spec);
    var category = { type: "category", data: spec.categories, axisLabel: { hideOverlap: true } };
    var value = { type: "value" };
    o.xAxis = opts.horizontal ? value : category;
    o.yAxis = opts.horizontal ? Object.assign({}, category, { inverse: true }) : value;
    o.series = spec.series.map(function (s) {
      return { name: s.name, type: opts.line ? "line" : "bar", data: s.data,
               stack: opts.stacked ? "total" : undefined, connectNulls: true };
    });
    return o;
  }

  function barLine(spec) {
    var o = axisBase(spec);
    o.xAxis = { type: "category", data: spec.categories, axisLabel: { hideOverlap: true } };
    o.yAxis = [{ type: "value", name: spec.series[0].name }, { type: "value", name: "Orders" }];
    o.series = spec.series.map(function (s, i) {
      var last = i === spec.series.length - 1;
      return { name: s.name, type: last ? "line" : "bar", data: s.data, yAxisIndex: last ? 1 : 0 };
    });
    return o;
  }

  function heatmap(spec) {
    var data = [], max = 0;
    spec.series.forEach(function (row, y) {
      row.data.forEach(function (v, x) { data.push([x, y, v]); if (v > max) max = v; });
    });
    return {
      animation: false,
      tooltip: { position: "top" },
      grid: { left: 8, right: 8, top: 8, bottom: 56, containLabel: true },
      xAxis: { type: "category", data: spec.categories, splitArea: { show: true } },
      yAxis: { type: "category", data: spec.series.map(function (r) { return r.name; }),
               inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: Math.max(max, 1), calculable: true, orient: "horizontal",
                   left: "center", bottom: 0, inRange: { color: ["#f4f8fa", "#417690", "#1d3a4a"] } },
      series: [{ name: spec.title, type: "heatmap", data: data, label: { show: false } }]
    };
  }

  function slices(spec, type) {
    var data = spec.categories.map(function (name, i) { return { name: name, value: spec.series[0].data[i] }; });
    var series = { name: spec.title, type: type, data: data };
    if (type === "pie") series.radius = ["35%", "70%"];
    if (type === "funnel") { series.sort = "none"; series.minSize = "8%"; series.label = { show: true, position: "inside" }; }
    return { color: PALETTE, animation: false, tooltip: { trigger: "item" },
             legend: { top: 0, type: "scroll" }, series: [series] };
  }

  var BUILD = {
    bar: function (s) { return bars(s, {}); },
    hbar: function (s) { return bars(s, { horizontal: true }); },
    stacked_bar: function (s) { return bars(s, { stacked: true }); },
    line: function (s) { return bars(s, { line: true }); },
    bar_line: barLine,
    heatmap: heatmap,
    pie: function (s) { return slices(s, "pie"); },
    funnel: function (s) { return slices(s, "funnel"); }
  };

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof echarts === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var build = BUILD[spec.kind];
    if (!build) return;
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(build(spec));
    el.setAttribute("data-drawn", "true");
    return chart;
  }

  function start() {
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var chart = draw(el);
      if (chart) charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
