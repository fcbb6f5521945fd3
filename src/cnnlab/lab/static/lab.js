// cnnlab lab: the page. Plain JavaScript, charts drawn on <canvas>, updates by server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = { class0: [232, 137, 28], class1: [27, 111, 181], train: "#1b6fb5", test: "#d2461a" };
const PALETTE = [
  [232, 137, 28],
  [27, 111, 181],
  [46, 160, 67],
  [203, 42, 110],
  [120, 80, 200],
  [20, 160, 170],
  [150, 110, 40],
  [90, 90, 90],
  [220, 200, 30],
  [240, 80, 60],
];

// ------------------------------------------------------------------ helpers
async function api(path, options = {}) {
  const init = { headers: {}, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(data && data.error ? data.error : String(data));
  return data;
}

function decode(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(digits);
  return String(value);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function mix(a, b, t) {
  return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t));
}

// value 0..255 -> orange (0) .. white (128) .. blue (255)
function diverging(v) {
  const t = v / 255;
  return t < 0.5 ? mix(COLORS.class0, [248, 248, 248], t * 2) : mix([248, 248, 248], COLORS.class1, (t - 0.5) * 2);
}

// a (size x size) byte field, row 0 = lowest y, onto a canvas (y up), colored by colorOf(index)
function drawField(canvas, size, colorOf) {
  const image = new ImageData(size, size);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const [r, g, b] = colorOf(row * size + col);
      const o = ((size - 1 - row) * size + col) * 4;
      image.data[o] = r;
      image.data[o + 1] = g;
      image.data[o + 2] = b;
      image.data[o + 3] = 255;
    }
  }
  const buffer = document.createElement("canvas");
  buffer.width = buffer.height = size;
  buffer.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(buffer, 0, 0, canvas.width, canvas.height);
}

// grey pixels (H x W, one channel of bytes, at offset) onto a new canvas scaled by `zoom`
function greyCanvas(bytes, height, width, offset = 0, zoom = 4, label = "", colored = null) {
  const canvas = el("canvas", {
    width: width * zoom,
    height: height * zoom,
    role: "img",
    "aria-label": label,
    title: label,
  });
  const image = new ImageData(width, height);
  for (let i = 0; i < height * width; i++) {
    const v = bytes[offset + i];
    const [r, g, b] = colored ? colored(v) : [v, v, v];
    image.data[i * 4] = r;
    image.data[i * 4 + 1] = g;
    image.data[i * 4 + 2] = b;
    image.data[i * 4 + 3] = 255;
  }
  const buffer = document.createElement("canvas");
  buffer.width = width;
  buffer.height = height;
  buffer.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(buffer, 0, 0, canvas.width, canvas.height);
  return canvas;
}

// line chart: series = [{values, color}], x = shared x values
function drawLines(canvas, x, series, { min = null, max = null } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width,
    H = canvas.height,
    left = 40,
    bottom = 18,
    top = 8,
    right = 8;
  ctx.clearRect(0, 0, W, H);
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  if (!all.length || !x.length) return;
  let lo = min ?? Math.min(...all),
    hi = max ?? Math.max(...all);
  if (hi - lo < 1e-9) {
    hi += 0.5;
    lo -= 0.5;
  }
  const x0 = x[0],
    x1 = Math.max(x[x.length - 1], x0 + 1e-9);
  const px = (v) => left + ((v - x0) / (x1 - x0)) * (W - left - right);
  const py = (v) => top + (1 - (v - lo) / (hi - lo)) * (H - top - bottom);
  ctx.strokeStyle = "#d9dde4";
  ctx.fillStyle = "#5d6676";
  ctx.font = "10px system-ui";
  ctx.lineWidth = 1;
  for (const v of [lo, (lo + hi) / 2, hi]) {
    ctx.beginPath();
    ctx.moveTo(left, py(v));
    ctx.lineTo(W - right, py(v));
    ctx.stroke();
    ctx.fillText(v.toPrecision(3), 2, py(v) + 3);
  }
  ctx.fillText(fmt(x0, 1), left, H - 4);
  ctx.fillText(fmt(x1, 1), W - right - 24, H - 4);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      if (started) ctx.lineTo(px(x[i]), py(v));
      else {
        ctx.moveTo(px(x[i]), py(v));
        started = true;
      }
    });
    ctx.stroke();
  }
}

function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

// ------------------------------------------------------------------ router
function route() {
  const path = location.pathname;
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  if (path === "/playground") {
    $("page-playground").hidden = false;
    Playground.open();
  } else if (path === "/run") {
    $("page-run").hidden = false;
    RunPage.open(new URLSearchParams(location.search).get("path"));
  } else if (path === "/study") {
    $("page-study").hidden = false;
    StudyPage.open(new URLSearchParams(location.search).get("path"));
  } else {
    $("page-home").hidden = false;
    Home.open();
  }
}

