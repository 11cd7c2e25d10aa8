/**
 * The train.ts command line, run in-process through `main` (same code path as the binary): help,
 * usage errors, bad data, evaluation-only runs, and PEFT adapters written then read back.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { main } from "../src/deno/train_cli.ts";

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

const fast = ["--seq-len", "32", "--quiet"];

Deno.test("--help prints every flag with its default and exits 0", async () => {
  const r = await cli(["--help"]);
  strictEqual(r.code, 0);
  for (const flag of ["--model", "--data", "--method", "--rank", "--resume", "--max-memory"]) {
    ok(r.out.includes(flag), flag);
  }
  match(r.out, /--method full\|mebp\|mesp\|lcsb\|mezo\s+training method \(default mesp\)/);
});

Deno.test("bad flags exit 2 with error: --flag: reason", async () => {
  for (
    const [argv, want] of [
      [["--bogus"], "error: --bogus: unknown option (see --help)\n"],
      [["--rank", "x"], 'error: --rank: expected an integer, got "x"\n'],
      [["--model", "m"], "error: --data: required when training a --model (a JSONL file)\n"],
      [["--steps", "0"], "error: --steps: 0 only makes sense with --eval-data (evaluation only)\n"],
      [["--data", "/nonexistent.jsonl"], "error: --data: /nonexistent.jsonl: no such file\n"],
      [["--resume", "/nonexistent"], "error: --resume: /nonexistent: no checkpoint found"],
    ] as const
  ) {
    const r = await cli([...argv]);
    strictEqual(r.code, 2, argv.join(" "));
    ok(r.err.startsWith(want), r.err);
  }
});

Deno.test("a bad data line stops before training with error: FILE:LINE and writes nothing", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const data = `${tmp}/bad.jsonl`;
    await Deno.writeTextFile(data, '{"text":"fine"}\n\n{"prompt":"no completion"}\n');
    const r = await cli([...fast, "--data", data, "--out", `${tmp}/out`]);
    strictEqual(r.code, 1);
    strictEqual(r.err, `error: ${data}:3: "completion" must be a string\n`);
    ok(!(await Deno.stat(`${tmp}/out`).then(() => true, () => false)));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--steps 0 with --eval-data only evaluates and writes eval_loss", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const evalData = `${tmp}/eval.jsonl`;
    await Deno.writeTextFile(
      evalData,
      '{"input_ids":[1,2,3,4,5,6]}\n{"prompt":"Hello","completion":" world"}\n',
    );
    const r = await cli([
      ...fast,
      "--steps",
      "0",
      "--eval-data",
      evalData,
      "--metrics",
      `${tmp}/m.jsonl`,
    ]);
    strictEqual(r.code, 0, r.err);
    const lines = (await Deno.readTextFile(`${tmp}/m.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    strictEqual(lines.length, 1);
    strictEqual(lines[0].step, 0);
    strictEqual(lines[0].loss, null);
    // A random-weight model over the 151936-token vocabulary: near ln(151936) = 11.9 or above.
    ok(lines[0].eval_loss > 9 && lines[0].eval_loss < 20, String(lines[0].eval_loss));
    // Perplexity is exp(eval_loss), rounded to 4 significant digits.
    const ppl = lines[0].eval_perplexity;
    ok(Math.abs(ppl - Math.exp(lines[0].eval_loss)) <= 5e-4 * ppl, `${ppl}`);
    for (const k of ["lr", "tokens_per_s", "working_set_mb", "process_peak_mb"]) {
      ok(k in lines[0], k);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the PEFT adapter is written, then read back by --adapter-init with its own r and targets", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const a = await cli([
      ...fast,
      "--steps",
      "2",
      "--rank",
      "2",
      "--alpha",
      "4",
      "--targets",
      "q,down",
      "--out",
      `${tmp}/a`,
      "--metrics",
      `${tmp}/a.jsonl`,
    ]);
    strictEqual(a.code, 0, a.err);
    const config = JSON.parse(await Deno.readTextFile(`${tmp}/a/adapter_config.json`));
    strictEqual(config.peft_type, "LORA");
    strictEqual(config.r, 2);
    strictEqual(config.lora_alpha, 4);
    deepStrictEqual(config.target_modules, ["q_proj", "down_proj"]);
    match(config.base_model_name_or_path, /random-weight/);
    ok((await Deno.readTextFile(`${tmp}/a/loss.svg`)).includes("<polyline"));
    const m = (await Deno.readTextFile(`${tmp}/a.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    deepStrictEqual(m.map((x) => x.step), [1, 2]);
    ok(m.every((x) => Number.isFinite(x.loss) && x.tokens_per_s > 0 && x.working_set_mb > 0));

    // Continue from it with lr 0: the rank/targets flags are overridden by the adapter's own,
    // and the adapter comes back out bit for bit.
    const b = await cli([
      ...fast,
      "--steps",
      "1",
      "--lr",
      "0",
      "--adapter-init",
      `${tmp}/a`,
      "--out",
      `${tmp}/b`,
    ]);
    strictEqual(b.code, 0, b.err);
    deepStrictEqual(
      await Deno.readFile(`${tmp}/b/adapter_model.safetensors`),
      await Deno.readFile(`${tmp}/a/adapter_model.safetensors`),
    );
    deepStrictEqual(JSON.parse(await Deno.readTextFile(`${tmp}/b/adapter_config.json`)), config);

    // A wrong adapter is refused with the file named.
    await Deno.writeTextFile(`${tmp}/a/adapter_config.json`, JSON.stringify({ ...config, r: 3 }));
    const c = await cli([
      ...fast,
      "--steps",
      "1",
      "--adapter-init",
      `${tmp}/a`,
      "--out",
      `${tmp}/c`,
    ]);
    strictEqual(c.code, 2);
    match(
      c.err,
      /^error: --adapter-init: .*adapter_model\.safetensors: .* has shape \[2,\d+\], expected \[3,\d+\]/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a --model directory (tiny random checkpoint) trains from pre-tokenized data, streamed", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const lines = Array.from(
      { length: 6 },
      (_, i) =>
        JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, t) => (i * 31 + t * 7) % 512) }),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, lines.join("\n") + "\n");
    for (const method of ["mebp", "mezo"]) {
      const r = await cli([
        "--model",
        `${tmp}/model`,
        "--data",
        `${tmp}/d.jsonl`,
        "--weights",
        "streamed",
        "--method",
        method,
        "--steps",
        "3",
        "--seq-len",
        "16",
        "--quiet",
        "--out",
        `${tmp}/out-${method}`,
        "--metrics",
        `${tmp}/${method}.jsonl`,
      ]);
      strictEqual(r.code, 0, r.err);
      const config = JSON.parse(
        await Deno.readTextFile(`${tmp}/out-${method}/adapter_config.json`),
      );
      strictEqual(config.base_model_name_or_path, `${tmp}/model`);
      const m = (await Deno.readTextFile(`${tmp}/${method}.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      deepStrictEqual(m.map((x) => x.step), [1, 2, 3]);
      ok(m.every((x) => x.loss > 4 && x.loss < 10), JSON.stringify(m)); // ~ln 512 = 6.2
    }
    // Text data needs a tokenizer, which this checkpoint does not ship.
    await Deno.writeTextFile(`${tmp}/t.jsonl`, '{"text":"hello"}\n');
    const t = await cli(["--model", `${tmp}/model`, "--data", `${tmp}/t.jsonl`, "--quiet"]);
    strictEqual(t.code, 1);
    strictEqual(
      t.err,
      `error: ${tmp}/t.jsonl:1: "text" data needs the model's tokenizer.json (none was found)\n`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--grad-accum 2 (mesp, mezo): no step after the first grows the working set", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const lines = Array.from(
      { length: 8 },
      (_, i) =>
        JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, t) => (i * 37 + t * 5) % 512) }),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, lines.join("\n") + "\n");
    for (const method of ["mesp", "mezo"]) {
      const r = await cli([
        "--model",
        `${tmp}/model`,
        "--data",
        `${tmp}/d.jsonl`,
        "--weights",
        "streamed",
        "--method",
        method,
        "--grad-accum",
        "2",
        "--steps",
        "3",
        "--seq-len",
        "16",
        "--quiet",
        "--out",
        `${tmp}/out-${method}`,
        "--metrics",
        `${tmp}/${method}.jsonl`,
      ]);
      strictEqual(r.code, 0, r.err);
      const m = (await Deno.readTextFile(`${tmp}/${method}.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      deepStrictEqual(m.map((x) => x.step), [1, 2, 3]);
      ok(m.every((x) => x.working_set_mb === m[0].working_set_mb), JSON.stringify(m));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a malformed checkpoint is one line naming the file and the problem, exit 1", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    await Deno.writeTextFile(`${tmp}/d.jsonl`, JSON.stringify({ input_ids: [1, 2, 3, 4] }) + "\n");
    const file = `${tmp}/model/model.safetensors`;
    const good = await Deno.readFile(file);
    const run = () =>
      cli(["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--steps", "1", "--quiet"]);

    // A header length past the 100 MB cap.
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1_000_000_000n, true);
    await Deno.writeFile(file, huge);
    let r = await run();
    strictEqual(r.code, 1);
    strictEqual(r.err.trim().split("\n").length, 1, r.err);
    match(r.err, new RegExp(`^\\n?error: ${file}: header length 1000000000 exceeds`));

    // Truncated data.
    await Deno.writeFile(file, good.subarray(0, good.length - 100));
    r = await run();
    strictEqual(r.code, 1);
    strictEqual(r.err.trim().split("\n").length, 1, r.err);
    ok(r.err.trim().startsWith(`error: ${file}: `), r.err);

    // A missing config.json.
    await Deno.writeFile(file, good);
    await Deno.remove(`${tmp}/model/config.json`);
    r = await run();
    strictEqual(r.code, 1);
    strictEqual(r.err.trim().split("\n").length, 1, r.err);
    match(r.err, /config\.json/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration) is refused in one line naming its config.json, exit 1, nothing written", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/model`);
    await Deno.writeTextFile(
      `${tmp}/model/config.json`,
      JSON.stringify({
        architectures: ["Gemma3ForConditionalGeneration"],
        model_type: "gemma3",
        text_config: { hidden_size: 2560, model_type: "gemma3_text", num_hidden_layers: 34 },
        vision_config: { model_type: "siglip_vision_model" },
      }),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, JSON.stringify({ input_ids: [1, 2, 3, 4] }) + "\n");
    const r = await cli([
      "--model",
      `${tmp}/model`,
      "--data",
      `${tmp}/d.jsonl`,
      "--out",
      `${tmp}/out`,
      "--cache-dir",
      `${tmp}/cache`,
      "--quiet",
    ]);
    strictEqual(r.code, 1, r.err);
    strictEqual(r.err.trim().split("\n").length, 1, r.err);
    match(
      r.err,
      new RegExp(
        `^\\n?error: ${tmp}/model/config\\.json: multimodal Gemma 3 \\(Gemma3ForConditionalGeneration`,
      ),
    );
    deepStrictEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), ["d.jsonl", "model"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a Qwen3 checkpoint (head_dim != hidden / heads, q/k norms) trains (mesp resident, full streamed); the PEFT adapter has its shapes", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { SafetensorsFile } = await import("../src/io/safetensors.ts");
  const { openFileSource } = await import("../src/deno/file_source.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen3", out: `${tmp}/model`, seed: 3 });
    // One sequence repeated: a few steps at a large rate must lower its loss.
    const line = JSON.stringify({
      input_ids: Array.from({ length: 17 }, (_, t) => (t * 37) % 512),
    });
    await Deno.writeTextFile(`${tmp}/d.jsonl`, (line + "\n").repeat(4));
    for (const [method, weights] of [["mesp", "resident"], ["full", "streamed"]] as const) {
      const r = await cli([
        ...["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--method", method],
        ...["--weights", weights, "--steps", "6", "--seq-len", "16", "--lr", "0.01", "--quiet"],
        ...["--rank", "4", "--out", `${tmp}/out-${method}`],
        ...["--metrics", `${tmp}/${method}.jsonl`],
      ]);
      strictEqual(r.code, 0, r.err);
      const m = (await Deno.readTextFile(`${tmp}/${method}.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      deepStrictEqual(m.map((x) => x.step), [1, 2, 3, 4, 5, 6]);
      ok(m[5].loss < m[0].loss - 0.05, `${method}: ${JSON.stringify(m.map((x) => x.loss))}`);
      const file = await SafetensorsFile.open(
        await openFileSource(`${tmp}/out-${method}/adapter_model.safetensors`),
      );
      const p = "base_model.model.model.layers.1";
      deepStrictEqual(file.info(`${p}.self_attn.q_proj.lora_B.weight`).shape, [128, 4]);
      deepStrictEqual(file.info(`${p}.self_attn.k_proj.lora_B.weight`).shape, [64, 4]);
      deepStrictEqual(file.info(`${p}.self_attn.o_proj.lora_A.weight`).shape, [4, 128]);
      strictEqual(file.names().length, 2 * 7 * 2);
      await file.close();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a Gemma 3 checkpoint (zero-centred norms, sandwich norms, sliding window 4 < seq 16) trains (mesp streamed, full resident); the PEFT adapter has HF module names and shapes", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { SafetensorsFile } = await import("../src/io/safetensors.ts");
  const { openFileSource } = await import("../src/deno/file_source.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-gemma3", out: `${tmp}/model`, seed: 3 });
    const line = JSON.stringify({
      input_ids: Array.from({ length: 17 }, (_, t) => (t * 37) % 512),
    });
    await Deno.writeTextFile(`${tmp}/d.jsonl`, (line + "\n").repeat(4));
    for (const [method, weights] of [["mesp", "streamed"], ["full", "resident"]] as const) {
      const r = await cli([
        ...["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--method", method],
        ...["--weights", weights, "--steps", "6", "--seq-len", "16", "--lr", "0.01", "--quiet"],
        ...["--rank", "4", "--out", `${tmp}/out-${method}`],
        ...["--metrics", `${tmp}/${method}.jsonl`],
      ]);
      strictEqual(r.code, 0, r.err);
      const m = (await Deno.readTextFile(`${tmp}/${method}.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      deepStrictEqual(m.map((x) => x.step), [1, 2, 3, 4, 5, 6]);
      ok(m[5].loss < m[0].loss - 0.05, `${method}: ${JSON.stringify(m.map((x) => x.loss))}`);
      const file = await SafetensorsFile.open(
        await openFileSource(`${tmp}/out-${method}/adapter_model.safetensors`),
      );
      const p = "base_model.model.model.layers.2";
      deepStrictEqual(file.info(`${p}.self_attn.q_proj.lora_B.weight`).shape, [128, 4]);
      deepStrictEqual(file.info(`${p}.self_attn.k_proj.lora_B.weight`).shape, [32, 4]);
      deepStrictEqual(file.info(`${p}.self_attn.o_proj.lora_A.weight`).shape, [4, 128]);
      deepStrictEqual(file.info(`${p}.mlp.down_proj.lora_A.weight`).shape, [4, 128]);
      // Norms are never adapted: 3 layers x 7 linears x (A, B).
      strictEqual(file.names().length, 3 * 7 * 2);
      ok(file.names().every((n) => !n.includes("norm")));
      await file.close();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--max-memory (2 threads): below held + plan, or below the process's plan, is refused before training; above trains", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { loadKernelsSync } = await import("../src/kernels/wasm.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const lines = Array.from(
      { length: 4 },
      (_, i) =>
        JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, t) => (i * 29 + t * 3) % 512) }),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, lines.join("\n") + "\n");
    const run = (threads: number, maxMemoryMB: number, name: string, ...extra: string[]) =>
      cli([
        ...["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--weights", "streamed"],
        ...["--steps", "1", "--seq-len", "16", "--quiet", "--threads", String(threads)],
        ...["--max-memory", String(maxMemoryMB), "--out", `${tmp}/${name}`],
        ...["--metrics", `${tmp}/${name}.jsonl`, ...extra],
      ]);
    const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
    // The refusal names the planned working set in bytes: held (kernels, every thread's
    // scratch, weights) + the session's plan.
    const planned = async (threads: number) => {
      const r = await run(threads, 1, `probe${threads}`);
      strictEqual(r.code, 2, r.err);
      match(r.err, new RegExp(`^error: --max-memory: 1 MB is below .* for ${threads} thread`));
      return Number(/planned working set of (\d+) bytes/.exec(r.err)![1]);
    };
    const need = await planned(2);
    // The second thread's own scratch is in it.
    strictEqual(need - await planned(1), loadKernelsSync().kernels.scratchBytes());
    // So are the data rows, to the byte: 4 more lines are 4 more rows of 16 tokens (cut from 20),
    // 4 bytes of id and a bit of label a token (the labels are the ids) plus 12 of index a row.
    await Deno.writeTextFile(`${tmp}/d.jsonl`, [...lines, ...lines].join("\n") + "\n");
    strictEqual(
      await planned(1) - (need - loadKernelsSync().kernels.scratchBytes()),
      4 * (16 * 4 + 16 / 8 + 12),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, lines.join("\n") + "\n");

    const below = await run(2, (need - 1) / 2 ** 20, "below");
    strictEqual(below.code, 2, below.err);
    match(below.err, /^error: --max-memory: .* below this run's planned working set/);
    ok(!(await exists(`${tmp}/below.jsonl`)), "refused before training: no metrics");
    ok(!(await exists(`${tmp}/below`)), "refused before training: no output");

    // The working set fits, but the whole process (runtime, modules, data, weights) does not.
    const process = await run(2, (need + 1) / 2 ** 20, "process");
    strictEqual(process.code, 2, process.err);
    match(process.err, /^error: --max-memory: .* below this run's planned process peak of /);
    ok(!(await exists(`${tmp}/process`)), "refused before training: no output");
    const peakMb = Number(/planned process peak of ([\d.]+) MB/.exec(process.err)![1]);
    ok(peakMb * 2 ** 20 > need, `${peakMb} MB vs ${need} bytes`);

    // (With room to spare --keep-tapes auto would keep tapes, above the plan without them.)
    const above = await run(2, peakMb + 64, "above", "--keep-tapes", "0");
    strictEqual(above.code, 0, above.err);
    const m = JSON.parse(await Deno.readTextFile(`${tmp}/above.jsonl`));
    strictEqual(m.step, 1);
    ok(m.working_set_mb <= need / 2 ** 20 + 0.0005, `${m.working_set_mb} MB vs ${need} bytes`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--keep-tapes auto keeps what fits in --max-memory and says how many; none without a budget", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const ids = Array.from({ length: 20 }, (_, t) => (t * 7) % 512);
    await Deno.writeTextFile(`${tmp}/d.jsonl`, JSON.stringify({ input_ids: ids }) + "\n");
    const run = (name: string, ...extra: string[]) =>
      cli([
        ...["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--weights", "resident"],
        ...["--steps", "1", "--seq-len", "16", "--threads", "1", "--out", `${tmp}/${name}`],
        ...["--metrics", `${tmp}/${name}.jsonl`, ...extra],
      ]);
    const workingSet = async (name: string) =>
      JSON.parse(await Deno.readTextFile(`${tmp}/${name}.jsonl`)).working_set_mb;
    const none = await run("none");
    strictEqual(none.code, 0, none.err);
    match(none.out, /recompute: every block's activations in the backward \(no tapes kept;/);
    const all = await run("all", "--max-memory", "4096");
    strictEqual(all.code, 0, all.err);
    match(
      all.out,
      /recompute: the top 2 of 2 blocks keep their tapes .*full's speed.*--max-memory 4096 MB/,
    );
    ok(await workingSet("all") > await workingSet("none"), "the kept tapes take memory");
    const one = await run("one", "--keep-tapes", "1");
    strictEqual(one.code, 0, one.err);
    match(one.out, /recompute: the top 1 of 2 blocks keep their tapes from the forward\n/);
    const bad = await run("bad", "--method", "full", "--keep-tapes", "1");
    strictEqual(bad.code, 2);
    match(bad.err, /^error: --keep-tapes: only used by --method mebp or mesp \(this run is full\)/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("with 2 threads the run says from what size calls are split", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const r = await cli([
      ...["--steps", "1", "--seq-len", "64", "--threads", "2", "--out", `${tmp}/out`],
    ]);
    strictEqual(r.code, 0, r.err);
    match(r.out, /kernels \w+ x 2 threads/);
    match(r.out, /threads: calls from \d+\.\d\dM multiply-adds are split \((measured|default)/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** A tiny random checkpoint with the Qwen2.5 vocabulary and, if asked, the bundled tokenizer. */
