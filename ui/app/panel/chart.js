// A small line chart on <canvas>: a VM's CPU cap (stepped, dashed) and its host CPU use (solid) over the
// last minutes, 0–100 %. Colours come from the page's CSS variables so both colour schemes stay readable;
// the two lines also differ by dash pattern, and the canvas carries a text summary for screen readers.

const WINDOW_MS = 10 * 60 * 1000;

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * Draws `samples` ([{atMs, cap, cpuPercent}], oldest first) on `canvas`, ending at `nowMs`.
 * `opts.axes` draws grid lines and labels (the big chart); without it, a sparkline.
 */
export function drawChart(canvas, samples, nowMs, opts = {}) {
  const ratio = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || Number(canvas.getAttribute("width")) || 300;
  const cssH = canvas.clientHeight || Number(canvas.getAttribute("height")) || 80;
  if (canvas.width !== Math.round(cssW * ratio) || canvas.height !== Math.round(cssH * ratio)) {
    canvas.width = Math.round(cssW * ratio);
    canvas.height = Math.round(cssH * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);

  const fg = cssVar("--fg", "#1a1a1a"), muted = cssVar("--grid", "#bbb");
  const capColour = cssVar("--chart-cap", "#1e5fb4"), cpuColour = cssVar("--chart-cpu", "#b4531e");
  const left = opts.axes ? 40 : 2, right = opts.axes ? 10 : 2, top = opts.axes ? 10 : 3;
  const bottom = opts.axes ? 22 : 3;
  const w = cssW - left - right, h = cssH - top - bottom;
  const start = nowMs - WINDOW_MS;
  const x = (t) => left + ((t - start) / WINDOW_MS) * w;
  const y = (v) => top + h - (Math.max(0, Math.min(100, v)) / 100) * h;

  if (opts.axes) {
    ctx.font = "11px 'DejaVu Sans', sans-serif";
    ctx.fillStyle = fg;
    ctx.strokeStyle = muted;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [0, 25, 50, 75, 100]) {
      ctx.beginPath(); ctx.moveTo(left, Math.round(y(v)) + 0.5); ctx.lineTo(left + w, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(v + "%", left - 5, y(v));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let m = 10; m >= 0; m -= 2) {
      ctx.fillText(m === 0 ? "now" : `−${m} min`, x(nowMs - m * 60000), top + h + 5);
    }
  } else {
    ctx.strokeStyle = muted;
    ctx.strokeRect(0.5, 0.5, cssW - 1, cssH - 1);
  }

  const shown = (samples || []).filter((s) => s.atMs >= start - 2000);
  const line = (value, colour, dash, stepped) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = opts.axes ? 2 : 1.5;
    ctx.setLineDash(dash);
    ctx.beginPath();
    let prev = null;
    for (const s of shown) {
      const v = value(s);
      if (v == null || !isFinite(v)) { prev = null; continue; }
      const px = Math.max(left, x(s.atMs)), py = y(v);
      if (prev === null) ctx.moveTo(px, py);
      else if (stepped) { ctx.lineTo(px, prev); ctx.lineTo(px, py); }
      else ctx.lineTo(px, py);
      prev = py;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  line((s) => s.cpuPercent, cpuColour, [], false);
  line((s) => s.cap, capColour, [6, 3], true);

  const last = shown[shown.length - 1];
  const summary = last
    ? `CPU cap ${last.cap}%, CPU use ${Math.round(last.cpuPercent)}% (over the last ${Math.round((nowMs - shown[0].atMs) / 60000) || 1} min)`
    : "No samples yet";
  canvas.setAttribute("aria-label", (opts.label ? opts.label + ": " : "") + summary);
  if (!last && opts.axes) {
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("No samples yet: the chart fills while the VM runs", left + w / 2, top + h / 2);
  }
  return summary;
}
