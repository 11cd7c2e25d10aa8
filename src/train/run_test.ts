import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { loadKernels } from "../kernels/wasm.ts";
import type { MethodName } from "../methods/session.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import type { OptimizerKind } from "../optim/optimizer.ts";
import { readTokenizer, tokenizerParts } from "../data/tokenizer.ts";
import { tinyTokenizerFiles } from "../data/tiny_tokenizer_testing.ts";
import { MemoryRunStateStore } from "./run_state_store.ts";
import { memoryRunHost, runFineTune, type RunResult, type RunSpec } from "./run.ts";

const config = tinyConfig("qwen2", 2);
const rows = Array.from({ length: 5 }, (_, r) => {
  const ids = Int32Array.from({ length: 12 + r }, (_, i) => (r * 31 + i * 7) % 250);
  return { inputIds: ids, labels: ids.slice() };
});

/** One invocation: fresh kernels and a fresh store, as a new edge isolate has. */
async function invocation(
  method: MethodName,
  optimizer: OptimizerKind,
  extra: Partial<RunSpec>,
): Promise<{ result: RunResult; files: Map<string, Uint8Array>; log: string[] }> {
  using loaded = await loadKernels({ threads: 1 });
  const { kernels, arena } = loaded;
  const store = createRandomWeightStore({ config, kernels, arena, quant: "int4", seed: 4 });
  const log: string[] = [];
  const host = memoryRunHost((l) => log.push(l));
  const result = await runFineTune(host, {
    store,
    kernels,
    arena,
    adapter: { r: 4, alpha: 8, targets: ["q", "v", "down"], baseModel: "tiny" },
    session: {
      method,
      optimizer: { kind: optimizer, lr: 2e-3, weightDecay: 0.01 },
      maxGradNorm: method === "mezo" ? 0 : 1,
      seed: 9,
    },
    train: rows,
    batchSize: 2,
    seqLen: 16,
    steps: 6,
    schedule: { kind: "cosine", baseLr: 2e-3, warmupSteps: 2 },
    out: "adapter",
    ...extra,
  });
  await store.close();
  return { result, files: host.files, log };
}

for (
  const [method, optimizer] of [["mesp", "adamw"], ["mezo", "sgd"], ["full", "adamw8bit"]] as const
) {
  Deno.test(`runFineTune: 3 invocations of 2 steps = 6 steps in one (${method}, ${optimizer})`, async () => {
    const straight = await invocation(method, optimizer, {});
    strictEqual(straight.result.step, 6);
    const weights = straight.files.get("adapter/adapter_model.safetensors");
    ok(weights && weights.byteLength > 0);
    ok(straight.files.has("adapter/adapter_config.json"));

    const store = new MemoryRunStateStore();
    const sliced = { stateStore: { store, key: "run-a" }, stopAfter: { steps: 2 } };
    const steps: number[] = [];
    let last = null;
    for (let i = 0; i < 3; i++) {
      last = await invocation(method, optimizer, sliced);
      steps.push(last.result.step);
      // Only the invocation that reaches the last step writes the adapter.
      strictEqual(last.files.size, i < 2 ? 0 : 2);
      strictEqual(last.result.paused, i < 2);
      if (i > 0) ok(last.log.includes(`resumed from run-a at step ${2 * i}`), last.log.join("\n"));
    }
    deepStrictEqual(steps, [2, 4, 6]);
    deepStrictEqual(last!.files.get("adapter/adapter_model.safetensors"), weights);
    deepStrictEqual(
      last!.result.history.map((p) => p.loss),
      straight.result.history.map((p) => p.loss),
    );
  });
}

Deno.test("runFineTune: a time budget pauses after at least one step, and the state resumes", async () => {
  let t = 0;
  const store = new MemoryRunStateStore();
  // Each step takes 10 ms of this clock; a 25 ms budget fits two, never a third.
  const host = { now: () => (t += 5) };
  const first = await invocationWithClock(host.now, store, 25);
  strictEqual(first.result.paused, true);
  ok(first.result.step >= 1 && first.result.step < 6, `${first.result.step}`);
  ok(first.result.state && first.result.state.byteLength > 0);
  ok(await store.get("timed"));
  const second = await invocationWithClock(host.now, store, 1e9);
  strictEqual(second.result.step, 6);
  strictEqual(second.result.paused, false);
});

async function invocationWithClock(now: () => number, store: MemoryRunStateStore, ms: number) {
  using loaded = await loadKernels({ threads: 1 });
  const { kernels, arena } = loaded;
  const ws = createRandomWeightStore({ config, kernels, arena, quant: "int4", seed: 4 });
  const host = { ...memoryRunHost(() => {}), now };
  const result = await runFineTune(host, {
    store: ws,
    kernels,
    arena,
    adapter: { r: 2, alpha: 4, targets: ["q"], baseModel: "tiny" },
    session: {
      method: "mesp",
      optimizer: { kind: "sgd", lr: 1e-3, weightDecay: 0 },
      maxGradNorm: 0,
      seed: 1,
    },
    train: rows,
    batchSize: 1,
    seqLen: 16,
    steps: 6,
    out: "",
    stateStore: { store, key: "timed" },
    stopAfter: { ms },
  });
  await ws.close();
  return { result, files: host.files };
}

Deno.test("runFineTune: rows without a token to train on, and a state past the steps, are refused", async () => {
  await rejects(
    invocation("mesp", "sgd", { train: [] }),
    /no training rows given/,
  );
  const store = new MemoryRunStateStore();
  await invocation("mesp", "sgd", { stateStore: { store, key: "k" }, stopAfter: { steps: 4 } });
  await rejects(
    invocation("mesp", "sgd", { stateStore: { store, key: "k" }, steps: 3 }),
    /3 is below the checkpoint's step 4/,
  );
});

Deno.test("runFineTune: the tokenizer is released once the text data is read, before the session", async () => {
  const files = tinyTokenizerFiles(config.vocabSize);
  const enc = new TextEncoder();
  const tokenizer = await readTokenizer({
    tokenizerJson: enc.encode(files.tokenizerJson),
    tokenizerConfig: enc.encode(files.tokenizerConfig),
  });
  const tables = tokenizerParts(tokenizer)!.parsed.model.arrays();
  let loads = 0;
  const jsonl = ['{"text": "the cat sat on the mat"}', '{"text": "a dog ran"}'].join("\n");
  const host = {
    ...memoryRunHost(() => {}),
    openData: () => Promise.resolve(new Blob([jsonl]).stream()),
  };
  using loaded = await loadKernels({ threads: 1 });
  const { kernels, arena } = loaded;
  const store = createRandomWeightStore({ config, kernels, arena, quant: "int4", seed: 4 });
  let releasedBeforeSession: boolean | null = null;
  await runFineTune(host, {
    store,
    kernels,
    arena,
    adapter: { r: 2, alpha: 4, targets: ["q"], baseModel: "tiny" },
    session: {
      method: "mesp",
      optimizer: { kind: "sgd", lr: 1e-3, weightDecay: 0 },
      maxGradNorm: 0,
      seed: 1,
    },
    train: "train.jsonl",
    batchSize: 1,
    seqLen: 16,
    steps: 1,
    out: "adapter",
    tokenizer: () => (loads++, Promise.resolve(tokenizer)),
    checkMemory: () =>
      void (releasedBeforeSession = tables.every((t) => t.buffer.byteLength === 0)),
  });
  await store.close();
  strictEqual(loads, 1);
  strictEqual(releasedBeforeSession, true);
});
