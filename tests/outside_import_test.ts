/**
 * A user's script outside the repository imports `mod.ts` by its file URL and runs it with
 * `deno run` from a temp dir with no deno.json or package.json of its own: every npm dependency
 * of the library must resolve from the library's own specifiers (the repo's package.json and
 * node_modules are not in play there), and a training step runs.
 */
import assert from "node:assert/strict";
import { runWithDeadline } from "../scripts/harness.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

Deno.test("outside import: a script in a temp dir imports mod.ts by file URL and trains", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-user-" });
  try {
    await Deno.writeTextFile(
      `${dir}/user.ts`,
      `import * as slimtune from ${JSON.stringify(MOD)};
const { kernels, arena, variant } = await slimtune.loadKernels();
const store = slimtune.createRandomWeightStore({
  config: slimtune.tinyConfig("qwen2", 1), kernels, arena, quant: "int4", seed: 1,
});
const session = await slimtune.createTrainingSession({
  store, kernels, arena, method: "mesp", seed: 0, maxGradNorm: 0,
  lora: { rank: 2, alpha: 4, targets: ["q", "v"] },
  optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0 },
});
const ids = Int32Array.from({ length: 8 }, (_, i) => (i * 7) % 100);
const { loss } = await session.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen: 8 }], 1e-3);
console.log(JSON.stringify({ variant, loss, tokenizer: typeof slimtune.createTokenizer }));
`,
    );
    // A type check of mod.ts's graph and one step: a minute or two on a loaded machine.
    const out = await runWithDeadline(
      Deno.execPath(),
      ["run", "--allow-read", "--allow-env", "--allow-net=registry.npmjs.org", "user.ts"],
      {
        timeoutMs: 5 * 60_000,
        what: "a user's script importing mod.ts",
        cwd: dir,
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      },
    );
    const stderr = out.stderr;
    assert.doesNotMatch(stderr, /not a dependency/);
    assert.equal(out.code, 0, stderr);
    const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
    assert.ok(["relaxed", "simd"].includes(r.variant));
    assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
    assert.equal(r.tokenizer, "function");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
