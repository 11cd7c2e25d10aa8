/**
 * Interrupted + resumed training gives the bit-identical adapter of an uninterrupted run: killed
 * with SIGKILL after a checkpoint, and stopped with Ctrl-C (SIGINT), each resumed with `--resume`.
 * Runs the real CLI and training session on the demo model with short sequences.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { type SpawnedProcess, spawnWithDeadline, waitUntil } from "../scripts/harness.ts";

const root = new URL("..", import.meta.url).pathname;
const common = [
  "--steps",
  "7",
  "--seq-len",
  "32",
  "--lr-schedule",
  "cosine",
  "--warmup-steps",
  "2",
  "--lr",
  "2e-3",
  "--rank",
  "4",
  "--seed",
  "3",
  "--quiet",
];

/**
 * One train.ts run on the demo model: seconds alone, a minute or more on a loaded 2-core machine
 * running the suite in parallel.
 */
const TRAIN_DEADLINE_MS = 5 * 60_000;

function spawnTrain(args: string[]): SpawnedProcess {
  return spawnWithDeadline(
    Deno.execPath(),
    ["run", "-A", "--no-check", `${root}train.ts`, ...args],
    {
      timeoutMs: TRAIN_DEADLINE_MS,
      what: `train.ts ${args.join(" ")}`,
      cwd: root,
    },
  );
}

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await spawnTrain(args).result();
  return { code: out.code, stderr: out.stderr };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function waitFor(path: string, child: SpawnedProcess): Promise<void> {
  return waitUntil(() => exists(path), {
    timeoutMs: TRAIN_DEADLINE_MS,
    what: `${path} to appear`,
    child,
    intervalMs: 10,
  });
}

const adapter = (dir: string) => Deno.readFile(`${dir}/adapter_model.safetensors`);

for (const optimizer of ["adamw", "adamw8bit"]) {
  Deno.test(`SIGKILL after a checkpoint, then --resume (--optimizer ${optimizer}): bit-identical adapter and metrics`, async () => {
    const tmp = await Deno.makeTempDir();
    try {
      const opts = [...common, "--optimizer", optimizer];
      const straight = await run([...opts, "--out", `${tmp}/a`, "--metrics", `${tmp}/a.jsonl`]);
      strictEqual(straight.code, 0, straight.stderr);

      const child = spawnTrain([
        ...opts,
        "--out",
        `${tmp}/b`,
        "--save-every",
        "3",
        "--metrics",
        `${tmp}/b.jsonl`,
      ]);
      await waitFor(`${tmp}/b/checkpoint-3`, child);
      child.kill("SIGKILL");
      const status = await child.result();
      strictEqual(status.signal, "SIGKILL");
      ok(!(await exists(`${tmp}/b/adapter_model.safetensors`)), "the kill came too late");

      const resumed = await run(["--resume", `${tmp}/b`]);
      strictEqual(resumed.code, 0, resumed.stderr);
      deepStrictEqual(await adapter(`${tmp}/b`), await adapter(`${tmp}/a`));
      // Metrics are appended: the resumed run's lines for the steps after the checkpoint come
      // last, and the last line of each step equals the uninterrupted run's.
      const losses = async (f: string) => {
        const last = new Map<number, number>();
        for (const l of (await Deno.readTextFile(f)).trim().split("\n")) {
          const o = JSON.parse(l);
          last.set(o.step, o.loss);
        }
        return [...last].sort((x, y) => x[0] - y[0]);
      };
      deepStrictEqual(await losses(`${tmp}/b.jsonl`), await losses(`${tmp}/a.jsonl`));
      if (optimizer === "adamw8bit") {
        const opt = await Deno.readFile(`${tmp}/b/checkpoint-3/optimizer.safetensors`);
        const header = new TextDecoder().decode(opt.subarray(8, 8 + 4096));
        ok(header.includes('.exp_avg.q":{"dtype":"U8"'), header.slice(0, 200));
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

Deno.test("Ctrl-C saves a checkpoint and exits 130; --resume finishes identically", async () => {
  const tmp = await Deno.makeTempDir();
  // Enough steps that the run cannot finish between the poll that sees step 2 and the signal
  // (a demo step takes milliseconds; with 7 steps the race was lost now and then).
  const longer = [
    ...common.slice(0, common.indexOf("--steps")),
    "--steps",
    "40",
    ...common.slice(common.indexOf("--steps") + 2),
  ];
  try {
    const straight = await run([
      ...longer,
      "--method",
      "lcsb",
      "--lcsb-groups",
      "2",
      "--out",
      `${tmp}/a`,
    ]);
    strictEqual(straight.code, 0, straight.stderr);

    const child = spawnTrain([
      ...longer,
      "--method",
      "lcsb",
      "--lcsb-groups",
      "2",
      "--out",
      `${tmp}/b`,
      "--metrics",
      `${tmp}/b.jsonl`,
    ]);
    // Interrupt once the first step is recorded.
    await waitUntil(
      async () => (await Deno.readTextFile(`${tmp}/b.jsonl`).catch(() => "")).includes('"step":2'),
      { timeoutMs: TRAIN_DEADLINE_MS, what: `step 2 in ${tmp}/b.jsonl`, child, intervalMs: 10 },
    );
    child.kill("SIGINT");
    const out = await child.result();
    strictEqual(out.code, 130, out.stderr);
    const steps = (await Deno.readTextFile(`${tmp}/b.jsonl`)).trim().split("\n").length;
    ok(steps < 40, `interrupted after ${steps} of 40 steps`);
    ok(out.stderr.includes(`resume with: --resume ${tmp}/b`));
    ok(!(await exists(`${tmp}/b/adapter_model.safetensors`)));

    const resumed = await run(["--resume", `${tmp}/b`]);
    strictEqual(resumed.code, 0, resumed.stderr);
    deepStrictEqual(await adapter(`${tmp}/b`), await adapter(`${tmp}/a`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
