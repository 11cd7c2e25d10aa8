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
 *    bit.
 *
 * Also: the bundle of `mod_slim.ts` is smaller than `mod.ts`'s by at least the embedded builds.
 *
 * Skipped, with a message, where the workerd binary is absent (`npm install`).
 */
import assert from "node:assert/strict";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { rangeFileResponse } from "../examples/shared/range_file.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WORKERD = `${ROOT}node_modules/workerd/bin/workerd`;

function hasWorkerd(): boolean {
  try {
    return Deno.statSync(WORKERD).isFile;
  } catch {
    return false;
  }
}
const available = hasWorkerd();
if (!available) {
  console.log(`workerd_test: SKIPPED: ${WORKERD} is absent (install it with: npm install)`);
}

async function bundle(entry: string, outFile: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "--output", outFile, `${ROOT}${entry}`],
    cwd: ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `deno bundle ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  return (await Deno.stat(outFile)).size;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** workerd's config: the bundled worker, the injected kernels, 127.0.0.1 reachable. */
function config(port: number, wasmFile: string, stateDir: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .finetuneWorker),
    (name = "local-net", network = (allow = ["private", "local"])),
    (name = "state", disk = (path = "${stateDir}", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);

const finetuneWorker :Workerd.Worker = (
  modules = [
    (name = "entry.js", esModule = embed "entry.js"),
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "kernels.wasm", wasm = embed "${wasmFile}"),
  ],
  bindings = [(name = "STATE", service = "state")],
  compatibilityDate = "2026-11-01",
  globalOutbound = "local-net",
);
`;
}

/** What Cloudflare's own entry would be: the wasm import injected as env.KERNELS. */
const ENTRY = `import worker from "./worker.js";
import KERNELS from "./kernels.wasm";
export default { fetch: (request, env) => worker.fetch(request, { ...env, KERNELS }) };
`;

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
    let child: Deno.ChildProcess | null = null;
    try {
      await bundle("examples/edge/worker.ts", `${dir}/worker.js`);
      const bundled = await Deno.readTextFile(`${dir}/worker.js`);
      assert.doesNotMatch(bundled, /KERNELS_SIMD_BASE64|AGFzbQEAAAAB/, "base64 builds bundled");
      await Deno.writeTextFile(`${dir}/entry.js`, ENTRY);
      await Deno.mkdir(ckpt);
      await makeCheckpoint({ preset: "tiny-qwen2", out: ckpt, dtype: "bf16", seed: 11 });
      ckptServer = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (req) =>
          rangeFileResponse(ckpt, decodeURIComponent(new URL(req.url).pathname.slice(1)), req),
      );
      for (const build of ["relaxed", "simd"]) {
        await Deno.copyFile(`${ROOT}wasm/kernels.${build}.wasm`, `${dir}/kernels.${build}.wasm`);
        const port = freePort();
        const stateDir = `${dir}/state-${build}`;
        await Deno.mkdir(stateDir);
        await Deno.writeTextFile(
          `${dir}/config.capnp`,
          config(port, `kernels.${build}.wasm`, stateDir),
        );
        child = new Deno.Command(WORKERD, {
          args: ["serve", `${dir}/config.capnp`],
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const log = Promise.all([
          new Response(child.stdout).text(),
          new Response(child.stderr).text(),
        ]);
        const base = `http://127.0.0.1:${port}`;
        for (let i = 0;; i++) {
          try {
            const r = await fetch(`${base}/`);
            await r.body?.cancel();
            break;
          } catch {
            if (i > 300) throw new Error(`workerd did not start: ${(await log).join("\n")}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        const ask = async (q: Record<string, string>): Promise<FinetuneAnswer> => {
          const common = { optimizer: "adamw", lr: "0.01", seq: "32", maxMemoryMB: "64" };
          const res = await fetch(`${base}/finetune?${new URLSearchParams({ ...common, ...q })}`);
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
        child.kill("SIGTERM");
        await child.status;
        await log;
        child = null;
      }
    } finally {
      if (child) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await child.status;
      }
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
