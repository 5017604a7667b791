// walflow console: draws the charts from the data-* attributes of server-rendered fragments, after
// the first load and after every htmx refresh. No inline script anywhere (the CSP forbids it), and
// nothing here talks to the server: htmx does the polling, and only while the page is open.
(function () {
  'use strict';
  var PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#4b5563', '#db2777'];
  // Lag samples gathered while this page is open (the database keeps no lag history).
  var lagSamples = [];
  var MAX_SAMPLES = 720;

  function size(el) {
    return { width: Math.max(240, el.clientWidth || 480), height: 180 };
  }

  function fmtBytes(v) {
    if (v == null) return '';
    var u = ['B', 'kB', 'MB', 'GB', 'TB'];
    var i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v : v.toFixed(1)) + ' ' + u[i];
  }

  function draw(el, opts, data) {
    el.textContent = '';
    if (typeof uPlot !== 'function') return;
    new uPlot(Object.assign(size(el), opts), data, el);
  }

  function completions(el) {
    var s = JSON.parse(el.getAttribute('data-series'));
    if (s.labels.length === 0) { el.textContent = 'No pipelines yet.'; return; }
    draw(el, {
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [{}, { size: 50 }],
      series: [{}].concat(s.labels.map(function (name, i) {
        return { label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5, points: { show: false } };
      })),
    }, s.data);
  }

  function lag(el) {
    var sample = JSON.parse(el.getAttribute('data-lag'));
    var last = lagSamples[lagSamples.length - 1];
    if (!last || last.t !== sample.t) lagSamples.push(sample);
    if (lagSamples.length > MAX_SAMPLES) lagSamples.shift();
    var slots = [];
    lagSamples.forEach(function (x) { x.slots.forEach(function (s) { if (slots.indexOf(s.slot) < 0) slots.push(s.slot); }); });
    if (slots.length === 0) { el.textContent = 'No replication slot.'; return; }
    // An empty point five minutes before the first sample, so that the x axis spans minutes from
    // the first refresh (uPlot stretches a single point's axis over years).
    var xs = [lagSamples[0].t - 300].concat(lagSamples.map(function (x) { return x.t; }));
    var data = [xs];
    var series = [{}];
    slots.forEach(function (slot, i) {
      var pick = function (field) {
        return [null].concat(lagSamples.map(function (x) {
          var hit = x.slots.filter(function (s) { return s.slot === slot; })[0];
          return hit && hit[field] != null ? Number(hit[field]) : null;
        }));
      };
      data.push(pick('bytes'));
      series.push({ label: slot + ' bytes', stroke: PALETTE[i % PALETTE.length], width: 1.5, scale: 'bytes', points: { show: true, size: 5 }, value: function (u, v) { return fmtBytes(v); } });
      data.push(pick('seconds'));
      series.push({ label: slot + ' seconds', stroke: PALETTE[(i + 3) % PALETTE.length], width: 1, dash: [4, 3], scale: 's' });
    });
    draw(el, {
      scales: { x: { time: true }, bytes: { range: function (u, min, max) { return [0, Math.max(1024, max)]; } }, s: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [{}, { scale: 'bytes', size: 60, values: function (u, vals) { return vals.map(fmtBytes); } }, { scale: 's', side: 1, size: 40, grid: { show: false } }],
      series: series,
    }, data);
  }

  function drawAll(root) {
    (root || document).querySelectorAll('[data-chart]').forEach(function (el) {
      try {
        if (el.getAttribute('data-chart') === 'completions') completions(el);
        else if (el.getAttribute('data-chart') === 'lag') lag(el);
      } catch (err) {
        el.textContent = 'chart unavailable: ' + err.message;
      }
    });
  }

  document.addEventListener('DOMContentLoaded', function () { drawAll(document); });
  document.addEventListener('htmx:afterSettle', function (e) { drawAll(e.target); });
})();
