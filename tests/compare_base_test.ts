/**
 * train.ts --compare-base: the base's eval loss is what an evaluation-only run of a fresh
 * adapter (B = 0) gives, the adapter's is what an evaluation-only run of the saved adapter gives,
 * and the difference is theirs.
 */
import { match, ok, strictEqual } from "node:assert/strict";
import { main } from "../src/deno/train_cli.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTerminal: false,
  });
  return { code, out, err };
}

const evalLoss = (out: string, row: string) =>
  Number(new RegExp(`${row.replace(/[+]/g, "\\+")}\\s+eval_loss ([-+\\d.]+)`).exec(out)![1]);

Deno.test("--compare-base prints base, base + adapter and the difference, as separate evaluations give them", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-llama", out: `${tmp}/model`, seed: 3 });
    const rows = (n: number, k: number) =>
      Array.from(
        { length: n },
        (_, i) =>
          JSON.stringify({ input_ids: Array.from({ length: 18 }, (_, t) => (i * k + t * 5) % 97) }),
      )
        .join("\n") + "\n";
    await Deno.writeTextFile(`${tmp}/train.jsonl`, rows(8, 13));
    await Deno.writeTextFile(`${tmp}/eval.jsonl`, rows(3, 29));
    const common = [
      "--model",
      `${tmp}/model`,
      "--eval-data",
      `${tmp}/eval.jsonl`,
      "--seq-len",
      "32",
    ];
    const t = await cli([
      ...common,
      "--data",
      `${tmp}/train.jsonl`,
      "--steps",
      "6",
      "--lr",
      "1e-2",
      "--compare-base",
      "--out",
      `${tmp}/ad`,
      "--weights",
      "resident",
    ]);
    strictEqual(t.code, 0, t.err);
    match(t.out, /eval on .*eval\.jsonl \(\d+ tokens\):\n {2}base {12}eval_loss/);
    const base = evalLoss(t.out, "  base ");
    const tuned = evalLoss(t.out, "base + adapter");
    const delta = evalLoss(t.out, "difference");
    ok(tuned < base, `training lowered the eval loss (${base} -> ${tuned})`);
    ok(Math.abs(delta - (tuned - base)) < 1e-4, `${delta} vs ${tuned - base}`);
    match(t.out, new RegExp(`perplexity x${Math.exp(tuned - base).toFixed(3)}`));

    const fresh = await cli([
      ...common,
      "--steps",
      "0",
      "--out",
      `${tmp}/e1`,
      "--weights",
      "resident",
    ]);
    strictEqual(fresh.code, 0, fresh.err);
    const init = await cli([
      ...common,
      "--steps",
      "0",
      "--adapter-init",
      `${tmp}/ad`,
      "--compare-base",
      "--out",
      `${tmp}/e2`,
      "--weights",
      "resident",
    ]);
    strictEqual(init.code, 0, init.err);
    const fromLine = (out: string) => Number(/eval_loss ([\d.]+)/.exec(out)![1]);
    ok(Math.abs(fromLine(fresh.out) - base) < 1e-4, `${fromLine(fresh.out)} vs base ${base}`);
    ok(Math.abs(evalLoss(init.out, "base + adapter") - tuned) < 1e-4, init.out);
    ok(Math.abs(evalLoss(init.out, "  base ") - base) < 1e-4, init.out);

    const u = await cli([
      "--model",
      `${tmp}/model`,
      "--data",
      `${tmp}/train.jsonl`,
      "--compare-base",
    ]);
    strictEqual(u.code, 2);
    strictEqual(u.err, "error: --compare-base: needs --eval-data FILE.jsonl\n");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