// ------------------------------------------------------------------ home
const Home = {
  async open() {
    document.title = "cnnlab lab";
    const data = await api("/api/entries");
    $("home-root").textContent = data.root;
    const body = $("home-entries");
    body.replaceChildren();
    for (const entry of data.entries) {
      const href = `/${entry.kind}?path=${encodeURIComponent(entry.path)}`;
      const accuracy =
        entry.test_accuracy ?? (entry.r2 !== null && entry.r2 !== undefined ? `R² ${fmt(entry.r2)}` : null);
      body.append(
        el(
          "tr",
          {},
          el("td", {}, el("a", { href }, entry.path)),
          el("td", { text: entry.kind === "run" ? `${entry.command} run` : "study" }),
          el("td", { text: entry.status || "" }),
          el("td", { text: fmt(accuracy) }),
          el("td", {
            text: new Date(entry.modified * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" }),
          }),
        ),
      );
    }
    $("home-empty").hidden = data.entries.length > 0;
  },
};

// ------------------------------------------------------------------ playground
const DEFAULTS = {
  function: "ring-band",
  samples: "2000",
  noise: "0",
  test_fraction: "0.2",
  layers: "16,16",
  activation: "tanh",
  dropout: "0",
  optimizer: "adam",
  learning_rate: "0.03",
  batch_size: "32",
  seed: "0",
};
const BUILTINS = ["ring-band", "circle", "xor", "spiral", "checkerboard", "sine"];

const Playground = {
  session: null,
  events: null,
  setup: null,
  last: null,
  opened: false,

  settingsFromUrl() {
    const query = new URLSearchParams(location.search);
    const settings = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) if (query.has(key)) settings[key] = query.get(key);
    return settings;
  },

  fillForm(s) {
    const builtin = BUILTINS.includes(s.function);
    $("pg-function").value = builtin ? s.function : "expression";
    $("pg-expression").value = builtin ? "" : s.function;
    $("pg-expression").disabled = builtin;
    const units = s.layers.split(",").filter((u) => u.trim() !== "");
    $("pg-layers").value = units.length;
    $("pg-units").value = units[0] || 8;
    $("pg-noise").value = s.noise;
    $("pg-test").value = s.test_fraction;
    $("pg-samples").value = s.samples;
    $("pg-activation").value = s.activation;
    $("pg-dropout").value = s.dropout;
    $("pg-optimizer").value = s.optimizer;
    $("pg-lr").value = s.learning_rate;
    $("pg-batch").value = s.batch_size;
    $("pg-seed").value = s.seed;
  },

  readForm() {
    const choice = $("pg-function").value;
    const count = Math.max(0, parseInt($("pg-layers").value || "0", 10));
    const units = $("pg-units").value || "8";
    const old = this.settingsFromUrl()
      .layers.split(",")
      .filter((u) => u.trim() !== "");
    const layers = old.length === count && old[0] === units ? old.join(",") : Array(count).fill(units).join(",");
    return {
      function: choice === "expression" ? $("pg-expression").value.trim() : choice,
      samples: $("pg-samples").value,
      noise: $("pg-noise").value,
      test_fraction: $("pg-test").value,
      layers,
      activation: $("pg-activation").value,
      dropout: $("pg-dropout").value,
      optimizer: $("pg-optimizer").value,
      learning_rate: $("pg-lr").value,
      batch_size: $("pg-batch").value,
      seed: $("pg-seed").value,
    };
  },

  open() {
    document.title = "Playground · cnnlab lab";
    if (!this.opened) {
      this.opened = true;
      const select = $("pg-function");
      for (const name of BUILTINS) select.append(el("option", { value: name, text: name }));
      select.append(el("option", { value: "expression", text: "expression…" }));
      for (const input of $("pg-form").querySelectorAll("input, select")) {
        input.addEventListener("change", () => this.changed(input));
      }
      $("pg-run").addEventListener("click", () => this.action("run"));
      $("pg-pause").addEventListener("click", () => this.action("pause"));
      $("pg-step").addEventListener("click", () => this.action("step"));
      $("pg-reset").addEventListener("click", () => this.action("reset"));
      $("pg-save").addEventListener("click", () => this.save());
      $("pg-code").addEventListener("click", () => this.exportCode());
      $("pg-show-test").addEventListener("change", () => this.last && this.draw(this.last));
    }
    const settings = this.settingsFromUrl();
    this.fillForm(settings);
    this.start(settings);
  },

  changed(input) {
    if (input.id === "pg-function") {
      $("pg-expression").disabled = input.value !== "expression";
      if (input.value === "expression") {
        $("pg-expression").focus();
        if (!$("pg-expression").value) return;
      }
    }
    const settings = this.readForm();
    if (!settings.function) return;
    const query = new URLSearchParams(settings);
    history.replaceState(null, "", `/playground?${query}`);
    this.start(settings);
  },

  async start(settings) {
    if (this.events) {
      this.events.close();
      this.events = null;
    }
    this.session = null;
    $("pg-status").textContent = "Sampling the points and building the network…";
    let created;
    try {
      created = await api("/api/playground", { json: { settings } });
    } catch (error) {
      showError($("pg-error"), error.message);
      $("pg-status").textContent = "Fix the settings to start.";
      return;
    }
    showError($("pg-error"), "");
    this.session = created.session;
    this.setup = created.setup;
    this.setup.truthBytes = decode(this.setup.truth);
    this.drawTruth();
    this.events = new EventSource(`/api/playground/${this.session}/events`);
    this.events.addEventListener("update", (event) => this.draw(JSON.parse(event.data)));
  },

  async action(name) {
    if (!this.session) return;
    try {
      await api(`/api/playground/${this.session}/${name}`, { method: "POST" });
    } catch (error) {
      showError($("pg-error"), error.message);
    }
  },

  async save() {
    if (!this.session) return;
    $("pg-saved").textContent = "Saving…";
    try {
      const saved = await api(`/api/playground/${this.session}/save`, { method: "POST" });
      $("pg-saved").replaceChildren(
        "Saved as run ",
        el("a", { href: `/run?path=${encodeURIComponent(saved.run)}` }, saved.run),
      );
    } catch (error) {
      $("pg-saved").textContent = `Not saved: ${error.message}`;
    }
  },

  async exportCode() {
    if (!this.session) return;
    $("pg-code-text").textContent = await api(`/api/playground/${this.session}/code`);
    $("pg-code-box").hidden = false;
  },

  colorOfClass(values, index) {
    const setup = this.setup;
    if (setup.kind === "regression") return diverging(values[index]);
    if (setup.classes.length <= 2) return diverging(values[index]);
    return PALETTE[values[index] % PALETTE.length];
  },

  drawTruth() {
    const s = this.setup;
    drawField($("pg-truth"), s.truth_grid, (i) => this.colorOfClass(s.truthBytes, i));
  },

  drawRegion(region) {
    const s = this.setup,
      canvas = $("pg-region"),
      values = decode(region.values);
    if (region.mode === "classes") {
      const confidence = decode(region.confidence);
      drawField(canvas, s.grid, (i) => mix([255, 255, 255], PALETTE[values[i] % PALETTE.length], confidence[i] / 255));
    } else {
      drawField(canvas, s.grid, (i) => diverging(values[i]));
    }
    if (!$("pg-show-test").checked) return;
    const ctx = canvas.getContext("2d");
    s.test_points.forEach(([u, v], k) => {
      const label = s.test_labels[k];
      const color =
        s.kind === "regression" || s.classes.length <= 2
          ? diverging(s.kind === "regression" ? label : label * 255)
          : PALETTE[label % PALETTE.length];
      ctx.fillStyle = `rgb(${color})`;
      ctx.strokeStyle = "#1d2330";
      ctx.lineWidth = 0.7;
      ctx.beginPath();
      ctx.arc(u * canvas.width, (1 - v) * canvas.height, 2.4, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    });
  },

  draw(update) {
    this.last = update;
    if (!this.setup) return;
    this.drawRegion(update.region);
    const h = update.history;
    drawLines(
      $("pg-loss"),
      h.epoch,
      [
        { values: h.loss, color: COLORS.train },
        { values: h.test_loss, color: COLORS.test },
      ],
      { min: 0 },
    );
    $("pg-accuracy").closest("figure").hidden = this.setup.kind === "regression";
    if (this.setup.kind !== "regression") {
      drawLines(
        $("pg-accuracy"),
        h.epoch,
        [
          { values: h.accuracy, color: COLORS.train },
          { values: h.test_accuracy, color: COLORS.test },
        ],
        { min: 0, max: 1 },
      );
    }
    this.drawNeurons(update.neurons);
    const accuracy =
      update.test_accuracy === null || update.test_accuracy === undefined
        ? ""
        : ` · test accuracy ${(100 * update.test_accuracy).toFixed(1)}%` +
          ` · train accuracy ${(100 * update.accuracy).toFixed(1)}%`;
    $("pg-status").textContent =
      `Epoch ${update.epoch} · step ${update.steps} · test loss ${fmt(update.test_loss)}` +
      ` · train loss ${fmt(update.loss)}${accuracy}${update.running ? " · training" : ""}`;
    $("pg-status").dataset.testAccuracy = update.test_accuracy ?? "";
    $("pg-status").dataset.epoch = update.epoch;
    if (update.error) showError($("pg-error"), update.error);
  },

  drawNeurons(layers) {
    const box = $("pg-neurons"),
      size = this.setup.neuron_grid;
    if (box.dataset.shape !== layers.map((l) => l.units).join(",")) {
      box.replaceChildren();
      for (const layer of layers) {
        const row = el(
          "div",
          { class: "neuron-layer" },
          el("span", { text: `${layer.layer} (${layer.units} neurons)` }),
        );
        for (let u = 0; u < layer.units; u++) {
          row.append(
            el("canvas", { width: size, height: size, role: "img", "aria-label": `${layer.layer} neuron ${u}` }),
          );
        }
        box.append(row);
      }
      box.dataset.shape = layers.map((l) => l.units).join(",");
    }
    layers.forEach((layer, k) => {
      const values = decode(layer.values);
      const canvases = box.children[k].querySelectorAll("canvas");
      canvases.forEach((canvas, u) => drawField(canvas, size, (i) => diverging(values[u * size * size + i])));
    });
  },
};

// ------------------------------------------------------------------ a run
const RunPage = {
  path: null,
  events: null,
  details: null,
  padReady: false,

  async open(path) {
    this.path = path;
    document.title = `${path} · cnnlab lab`;
    $("run-title").textContent = `Run ${path}`;
    showError($("run-error"), "");
    let details;
    try {
      details = await api(`/api/run?path=${encodeURIComponent(path)}`);
    } catch (error) {
      showError($("run-error"), error.message);
      for (const section of $("page-run").querySelectorAll("section")) section.hidden = true;
      return;
    }
    this.details = details;
    this.showSummary(details);
    this.showCurves(details.history);
    this.showConfusion(details);
    this.showPerClass(details);
    this.showArithmetic(details.arithmetic || []);
    $("run-arith-block").hidden = !(details.arithmetic || []).some((row) => row.kernel !== undefined);
    $("run-cm-help").textContent =
      "Rows: true class; columns: predicted." + (details.image_model ? " Click a cell to see its test images." : "");
    $("run-figures-block").hidden = !details.figures.length;
    $("run-figures").replaceChildren(
      ...details.figures.map((f) =>
        el(
          "figure",
          {},
          el("img", { src: `/api/file?path=${encodeURIComponent(f)}`, alt: f.split("/").pop(), loading: "lazy" }),
          el("figcaption", { text: f.split("/").pop() }),
        ),
      ),
    );
    $("run-model-summary").textContent = details.model_summary || "";
    $("run-try").hidden = !details.image_model;
    if (details.image_model) this.setupTry();
    if (this.events) this.events.close();
    this.events = new EventSource(`/api/run/events?path=${encodeURIComponent(path)}`);
    this.events.addEventListener("history", (event) => {
      const data = JSON.parse(event.data);
      this.showCurves(data.history);
      $("run-status").textContent =
        `Status: ${data.status}` + (data.history.epoch ? ` · ${data.history.epoch.length} epochs` : "");
      if (data.status === "finished" && this.details.status !== "finished") this.open(this.path);
    });
  },

  showSummary(d) {
    const table = $("run-summary");
    table.replaceChildren();
    const rows = [
      ["command", d.command],
      ["dataset", d.dataset],
      ...d.summary_rows,
      ...Object.entries(d.config).filter(([, v]) => v !== null && typeof v !== "object"),
    ];
    const seen = new Set();
    for (const [key, value] of rows)
      if (!seen.has(key) && seen.add(key))
        table.append(el("tr", {}, el("th", { text: key }), el("td", { text: fmt(value) })));
    $("run-report").replaceChildren();
    if (d.report)
      $("run-report").append(
        el("a", { href: `/api/file?path=${encodeURIComponent(d.path + "/report.html")}` }, "Open the full report"),
      );
  },

  showCurves(history) {
    const x = history.epoch || [];
    drawLines(
      $("run-loss"),
      x,
      [
        { values: history.loss || [], color: COLORS.train },
        { values: history.val_loss || [], color: COLORS.test },
      ],
      { min: 0 },
    );
    drawLines($("run-acc"), x, [
      { values: history.accuracy || [], color: COLORS.train },
      { values: history.val_accuracy || [], color: COLORS.test },
    ]);
  },

  showConfusion(d) {
    const table = $("run-cm"),
      matrix = d.confusion_matrix;
    table.replaceChildren();
    $("run-cell").replaceChildren();
    $("run-metrics-block").hidden = !matrix;
    if (!matrix) return;
    const names = d.class_names.length ? d.class_names : matrix.map((_, i) => String(i));
    table.append(el("tr", {}, el("th", { text: "" }), ...names.map((n) => el("th", { scope: "col", text: n }))));
    matrix.forEach((row, t) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const cells = row.map((count, p) => {
        const share = count / total;
        const color =
          t === p
            ? mix([255, 255, 255], COLORS.class1, share)
            : mix([255, 255, 255], [210, 70, 26], Math.min(1, share * 5));
        const button = el("button", {
          type: "button",
          style: `background: rgb(${color}); color: ${share > 0.6 ? "#fff" : "#1d2330"}`,
          "aria-label": `true ${names[t]}, predicted ${names[p]}: ${count} images`,
          text: String(count),
        });
        if (d.image_model) button.addEventListener("click", () => this.showCell(t, p, names, button));
        else button.disabled = true; // the test points of an approx run are no images
        return el("td", {}, button);
      });
      table.append(el("tr", {}, el("th", { scope: "row", text: names[t] }), ...cells));
    });
  },

  async showCell(t, p, names, button) {
    for (const b of $("run-cm").querySelectorAll("button.selected")) b.classList.remove("selected");
    button.classList.add("selected");
    const box = $("run-cell");
    box.replaceChildren(el("p", { class: "muted", text: "Loading the test images…" }));
    try {
      const cell = await api(`/api/run/cell?path=${encodeURIComponent(this.path)}&true=${t}&predicted=${p}`);
      const heading = el("h3", {
        id: "run-cell-title",
        text:
          `True ${names[t]}, predicted ${names[p]}: ${cell.count} test images` +
          (cell.count > cell.images.length ? ` (first ${cell.images.length} shown)` : ""),
      });
      const thumbs = el("div", { class: "thumbs", role: "list", "aria-labelledby": "run-cell-title" });
      for (const image of cell.images) {
        const figure = el(
          "figure",
          { role: "listitem", "data-index": image.index },
          el("img", { src: image.png, alt: `test image ${image.index}` }),
          el("figcaption", { text: `#${image.index}` }),
        );
        figure.addEventListener("click", () => {
          $("run-index").value = image.index;
          this.explain({ index: image.index });
        });
        thumbs.append(figure);
      }
      box.replaceChildren(heading, thumbs);
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
    }
  },

  showPerClass(d) {
    const table = $("run-per-class");
    table.replaceChildren();
    const rows = d.per_class;
    if (!rows || !rows.length) return;
    const keys = Object.keys(rows[0]);
    table.append(el("tr", {}, ...keys.map((k) => el("th", { text: k }))));
    for (const row of rows) table.append(el("tr", {}, ...keys.map((k) => el("td", { text: fmt(row[k], 3) }))));
  },

  showArithmetic(rows) {
    const table = $("run-arith");
    table.replaceChildren(
      el(
        "tr",
        {},
        ...["layer", "input", "kernel", "strides", "padding", "output", "how"].map((h) => el("th", { text: h })),
      ),
    );
    this.arithmetic = rows.map((row) => ({ ...row }));
    this.arithmetic.forEach((row, k) => {
      const tr = el("tr", { "data-layer": row.name });
      const editable = (value, field, label) => {
        if (row.kernel === undefined) return el("td", { text: "" });
        if (field === "padding") {
          const select = el(
            "select",
            { "aria-label": label },
            el("option", { text: "valid" }),
            el("option", { text: "same" }),
          );
          select.value = value;
          select.addEventListener("change", () => {
            row.padding = select.value;
            this.recompute();
          });
          return el("td", {}, select);
        }
        const input = el("input", { type: "number", min: "1", value: value[0], "aria-label": label });
        input.addEventListener("input", () => {
          const n = parseInt(input.value, 10) || 1;
          row[field] = [n, n];
          this.recompute();
        });
        return el("td", {}, input);
      };
      tr.append(
        el("td", { text: `${row.name} (${row.kind})` }),
        el("td", { class: "in" }),
        editable(row.kernel, "kernel", `${row.name} kernel`),
        editable(row.strides, "strides", `${row.name} strides`),
        editable(row.padding, "padding", `${row.name} padding`),
        el("td", { class: "out" }),
        el("td", { class: "how" }),
      );
      table.append(tr);
    });
    this.recompute();
  },

  // the shapes through the layers with this model's numbers, or the edited ones; flags what cannot fit
  recompute() {
    const rows = this.arithmetic;
    if (!rows.length) return;
    let shape = rows[0].input.slice();
    const trs = $("run-arith").querySelectorAll("tr[data-layer]");
    rows.forEach((row, k) => {
      const tr = trs[k];
      let out,
        how = "",
        bad = shape.some((n) => n < 1);
      if (row.kernel !== undefined && shape.length === 3) {
        const dims = [0, 1].map((a) =>
          row.padding === "same"
            ? Math.ceil(shape[a] / row.strides[a])
            : Math.floor((shape[a] - row.kernel[a]) / row.strides[a]) + 1,
        );
        how =
          row.padding === "same"
            ? `ceil(${shape[0]} / ${row.strides[0]}) = ${dims[0]}`
            : `floor((${shape[0]} − ${row.kernel[0]}) / ${row.strides[0]}) + 1 = ${dims[0]}`;
        if (dims.some((n) => n < 1) || (row.padding !== "same" && row.kernel.some((kk, a) => kk > shape[a]))) {
          bad = true;
          how += ` — the ${row.kernel[0]}×${row.kernel[1]} window does not fit in ${shape[0]}×${shape[1]}`;
        }
        out = [...dims, row.filters || shape[2]];
      } else if (row.kind === "Flatten") {
        out = [shape.reduce((a, b) => a * b, 1)];
      } else {
        out = row.output.length === shape.length && row.kind !== "Dense" ? shape.slice() : row.output.slice();
      }
      tr.querySelector(".in").textContent = shape.join("×");
      tr.querySelector(".out").textContent = out.join("×");
      tr.querySelector(".how").textContent = how;
      tr.classList.toggle("bad", bad);
      shape = out;
    });
  },

  setupTry() {
    if (this.padReady) return;
    this.padReady = true;
    const pad = $("run-pad"),
      ctx = pad.getContext("2d");
    const clear = () => {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, pad.width, pad.height);
    };
    clear();
    let drawing = false;
    const point = (event) => {
      const box = pad.getBoundingClientRect();
      return [
        ((event.clientX - box.left) * pad.width) / box.width,
        ((event.clientY - box.top) * pad.height) / box.height,
      ];
    };
    pad.addEventListener("pointerdown", (event) => {
      drawing = true;
      pad.setPointerCapture(event.pointerId);
      const [x, y] = point(event);
      ctx.beginPath();
      ctx.moveTo(x, y);
    });
    pad.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      const [x, y] = point(event);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 18;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineTo(x, y);
      ctx.stroke();
    });
    const end = () => {
      if (drawing) {
        drawing = false;
        this.explain({ image: pad.toDataURL("image/png"), source: "draw" });
      }
    };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", () => {
      drawing = false;
    });
    $("run-clear").addEventListener("click", clear);
    $("run-predict-drawing").addEventListener("click", () =>
      this.explain({ image: pad.toDataURL("image/png"), source: "draw" }),
    );
    $("run-show").addEventListener("click", () => this.explain({ index: parseInt($("run-index").value || "0", 10) }));
    $("run-upload").addEventListener("change", () => {
      const file = $("run-upload").files[0];
      if (!file) return;
      const reader = new FileReader();
      reader.onload = () => this.explain({ image: reader.result, source: "upload" });
      reader.readAsDataURL(file);
    });
    pad.dataset.ready = "1";
  },

  async explain(body) {
    const box = $("run-prediction");
    box.replaceChildren(el("p", { class: "muted", text: "Computing…" }));
    let result;
    try {
      result = await api(`/api/run/explain?path=${encodeURIComponent(this.path)}`, { json: body });
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
      return;
    }
    const [h, w, c] = result.input.shape;
    const input = decode(result.input.values);
    const grey = c === 1 ? input : Uint8Array.from({ length: h * w }, (_, i) => input[i * c]);
    const bars = el("div", { class: "bars", role: "list", "aria-label": "Class probabilities" });
    result.probabilities.forEach((p, k) => {
      bars.append(
        el("span", { text: result.class_names[k] }),
        el("div", {
          class: `bar${k === result.predicted_index ? " top" : ""}`,
          style: `width: ${Math.max(1, p * 100)}%`,
          role: "listitem",
          "aria-label": `${result.class_names[k]}: ${(100 * p).toFixed(1)}%`,
        }),
        el("span", { text: `${(100 * p).toFixed(1)}%` }),
      );
    });
    const sal = decode(result.saliency.values);
    box.replaceChildren(
      el(
        "p",
        { id: "run-predicted" },
        "Prediction: ",
        el("span", { class: "prediction", "data-class": result.predicted, text: result.predicted }),
        result.true !== null ? ` (true ${result.true})` : "",
        el("span", { class: "muted", text: ` · ${result.milliseconds} ms` }),
      ),
      el(
        "div",
        { class: "fields" },
        el(
          "figure",
          {},
          greyCanvas(grey, h, w, 0, Math.max(2, Math.floor(112 / w)), "Model input"),
          el("figcaption", { text: "Input as the model sees it" }),
        ),
        el(
          "figure",
          {},
          greyCanvas(sal, h, w, 0, Math.max(2, Math.floor(112 / w)), "Saliency map", (v) =>
            mix([255, 255, 255], [210, 70, 26], v / 255),
          ),
          el("figcaption", { text: "Saliency |∂score/∂pixel|" }),
        ),
      ),
      bars,
    );
    this.showMaps(result);
  },

  showMaps(result) {
    const box = $("run-explain");
    box.replaceChildren();
    const maps = el("div", { class: "maps", "aria-label": "Feature maps", role: "group" });
    if (result.filters) {
      const [kh, kw, count] = result.filters.shape,
        values = decode(result.filters.values);
      const tiles = el("div", { class: "tiles" });
      for (let f = 0; f < count; f++)
        tiles.append(greyCanvas(values, kh, kw, f * kh * kw, 6, `${result.filters.layer} filter ${f}`, diverging));
      maps.append(
        el("h3", { text: `First layer's filters (${result.filters.layer}, ${count} of ${kh}×${kw})` }),
        tiles,
      );
    }
    for (const layer of result.layers) {
      const [h, w, c] = layer.shape,
        values = decode(layer.values);
      const zoom = Math.max(1, Math.min(6, Math.floor(60 / w)));
      const tiles = el("div", { class: "tiles", "data-layer": layer.name });
      for (let k = 0; k < c; k++) tiles.append(greyCanvas(values, h, w, k * h * w, zoom, `${layer.name} channel ${k}`));
      maps.append(el("h3", { text: `${layer.name} (${layer.kind}) ${h}×${w}×${c}` }), tiles);
    }
    box.append(maps);
  },
};

