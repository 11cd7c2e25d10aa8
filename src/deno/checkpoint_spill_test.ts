import assert from "node:assert/strict";
import { loadKernels } from "../kernels/wasm.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import { LoraTrainingSession, type SessionOptions } from "../methods/session.ts";
import {
  CheckpointSpillError,
  CheckpointSpillFile,
  openCheckpointSpill,
} from "./checkpoint_spill.ts";

const entries = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);

Deno.test("the scratch file hands back each block's bytes, takes no name in the folder, and is gone after close", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const spill = await openCheckpointSpill(`${tmp}/cache`);
    assert.match(spill.path, new RegExp(`^${tmp}/cache/\\.checkpoints-${Deno.pid}-\\w+\\.f32$`));
    // Unlinked at once (POSIX): nothing is left however the process ends.
    assert.deepEqual(await entries(`${tmp}/cache`), []);
    const a = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-30);
    const b = Float32Array.from({ length: 1000 }, (_, i) => -i);
    await spill.save(3, a);
    await spill.save(0, b);
    const back = new Float32Array(1000);
    await spill.load(3, back);
    assert.deepEqual(new Uint8Array(back.buffer), new Uint8Array(a.buffer));
    await spill.load(0, back);
    assert.deepEqual(back, b);
    // A later step with a smaller batch: shorter inputs, at offsets of their own size.
    await spill.save(1, a.subarray(0, 10));
    const short = new Float32Array(10);
    await spill.load(1, short);
    assert.deepEqual(short, a.subarray(0, 10));
    await assert.rejects(() => spill.load(9, back), (e) => {
      assert.ok(e instanceof CheckpointSpillError);
      assert.match(e.message, /block 9's input ends after 0 of 4000 bytes/);
      assert.ok(e.message.includes(spill.path));
      return true;
    });
    await spill.close();
    await spill.close();
    await assert.rejects(() => spill.save(0, a), /used after close/);
    assert.deepEqual(await entries(`${tmp}/cache`), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a failing write is one line naming the scratch file; a path that stayed linked is removed on close", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const path = `${tmp}/.checkpoints-test.f32`;
    const real = await Deno.open(path, { read: true, write: true, create: true });
    // What a full disk answers.
    const full = new Proxy(real, {
      get(target, key) {
        if (key === "write") {
          return () => Promise.reject(new Deno.errors.WriteZero("No space left on device"));
        }
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const spill = new CheckpointSpillFile(path, full, true);
    await assert.rejects(() => spill.save(2, new Float32Array(4)), (e) => {
      assert.ok(e instanceof CheckpointSpillError);
      assert.equal(
        e.message,
        `checkpoint scratch file ${path}: cannot write block 2's input: No space left on ` +
          "device (--checkpoints memory keeps them in memory instead)",
      );
      return true;
    });
    await spill.close();
    assert.deepEqual(await entries(tmp), []);
    await Deno.writeTextFile(`${tmp}/file`, "x");
    await assert.rejects(() => openCheckpointSpill(`${tmp}/file`), (e) => {
      assert.ok(e instanceof CheckpointSpillError);
      assert.match(e.message, new RegExp(`^checkpoint scratch file ${tmp}/file/\\.checkpoints-`));
      assert.match(e.message, /cannot create it/);
      return true;
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a run that throws leaves no scratch file; the disk gives the memory's gradient bits on 2 threads", async () => {
  const tmp = await Deno.makeTempDir();
  const loaded = await loadKernels({ threads: 2, minParallelWork: 0, minParallelRows: 1 });
  try {
    assert.equal(loaded.threads, 2);
    const config = tinyConfig("qwen3", 3);
    const { kernels, arena } = loaded;
    const store = createRandomWeightStore({ config, kernels, arena, seed: 5, quant: "int4" });
    const options: SessionOptions = {
      store,
      kernels,
      arena,
      method: "mesp",
      seed: 2,
      maxGradNorm: 0,
      lora: { rank: 4, alpha: 8, targets: [...LINEAR_NAMES] },
      optimizer: { kind: "sgd", lr: 1e-2, weightDecay: 0 },
      wholeGradients: true,
    };
    const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 37 + 1) % config.vocabSize);
    const batch = { inputIds: ids, labels: ids, batchSize: 2, seqLen: 8 };
    const gradients = async (s: LoraTrainingSession) => {
      await s.accumulateGradients([batch]);
      return s.lora.params.map((p) => new Uint8Array(arena.f32(p.grad, p.n).slice().buffer));
    };
    const want = await gradients(new LoraTrainingSession(options));
    {
      await using spill = await openCheckpointSpill(tmp);
      const got = await gradients(new LoraTrainingSession({ ...options, checkpoints: spill }));
      assert.deepEqual(got, want);
    }
    await assert.rejects(async () => {
      await using spill = await openCheckpointSpill(tmp);
      await new LoraTrainingSession({ ...options, checkpoints: spill }).step([batch], 1e-3);
      throw new Error("stopped mid-run");
    }, /stopped mid-run/);
    assert.deepEqual(await entries(tmp), []);
  } finally {
    loaded.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
