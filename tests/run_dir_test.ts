/**
 * Run directories never lose work. Each case runs the real `train.ts` in a child process on a
 * tiny random checkpoint with pre-tokenized data, and checks the exit status, that the error is
 * one line with no stack trace, that it came before training (no step line), and that every file
 * that existed before is byte-identical afterwards.
 */
import { deepStrictEqual, match, notDeepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import {
  runWithDeadline,
  type SpawnedProcess,
  spawnWithDeadline,
  waitUntil,
} from "../scripts/harness.ts";

const root = new URL("..", import.meta.url).pathname;

interface Run {
  code: number;
  signal: Deno.Signal | null;
  out: string;
  err: string;
}

/**
 * One train.ts run on the tiny checkpoint: seconds alone, a minute or more on a loaded 2-core
 * machine running the suite in parallel.
 */
const TRAIN_DEADLINE_MS = 5 * 60_000;
/** mount, umount, cp of a few files. */
const TOOL_DEADLINE_MS = 60_000;

function spawn(args: string[], env: Record<string, string> = {}): SpawnedProcess {
  return spawnWithDeadline(
    Deno.execPath(),
    ["run", "-A", "--no-check", `${root}train.ts`, ...args],
    {
      timeoutMs: TRAIN_DEADLINE_MS,
      what: `train.ts ${args.join(" ")}`,
      cwd: root,
      env,
    },
  );
}

async function finish(child: SpawnedProcess): Promise<Run> {
  const o = await child.result();
  return { code: o.code, signal: o.signal, out: o.stdout, err: o.stderr };
}

/** A system tool (mount, umount, cp) under a deadline. */
const tool = (command: string, args: string[]) =>
  runWithDeadline(command, args, { timeoutMs: TOOL_DEADLINE_MS });

const train = (args: string[], env?: Record<string, string>) => finish(spawn(args, env));

/** sha256 of every file under `dir`, by relative path. */
async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p, `${rel}${e.name}/`);
      else if (e.isFile) {
        const h = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(p)));
        out.set(rel + e.name, Array.from(h, (b) => b.toString(16).padStart(2, "0")).join(""));
      }
    }
  };
  await walk(dir, "");
  return out;
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** The error is one `error: ...` line, nothing looks like a trace, and no step ran. */
function refusedBeforeTraining(r: Run, code: number, pattern: RegExp): void {
  strictEqual(r.code, code, `exit ${r.code}: ${r.err}`);
  const lines = r.err.trim().split("\n");
  strictEqual(lines.length, 1, r.err);
  match(lines[0], /^error: /);
  match(lines[0], pattern);
  ok(!/^\s+at /m.test(r.err), r.err);
  ok(!/^step \d+\//m.test(r.out), `a step ran: ${r.out}`);
}

/** A temporary folder with a tiny model, pre-tokenized data, and the base flags of a run. */
async function fixture(): Promise<{ tmp: string; base: string[]; data: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-rundir-" });
  await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
  const lines = Array.from(
    { length: 8 },
    (_, i) =>
      JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, t) => (i * 31 + t * 7) % 512) }),
  );
  const data = `${tmp}/d.jsonl`;
  await Deno.writeTextFile(data, lines.join("\n") + "\n");
  const base = [
    "--model",
    `${tmp}/model`,
    "--data",
    data,
    "--seq-len",
    "16",
    "--threads",
    "1",
    "--rank",
    "2",
  ];
  return { tmp, base, data };
}

async function withFixture(
  fn: (f: { tmp: string; base: string[]; data: string }) => Promise<void>,
): Promise<void> {
  const f = await fixture();
  try {
    await fn(f);
  } finally {
    await Deno.remove(f.tmp, { recursive: true });
  }
}

