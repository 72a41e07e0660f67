// sipward web UI: draws the charts of the dashboard and of the SIP user page
// with uPlot (static/uPlot.iife.min.js). Each chart is an element
// [data-chart=key] whose data is the JSON block #data-src, key → {x: Unix
// seconds, lines: [{name, label, values}]}. The page's tables hold the same
// figures, so nothing is lost without script.
"use strict";

(function () {
  // Colours of the lines in order; app.css gives the legend's .sw0… the same.
  var palette = ["#0a58a3", "#c0262d", "#8a5a00", "#1a7f37", "#7c3aed", "#374151"];
  var height = 220;
  var charts = [];

  // The time axis in 24-hour UTC, as the tables below the charts.
  function hhmm(u, splits) {
    return splits.map(function (s) {
      var d = new Date(s * 1e3);
      return ("0" + d.getUTCHours()).slice(-2) + ":" + ("0" + d.getUTCMinutes()).slice(-2);
    });
  }

  function widthOf(el) {
    return Math.max(200, Math.floor(el.getBoundingClientRect().width));
  }

  function draw(el) {
    if (el.getAttribute("data-drawn") || typeof window.uPlot === "undefined") return;
    var src = document.getElementById(el.getAttribute("data-src"));
    if (!src) return;
    var c = JSON.parse(src.textContent)[el.getAttribute("data-chart")];
    if (!c || !c.x || !c.x.length) return;
    var data = [c.x];
    var series = [{}];
    c.lines.forEach(function (l, i) {
      data.push(l.values);
      series.push({ label: l.label, stroke: palette[i % palette.length], width: 2, points: { show: false } });
    });
    var opts = {
      width: widthOf(el),
      height: height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: { x: { time: true } },
      axes: [{ stroke: "#1b1f24", values: hhmm }, { stroke: "#1b1f24", size: 48 }],
      series: series
    };
    charts.push({ el: el, u: new window.uPlot(opts, data, el) });
    el.setAttribute("data-drawn", "true");
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
  }

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c.u.setSize({ width: widthOf(c.el), height: height }); });
    }, 100);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
