import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import type { Batch } from "../data/batch.ts";
import { BatchSource } from "../data/dataset.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { StepResult, TrainingSession } from "../methods/session.ts";
import type { TrainingState } from "./run_state.ts";
import type { StepRecord } from "./metrics.ts";
import { captureState, MemoryLimitError, NonFiniteError, runTraining } from "./trainer.ts";

/**
 * A deterministic stand-in session: one parameter vector pulled towards the mean token id of each
 * batch by SGD, so the loss depends on the data order, the learning rate and every past step.
 */
class FakeSession {
  w = new Float32Array([0, 0]);
  stepCount = 0;
  seenLr: number[] = [];
  seenBatches: number[] = [];
  nanAt = -1;
  readonly options = {} as TrainingSession["options"];

  #target(batches: Batch[]): number {
    let s = 0, n = 0;
    for (const b of batches) for (const id of b.inputIds) if (id !== 0) (s += id, n++);
    return s / n;
  }
  step(micro: Batch[], lr: number): Promise<StepResult> {
    this.stepCount++;
    this.seenLr.push(lr);
    this.seenBatches.push(micro.length);
    const t = this.#target(micro);
    let loss = 0;
    for (let i = 0; i < this.w.length; i++) {
      const d = this.w[i] - t;
      loss += d * d;
      this.w[i] -= lr * 2 * d;
    }
    if (this.stepCount === this.nanAt) loss = NaN;
    return Promise.resolve({ loss, gradNorm: 1, tokens: 4 });
  }
  evaluate(b: Batch) {
    const t = this.#target([b]);
    return Promise.resolve({ loss: (this.w[0] - t) ** 2, tokens: 2 });
  }
  loraTensors() {
    return new Map([["w", { shape: [1, 2] as [number, number], data: this.w.slice() }]]);
  }
  setLoraTensors(t: LoraTensors) {
    this.w.set(t.get("w")!.data);
  }
  optimizerState() {
    return { stepCount: this.stepCount, tensors: new Map(), rng: [this.stepCount] };
  }
  setOptimizerState(s: { stepCount: number }) {
    this.stepCount = s.stepCount;
  }
  memory() {
    return { wasmHighWater: 1000, jsBytes: 0, grewLastStep: false };
  }
}

function row(...ids: number[]) {
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(ids) };
}
const rows = [row(1, 2), row(3, 4), row(5, 6, 7), row(8, 9), row(10, 11)];
const sourceOptions = { batchSize: 1, seqLen: 3, padId: 0, seed: 5 };

function options(session: FakeSession, extra: Partial<Parameters<typeof runTraining>[0]> = {}) {
  return {
    session: session as unknown as TrainingSession,
    train: new BatchSource(rows, sourceOptions),
    evalBatches: [],
    steps: 8,
    gradAccum: 2,
    schedule: { kind: "linear" as const, baseLr: 0.1, warmupSteps: 2 },
    evalEvery: 0,
    saveEvery: 0,
    padId: 0,
    adapter: { r: 1, alpha: 1, targets: ["q" as const], baseModel: "fake" },
    args: { seed: 5 },
    memory: () => ({
      wasmHighWaterBytes: 1000,
      wasmCommittedBytes: 65536,
      jsBytesHeld: 24,
      workingSetBytes: 1024,
      processPeakBytes: null,
    }),
    ...extra,
  };
}

