/**
 * Method benchmarks at real model sizes: full / mebp / mesp / lcsb / mezo on Qwen2.5-0.5B- and
 * 1.5B-shaped checkpoints (random weights from tools/make_checkpoint.ts; memory and time depend
 * only on the shapes), seq 256, rank 8 on all 7 projections, batch 1, SGD lr 1e-4, int4 base,
 * resident and streamed weight stores; plus the MeSP paper's seq and rank sweeps on 0.5B (mebp,
 * mesp, streamed) and a PyTorch CPU reference step (bench/torch_step.py); then the user path:
 * `train.ts` itself on chat data with the tokenizer in the process (`bench/user_path.ts`), for
 * the demo, the paper setting and the defaults, whole-process peak read from outside.
 *
 * Every configuration runs in its own subprocess under `/usr/bin/time -v`, so each gets
 *   - working set: wasm high-water + JS buffers held (session.memory()),
 *   - process peak: VmHWM read inside the child, and max RSS measured from outside,
 *   - seconds per step over the measured steps (the first step is a warm-up, excluded), tokens/s.
 * Results: one JSON line per configuration and a markdown report (paper numbers beside ours,
 * PASS/MISS targets) under `--out`.
 *
 *   npx deno run -A bench/methods.ts --quick            # minutes: 0.5B streamed, target configs
 *   npx deno run -A bench/methods.ts                    # full (see --help for the plan)
 *   npx deno run -A bench/methods.ts --models 0.5b --methods mesp,mebp --steps 2
 *
 * Checkpoints (and the streamed stores' int4 caches) are generated once under `--dir`
 * (default /tmp/slimtune-bench) and reused.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { loadKernels } from "../src/kernels/wasm.ts";
import { createTrainingSession, type MethodName } from "../src/methods/session.ts";
import { planMemory } from "../src/methods/memory_plan.ts";
import { processPeakBytes } from "../src/deno/process_memory.ts";
import { Rng } from "../src/runtime/rng.ts";
import { measureUserPath, type UserPathRow, userPathSetup, userPathTable } from "./user_path.ts";

const MB = 1 << 20;
const TARGETS7 = ["q", "k", "v", "o", "gate", "up", "down"] as const;
const ALL_METHODS: MethodName[] = ["full", "mebp", "mesp", "lcsb", "mezo"];
const MODELS: Record<string, string> = {
  "0.5b": "qwen2.5-0.5b",
  "1.5b": "qwen2.5-1.5b",
  "gemma3-270m": "gemma3-270m",
  "qwen3-0.6b": "qwen3-0.6b",
};

/** Process-peak goals of mesp on streamed weights (seq 256, rank 8) per model, in MB. */
const PEAK_GOALS: Record<string, number> = { "gemma3-270m": 100, "qwen3-0.6b": 136 };

/** One measured configuration (what the parent hands the child). */
interface Config {
  model: string; // a key of MODELS
  method: MethodName;
  store: "resident" | "streamed";
  seq: number;
  rank: number;
  /** Measured steps after the warm-up step (0: memory only, the first step's time is kept). */
  steps: number;
  /** Which table the row belongs to. */
  group: "main" | "seq" | "rank";
}

/** What the child reports. */
interface ChildResult {
  openSeconds: number;
  firstStepSeconds: number;
  stepSeconds: number[];
  losses: number[];
  wasmHighWater: number;
  wasmCommitted: number;
  jsBytes: number;
  workingSet: number;
  vmHWM: number | null;
  plan: { lora: number; optimizer: number; step: number; total: number };
  storeArenaBytes: number;
  grewAfterFirstStep: boolean;
  variant: string;
  /** Kernel threads the child actually ran with. */
  threads: number;
}

const PAPER_MAIN: Record<string, { mebpMB: number; mespMB: number; mebpS: number; mespS: number }> =
  {
    "0.5b": { mebpMB: 360.8, mespMB: 136.2, mebpS: 0.68, mespS: 0.86 },
    "1.5b": { mebpMB: 516.2, mespMB: 262.6, mebpS: 1.66, mespS: 2.17 },
  };
const PAPER_SEQ: Record<number, [number, number]> = {
  128: [252.7, 110.7],
  256: [360.8, 136.2],
  512: [582.4, 245.8],
  1024: [1050.3, 513.6],
};
const PAPER_RANK: Record<number, [number, number]> = {
  4: [355.2, 132.8],
  8: [360.8, 136.2],
  16: [372.4, 143.5],
  32: [395.8, 158.2],
};