Deno.test("--metrics appends, and is refused when it names an input, a directory or a run file", async () => {
  await withFixture(async ({ tmp, base, data }) => {
    await Deno.writeTextFile(`${tmp}/m.jsonl`, '{"note":"mine"}\n');
    const r = await train([
      ...base,
      "--steps",
      "2",
      "--out",
      `${tmp}/o`,
      "--metrics",
      `${tmp}/m.jsonl`,
    ]);
    strictEqual(r.code, 0, r.err);
    const lines = (await Deno.readTextFile(`${tmp}/m.jsonl`)).trim().split("\n");
    strictEqual(lines[0], '{"note":"mine"}');
    deepStrictEqual(lines.slice(1).map((l) => JSON.parse(l).step), [1, 2]);

    await Deno.mkdir(`${tmp}/adir`);
    const before = await hashTree(tmp);
    for (
      const [metrics, pattern] of [
        [data, /--metrics: .* is the --data file/],
        [`${tmp}/model/config.json`, /--metrics: .* is inside the input folder/],
        [`${tmp}/adir`, /--metrics: .* is a directory/],
        [`${tmp}/o2/adapter_model.safetensors`, /--metrics: .* is a file the run writes in --out/],
      ] as const
    ) {
      const out = metrics.startsWith(`${tmp}/o2`) ? `${tmp}/o2` : `${tmp}/o3`;
      const x = await train([...base, "--steps", "1", "--out", out, "--metrics", metrics]);
      refusedBeforeTraining(x, 2, pattern);
    }
    const eval_ = await train([
      ...base,
      "--steps",
      "1",
      "--eval-data",
      `${tmp}/d.jsonl`,
      "--out",
      `${tmp}/o4`,
      "--metrics",
      `${tmp}/d.jsonl`,
    ]);
    refusedBeforeTraining(eval_, 2, /--metrics: .* is the --data file/);
    deepStrictEqual(await hashTree(tmp), before);
    ok(!(await exists(`${tmp}/o2`)) && !(await exists(`${tmp}/o3`)), "no folder was left behind");
  });
});

