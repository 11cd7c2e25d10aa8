/**
 * slimtune against PyTorch on the same CPU, interleaved in one invocation: the same random
 * checkpoint (tools/make_checkpoint.ts, bf16) and the same tokens feed slimtune's training step
 * and `bench/torch_step.py` (plain PyTorch, f32 base weights, autograd without checkpointing).
 * Each round runs every slimtune configuration and torch, each in its own process, so a change
 * in the machine's load hits both sides alike; each round starts one run later than the one
 * before (no run always goes first); the ratio of tokens/s comes from the sum of the rounds'
 * measured steps.
 *
 *   npx deno run -A bench/vs_torch.ts [--preset qwen2.5-0.5b] [--layers N] [--seq 256] \
 *     [--rank 8] [--threads 2] [--steps 2] [--rounds 2] [--weights streamed] \
 *     [--configs mesp,mesp:all] [--dir /tmp/slimtune-bench] [--out bench/results/vs_torch.md]
 *
 * A configuration is `METHOD` or `METHOD:KEPT` (mebp, mesp: KEPT top blocks keep their tapes;
 * `all` = every block). Same step on both sides: batch 1, LoRA rank r (alpha 2r) on all seven
 * projections, SGD lr 1e-4, the HF causal-LM loss; slimtune's base weights are int4 (torch has no
 * int4 CPU matmul), so the first-step losses agree only to the quantization's effect
 * (`--quant none` makes them equal to f32 rounding, a check that both ran the same model).
 * Torch runs with the BLAS its Debian package links (OpenBLAS when libopenblas0-pthread is
 * installed; the report names the library).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { loadKernels } from "../src/kernels/wasm.ts";
import { createTrainingSession, type MethodName } from "../src/methods/session.ts";
import { planMemory } from "../src/methods/memory_plan.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { processPeakBytes } from "../src/deno/process_memory.ts";
import { Rng } from "../src/runtime/rng.ts";
import { writeFileAtomic } from "../src/deno/fs.ts";

const MB = 1 << 20;

interface Child {
  checkpoint: string;
  tokens: string;
  method: MethodName;
  kept: number | "all";
  weights: "resident" | "streamed";
  quant: "int4" | "none";
  rank: number;
  threads: number;
  steps: number;
  prepareOnly?: boolean;
}

interface Result {
  stepSeconds: number[];
  losses: number[];
  peakBytes: number | null;
  variant?: string;
  keptTapes?: number;
  planBytes?: number;
  blas?: string[];
}

async function runChild(c: Child): Promise<void> {
  using loaded = await loadKernels({ threads: c.threads });
  const { kernels, arena, variant } = loaded;
  const store = await openModelDir({
    source: c.checkpoint,
    quant: c.quant,
    weights: c.weights,
    cacheDir: `${c.checkpoint}/cache`,
    kernels,
    arena,
  });
  if (c.prepareOnly) {
    await store.close();
    console.log(`@@RESULT ${JSON.stringify({ stepSeconds: [], losses: [], peakBytes: null })}`);
    return;
  }
  const tokens: number[][] = JSON.parse(await Deno.readTextFile(c.tokens));
  const seqLen = tokens[0].length;
  const kept = c.kept === "all" ? store.config.numLayers : c.kept;
  const lora = { rank: c.rank, alpha: 2 * c.rank, targets: [...LINEAR_NAMES] };
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method: c.method,
    lora,
    optimizer: { kind: "sgd", lr: 1e-4, weightDecay: 0 },
    maxGradNorm: 0,
    seed: 1,
    keptTapes: kept,
  });
  const plan = planMemory({
    config: store.config,
    method: c.method,
    seqLen,
    batchSize: 1,
    lora,
    optimizer: "sgd",
    keptTapes: kept,
  });
  const stepSeconds: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s <= c.steps; s++) {
    const ids = Int32Array.from(tokens[s % tokens.length]);
    const t0 = performance.now();
    losses.push(
      (await session.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen }], 1e-4)).loss,
    );
    if (s > 0) stepSeconds.push((performance.now() - t0) / 1e3); // step 0 warms up
  }
  await store.close();
  const r: Result = {
    stepSeconds,
    losses,
    peakBytes: processPeakBytes(),
    variant,
    keptTapes: plan.keptTapes,
    planBytes: arena.used + plan.total,
  };
  console.log(`@@RESULT ${JSON.stringify(r)}`);
}

async function spawn(cmd: string, args: string[], env?: Record<string, string>): Promise<Result> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", env }).output();
  const out = new TextDecoder().decode(o.stdout);
  const line = out.split("\n").find((l) => l.startsWith("@@RESULT "));
  if (!o.success || !line) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${o.code}):\n` +
        (out + new TextDecoder().decode(o.stderr)).slice(-3000),
    );
  }
  const r = JSON.parse(line.slice(9));
  if ("step_seconds" in r) {
    // bench/torch_step.py: its first step is the warm-up, excluded from step_seconds.
    return {
      stepSeconds: r.step_seconds,
      losses: r.losses,
      peakBytes: r.ru_maxrss_bytes,
      blas: r.blas,
    };
  }
  return r;
}

function cpuInfo(): { model: string; simd: string; cores: number } {
  const text = (() => {
    try {
      return Deno.readTextFileSync("/proc/cpuinfo");
    } catch {
      return "";
    }
  })();
  const model = /model name\s*:\s*(.*)/.exec(text)?.[1] ?? "unknown CPU";
  const flags = new Set((/flags\s*:\s*(.*)/.exec(text)?.[1] ?? "").split(" "));
  const simd = flags.has("avx512f") ? "AVX-512" : flags.has("avx2") ? "AVX2" : "SSE/other";
  return { model, simd, cores: navigator.hardwareConcurrency };
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      preset: { type: "string", default: "qwen2.5-0.5b" },
      layers: { type: "string" },
      seq: { type: "string", default: "256" },
      rank: { type: "string", default: "8" },
      threads: { type: "string", default: "2" },
      steps: { type: "string", default: "2" },
      rounds: { type: "string", default: "2" },
      weights: { type: "string", default: "streamed" },
      quant: { type: "string", default: "int4" },
      configs: { type: "string", default: "mesp,mesp:all" },
      dir: { type: "string", default: "/tmp/slimtune-bench" },
      out: { type: "string" },
    },
  });
  if (values.child) return await runChild(JSON.parse(values.child));
  const seq = Number(values.seq), rank = Number(values.rank), threads = Number(values.threads);
  const steps = Number(values.steps), rounds = Number(values.rounds);
  const layers = values.layers ? Number(values.layers) : undefined;
  const weights = values.weights as Child["weights"];
  const quant = values.quant as Child["quant"];
  const configs = values.configs.split(",").map((s) => {
    const [method, kept] = s.split(":");
    return {
      label: s,
      method: method as MethodName,
      kept: kept === undefined ? 0 : kept === "all" ? "all" as const : Number(kept),
    };
  });

  const checkpoint = `${values.dir}/${values.preset}${layers ? `-${layers}layers` : ""}`;
  const exists = (f: string) => Deno.stat(`${checkpoint}/${f}`).then(() => true, () => false);
  const have = await exists("config.json") &&
    (await exists("model.safetensors") || await exists("model.safetensors.index.json"));
  if (!have) {
    console.log(`generating ${checkpoint} (random weights, bf16) ...`);
    await makeCheckpoint({ preset: values.preset, out: checkpoint, seed: 1, layers });
  }
  const config = JSON.parse(await Deno.readTextFile(`${checkpoint}/config.json`));
  const tokensFile = `${checkpoint}/tokens-${seq}.json`;
  const rng = new Rng(7);
  const tokens = Array.from(
    { length: steps + 1 },
    () => Array.from({ length: seq }, () => rng.nextU32() % config.vocab_size),
  );
  await Deno.writeTextFile(tokensFile, JSON.stringify(tokens));

  const self = new URL(import.meta.url).pathname;
  const torchScript = new URL("./torch_step.py", import.meta.url).pathname;
  const child = (c: Partial<Child>) =>
    spawn(Deno.execPath(), [
      "run",
      "-A",
      self,
      "--child",
      JSON.stringify({
        checkpoint,
        tokens: tokensFile,
        weights,
        quant,
        rank,
        threads,
        steps,
        method: "mesp",
        kept: 0,
        ...c,
      }),
    ]);
  const torch = () =>
    spawn("/usr/bin/python3", [
      torchScript,
      ...["--checkpoint", checkpoint, "--tokens", tokensFile, "--seq", String(seq)],
      ...["--rank", String(rank), "--steps", String(steps), "--threads", String(threads)],
    ], { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) });

  if (weights === "streamed") await child({ prepareOnly: true }); // builds the int4 cache once
  const cpu = cpuInfo();
  const loadBefore = loadavg();
  const sums = new Map<string, { seconds: number; steps: number; peak: number; r: Result }>();
  const add = (label: string, r: Result) => {
    const s = sums.get(label) ?? { seconds: 0, steps: 0, peak: 0, r };
    s.seconds += r.stepSeconds.reduce((a, b) => a + b, 0);
    s.steps += r.stepSeconds.length;
    s.peak = Math.max(s.peak, r.peakBytes ?? 0);
    sums.set(label, s);
  };
  const perRound: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const line: string[] = [];
    const times = new Map<string, number>();
    // Each round starts one run later, so no run always goes first (or right after torch).
    const order = [...configs, null];
    for (
      const c of [...order.slice(round % order.length), ...order.slice(0, round % order.length)]
    ) {
      const label = c ? c.label : "torch";
      const r = c ? await child({ method: c.method, kept: c.kept }) : await torch();
      add(label, r);
      const sps = r.stepSeconds.reduce((a, b) => a + b, 0) / r.stepSeconds.length;
      times.set(label, sps);
      console.log(
        `round ${round + 1} ${label}: ${sps.toFixed(2)} s/step, ${(seq / sps).toFixed(1)} tok/s, ` +
          `peak ${((r.peakBytes ?? 0) / MB).toFixed(1)} MB, first loss ${r.losses[0].toFixed(4)}`,
      );
    }
    for (const c of configs) {
      line.push(`${c.label} ${(times.get("torch")! / times.get(c.label)!).toFixed(2)}×`);
    }
    perRound.push(`round ${round + 1}: ${line.join(", ")}`);
  }
  const loadAfter = loadavg();
  const t = sums.get("torch")!;
  const torchTps = (seq * t.steps) / t.seconds;
  const rows = [...configs.map((c) => c.label), "torch"].map((label) => {
    const s = sums.get(label)!;
    const tps = (seq * s.steps) / s.seconds;
    const kept = s.r.keptTapes !== undefined
      ? ` (${s.r.keptTapes} of ${config.num_hidden_layers} tapes kept)`
      : "";
    return `| ${
      label === "torch" ? "PyTorch f32, no checkpointing" : `slimtune ${label}${kept}`
    } | ` +
      `${(s.seconds / s.steps).toFixed(2)} | ${tps.toFixed(1)} | ${
        (tps / torchTps).toFixed(2)
      }× | ` +
      `${(s.peak / MB).toFixed(1)} | ${s.r.losses[0].toFixed(4)} |`;
  });
  const variant = [...sums.values()].find((s) => s.r.variant)?.r.variant ?? "?";
  const report = [
    `# slimtune vs PyTorch, same CPU, interleaved`,
    "",
    `\`npx deno run -A bench/vs_torch.ts ${Deno.args.join(" ")}\``,
    "",
    `- CPU: ${cpu.model}, ${cpu.cores} logical cores, ${cpu.simd}; slimtune kernels: ${variant} ` +
    `(128-bit wasm SIMD), ${threads} thread(s) on both sides`,
    `- load average before / after: ${loadBefore} / ${loadAfter} (the machine was shared with ` +
    `other jobs: only the interleaved ratio means anything, not the absolute times)`,
    `- model: ${values.preset}${layers ? ` cut to ${layers} layers` : ""} shape, random bf16 ` +
    `weights (${checkpoint}); seq ${seq}, batch 1, LoRA r ${rank} on all 7 projections, SGD; ` +
    `slimtune ${quant} base, ${weights}; torch ${
      (t.r.blas?.find((l) => /openblas/.test(l)) ?? t.r.blas?.[0])?.split("/").slice(-2).join(
        "/",
      ) ?? "its BLAS"
    }`,
    `- ${rounds} rounds × ${steps} measured steps each (after one warm-up step per process)`,
    "",
    "| run | s/step | tokens/s | vs torch | process peak MB | first-step loss |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    ...perRound.map((l) => `- ${l}`),
    "",
  ].join("\n");
  console.log(report);
  if (values.out) await writeFileAtomic(values.out, new TextEncoder().encode(report));
}

if (import.meta.main) await main();