// ---------------------------------------------------------------------------------------------
// Child: one configuration in this process.

async function runChild(
  c: Config & { dir: string; threads: number; prepareOnly?: boolean },
): Promise<void> {
  const ckpt = `${c.dir}/${MODELS[c.model]}`;
  using loaded = await loadKernels({ threads: c.threads });
  const { kernels, arena, variant } = loaded;
  const t0 = performance.now();
  const store = await openModelDir({
    source: ckpt,
    quant: "int4",
    weights: c.store,
    cacheDir: `${ckpt}/cache`,
    kernels,
    arena,
  });
  const openSeconds = (performance.now() - t0) / 1e3;
  if (c.prepareOnly) {
    await store.close();
    console.log(`@@RESULT ${JSON.stringify({ openSeconds })}`);
    return;
  }
  const storeArenaBytes = arena.used;
  const lora = { rank: c.rank, alpha: 2 * c.rank, targets: [...TARGETS7] };
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method: c.method,
    lora,
    optimizer: { kind: "sgd", lr: 1e-4, weightDecay: 0 },
    maxGradNorm: 0,
    lcsb: { groups: 4, pattern: "contiguous" },
    seed: 1,
  });
  const plan = planMemory({
    config: store.config,
    method: c.method,
    seqLen: c.seq,
    batchSize: 1,
    lora,
    optimizer: "sgd",
    lcsb: { groups: 4, pattern: "contiguous" },
  });
  const rng = new Rng(7);
  const batch = () => {
    const ids = new Int32Array(c.seq);
    for (let i = 0; i < c.seq; i++) ids[i] = rng.nextU32() % store.config.vocabSize;
    return { inputIds: ids, labels: ids, batchSize: 1, seqLen: c.seq };
  };
  const losses: number[] = [];
  const stepSeconds: number[] = [];
  let t = performance.now();
  losses.push((await session.step([batch()], 1e-4)).loss);
  const firstStepSeconds = (performance.now() - t) / 1e3;
  let grew = false;
  for (let s = 0; s < c.steps; s++) {
    const b = batch();
    t = performance.now();
    losses.push((await session.step([b], 1e-4)).loss);
    stepSeconds.push((performance.now() - t) / 1e3);
    grew ||= session.memory().grewLastStep;
  }
  const m = session.memory();
  const r: ChildResult = {
    openSeconds,
    firstStepSeconds,
    stepSeconds,
    losses,
    wasmHighWater: m.wasmHighWater,
    wasmCommitted: arena.committed,
    jsBytes: m.jsBytes,
    workingSet: m.wasmHighWater + m.jsBytes,
    vmHWM: processPeakBytes(),
    plan,
    storeArenaBytes,
    grewAfterFirstStep: grew,
    variant,
    threads: loaded.threads,
  };
  await store.close();
  console.log(`@@RESULT ${JSON.stringify(r)}`);
}

// ---------------------------------------------------------------------------------------------
// Parent: plan, run the children, write the results.

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

function sh(cmd: string[]): string {
  try {
    const o = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "null" })
      .outputSync();
    return new TextDecoder().decode(o.stdout).trim();
  } catch {
    return "";
  }
}

