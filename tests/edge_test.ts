/**
 * Edge runtimes: a fine-tune with NO permissions at all (`deno run --no-prompt`, no --allow
 * flags; kernels injected as a compiled module, model bytes made in memory), and the
 * Cloudflare-style module worker (`examples/edge/worker.ts`) run by `deno serve` with network
 * access only, streaming a SmolLM2-135M-shaped checkpoint (2 of its 30 layers here, for time)
 * over HTTP Range requests within a 128 MB working-set budget.
 * `scripts/edge_worker_run.ts` runs the full 30-layer shape.
 */
import assert from "node:assert/strict";
import { MemorySource, parseAdapterConfig, SafetensorsFile } from "../mod.ts";
import { runEdgeWorker } from "../scripts/edge_worker_run.ts";
import { runWithDeadline } from "../scripts/harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("edge: a fine-tune runs under `deno run` with no permissions at all", async () => {
  // 30 steps of a small model after a type check: a minute alone, several when loaded.
  const out = await runWithDeadline(Deno.execPath(), [
    "run",
    "--no-prompt",
    "examples/edge/finetune.ts",
  ], {
    timeoutMs: 8 * 60_000,
    what: "examples/edge/finetune.ts with no permissions",
    cwd: ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    clearEnv: true,
  });
  const stderr = out.stderr;
  assert.equal(out.code, 0, stderr);
  assert.doesNotMatch(stderr, /NotCapable|PermissionDenied|requires .* access/);
  const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
  assert.equal(r.ok, true);
  assert.ok(["relaxed", "simd"].includes(r.variant));
  const losses: number[] = r.losses;
  assert.equal(losses.length, 30);
  assert.ok(losses.every(Number.isFinite));
  const last5 = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(last5 < losses[0] - 0.1, `loss did not fall: ${losses[0]} -> ${last5}`);
  assert.equal(r.adapter.config.peft_type, "LORA");
  assert.equal(r.adapter.config.r, 8);
  assert.equal(r.adapter.tensors, 2 * 7 * 2);
  assert.ok(r.adapter.safetensorsBytes > 0);
  assert.ok(r.memory.workingSetBytes > 0 && r.memory.workingSetBytes <= 64 * 1048576);
});

Deno.test({
  name: "edge: the module worker streams a SmolLM2-135M-shaped model (2 layers) within 128 MB",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const run = await runEdgeWorker({
      layers: 2,
      steps: 5,
      seq: 64,
      optimizer: "adamw",
      maxMemoryMB: 128,
      adapter: true,
    });
    const r = run.response as {
      ok: boolean;
      error?: string;
      model: { layers: number; hidden: number; heads: number; kvHeads: number; vocab: number };
      losses: number[];
      memory: Record<string, number>;
      adapter: { config: unknown; safetensorsBase64: string };
    };
    assert.equal(run.status, 200, r.error);
    assert.deepEqual(r.model.layers, 2);
    assert.deepEqual(
      [r.model.hidden, r.model.heads, r.model.kvHeads, r.model.vocab],
      [576, 9, 3, 49152],
    );
    assert.equal(r.losses.length, 5);
    assert.ok(r.losses.every(Number.isFinite));
    assert.ok(r.losses[4] < r.losses[0] - 0.2, `loss did not fall: ${r.losses}`);
    const m = r.memory;
    assert.equal(m.budgetBytes, 128 * 1048576);
    assert.ok(m.workingSetBytes <= m.budgetBytes, `working set ${m.workingSetBytes}`);
    assert.equal(m.workingSetBytes, m.wasmHighWaterBytes + m.jsBytesHeld);
    assert.ok(m.wasmHighWaterBytes <= m.arenaLimitBytes);
    assert.ok(m.cacheBytes > 0 && m.jsBytesHeld >= m.cacheBytes);
    console.log(
      `edge worker (2 layers): working set ${(m.workingSetBytes / 1048576).toFixed(1)} MB ` +
        `(arena ${(m.wasmHighWaterBytes / 1048576).toFixed(1)} MB + int4 cache ` +
        `${(m.cacheBytes / 1048576).toFixed(1)} MB); worker VmHWM ` +
        `${run.workerPeakBytes === null ? "n/a" : (run.workerPeakBytes / 1048576).toFixed(1)} MB`,
    );

    const info = parseAdapterConfig(JSON.stringify(r.adapter.config), "adapter_config.json");
    assert.equal(info.r, 8);
    const bytes = Uint8Array.from(atob(r.adapter.safetensorsBase64), (c) => c.charCodeAt(0));
    const st = await SafetensorsFile.open(new MemorySource("adapter_model.safetensors", bytes));
    assert.equal(st.names().length, 2 * 7 * 2);
    assert.deepEqual(
      st.info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").shape,
      [8, 1536],
    );
  },
});
