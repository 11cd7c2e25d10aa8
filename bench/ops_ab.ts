/**
 * Per-op time of the non-GEMM kernels, this tree's build against another revision's, in one
 * process: each round runs every op on both builds back to back, and the table keeps each one's
 * best round (ns per element: per output element, or per score for attention). Single thread,
 * relaxed build, Qwen2.5-0.5B shapes (seq 256, the MLP in 64-row chunks, 1024-row head chunks).
 *
 *   deno run -A bench/ops_ab.ts [--baseline main] [--rounds 40]
 *
 * Prints a markdown table with the CPU model, the date and the load average.
 */
import { parseArgs } from "node:util";
import type { Kernels } from "../src/kernels/abi.ts";
import type { Arena } from "../src/runtime/arena.ts";
import { loadKernels } from "../src/kernels/wasm.ts";
import { loadBaselineKernels } from "./baseline_kernels.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    baseline: { type: "string", default: "main" },
    rounds: { type: "string", default: "40" },
  },
});
const rounds = Number(values.rounds);

function random(arena: Arena, n: number, seed: number, scale = 1): number {
  const p = arena.allocF32(n);
  const v = arena.f32(p, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s / 2 ** 31 - 1) * scale;
  }
  return p;
}

const T = 256, D = 896, I = 4864, MLP_ROWS = 64, HQ = 14, HKV = 2, HD = 64, VC = 1024;

interface Op {
  name: string;
  shape: string;
  elements: number;
  /** Allocates the inputs on one build and returns the timed call. */
  setup: (k: Kernels, a: Arena) => () => void;
}

const n = MLP_ROWS * I;
const OPS: Op[] = [
  {
    name: "swigluForward",
    shape: `${MLP_ROWS}x${I}`,
    elements: n,
    setup: (k, a) => {
      const g = random(a, n, 1, 4), u = random(a, n, 2), o = a.allocF32(n);
      return () => k.swigluForward(o, g, u, n);
    },
  },
  {
    name: "swigluBackward",
    shape: `${MLP_ROWS}x${I}`,
    elements: n,
    setup: (k, a) => {
      const g = random(a, n, 1, 4), u = random(a, n, 2), d = random(a, n, 3);
      const dg = a.allocF32(n), du = a.allocF32(n);
      return () => k.swigluBackward(dg, du, d, g, u, n);
    },
  },
  {
    name: "gegluTanhForward",
    shape: `${MLP_ROWS}x${I}`,
    elements: n,
    setup: (k, a) => {
      const g = random(a, n, 1, 4), u = random(a, n, 2), o = a.allocF32(n);
      return () => k.gegluTanhForward(o, g, u, n);
    },
  },
  {
    name: "gegluTanhBackward",
    shape: `${MLP_ROWS}x${I}`,
    elements: n,
    setup: (k, a) => {
      const g = random(a, n, 1, 4), u = random(a, n, 2), d = random(a, n, 3);
      const dg = a.allocF32(n), du = a.allocF32(n);
      return () => k.gegluTanhBackward(dg, du, d, g, u, n);
    },
  },
  {
    name: "rmsnormForward",
    shape: `${T}x${D}`,
    elements: T * D,
    setup: (k, a) => {
      const x = random(a, T * D, 4), w = random(a, D, 5), o = a.allocF32(T * D);
      const r = a.allocF32(T);
      return () => k.rmsnormForward(o, r, x, w, T, D, 1e-6);
    },
  },
  {
    name: "rmsnormBackward (+dw)",
    shape: `${T}x${D}`,
    elements: T * D,
    setup: (k, a) => {
      const x = random(a, T * D, 4), w = random(a, D, 5), g = random(a, T * D, 6);
      const dx = a.allocF32(T * D), dw = a.allocZeroed(D * 4), r = a.allocF32(T);
      k.rmsnormForward(dx, r, x, w, T, D, 1e-6);
      return () => k.rmsnormBackward(dx, dw, g, x, w, r, T, D, 0);
    },
  },
  {
    name: "ropeApply (q)",
    shape: `${T}x${HQ}x${HD}`,
    elements: T * HQ * HD,
    setup: (k, a) => {
      const q = random(a, T * HQ * HD, 7);
      const c = a.allocF32(T * HD / 2), s = a.allocF32(T * HD / 2);
      const cv = a.f32(c, T * HD / 2), sv = a.f32(s, T * HD / 2);
      for (let i = 0; i < cv.length; i++) [cv[i], sv[i]] = [Math.cos(i), Math.sin(i)];
      return () => k.ropeApply(q, c, s, T, HQ, HD, 0);
    },
  },
  {
    name: "add (residual)",
    shape: `${T}x${D}`,
    elements: T * D,
    setup: (k, a) => {
      const x = random(a, T * D, 8), y = random(a, T * D, 9);
      return () => k.add(x, x, y, T * D);
    },
  },
  {
    name: "ceChunkForward+Backward",
    shape: `${T}x${VC}`,
    elements: T * VC,
    setup: (k, a) => {
      const src = random(a, T * VC, 10, 8), logits = a.allocF32(T * VC);
      const targets = a.allocI32(T);
      a.i32(targets, T).fill(5);
      const m = a.allocF32(T), s = a.allocF32(T), tl = a.allocF32(T), lse = random(a, T, 11);
      return () => {
        a.f32(logits, T * VC).set(a.f32(src, T * VC));
        a.f32(m, T).fill(-Infinity);
        a.f32(s, T).fill(0);
        k.ceChunkForward(logits, T, VC, 0, targets, m, s, tl);
        k.ceChunkBackward(logits, T, VC, 0, targets, lse, 1 / T);
      };
    },
  },
  {
    name: "attentionForward",
    shape: `T${T} ${HQ}/${HKV}x${HD}`,
    elements: HQ * T * (T + 1) / 2,
    setup: (k, a) => {
      const q = random(a, T * HQ * HD, 12), kk = random(a, T * HKV * HD, 13);
      const v = random(a, T * HKV * HD, 14);
      const out = a.allocF32(T * HQ * HD), lse = a.allocF32(HQ * T);
      return () => k.attentionForward(out, lse, q, kk, v, T, HQ, HKV, HD, 0.125, 0);
    },
  },
  {
    name: "attentionBackward",
    shape: `T${T} ${HQ}/${HKV}x${HD}`,
    elements: HQ * T * (T + 1) / 2,
    setup: (k, a) => {
      const q = random(a, T * HQ * HD, 12), kk = random(a, T * HKV * HD, 13);
      const v = random(a, T * HKV * HD, 14), dout = random(a, T * HQ * HD, 15);
      const out = a.allocF32(T * HQ * HD), lse = a.allocF32(HQ * T);
      const dq = a.allocF32(T * HQ * HD), dk = a.allocF32(T * HKV * HD);
      const dv = a.allocF32(T * HKV * HD);
      k.attentionForward(out, lse, q, kk, v, T, HQ, HKV, HD, 0.125, 0);
      return () =>
        k.attentionBackward(dq, dk, dv, dout, q, kk, v, out, lse, T, HQ, HKV, HD, 0.125, 0);
    },
  },
];

