// Shieldwall dashboard: the timeline chart (uPlot) and live sightings (server-sent events).
// No inline scripts (the Content-Security-Policy forbids them); data comes from JSON endpoints.
(function () {
  "use strict";
  var me = document.currentScript;
  var COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                 "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

  var chart = null;
  function drawTimeline() {
    var box = document.getElementById("timeline");
    var url = me && me.dataset.timeline;
    if (!box || !url || typeof uPlot === "undefined") return;
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (t) {
        var names = Object.keys(t.series);
        if (!t.hours.length) { box.textContent = "No sightings yet."; return; }
        // One more x point after the last hour, so the newest hour is drawn as a full step.
        var xs = t.hours.concat([t.hours[t.hours.length - 1] + 3600]);
        var data = [xs].concat(names.map(function (n) { return t.series[n].concat([0]); }));
        var series = [{}].concat(names.map(function (n, i) {
          var c = COLOURS[i % COLOURS.length];
          return {label: n, stroke: c, fill: c + "33", width: 2,
                  paths: uPlot.paths.stepped({align: 1})};
        }));
        var opts = {width: Math.max(320, box.clientWidth - 8), height: 240, series: series,
                    axes: [{stroke: "#ddd", grid: {stroke: "#333"}},
                           {stroke: "#ddd", grid: {stroke: "#333"}}],
                    scales: {x: {time: true}}};
        if (chart) chart.destroy();
        box.textContent = "";
        chart = new uPlot(opts, data, box);
      }).catch(function () { box.textContent = "Chart unavailable."; });
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    return td;
  }
  function link(href, text) {
    var a = document.createElement("a");
    a.href = href; a.textContent = text; return a;
  }
  function shortTs(s) { return s ? s.slice(0, 16).replace("T", " ") + " UTC" : ""; }

  function addSighting(table, s) {
    var member = table.dataset.member;
    if (member && s.member !== member) return;
    var tr = document.createElement("tr");
    tr.dataset.sighting = s.id;
    tr.className = "fresh";
    var badge = document.createElement("span");
    badge.className = "tlp " + s.tlp_class; badge.textContent = s.tlp;
    var ind = s.indicator_name ? link(s.indicator_url, s.indicator_name)
                               : document.createTextNode(s.indicator_id);
    if (s.blind_owner) {  // a blind hit: the owner's name, nothing of the protected value
      var wrap = document.createElement("span"), blind = document.createElement("span");
      blind.className = "blind"; blind.textContent = "protected indicator of " + s.blind_owner;
      wrap.appendChild(ind); wrap.appendChild(document.createTextNode(" "));
      wrap.appendChild(blind); ind = wrap;
    }
    [cell(shortTs(s.last_seen)), cell(s.member), cell(ind), cell(String(s.count), "num"),
     cell(badge), cell(link(s.url, "details"))].forEach(function (td) { tr.appendChild(td); });
    var body = table.tBodies[0];
    var old = body.querySelector('tr[data-sighting="' + CSS.escape(s.id) + '"]');
    if (old) old.remove();
    body.insertBefore(tr, body.firstChild);
    var none = document.getElementById("no-sightings");
    if (none) none.remove();
  }

  function live() {
    var table = document.getElementById("recent-sightings");
    var status = document.getElementById("live-status");
    if (!table || !table.dataset.liveUrl || typeof EventSource === "undefined") return;
    var es = new EventSource(table.dataset.liveUrl + "?after=" + table.dataset.liveAfter);
    var redraw = null;
    es.addEventListener("sighting", function (ev) {
      addSighting(table, JSON.parse(ev.data));
      clearTimeout(redraw); redraw = setTimeout(drawTimeline, 500);
    });
    es.addEventListener("signed-out", function () {
      es.close(); if (status) status.textContent = "signed out";
    });
    es.onopen = function () { if (status) { status.textContent = "live"; status.className = "live on"; } };
    es.onerror = function () { if (status) { status.textContent = "reconnecting"; status.className = "live"; } };
  }

  drawTimeline();
  live();
  window.addEventListener("resize", function () { clearTimeout(window.__swr); window.__swr = setTimeout(drawTimeline, 300); });
})();
