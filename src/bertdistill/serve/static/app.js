// bertdistill serve: the page's behaviour, plain ES modules, no dependencies.
// Everything user- or data-provided is written with textContent, never as HTML.

import { renderChart, renderLeaderboard, updateScrollCue } from "./board.js";
import { $, api, count, el, formatMs, formatSpeedup, percent } from "./util.js";

const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f08c00", "#c2255c", "#5c7cfa"];
const state = { run: null, models: [], teacher: null };  // teacher: its prediction for the last text, with logits

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

function stat(name, value, className, meaning) {
  const item = el("div", className);
  item.title = meaning;
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
  const p50 = result.leaderboard_p50_ms, speedup = result.leaderboard_speedup_vs_teacher;
  const cosine = prediction.cosine_to_teacher, divergence = prediction.js_divergence_to_teacher;
  stats.append(
    stat("this text", formatMs(result.time_ms), "stat-time", "this request's time, measured in the server"),
    stat("p50", p50 == null ? "–" : formatMs(p50), "stat-p50",
         "the leaderboard's median single-text time over the test texts: the model's speed"),
    stat("speed-up", speedup == null ? "–" : formatSpeedup(speedup), "stat-speedup",
         "the teacher's p50 / this model's p50, from the leaderboard"),
    stat("cosine", cosine == null ? "–" : cosine.toFixed(3), "stat-cosine",
         "cosine similarity to the teacher's probabilities (1 = same direction)"),
    stat("JS div.", divergence == null ? "–" : divergence.toFixed(3), "stat-js",
         "Jensen-Shannon divergence from the teacher's probabilities, in bits (0 = the same distribution)"),
  );
  row.append(id, predicted, bars, stats);
  return row;
}

function renderResults(response) {
  // multilabel: each model's thresholds tuned on val, or 0.5 (what the API used) before the run is evaluated
  const half = state.run.task === "multilabel" ? state.run.label_names.map(() => 0.5) : null;
  const thresholds = Object.fromEntries(state.models.map((m) => [m.name, m.thresholds ?? half]));
  $("results").replaceChildren(...response.results.map((r) => renderModelRow(r, thresholds[r.name])));
  $("results-note").textContent = (state.run.task === "multilabel"
    ? "Per-label probabilities (independent, they need not sum to 1); ticks mark each model's threshold. "
    : "") + "“This text” is one request's time, measured in the server; p50 and speed-up are the " +
    "leaderboard's; cosine and JS divergence compare with the teacher.";
  showCut(response.results[0].predictions[0]);
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

// A text past the limit was predicted on its beginning only: say so where the results are.
function showCut(prediction) {
  const limit = state.run.max_text_chars;
  $("cut-notice").hidden = !prediction.truncated;
  $("cut-notice").textContent = prediction.truncated
    ? `Your text has ${count(prediction.text_chars)} characters: every model read only its first ` +
      `${count(limit)}.` : "";
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
}

// Characters as the server counts them (code points, not UTF-16 units), and a warning past the limit.
function updateCount() {
  const length = [...$("text").value].length;
  const limit = state.run ? state.run.max_text_chars : Infinity;
  $("char-count").textContent = `${count(length)} characters` +
    (length > limit ? `: only the first ${count(limit)} will be compared` : "");
  $("char-count").classList.toggle("over", length > limit);
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
  let resizing;
  window.addEventListener("resize", () => {
    updateScrollCue();
    clearTimeout(resizing);
    resizing = setTimeout(renderChart, 150);
  });
  try {
    const [run, listing, board] = await Promise.all([api("/api/run"), api("/api/models"), api("/api/leaderboard")]);
    state.run = run;
    state.models = listing.models;
    renderRun(run);
    renderLeaderboard(board, run);
    $("plot-card").hidden = board.length === 0;
    if (board.length) await renderChart();
    updateCount();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(`Could not load the run: ${error.message}`);
  }
}

init();