const builds = [
  { label: `baseline (${values.baseline})`, loaded: await loadBaselineKernels(values.baseline) },
  { label: "this tree", loaded: await loadKernels() },
];
for (const b of builds) {
  if (b.loaded.variant !== "relaxed") {
    console.error(`note: ${b.label} runs the ${b.loaded.variant} build`);
  }
}
const calls = OPS.map((op) => builds.map((b) => op.setup(b.loaded.kernels, b.loaded.arena)));
const best = OPS.map(() => builds.map(() => Infinity));
for (const c of calls) for (const f of c) for (let i = 0; i < 3; i++) f();
for (let r = 0; r < rounds; r++) {
  for (const [i, c] of calls.entries()) {
    for (const [j, f] of c.entries()) {
      const t0 = performance.now();
      f();
      best[i][j] = Math.min(best[i][j], performance.now() - t0);
    }
  }
}
const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
  /model name\s*:\s*(.*)/,
)?.[1] ?? "unknown CPU";
console.log(
  `CPU: ${cpu}; ${new Date().toISOString().slice(0, 10)}; load average ${
    Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
  }; best of ${rounds} interleaved rounds, one thread\n`,
);
console.log(`| op | shape | ${builds.map((b) => `${b.label} ns/el`).join(" | ")} | speed-up |`);
console.log(`|---|---|${builds.map(() => "---:|").join("")}---:|`);
for (const [i, op] of OPS.entries()) {
  const ns = best[i].map((ms) => (ms * 1e6) / op.elements);
  console.log(
    `| ${op.name} | ${op.shape} | ${ns.map((v) => v.toFixed(3)).join(" | ")} | ${
      (ns[0] / ns[1]).toFixed(2)
    }x |`,
  );
}
for (const b of builds) b.loaded[Symbol.dispose]();
