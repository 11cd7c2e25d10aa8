import wabtInit from "wabt";
import { KERNEL_NAMES } from "./abi.ts";
import {
  kernelModuleBytes,
  loadKernels,
  loadKernelsSync,
  moduleVariant,
  supportsRelaxedSimd,
} from "./wasm.ts";
import { check, checkIdentical } from "./matmul_testing.ts";

/** A 2x3 · 3x2 product every build must get exactly right (small integers). */
function checkSmallMatmul(loaded: ReturnType<typeof loadKernelsSync>, label: string): void {
  const { kernels, arena } = loaded;
  const a = arena.allocF32(6);
  arena.f32(a, 6).set([1, 2, 3, 4, 5, 6]);
  const b = arena.allocF32(6);
  arena.f32(b, 6).set([7, 8, 9, 10, 11, 12]); // [3,2]
  const out = arena.allocF32(4);
  kernels.matmulAB(out, a, b, 2, 2, 3, 1, 0);
  checkIdentical(arena.f32(out, 4), [58, 64, 139, 154], label);
}

Deno.test("loader: auto picks relaxed where the engine validates it (Deno does)", async () => {
  check(supportsRelaxedSimd(), "this Deno should validate relaxed-simd");
  const loaded = await loadKernels();
  check(loaded.variant === "relaxed", `auto loaded ${loaded.variant}`);
  checkSmallMatmul(loaded, "auto");
});

Deno.test("loader: each build exports the whole ABI and names itself", () => {
  for (const variant of ["simd", "relaxed"] as const) {
    const module = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
    const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    for (const name of KERNEL_NAMES) check(exported.has(name), `${variant} lacks ${name}`);
    check(moduleVariant(module) === variant, `${variant} module says ${moduleVariant(module)}`);
    const loaded = loadKernelsSync({ variant });
    check(loaded.variant === variant, `asked ${variant}, got ${loaded.variant}`);
    checkSmallMatmul(loaded, variant);
  }
});

Deno.test("loader: the simd build needs no relaxed-simd, the relaxed build does", async () => {
  // wabt validates with the feature off: what an engine without relaxed SIMD (Safari) would do.
  const wabt = await wabtInit();
  const validWithout = (bytes: Uint8Array) => {
    try {
      const m = wabt.readWasm(bytes, { simd: true, relaxed_simd: false });
      m.validate();
      m.destroy();
      return true;
    } catch {
      return false;
    }
  };
  check(validWithout(kernelModuleBytes("simd")), "simd build uses relaxed-simd");
  check(!validWithout(kernelModuleBytes("relaxed")), "relaxed build has no relaxed-simd");
});

Deno.test("loader: an injected compiled module works and reports its build", () => {
  for (const variant of ["simd", "relaxed"] as const) {
    const module = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
    const memory = new WebAssembly.Memory({ initial: 2 });
    const loaded = loadKernelsSync({ module, memory });
    check(loaded.memory === memory, "given memory not used");
    check(loaded.variant === variant, `injected ${variant} reported as ${loaded.variant}`);
    checkSmallMatmul(loaded, `injected ${variant}`);
  }
});

Deno.test("loader: a module lacking a kernel is refused by name", () => {
  // A minimal module importing env.memory and exporting nothing.
  const bytes = new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...[0x02, 0x0f, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79],
    ...[0x02, 0x00, 0x00],
  ]);
  const module = new WebAssembly.Module(bytes);
  let message = "";
  try {
    loadKernelsSync({ module });
  } catch (e) {
    message = String(e);
  }
  check(message.includes('lacks export "heapBase"'), `got: ${message}`);
});

Deno.test("loader: the arena starts after the kernels' data and the scratch is reserved", () => {
  for (const variant of ["simd", "relaxed"] as const) {
    const loaded = loadKernelsSync({ variant });
    const { kernels, arena } = loaded;
    check(arena.base >= kernels.heapBase(), `arena base ${arena.base} < heapBase`);
    check(kernels.scratchBytes() >= 1 << 20, `scratch ${kernels.scratchBytes()} bytes`);
    const first = arena.alloc(64);
    check(
      first >= kernels.heapBase() + kernels.scratchBytes(),
      `first allocation ${first} overlaps the scratch`,
    );
    // A GEMM that packs through the whole scratch path must leave guard bytes around its
    // operands untouched.
    const M = 70;
    const N = 1030;
    const K = 300;
    const guardBefore = arena.allocF32(16);
    const a = arena.allocF32(M * K);
    const b = arena.allocF32(N * K);
    const out = arena.allocF32(M * N);
    const guardAfter = arena.allocF32(16);
    arena.f32(guardBefore, 16).fill(7);
    arena.f32(guardAfter, 16).fill(7);
    arena.f32(a, M * K).fill(0.5);
    arena.f32(b, N * K).fill(2);
    kernels.matmulABt(out, a, b, M, N, K, 1, 0);
    check(arena.f32(out, M * N).every((v) => v === K), `${variant}: wrong product`);
    checkIdentical(arena.f32(guardBefore, 16), new Array(16).fill(7), "guard before");
    checkIdentical(arena.f32(guardAfter, 16), new Array(16).fill(7), "guard after");
  }
});

Deno.test("loader: the reference variant runs the TS kernels", () => {
  const loaded = loadKernelsSync({ variant: "reference" });
  check(loaded.variant === "reference", loaded.variant);
  check(loaded.arena.base >= loaded.kernels.heapBase(), "arena below heapBase");
  checkSmallMatmul(loaded, "reference");
});

Deno.test("loader: int4 kernels reject a group size that does not fit K, by name", () => {
  for (const variant of ["simd", "relaxed", "reference"] as const) {
    const { kernels, arena } = loadKernelsSync({ variant });
    const p = arena.alloc(4096);
    for (const [K, groupSize] of [[64, 0], [64, 12], [96, 64]]) {
      let message = "";
      try {
        kernels.int4MatmulXWt(p, p, p, p, p, 1, 1, K, groupSize, 1, 0);
      } catch (e) {
        message = String(e);
      }
      check(
        message.includes("int4MatmulXWt") && message.includes(`groupSize ${groupSize}`),
        `${variant} K=${K} groupSize=${groupSize}: got "${message}"`,
      );
    }
  }
});

Deno.test("loader: an injected threads build runs on one thread, or says which build to inject where SharedArrayBuffer is missing", async () => {
  const module = new WebAssembly.Module(kernelModuleBytes("simd-threads") as BufferSource);
  // Where threads cannot be had (threads: 1 here), the threads build still loads.
  const one = await loadKernels({ module, threads: 1 });
  check(one.threads === 1, `threads ${one.threads}`);
  checkSmallMatmul(one, "simd-threads on one thread");
  checkSmallMatmul(loadKernelsSync({ module }), "simd-threads, sync");
  // Without SharedArrayBuffer (WebKit on most pages): a clear error, not a LinkError.
  const saved = globalThis.SharedArrayBuffer;
  // deno-lint-ignore no-explicit-any
  delete (globalThis as any).SharedArrayBuffer;
  let message = "";
  try {
    loadKernelsSync({ module });
  } catch (e) {
    message = (e as Error).message;
  } finally {
    globalThis.SharedArrayBuffer = saved;
  }
  check(
    /threads build, which needs SharedArrayBuffer.*inject kernels\.simd\.wasm/.test(message),
    `got: ${message}`,
  );
});
