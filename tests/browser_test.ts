/**
 * The browser example in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by
 * playwright-core): the page served by `examples/browser/serve.ts` (UI and training worker bundled
 * by `deno bundle` at start-up, COOP/COEP headers) is cross-origin isolated and fine-tunes the demo
 * model in a dedicated Worker whose kernels run on min(2, hardwareConcurrency) threads (more than
 * one wherever the machine has two cores); the loss falls, the chart is drawn, the main thread
 * stays responsive, and the adapter downloads as two files that parse as a PEFT adapter. A run on
 * one thread gives bit-identical losses (its steps/s are printed next to the threaded run's, with
 * the split threshold the kernels measured at load).
 * A last run trains from a checkpoint FOLDER given to the `<input type=file webkitdirectory>`
 * (the Files are posted to the worker and read by Blob slices).
 *
 * Skipped, with a message, where /usr/bin/chromium is absent (`apt-get install -y chromium`).
 * The screenshot's path is printed (under out/browser/).
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { MemorySource, parseAdapterConfig, SafetensorsFile } from "../mod.ts";
import { startServer } from "../examples/browser/serve.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { MIN_WORK_CAP, MIN_WORK_FLOOR } from "../src/kernels/parallel.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("..", import.meta.url).pathname;

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const available = hasChromium();
if (!available) {
  console.log(
    `browser_test: SKIPPED: ${CHROMIUM} is absent (install it with: apt-get install -y chromium)`,
  );
}

/** `globalThis.slimtuneDemo` of the page (see examples/browser/app.ts). */
interface DemoState {
  state: string;
  runs: number;
  losses: number[];
  error: string | null;
  crossOriginIsolated: boolean;
  workerCrossOriginIsolated: boolean | null;
  hardwareConcurrency: number;
  threads: number | null;
  parallel: { minWork: number; source: string; roundTripUs: number; wakeUs: number } | null;
  stepsPerS: number;
  tokensPerS: number;
  workingSetBytes: number;
  maxMainThreadGapMs: number;
}

