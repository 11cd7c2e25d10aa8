/**
 * Cloudflare's runtime for real: `examples/edge/worker.ts` bundled by `deno bundle` (it imports
 * `mod_slim.ts`, so no base64 builds are in it) and run by workerd (npm `workerd`, its prebuilt
 * binary) from a `config.capnp` written here, with the relaxed or simd128 kernels injected as a
 * wasm module (Cloudflare's CompiledWasm import) and the outbound network open to 127.0.0.1 only
 * for the checkpoint server this test starts. In workerd:
 *
 * 1. a fine-tune of a model made in memory (`/finetune?demo=1`): the loss falls;
 * 2. a fine-tune of a tiny random checkpoint read from a local HTTP server by Range requests
 *    through `urlFiles`: the loss falls and the adapter has the model's shapes;
 * 3. a fine-tune spread over 3 invocations of 2 steps, its state kept between them in a
 *    writable `disk` service bound as `STATE`: the adapter of 6 steps in one invocation, bit for
 *    bit;
 * 4. a SmolLM2-135M-shaped checkpoint (2 of its 30 layers; all 30 in `bench/workerd_memory.ts`)
 *    streamed from a local Range server, the isolate's memory read through the V8 inspector.
 *
 * The harness (bundle, config, inspector) is `scripts/workerd_run.ts`.
 *
 * Also: the bundle of `mod_slim.ts` is smaller than `mod.ts`'s by at least the embedded builds.
 *
 * Skipped, with a message, where the workerd binary is absent (`npm install`).
 */
import assert from "node:assert/strict";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { rangeFileResponse } from "../examples/shared/range_file.ts";
import {
  bundle,
  DEADLINE_MS,
  hasWorkerd,
  prepareWorker,
  runWorkerdFinetune,
  startWorkerd,
  WORKERD,
  type Workerd,
} from "../scripts/workerd_run.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const available = hasWorkerd();
if (!available) {
  console.log(`workerd_test: SKIPPED: ${WORKERD} is absent (install it with: npm install)`);
}

interface FinetuneAnswer {
  ok: boolean;
  error?: string;
  kernels: string;
  step: number;
  done: boolean;
  losses: number[];
  model: { layers: number; hidden: number };
  adapter:
    | { config: { r: number; peft_type: string }; safetensorsBytes: number; sha256: string }
    | null;
  memory: { workingSetBytes: number };
}

