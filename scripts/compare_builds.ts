/**
 * Whether two kernel builds give the same bits: runs the GEMM and int4 entries of both modules on
 * the same random inputs over ragged shapes (every M, N in 1..20 with several K, and larger
 * blocks) and reports the first output that differs. For a change of the kernel template that
 * should only move work around (tile shape, unroll, splat): the outputs must be identical.
 *
 *   deno run -A scripts/compare_builds.ts old.wasm new.wasm
 *   git show HEAD:wasm/kernels.relaxed.wasm > /tmp/old.wasm && deno run -A scripts/compare_builds.ts \
 *     /tmp/old.wasm wasm/kernels.relaxed.wasm
 */
import { Arena } from "../src/runtime/arena.ts";

type Exports = Record<string, (...args: number[]) => number>;

/** Both builds, their arenas starting at the same address (above either module's static data). */
function instantiateBoth(files: string[]): { ex: Exports; arena: Arena }[] {
  const built = files.map((f) => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const imports: WebAssembly.Imports = { env: { memory } };
    const module = new WebAssembly.Module(Deno.readFileSync(f) as BufferSource);
    const ex = new WebAssembly.Instance(module, imports).exports as unknown as Exports;
    return { memory, ex };
  });
  const heap = Math.max(...built.map((b) => b.ex.heapBase()));
  return built.map(({ memory, ex }) => {
    const arena = new Arena(memory, heap);
    const n = ex.scratchBytes();
    ex.init(arena.alloc(n), n);
    arena.alloc(64 << 20);
    return { ex, arena };
  });
}

/** A deterministic generator of floats in [-1, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

if (import.meta.main) {
  if (Deno.args.length !== 2) {
    console.error("usage: compare_builds.ts OLD.wasm NEW.wasm");
    Deno.exit(2);
  }
  const [a, b] = instantiateBoth(Deno.args);
  const base = a.arena.mark();
  if (b.arena.mark() !== base) throw new Error("the two builds place the arena differently");
  const shapes: [number, number, number][] = [];
  for (let M = 1; M <= 20; M++) {
    for (let N = 1; N <= 20; N++) for (const K of [1, 7, 8, 33]) shapes.push([M, N, K]);
  }
  shapes.push([37, 129, 67], [64, 24, 777], [13, 1030, 300], [256, 8, 896], [256, 896, 8]);
  // The LoRA shapes the in-place tiles serve (rank 8 as M or N; several K blocks; ragged ends).
  shapes.push([8, 896, 300], [896, 8, 300], [8, 21, 520], [23, 8, 520], [257, 16, 300]);
  shapes.push([7, 900, 260], [8, 13, 600], [131, 8, 7], [5, 17, 513], [8, 40, 256]);
  let cases = 0;
  const fail = (what: string) => {
    console.error(`differ: ${what}`);
    Deno.exit(1);
  };
  /** Fills the same random floats at the same address in both memories. */
  const fill = (n: number, seed: number): number => {
    const p = a.arena.allocF32(n);
    if (b.arena.allocF32(n) !== p) throw new Error("arenas diverged");
    const r = random(seed);
    const v = Float32Array.from({ length: n }, r);
    a.arena.f32(p, n).set(v);
    b.arena.f32(p, n).set(v);
    return p;
  };
  const same = (p: number, n: number, what: string) => {
    const x = new Uint32Array(a.arena.f32(p, n).slice().buffer);
    const y = new Uint32Array(b.arena.f32(p, n).slice().buffer);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) fail(`${what} element ${i}`);
    cases++;
  };
  for (const [M, N, K] of shapes) {
    for (const op of ["matmulABt", "matmulAB", "matmulAtB"]) {
      for (const [alpha, acc] of [[1, 0], [-0.75, 1]]) {
        a.arena.release(base);
        b.arena.release(base);
        const x = fill(M * K, M * 131 + N * 7 + K);
        const w = fill(K * N, K * 17 + N);
        const out = fill(M * N, 5);
        a.ex[op](out, x, w, M, N, K, alpha, acc);
        b.ex[op](out, x, w, M, N, K, alpha, acc);
        same(out, M * N, `${op} M=${M} N=${N} K=${K} alpha=${alpha} acc=${acc}`);
      }
    }
  }
  for (
    const [M, N, K, g] of [[1, 70, 128, 64], [1, 33, 256, 32], [3, 7, 96, 32], [4, 33, 256, 32], [
      8,
      9,
      64,
      64,
    ], [37, 129, 640, 64]]
  ) {
    a.arena.release(base);
    b.arena.release(base);
    const w = fill(N * K, 9);
    const q = a.arena.alloc(N * K / 2);
    b.arena.alloc(N * K / 2);
    const s = fill(N * K / g, 1), bi = fill(N * K / g, 2);
    a.ex.int4Quantize(q, s, bi, w, N, K, g);
    b.ex.int4Quantize(q, s, bi, w, N, K, g);
    const x = fill(M * K, 3), out = fill(M * N, 4);
    a.ex.int4MatmulXWt(out, x, q, s, bi, M, N, K, g, 1, 0);
    b.ex.int4MatmulXWt(out, x, q, s, bi, M, N, K, g, 1, 0);
    same(out, M * N, `int4MatmulXWt M=${M} N=${N} K=${K} g${g}`);
    const gr = fill(M * N, 6), dx = fill(M * K, 7);
    a.ex.int4MatmulGW(dx, gr, q, s, bi, M, N, K, g, 1, 1);
    b.ex.int4MatmulGW(dx, gr, q, s, bi, M, N, K, g, 1, 1);
    same(dx, M * K, `int4MatmulGW M=${M} N=${N} K=${K} g${g}`);
  }
  console.log(`identical: ${cases} outputs`);
}