Deno.test({
  name:
    "browser: the page fine-tunes in a multi-core Worker, draws the loss, downloads the adapter",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer({ port: 0 });
    const profile = await Deno.makeTempDir({ prefix: "slimtune-chromium-" });
    const ckpt = await Deno.makeTempDir({ prefix: "slimtune-folder-" });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1000, height: 1000 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = context.pages()[0] ?? await context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      await page.goto(server.url);
      await page.waitForSelector("body[data-state=ready]", { timeout: 30_000 });
      assert.equal(await page.evaluate("globalThis.crossOriginIsolated"), true);

      const readDemo = () =>
        page.evaluate(() =>
          (globalThis as unknown as { slimtuneDemo: DemoState }).slimtuneDemo
        ) as Promise<DemoState>;
      const trainRun = async (o: { steps: number; threads: number; timeout: number }) => {
        const runs = (await readDemo()).runs;
        await page.fill("#steps", String(o.steps));
        await page.fill("#threads", String(o.threads));
        await page.click("#train");
        // Polled every 100 ms, not every frame: the page's own work is what its steps/s measure.
        await page.waitForFunction(`globalThis.slimtuneDemo.runs > ${runs}`, undefined, {
          timeout: o.timeout,
          polling: 100,
        });
        return await readDemo();
      };
      const before = await readDemo();
      assert.equal(before.crossOriginIsolated, true, "the page is not cross-origin isolated");
      const cores = before.hardwareConcurrency;
      assert.equal(cores, await page.evaluate("navigator.hardwareConcurrency"));
      const want = Math.min(2, cores);

      // 1. The demo model, made in the worker, on min(2, cores) kernel threads.
      const steps = 40;
      const demo = await trainRun({ steps, threads: want, timeout: 90_000 });
      assert.equal(demo.state, "done", `training failed in the page: ${demo.error}`);
      assert.equal(demo.workerCrossOriginIsolated, true);
      assert.equal(demo.threads, want, `kernel threads ${demo.threads}, wanted ${want}`);
      if (cores >= 2) assert.ok(demo.threads! > 1, "no multi-threaded kernels on >= 2 cores");
      // The split threshold the kernels measured at load is shown and within its bounds.
      const split = demo.parallel;
      if (want > 1) {
        assert.ok(split, "no split settings with threads");
        assert.equal(split.source, "measured");
        assert.ok(split.minWork >= MIN_WORK_FLOOR && split.minWork <= MIN_WORK_CAP);
        assert.ok(split.roundTripUs >= 0 && split.wakeUs >= 0, JSON.stringify(split));
        assert.match(
          await page.textContent("#status") ?? "",
          /calls split from \d+\.\d\dM multiply-adds \(round trip [\d.]+ µs, wake [\d.]+ µs; measured\)/,
        );
      }
      assert.match(
        await page.textContent("#kernel-threads") ?? "",
        new RegExp(`kernel threads: ${want} of ${want} asked .*cross-origin isolated`),
      );
      assert.equal(demo.losses.length, steps);
      assert.ok(demo.losses.every(Number.isFinite));
      const first = demo.losses[0];
      const last5 = demo.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
      assert.ok(last5 < first - 0.1, `loss did not fall: ${first} -> ${last5} (last-5 mean)`);
      assert.ok(demo.stepsPerS > 0 && demo.workingSetBytes > 0);
      // Training is off the main thread: its timers keep running (a generous bound, loaded CI).
      assert.ok(
        demo.maxMainThreadGapMs < 2000,
        `the main thread stalled ${demo.maxMainThreadGapMs.toFixed(0)} ms during training`,
      );
      // The live chart is an SVG with a polyline of the losses.
      assert.ok(await page.locator("#chart svg").count() === 1);
      assert.match(
        await page.textContent("#status") ?? "",
        new RegExp(`kernels: (relaxed|simd), ${want} threads?`),
      );
      assert.match(await page.textContent("#progress") ?? "", /step 40\/40 .* steps\/s/);

      await Deno.mkdir(`${ROOT}out/browser`, { recursive: true });
      const shot = `${ROOT}out/browser/slimtune_browser.png`;
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`browser_test: screenshot ${shot}`);

      // Download: two files, a PEFT adapter for the demo model's shape.
      const downloads: Map<string, Uint8Array> = new Map();
      const got = new Promise<void>((resolve, reject) => {
        page.on("download", async (d) => {
          try {
            const path = await d.path();
            downloads.set(d.suggestedFilename(), await Deno.readFile(path));
            if (downloads.size === 2) resolve();
          } catch (e) {
            reject(e);
          }
        });
      });
      await page.click("#download");
      await got;
      assert.deepEqual([...downloads.keys()].sort(), [
        "adapter_config.json",
        "adapter_model.safetensors",
      ]);
      const info = parseAdapterConfig(
        new TextDecoder().decode(downloads.get("adapter_config.json")),
        "adapter_config.json",
      );
      assert.equal(info.r, 8);
      assert.deepEqual(info.targets, ["q", "k", "v", "o", "gate", "up", "down"]);
      const st = await SafetensorsFile.open(
        new MemorySource("adapter_model.safetensors", downloads.get("adapter_model.safetensors")!),
      );
      assert.equal(st.names().length, 4 * 7 * 2); // 4 layers x 7 linears x (A, B)
      const bName = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
      assert.deepEqual(st.info(bName).shape, [128, 8]);
      const b = await st.read(bName);
      const bf = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      assert.ok(bf.some((v) => v !== 0), "lora_B is still zero after training");

      // 2. One kernel thread: the same losses bit for bit (the split kernels are exact).
      const mt = { stepsPerS: demo.stepsPerS, tokensPerS: demo.tokensPerS };
      if (want > 1) {
        const one = await trainRun({ steps, threads: 1, timeout: 90_000 });
        assert.equal(one.state, "done", `one-thread training failed: ${one.error}`);
        assert.equal(one.threads, 1);
        assert.equal(one.parallel, null);
        assert.deepEqual(one.losses, demo.losses);
        console.log(
          `browser_test: demo model, ${steps} steps: ${want} threads ` +
            `${mt.stepsPerS.toFixed(2)} steps/s (${mt.tokensPerS.toFixed(0)} tok/s), 1 thread ` +
            `${one.stepsPerS.toFixed(2)} steps/s (${one.tokensPerS.toFixed(0)} tok/s); ` +
            `split from ${(split!.minWork / 1e6).toFixed(2)}M multiply-adds (round trip ` +
            `${split!.roundTripUs.toFixed(1)} µs, wake ${split!.wakeUs.toFixed(0)} µs); ` +
            `longest main-thread stall ${demo.maxMainThreadGapMs.toFixed(0)} ms`,
        );
      } else {
        console.log(`browser_test: 1 core: ${mt.stepsPerS.toFixed(2)} steps/s on 1 thread`);
      }

      // 3. A checkpoint folder through <input type=file webkitdirectory> (read by Blob slices).
      await makeCheckpoint({ preset: "tiny-qwen2", out: ckpt, dtype: "bf16", seed: 5 });
      await page.check("input[name=source][value=folder]");
      await page.setInputFiles("#folder", ckpt);
      const folder = await trainRun({ steps: 5, threads: want, timeout: 60_000 });
      assert.equal(folder.state, "done", `folder training failed: ${folder.error}`);
      assert.equal(folder.losses.length, 5);
      assert.equal(folder.threads, want);
      assert.match(
        await page.textContent("#status") ?? "",
        /model: slimtune-folder-\w+: qwen2, 2 layers, hidden 64/,
      );
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
      await server.close();
      await Deno.remove(profile, { recursive: true });
      await Deno.remove(ckpt, { recursive: true });
    }
  },
});
