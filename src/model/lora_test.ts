import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { loraParamCount, LoraParams, peftName } from "./lora.ts";
import { tinyConfig } from "./random_weights.ts";
import { LINEAR_NAMES } from "./weights.ts";

Deno.test("LoraParams: PEFT names and shapes, A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0, one allocation", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const config = tinyConfig("qwen2", 2);
  const cfg = { rank: 4, alpha: 8, targets: [...LINEAR_NAMES] };
  const before = arena.used;
  const lora = new LoraParams(config, cfg, arena, 1);
  assert.equal(lora.scale, 2);
  assert.equal(arena.used - before, lora.bytes);
  assert.equal(lora.params.length, 2 * 7 * 2);
  assert.equal(lora.params.reduce((s, p) => s + p.n, 0), loraParamCount(config, cfg));
  assert.equal(
    lora.params[0].name,
    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
  );
  assert.equal(
    peftName(1, "down", "B"),
    "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
  );
  const map = lora.toMap();
  assert.deepEqual(map.get(peftName(0, "down", "A"))!.shape, [4, 128]);
  assert.deepEqual(map.get(peftName(0, "k", "B"))!.shape, [32, 4]);
  for (const block of lora.blocks) {
    for (const l of Object.values(block)) {
      const a = arena.f32(l.a.ptr, l.a.n);
      const bound = 1 / Math.sqrt(l.inFeatures);
      assert.ok(a.every((x) => x >= -bound && x < bound));
      // Spread: the largest |A| is close to the bound (256+ uniform draws).
      assert.ok(a.reduce((m, x) => Math.max(m, Math.abs(x)), 0) > 0.9 * bound);
      assert.ok(arena.f32(l.b.ptr, l.b.n).every((x) => x === 0));
      assert.ok(arena.f32(l.a.grad, l.a.n).every((x) => x === 0));
    }
  }
  // Same seed, same init; round trip through the PEFT map.
  const again = new LoraParams(config, cfg, arena, 1);
  assert.deepEqual(again.toMap(), map);
  const other = new LoraParams(config, cfg, arena, 2);
  assert.notDeepEqual(other.toMap().get(peftName(0, "q", "A")), map.get(peftName(0, "q", "A")));
  other.fromMap(map);
  assert.deepEqual(other.toMap(), map);
  map.set(peftName(0, "q", "A"), { shape: [3, 64], data: new Float32Array(192) });
  assert.throws(() => other.fromMap(map), /shape/);
});

Deno.test("LoraParams gradient storage: one shared block slot, none, or a whole buffer on demand", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const config = tinyConfig("llama", 3);
  const cfg = { rank: 2, alpha: 4, targets: [...LINEAR_NAMES] };
  const before = arena.used;
  const lora = new LoraParams(config, cfg, arena, 1, "block");
  assert.equal(arena.used - before, lora.bytes);
  assert.equal(lora.bytes, lora.paramBytes + lora.blockBytes);
  assert.equal(lora.paramBytes, 3 * lora.blockBytes);
  // Every block's tensors share the slot at the same offsets.
  const [b0, b2] = [lora.blockParams(0), lora.blockParams(2)];
  b0.forEach((p, j) => assert.equal(p.grad, b2[j].grad));
  const last = b0[b0.length - 1];
  assert.equal(last.grad + last.n * 4, lora.base + lora.bytes);
  arena.f32(b0[0].grad, b0[0].n).fill(1);
  lora.beginBlockGrads(1);
  assert.ok(arena.f32(b0[0].grad, b0[0].n).every((x) => x === 0));
  // On demand: a whole buffer, zeroed, with distinct pointers.
  lora.ensureWholeGrads();
  assert.equal(lora.gradientStorage, "whole");
  assert.notEqual(lora.blockParams(0)[0].grad, lora.blockParams(2)[0].grad);
  assert.ok(lora.params.every((p) => arena.f32(p.grad, p.n).every((x) => x === 0)));
  const none = new LoraParams(config, cfg, arena, 1, "none");
  assert.equal(none.bytes, none.paramBytes);
  assert.ok(none.params.every((p) => p.grad === 0));
});

Deno.test("LoraParams.views: the toMap tensors as live views of the arena, not copies", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const lora = new LoraParams(
    tinyConfig("llama", 2),
    {
      rank: 2,
      alpha: 4,
      targets: ["q", "up"],
    },
    arena,
    3,
  );
  const copies = lora.toMap();
  const views = lora.views();
  assert.deepEqual([...views.keys()], [...copies.keys()]);
  for (const [name, v] of views) {
    assert.deepEqual(v.shape, copies.get(name)!.shape);
    assert.deepEqual(v.data, copies.get(name)!.data);
    assert.equal(v.data.buffer, arena.memory.buffer, `${name} is a view`);
  }
  const p = lora.params[0];
  arena.f32(p.ptr, p.n)[0] = 42;
  assert.equal(views.get(p.name)!.data[0], 42);
  assert.notEqual(copies.get(p.name)!.data[0], 42);
});
