import assert from "node:assert/strict";
import { threadsUnavailableReason } from "./thread_support.ts";

const full = {
  Worker: class {},
  SharedArrayBuffer,
  Blob,
  Atomics,
  URL,
  crossOriginIsolated: true,
};

Deno.test("thread support: null where every piece is there (a Deno thread may block)", () => {
  assert.equal(threadsUnavailableReason(full), null);
  assert.equal(threadsUnavailableReason(), null);
});

Deno.test("thread support: WebKit's isolated page without SharedArrayBuffer names the switch", () => {
  const r = threadsUnavailableReason({ ...full, SharedArrayBuffer: undefined });
  assert.match(r!, /cross-origin isolated/);
  assert.match(r!, /JSC_useSharedArrayBuffer=1/);
});

Deno.test("thread support: a page without COOP/COEP is told the headers", () => {
  const r = threadsUnavailableReason({
    ...full,
    SharedArrayBuffer: undefined,
    crossOriginIsolated: false,
  });
  assert.match(r!, /not cross-origin isolated/);
  assert.match(r!, /Cross-Origin-Embedder-Policy: require-corp/);
});

Deno.test("thread support: no Worker, no Atomics.wait, a thread that may not block", () => {
  assert.match(threadsUnavailableReason({ ...full, Worker: undefined })!, /no Worker/);
  assert.match(threadsUnavailableReason({ ...full, Atomics: {} })!, /Atomics\.wait/);
  const refuses = {
    wait() {
      throw new TypeError("Atomics.wait cannot be called in this context");
    },
  };
  assert.match(threadsUnavailableReason({ ...full, Atomics: refuses })!, /dedicated Worker/);
  assert.match(threadsUnavailableReason({ ...full, Blob: undefined })!, /Blob URLs/);
});