// ------------------------------------------------------------------ a study
const StudyPage = {
  path: null,
  events: null,
  data: null,
  sortKey: "position",
  sortUp: true,
  opened: false,

  open(path) {
    this.path = path;
    document.title = `${path} · cnnlab lab`;
    $("study-title").textContent = `Study ${path}`;
    if (!this.opened) {
      this.opened = true;
      $("study-filter").addEventListener("input", () => this.render());
      $("study-axis").addEventListener("change", () => this.plot());
      $("study-cost").addEventListener("change", () => this.plotPareto());
    }
    if (this.events) this.events.close();
    this.events = new EventSource(`/api/study/events?path=${encodeURIComponent(path)}`);
    this.events.addEventListener("study", (event) => {
      this.data = JSON.parse(event.data);
      this.render();
    });
    this.events.onerror = async () => {
      try {
        await api(`/api/study?path=${encodeURIComponent(path)}`);
      } catch (error) {
        showError($("study-error"), error.message);
        this.events.close();
      }
    };
  },

  columns() {
    return ["position", "status", ...this.data.axes, "seed", "test_accuracy", "test_loss", "params", "seconds"];
  },

  value(trial, key) {
    return key in trial.configuration ? trial.configuration[key] : trial[key];
  },

  render() {
    const data = this.data;
    const counts = {};
    for (const t of data.trials) counts[t.status] = (counts[t.status] || 0) + 1;
    $("study-status").textContent =
      `${data.name}: ${data.trials.length} trials · ` +
      Object.entries(counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ");
    const select = $("study-axis");
    if (select.options.length !== data.axes.length) {
      select.replaceChildren(...data.axes.map((a) => el("option", { value: a, text: a })));
    }
    const filter = $("study-filter").value.trim().toLowerCase();
    const columns = this.columns();
    let trials = data.trials.filter(
      (t) =>
        !filter ||
        columns.some((c) =>
          String(this.value(t, c) ?? "")
            .toLowerCase()
            .includes(filter),
        ),
    );
    const key = this.sortKey,
      sign = this.sortUp ? 1 : -1;
    trials = trials.slice().sort((a, b) => {
      const x = this.value(a, key),
        y = this.value(b, key);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * sign;
    });
    const table = $("study-table");
    const header = el(
      "tr",
      {},
      ...columns.map((c) => {
        const arrow = c === key ? (this.sortUp ? " ▲" : " ▼") : "";
        const button = el("button", { type: "button", text: c + arrow, "aria-label": `Sort by ${c}` });
        button.addEventListener("click", () => {
          this.sortUp = this.sortKey === c ? !this.sortUp : true;
          this.sortKey = c;
          this.render();
        });
        return el("th", { "aria-sort": c === key ? (this.sortUp ? "ascending" : "descending") : "none" }, button);
      }),
    );
    table.replaceChildren(
      header,
      ...trials.map((t) =>
        el(
          "tr",
          { "data-key": t.key },
          ...columns.map((c, k) => {
            if (k > 0 || !t.history) return el("td", { text: fmt(this.value(t, c)) });
            const button = el("button", {
              type: "button",
              class: "secondary",
              text: String(t.position),
              "aria-label": `Curves of trial ${t.position}`,
            });
            button.addEventListener("click", () => this.showTrial(t));
            return el("td", {}, button);
          }),
        ),
      ),
    );
    this.plot();
    this.plotPareto();
    this.plotParallel();
  },

  showTrial(trial) {
    $("study-trial").hidden = false;
    const settings = Object.entries(trial.configuration)
      .map(([k, v]) => `${k} = ${v}`)
      .join(", ");
    $("study-trial-h").textContent =
      `Trial ${trial.position} (${settings}, seed ${trial.seed}): test accuracy ${fmt(trial.test_accuracy)}`;
    const h = trial.history || {};
    const x = (h.loss || []).map((_, i) => i + 1);
    drawLines(
      $("study-loss"),
      x,
      [
        { values: h.loss || [], color: COLORS.train },
        { values: h.val_loss || [], color: COLORS.test },
      ],
      { min: 0 },
    );
    drawLines($("study-acc"), x, [
      { values: h.accuracy || [], color: COLORS.train },
      { values: h.val_accuracy || [], color: COLORS.test },
    ]);
  },

  finished() {
    return this.data.trials.filter((t) => t.test_accuracy !== null && t.test_accuracy !== undefined);
  },

  plotPareto() {
    const canvas = $("study-pareto"),
      ctx = canvas.getContext("2d"),
      cost = $("study-cost").value;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const done = this.finished().filter((t) => t[cost] !== null && t[cost] !== undefined);
    if (!done.length) return;
    const W = canvas.width,
      H = canvas.height,
      left = 44,
      bottom = 24;
    const xs = done.map((t) => t[cost]),
      ys = done.map((t) => t.test_accuracy);
    let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    if (x1 - x0 < 1e-9) {
      x0 -= 1;
      x1 += 1;
    }
    if (y1 - y0 < 0.01) {
      y0 -= 0.01;
      y1 += 0.01;
    }
    const px = (v) => left + ((v - x0) / (x1 - x0)) * (W - left - 16) + 4;
    const py = (v) => 8 + (1 - (v - y0) / (y1 - y0)) * (H - 16 - bottom);
    ctx.fillStyle = "#5d6676";
    ctx.font = "11px system-ui";
    ctx.fillText(y0.toFixed(3), 2, py(y0) + 4);
    ctx.fillText(y1.toFixed(3), 2, py(y1) + 4);
    ctx.fillText(fmt(x0, 1), left, H - 6);
    ctx.fillText(`${fmt(x1, 1)} ${cost}`, W - 90, H - 6);
    const front = done
      .slice()
      .sort((a, b) => a[cost] - b[cost] || b.test_accuracy - a.test_accuracy)
      .filter((t, i, sorted) => sorted.slice(0, i).every((o) => o.test_accuracy < t.test_accuracy));
    ctx.strokeStyle = "#d2461a";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    front.forEach((t, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, px(t[cost]), py(t.test_accuracy)));
    ctx.stroke();
    for (const t of done) {
      ctx.fillStyle = front.includes(t) ? "#d2461a" : "rgba(27, 111, 181, 0.75)";
      ctx.beginPath();
      ctx.arc(px(t[cost]), py(t.test_accuracy), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  },

  plotParallel() {
    const canvas = $("study-parallel"),
      ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const done = this.finished(),
      axes = [...this.data.axes, "test_accuracy"];
    if (!done.length || axes.length < 2) return;
    const W = canvas.width,
      H = canvas.height,
      top = 24,
      bottom = 20;
    const position = axes.map((axis) => {
      // each axis: value -> 0..1 (numbers by value, others by order)
      const values = [...new Set(done.map((t) => this.value(t, axis)))];
      if (values.every((v) => typeof v === "number")) {
        const lo = Math.min(...values),
          hi = Math.max(...values);
        return (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
      }
      const names = values.map(String).sort();
      return (v) => (names.length > 1 ? names.indexOf(String(v)) / (names.length - 1) : 0.5);
    });
    const x = (k) => 40 + (k * (W - 80)) / (axes.length - 1);
    const y = (f) => top + (1 - f) * (H - top - bottom);
    const accuracies = done.map((t) => t.test_accuracy),
      lo = Math.min(...accuracies),
      hi = Math.max(...accuracies);
    for (const t of done) {
      const shade = hi > lo ? (t.test_accuracy - lo) / (hi - lo) : 1;
      ctx.strokeStyle = `rgba(27, 111, 181, ${0.15 + 0.85 * shade})`;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      axes.forEach((axis, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, x(k), y(position[k](this.value(t, axis)))));
      ctx.stroke();
    }
    ctx.fillStyle = "#1d2330";
    ctx.font = "11px system-ui";
    ctx.textAlign = "center";
    axes.forEach((axis, k) => {
      ctx.strokeStyle = "#8a93a3";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x(k), top);
      ctx.lineTo(x(k), H - bottom);
      ctx.stroke();
      ctx.fillText(axis, x(k), 12);
      const values = [...new Set(done.map((t) => this.value(t, axis)))];
      for (const v of values.slice(0, 12)) ctx.fillText(fmt(v, 3), x(k), y(position[k](v)) + 4);
    });
    ctx.textAlign = "start";
  },

  plot() {
    const canvas = $("study-plot"),
      ctx = canvas.getContext("2d"),
      axis = $("study-axis").value;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.data || !axis) return;
    const done = this.data.trials.filter((t) => t.test_accuracy !== null && t.test_accuracy !== undefined);
    const values = [...new Set(done.map((t) => String(t.configuration[axis])))];
    const numeric = values.every((v) => v !== "" && !Number.isNaN(Number(v)));
    values.sort((a, b) => (numeric ? Number(a) - Number(b) : a.localeCompare(b)));
    const left = 44,
      bottom = 24,
      W = canvas.width,
      H = canvas.height;
    const acc = done.map((t) => t.test_accuracy);
    let lo = Math.min(...acc, 1),
      hi = Math.max(...acc, 0);
    if (hi - lo < 0.01) {
      lo -= 0.01;
      hi += 0.01;
    }
    const py = (v) => 8 + (1 - (v - lo) / (hi - lo)) * (H - 8 - bottom);
    const px = (v) => left + ((values.indexOf(String(v)) + 0.5) / Math.max(values.length, 1)) * (W - left - 8);
    ctx.fillStyle = "#5d6676";
    ctx.font = "11px system-ui";
    for (const v of [lo, hi]) ctx.fillText(v.toFixed(3), 2, py(v) + 4);
    values.forEach((v) => ctx.fillText(v.length > 14 ? v.slice(0, 13) + "…" : v, px(v) - 12, H - 6));
    ctx.fillStyle = "rgba(27, 111, 181, 0.75)";
    for (const t of done) {
      ctx.beginPath();
      ctx.arc(px(t.configuration[axis]) + (t.repeat || 0) * 5, py(t.test_accuracy), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  },
};

window.addEventListener("DOMContentLoaded", route);
