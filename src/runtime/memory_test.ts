import assert from "node:assert/strict";
import { Arena } from "./arena.ts";
import {
  BYTES_PER_MB,
  formatMB,
  formatMemoryReport,
  JsBytesLedger,
  memoryReport,
} from "./memory.ts";

Deno.test("memoryReport: high-water survives release, arenas and JS bytes add up", () => {
  const a = new Arena(new WebAssembly.Memory({ initial: 1 }), 1024);
  const mark = a.mark();
  a.alloc(3 * 65536); // grows the memory
  a.release(mark);
  a.alloc(100);
  const b = new Arena(new WebAssembly.Memory({ initial: 2 }), 0);
  b.alloc(1000);

  const one = memoryReport({ arenas: a, jsBytesHeld: 5000 });
  assert.equal(one.wasmHighWaterBytes, 1024 + 3 * 65536);
  assert.equal(one.wasmCommittedBytes, a.memory.buffer.byteLength);
  assert(one.wasmCommittedBytes >= one.wasmHighWaterBytes);
  assert.equal(one.workingSetBytes, 1024 + 3 * 65536 + 5000);
  assert.equal(one.processPeakBytes, null);

  const both = memoryReport({
    arenas: [a, b],
    jsBytesHeld: 0,
    processPeak: () => 123 * BYTES_PER_MB,
  });
  assert.equal(both.wasmHighWaterBytes, 1024 + 3 * 65536 + 1024); // 1000 rounds up to 64
  assert.equal(both.wasmCommittedBytes, a.memory.buffer.byteLength + 2 * 65536);
  assert.equal(both.workingSetBytes, both.wasmHighWaterBytes);
  assert.equal(both.processPeakBytes, 123 * BYTES_PER_MB);
  assert.throws(() => memoryReport({ arenas: a, jsBytesHeld: -1 }), RangeError);
});

Deno.test("formatMemoryReport prints MB (2^20 bytes) with one decimal", () => {
  assert.equal(formatMB(136.2 * BYTES_PER_MB), "136.2 MB");
  assert.equal(formatMB(0), "0.0 MB");
  assert.equal(formatMB(null), "n/a");
  const text = formatMemoryReport({
    wasmHighWaterBytes: 100 * BYTES_PER_MB,
    wasmCommittedBytes: 128 * BYTES_PER_MB,
    jsBytesHeld: 36.25 * BYTES_PER_MB,
    workingSetBytes: 136.25 * BYTES_PER_MB,
    processPeakBytes: null,
  });
  assert.equal(
    text,
    "working set 136.3 MB (wasm high-water 100.0 MB, committed 128.0 MB; JS held 36.3 MB), " +
      "process peak n/a",
  );
});

Deno.test("JsBytesLedger tracks the current total and its peak", () => {
  const ledger = new JsBytesLedger();
  ledger.hold("checkpoint", new Float32Array(256)); // 1024 bytes
  ledger.hold("state", 4096);
  assert.equal(ledger.total, 5120);
  ledger.hold("state", 1000); // replaces
  assert.equal(ledger.total, 2024);
  ledger.release("checkpoint");
  ledger.release("never held");
  assert.equal(ledger.total, 1000);
  assert.equal(ledger.peak, 5120);
  assert.deepEqual(ledger.entries(), new Map([["state", 1000]]));
  assert.throws(() => ledger.hold("x", -5), RangeError);
});
