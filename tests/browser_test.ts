/**
 * The browser example in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by
 * playwright-core): the page served by `examples/browser/serve.ts` (library bundled by
 * `deno bundle` at start-up, COOP/COEP headers) fine-tunes the demo model in the tab, the loss
 * falls, the chart is drawn, and the adapter downloads as two files that parse as a PEFT adapter.
 * A second run trains from a checkpoint FOLDER given to the `<input type=file webkitdirectory>`.
 *
 * Skipped, with a message, where /usr/bin/chromium is absent (`apt-get install -y chromium`).
 * The screenshot's path is printed (under out/browser/).
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { MemorySource, parseAdapterConfig, SafetensorsFile } from "../mod.ts";
import { startServer } from "../examples/browser/serve.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

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

Deno.test({
  name: "browser: the page fine-tunes in headless Chromium, draws the loss, downloads the adapter",
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

      // 1. The demo model, made in the page.
      const steps = 40;
      await page.fill("#steps", String(steps));
      await page.click("#train");
      await page.waitForSelector("body[data-state=done], body[data-state=error]", {
        timeout: 90_000,
      });
      const demo = await page.evaluate(() =>
        (globalThis as unknown as {
          slimtuneDemo: { state: string; losses: number[]; error: string | null };
        }).slimtuneDemo
      );
      assert.equal(demo.state, "done", `training failed in the page: ${demo.error}`);
      assert.equal(demo.losses.length, steps);
      assert.ok(demo.losses.every(Number.isFinite));
      const first = demo.losses[0];
      const last5 = demo.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
      assert.ok(last5 < first - 0.1, `loss did not fall: ${first} -> ${last5} (last-5 mean)`);
      // The live chart is an SVG with a polyline of the losses.
      assert.ok(await page.locator("#chart svg").count() === 1);
      assert.match(await page.textContent("#status") ?? "", /kernels: (relaxed|simd)/);

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

      // 2. A checkpoint folder through <input type=file webkitdirectory> (read by Blob slices).
      await makeCheckpoint({ preset: "tiny-qwen2", out: ckpt, dtype: "bf16", seed: 5 });
      await page.check("input[name=source][value=folder]");
      await page.setInputFiles("#folder", ckpt);
      await page.fill("#steps", "5");
      await page.click("#train");
      await page.waitForFunction(
        `["done", "error"].includes(document.body.dataset.state) &&
          globalThis.slimtuneDemo.losses.length > 0`,
        undefined,
        { timeout: 60_000 },
      );
      const folder = await page.evaluate(() =>
        (globalThis as unknown as {
          slimtuneDemo: { state: string; losses: number[]; error: string | null };
        }).slimtuneDemo
      );
      assert.equal(folder.state, "done", `folder training failed: ${folder.error}`);
      assert.equal(folder.losses.length, 5);
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
