import {
  assertClose,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  putI32,
  randomArray,
  referenceBuild,
} from "./_testing.ts";

Deno.test("embedding reference: gather copies rows, scatter-add accumulates duplicates", () => {
  const rand = makeRandom(8);
  const { kernels, arena } = referenceBuild();
  const [V, D] = [11, 5];
  const table = randomArray(rand, V * D);
  const ids = [3, 0, 10, 3];
  const tp = putF32(arena, table);
  const ip = putI32(arena, ids);
  const out = arena.allocF32(ids.length * D);
  kernels.embeddingGather(out, ip, tp, ids.length, D);
  const expected = ids.flatMap((id) => Array.from(table.subarray(id * D, id * D + D)));
  assertClose(
    getF32(arena, out, ids.length * D),
    Float32Array.from(expected),
    { rtol: 0 },
    "gather",
  );

  const dout = randomArray(rand, ids.length * D);
  const dtable = putF32(arena, new Float64Array(V * D).fill(1));
  kernels.embeddingScatterAdd(dtable, ip, putF32(arena, dout), ids.length, D);
  const want = new Float64Array(V * D).fill(1);
  ids.forEach((id, t) => {
    for (let i = 0; i < D; i++) want[id * D + i] += Math.fround(dout[t * D + i]);
  });
  assertClose(getF32(arena, dtable, V * D), want, { rtol: 1e-7 }, "scatter-add");
});

Deno.test("wasm embedding gather/scatter-add match the reference (ragged D, both variants)", () => {
  for (const D of [1, 3, 17, 64]) {
    const rand = makeRandom(60 + D);
    const V = 9;
    const table = randomArray(rand, V * D);
    const ids = [8, 2, 2, 0, 8, 5, 2];
    const dout = randomArray(rand, ids.length * D);
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const ip = putI32(arena, ids), out = arena.allocF32(ids.length * D);
      kernels.embeddingGather(out, ip, putF32(arena, table), ids.length, D);
      const dt = putF32(arena, table);
      kernels.embeddingScatterAdd(dt, ip, putF32(arena, dout), ids.length, D);
      return { gathered: getF32(arena, out, ids.length * D), dtable: getF32(arena, dt, V * D) };
    });
    for (const { build, out } of wasm) {
      // Copies and f32 additions in the same order: bit-identical.
      assertClose(out.gathered, ref.out.gathered, { rtol: 0 }, `${build} gather D=${D}`);
      assertClose(out.dtable, ref.out.dtable, { rtol: 0 }, `${build} scatter D=${D}`);
    }
  }
});