/** Runs `cmd` under /usr/bin/time -v; returns the @@RESULT JSON, max RSS (bytes) and wall s. */
async function timed(
  cmd: string[],
  label: string,
  env?: Record<string, string>,
): Promise<{ result: Record<string, unknown> | null; maxRss: number | null; log: string }> {
  const p = new Deno.Command("/usr/bin/time", {
    args: ["-v", ...cmd],
    stdout: "piped",
    stderr: "piped",
    env,
  });
  const o = await p.output();
  const out = new TextDecoder().decode(o.stdout);
  const err = new TextDecoder().decode(o.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
  const line = out.split("\n").find((l) => l.startsWith("@@RESULT "));
  if (!o.success || !line) {
    console.error(`  ${label}: FAILED (exit ${o.code})\n${(out + err).slice(-3000)}`);
  }
  return {
    result: line ? JSON.parse(line.slice(9)) : null,
    maxRss: rss ? Number(rss[1]) * 1024 : null,
    log: err,
  };
}

/**
 * Debian's python3-torch links the reference BLAS (~6 GFLOP/s). For a fair native reference the
 * torch step runs with OpenBLAS, unpacked locally from the Debian package (no system change):
 * returns the directory for LD_LIBRARY_PATH, or null (then torch runs on the reference BLAS).
 */
function openBlasDir(dir: string): string | null {
  const lib = `${dir}/openblas/root/usr/lib/x86_64-linux-gnu/openblas-pthread`;
  const have = () => {
    try {
      return Deno.statSync(`${lib}/libblas.so.3`).isFile;
    } catch {
      return false;
    }
  };
  if (have()) return lib;
  Deno.mkdirSync(`${dir}/openblas`, { recursive: true });
  sh([
    "sh",
    "-c",
    `cd '${dir}/openblas' && apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb root`,
  ]);
  return have() ? lib : null;
}

async function ensureCheckpoint(dir: string, model: string): Promise<void> {
  const out = `${dir}/${MODELS[model]}`;
  const exists = (f: string) => Deno.stat(`${out}/${f}`).then(() => true, () => false);
  // Large presets are sharded (model.safetensors.index.json + shards), small ones single-file.
  const have = await exists("config.json") &&
    (await exists("model.safetensors") || await exists("model.safetensors.index.json"));
  if (have) return;
  const t0 = performance.now();
  console.log(`generating ${MODELS[model]} checkpoint (random weights, bf16) in ${out} ...`);
  await makeCheckpoint({ preset: MODELS[model], out, seed: 1 });
  console.log(`  done in ${((performance.now() - t0) / 1e3).toFixed(0)} s`);
}

interface Row extends Config {
  kind: "slimtune";
  ok: boolean;
  loadavgBefore: string;
  loadavgAfter: string;
  maxRssOutside: number | null;
  secondsPerStep: number | null;
  tokensPerSecond: number | null;
  child: ChildResult | null;
  commit: string;
  date: string;
}

interface TorchRow {
  kind: "torch";
  model: string;
  seq: number;
  rank: number;
  threads: number;
  ok: boolean;
  secondsPerStep: number | null;
  tokensPerSecond: number | null;
  ruMaxRss: number | null;
  maxRssOutside: number | null;
  loadavgBefore: string;
  loadavgAfter: string;
  detail: Record<string, unknown> | null;
}

function planConfigs(o: {
  quick: boolean;
  models: string[];
  methods: MethodName[];
  stores: ("resident" | "streamed")[];
  storesGiven: boolean;
  steps: number;
  sweeps: boolean;
}): Config[] {
  const out: Config[] = [];
  const main = (model: string, method: MethodName, store: "resident" | "streamed") => {
    // LCSB's step cost cycles through its K = 4 groups: measure a whole cycle where steps allow.
    // (0.5B only by default: a 1.5B step takes minutes here.)
    const steps = method === "lcsb" && !o.quick && model === "0.5b"
      ? Math.max(o.steps, 4)
      : o.steps;
    out.push({ model, method, store, seq: 256, rank: 8, steps, group: "main" });
  };
  for (const model of o.models) {
    // Default full run: 1.5B streamed only (resident = streamed + its int4 weights; opt in with
    // --stores resident,streamed), so the full run fits in about 50 minutes on 2 shared cores.
    const stores = model === "1.5b" && !o.storesGiven ? ["streamed" as const] : o.stores;
    for (const store of stores) {
      for (const method of o.methods) main(model, method, store);
    }
  }
  if (o.sweeps && o.models.includes("0.5b")) {
    for (const method of (["mebp", "mesp"] as MethodName[]).filter((m) => o.methods.includes(m))) {
      for (const seq of [128, 512, 1024]) {
        out.push({
          model: "0.5b",
          method,
          store: "streamed",
          seq,
          rank: 8,
          steps: 0,
          group: "seq",
        });
      }
      for (const rank of [4, 16, 32]) {
        out.push({
          model: "0.5b",
          method,
          store: "streamed",
          seq: 256,
          rank,
          steps: 0,
          group: "rank",
        });
      }
    }
  }
  return out;
}

const mb = (b: number | null | undefined, d = 1) => (b == null ? "n/a" : (b / MB).toFixed(d));
const num = (x: number | null | undefined, d = 2) => (x == null ? "n/a" : x.toFixed(d));

function find(rows: Row[], q: Partial<Config>): Row | undefined {
  return rows.find((r) =>
    r.ok && Object.entries(q).every(([k, v]) => (r as unknown as Record<string, unknown>)[k] === v)
  );
}

/** PASS/MISS of each {@link PEAK_GOALS} model that has a mesp streamed row. */
function modelTargets(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const [model, goal] of Object.entries(PEAK_GOALS)) {
    const r = find(rows, { model, method: "mesp", store: "streamed", seq: 256, rank: 8 });
    if (!r) continue;
    const peak = Math.max(r.maxRssOutside ?? 0, r.child?.vmHWM ?? 0);
    lines.push(
      `| ${model} mesp streamed process peak ≤ ${goal} MB | ${
        peak <= goal * MB ? "PASS" : "MISS"
      } | ${mb(peak)} MB (working set ${mb(r.child?.workingSet)} MB, ${
        r.child?.threads ?? "?"
      } kernel thread(s)); gap ${mb(peak - goal * MB)} MB |`,
    );
  }
  return lines.length === 0 ? [] : [
    "| target (seq 256, rank 8, streamed) | result | measured (gap) |",
    "|---|---|---|",
    ...lines,
    "",
  ];
}

