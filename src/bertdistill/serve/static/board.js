// bertdistill serve: the run's leaderboard (a table that scrolls sideways on phones, with a cue while columns are
// hidden) and its quality-vs-latency chart (the server's SVG, laid out for the width it is shown at).

import { $, el, fixed, formatSpeedup, significant } from "./util.js";

// The whole leaderboard (served models or not), teacher rows first, then by the headline metric.
export function renderLeaderboard(rows, run) {
  const table = $("leaderboard");
  if (!rows.length) {
    table.replaceChildren(el("caption", "muted", "This run has no leaderboard yet: run `bertdistill evaluate`."));
    return;
  }
  const columns = [  // [heading, cell text]
    ["model", (r) => r.name],
    [run.metric, (r) => fixed(r.score, 100, 2)],
    ["agreement", (r) => fixed(r.agreement, 1, 3)],
    ["cosine", (r) => fixed(r.cosine, 1, 3)],
    ["p50 ms", (r) => (r.latency_p50_ms == null ? "–" : significant(r.latency_p50_ms))],
    ["p95 ms", (r) => (r.latency_p95_ms == null ? "–" : significant(r.latency_p95_ms))],
    ["speed-up", (r) => (r.speedup_vs_teacher == null ? "–" : formatSpeedup(r.speedup_vs_teacher))],
    ["texts/s", (r) => fixed(r.throughput_per_s, 1, 0)],
    ["size MB", (r) => fixed(r.size_bytes, 1e-6, 1)],
  ];
  const ordered = [...rows].sort((a, b) =>
    (a.role !== "teacher") - (b.role !== "teacher") || (b.score ?? -1) - (a.score ?? -1));
  const best = Math.max(...rows.filter((r) => r.role !== "teacher").map((r) => r.score ?? -1));
  const headRow = el("tr");
  columns.forEach(([name]) => headRow.append(el("th", "", name)));
  const body = el("tbody");
  ordered.forEach((r) => {
    const row = el("tr", r.served ? "" : "not-served");
    row.dataset.model = r.name;
    if (!r.served) row.title = "in the leaderboard, not served by this server";
    columns.forEach(([, value], i) => {
      const isBest = i === 1 && r.role !== "teacher" && r.score === best;
      row.append(el("td", isBest ? "best" : "", value(r)));
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
  $("board-wrap").addEventListener("scroll", updateScrollCue, { passive: true });
  updateScrollCue();
}

// While columns are out of view: a fade on the side they are on and a hint above the table.
export function updateScrollCue() {
  const wrap = $("board-wrap");
  const hidden = wrap.scrollWidth - wrap.clientWidth;
  $("board-frame").classList.toggle("more-right", wrap.scrollLeft < hidden - 1);
  $("board-frame").classList.toggle("more-left", wrap.scrollLeft > 1);
  $("board-hint").hidden = hidden <= 1;
}

let chartWidth = 0;

// The SVG comes from our own server, its names escaped there; it is parsed as XML (which runs nothing, and the
// page's CSP allows no inline script anyway) and drawn with presentation attributes only.
export async function renderChart() {
  const box = $("chart");
  const width = Math.max(240, Math.floor(box.clientWidth));
  if (!box.clientWidth || width === chartWidth) return;
  chartWidth = width;
  const response = await fetch(`/api/quality_vs_latency.svg?width=${width}`);
  if (!response.ok || width !== chartWidth) return;  // no leaderboard, or a newer width is on its way
  const svg = new DOMParser().parseFromString(await response.text(), "image/svg+xml").documentElement;
  box.replaceChildren(document.importNode(svg, true));
  linkHover(box);
  box.dataset.width = String(width);
}

// Pointing at a dot or at its legend entry highlights both.
function linkHover(chart) {
  chart.querySelectorAll("g[data-model]").forEach((group) => {
    const same = chart.querySelectorAll(`g[data-model="${CSS.escape(group.dataset.model)}"]`);
    group.addEventListener("mouseenter", () => same.forEach((node) => node.classList.add("hot")));
    group.addEventListener("mouseleave", () => same.forEach((node) => node.classList.remove("hot")));
  });
}
