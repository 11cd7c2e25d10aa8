/**
 * Why kernel threads cannot run in this context, in words a page can show its user: multi-core
 * kernels need Worker, Blob URLs, SharedArrayBuffer and a thread that may block in Atomics.wait.
 *
 * The usual cases: a page served without COOP `same-origin` + COEP `require-corp` (not
 * cross-origin isolated, so no SharedArrayBuffer); a browser's main thread (it may not block);
 * and WebKitGTK/WPE, whose JavaScriptCore ships with SharedArrayBuffer switched off even on an
 * isolated page (Safari switches it on there; for WebKitGTK/WPE the browser process needs
 * `JSC_useSharedArrayBuffer=1` in its environment).
 *
 * @example
 * ```ts
 * import { threadsUnavailableReason } from "./thread_support.ts";
 * const fake = { Worker: class {}, crossOriginIsolated: true };
 * console.log(threadsUnavailableReason(fake)); // "SharedArrayBuffer is undefined although ..."
 * ```
 * @module
 */

/** The globals the check reads (globalThis by default; tests pass a stand-in). */
export interface ThreadScope {
  Worker?: unknown;
  SharedArrayBuffer?: unknown;
  Blob?: unknown;
  Atomics?: unknown;
  crossOriginIsolated?: unknown;
  URL?: unknown;
}

/**
 * Null where a kernel thread pool can run in `scope`, else one sentence saying what is missing
 * and what would bring it.
 */
export function threadsUnavailableReason(
  scope: ThreadScope = globalThis as unknown as ThreadScope,
): string | null {
  if (typeof scope.Worker !== "function") {
    return "this context has no Worker (edge runtimes and some workers cannot start threads)";
  }
  if (typeof scope.SharedArrayBuffer !== "function") {
    if (scope.crossOriginIsolated === true) {
      return "SharedArrayBuffer is undefined although the page is cross-origin isolated: this " +
        "engine ships with it switched off (WebKitGTK/WPE: start the browser with " +
        "JSC_useSharedArrayBuffer=1 in its environment; Safari has it on isolated pages)";
    }
    if (scope.crossOriginIsolated === false) {
      return "the page is not cross-origin isolated, so SharedArrayBuffer is missing: serve it " +
        "with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: " +
        "require-corp";
    }
    return "this context has no SharedArrayBuffer";
  }
  const atomics = scope.Atomics as { wait?: unknown } | undefined;
  if (typeof atomics?.wait !== "function") return "this context has no Atomics.wait";
  const url = scope.URL as { createObjectURL?: unknown } | undefined;
  if (typeof url?.createObjectURL !== "function" || typeof scope.Blob !== "function") {
    return "this context cannot make Blob URLs (URL.createObjectURL), which start the workers";
  }
  try {
    // Never blocks (the value differs); throws where this thread may not wait.
    const Sab = scope.SharedArrayBuffer as SharedArrayBufferConstructor;
    (atomics as typeof Atomics).wait(new Int32Array(new Sab(4)), 0, 1, 0);
  } catch {
    return "this thread may not block in Atomics.wait (a browser's main thread): load the " +
      "kernels in a dedicated Worker";
  }
  return null;
}