function targets(rows: Row[]): string[] {
  const lines: string[] = [];
  if (!rows.some((r) => r.model === "0.5b")) return lines;
  const base = { model: "0.5b", seq: 256, rank: 8, store: "streamed" as const };
  const mesp = find(rows, { ...base, method: "mesp" });
  const mebp = find(rows, { ...base, method: "mebp" });
  const lcsb = find(rows, { ...base, method: "lcsb" });
  const check = (name: string, ok: boolean | null, detail: string) => {
    lines.push(`| ${name} | ${ok === null ? "n/a" : ok ? "PASS" : "MISS"} | ${detail} |`);
  };
  lines.push("| target (0.5B, seq 256, rank 8, streamed) | result | measured (gap) |");
  lines.push("|---|---|---|");
  if (mesp) {
    const peak = Math.max(mesp.maxRssOutside ?? 0, mesp.child?.vmHWM ?? 0);
    check(
      "mesp process peak ≤ 136 MB",
      peak <= 136 * MB,
      `${mb(peak)} MB (outside max RSS ${mb(mesp.maxRssOutside)}, VmHWM ${
        mb(mesp.child?.vmHWM)
      }); gap ${mb(peak - 136 * MB)} MB`,
    );
    const ws = mesp.child!.workingSet;
    check("mesp working set ≤ 80 MB", ws <= 80 * MB, `${mb(ws)} MB; gap ${mb(ws - 80 * MB)} MB`);
  } else check("mesp (no result)", null, "");
  if (mesp && mebp) {
    const ratio = mesp.child!.workingSet / mebp.child!.workingSet;
    check(
      "mesp ≤ 0.5 × mebp working set",
      ratio <= 0.5,
      `${mb(mesp.child!.workingSet)} / ${mb(mebp.child!.workingSet)} MB = ${ratio.toFixed(3)}`,
    );
  } else check("mesp ≤ 0.5 × mebp working set", null, "needs mesp and mebp rows");
  if (mesp && lcsb && mesp.secondsPerStep && lcsb.secondsPerStep) {
    const sp = mesp.secondsPerStep / lcsb.secondsPerStep;
    check(
      "lcsb (K = 4) ≥ 1.4× mesp steps/s",
      sp >= 1.4,
      `${sp.toFixed(2)}× (lcsb ${num(lcsb.secondsPerStep)} s/step over ${lcsb.steps} steps, ` +
        `mesp ${num(mesp.secondsPerStep)} s/step); gap ${(sp - 1.4).toFixed(2)}×`,
    );
  } else check("lcsb (K = 4) ≥ 1.4× mesp steps/s", null, "needs timed mesp and lcsb rows");
  if (mesp && mesp.tokensPerSecond) {
    check(
      "mesp ≥ 20 tokens/s (all cores)",
      mesp.tokensPerSecond >= 20,
      `${num(mesp.tokensPerSecond, 1)} tokens/s with ${mesp.child?.threads ?? "?"} kernel ` +
        `thread(s) ` +
        `(${navigator.hardwareConcurrency} cores here); gap ${
          num(mesp.tokensPerSecond - 20, 1)
        } tokens/s`,
    );
  }
  return lines;
}

