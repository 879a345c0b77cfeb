/* gradtrace player: steps through the backward pass on the frozen layout (no network, no libraries). */
(function () {
  "use strict";
  var root = document.documentElement;
  window.addEventListener("error", function (event) {
    root.setAttribute("data-errors", (root.getAttribute("data-errors") || "") + event.message + ";");
  });
  var XLINK = "http://www.w3.org/1999/xlink";
  var data = JSON.parse(document.getElementById("gt-data").textContent);
  var count = data.count;
  var graph = document.getElementById("gt-graph");
  var slider = document.getElementById("gt-slider");
  var pos = document.getElementById("gt-pos");
  var panel = document.getElementById("gt-panel");
  var playButton = document.getElementById("gt-play");
  var current = 0;
  var timer = null;

  var cells = {};
  function cell(id) {
    if (!(id in cells)) {
      var group = document.getElementById("a_v" + id + "g");
      var texts = group ? group.querySelectorAll("text") : [];
      cells[id] = group && {
        link: group.querySelector("a"),
        box: group.querySelector("polygon"),
        text: texts[texts.length - 1]
      };
    }
    return cells[id];
  }

  var edges = [];
  Array.prototype.forEach.call(document.querySelectorAll("g.edge.grad"), function (g) {
    var m = /(?:^|\s)s(\d+)(?:\s|$)/.exec(g.getAttribute("class"));
    if (m) { edges.push([g, Number(m[1])]); }
  });
  var fnBoxes = {};
  Object.keys(data.fnFill).forEach(function (id) {
    var group = document.getElementById("f" + id);
    if (group) { fnBoxes[id] = group.querySelector("polygon"); }
  });
  var badges = {};  // step -> [cell, number]: hollow until the step has run, as in --step pictures
  Object.keys(fnBoxes).forEach(function (id) {
    Array.prototype.forEach.call(document.getElementById("f" + id).querySelectorAll("rect"), function (rect) {
      var number = rect.nextElementSibling;
      if (number && number.textContent in data.badges) { badges[number.textContent] = [rect, number]; }
    });
  });
  var built = [];  // [element, step]: what a step's backward built, faint until it has run
  Object.keys(data.made).forEach(function (n) {
    data.made[n].forEach(function (id) {
      var node = document.getElementById(id);
      if (node) { built.push([node, Number(n)]); }
    });
  });
  var nowRows = document.querySelectorAll('g[id^="a_legend_now"]');  // legend rows about the step shown
  var captionGroup = document.getElementById("a_caption");
  var caption = captionGroup && captionGroup.querySelector("text");

  function applyLook(id, look) {
    var c = cell(id);
    if (!c) { return; }
    c.text.textContent = look[0];
    c.box.setAttribute("fill", look[1]);
    c.text.setAttribute("fill", look[2]);
    if (look[3]) { c.text.setAttribute("font-style", "italic"); } else { c.text.removeAttribute("font-style"); }
    if (look[4]) { c.text.setAttribute("font-weight", "bold"); } else { c.text.removeAttribute("font-weight"); }
    if (c.link) { c.link.setAttributeNS(XLINK, "title", look[5]); }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function rows(title, items, third) {
    // one block per variable: its name, then its numbers on lines of their own, so that a long
    // name or array wraps inside the panel at any window size
    panel.appendChild(element("h3", "", title));
    var list = element("div", "items");
    items.forEach(function (item) {
      var block = element("div", "item");
      block.appendChild(element("div", "name", item[0]));
      block.appendChild(element("div", "num", item[1]));
      if (third && item[2]) { block.appendChild(element("div", "num after", ".grad = " + item[2])); }
      list.appendChild(block);
    });
    if (!items.length) { list.appendChild(element("div", "hint", "none")); }
    panel.appendChild(list);
  }

  function describe(step) {
    panel.textContent = "";
    var head = element("h2");
    head.appendChild(element("span", "badge", String(step.n)));
    head.appendChild(document.createTextNode(" " + step.op));
    panel.appendChild(head);
    panel.appendChild(element("div", "hint", "backward step " + step.n + " of " + count +
                              " \u00b7 forward call " + step.call));
    (step.again || []).forEach(function (text) {
      panel.appendChild(element("div", "again", "This function's backward " + text));
    });
    rows("Gradients received (one per output)", step.received, false);
    rows("Gradients sent (one per input)", step.sent, true);
    if (step.built && step.built.length) {
      panel.appendChild(element("h3", "", "Calls this backward made (" + step.builtNote + ")"));
      panel.appendChild(element("div", "num", step.built.join(", ")));
    }
    if (step.error) {
      panel.appendChild(element("h3", "", "Error"));
      panel.appendChild(element("div", "error", step.error));
    }
    if (step.findings.length) {
      panel.appendChild(element("h3", "", "Findings"));
      step.findings.forEach(function (text) { panel.appendChild(element("div", "finding", text)); });
    }
  }

  function before() {
    panel.textContent = "";
    panel.appendChild(element("h2", "", "Before backward"));
    panel.appendChild(element("div", "hint", "The forward values and the seed; no backward step has run yet. " + count +
                              " backward step" + (count === 1 ? "" : "s") + " to come: press Next (or \u2192)."));
    // the keys are otherwise only in the buttons' tooltips, which a projected lecture never shows
    panel.appendChild(element("div", "hint keys", "Keys: \u2192 / \u2190 (or Page Down / Up) step, " +
                              "Home / End first / last, space plays and pauses."));
  }

  function inView(node) {
    var box = node.getBoundingClientRect(), frame = graph.getBoundingClientRect();
    return box.top >= frame.top && box.left >= frame.left &&
      box.bottom <= frame.top + graph.clientHeight && box.right <= frame.left + graph.clientWidth;
  }

  function show(k) {
    k = Math.max(0, Math.min(count, k | 0));  // 0: before the first step
    var merged = {};
    for (var i = 0; i <= k; i++) {
      var delta = data.cells[i];
      for (var id in delta) { merged[id] = delta[id]; }
    }
    Object.keys(merged).forEach(function (id) { applyLook(id, merged[id]); });
    Object.keys(fnBoxes).forEach(function (id) {
      fnBoxes[id].setAttribute("fill", data.fnFill[id]);
      fnBoxes[id].setAttribute("stroke", data.fnBorder[id]);
      fnBoxes[id].removeAttribute("stroke-width");
    });
    Object.keys(badges).forEach(function (n) {
      var colours = data.badges[n], done = Number(n) <= k;
      badges[n][0].setAttribute("fill", done ? colours[0] : "#ffffff");
      badges[n][0].setAttribute("stroke", done ? "none" : colours[0]);
      badges[n][1].setAttribute("fill", done ? colours[1] : colours[0]);
    });
    built.forEach(function (pair) {
      if (pair[1] > k) { pair[0].setAttribute("opacity", data.builtOpacity); } else { pair[0].removeAttribute("opacity"); }
    });
    var step = k ? data.steps[k - 1] : { call: null, caption: data.before };
    if (fnBoxes[step.call]) {
      fnBoxes[step.call].setAttribute("fill", data.currentFill);
      fnBoxes[step.call].setAttribute("stroke", data.currentBorder);
      fnBoxes[step.call].setAttribute("stroke-width", "3");  // heavy, so it survives greyscale
    }
    edges.forEach(function (pair) {
      if (pair[1] <= k) { pair[0].removeAttribute("visibility"); } else { pair[0].setAttribute("visibility", "hidden"); }
    });
    Array.prototype.forEach.call(nowRows, function (g) {
      if (k) { g.removeAttribute("visibility"); } else { g.setAttribute("visibility", "hidden"); }
    });
    if (caption) { caption.textContent = step.caption; }
    // before step 1 the root (its seed), then the step's function; only when out of view, so
    // that stepping through a part already on screen does not shake the graph
    var target = k ? fnBoxes[step.call] : document.getElementById("v" + data.root);
    if (!graph.classList.contains("fit") && target && target.scrollIntoView && !inView(target)) {
      target.scrollIntoView({ block: "center", inline: "nearest" });  // the step, and what feeds it
    }
    current = k;
    slider.value = String(k);
    pos.textContent = k ? "Step " + k + " / " + count : "Before step 1 / " + count;
    if (k) { describe(step); } else { before(); }
    root.setAttribute("data-step", String(k));
    try { history.replaceState(null, "", "#step=" + k); } catch (ignored) { /* a sandboxed iframe (notebook) has no URL to update */ }
  }

  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    playButton.textContent = "Play";
  }
  function play() {
    if (timer) { stop(); return; }
    if (current >= count) { show(0); }
    playButton.textContent = "Pause";
    timer = setInterval(function () {
      if (current >= count) { stop(); } else { show(current + 1); }
    }, data.interval);
  }

  document.getElementById("gt-first").addEventListener("click", function () { stop(); show(0); });
  document.getElementById("gt-prev").addEventListener("click", function () { stop(); show(current - 1); });
  document.getElementById("gt-next").addEventListener("click", function () { stop(); show(current + 1); });
  document.getElementById("gt-last").addEventListener("click", function () { stop(); show(count); });
  playButton.addEventListener("click", play);
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  var fitBox = document.getElementById("gt-fit");
  var fitChosen = false;  // ticked by hand: a new window size no longer changes it
  function setFit(fit) {
    fitBox.checked = fit;
    graph.classList.toggle("fit", fit);
    root.setAttribute("data-fit", fit ? "1" : "0");
    var svg = graph.querySelector("svg"), box = viewBox(), scale = fitScale();
    if (svg && box) {
      // not fitted: a graph too big to fit readably at the smallest readable size (as much of it
      // in view as can be read), else at its own size
      scale = scale !== null && scale < readableScale() ? readableScale() : 1;
      svg.style.width = fit ? "" : (box.width * PT_PX * scale).toFixed(1) + "px";
      svg.style.height = fit ? "" : (box.height * PT_PX * scale).toFixed(1) + "px";
    }
    if (!fit) { show(current); }  // scroll the step into view
  }
  fitBox.addEventListener("change", function (event) {
    fitChosen = true;
    setFit(event.target.checked);
  });

  // Fitting a big graph into the window shrinks its text below reading size (projected, ~6 px
  // at half size): then it is shown at a readable size instead, and stepping scrolls the
  // current function into view.
  var PT_PX = 4 / 3;  // the SVG's points in CSS pixels
  var MIN_TEXT_PX = 11;  // the graph's values no smaller than this when fitted
  function viewBox() {
    var svg = graph.querySelector("svg");
    var box = svg && svg.viewBox && svg.viewBox.baseVal;
    return box && box.width && box.height ? box : null;
  }
  function fitScale() {  // null: not measurable (no layout yet)
    var box = viewBox();
    if (!box || !graph.clientWidth || !graph.clientHeight) { return null; }
    return Math.min(graph.clientWidth / (box.width * PT_PX), graph.clientHeight / (box.height * PT_PX));
  }
  function readableScale() { return MIN_TEXT_PX / (data.fontPt * PT_PX); }
  function readableWhenFit() {
    var scale = fitScale();
    return scale === null || scale >= readableScale();
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }  // the browser's own (Alt+Left: back)
    // the slider moves itself with the arrow keys (and says so by its input event)
    if (event.target && event.target.tagName === "INPUT" && event.target.type !== "checkbox" &&
        event.key !== "Home" && event.key !== "End" && event.key !== " ") { return; }
    var keys = { ArrowLeft: -1, ArrowUp: -1, PageUp: -1, ArrowRight: 1, ArrowDown: 1, PageDown: 1 };
    if (event.key in keys) { stop(); show(current + keys[event.key]); }
    else if (event.key === "Home") { stop(); show(0); }
    else if (event.key === "End") { stop(); show(count); }
    else if (event.key === " ") { play(); }
    else { return; }
    event.preventDefault();
  });

  slider.max = String(count);
  graph.classList.add("fit");  // until the window is measured: no scrolling to a step yet
  var start = /step=(\d+)/.exec(location.hash || "");
  show(start ? Number(start[1]) : data.start);
  // measured with the panel filled: in a narrow window it sits below the graph and takes height
  setFit(readableWhenFit());
  window.addEventListener("resize", function () {
    var fit = readableWhenFit();
    if (!fitChosen && fit !== fitBox.checked) { setFit(fit); }
  });
  root.setAttribute("data-ready", "1");
}());
