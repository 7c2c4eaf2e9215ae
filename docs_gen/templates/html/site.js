// The docs' one script: the sidebar and the search (from window.SEARCH_INDEX, a script rather than
// fetched JSON so file:// works), dark mode, and zoom, pan, reset and focus on every diagram.
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";
  var index = window.SEARCH_INDEX || [];
  var here = location.pathname;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }
  function isHere(url) { return here.slice(-url.length - 1) === "/" + url || here === url; }

  // --- theme: the reader's choice, else the system's -------------------------------------------
  var stored = null;
  try { stored = localStorage.getItem("docs-theme"); } catch (e) { /* file:// in some browsers */ }
  var dark = stored ? stored === "dark" : window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.classList.toggle("dark", dark);
  var theme = document.getElementById("theme");
  theme.textContent = dark ? "Light" : "Dark";
  theme.addEventListener("click", function () {
    dark = !dark;
    document.documentElement.classList.toggle("dark", dark);
    theme.textContent = dark ? "Light" : "Dark";
    try { localStorage.setItem("docs-theme", dark ? "dark" : "light"); } catch (e) { /* not kept */ }
  });

  // --- sidebar: systems, objects and flows, the current page marked -----------------------------
  var SECTIONS = [["systems/", "Systems"], ["objects/", "Objects"], ["flows/", "Flows"]];
  var sections = document.getElementById("sections");
  SECTIONS.forEach(function (s) {
    var entries = index.filter(function (e) { return e.u.indexOf(s[0]) === 0; });
    if (!entries.length) { return; }
    var details = el("details");
    var summary = el("summary", {}, s[1] + " ");
    summary.appendChild(el("small", {}, "(" + entries.length + ")"));
    details.appendChild(summary);
    var list = el("ul");
    var current = false;
    entries.forEach(function (e) {
      var a = el("a", { href: root + e.u, title: e.t }, e.t.replace(/^\S+ /, ""));
      if (isHere(e.u)) { a.className = "current"; current = true; }
      var li = el("li");
      li.appendChild(a);
      list.appendChild(li);
    });
    details.appendChild(list);
    details.open = current || entries.length <= 40;
    sections.appendChild(details);
  });
  Array.prototype.forEach.call(document.querySelectorAll("#sidebar .top a"), function (a) {
    if (isHere(a.getAttribute("href").replace(/^(\.\.\/)+/, ""))) { a.className = "current"; }
  });
  var menu = document.getElementById("menu");
  function openMenu(open) {
    document.body.classList.toggle("menu-open", open);
    menu.setAttribute("aria-expanded", String(open));
  }
  menu.addEventListener("click", function (ev) { ev.stopPropagation(); openMenu(!document.body.classList.contains("menu-open")); });
  document.addEventListener("click", function (ev) {
    if (document.body.classList.contains("menu-open") && !document.getElementById("sidebar").contains(ev.target)) { openMenu(false); }
  });

  // --- search: every word must match; titles first; arrows and Enter ---------------------------
  var box = document.getElementById("search");
  var results = document.getElementById("search-results");
  var active = -1;
  function item(entry) {
    var li = el("li", { role: "option" });
    var a = el("a", { href: root + entry.u });
    a.appendChild(el("span", { "class": "kind" }, entry.t.split(" ")[0]));
    a.appendChild(document.createTextNode(" " + entry.t.replace(/^\S+ /, "")));
    li.appendChild(a);
    if (entry.x) { li.appendChild(el("small", {}, entry.x)); }
    return li;
  }
  function search(text) {
    var words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { return []; }
    return index.map(function (e) {
      var title = e.t.toLowerCase(), all = title + " " + e.x.toLowerCase();
      if (!words.every(function (w) { return all.indexOf(w) >= 0; })) { return null; }
      return [words.filter(function (w) { return title.indexOf(w) >= 0; }).length, e];
    }).filter(Boolean).sort(function (a, b) { return b[0] - a[0]; }).map(function (p) { return p[1]; });
  }
  function mark(i) {
    var items = results.children;
    active = Math.max(-1, Math.min(i, items.length - 1));
    Array.prototype.forEach.call(items, function (li, j) { li.classList.toggle("active", j === active); });
  }
  box.addEventListener("input", function () {
    results.innerHTML = "";
    search(box.value).slice(0, 30).forEach(function (e) { results.appendChild(item(e)); });
    mark(-1);
  });
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { mark(active + (ev.key === "ArrowDown" ? 1 : -1)); ev.preventDefault(); }
    else if (ev.key === "Enter" && results.children.length) { results.children[Math.max(active, 0)].querySelector("a").click(); }
    else if (ev.key === "Escape") { box.value = ""; results.innerHTML = ""; }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && document.activeElement !== box) { box.focus(); ev.preventDefault(); }
  });
  var all = document.getElementById("all-pages");
  if (all) { index.forEach(function (e) { all.appendChild(item(e)); }); }

  // --- diagrams: zoom, pan, reset, focus on one node's neighbourhood ----------------------------
  function diagram(figure) {
    var svg = figure.querySelector("svg");
    if (!svg || !svg.viewBox || !svg.viewBox.baseVal || !svg.viewBox.baseVal.width) { return; }
    var home = svg.getAttribute("viewBox").split(/[\s,]+/).map(Number), view = home.slice();
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    function show() { svg.setAttribute("viewBox", view.join(" ")); }
    function zoom(factor, cx, cy) {
      cx = cx === undefined ? view[0] + view[2] / 2 : cx;
      cy = cy === undefined ? view[1] + view[3] / 2 : cy;
      view = [cx - (cx - view[0]) * factor, cy - (cy - view[1]) * factor, view[2] * factor, view[3] * factor];
      show();
    }
    function point(ev) {  // a screen point in the diagram's coordinates
      var p = svg.createSVGPoint();
      p.x = ev.clientX; p.y = ev.clientY;
      return p.matrixTransform(svg.getScreenCTM().inverse());
    }
    var nodes = Array.prototype.slice.call(svg.querySelectorAll("g.node"));
    var edges = Array.prototype.slice.call(svg.querySelectorAll("g.edge"));
    function id(g) { var t = g.querySelector("title"); return t ? t.textContent : ""; }
    function label(g) { return Array.prototype.map.call(g.querySelectorAll("text"), function (t) { return t.textContent; }).join(" "); }
    function focus(nodeId) {
      nodes.concat(edges).forEach(function (g) { g.classList.remove("near", "centre"); });
      figure.classList.toggle("focused", !!nodeId);
      if (!nodeId) { view = home.slice(); show(); return; }
      var near = [];
      edges.forEach(function (g) {
        var ends = id(g).split(/->|--/).map(function (end) { return end.split(":")[0]; });  // no port
        if (ends.indexOf(nodeId) >= 0) { g.classList.add("near"); near = near.concat(ends); }
      });
      var box = null;
      nodes.forEach(function (g) {
        if (g === undefined || (near.indexOf(id(g)) < 0 && id(g) !== nodeId)) { return; }
        g.classList.add("near");
        if (id(g) === nodeId) { g.classList.add("centre"); }
        var r = g.getBoundingClientRect(), a = point({ clientX: r.left, clientY: r.top }), b = point({ clientX: r.right, clientY: r.bottom });
        box = box ? [Math.min(box[0], a.x), Math.min(box[1], a.y), Math.max(box[2], b.x), Math.max(box[3], b.y)] : [a.x, a.y, b.x, b.y];
      });
      if (box) {  // frame the neighbourhood with a margin, keeping the figure's aspect ratio
        var pad = 30, w = box[2] - box[0] + 2 * pad, h = box[3] - box[1] + 2 * pad, ratio = home[2] / home[3];
        if (w / h < ratio) { w = h * ratio; } else { h = w / ratio; }
        view = [(box[0] + box[2]) / 2 - w / 2, (box[1] + box[3]) / 2 - h / 2, w, h];
        show();
      }
    }
    var controls = el("div", { "class": "controls" });
    [["+", "Zoom in", function () { zoom(0.8); }], ["−", "Zoom out", function () { zoom(1.25); }],
     ["Reset", "Whole diagram", function () { select.value = ""; focus(""); }]].forEach(function (b) {
      var button = el("button", { type: "button", title: b[1], "data-action": b[1].toLowerCase() }, b[0]);
      button.addEventListener("click", b[2]);
      controls.appendChild(button);
    });
    var select = el("select", { title: "Focus on one node and its neighbours", "aria-label": "Focus" });
    select.appendChild(el("option", { value: "" }, "Focus…"));
    nodes.map(function (g) { return [label(g), id(g)]; }).filter(function (p) { return p[0]; })
      .sort(function (a, b) { return a[0].localeCompare(b[0]); })
      .forEach(function (p) { select.appendChild(el("option", { value: p[1] }, p[0])); });
    select.addEventListener("change", function () { focus(select.value); });
    controls.appendChild(select);
    figure.insertBefore(controls, figure.firstChild);  // a bar above the diagram, never over a node
    svg.addEventListener("wheel", function (ev) {  // Ctrl/⌘ + wheel zooms; a plain wheel scrolls the page
      if (!ev.ctrlKey && !ev.metaKey) { return; }
      ev.preventDefault();
      var p = point(ev);
      zoom(ev.deltaY > 0 ? 1.15 : 0.87, p.x, p.y);
    }, { passive: false });
    var drag = null, moved = false;
    svg.addEventListener("pointerdown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, view: view.slice() }; moved = false; });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
      moved = true;
      figure.classList.add("panning");
      var scale = view[2] / svg.getBoundingClientRect().width;
      view = [drag.view[0] - dx * scale, drag.view[1] - dy * scale, view[2], view[3]];
      show();
    });
    window.addEventListener("pointerup", function () { drag = null; figure.classList.remove("panning"); });
    svg.addEventListener("click", function (ev) { if (moved) { ev.preventDefault(); ev.stopPropagation(); moved = false; } }, true);
  }
  Array.prototype.forEach.call(document.querySelectorAll("figure.diagram"), diagram);
})();
