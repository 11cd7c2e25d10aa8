import assert from "node:assert/strict";
import { loadKernels, loadKernelsSync } from "./injected.ts";
import { kernelModuleBytes } from "./wasm.ts";

/** 2x2 · (2x2)ᵀ through the loaded kernels, as plain numbers. */
function smallMatmul(loaded: ReturnType<typeof loadKernelsSync>): number[] {
  const { kernels, arena } = loaded;
  const a = arena.allocF32(4);
  const b = arena.allocF32(4);
  const out = arena.allocF32(4);
  arena.f32(a, 4).set([1, 2, 3, 4]);
  arena.f32(b, 4).set([5, 6, 7, 8]);
  kernels.matmulABt(out, a, b, 2, 2, 2, 1, 0);
  return [...arena.f32(out, 4)];
}

Deno.test("injected loader: with nothing injected, it refuses a wasm build and names what to pass", () => {
  assert.throws(
    () => loadKernelsSync(),
    /no kernel builds are embedded.*pass the compiled module as `module`/,
  );
  assert.throws(
    () => loadKernelsSync({ variant: "relaxed" }),
    /no kernel builds are embedded.*pass the compiled module as `module`/,
  );
});

Deno.test("injected loader: the reference kernels and an injected module compute the same product", async () => {
  const reference = await loadKernels({ variant: "reference" });
  assert.equal(reference.variant, "reference");
  const expected = [17, 23, 39, 53];
  assert.deepEqual(smallMatmul(reference), expected);
  const module = new WebAssembly.Module(kernelModuleBytes("simd") as BufferSource);
  const injected = loadKernelsSync({ module });
  assert.equal(injected.variant, "simd");
  assert.deepEqual(smallMatmul(injected), expected);
});
