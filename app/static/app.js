/* LingShift results page: fill the probe form from GET /v1/models, POST /v1/probe, and show per layer
   (rows) and per word (columns) the tag of base and of each fine-tuned variant side by side.
   Plain JavaScript, same-origin requests only; every server string goes in through textContent. */
(function () {
  "use strict";

  var form, sentence, modelSel, taskSel, submit, errorBox, statusLine, output, neuronsBox;
  var modelsInfo = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== null && attrs[k] !== undefined) { node.setAttribute(k, String(attrs[k])); }
      });
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  /* The problem+json "detail" of a failed response (or a plain description when there is none). */
  function problemMessage(resp) {
    var type = resp.headers.get("Content-Type") || "";
    if (type.indexOf("json") === -1) {
      return Promise.resolve("The server answered " + resp.status + " " + resp.statusText + ".");
    }
    return resp.json().then(function (body) {
      return (body && (body.detail || body.title)) || ("The server answered " + resp.status + ".");
    }, function () {
      return "The server answered " + resp.status + " " + resp.statusText + ".";
    });
  }

  function setOptions(select, items) {
    select.textContent = "";
    items.forEach(function (it) {
      var opt = el("option", { value: it.value }, it.label);
      if (it.disabled) { opt.disabled = true; }
      select.appendChild(opt);
    });
  }

  function loadModels() {
    return fetch("/v1/models", { headers: { Accept: "application/json" } }).then(function (resp) {
      if (!resp.ok) { return problemMessage(resp).then(function (m) { throw new Error(m); }); }
      return resp.json();
    }).then(function (info) {
      modelsInfo = info;
      var models = info.models.map(function (m) {
        var ready = m.variants.some(function (v) { return v.probe_ready; });
        return { value: m.name, label: ready ? m.name : m.name + " (not on this server)", disabled: !ready };
      });
      setOptions(modelSel, models);
      var firstReady = models.filter(function (m) { return !m.disabled; })[0];
      if (firstReady) { modelSel.value = firstReady.value; }
      setOptions(taskSel, info.tasks.map(function (t) { return { value: t, label: t }; }));
      modelSel.disabled = taskSel.disabled = false;
      submit.disabled = !firstReady;
      if (!firstReady) {
        showError("No model can be probed on this server yet: weights or trained probes are missing (run make repro).");
      }
    }).catch(function (err) {
      showError("Could not load the models: " + err.message);
    });
  }

  function layerCell(layer) {
    var th = el("th", { scope: "row", class: "layer" }, String(layer));
    if (layer === 0) { th.appendChild(el("small", null, " embeddings")); }
    return th;
  }

  /* Render a POST /v1/probe answer as the #probe-result table. Exposed as window.LingShift.render. */
  function render(data) {
    var variants = data.variants || [];
    var base = variants.filter(function (v) { return v.variant === "base"; })[0] || null;
    var byLayer = variants.map(function (v) {
      var m = {};
      v.layers.forEach(function (l) { m[l.layer] = l.tags; });
      return m;
    });
    var baseIdx = base ? variants.indexOf(base) : -1;

    var table = el("table", { id: "probe-result", class: "probe-result" });
    var cap = el("caption", null,
      "Predicted " + data.task + " tag per layer and word (" + data.model + "). " +
      (variants.length > 1 ? "Highlighted: a fine-tuned variant's tag differs from base's." : ""));
    table.appendChild(cap);

    var thead = el("thead");
    var row1 = el("tr");
    row1.appendChild(el("th", { scope: "col", rowspan: 2, class: "layer-head" }, "Layer"));
    data.words.forEach(function (w, i) {
      row1.appendChild(el("th", { scope: "colgroup", colspan: variants.length, class: "word", "data-word": i }, w));
    });
    var row2 = el("tr");
    data.words.forEach(function () {
      variants.forEach(function (v, j) {
        row2.appendChild(el("th", { scope: "col", class: "variant" + (j === 0 ? " group-start" : "") }, v.variant));
      });
    });
    thead.appendChild(row1);
    thead.appendChild(row2);
    table.appendChild(thead);

    var tbody = el("tbody");
    var nChanged = 0, nCompared = 0;
    data.layers.forEach(function (layer) {
      var tr = el("tr");
      tr.appendChild(layerCell(layer));
      data.words.forEach(function (w, i) {
        var baseTag = baseIdx >= 0 && byLayer[baseIdx][layer] ? byLayer[baseIdx][layer][i] : null;
        variants.forEach(function (v, j) {
          var tags = byLayer[j][layer];
          var t = tags ? tags[i] : null;
          var cls = ["tag"];
          if (j === 0) { cls.push("group-start"); }
          if (v.variant === "base") { cls.push("base"); }
          var changed = false;
          if (t && baseTag && v.variant !== "base") {
            nCompared += 1;
            if (t.tag !== baseTag.tag) { changed = true; nChanged += 1; cls.push("changed"); }
          }
          var td = el("td", {
            class: cls.join(" "),
            title: t ? v.variant + " · layer " + layer + " · " + w + ": " + t.tag + " (p = " +
              t.probability.toFixed(2) + ")" + (changed ? "; base: " + baseTag.tag : "") : null,
          }, t ? t.tag : "–");
          if (t && t.probability < 0.5) { td.classList.add("unsure"); }
          if (changed) { td.appendChild(el("span", { class: "visually-hidden" }, " (base: " + baseTag.tag + ")")); }
          tr.appendChild(td);
        });
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);

    output.textContent = "";
    output.appendChild(table);
    output.hidden = false;

    renderNeurons(variants);
    var summary = data.words.length + " words, " + data.layers.length + " layers, " + variants.length +
      " variant" + (variants.length === 1 ? "" : "s");
    if (nCompared) { summary += "; " + nChanged + " of " + nCompared + " fine-tuned tags differ from base"; }
    if (typeof data.elapsed_ms === "number") { summary += " (" + Math.round(data.elapsed_ms) + " ms)"; }
    statusLine.textContent = summary + ".";
    return table;
  }

  function renderNeurons(variants) {
    neuronsBox.textContent = "";
    var any = variants.some(function (v) { return v.neurons && v.neurons.length; });
    if (!any) { neuronsBox.hidden = true; return; }
    neuronsBox.appendChild(el("h3", null, "Top-ranked neurons (layer:unit, LCA ranking; whether the ranking is salient: claim C5)"));
    var dl = el("dl");
    variants.forEach(function (v) {
      if (!v.neurons || !v.neurons.length) { return; }
      dl.appendChild(el("dt", null, v.variant));
      dl.appendChild(el("dd", null, v.neurons.map(function (n) { return n.layer + ":" + n.unit; }).join(", ")));
    });
    neuronsBox.appendChild(dl);
    neuronsBox.hidden = false;
  }

  function clearResult() {
    output.textContent = "";
    output.hidden = true;
    neuronsBox.textContent = "";
    neuronsBox.hidden = true;
    statusLine.textContent = "";
  }

  function onSubmit(ev) {
    ev.preventDefault();
    clearError();
    clearResult();
    var text = sentence.value.trim();
    if (!text) {
      showError("Type a sentence to probe.");
      sentence.focus();
      return;
    }
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    statusLine.textContent = "Probing…";
    fetch("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ sentence: text, model: modelSel.value, task: taskSel.value, top_k: 5 }),
    }).then(function (resp) {
      if (!resp.ok) { return problemMessage(resp).then(function (m) { throw new Error(m); }); }
      return resp.json();
    }).then(function (data) {
      render(data);
    }).catch(function (err) {
      statusLine.textContent = "";
      showError(err instanceof TypeError ? "Could not reach the server: " + err.message : err.message);
    }).then(function () {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    });
  }

  function init() {
    form = document.getElementById("probe-form");
    if (!form) { return; }
    sentence = document.getElementById("sentence");
    modelSel = document.getElementById("model");
    taskSel = document.getElementById("task");
    submit = document.getElementById("probe-submit");
    errorBox = document.getElementById("probe-error");
    statusLine = document.getElementById("probe-status");
    output = document.getElementById("probe-output");
    neuronsBox = document.getElementById("probe-neurons");
    form.addEventListener("submit", onSubmit);
    loadModels();
  }

  window.LingShift = { render: render, models: function () { return modelsInfo; } };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
