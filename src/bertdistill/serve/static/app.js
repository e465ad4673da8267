// bertdistill serve: the page's behaviour, plain ES module, no dependencies.
// Everything user- or data-provided is written with textContent, never as HTML.

const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f08c00", "#c2255c", "#5c7cfa"];
const state = { run: null, models: [], teacher: null };  // teacher: its prediction for the last text, with logits
const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

const formatMs = (ms) => (ms < 1 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + " ms";
const formatSpeedup = (x) => (x >= 10 ? x.toFixed(0) : x.toFixed(1)) + "×";
const percent = (p) => (100 * p).toFixed(p >= 0.995 || p < 0.005 ? 0 : 1) + "%";

// The teacher's distribution at temperature T: softmax(z / T) (multiclass) or sigmoid(z / T) per label.
function soften(logits, t, task) {
  const scaled = logits.map((z) => z / t);
  if (task === "multilabel") return scaled.map((z) => 1 / (1 + Math.exp(-z)));
  const top = Math.max(...scaled);
  const exps = scaled.map((z) => Math.exp(z - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

// One bar per label; `on` marks predicted labels, `thresholds` draws a tick (multilabel), `ghost` a T = 1 shadow.
function renderBars(container, probabilities, { on = [], thresholds = null, ghost = null } = {}) {
  container.replaceChildren();
  state.run.label_names.forEach((name, i) => {
    const row = el("div", "bar" + (on.includes(name) ? " on" : ""));
    row.dataset.label = name;
    const label = el("span", "bar-label", name);
    label.title = name;
    const track = el("span", "track");
    const color = PALETTE[i % PALETTE.length];
    if (ghost) {
      const shadow = el("span", "ghost");
      shadow.style.width = `${100 * ghost[i]}%`;
      shadow.style.background = color;
      track.append(shadow);
    }
    const fill = el("span", "fill");
    fill.style.width = `${100 * probabilities[i]}%`;
    fill.style.background = color;
    track.append(fill);
    if (thresholds) {
      const tick = el("span", "tick");
      tick.style.left = `${100 * thresholds[i]}%`;
      tick.title = `threshold ${thresholds[i].toFixed(2)}`;
      track.append(tick);
    }
    row.append(label, track, el("span", "bar-value", percent(probabilities[i])));
    container.append(row);
  });
}

function stat(name, value, className) {
  const item = el("div", className);
  item.append(el("dt", "", name), el("dd", "", value));
  return item;
}

function renderModelRow(result, thresholds) {
  const prediction = result.predictions[0];
  const row = el("article", "model-row");
  row.dataset.model = result.name;
  row.dataset.role = result.role;
  const id = el("div", "model-id");
  id.append(el("span", "model-name", result.name), el("span", `badge role-${result.role}`, result.role));
  const predicted = el("div", prediction.labels.length > 2 ? "prediction many" : "prediction");
  if (prediction.labels.length === 0) predicted.append(el("span", "label-pill label-none", "no label"));
  prediction.labels.forEach((name) => predicted.append(el("span", "label-pill", name)));
  if (result.role !== "teacher" && prediction.agreement_with_teacher !== null) {
    const agrees = prediction.agreement_with_teacher === 1;
    const text = agrees ? "✓ agrees" : state.run.task === "multilabel"
      ? `${Math.round(100 * prediction.agreement_with_teacher)}% of labels agree` : "✗ differs";
    predicted.append(el("span", `agree ${agrees ? "yes" : "no"}`, text));
  }
  const bars = el("div", "bars");
  renderBars(bars, prediction.probabilities, { on: prediction.labels, thresholds });
  const stats = el("dl", "stats");
  stats.append(
    stat("time", formatMs(result.time_ms), "stat-time"),
    stat("speed-up", result.speedup_vs_teacher === null ? "–" : formatSpeedup(result.speedup_vs_teacher), "stat-speedup"),
    stat("cosine", prediction.cosine_to_teacher === null ? "–" : prediction.cosine_to_teacher.toFixed(3), "stat-cosine"),
  );
  row.append(id, predicted, bars, stats);
  return row;
}

function renderResults(response) {
  // multilabel: each model's thresholds tuned on val, or 0.5 (what the API used) before the run is evaluated
  const half = state.run.task === "multilabel" ? state.run.label_names.map(() => 0.5) : null;
  const thresholds = Object.fromEntries(state.models.map((m) => [m.name, m.thresholds ?? half]));
  $("results").replaceChildren(...response.results.map((r) => renderModelRow(r, thresholds[r.name])));
  $("results-note").textContent = state.run.task === "multilabel"
    ? "Per-label probabilities (independent, they need not sum to 1); ticks mark each model's threshold."
    : "Time is measured in the server for this text; speed-up and cosine similarity are against the teacher.";
  $("results-card").hidden = false;
  const teacher = response.results.find((r) => r.name === "teacher");
  state.teacher = teacher && teacher.predictions[0].logits ? teacher.predictions[0] : null;
  $("dark-card").hidden = !state.teacher;
  renderSoftened();
}

// The slider is logarithmic: position x in [0, 4.33] is T = 2^x, from 1 to 20.
const temperature = () => 2 ** Number($("temperature").value);

function renderSoftened() {
  if (!state.teacher) return;
  const t = temperature();
  const softened = soften(state.teacher.logits, t, state.run.task);
  renderBars($("softened"), softened, { on: state.teacher.labels, ghost: state.teacher.probabilities });
  $("t-value").textContent = `T = ${t.toFixed(1)}`;
  $("t-legend").textContent = t.toFixed(1);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function predict(text) {
  if (!text.trim()) return showError("Type a text first: it is empty.");
  showError("");
  $("submit").disabled = true;
  $("submit").textContent = "Running…";
  try {
    renderResults(await api("/api/predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    }));
  } catch (error) {
    showError(error.message);
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "Compare models";
  }
}

function renderRun(run) {
  const meta = $("run-meta");
  meta.replaceChildren();
  const parts = [["run", run.name], ["data", run.dataset], ["task", run.task],
                 ["labels", run.label_names.join(", ")]];
  parts.forEach(([key, value], i) => {
    if (i) meta.append(" · ");
    meta.append(`${key} `, el("b", "", value));
  });
  $("text").maxLength = run.max_text_chars;
  $("dark-note").textContent = run.task === "multilabel"
    ? "Students learn from the teacher's logits z softened per label: sigmoid(z / T). Raise T to flatten them."
    : "Students learn from the teacher's logits z softened as softmax(z / T): a higher T shows how the teacher " +
      "ranks the classes it did not pick.";
  const examples = $("examples");
  examples.replaceChildren(...run.examples.map((example) => {
    const chip = el("button", "chip");
    chip.type = "button";
    chip.title = example.text;
    chip.append(el("span", "chip-text", example.text.trim()),
                el("span", "chip-gold", example.gold.length ? example.gold.join(", ") : "no label"));
    chip.addEventListener("click", () => {
      $("text").value = example.text;
      updateCount();
      predict(example.text);
    });
    return chip;
  }));
  $("examples-block").hidden = run.examples.length === 0;
  if (run.has_plot) {
    $("plot").src = "/api/quality_vs_latency.png";
    $("plot-card").hidden = false;
  }
}

// The run's whole leaderboard (served models or not), teacher rows first, then by the headline metric.
function renderLeaderboard(rows, run) {
  const table = $("leaderboard");
  if (!rows.length) {
    table.replaceChildren(el("caption", "muted", "This run has no leaderboard yet: run `bertdistill evaluate`."));
    return;
  }
  // [heading, cell text, class]; "secondary" columns are hidden on phones
  const columns = [
    ["model", (r) => r.name, ""],
    [run.metric, (r) => fixed(r.score, 100, 2), ""],
    ["agreement", (r) => fixed(r.agreement, 1, 3), "secondary"],
    ["cosine", (r) => fixed(r.cosine, 1, 3), ""],
    ["p50 ms", (r) => fixed(r.latency_p50_ms, 1, 2), ""],
    ["speed-up", (r) => (r.speedup_vs_teacher == null ? "–" : formatSpeedup(r.speedup_vs_teacher)), ""],
    ["texts/s", (r) => fixed(r.throughput_per_s, 1, 0), "secondary"],
    ["size MB", (r) => fixed(r.size_bytes, 1e-6, 1), "secondary"],
  ];
  const ordered = [...rows].sort((a, b) =>
    (a.role !== "teacher") - (b.role !== "teacher") || (b.score ?? -1) - (a.score ?? -1));
  const best = Math.max(...rows.filter((r) => r.role !== "teacher").map((r) => r.score ?? -1));
  const headRow = el("tr");
  columns.forEach(([name, , className]) => headRow.append(el("th", className, name)));
  const body = el("tbody");
  ordered.forEach((r) => {
    const row = el("tr", r.served ? "" : "not-served");
    row.dataset.model = r.name;
    if (!r.served) row.title = "in the leaderboard, not served by this server";
    columns.forEach(([, value, className], i) => {
      const isBest = i === 1 && r.role !== "teacher" && r.score === best;
      row.append(el("td", `${className}${isBest ? " best" : ""}`, value(r)));
    });
    row.firstChild.append(el("span", `badge role-${r.role}`, r.role));
    body.append(row);
  });
  const head = el("thead");
  head.append(headRow);
  table.replaceChildren(head, body);
  const env = run.environment;
  $("board-note").textContent = `held-out test split, ${run.metric} × 100` +
    (env ? ` · latency measured ${env.date} on ${env.machine}, ${env.threads} thread(s)` : "");
}

const fixed = (value, scale, digits) => (value == null ? "–" : (value * scale).toFixed(digits));

function updateCount() {
  const count = $("text").value.length;
  $("char-count").textContent = `${count} / ${state.run ? state.run.max_text_chars : "…"} characters`;
}

async function init() {
  $("predict-form").addEventListener("submit", (event) => {
    event.preventDefault();
    predict($("text").value);
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      predict($("text").value);
    }
  });
  $("text").addEventListener("input", updateCount);
  $("temperature").addEventListener("input", renderSoftened);
  try {
    const [run, listing, board] = await Promise.all([api("/api/run"), api("/api/models"), api("/api/leaderboard")]);
    state.run = run;
    state.models = listing.models;
    renderRun(run);
    renderLeaderboard(board, run);
    updateCount();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(`Could not load the run: ${error.message}`);
  }
}

init();
