/**
 * Arena high-water of the resident vs streamed weight stores for one model width at two depths
 * (default: Qwen2.5-0.5B shapes with 4 and 24 layers, int4). Streamed should stay flat as layers
 * are added; resident grows by one int4 block per layer. Checkpoints (random weights) and caches
 * are generated under a temp dir and removed afterwards.
 *
 *   npx deno run -A bench/weight_store_bench.ts [--preset qwen2.5-0.5b] [--layers 4,24]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    preset: { type: "string", default: "qwen2.5-0.5b" },
    layers: { type: "string", default: "4,24" },
    keep: { type: "boolean", default: false },
  },
});
const depths = values.layers.split(",").map(Number);
const root = await Deno.makeTempDir({ prefix: "slimtune-ws-bench-" });
const mib = (b: number) => (b / 2 ** 20).toFixed(1).padStart(8);
console.log(`preset ${values.preset}, int4 g64; checkpoints under ${root}`);
console.log("layers  store      open s  high-water MiB  in use MiB  step read s");
try {
  for (const layers of depths) {
    const dir = `${root}/l${layers}`;
    const t0 = performance.now();
    await makeCheckpoint({ preset: values.preset, out: dir, layers, seed: 1 });
    console.log(
      `(generated ${layers}-layer checkpoint in ${((performance.now() - t0) / 1e3).toFixed(1)} s)`,
    );
    for (const weights of ["streamed", "resident"] as const) {
      const { kernels, arena, variant } = loadKernelsSync();
      const t1 = performance.now();
      const store = await openModelDir({ source: dir, quant: "int4", weights, kernels, arena });
      const open = (performance.now() - t1) / 1e3;
      const t2 = performance.now();
      for (let i = 0; i < layers; i++) {
        await store.acquireBlock(i);
        store.releaseBlock(i);
      }
      for await (const _ of store.headChunks(4096)) { /* one pass over the LM head */ }
      const read = (performance.now() - t2) / 1e3;
      console.log(
        `${String(layers).padStart(6)}  ${weights.padEnd(9)} ${open.toFixed(1).padStart(7)} ` +
          `${mib(arena.highWater)}        ${mib(arena.used)}    ${
            read.toFixed(2).padStart(8)
          }  (${variant})`,
      );
      await store.close();
    }
  }
} finally {
  if (!values.keep) await Deno.remove(root, { recursive: true });
}