Deno.test("the loop follows the schedule, accumulates micro-batches and records every step", async () => {
  const s = new FakeSession();
  const records: StepRecord[] = [];
  const r = await runTraining(options(s, { onStep: (rec) => void records.push(rec) }));
  strictEqual(r.step, 8);
  strictEqual(r.interrupted, false);
  deepStrictEqual(s.seenBatches, [2, 2, 2, 2, 2, 2, 2, 2]);
  // Warm-up 0, 0.05, then linear decay over the remaining 6 steps (transformers semantics).
  deepStrictEqual(s.seenLr.map((x) => +x.toFixed(6)), [
    0,
    0.05,
    0.1,
    0.083333,
    0.066667,
    0.05,
    0.033333,
    0.016667,
  ]);
  deepStrictEqual(records.map((x) => x.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  deepStrictEqual(r.history.map((h) => h.loss), records.map((x) => x.loss));
  ok(records.every((x) => x.tokens >= 4 && x.workingSetBytes === 1024));
});

Deno.test("interrupting at a checkpoint and resuming reproduces the uninterrupted run exactly", async () => {
  const straight = new FakeSession();
  const full = await runTraining(options(straight));

  const saved: TrainingState[] = [];
  const first = new FakeSession();
  await runTraining(
    options(first, { saveEvery: 3, save: (st) => Promise.resolve(void saved.push(st)) }),
  );
  deepStrictEqual(saved.map((x) => x.step), [3, 6]);
  // Resume from checkpoint 3 in a fresh session and data source, as after a SIGKILL.
  const ck = saved[0];
  const resumed = new FakeSession();
  resumed.setLoraTensors(ck.lora);
  resumed.setOptimizerState(ck.optimizer);
  const train = new BatchSource(rows, sourceOptions);
  train.seek(ck.data!);
  const r = await runTraining(options(resumed, { train, startStep: ck.step, history: ck.history }));
  deepStrictEqual(resumed.w, straight.w);
  deepStrictEqual(r.history, full.history);
});

Deno.test("a stop request checkpoints the last completed step and stops", async () => {
  const s = new FakeSession();
  let calls = 0;
  const saved: TrainingState[] = [];
  const r = await runTraining(options(s, {
    stopRequested: () => ++calls > 4,
    save: (st) => Promise.resolve(void saved.push(st)),
  }));
  strictEqual(r.interrupted, true);
  strictEqual(r.step, 4);
  deepStrictEqual(saved.map((x) => x.step), [4]);
  deepStrictEqual(saved[0].lora.get("w")!.data, s.w);
});

Deno.test("a non-finite loss stops with a clear error and saves nothing after it", async () => {
  const s = new FakeSession();
  s.nanAt = 5;
  const saved: number[] = [];
  await rejects(
    runTraining(
      options(s, { saveEvery: 2, save: (st) => Promise.resolve(void saved.push(st.step)) }),
    ),
    (e) => e instanceof NonFiniteError && e.step === 5 && /step 5: loss is NaN/.test(e.message),
  );
  deepStrictEqual(saved, [2, 4]);
});

Deno.test("evaluation: periodic, final, and evaluation-only runs", async () => {
  const evalBatches = [new BatchSource([row(2, 2)], { ...sourceOptions, shuffle: false }).next()];
  const s = new FakeSession();
  const records: StepRecord[] = [];
  const r = await runTraining(
    options(s, { evalBatches, evalEvery: 3, onStep: (x) => void records.push(x) }),
  );
  deepStrictEqual(records.filter((x) => x.evalLoss !== undefined).map((x) => x.step), [3, 6, 8]);
  strictEqual(r.evalLoss, (s.w[0] - 2) ** 2);

  const only: StepRecord[] = [];
  const e = await runTraining(options(new FakeSession(), {
    train: null,
    steps: 0,
    evalBatches,
    onStep: (x) => void only.push(x),
  }));
  strictEqual(e.evalLoss, 4); // w = 0, target 2
  strictEqual(only.length, 1);
  strictEqual(only[0].loss, null);
  strictEqual(only[0].evalLoss, 4);
});

Deno.test("a working set over the limit stops the run", async () => {
  await rejects(
    runTraining(options(new FakeSession(), { maxWorkingSetBytes: 1000 })),
    (e) => e instanceof MemoryLimitError && e.step === 1,
  );
});

Deno.test("a process over --max-memory saves a checkpoint of that step, then stops", async () => {
  const saved: number[] = [];
  let rss = 500;
  await rejects(
    runTraining(options(new FakeSession(), {
      maxProcessBytes: 1000,
      processBytes: () => (rss += 200),
      save: (st) => {
        saved.push(st.step);
        return Promise.resolve();
      },
    })),
    (e) =>
      e instanceof MemoryLimitError && e.step === 3 && e.bytes === 1100 &&
      /the process holds .* over --max-memory/.test(e.message),
  );
  deepStrictEqual(saved, [3]);
  // Where the resident size cannot be read, nothing stops the run.
  const done = await runTraining(options(new FakeSession(), {
    maxProcessBytes: 1,
    processBytes: () => null,
  }));
  strictEqual(done.step, 8);
});

Deno.test("captureState copies the adapter rather than aliasing it", () => {
  const s = new FakeSession();
  const o = options(s);
  const st = captureState(o, 0, []);
  s.w[0] = 42;
  strictEqual(st.lora.get("w")!.data[0], 0);
  deepStrictEqual(st.data, { epoch: 0, index: 0 });
});

Deno.test("defaults: session, data and steps are enough (constant lr from the session, one micro-batch, session memory)", async () => {
  const s = new FakeSession();
  (s as unknown as { options: unknown }).options = {
    optimizer: { kind: "sgd", lr: 0.05, weightDecay: 0 },
    lora: { rank: 4, alpha: 8, targets: ["q", "v"] },
    arena: { highWater: 1000, committed: 65536 },
  };
  const records: StepRecord[] = [];
  const saved: TrainingState[] = [];
  const r = await runTraining({
    session: s as unknown as TrainingSession,
    train: new BatchSource(rows, sourceOptions),
    steps: 3,
    onStep: (rec) => void records.push(rec),
    stopRequested: () => records.length === 2,
    save: (st) => Promise.resolve(void saved.push(st)),
  });
  deepStrictEqual(s.seenLr, [0.05, 0.05]);
  deepStrictEqual(s.seenBatches, [1, 1]);
  strictEqual(r.interrupted, true);
  strictEqual(r.evalLoss, null);
  strictEqual(records[0].workingSetBytes, 1000); // the session's arena high-water + JS bytes
  strictEqual(records[0].processPeakBytes, null);
  // The source's padding id (0) is used: a 2-token row padded to 3 counts 2 tokens (with no
  // padding id every record would count 3). Only one of the rows has 3 tokens.
  ok(records.some((x) => x.tokens === 2));
  ok(records.every((x) => x.tokens === 2 || x.tokens === 3));
  // The stop checkpoint describes the session's adapter.
  deepStrictEqual(saved[0].adapter, { r: 4, alpha: 8, targets: ["q", "v"], baseModel: "" });
  deepStrictEqual(saved[0].args, {});
});

Deno.test("bad loop settings are refused before the first step", async () => {
  for (
    const [extra, what] of [
      [{ gradAccum: 0 }, /gradAccum must be an integer >= 1, got 0/],
      [{ evalEvery: 1.5 }, /evalEvery/],
      [{ saveEvery: -1 }, /saveEvery/],
      [{ schedule: { kind: "constant" as const, baseLr: NaN, warmupSteps: 0 } }, /learning rate/],
    ] as const
  ) {
    const s = new FakeSession();
    await rejects(runTraining(options(s, extra)), what);
    strictEqual(s.stepCount, 0);
  }
});