async function qwenVocabModel(dir: string, withTokenizer: boolean): Promise<void> {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { bundledQwenTokenizerDir } = await import("../src/deno/tokenizer.ts");
  await makeCheckpoint({
    preset: "tiny-qwen2",
    out: dir,
    seed: 1,
    configOverrides: { vocab_size: 151936 },
  });
  if (!withTokenizer) return;
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`${bundledQwenTokenizerDir()}/${f}`, `${dir}/${f}`);
  }
}

const textLines = [
  { prompt: "Hello", completion: " World" },
  { text: "The quick brown fox jumps over the lazy dog." },
  { prompt: "Translate to French: good morning", completion: " bonjour" },
  { text: "Hello World" },
  { prompt: "2+2=", completion: "4" },
];

Deno.test("pre-tokenized data never builds the model's tokenizer and trains to the same losses as its text", async () => {
  const { pretokenize } = await import("../tools/pretokenize.ts");
  const tmp = await Deno.makeTempDir();
  try {
    const model = `${tmp}/model`;
    await qwenVocabModel(model, true);
    const text = `${tmp}/text.jsonl`;
    await Deno.writeTextFile(text, textLines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const ids = `${tmp}/ids.jsonl`;
    await pretokenize({ model, data: text, out: ids, seqLen: null });
    const run = async (data: string, name: string) => {
      const r = await cli([
        ...["--model", model, "--data", data, "--steps", "4", "--seq-len", "24"],
        ...["--batch-size", "2", "--threads", "1", "--out", `${tmp}/out-${name}`],
        ...["--metrics", `${tmp}/metrics-${name}.jsonl`],
      ]);
      const losses = r.code !== 0 ? [] : (await Deno.readTextFile(`${tmp}/metrics-${name}.jsonl`))
        .trim().split("\n").map((l) => JSON.parse(l).loss as number);
      return { ...r, losses };
    };
    const fromText = await run(text, "text");
    strictEqual(fromText.code, 0, fromText.err);
    match(fromText.out, new RegExp(`tokenizer: loaded for "prompt" data \\(${text}:1\\)`));
    strictEqual(fromText.losses.length, 4);
    // Same ids and labels; padding differs (tokenizer pad 151643 vs config.json's EOS 2) and
    // must not matter: padded positions come last and are never trained on.
    const fromIds = await run(ids, "ids");
    strictEqual(fromIds.code, 0, fromIds.err);
    ok(!fromIds.out.includes("tokenizer:"), fromIds.out);
    deepStrictEqual(fromIds.losses, fromText.losses);
    // Nothing even reads tokenizer.json for pre-tokenized data: broken, it still trains the same,
    // while text data now fails on it.
    await Deno.writeTextFile(`${model}/tokenizer.json`, "{broken");
    const broken = await run(ids, "broken");
    strictEqual(broken.code, 0, broken.err);
    deepStrictEqual(broken.losses, fromText.losses);
    const textBroken = await run(text, "text-broken");
    strictEqual(textBroken.code, 1);
    match(textBroken.err, /tokenizer\.json: not valid JSON/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the tokenizer is loaded for the first line that needs it: mixed data, eval data; bad lines still stop first", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const model = `${tmp}/model`;
    await qwenVocabModel(model, true);
    const idsLine = JSON.stringify({
      input_ids: [9707, 4337, 151645],
      labels: [-100, 4337, 151645],
    });
    const write = async (name: string, lines: string[]) => {
      await Deno.writeTextFile(`${tmp}/${name}`, lines.join("\n") + "\n");
      return `${tmp}/${name}`;
    };
    const mixed = await write("mixed.jsonl", [idsLine, '{"text":"Hello World"}']);
    const pre = await write("pre.jsonl", [idsLine, idsLine]);
    const run = (name: string, ...extra: string[]) =>
      cli([
        ...["--model", model, "--steps", "2", "--seq-len", "16", "--threads", "1"],
        ...["--out", `${tmp}/out-${name}`, ...extra],
      ]);

    const m = await run("mixed", "--data", mixed);
    strictEqual(m.code, 0, m.err);
    match(m.out, new RegExp(`tokenizer: loaded for "text" data \\(${mixed}:2\\)`));
    match(m.out, /data: 2 examples/);
    // The data is read, and the tokenizer released, before the weights are opened: their
    // memory never adds up.
    const at = (line: RegExp) => m.out.search(line);
    ok(at(/^data: /m) >= 0 && at(/^data: /m) < at(/^model: /m), m.out);

    // Training data pre-tokenized, evaluation data text: loaded for the evaluation file.
    const e = await run("eval", "--data", pre, "--eval-data", mixed, "--eval-every", "1");
    strictEqual(e.code, 0, e.err);
    match(e.out, new RegExp(`tokenizer: loaded for "text" data \\(${mixed}:2\\)`));
    match(e.out, /eval_loss \d/);

    // A bad line before the first text line: its error, and no tokenizer was built for it.
    const bad = await write("bad.jsonl", [idsLine, '{"input_ids":[1,"x"]}', '{"text":"hi"}']);
    const b = await run("bad", "--data", bad);
    strictEqual(b.code, 1);
    strictEqual(b.err, `error: ${bad}:2: "input_ids" must be an array of integers\n`);
    ok(!b.out.includes("tokenizer:"), b.out);
    // A bad line after it: found by the second pass, with the tokenizer.
    const late = await write("late.jsonl", ['{"text":"hi"}', idsLine, '{"prompt":"p"}']);
    const l = await run("late", "--data", late);
    strictEqual(l.code, 1);
    strictEqual(l.err, `error: ${late}:3: "completion" must be a string\n`);

    // A model without a tokenizer: the first line that needs one is the error, as before.
    await Deno.remove(`${model}/tokenizer.json`);
    const none = await run("none", "--data", mixed);
    strictEqual(none.code, 1);
    strictEqual(
      none.err,
      `error: ${mixed}:2: "text" data needs the model's tokenizer.json (none was found)\n`,
    );
    strictEqual((await run("none-pre", "--data", pre)).code, 0);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the tokenizer line says what loading it cost when the resident size grew", async () => {
  const { tokenizerCostNote } = await import("../src/deno/train_cli.ts");
  strictEqual(tokenizerCostNote(40 << 20, 222 << 20), ", +182.0 MB of process memory");
  strictEqual(tokenizerCostNote(40 << 20, 40 << 20), "");
  strictEqual(tokenizerCostNote(null, 222 << 20), "");
  strictEqual(tokenizerCostNote(40 << 20, null), "");
});

Deno.test("--checkpoints: auto puts them on disk with streamed weights, same adapter bits as memory, no file left; refused for full and mezo", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const lines = Array.from(
      { length: 4 },
      (_, i) =>
        JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, t) => (i * 29 + t * 3) % 512) }),
    );
    await Deno.writeTextFile(`${tmp}/d.jsonl`, lines.join("\n") + "\n");
    const run = (name: string, ...extra: string[]) =>
      cli([
        ...["--model", `${tmp}/model`, "--data", `${tmp}/d.jsonl`, "--cache-dir", `${tmp}/cache`],
        ...["--steps", "2", "--seq-len", "16", "--batch-size", "2", "--threads", "1"],
        ...["--out", `${tmp}/${name}`, "--metrics", `${tmp}/${name}.jsonl`, ...extra],
      ]);
    const workingSet = async (name: string) =>
      JSON.parse((await Deno.readTextFile(`${tmp}/${name}.jsonl`)).split("\n")[1]).working_set_mb;
    const adapter = (name: string) => Deno.readFile(`${tmp}/${name}/adapter_model.safetensors`);
    for (const method of ["mesp", "lcsb"]) {
      // lcsb in one group: both blocks are checkpointed, so the disk saves one.
      const flags = method === "lcsb" ? ["--method", method, "--lcsb-groups", "1"] : [];
      const disk = await run(`${method}-disk`, ...flags);
      strictEqual(disk.code, 0, disk.err);
      match(disk.out, new RegExp(`checkpoints: block inputs in a scratch file in ${tmp}/cache, `));
      const memory = await run(`${method}-memory`, ...flags, "--checkpoints", "memory");
      strictEqual(memory.code, 0, memory.err);
      ok(!memory.out.includes("checkpoints:"), memory.out);
      deepStrictEqual(await adapter(`${method}-disk`), await adapter(`${method}-memory`));
      ok(
        await workingSet(`${method}-disk`) < await workingSet(`${method}-memory`),
        `${method}: the disk run holds fewer checkpoints`,
      );
      const left = [...Deno.readDirSync(`${tmp}/cache`)].map((e) => e.name);
      ok(!left.some((n) => n.startsWith(".checkpoints-")), left.join(", "));
    }
    const resident = await run("resident", "--weights", "resident");
    strictEqual(resident.code, 0, resident.err);
    match(resident.out, /checkpoints: block inputs in memory \(--checkpoints auto: resident/);
    for (const method of ["full", "mezo"]) {
      const bad = await run(`bad-${method}`, "--method", method, "--checkpoints", "disk");
      strictEqual(bad.code, 2);
      match(
        bad.err,
        new RegExp(
          `^error: --checkpoints: only used by --method mebp, mesp or lcsb \\(this run is ${method}`,
        ),
      );
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