Deno.test("--out that is a file, under a file, or read-only fails before loading", async () => {
  await withFixture(async ({ tmp, base }) => {
    await Deno.writeTextFile(`${tmp}/file`, "keep me\n");
    const before = await hashTree(tmp);
    refusedBeforeTraining(
      await train([...base, "--out", `${tmp}/file`]),
      2,
      /--out: .*file exists and is not a directory/,
    );
    refusedBeforeTraining(
      await train([...base, "--out", `${tmp}/file/sub/run`]),
      2,
      /--out: .*file is not a directory/,
    );
    refusedBeforeTraining(
      await train([
        ...base,
        "--steps",
        "1",
        "--out",
        `${tmp}/o`,
        "--metrics",
        `${tmp}/file/m.jsonl`,
      ]),
      2,
      /--metrics: .*file is not a directory/,
    );
    deepStrictEqual(await hashTree(tmp), before);

    // A read-only filesystem: root ignores file modes, so mount one where the test may.
    const ro = `${tmp}/ro`;
    await Deno.mkdir(ro);
    const mount = await tool("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro])
      .catch(() => null);
    if (!mount?.success) {
      console.log(
        "skipped the read-only filesystem case: mount needs root and a kernel that allows it",
      );
      return;
    }
    try {
      refusedBeforeTraining(
        await train([...base, "--out", `${ro}/run`]),
        2,
        /--out: .*cannot write in .*ro.*Read-only file system/,
      );
    } finally {
      await tool("umount", [ro]);
    }
  });
});

for (const [signal, status] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  Deno.test(`${signal} saves a checkpoint and exits ${status}; --resume finishes bit-identically`, async () => {
    await withFixture(async ({ tmp, base }) => {
      const run = [...base, "--steps", "60", "--lr", "1e-3", "--seed", "5"];
      const straight = await train([...run, "--out", `${tmp}/a`]);
      strictEqual(straight.code, 0, straight.err);

      const child = spawn([...run, "--out", `${tmp}/b`, "--metrics", `${tmp}/b.jsonl`]);
      await waitUntil(
        async () =>
          (await Deno.readTextFile(`${tmp}/b.jsonl`).catch(() => "")).includes('"step":2'),
        { timeoutMs: TRAIN_DEADLINE_MS, what: `step 2 in ${tmp}/b.jsonl`, child, intervalMs: 10 },
      );
      child.kill(signal);
      const r = await finish(child);
      strictEqual(r.code, status, r.err);
      match(
        r.err,
        new RegExp(`${signal}: stopped after \\d+ steps?; resume with: --resume ${tmp}/b`),
      );
      const steps = (await Deno.readTextFile(`${tmp}/b.jsonl`)).trim().split("\n").length;
      ok(steps < 60, `interrupted after ${steps} of 60 steps`);
      ok(
        (await Array.fromAsync(Deno.readDir(`${tmp}/b`))).some((e) =>
          /^checkpoint-\d+$/.test(e.name)
        ),
      );
      ok(!(await exists(`${tmp}/b/.slimtune.lock`)), "the lock was released");

      const resumed = await train(["--resume", `${tmp}/b`]);
      strictEqual(resumed.code, 0, resumed.err);
      deepStrictEqual(
        await Deno.readFile(`${tmp}/b/adapter_model.safetensors`),
        await Deno.readFile(`${tmp}/a/adapter_model.safetensors`),
      );
    });
  });
}

Deno.test("--resume of a copied run writes into the copy; the original is untouched", async () => {
  await withFixture(async ({ tmp, base }) => {
    const a = await train([...base, "--steps", "4", "--save-every", "2", "--out", `${tmp}/a`]);
    strictEqual(a.code, 0, a.err);
    const cp = await tool("cp", ["-r", `${tmp}/a`, `${tmp}/copy`]);
    strictEqual(cp.code, 0, cp.stderr);
    const original = await hashTree(`${tmp}/a`);
    const r = await train(["--resume", `${tmp}/copy`, "--steps", "6"]);
    strictEqual(r.code, 0, r.err);
    deepStrictEqual(await hashTree(`${tmp}/a`), original);
    ok(await exists(`${tmp}/copy/checkpoint-6`));
    notDeepStrictEqual(
      await Deno.readFile(`${tmp}/copy/adapter_model.safetensors`),
      await Deno.readFile(`${tmp}/a/adapter_model.safetensors`),
    );
  });
});

Deno.test("a new run into another run's --out is refused; --overwrite replaces only the run's files", async () => {
  await withFixture(async ({ tmp, base }) => {
    const a = await train([...base, "--steps", "2", "--save-every", "1", "--out", `${tmp}/a`]);
    strictEqual(a.code, 0, a.err);
    await Deno.writeTextFile(`${tmp}/a/notes.txt`, "mine\n");
    const before = await hashTree(tmp);
    refusedBeforeTraining(
      await train([...base, "--steps", "1", "--out", `${tmp}/a`]),
      2,
      /--out: .* already holds another run \(adapter_config\.json, .*\); continue it with --resume .*, replace it with --overwrite, or choose another --out/,
    );
    deepStrictEqual(await hashTree(tmp), before);
    const r = await train([...base, "--steps", "1", "--out", `${tmp}/a`, "--overwrite"]);
    strictEqual(r.code, 0, r.err);
    ok(!(await exists(`${tmp}/a/checkpoint-2`)), "the earlier run's checkpoints are gone");
    strictEqual(await Deno.readTextFile(`${tmp}/a/notes.txt`), "mine\n");
  });
});

Deno.test("a live run's lock refuses a second run; a dead run's lock is taken over with a note", async () => {
  await withFixture(async ({ tmp, base }) => {
    await Deno.mkdir(`${tmp}/o`);
    const lock = `${tmp}/o/.slimtune.lock`;
    // This test process is alive: its lock holds.
    const stat = await Deno.readTextFile(`/proc/${Deno.pid}/stat`).catch(() => null);
    const start = stat ? stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] : null;
    await Deno.writeTextFile(
      lock,
      JSON.stringify({ pid: Deno.pid, host: Deno.hostname(), started: "t0", processStart: start }),
    );
    refusedBeforeTraining(
      await train([...base, "--steps", "1", "--out", `${tmp}/o`]),
      2,
      new RegExp(`--out: .* is in use by another run \\(pid ${Deno.pid} on `),
    );
    ok(await exists(lock), "another run's lock is never removed");
    if (Deno.build.os !== "linux") return;
    // A process that has exited: its lock is stale.
    const gone = await tool("true", []);
    await Deno.writeTextFile(
      lock,
      JSON.stringify({ pid: gone.pid, host: Deno.hostname(), started: "t0", processStart: "1" }),
    );
    const r = await train([...base, "--steps", "1", "--out", `${tmp}/o`]);
    strictEqual(r.code, 0, r.err);
    match(r.out, new RegExp(`took over the lock of a run that is gone \\(pid ${gone.pid}`));
    ok(!(await exists(lock)));
  });
});

