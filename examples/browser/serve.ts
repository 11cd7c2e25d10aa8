/**
 * Serves the browser example: bundles `app.ts` (the page's UI) and `train_worker.ts` (the
 * training worker, with the library) for the browser with `deno bundle` into a temp dir at
 * start-up, then serves `index.html`, `app.js` and `train_worker.js` with cross-origin isolation
 * headers (COOP `same-origin`, COEP `require-corp`), so the page and its workers get
 * `crossOriginIsolated` (SharedArrayBuffer, for multi-threaded kernels in the training worker).
 *
 * Usage: npx deno run --allow-read --allow-write --allow-run --allow-net --allow-env
 *   examples/browser/serve.ts [--port 8000] [--checkpoint DIR]   then open http://127.0.0.1:8000/
 *   (`--checkpoint DIR`: that folder is served at `/checkpoint/`, the page's URL source)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { rangeFileResponse } from "../shared/range_file.ts";
import { denoBundle } from "../../scripts/deno_bundle.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** The scripts served: each bundled from `examples/browser/<name>.ts` to `<name>.js`. */
export const ENTRY_POINTS = ["app", "train_worker"] as const;

/** Bundles `examples/browser/<entry>.ts` (default `app`) for the browser into `outFile`. */
export async function bundleApp(outFile: string, entry = "app"): Promise<void> {
  await denoBundle(`${HERE}${entry}.ts`, outFile, { cwd: `${HERE}../..`, timeoutMs: 180_000 });
}

/** A running example server. */
export interface ExampleServer {
  url: string;
  /** Bytes of the bundled `app.js` (the UI). */
  bundleBytes: number;
  /** Bytes of the bundled `train_worker.js` (the library and the training loop). */
  workerBundleBytes: number;
  close(): Promise<void>;
}

const ISOLATION = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

/**
 * Bundles the app and serves the page on `hostname:port` (port 0: any free port). With
 * `checkpointDir`, that folder's files are served under `/checkpoint/` with HTTP Range support
 * (the page's "checkpoint URL" source, same origin).
 */
export async function startServer(
  o: { hostname?: string; port?: number; checkpointDir?: string } = {},
): Promise<ExampleServer> {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-browser-" });
  const scripts = new Map<string, Uint8Array<ArrayBuffer>>();
  try {
    await Promise.all(ENTRY_POINTS.map(async (name) => {
      await bundleApp(`${dir}/${name}.js`, name);
      scripts.set(`/${name}.js`, await Deno.readFile(`${dir}/${name}.js`));
    }));
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const html = await Deno.readFile(`${HERE}index.html`);
  const hostname = o.hostname ?? "127.0.0.1";
  const server = Deno.serve({ hostname, port: o.port ?? 8000, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (o.checkpointDir && path.startsWith("/checkpoint/")) {
      const name = decodeURIComponent(path.slice("/checkpoint/".length));
      return rangeFileResponse(o.checkpointDir, name, req, ISOLATION);
    }
    if (path === "/" || path === "/index.html") {
      return new Response(html, {
        headers: { ...ISOLATION, "content-type": "text/html; charset=utf-8" },
      });
    }
    const script = scripts.get(path);
    if (script) {
      return new Response(script, {
        headers: { ...ISOLATION, "content-type": "text/javascript; charset=utf-8" },
      });
    }
    return new Response("not found", { status: 404, headers: ISOLATION });
  });
  return {
    url: `http://${hostname}:${server.addr.port}/`,
    bundleBytes: scripts.get("/app.js")!.byteLength,
    workerBundleBytes: scripts.get("/train_worker.js")!.byteLength,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      host: { type: "string" },
      checkpoint: { type: "string" },
    },
  });
  const s = await startServer({
    port: Number(values.port),
    hostname: values.host,
    checkpointDir: values.checkpoint,
  });
  console.log(
    `slimtune browser example (app.js ${(s.bundleBytes / 1024).toFixed(0)} KiB, train_worker.js ` +
      `${(s.workerBundleBytes / 1024).toFixed(0)} KiB): ${s.url}`,
  );
}