Deno.test({
  name:
    "workerd: the bundled worker trains in memory, from a URL, and over 3 invocations with injected kernels",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slimtune-workerd-" });
    const ckpt = `${dir}/ckpt`;
    let ckptServer: Deno.HttpServer<Deno.NetAddr> | null = null;
    let workerd: Workerd | null = null;
    try {
      await prepareWorker(dir);
      const bundled = await Deno.readTextFile(`${dir}/worker.js`);
      assert.doesNotMatch(bundled, /KERNELS_SIMD_BASE64|AGFzbQEAAAAB/, "base64 builds bundled");
      await Deno.mkdir(ckpt);
      await makeCheckpoint({ preset: "tiny-qwen2", out: ckpt, dtype: "bf16", seed: 11 });
      ckptServer = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (req) =>
          rangeFileResponse(ckpt, decodeURIComponent(new URL(req.url).pathname.slice(1)), req),
      );
      for (const build of ["relaxed", "simd"] as const) {
        workerd = await startWorkerd(dir, build);
        const stateDir = `${dir}/state-${build}`;
        const base = workerd.base;
        const ask = async (q: Record<string, string>): Promise<FinetuneAnswer> => {
          const common = { optimizer: "adamw", lr: "0.01", seq: "32", maxMemoryMB: "64" };
          const res = await fetch(`${base}/finetune?${new URLSearchParams({ ...common, ...q })}`, {
            signal: AbortSignal.timeout(DEADLINE_MS.request),
          });
          const body = await res.json() as FinetuneAnswer;
          assert.equal(res.status, 200, `workerd (${build}): ${body.error}`);
          return body;
        };
        const falls = (l: number[], what: string) => {
          assert.ok(l.every(Number.isFinite), what);
          const last3 = l.slice(-3).reduce((a, b) => a + b, 0) / 3;
          assert.ok(last3 < l[0] - 0.05, `${what}: loss did not fall: ${l}`);
        };
        // 1. In memory.
        const mem = await ask({ demo: "1", steps: "12" });
        assert.equal(mem.kernels, build);
        assert.equal(mem.losses.length, 12);
        falls(mem.losses, `workerd ${build} in memory`);
        // 2. From a URL, by Range requests.
        const url = await ask({ model: `http://127.0.0.1:${ckptServer.addr.port}/`, steps: "12" });
        assert.equal(url.kernels, build);
        assert.deepEqual([url.model.layers, url.model.hidden], [2, 64]);
        falls(url.losses, `workerd ${build} from a URL`);
        assert.equal(url.adapter!.config.peft_type, "LORA");
        assert.equal(url.adapter!.config.r, 8);
        assert.ok(url.adapter!.safetensorsBytes > 0 && url.memory.workingSetBytes > 0);
        // 3. One fine-tune over three invocations of 2 steps, the state kept in the STATE
        // service between them: the adapter of 6 steps in one invocation, bit for bit.
        const run = { demo: "1", steps: "6", method: "mesp" };
        const whole = await ask(run);
        assert.ok(whole.done && whole.adapter);
        const slices: FinetuneAnswer[] = [];
        for (let i = 0; i < 3; i++) {
          slices.push(await ask({ ...run, run: `run-${build}`, stepsPerCall: "2" }));
        }
        assert.deepEqual(slices.map((a) => [a.step, a.done]), [[2, false], [4, false], [6, true]]);
        assert.deepEqual(slices.slice(0, 2).map((a) => a.adapter), [null, null]);
        assert.equal(slices[2].adapter!.sha256, whole.adapter.sha256);
        assert.deepEqual(slices[2].losses, whole.losses);
        assert.ok((await Deno.stat(`${stateDir}/run-${build}`)).size > 0);
        console.log(
          `workerd_test: ${build}: in memory ${mem.losses[0].toFixed(3)} -> ` +
            `${mem.losses.at(-1)!.toFixed(3)}, from a URL ${url.losses[0].toFixed(3)} -> ` +
            `${url.losses.at(-1)!.toFixed(3)} (12 steps each)`,
        );
        await workerd.close();
        workerd = null;
      }
    } finally {
      await workerd?.close();
      await ckptServer?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("mod_slim.ts: its bundle leaves out the embedded builds that mod.ts's carries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-slim-" });
  try {
    const full = await bundle("mod.ts", `${dir}/full.js`);
    const slim = await bundle("mod_slim.ts", `${dir}/slim.js`);
    let embedded = 0;
    for (const b of ["relaxed", "simd", "relaxed-threads", "simd-threads"]) {
      embedded += (await Deno.stat(`${ROOT}wasm/kernels.${b}.wasm`)).size * 4 / 3;
    }
    assert.ok(full - slim >= 0.95 * embedded, `full ${full} B, slim ${slim} B`);
    console.log(
      `mod.ts bundle ${(full / 1024).toFixed(0)} KiB, mod_slim.ts ${(slim / 1024).toFixed(0)} KiB`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "workerd: a SmolLM2-135M-shaped model (2 of 30 layers) streams and trains; the isolate's memory",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const r = await runWorkerdFinetune({ layers: 2, steps: 3, seq: 64, optimizer: "adamw" });
    const a = r.response as {
      error?: string;
      model: { layers: number; hidden: number; vocab: number };
      losses: number[];
      memory: Record<string, number>;
    };
    assert.equal(r.status, 200, a.error);
    assert.deepEqual([a.model.layers, a.model.hidden, a.model.vocab], [2, 576, 49152]);
    assert.ok(a.losses.every(Number.isFinite) && a.losses.at(-1)! < a.losses[0], `${a.losses}`);
    const m = a.memory;
    // The inspector saw the request: its backing stores hold at least the wasm memory and the
    // int4 cache the worker reports, and the JS heap is in use.
    assert.equal(r.samplerError, undefined);
    assert.ok(r.samples > 0);
    assert.ok(r.heapUsedPeakBytes > 0);
    assert.ok(
      r.backingStoragePeakBytes >= m.wasmCommittedBytes + m.cacheBytes,
      `backing stores ${r.backingStoragePeakBytes} < wasm ${m.wasmCommittedBytes} + cache ${m.cacheBytes}`,
    );
    assert.ok(r.isolatePeakBytes <= 128 * 1048576, `isolate peak ${r.isolatePeakBytes}`);
    const mb = (b: number | null) => b === null ? "n/a" : `${(b / 1048576).toFixed(1)} MB`;
    console.log(
      `workerd SmolLM2-135M (2 layers): isolate peak ${mb(r.isolatePeakBytes)} (V8 heap ` +
        `${mb(r.heapUsedPeakBytes)}, backing stores ${mb(r.backingStoragePeakBytes)}; wasm ` +
        `${mb(m.wasmHighWaterBytes)}, int4 cache ${mb(m.cacheBytes)}), process VmHWM ` +
        `${mb(r.processPeakBytes)}`,
    );
  },
});
