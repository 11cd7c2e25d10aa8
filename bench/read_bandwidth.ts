/**
 * Memory read bandwidth of one wasm thread in this process: a loop of v128 loads (four per trip,
 * summed as i32x4 so nothing is skipped) over a 256 MiB buffer, far beyond the caches, built here
 * byte by byte. The reference for bandwidth-bound kernels (the int4 GEMV of decoding).
 */

const BYTES = 256 << 20;

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

/** `sum(bytes: i32) -> i32` over an imported memory `env.memory` of BYTES. */
function moduleBytes(): Uint8Array {
  const SIMD = 0xfd;
  const P = 1; // local: byte position (local 0 is `bytes`)
  const body: number[] = [2, 1, 0x7f, 4, 0x7b]; // locals: 1 i32, 4 v128 (2..5)
  body.push(0x02, 0x40, 0x03, 0x40); // block, loop
  body.push(0x20, P, 0x20, 0, 0x4f, 0x0d, 1); // p >= bytes: break
  for (let a = 0; a < 4; a++) {
    body.push(0x20, 2 + a, 0x20, P, SIMD, 0x00, 4, ...uleb(a * 16), SIMD, ...uleb(0xae));
    body.push(0x21, 2 + a);
  }
  // p += 64 (i32.const takes a signed LEB128: 64 is 0xc0 0x00).
  body.push(0x20, P, 0x41, 0xc0, 0x00, 0x6a, 0x21, P, 0x0c, 0, 0x0b, 0x0b);
  body.push(0x20, 2, 0x20, 3, SIMD, ...uleb(0xae), 0x20, 4, SIMD, ...uleb(0xae));
  body.push(0x20, 5, SIMD, ...uleb(0xae), SIMD, 0x1b, 0, 0x0b);
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const str = (s: string) => {
    const b = [...new TextEncoder().encode(s)];
    return [b.length, ...b];
  };
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
    ...section(2, [1, ...str("env"), ...str("memory"), 0x02, 0x00, ...uleb(BYTES >> 16)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...str("sum"), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

let sum: ((bytes: number) => number) | null = null;

/** Best GB/s of a few passes over the buffer (allocated and touched on the first call). */
export function readBandwidth(passes = 5): number {
  if (sum === null) {
    const memory = new WebAssembly.Memory({ initial: BYTES >> 16 });
    new Uint8Array(memory.buffer).fill(1); // touch every page: untouched ones read as one zero page
    const module = new WebAssembly.Module(moduleBytes() as BufferSource);
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    sum = exports.sum as (bytes: number) => number;
    sum!(BYTES);
  }
  let best = Infinity;
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    sum!(BYTES);
    best = Math.min(best, performance.now() - t0);
  }
  return BYTES / (best * 1e6);
}

if (import.meta.main) {
  console.log(`one-thread wasm read bandwidth: ${readBandwidth().toFixed(1)} GB/s`);
}