Deno.test("--resume skips a damaged newest checkpoint and says which one it uses", async () => {
  await withFixture(async ({ tmp, base }) => {
    const a = await train([...base, "--steps", "6", "--save-every", "2", "--out", `${tmp}/a`]);
    strictEqual(a.code, 0, a.err);
    const f = `${tmp}/a/checkpoint-6/adapter_model.safetensors`;
    const bytes = await Deno.readFile(f);
    await Deno.writeFile(f, bytes.subarray(0, bytes.length - 10)); // truncated
    await Deno.remove(`${tmp}/a/checkpoint-4/optimizer.safetensors`); // missing
    const r = await train(["--resume", `${tmp}/a`, "--steps", "6"]);
    strictEqual(r.code, 0, r.err);
    match(r.out, /resume: skipping .*checkpoint-6 \(adapter_model\.safetensors: /);
    match(r.out, /resume: skipping .*checkpoint-4 \(a file is missing/);
    match(r.out, /resumed from .*checkpoint-2 at step 2/);
    // A checkpoint named explicitly must itself be good.
    await Deno.writeFile(f, bytes.subarray(0, 100));
    refusedBeforeTraining(
      await train(["--resume", `${tmp}/a/checkpoint-6`]),
      2,
      /--resume: .*checkpoint-6: damaged checkpoint/,
    );
  });
});

Deno.test("a diverged run names only a checkpoint that validated, and hints no flag already set", async () => {
  await withFixture(async ({ tmp, base }) => {
    const r = await train([
      ...base,
      "--steps",
      "30",
      "--lr",
      "1e38",
      "--optimizer",
      "sgd",
      "--save-every",
      "1",
      "--out",
      `${tmp}/a`,
    ]);
    strictEqual(r.code, 1, r.err);
    match(
      r.err,
      /error: step \d+: (loss|gradient norm) is (NaN|-?Infinity) \(training diverged\); try a lower --lr/,
    );
    ok(!r.err.includes("--max-grad-norm 1"), "--max-grad-norm 1 is the default, already set");
    const named = /last good checkpoint: (\S+)/.exec(r.err)?.[1];
    if (named) {
      const { checkpointProblem } = await import("../src/deno/run_state.ts");
      strictEqual(await checkpointProblem(named), null);
    }
  });
});

Deno.test("--resume with other data is refused before loading, naming --data", async () => {
  await withFixture(async ({ tmp, base, data }) => {
    const a = await train([...base, "--steps", "4", "--save-every", "2", "--out", `${tmp}/a`]);
    strictEqual(a.code, 0, a.err);
    const text = await Deno.readTextFile(data);
    const shorter = `${tmp}/short.jsonl`;
    await Deno.writeTextFile(shorter, text.split("\n").slice(0, 2).join("\n") + "\n");
    const before = await hashTree(tmp);
    refusedBeforeTraining(
      await train(["--resume", `${tmp}/a/checkpoint-2`, "--data", shorter]),
      2,
      /--data: .*short\.jsonl is not the data this run was trained on \(\d+ bytes then, \d+ now\)/,
    );
    // Same size, other content.
    await Deno.writeTextFile(data, text.replace("31", "13"));
    refusedBeforeTraining(
      await train(["--resume", `${tmp}/a/checkpoint-2`]),
      2,
      /--data: .* is not the data this run was trained on \(the first MiB differs\)/,
    );
    await Deno.writeTextFile(data, text);
    deepStrictEqual(await hashTree(tmp), before);
  });
});

Deno.test("sizes and flags that cannot work, or would be ignored, are refused before loading", async () => {
  await withFixture(async ({ tmp, base }) => {
    const a = await train([...base, "--steps", "1", "--out", `${tmp}/a`, "--quiet"]);
    strictEqual(a.code, 0, a.err);
    const before = await hashTree(tmp);
    const t0 = performance.now();
    for (
      const [extra, pattern] of [
        [["--batch-size", "1000000000"], /--batch-size: .* plan a working set of [\d.]+ [MG]B/],
        [["--batch-size", "100000", "--seq-len", "256"], /--batch-size: .* plan a working set of/],
        [
          ["--seq-len", "2000"],
          /--seq-len: 2000 is above the model's max_position_embeddings 1024/,
        ],
        [["--eval-every", "2"], /--eval-every: needs --eval-data/],
        [
          ["--method", "lcsb", "--lcsb-groups", "9"],
          /--lcsb-groups: 9 is more than the model's 2 layers/,
        ],
        [["--lcsb-groups", "2"], /--lcsb-groups: only used by --method lcsb/],
        [
          ["--max-grad-norm", "0", "--clip-stash", "f32"],
          /--clip-stash: needs --max-grad-norm > 0/,
        ],
        [
          ["--adapter-init", `${tmp}/a`, "--rank", "4"],
          /--rank: 4 disagrees with --adapter-init .* \(2\)/,
        ],
        [
          ["--adapter-init", `${tmp}/a`, "--targets", "q"],
          /--targets: q disagrees with --adapter-init/,
        ],
      ] as const
    ) {
      refusedBeforeTraining(await train([...base, ...extra, "--out", `${tmp}/b`]), 2, pattern);
    }
    ok(performance.now() - t0 < 120_000, "each refusal came at once");
    // Agreeing values are fine.
    const ok2 = await train([
      ...base,
      "--steps",
      "1",
      "--adapter-init",
      `${tmp}/a`,
      "--rank",
      "2",
      "--out",
      `${tmp}/c`,
      "--quiet",
    ]);
    strictEqual(ok2.code, 0, ok2.err);
    for (const [k, v] of before) strictEqual((await hashTree(tmp)).get(k), v, k);
  });
});

Deno.test("bad data lines name their line: null, invalid UTF-8, an unknown chat role", async () => {
  await withFixture(async ({ tmp, base }) => {
    const enc = new TextEncoder();
    const good = '{"input_ids":[1,2,3,4]}\n';
    await Deno.writeTextFile(`${tmp}/null.jsonl`, good + "null\n");
    const bad = new Uint8Array([...enc.encode(good + good), 0x7b, 0xff, 0xfe, 0x7d, 0x0a]);
    await Deno.writeFile(`${tmp}/utf8.jsonl`, bad);
    await Deno.writeTextFile(
      `${tmp}/role.jsonl`,
      JSON.stringify({
        messages: [{ role: "user", content: "hi" }, { role: "wizard", content: "zap" }, {
          role: "assistant",
          content: "ok",
        }],
      }) + "\n",
    );
    refusedBeforeTraining(
      await train([...base, "--data", `${tmp}/null.jsonl`, "--out", `${tmp}/o`]),
      1,
      /null\.jsonl:2: expected a JSON object, got null$/,
    );
    refusedBeforeTraining(
      await train([...base, "--data", `${tmp}/utf8.jsonl`, "--out", `${tmp}/o`]),
      1,
      /utf8\.jsonl:3: not valid UTF-8$/,
    );
    // The demo model ships a chat template (Qwen2.5's), which knows no "wizard".
    refusedBeforeTraining(
      await train(["--data", `${tmp}/role.jsonl`, "--out", `${tmp}/o`, "--seq-len", "32"]),
      1,
      /role\.jsonl:1: unknown role "wizard" \(expected system, user, assistant, tool\)$/,
    );
    ok(!(await exists(`${tmp}/o`)));
  });
});

Deno.test("a data line over --max-line-bytes is one line naming the file, the line and the flag", async () => {
  await withFixture(async ({ tmp, base }) => {
    const good = '{"input_ids":[1,2,3,4]}\n';
    const long = JSON.stringify({ input_ids: Array.from({ length: 60 }, (_, i) => i) });
    await Deno.writeTextFile(`${tmp}/long.jsonl`, good + "\n" + long + "\n" + good);
    for (const flag of ["--data", "--eval-data"]) {
      refusedBeforeTraining(
        await train([
          ...[...base, flag, `${tmp}/long.jsonl`, "--steps", "1"],
          ...["--max-line-bytes", "100", "--out", `${tmp}/o`],
        ]),
        1,
        new RegExp(
          `^error: ${tmp}/long\\.jsonl:3: line is ${long.length} bytes ` +
            `\\(limit 100 bytes, --max-line-bytes\\)$`,
        ),
      );
    }
    ok(!(await exists(`${tmp}/o`)));
    // At its default (8 MiB) the same file trains.
    const r = await train([
      ...[...base, "--data", `${tmp}/long.jsonl`, "--steps", "1", "--out", `${tmp}/o2`],
    ]);
    strictEqual(r.code, 0, r.err);
  });
});

Deno.test("errors carry no trace; SLIMTUNE_DEBUG=1 adds it", async () => {
  await withFixture(async ({ tmp, base }) => {
    await Deno.writeTextFile(`${tmp}/not-a-dir`, "");
    const r = await train([
      ...base,
      "--steps",
      "1",
      "--out",
      `${tmp}/o`,
      "--cache-dir",
      `${tmp}/not-a-dir/x`,
    ]);
    refusedBeforeTraining(r, 2, /--cache-dir: .*not-a-dir is not a directory/);
    const d = await train(
      [...base, "--steps", "1", "--out", `${tmp}/o`, "--cache-dir", `${tmp}/not-a-dir/x`],
      { SLIMTUNE_DEBUG: "1" },
    );
    strictEqual(d.code, 2);
    match(d.err, /^\s+at /m);
  });
});

Deno.test("--save-total-limit keeps the newest checkpoints", async () => {
  await withFixture(async ({ tmp, base }) => {
    const r = await train([
      ...base,
      "--steps",
      "5",
      "--save-every",
      "1",
      "--save-total-limit",
      "2",
      "--out",
      `${tmp}/a`,
    ]);
    strictEqual(r.code, 0, r.err);
    const names = (await Array.fromAsync(Deno.readDir(`${tmp}/a`))).map((e) => e.name)
      .filter((n) => n.startsWith("checkpoint-")).sort();
    deepStrictEqual(names, ["checkpoint-4", "checkpoint-5"]);
    match(r.out, /done: 5 steps/);
    const one = await train([...base, "--steps", "1", "--out", `${tmp}/b`]);
    match(one.out, /done: 1 step,/);
    match(one.out, /data: 8 examples -> \d+ rows? of/);
  });
});

/** Mounts a tmpfs of `size` at `dir` (root only); false with a printed reason elsewhere. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const r = await tool("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir])
    .catch(() => null);
  if (!r?.success) {
    console.log("skipped: mounting a tmpfs needs root and a kernel that allows it");
    return false;
  }
  return true;
}

/** Fills the filesystem of `dir`, then frees `spare` bytes (room for a lock file, not a save). */
async function fillDisk(dir: string, spare: number): Promise<void> {
  const f = await Deno.open(`${dir}/filler`, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  let size = 0;
  try {
    for (;;) size += await f.write(chunk);
  } catch {
    // full
  } finally {
    f.close();
  }
  await Deno.truncate(`${dir}/filler`, Math.max(0, size - spare));
}

async function tmpEntries(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".tmp") || e.name.endsWith(".old")) found.push(e.name);
    if (e.isDirectory) found.push(...await tmpEntries(`${dir}/${e.name}`));
  }
  return found;
}

