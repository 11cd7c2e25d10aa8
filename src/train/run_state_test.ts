import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { linearShape, type LoraTensors, peftName } from "../model/lora.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { CHECKPOINT_FILES, type TrainingState } from "./run_state.ts";
import {
  findLatestCheckpoint,
  readCheckpoint,
  readCheckpointHead,
  resolveResumeDir,
  writeCheckpoint,
} from "../deno/run_state.ts";

const model = tinyConfig("llama", 1);

function state(step: number): TrainingState {
  const lora: LoraTensors = new Map();
  const [out, inF] = linearShape(model, "v");
  lora.set(peftName(0, "v", "A"), { shape: [2, inF], data: new Float32Array(2 * inF).fill(step) });
  lora.set(peftName(0, "v", "B"), { shape: [out, 2], data: new Float32Array(out * 2).fill(-step) });
  return {
    step,
    adapter: { r: 2, alpha: 4, targets: ["v"], baseModel: "m" },
    lora,
    optimizer: {
      stepCount: step,
      tensors: new Map([["x.exp_avg", new Float32Array([1.5, step])]]),
      rng: [1, 2, 3, 4294967295],
    },
    data: { epoch: 1, index: step },
    args: { rank: 2, data: "d.jsonl" },
    history: [{ step: 1, loss: 2.5 }, { step, loss: 1.25, evalLoss: 1.5 }],
  };
}

Deno.test("a checkpoint directory round-trips the whole training state", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeCheckpoint(dir, state(3));
    strictEqual(path, `${dir}/checkpoint-3`);
    deepStrictEqual(await readCheckpoint(path, model), state(3));
    deepStrictEqual((await readCheckpointHead(path)).args, { rank: 2, data: "d.jsonl" });
    // Saving the same step again (a resumed run) replaces it and leaves no temporary dirs.
    await writeCheckpoint(dir, state(3));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    deepStrictEqual(names, ["checkpoint-3"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resume picks the latest complete checkpoint and ignores partial ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    strictEqual(await findLatestCheckpoint(dir), null);
    await rejects(resolveResumeDir(dir), /no checkpoint found/);
    await writeCheckpoint(dir, state(2));
    await writeCheckpoint(dir, state(10));
    // What a SIGKILL during a save leaves behind: a .tmp dir, and a dir without trainer_state.
    await Deno.mkdir(`${dir}/checkpoint-12.tmp`);
    await Deno.mkdir(`${dir}/checkpoint-11`);
    await Deno.writeTextFile(`${dir}/checkpoint-11/${CHECKPOINT_FILES.adapterConfig}`, "{}");
    strictEqual(await resolveResumeDir(dir), `${dir}/checkpoint-10`);
    strictEqual(await resolveResumeDir(`${dir}/checkpoint-2`), `${dir}/checkpoint-2`);
    strictEqual((await readCheckpoint(`${dir}/checkpoint-10`, model)).step, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupted trainer_state.json is a clear error naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeCheckpoint(dir, state(1));
    await Deno.writeTextFile(`${path}/${CHECKPOINT_FILES.trainerState}`, '{"format":"x"}');
    await rejects(
      readCheckpoint(path, model),
      (e: Error) => e.message.includes(`${path}/trainer_state.json: format "x"`),
    );
    await Deno.writeTextFile(`${path}/${CHECKPOINT_FILES.trainerState}`, "{");
    await rejects(readCheckpointHead(path), /trainer_state\.json: not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
