/**
 * The 128-bit limit of this engine on this machine: a register-only f32x4 multiply-add loop in
 * wasm, built here byte by byte (no file, no toolchain), timed in the calling process so kernel
 * rates can be quoted as a share of it.
 *
 * The loop keeps CHAINS independent accumulators, each updated acc = acc * a + b per step
 * (relaxed: one relaxed_madd, the FMA; simd: f32x4.mul then f32x4.add, as the simd build's GEMM
 * does). 12 chains are more than latency × issue width on current x64 cores (FMA latency 4, two
 * ports), so the loop runs at the issue limit, and they leave V8 room for a and b among the 16
 * xmm registers. acc converges to b / (1 - a): no overflow, no subnormals.
 */

/** Independent accumulator chains of the loop. */
export const CHAINS = 12;
/** Multiply-add steps of every chain per loop trip. */
const UNROLL = 4;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function f32Bytes(x: number): number[] {
  return [...new Uint8Array(new Float32Array([x]).buffer)];
}

const SIMD = 0xfd;
const F32X4_SPLAT = [SIMD, ...uleb(0x13)];
const F32X4_EXTRACT_LANE_0 = [SIMD, ...uleb(0x1f), 0];
const F32X4_ADD = [SIMD, ...uleb(0xe4)];
const F32X4_MUL = [SIMD, ...uleb(0xe6)];
const F32X4_RELAXED_MADD = [SIMD, ...uleb(0x105)];
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;

/**
 * The module: export `peak(trips: i32) -> f32` runs `trips` loop trips (CHAINS × UNROLL
 * multiply-adds of four lanes each) and returns lane 0 of the accumulators' sum.
 */
export function peakModuleBytes(variant: "simd" | "relaxed"): Uint8Array {
  const A = CHAINS + 1; // local index of a
  const B = CHAINS + 2; // local index of b
  const body: number[] = [];
  body.push(1, CHAINS + 2, 0x7b); // one local entry: CHAINS + 2 v128 locals (after the i32 param)
  body.push(0x43, ...f32Bytes(0.75), ...F32X4_SPLAT, LOCAL_SET, A);
  body.push(0x43, ...f32Bytes(0.25), ...F32X4_SPLAT, LOCAL_SET, B);
  body.push(0x02, 0x40, 0x03, 0x40); // block, loop
  body.push(LOCAL_GET, 0, 0x45, 0x0d, 1); // trips == 0: break
  for (let u = 0; u < UNROLL; u++) {
    for (let c = 1; c <= CHAINS; c++) {
      body.push(LOCAL_GET, c, LOCAL_GET, A);
      if (variant === "relaxed") body.push(LOCAL_GET, B, ...F32X4_RELAXED_MADD);
      else body.push(...F32X4_MUL, LOCAL_GET, B, ...F32X4_ADD);
      body.push(LOCAL_SET, c);
    }
  }
  body.push(LOCAL_GET, 0, 0x41, 1, 0x6b, LOCAL_SET, 0); // trips -= 1
  body.push(0x0c, 0, 0x0b, 0x0b); // br loop, end loop, end block
  body.push(LOCAL_GET, 1);
  for (let c = 2; c <= CHAINS; c++) body.push(LOCAL_GET, c, ...F32X4_ADD);
  body.push(...F32X4_EXTRACT_LANE_0, 0x0b);
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = [...new TextEncoder().encode("peak")];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]), // type 0: (i32) -> f32
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(7, [1, name.length, ...name, 0x00, 0]), // export "peak" = function 0
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return new Uint8Array(bytes);
}

/** Flops of one loop trip (a multiply-add is 2 flops per lane). */
export const FLOPS_PER_TRIP = CHAINS * UNROLL * 4 * 2;

/** A timed peak loop of one variant. */
export interface PeakLoop {
  variant: "simd" | "relaxed";
  /** Best GFLOP/s over calls spread across about `seconds` (default 0.15). */
  measure(seconds?: number): number;
}

/** Compiles the peak loop; null when the engine rejects the variant (no relaxed-simd). */
export function peakLoop(variant: "simd" | "relaxed"): PeakLoop | null {
  const bytes = peakModuleBytes(variant);
  if (!WebAssembly.validate(bytes as BufferSource)) return null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource));
  const peak = instance.exports.peak as (trips: number) => number;
  const trips = 200_000; // ~1 ms at 10 GFLOP/s
  for (let i = 0; i < 5; i++) peak(trips); // let V8 tier the function up
  return {
    variant,
    measure(seconds = 0.15) {
      let best = Infinity;
      const start = performance.now();
      let calls = 0;
      while (calls < 5 || performance.now() - start < seconds * 1000) {
        const t0 = performance.now();
        peak(trips);
        best = Math.min(best, performance.now() - t0);
        calls++;
      }
      return (trips * FLOPS_PER_TRIP) / (best * 1e6);
    },
  };
}

if (import.meta.main) {
  for (const v of ["relaxed", "simd"] as const) {
    const loop = peakLoop(v);
    console.log(`${v}: ${loop ? `${loop.measure(0.5).toFixed(1)} GFLOP/s` : "not supported"}`);
  }
}
