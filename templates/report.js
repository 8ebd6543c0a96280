/* model-audit report: sortable and filterable tables, picked-sample controls and click-to-zoom.
   Plain JavaScript, no library, no network access (the page's Content-Security-Policy forbids any), works from a
   file:// URL. Without JavaScript the report stays complete: every row and every map is shown. */
(function () {
  "use strict";

  var filters = new WeakMap();  // table -> {name: predicate(row) -> bool}

  function rowsOf(table) {
    return Array.prototype.slice.call(table.tBodies[0] ? table.tBodies[0].rows : []);
  }

  function label(table) {
    var cap = table.querySelector("caption");
    var h = table.closest("section") && table.closest("section").querySelector("h2, h3");
    return (cap && cap.textContent.trim()) || (h && h.textContent.trim()) || "table";
  }

  function counter(table) {
    var el = table.__counter;
    if (!el) {
      el = document.createElement("span");
      el.className = "muted";
      el.setAttribute("aria-live", "polite");
      table.__counter = el;
      controlsFor(table).appendChild(el);
    }
    return el;
  }

  function controlsFor(table) {
    if (table.__controls) { return table.__controls; }
    var box = document.createElement("div");
    box.className = "tablefilter";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Filter: " + label(table));
    var anchor = table.parentElement && table.parentElement.classList.contains("scroll") ? table.parentElement : table;
    anchor.parentNode.insertBefore(box, anchor);
    table.__controls = box;
    return box;
  }

  function apply(table) {
    var preds = filters.get(table) || {};
    var names = Object.keys(preds);
    var rows = rowsOf(table);
    var shown = 0;
    rows.forEach(function (row) {
      var ok = names.every(function (n) { return preds[n](row); });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    var target = table.id === "picks" ? document.getElementById("pick-count") : counter(table);
    if (target) { target.textContent = shown + " of " + rows.length + " shown"; }
  }

  function setFilter(table, name, pred) {
    var preds = filters.get(table) || {};
    if (pred) { preds[name] = pred; } else { delete preds[name]; }
    filters.set(table, preds);
    apply(table);
  }

  function textFilter(table) {
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "filter rows…";
    input.setAttribute("aria-label", "Filter rows of " + label(table));
    var wrap = document.createElement("label");
    wrap.appendChild(document.createTextNode("Filter "));
    wrap.appendChild(input);
    controlsFor(table).appendChild(wrap);
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      setFilter(table, "text", q ? function (row) { return row.textContent.toLowerCase().indexOf(q) >= 0; } : null);
    });
  }

  function statusFilter(table) {
    var statuses = [];
    rowsOf(table).forEach(function (r) {
      var s = r.getAttribute("data-status");
      if (s && statuses.indexOf(s) < 0) { statuses.push(s); }
    });
    var box = controlsFor(table);
    var boxes = [];
    statuses.forEach(function (s) {
      var cb = document.createElement("input");
      cb.type = "checkbox";
      cb.checked = true;
      cb.value = s;
      var l = document.createElement("label");
      l.appendChild(cb);
      l.appendChild(document.createTextNode(" " + s.replace("_", " ")));
      box.appendChild(l);
      boxes.push(cb);
      cb.addEventListener("change", function () {
        var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
        setFilter(table, "status", on.length === boxes.length ? null : function (row) {
          return on.indexOf(row.getAttribute("data-status")) >= 0;
        });
      });
    });
  }

  function sortKey(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (!numeric) { return raw.trim().toLowerCase(); }
    var v = parseFloat(raw.replace(/[−–]/g, "-").replace(/[^0-9eE+\-.]/g, " ").trim().split(/\s+/)[0]);
    return isNaN(v) ? -Infinity : v;
  }

  function isNumeric(table, col) {
    return rowsOf(table).every(function (r) {
      var c = r.cells[col];
      if (!c) { return true; }
      var raw = (c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent).trim();
      return raw === "" || raw === "—" || !isNaN(parseFloat(raw.replace(/[−–]/g, "-")));
    });
  }

  function sortable(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) { return; }
    Array.prototype.forEach.call(head.cells, function (th, col) {
      if (th.hasAttribute("data-nosort")) { return; }
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "sort";
      while (th.firstChild) { btn.appendChild(th.firstChild); }
      th.appendChild(btn);
      btn.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(head.cells, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var type = th.getAttribute("data-type");
        var numeric = type ? type === "num" : isNumeric(table, col);
        var rows = rowsOf(table);
        var keyed = rows.map(function (r, i) { return [sortKey(r.cells[col] || r, numeric), i, r]; });
        keyed.sort(function (a, b) {
          if (a[0] < b[0]) { return asc ? -1 : 1; }
          if (a[0] > b[0]) { return asc ? 1 : -1; }
          return a[1] - b[1];
        });
        var body = table.tBodies[0];
        keyed.forEach(function (k) { body.appendChild(k[2]); });
      });
    });
  }

  // ---- picked samples ------------------------------------------------------------------------------------------
  function picks() {
    var table = document.getElementById("picks");
    var controls = document.getElementById("pick-controls");
    if (!table || !controls) { return; }
    controls.hidden = false;
    var explainer = document.getElementById("pick-explainer");
    var opacity = document.getElementById("pick-opacity");
    var shownOpacity = document.getElementById("pick-opacity-value");
    var category = document.getElementById("pick-category");
    var klass = document.getElementById("pick-class");
    var search = document.getElementById("pick-search");

    function showExplainer() {
      var name = explainer.value;
      table.querySelectorAll("[data-explainer]").forEach(function (el) {
        el.hidden = !!name && el.getAttribute("data-explainer") !== name;
      });
    }
    function setOpacity() {
      document.documentElement.style.setProperty("--heat-opacity", String(opacity.value / 100));
      shownOpacity.textContent = opacity.value + " %";
      opacity.setAttribute("aria-valuetext", opacity.value + " percent");
    }
    function refilter() {
      var c = category.value;
      var k = klass.value;
      var q = search.value.trim().toLowerCase();
      setFilter(table, "category", c ? function (r) {
        return (" " + r.getAttribute("data-categories") + " ").indexOf(" " + c + " ") >= 0;
      } : null);
      setFilter(table, "class", k ? function (r) { return r.getAttribute("data-label") === k; } : null);
      setFilter(table, "search", q ? function (r) {
        return r.getAttribute("data-id").toLowerCase().indexOf(q) >= 0;
      } : null);
    }
    if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches && explainer.options.length > 1) {
      explainer.selectedIndex = 1;  // a narrow screen shows one explainer at a time
    }
    explainer.addEventListener("change", showExplainer);
    opacity.addEventListener("input", setOpacity);
    [category, klass].forEach(function (el) { el.addEventListener("change", refilter); });
    search.addEventListener("input", refilter);
    showExplainer();
    setOpacity();
    refilter();
    zoom(table);
  }

  function zoom(table) {
    var dialog = document.getElementById("zoom");
    var body = document.getElementById("zoom-body");
    var title = document.getElementById("zoom-title");
    var close = document.getElementById("zoom-close");
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    var opener = null;
    var heads = table.tHead.rows[0].cells;

    function figure(cell, col) {
      var fig = document.createElement("figure");
      var img = cell.querySelector("img");
      var btn = cell.querySelector("button.zoom");
      var box = document.createElement("div");
      box.className = btn && btn.classList.contains("stack") ? btn.className.replace("zoom", "").trim() : "plain";
      var big = document.createElement("img");
      big.src = img.src;
      big.alt = img.alt;
      box.appendChild(big);
      fig.appendChild(box);
      var cap = document.createElement("figcaption");
      var head = heads[col];
      var key = head && head.querySelector(".cbar");
      var name = head ? (head.querySelector("button.sort") || head).childNodes[0] : null;
      cap.textContent = name && name.textContent ? name.textContent.trim() : "Input";
      fig.appendChild(cap);
      if (key) { fig.appendChild(key.cloneNode(true)); }
      return fig;
    }

    table.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button.zoom");
      if (!btn) { return; }
      var row = btn.closest("tr");
      opener = btn;
      while (body.firstChild) { body.removeChild(body.firstChild); }
      var meta = (row.cells[0].innerText || row.cells[0].textContent).split("\n").map(function (x) { return x.trim(); })
        .filter(function (x) { return x && x !== row.getAttribute("data-id"); });
      title.textContent = row.getAttribute("data-id") + " — " + meta.join(" · ");
      Array.prototype.forEach.call(row.cells, function (cell, col) {
        if (col === 0 || cell.hidden || !cell.querySelector("img")) { return; }
        body.appendChild(figure(cell, col));
      });
      dialog.showModal();
      close.focus();
    });
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (ev) { if (ev.target === dialog) { dialog.close(); } });
    dialog.addEventListener("close", function () { if (opener) { opener.focus(); } });
  }

  // ---- tables that do not fit -----------------------------------------------------------------------------------
  // Each body cell is labelled with its column's header (data-label); a table wider than its container gets the
  // class "stacked" (report.css: row by row, each cell under its label), measured again when the window resizes.
  function label(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) { return; }
    var names = Array.prototype.map.call(head.cells, function (th) {
      var first = (th.querySelector("button.sort") || th).childNodes[0];
      return (first && first.textContent ? first.textContent : th.textContent).trim();
    });
    rowsOf(table).forEach(function (row) {
      var col = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        if (names[col] && !cell.hasAttribute("data-label") && cell.tagName === "TD") {
          cell.setAttribute("data-label", names[col]);
        }
        col += cell.colSpan || 1;
      });
    });
  }

  function fit() {
    document.querySelectorAll("table").forEach(function (t) { t.classList.remove("stacked"); });
    document.querySelectorAll("table").forEach(function (t) {
      var box = t.parentElement;
      var wide = Math.max(t.getBoundingClientRect().width, t.scrollWidth);
      if (box && wide > box.clientWidth + 1) { t.classList.add("stacked"); }
    });
  }

  function init() {
    document.querySelectorAll("table").forEach(label);
    document.querySelectorAll("table[data-filter], table[data-status-filter]").forEach(function (t) {
      if (t.hasAttribute("data-filter")) { textFilter(t); }
      if (t.hasAttribute("data-status-filter")) { statusFilter(t); }
      apply(t);
    });
    document.querySelectorAll("table[data-sortable]").forEach(sortable);
    picks();
    fit();
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) { window.clearTimeout(pending); }
      pending = window.setTimeout(fit, 100);
    });
    document.documentElement.setAttribute("data-ready", "true");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
