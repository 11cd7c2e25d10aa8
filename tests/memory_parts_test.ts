/**
 * The figures the run's memory check takes as given, against what the engine actually holds for
 * them: the tokenizer's `tableBytes` (read from a snapshot, as every run after the first does)
 * and the training rows' `bytesHeld` (the `dataBytes` the plan adds), each as the growth of V8's
 * external memory after a full collection. A child process measures, because only a process
 * started with `--expose-gc` can collect on demand; it has a deadline. The 8-bit optimizer
 * state's plan is held to the bytes allocated in `src/optim/adamw8bit_test.ts`.
 */
import { ok } from "node:assert/strict";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../src/deno/tokenizer.ts";
import { runWithDeadline } from "../scripts/harness.ts";

const root = new URL("../", import.meta.url).href;

const PROBE = `
const gc = globalThis.gc;
// Backing stores are freed by a sweeper after the collection: wait for it, then read.
const external = async () => {
  for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 30)); }
  return Deno.memoryUsage().external;
};
const rssNow = () => Number(/VmRSS:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]) * 1024;
const { loadTokenizerDir, bundledQwenTokenizerDir } = await import("${root}src/deno/tokenizer.ts");
const { TokenRows } = await import("${root}src/data/token_rows.ts");
const { Rng } = await import("${root}src/runtime/rng.ts");
// Loaded before measuring: the modules' code is the baseline's, not the tokenizer's.
await import("${root}src/data/tokenizer.ts");
await import("${root}src/data/tokenizer_snapshot.ts");
const cacheDir = Deno.args[0];
const dir = bundledQwenTokenizerDir();
const e0 = await external(), r0 = rssNow();
let source = "";
const tok = await loadTokenizerDir(dir, { cacheDir, onLoaded: (s) => (source = s) });
tok.encode("warm up the encoder: 123 日本語");
const tokenizer = { source, tableBytes: tok.tableBytes, external: (await external()) - e0, rss: rssNow() - r0 };
const rng = new Rng(3);
const e1 = await external();
const rows = new TokenRows();
for (let i = 0; i < 3000; i++) {
  const n = 50 + Math.floor(rng.uniform() * 400);
  const ids = new Int32Array(n).map(() => Math.floor(rng.uniform() * 151000));
  const labels = ids.map((id, t) => (t < n / 3 ? -100 : id));
  rows.push(ids, labels);
}
rows.compact();
const data = { bytesHeld: rows.bytesHeld, tokens: rows.tokenCount, external: (await external()) - e1 };
console.log(JSON.stringify({ tokenizer, data, keep: [tok.vocabSize, rows.length] }));
`;

Deno.test("memory parts: the tokenizer's tables and the data rows cost what the run counts for them", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-memory-parts-" });
  try {
    // The snapshot every run after the first reads.
    await loadTokenizerDir(bundledQwenTokenizerDir(), { cacheDir: `${tmp}/cache` });
    const out = await runWithDeadline(
      Deno.execPath(),
      ["run", "-A", "--v8-flags=--expose-gc", "--ext=js", "-", `${tmp}/cache`],
      { timeoutMs: 90_000, what: "the memory probe", stdin: PROBE },
    );
    const text = out.stdout;
    ok(out.success, `probe failed: ${out.stderr}`);
    const { tokenizer, data } = JSON.parse(text.trim().split("\n").pop()!);
    const MB = 1 << 20;
    ok(tokenizer.source === "snapshot", `second load from ${tokenizer.source}`);
    // Qwen2.5's 151,665 tokens and 151,387 merges: ~6.2 MB of tables, held once.
    ok(tokenizer.tableBytes > 5 * MB && tokenizer.tableBytes < 7 * MB, `${tokenizer.tableBytes}`);
    ok(
      Math.abs(tokenizer.external - tokenizer.tableBytes) < 0.5 * MB,
      `tokenizer: external memory grew ${tokenizer.external}, tables ${tokenizer.tableBytes}`,
    );
    // The whole process: the tables plus ~7 MB (file and crypto ops, the regex, JIT), where
    // parsing tokenizer.json grows it by ~28 MB.
    ok(
      tokenizer.rss < tokenizer.tableBytes + 10 * MB,
      `tokenizer: the process grew ${(tokenizer.rss / MB).toFixed(1)} MB`,
    );
    // ids as Int32, labels as one bit a token (chat masking), plus the row index.
    ok(data.bytesHeld >= data.tokens * 4.125, `${data.bytesHeld} for ${data.tokens} tokens`);
    ok(
      Math.abs(data.external - data.bytesHeld) < 0.25 * MB,
      `data: external memory grew ${data.external}, bytesHeld ${data.bytesHeld}`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