function report(
  rows: Row[],
  torch: TorchRow[],
  meta: Record<string, string>,
  userPath: UserPathRow[] = [],
  userPathSteps = 0,
): string {
  const L: string[] = [];
  L.push(`# slimtune method benchmarks (${meta.mode})`, "");
  L.push(
    `Generated by \`${meta.command}\` on ${meta.date}, commit ${meta.commit}. Machine: ` +
      `${meta.cpu}, ${meta.cores} cores, shared with other engineers (timings are noisy: ` +
      `/proc/loadavg is recorded before and after each row). Kernels: ${meta.variant}, ` +
      `${meta.threads} thread(s). Random-weight checkpoints at the real shapes; int4 g64 base; batch 1; ` +
      `SGD lr 1e-4; LoRA on q,k,v,o,gate,up,down, alpha = 2r. MB = 2^20 bytes.`,
    "",
  );
  L.push(
    "Working set = wasm high-water + JS buffers held. Process peak: VmHWM read inside the " +
      "process at the end, and max RSS measured from outside by `/usr/bin/time -v` (each row " +
      "is its own process). s/step excludes the first (warm-up) step; rows marked * are " +
      "memory-only (one step, its time shown).",
    "",
  );
  L.push("## Targets", "", ...modelTargets(rows), ...targets(rows), "");
  L.push("## Main table (seq 256, rank 8)", "");
  L.push(
    "| model | store | method | working set MB | wasm high-water MB | JS held MB | VmHWM MB | max RSS (outside) MB | planned MB | s/step | tokens/s | first step s | open s | paper peak MB | paper s/step | load avg |",
  );
  L.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows.filter((r) => r.group === "main")) {
    const c = r.child;
    const p = PAPER_MAIN[r.model];
    const paperMB = p && r.method === "mebp"
      ? p.mebpMB
      : p && r.method === "mesp"
      ? p.mespMB
      : null;
    const paperS = p && r.method === "mebp" ? p.mebpS : p && r.method === "mesp" ? p.mespS : null;
    L.push(
      `| ${r.model} | ${r.store} | ${r.method} | ${c ? mb(c.workingSet) : "FAILED"} | ${
        mb(c?.wasmHighWater)
      } | ${mb(c?.jsBytes)} | ${mb(c?.vmHWM)} | ${mb(r.maxRssOutside)} | ${
        c ? mb(c.storeArenaBytes + c.plan.total) : "n/a"
      } | ${num(r.secondsPerStep)}${r.steps === 0 ? "*" : ""} | ${num(r.tokensPerSecond, 1)} | ${
        num(c?.firstStepSeconds)
      } | ${num(c?.openSeconds, 1)} | ${paperMB ?? ""} | ${paperS ?? ""} | ${r.loadavgBefore} |`,
    );
  }
  L.push("");
  for (
    const [group, title, key, paper] of [
      ["seq", "MeSP Table 2: sequence length (0.5B, rank 8, streamed)", "seq", PAPER_SEQ],
      ["rank", "MeSP Table 3: LoRA rank (0.5B, seq 256, streamed)", "rank", PAPER_RANK],
    ] as const
  ) {
    const values = key === "seq" ? [128, 256, 512, 1024] : [4, 8, 16, 32];
    const have = rows.some((r) => r.group === group);
    if (!have) continue;
    L.push(`## ${title}`, "");
    L.push(
      `| ${key} | mebp working set MB | mebp process peak MB | paper MeBP MB | mesp working set MB | mesp process peak MB | paper MeSP MB | mesp/mebp working set | mebp s (step) | mesp s (step) |`,
    );
    L.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const v of values) {
      const q = {
        model: "0.5b",
        store: "streamed" as const,
        seq: key === "seq" ? v : 256,
        rank: key === "rank" ? v : 8,
      };
      const a = find(rows, { ...q, method: "mebp" });
      const b = find(rows, { ...q, method: "mesp" });
      const peak = (
        r?: Row,
      ) => (r ? mb(Math.max(r.maxRssOutside ?? 0, r.child?.vmHWM ?? 0)) : "n/a");
      const s = (r?: Row) => (r ? num(r.secondsPerStep ?? r.child?.firstStepSeconds) : "n/a");
      L.push(
        `| ${v} | ${mb(a?.child?.workingSet)} | ${peak(a)} | ${paper[v][0]} | ${
          mb(b?.child?.workingSet)
        } | ${peak(b)} | ${paper[v][1]} | ${
          a?.child && b?.child ? (b.child.workingSet / a.child.workingSet).toFixed(3) : "n/a"
        } | ${s(a)} | ${s(b)} |`,
      );
    }
    L.push("");
  }
  if (torch.length > 0) {
    L.push("## Native reference: PyTorch CPU (bench/torch_step.py)", "");
    L.push(
      "Same LoRA step (rank 8 on all 7 projections, seq 256, batch 1, SGD) in plain PyTorch " +
        "1.13 on CPU with an f32 base (torch has no int4), autograd keeping every activation " +
        "and the full [tokens × vocab] logits. Beside it, slimtune's streamed mesp and " +
        "resident full rows.",
      "",
    );
    L.push(
      "| model | torch threads | torch s/step | torch tokens/s | torch peak RSS MB | slimtune mesp streamed s/step | slimtune full resident s/step | slimtune mesp streamed peak MB | torch BLAS | load avg |",
    );
    L.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const t of torch) {
      const m = find(rows, {
        model: t.model,
        method: "mesp",
        store: "streamed",
        seq: 256,
        rank: 8,
      });
      const f = find(rows, {
        model: t.model,
        method: "full",
        store: "resident",
        seq: 256,
        rank: 8,
      });
      L.push(
        `| ${t.model} | ${t.threads} | ${t.ok ? num(t.secondsPerStep) : "FAILED"} | ${
          num(t.tokensPerSecond, 1)
        } | ${mb(Math.max(t.ruMaxRss ?? 0, t.maxRssOutside ?? 0))} | ${num(m?.secondsPerStep)} | ${
          num(f?.secondsPerStep)
        } | ${m ? mb(Math.max(m.maxRssOutside ?? 0, m.child?.vmHWM ?? 0)) : "n/a"} | ${
          ((t.detail?.blas as string[] | undefined) ?? []).map((p) => p.split("/").pop()).join(
            ", ",
          )
        } | ${t.loadavgBefore} |`,
      );
    }
    L.push("");
  }
  const grew = rows.filter((r) => r.child?.grewAfterFirstStep);
  if (grew.length > 0) {
    L.push(
      `Note: linear memory grew after the first step in: ${
        grew.map((r) => `${r.model}/${r.store}/${r.method}/seq${r.seq}/r${r.rank}`).join(", ")
      }.`,
      "",
    );
  }
  if (userPath.length > 0) {
    L.push(
      "## User path: `train.ts` on chat data, the tokenizer in the process",
      "",
      "The rows above are the lab path (pre-tokenized data, SGD, no clipping, a session " +
        "driven directly). These are the CLI as a user runs it (`bench/user_path.ts`): " +
        userPathSetup(userPathSteps),
      "",
      ...userPathTable(userPath),
      "",
    );
  }
  const failed = rows.filter((r) => !r.ok);
  if (failed.length > 0) {
    L.push(
      `Failed rows: ${
        failed.map((r) => `${r.model}/${r.store}/${r.method}/seq${r.seq}/r${r.rank}`).join(", ")
      }.`,
      "",
    );
  }
  return L.join("\n");
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      quick: { type: "boolean", default: false },
      models: { type: "string" },
      methods: { type: "string" },
      stores: { type: "string" },
      steps: { type: "string" },
      out: { type: "string", default: "bench/results" },
      dir: { type: "string", default: "/tmp/slimtune-bench" },
      "no-sweeps": { type: "boolean", default: false },
      "no-torch": { type: "boolean", default: false },
      "no-user-path": { type: "boolean", default: false },
      "torch-threads": { type: "string" },
      threads: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.child) return await runChild(JSON.parse(values.child));
  if (values.help) {
    console.log(
      `usage: npx deno run -A bench/methods.ts [--quick] [--models 0.5b,1.5b,gemma3-270m,qwen3-0.6b] [--methods full,mebp,mesp,lcsb,mezo]
       [--stores resident,streamed] [--steps N] [--out DIR] [--dir CACHE] [--no-sweeps] [--no-torch]
       [--torch-threads 1,2] [--threads N (kernel threads; default all cores)] [--no-user-path]
  full (default):  0.5b x methods x {resident, streamed} and 1.5b x methods x streamed (1.5b resident
                   only when --stores is given), 1 warm-up + --steps (default 1; 0.5b lcsb: 4, one
                   group cycle) measured steps; MeSP sweeps (0.5b streamed, mebp/mesp, seq 128..1024,
                   rank 4..32, memory only: one step); torch reference 0.5b and 1.5b, 1 and all
                   threads. About 50 min on 2 shared cores.
  --quick:         0.5b streamed, methods mebp,mesp,lcsb (+ mezo, full resident skipped), 1 measured
                   step, no sweeps, torch 0.5b 1 thread.
  user path:       after the lab rows, train.ts itself on chat data (bench/user_path.ts: the demo,
                   the paper setting, the defaults; 2 steps, each setting twice), about 20 min;
                   --no-user-path skips it.
  Output: DIR/methods[-quick].jsonl (one JSON line per row) and DIR/methods[-quick].md.`,
    );
    return;
  }
  const quick = values.quick;
  const models = (values.models ?? (quick ? "0.5b" : "0.5b,1.5b")).split(",");
  for (const m of models) {
    if (!MODELS[m]) throw new Error(`unknown model ${m} (${Object.keys(MODELS).join(", ")})`);
  }
  const methods = (values.methods ?? (quick ? "mebp,mesp,lcsb,mezo" : ALL_METHODS.join(",")))
    .split(",") as MethodName[];
  for (const m of methods) if (!ALL_METHODS.includes(m)) throw new Error(`unknown method ${m}`);
  const stores = (values.stores ?? (quick ? "streamed" : "resident,streamed")).split(",") as (
    | "resident"
    | "streamed"
  )[];
  const steps = Number(values.steps ?? "1");
  const kernelThreads = Number(values.threads ?? String(navigator.hardwareConcurrency || 1));
  if (!Number.isInteger(kernelThreads) || kernelThreads < 1) {
    throw new Error(`--threads: expected a whole number >= 1, got ${values.threads}`);
  }
  const sweeps = !quick && !values["no-sweeps"];
  const torchThreads =
    (values["torch-threads"] ?? (quick ? "1" : `1,${navigator.hardwareConcurrency}`))
      .split(",").map(Number).filter((x, i, a) => a.indexOf(x) === i);
  const configs = planConfigs({
    quick,
    models,
    methods,
    stores,
    storesGiven: values.stores !== undefined,
    steps,
    sweeps,
  });
  const suffix = quick ? "-quick" : "";
  await Deno.mkdir(values.out, { recursive: true });
  const jsonl = `${values.out}/methods${suffix}.jsonl`;
  const mdPath = `${values.out}/methods${suffix}.md`;
  const commit = sh(["git", "rev-parse", "--short", "HEAD"]);
  const dirty =
    sh(["git", "status", "--porcelain", "--", "src", "wasm"]).split("\n").filter(Boolean)
      .length;
  const meta: Record<string, string> = {
    mode: quick ? "quick" : "full",
    command: `npx deno run -A bench/methods.ts ${Deno.args.join(" ")}`.trim(),
    date: new Date().toISOString(),
    commit: commit +
      (dirty ? ` (+${dirty} uncommitted files in src/wasm of the shared checkout)` : ""),
    cpu: (sh(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"]).split(":")[1] ?? "").trim(),
    cores: String(navigator.hardwareConcurrency),
    variant: "?",
    threads: String(kernelThreads),
  };
  console.log(`${configs.length} configurations; results -> ${jsonl}, ${mdPath}`);
  for (const m of models) await ensureCheckpoint(values.dir, m);
  // Build each streamed cache once, outside the measured processes.
  const self = new URL(import.meta.url).pathname;
  const deno = Deno.execPath();
  for (const m of models) {
    if (!stores.includes("streamed") && !configs.some((c) => c.store === "streamed")) continue;
    const prep = {
      model: m,
      method: "mesp",
      store: "streamed",
      seq: 0,
      rank: 8,
      steps: 0,
      dir: values.dir,
      threads: kernelThreads,
      prepareOnly: true,
    };
    const r = await timed(
      [deno, "run", "-A", self, "--child", JSON.stringify(prep)],
      `prepare ${m}`,
    );
    console.log(
      `streamed cache for ${m} ready (open ${num(r.result?.openSeconds as number, 1)} s)`,
    );
  }
  await Deno.writeTextFile(jsonl, "");
  const rows: Row[] = [];
  const torch: TorchRow[] = [];
  if (!values["no-torch"]) {
    const torchSteps = Math.max(1, steps);
    const blas = openBlasDir(values.dir);
    for (const m of models) {
      for (const threads of torchThreads) {
        const before = loadavg();
        const r = await timed(
          [
            "/usr/bin/python3",
            new URL("./torch_step.py", import.meta.url).pathname,
            "--model",
            m,
            "--seq",
            "256",
            "--rank",
            "8",
            "--steps",
            String(torchSteps),
            "--threads",
            String(threads),
          ],
          `torch ${m} threads ${threads}`,
          {
            ...(blas ? { LD_LIBRARY_PATH: blas } : {}),
            OPENBLAS_NUM_THREADS: String(threads),
            OMP_NUM_THREADS: String(threads),
          },
        );
        const d = r.result;
        const row: TorchRow = {
          kind: "torch",
          model: m,
          seq: 256,
          rank: 8,
          threads,
          ok: d !== null,
          secondsPerStep: (d?.seconds_per_step as number) ?? null,
          tokensPerSecond: (d?.tokens_per_second as number) ?? null,
          ruMaxRss: (d?.ru_maxrss_bytes as number) ?? null,
          maxRssOutside: r.maxRss,
          loadavgBefore: before,
          loadavgAfter: loadavg(),
          detail: d,
        };
        torch.push(row);
        await Deno.writeTextFile(jsonl, JSON.stringify(row) + "\n", { append: true });
        console.log(
          `torch ${m} threads ${threads}: ${num(row.secondsPerStep)} s/step, peak ${
            mb(Math.max(row.ruMaxRss ?? 0, row.maxRssOutside ?? 0))
          } MB (load ${before})`,
        );
      }
    }
  }
  for (const c of configs) {
    const before = loadavg();
    const t0 = performance.now();
    const r = await timed(
      [
        deno,
        "run",
        "-A",
        self,
        "--child",
        JSON.stringify({ ...c, dir: values.dir, threads: kernelThreads }),
      ],
      `${c.model} ${c.store} ${c.method} seq ${c.seq} r ${c.rank}`,
    );
    const child = r.result as ChildResult | null;
    if (child) meta.variant = child.variant;
    const sps = child && child.stepSeconds.length > 0
      ? child.stepSeconds.reduce((s, x) => s + x, 0) / child.stepSeconds.length
      : null;
    const row: Row = {
      kind: "slimtune",
      ...c,
      ok: child !== null,
      loadavgBefore: before,
      loadavgAfter: loadavg(),
      maxRssOutside: r.maxRss,
      secondsPerStep: sps,
      tokensPerSecond: sps ? c.seq / sps : null,
      child,
      commit: meta.commit,
      date: new Date().toISOString(),
    };
    rows.push(row);
    await Deno.writeTextFile(jsonl, JSON.stringify(row) + "\n", { append: true });
    console.log(
      `${c.model.padEnd(4)} ${c.store.padEnd(8)} ${c.method.padEnd(4)} seq ${c.seq} r ${c.rank}: ` +
        (child
          ? `ws ${mb(child.workingSet)} MB, VmHWM ${mb(child.vmHWM)} MB, max RSS ${
            mb(r.maxRss)
          } MB, ` +
            `${sps ? num(sps) + " s/step" : "first step " + num(child.firstStepSeconds) + " s"}`
          : "FAILED") +
        ` (${((performance.now() - t0) / 1e3).toFixed(0)} s wall, load ${before})`,
    );
    await Deno.writeTextFile(mdPath, report(rows, torch, meta));
  }
  let userPath: UserPathRow[] = [];
  const userPathSteps = 2;
  if (!values["no-user-path"]) {
    userPath = await measureUserPath(userPathSteps);
    for (const r of userPath) {
      await Deno.writeTextFile(jsonl, JSON.stringify({ kind: "user-path", ...r }) + "\n", {
        append: true,
      });
    }
  }
  const md = report(rows, torch, meta, userPath, userPathSteps);
  await Deno.writeTextFile(mdPath, md);
  console.log("\n" + md);
}

if (import.meta.main) await main();
