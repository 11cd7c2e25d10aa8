/**
 * bench/dispatch.ts's browser side: a module Worker (bundled by `deno bundle`) that runs the
 * dispatch measurements of bench/dispatch_lib.ts in Chromium (a Worker may block in Atomics.wait)
 * and posts the report, or `{ error }`, to the page.
 *
 * @module
 */
import { type DispatchOptions, runDispatchBench } from "./dispatch_lib.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Omit<DispatchOptions, "runtime">>) => void) | null;
  postMessage(m: unknown): void;
};
scope.onmessage = (e) => {
  runDispatchBench({
    runtime: navigator.userAgent.match(/Chrom\w+\/[\d.]+/)?.[0] ?? "browser",
    ...e.data,
  })
    .then(
      (r) => scope.postMessage(r),
      (err) => scope.postMessage({ error: String(err?.stack ?? err) }),
    );
};
