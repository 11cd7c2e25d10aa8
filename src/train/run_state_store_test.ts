import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import type { LoraTensors } from "../model/lora.ts";
import { tinyConfig } from "../model/random_weights.ts";
import type { TrainingState } from "./run_state.ts";
import {
  collectBytes,
  decodeRunState,
  encodeRunState,
  MemoryRunStateStore,
} from "./run_state_store.ts";

const config = tinyConfig("qwen2", 1);

function state(): TrainingState {
  const lora: LoraTensors = new Map();
  const h = config.hiddenSize;
  const a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  lora.set(a, { shape: [2, h], data: Float32Array.from({ length: 2 * h }, (_, i) => i / 7) });
  lora.set(b, {
    shape: [config.numHeads * config.headDim, 2],
    data: new Float32Array(2 * h).fill(-0.5),
  });
  return {
    step: 3,
    adapter: { r: 2, alpha: 4, targets: ["q"], baseModel: "tiny" },
    lora,
    optimizer: {
      stepCount: 3,
      tensors: new Map<string, Float32Array | Uint8Array>([
        ["m.0", Float32Array.of(1, -2, 3.5)],
        ["codes.0", Uint8Array.of(0, 255, 7)],
      ]),
      rng: [1, 2, 3, 4],
    },
    data: { epoch: 1, index: 2 },
    args: { lr: 0.001 },
    history: [{ step: 1, loss: 5 }, { step: 2, loss: 4.5, evalLoss: 4.75 }, { step: 3, loss: 4 }],
  };
}

Deno.test("a run state round-trips through bytes, every field exact", async () => {
  const s = state();
  const back = await decodeRunState(await encodeRunState(s), "kv:run", config);
  deepStrictEqual(back.lora, s.lora);
  deepStrictEqual(back.optimizer, s.optimizer);
  strictEqual(back.step, 3);
  deepStrictEqual(back.data, s.data);
  deepStrictEqual(back.history, s.history);
  deepStrictEqual(back.args, s.args);
  deepStrictEqual(back.adapter.targets, ["q"]);
});

Deno.test("bytes that are not a run state, or a state for another model, are refused naming them", async () => {
  await rejects(decodeRunState(new Uint8Array(3), "kv:bad", config), /kv:bad/);
  await rejects(
    decodeRunState(await encodeRunState(state()), "kv:run", tinyConfig("qwen2", 2)),
    /kv:run.*missing tensor/,
  );
});

Deno.test("MemoryRunStateStore keeps copies; collectBytes joins chunks", async () => {
  const store = new MemoryRunStateStore();
  const v = Uint8Array.of(1, 2, 3);
  await store.put("k", v);
  v[0] = 9;
  deepStrictEqual(await store.get("k"), Uint8Array.of(1, 2, 3));
  strictEqual(await store.get("other"), null);
  async function* parts() {
    yield Uint8Array.of(1);
    yield Uint8Array.of(2, 3);
  }
  deepStrictEqual(await collectBytes(parts()), Uint8Array.of(1, 2, 3));
});
