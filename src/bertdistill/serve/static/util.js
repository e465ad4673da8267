// bertdistill serve: what every part of the page uses: element helpers, the API call and how numbers are written.
// Numbers follow the report: milliseconds and speed-ups with 3 significant figures ("86.8 ms", "0.205 ms", "166×").

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

// 3 significant figures without an exponent; whole numbers keep every digit (1234). Never "-0.00".
export function significant(x) {
  if (!Number.isFinite(x) || x === 0) return "0";
  const magnitude = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(3)))));
  return x.toFixed(Math.max(0, 2 - magnitude)).replace(/^-(?=0(\.0*)?$)/, "");
}

export const formatMs = (ms) => `${significant(ms)} ms`;
export const formatSpeedup = (x) => `${significant(x)}×`;
export const fixed = (value, scale, digits) => (value == null ? "–" : (value * scale).toFixed(digits));
export const count = (n) => n.toLocaleString("en-US");

// Two decimals, so that 99.97% does not read as 100%; below 0.01% and above 99.99% say so instead of rounding.
export function percent(p) {
  if (p <= 0) return "0%";
  if (p >= 1) return "100%";
  if (p < 0.0001) return "<0.01%";
  if (p > 0.9999) return ">99.99%";
  return `${(100 * p).toFixed(2)}%`;
}
