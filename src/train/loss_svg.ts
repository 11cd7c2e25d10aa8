/**
 * A loss curve as a self-contained SVG (no libraries): training loss as a line, evaluation loss as
 * dots, labelled axes with rounded ticks. Written as `loss.svg` next to the adapter.
 *
 * @example
 * ```ts
 * import { lossCurveSvg } from "./loss_svg.ts";
 * const svg = lossCurveSvg([{ step: 1, loss: 3 }, { step: 2, loss: 2.5 }], { title: "demo" });
 * ```
 */
import type { HistoryPoint } from "./run_state.ts";

/** Options of {@link lossCurveSvg}. */
export interface LossSvgOptions {
  title?: string;
  width?: number;
  height?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function fmt(v: number): string {
  return Number(v.toPrecision(4)).toString();
}

/** The SVG document for `history` (points with a non-finite loss are skipped). */
export function lossCurveSvg(history: readonly HistoryPoint[], o: LossSvgOptions = {}): string {
  const W = o.width ?? 640;
  const H = o.height ?? 360;
  const m = { left: 56, right: 16, top: 32, bottom: 40 };
  const train = history.filter((p) => Number.isFinite(p.loss));
  const evals = history.filter((p) => p.evalLoss !== undefined && Number.isFinite(p.evalLoss));
  const values = [...train.map((p) => p.loss), ...evals.map((p) => p.evalLoss!)];
  const steps = [...train, ...evals].map((p) => p.step);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
    `viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">` +
    `${escapeXml(o.title ?? "training loss")}</text>`,
  ];
  if (values.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`, "</svg>");
    return parts.join("\n") + "\n";
  }
  let yLo = Math.min(...values);
  let yHi = Math.max(...values);
  if (yHi - yLo < 1e-6) [yLo, yHi] = [yLo - 0.5, yHi + 0.5];
  const pad = (yHi - yLo) * 0.05;
  yLo -= pad;
  yHi += pad;
  let xLo = Math.min(...steps);
  let xHi = Math.max(...steps);
  if (xHi === xLo) [xLo, xHi] = [xLo - 1, xHi + 1];
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const x = (s: number) => (m.left + ((s - xLo) / (xHi - xLo)) * pw).toFixed(1);
  const y = (v: number) => (m.top + (1 - (v - yLo) / (yHi - yLo)) * ph).toFixed(1);
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  );
  for (const t of niceTicks(yLo, yHi)) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/>`,
      `<text x="${m.left - 6}" y="${y(t)}" text-anchor="end" dominant-baseline="middle">` +
        `${fmt(t)}</text>`,
    );
  }
  for (const t of niceTicks(xLo, xHi).filter(Number.isInteger)) {
    parts.push(
      `<text x="${x(t)}" y="${m.top + ph + 16}" text-anchor="middle">${t}</text>`,
    );
  }
  parts.push(
    `<text x="${m.left + pw / 2}" y="${H - 6}" text-anchor="middle">step</text>`,
    `<text x="14" y="${m.top + ph / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 14 ${m.top + ph / 2})">loss</text>`,
  );
  if (train.length) {
    const pts = train.map((p) => `${x(p.step)},${y(p.loss)}`).join(" ");
    parts.push(
      `<polyline class="train" fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>`,
    );
  }
  for (const p of evals) {
    parts.push(
      `<circle class="eval" cx="${x(p.step)}" cy="${y(p.evalLoss!)}" r="3" fill="#d62728"/>`,
    );
  }
  const legendY = m.top + 14;
  parts.push(
    `<line x1="${m.left + pw - 110}" x2="${m.left + pw - 90}" y1="${legendY}" y2="${legendY}" ` +
      `stroke="#1f77b4" stroke-width="1.5"/>`,
    `<text x="${m.left + pw - 86}" y="${legendY}" dominant-baseline="middle">train</text>`,
  );
  if (evals.length) {
    parts.push(
      `<circle cx="${m.left + pw - 45}" cy="${legendY}" r="3" fill="#d62728"/>`,
      `<text x="${m.left + pw - 38}" y="${legendY}" dominant-baseline="middle">eval</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