Deno.test("a full disk during a checkpoint and during the final save names the path and keeps what was there", async () => {
  await withFixture(async ({ tmp, base }) => {
    const disk = `${tmp}/disk`;
    if (!(await mountTmpfs(disk, "2m"))) return;
    try {
      const a = await train([...base, "--steps", "2", "--save-every", "1", "--out", `${disk}/run`]);
      strictEqual(a.code, 0, a.err);
      const before = await hashTree(`${disk}/run`);
      await fillDisk(disk, 8192);

      const c = await train(["--resume", `${disk}/run`, "--steps", "4"]);
      strictEqual(c.code, 1, c.err);
      match(
        c.err,
        /error: cannot write checkpoint .*\/run\/checkpoint-3: .*No space left on device.*; last good checkpoint: .*checkpoint-2\n$/,
      );
      ok(!/^\s+at /m.test(c.err), c.err);
      deepStrictEqual(await hashTree(`${disk}/run`), before);
      deepStrictEqual(await tmpEntries(disk), []);

      const f = await train(["--resume", `${disk}/run`, "--steps", "3", "--save-every", "0"]);
      strictEqual(f.code, 1, f.err);
      match(
        f.err,
        /error: cannot write .*\/run\/adapter_model\.safetensors: .*No space left on device/,
      );
      deepStrictEqual(await hashTree(`${disk}/run`), before);
      deepStrictEqual(await tmpEntries(disk), []);
    } finally {
      await tool("umount", [disk]);
    }
  });
});

