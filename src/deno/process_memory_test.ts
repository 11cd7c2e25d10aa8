import assert from "node:assert/strict";
import { parseProcStatus, readProcessMemory } from "./process_memory.ts";
import { runWithDeadline } from "../../scripts/harness.ts";

const MB = 1 << 20;
const onLinux = Deno.build.os === "linux";

Deno.test("parseProcStatus reads VmHWM and VmRSS in kB", () => {
  const text =
    "Name:\tdeno\nVmPeak:\t 9999 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\nThreads:\t8\n";
  assert.deepEqual(parseProcStatus(text), { peakBytes: 123456 * 1024, rssBytes: 65432 * 1024 });
  assert.deepEqual(parseProcStatus("Name:\tx\n"), { peakBytes: null, rssBytes: null });
});

Deno.test({
  name: "readProcessMemory: this process has a plausible peak ≥ its resident size",
  ignore: !onLinux,
  fn() {
    const m = readProcessMemory();
    assert.equal(m.reason, undefined);
    assert(m.rssBytes! > 1 * MB && m.peakBytes! >= m.rssBytes!, JSON.stringify(m));
  },
});

// The allocation runs in a fresh process: in this one, parallel test files share the OS
// counters, so another test's allocations and frees could blur the figure.
const CHILD = `
const { readProcessMemory, resetProcessPeak } = await import(${
  JSON.stringify(new URL("./process_memory.ts", import.meta.url).href)
});
// A first 64 MB, touched then freed, leaves VmHWM far above VmRSS, which only a working
// resetProcessPeak() brings back down.
let first = new Uint8Array(64 * 1024 * 1024);
first.fill(1);
const startPeak = readProcessMemory().peakBytes;
first = null;
let freed = readProcessMemory();
for (let i = 0; i < 50 && startPeak - freed.rssBytes < 48 * 1024 * 1024; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 10));
  freed = readProcessMemory();
}
const reset = resetProcessPeak();
const before = readProcessMemory();
const buf = new Uint8Array(64 * 1024 * 1024);
buf.fill(1); // touch every page so it becomes resident
const after = readProcessMemory();
console.log(JSON.stringify({ startPeak, freed, reset, before, after, keep: buf[12345] }));
`;

Deno.test({
  name: "allocating and touching 64 MB raises VmHWM by at least 60 MB",
  ignore: !onLinux,
  async fn() {
    const out = await runWithDeadline(
      Deno.execPath(),
      ["eval", "--no-check", "--v8-flags=--expose-gc", CHILD],
      { timeoutMs: 2 * 60_000, what: "the 64 MB VmHWM probe", env: { NO_COLOR: "1" } },
    );
    assert(out.success, out.stderr);
    const r = JSON.parse(out.stdout);
    assert.equal(r.keep, 1);
    assert(r.after.rssBytes - r.before.rssBytes >= 60 * MB, JSON.stringify(r));
    if (r.reset) {
      // resetProcessPeak worked: the peak is back at the resident size, not at the first 64 MB,
      // and the second 64 MB raise it again.
      if (r.startPeak - r.freed.rssBytes >= 48 * MB) {
        assert(r.before.peakBytes - r.before.rssBytes < 8 * MB, JSON.stringify(r));
      }
      const rise = r.after.peakBytes - r.before.peakBytes;
      assert(rise >= 60 * MB, `VmHWM rose by ${(rise / MB).toFixed(1)} MB: ${JSON.stringify(r)}`);
    } else {
      // No reset allowed here: the peak still ends 60 MB above the resident size before.
      console.log("resetProcessPeak() is not permitted on this host");
      assert(r.after.peakBytes - r.before.rssBytes >= 60 * MB, JSON.stringify(r));
    }
  },
});
