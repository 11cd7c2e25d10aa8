/**
 * Dispatch cost of the kernel worker pool, in Deno and in Chromium: round trips of an empty job
 * (back to back, and after the caller was busy or asleep, so the worker has gone to sleep) and
 * 1 vs 2 thread times of matmulABt / int4MatmulXWt from the browser demo's shapes up, to see
 * where splitting starts to pay (bench/dispatch_lib.ts has the details).
 *
 *   npx deno run -A bench/dispatch.ts               # Deno, then Chromium if /usr/bin/chromium exists
 *   npx deno run -A bench/dispatch.ts --no-browser --json
 *
 * Chromium: the worker bench/dispatch_worker.ts is bundled with `deno bundle`, served with
 * COOP/COEP (cross-origin isolated, SharedArrayBuffer) on 127.0.0.1, and run in a module Worker of
 * a headless page driven by playwright-core. Other processes share the cores: /proc/loadavg is
 * printed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type DispatchReport, formatReport, runDispatchBench } from "./dispatch_lib.ts";
import { denoBundle } from "../scripts/deno_bundle.ts";

const CHROMIUM = "/usr/bin/chromium";
const HERE = new URL(".", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    browser: { type: "boolean", default: true },
    "no-browser": { type: "boolean", default: false },
    deno: { type: "boolean", default: true },
    "no-deno": { type: "boolean", default: false },
    parts: { type: "string", default: "settings,ping,gemm,demo" },
    loads: { type: "string", default: "10" },
    "demo-runs": { type: "string", default: "3" },
    "demo-steps": { type: "string", default: "60" },
    "min-work": { type: "string" },
    pings: { type: "string", default: "2000" },
    calls: { type: "string", default: "400" },
    json: { type: "boolean", default: false },
  },
});
const opts = {
  parts: values.parts.split(","),
  loads: Number(values.loads),
  pings: Number(values.pings),
  calls: Number(values.calls),
  demoRuns: Number(values["demo-runs"]),
  demoSteps: Number(values["demo-steps"]),
  minParallelWork: values["min-work"] === undefined ? undefined : Number(values["min-work"]),
};

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").trim().split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>dispatch</title><script type="module">
const w = new Worker("./dispatch_worker.js", { type: "module" });
w.onmessage = (e) => { globalThis.report = e.data; };
w.onerror = (e) => { globalThis.report = { error: e.message || "worker failed" }; };
w.postMessage(${JSON.stringify(opts)});
</script>`;

async function inChromium(): Promise<DispatchReport> {
  const { chromium } = await import("playwright-core");
  const dir = await Deno.makeTempDir({ prefix: "slimtune-dispatch-" });
  const js = `${dir}/dispatch_worker.js`;
  await denoBundle(`${HERE}dispatch_worker.ts`, js, { cwd: `${HERE}..`, timeoutMs: 180_000 });
  const script = await Deno.readFile(js);
  const headers = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/dispatch_worker.js") {
      return new Response(script, { headers: { ...headers, "content-type": "text/javascript" } });
    }
    return new Response(PAGE, { headers: { ...headers, "content-type": "text/html" } });
  });
  const profile = await Deno.makeTempDir({ prefix: "slimtune-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    await page.goto(`http://127.0.0.1:${server.addr.port}/`);
    await page.waitForFunction("globalThis.report !== undefined", undefined, {
      polling: 500,
      timeout: 300_000,
    });
    const r = await page.evaluate("globalThis.report") as DispatchReport | { error: string };
    if ("error" in r) throw new Error(`in Chromium: ${r.error}`);
    return r;
  } finally {
    await context.close();
    await server.shutdown();
    await Deno.remove(profile, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

const reports: DispatchReport[] = [];
console.error(`loadavg ${loadavg()}`);
if (values.deno && !values["no-deno"]) {
  reports.push(await runDispatchBench({ runtime: `deno ${Deno.version.deno}`, ...opts }));
}
let hasChromium = false;
try {
  hasChromium = Deno.statSync(CHROMIUM).isFile;
} catch { /* absent */ }
if (values.browser && !values["no-browser"]) {
  if (hasChromium) reports.push(await inChromium());
  else console.error(`${CHROMIUM} absent: Chromium skipped`);
}
console.error(`loadavg ${loadavg()}`);
for (const r of reports) console.log(values.json ? JSON.stringify(r) : formatReport(r) + "\n");
