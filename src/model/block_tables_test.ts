import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import type { KernelVariant } from "../kernels/wasm.ts";
import { Rng } from "../runtime/rng.ts";
import {
  blockBackwardStructured,
  blockBackwardTape,
  blockForward,
  blockForwardTape,
} from "./block.ts";
import { blockPeaks, loraRanksOf, tapeTable } from "./block_tables.ts";
import { LoraParams } from "./lora.ts";
import { createRandomWeightStore, tinyConfig } from "./random_weights.ts";
import { prepareBatch } from "./transformer.ts";
import { LINEAR_NAMES, type LinearName } from "./weights.ts";

const VARIANT = (Deno.env.get("SLIMTUNE_KERNELS") ?? "reference") as KernelVariant;

/** The arena high-water `run` reaches above the top it starts from. */
function peakOf(arena: { used: number; highWater: number }, run: () => void): number {
  const start = arena.used;
  arena.highWater = start;
  run();
  assert.equal(arena.used, start, "the block function left buffers behind");
  return arena.highWater - start;
}

Deno.test("block tables: each block function reaches exactly the peak replayed from its tables", async () => {
  const targetSets: LinearName[][] = [[...LINEAR_NAMES], ["q", "v"], ["o", "down"], []];
  for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
    for (const targets of targetSets) {
      for (const [seqLen, batchSize, mlpChunkRows] of [[7, 2, 4], [9, 1, 64]]) {
        const config = tinyConfig(arch);
        const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
        const store = createRandomWeightStore({ config, kernels, arena, seed: 3, quant: "int4" });
        const loraConfig = { rank: 4, alpha: 8, targets };
        const lora = new LoraParams(config, loraConfig, arena, 1);
        const m = { config, store, kernels, arena, lora, headChunkRows: 64, mlpChunkRows };
        const rng = new Rng(seqLen);
        const ids = Int32Array.from({ length: seqLen * batchSize }, () => rng.nextU32() % 300);
        const p = prepareBatch(m, { inputIds: ids, labels: ids, batchSize, seqLen });
        const N = batchSize * seqLen;
        const x = arena.allocF32(N * config.hiddenSize);
        const dy = arena.allocF32(N * config.hiddenSize);
        arena.f32(x, N * config.hiddenSize).set(
          Float32Array.from({ length: N * config.hiddenSize }, () => rng.uniform() - 0.5),
        );
        const peaks = blockPeaks({
          config,
          batchSize,
          seqLen,
          mlpChunkRows,
          loraRanks: loraRanksOf(loraConfig),
        });
        const what = `${arch} [${targets}] T ${seqLen} B ${batchSize} R ${mlpChunkRows}`;
        const bw = await store.acquireBlock(config.numLayers - 1);
        const bl = lora.blocks[config.numLayers - 1];
        assert.equal(
          peakOf(arena, () => blockForward(p.block, bw, bl, x)),
          peaks.leanForward,
          what,
        );
        let tape = blockForwardTape(p.block, bw, bl, x, 0);
        assert.equal(arena.used - tape.mark, peaks.tape, what);
        arena.release(tape.mark);
        arena.highWater = arena.used;
        const start = arena.used;
        tape = blockForwardTape(p.block, bw, bl, x, 0);
        assert.equal(arena.highWater - start, peaks.tapeRecompute, what);
        assert.equal(
          peakOf(arena, () => blockBackwardTape(p.block, bw, bl, tape, dy)),
          peaks.tapeBackward,
          what,
        );
        arena.release(tape.mark);
        assert.equal(
          peakOf(arena, () => blockBackwardStructured(p.block, bw, bl, x, dy)),
          peaks.structuredBackward,
          what,
        );
      }
    }
  }
});

Deno.test("block tables: the tape keeps the head-norm and sandwich-norm buffers only where the config has them", () => {
  const shape = (arch: "qwen2" | "qwen3" | "gemma3") => ({
    config: tinyConfig(arch),
    batchSize: 1,
    seqLen: 8,
    mlpChunkRows: 4,
    loraRanks: {},
  });
  const qwen2 = tapeTable(shape("qwen2"));
  assert.equal(qwen2.qPre + qwen2.kPre + qwen2.rstdQ + qwen2.attnOut + qwen2.rstdMlpOut, 0);
  const qwen3 = tapeTable(shape("qwen3"));
  const c3 = tinyConfig("qwen3");
  assert.equal(qwen3.qPre, 8 * c3.numHeads * c3.headDim);
  assert.equal(qwen3.rstdK, 8 * c3.numKvHeads);
  assert.equal(qwen3.attnOut, 0);
  const gemma = tapeTable(shape("gemma3"));
  assert.equal(gemma.mlpOut, 8 * tinyConfig("gemma3").hiddenSize);
  assert.equal(gemma.rstdAttnOut, 8);
});