Deno.test("--weights auto streams from a cache in the user's cache folder, never in the model's", async () => {
  await withFixture(async ({ tmp, base }) => {
    const before = await hashTree(`${tmp}/model`);
    const cache = `${tmp}/cache`;
    const r = await train([...base, "--steps", "2", "--out", `${tmp}/a`], {
      SLIMTUNE_CACHE_DIR: cache,
    });
    strictEqual(r.code, 0, r.err);
    match(r.out, new RegExp(`weights: streamed .*int4 cache in ${cache}`));
    match(r.out, /model: .* int4 streamed/);
    ok((await Array.fromAsync(Deno.readDir(cache))).some((e) => e.name.endsWith(".safetensors")));
    deepStrictEqual(await hashTree(`${tmp}/model`), before);

    // No writable cache folder: resident, and the run says how to stream.
    await Deno.writeTextFile(`${tmp}/not-a-dir`, "");
    const resident = await train([...base, "--steps", "2", "--out", `${tmp}/b`], {
      SLIMTUNE_CACHE_DIR: `${tmp}/not-a-dir`,
    });
    strictEqual(resident.code, 0, resident.err);
    match(resident.out, /weights: resident, all in memory .*--cache-dir DIR/);
    deepStrictEqual(
      await Deno.readFile(`${tmp}/a/adapter_model.safetensors`),
      await Deno.readFile(`${tmp}/b/adapter_model.safetensors`),
    );
  });
});
