/**
 * Whole-process peak memory (VmHWM) of the exports, each in a fresh child process, on a random
 * checkpoint of Qwen2.5-0.5B's shapes cut to `--layers` blocks (the full 151936 x 896 embedding,
 * tied; BF16), with the bundled Qwen2.5 tokenizer and a random rank-8 adapter on every linear:
 *
 * - base model as a GGUF (f16, q8_0), the adapter as a GGUF LoRA, base + adapter merged into a
 *   GGUF (q8_0) and into a safetensors checkpoint (bf16);
 * - the same checkpoint as an mlx-community 4-bit one (group size 64, the embedding quantized
 *   too) exported as a GGUF (f16) and merged into a safetensors checkpoint (bf16): dequantized
 *   one matrix (the embedding one row chunk) at a time.
 *
 * What it shows: the peak stays near the runtime plus the tokenizer metadata plus one tensor
 * chunk, far below the checkpoint size, because every tensor is read, converted and written one
 * at a time (the embedding in row chunks).
 *
 * Usage:
 *   npx deno run -A bench/export_memory.ts [--layers 2,6] [--out bench/results/export_memory.md]
 *
 * `--layers` takes a list: the same cases on checkpoints of more blocks show whether the peak
 * grows with the model (it should not: one tensor at a time).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LoraTensors } from "../src/model/lora.ts";

interface Measured {
  rssBefore: number;
  peak: number;
  seconds: number;
  bytes: number;
}

const MB = 1 << 20;

async function child(argv: string[]): Promise<void> {
  const { readProcessMemory } = await import("../src/deno/process_memory.ts");
  const { parseExportArgs, runExport } = await import("../tools/export.ts");
  const options = (await parseExportArgs(argv))!;
  const rssBefore = readProcessMemory().rssBytes!;
  const t0 = performance.now();
  await runExport(options);
  const seconds = (performance.now() - t0) / 1000;
  const out = argv[argv.indexOf("--out") + 1];
  const stat = await Deno.stat(out);
  let bytes = stat.size;
  if (stat.isDirectory) bytes = (await Deno.stat(`${out}/model.safetensors`)).size;
  const peak = readProcessMemory().peakBytes!;
  console.log(JSON.stringify({ rssBefore, peak, seconds, bytes } satisfies Measured));
}

async function measure(argv: string[]): Promise<Measured> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", JSON.stringify(argv)],
    stdout: "piped",
    stderr: "inherit",
  });
  const r = await cmd.output();
  if (!r.success) throw new Error(`child failed: ${argv.join(" ")}`);
  const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      layers: { type: "string" },
      out: { type: "string" },
    },
  });
  if (values.child) return await child(JSON.parse(values.child));
  const layerList = (values.layers ?? "2,6").split(",").map(Number);
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { mlxQuantizedCheckpoint } = await import("../tests/mlx_fixture.ts");
  const { bundledQwenTokenizerDir } = await import("../src/deno/tokenizer.ts");
  const { writeAdapterDir } = await import("../src/deno/peft_adapter.ts");
  const { parseModelConfig } = await import("../src/io/config.ts");
  const { linearShape, peftName } = await import("../src/model/lora.ts");
  const { LINEAR_NAMES } = await import("../src/model/weights.ts");
  const { Rng } = await import("../src/runtime/rng.ts");
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const rows: string[] = [];
  const inputs: string[] = [];
  for (const layers of layerList) {
    const tmp = await Deno.makeTempDir();
    try {
      const m = `${tmp}/model`;
      await makeCheckpoint({ preset: "qwen2.5-0.5b", out: m, layers, dtype: "bf16", seed: 1 });
      for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
        await Deno.copyFile(`${bundledQwenTokenizerDir()}/${f}`, `${m}/${f}`);
      }
      const config = parseModelConfig(JSON.parse(await Deno.readTextFile(`${m}/config.json`)));
      const rng = new Rng(2);
      const tensors: LoraTensors = new Map();
      for (let b = 0; b < config.numLayers; b++) {
        for (const n of LINEAR_NAMES) {
          const [o, i] = linearShape(config, n);
          const a = new Float32Array(8 * i), bb = new Float32Array(o * 8);
          rng.fillNormal(a, 0.02);
          rng.fillNormal(bb, 0.02);
          tensors.set(peftName(b, n, "A"), { shape: [8, i], data: a });
          tensors.set(peftName(b, n, "B"), { shape: [o, 8], data: bb });
        }
      }
      await writeAdapterDir(`${tmp}/ad`, tensors, {
        r: 8,
        alpha: 16,
        targets: [...LINEAR_NAMES],
        baseModel: m,
      });
      const ckptBytes = (await Deno.stat(`${m}/model.safetensors`)).size;
      const cases: [string, string[]][] = [
        ["base -> GGUF f16", [
          "--model",
          m,
          "--format",
          "gguf",
          "--type",
          "f16",
          "--out",
          `${tmp}/b16.gguf`,
        ]],
        ["base -> GGUF q8_0", [
          "--model",
          m,
          "--format",
          "gguf",
          "--type",
          "q8_0",
          "--out",
          `${tmp}/b8.gguf`,
        ]],
        ["adapter -> GGUF LoRA f32", [
          "--adapter",
          `${tmp}/ad`,
          "--format",
          "gguf",
          "--out",
          `${tmp}/l.gguf`,
        ]],
        ["merged -> GGUF q8_0", [
          "--model",
          m,
          "--adapter",
          `${tmp}/ad`,
          "--merge",
          "--format",
          "gguf",
          "--type",
          "q8_0",
          "--out",
          `${tmp}/m8.gguf`,
        ]],
        ["merged -> safetensors bf16", [
          "--model",
          m,
          "--adapter",
          `${tmp}/ad`,
          "--merge",
          "--format",
          "safetensors",
          "--out",
          `${tmp}/merged`,
        ]],
      ];
      const mlx = `${tmp}/mlx`;
      await mlxQuantizedCheckpoint(m, mlx, 64);
      await writeAdapterDir(`${tmp}/mlx-ad`, tensors, {
        r: 8,
        alpha: 16,
        targets: [...LINEAR_NAMES],
        baseModel: mlx,
      });
      cases.push(
        ["MLX 4-bit base -> GGUF f16", [
          ...["--model", mlx, "--format", "gguf", "--type", "f16", "--out", `${tmp}/x16.gguf`],
        ]],
        ["MLX 4-bit merged -> safetensors bf16", [
          ...["--model", mlx, "--adapter", `${tmp}/mlx-ad`, "--merge", "--format", "safetensors"],
          ...["--out", `${tmp}/mlx-merged`],
        ]],
      );
      const mlxBytes = (await Deno.stat(`${mlx}/model.safetensors`)).size;
      inputs.push(
        `${layers} blocks: ${(ckptBytes / MB).toFixed(1)} MB of model.safetensors, ` +
          `${(mlxBytes / MB).toFixed(1)} MB as MLX 4-bit`,
      );
      for (const [name, argv] of cases) {
        const r = await measure(argv);
        rows.push(
          `| ${layers} | ${name} | ${(r.bytes / MB).toFixed(1)} | ${
            (r.rssBefore / MB).toFixed(1)
          } | ` +
            `**${(r.peak / MB).toFixed(1)}** | ${((r.peak - r.rssBefore) / MB).toFixed(1)} | ` +
            `${r.seconds.toFixed(1)} |`,
        );
        console.error(rows[rows.length - 1]);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }
  const text = [
    "# Export: whole-process peak memory",
    "",
    `\`npx deno run -A bench/export_memory.ts --layers ${layerList.join(",")}\` on ${cpu} ` +
    `(${navigator.hardwareConcurrency} cores, shared with other work while measured), ` +
    `Deno ${Deno.version.deno}. Each case is a fresh child process; MB = 2^20 bytes.`,
    "Input: random BF16 checkpoints of Qwen2.5-0.5B's shapes cut to a few blocks (" +
    inputs.join("; ") + "; the tied 151936 x 896 embedding alone is 259.6 MB), the bundled " +
    "Qwen2.5 tokenizer, a random rank-8 adapter on every linear.",
    '"RSS before" is the resident size after the runtime and the modules, before the export.',
    "",
    "| blocks | case | output MB | RSS before MB | process peak MB | peak − before MB | s |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
  if (values.out) await Deno.writeTextFile(values.out, text);
  console.log(text);
}

if (import.meta.main) await main();
