/**
 * A small LoRA fine-tune that needs NO permissions at all: it reads no file, opens no socket and
 * looks at no environment variable. Run it exactly like this:
 *
 *   npx deno run --no-prompt examples/edge/finetune.ts
 *
 * - the kernels come in as an already compiled `WebAssembly.Module` (`options.module`); run as
 *   a script it compiles the embedded relaxed-SIMD build (simd128 where the engine lacks relaxed
 *   SIMD) once and passes it in, the way an edge bundler injects a module (see `worker.ts` and
 *   `deno_entry.js` for a source-phase import, where nothing is compiled at run time);
 * - the model is a tiny random Qwen2 checkpoint made in memory (`config.json` +
 *   `model.safetensors` bytes) and opened with `openModel` over `memoryFiles`, 4-bit base weights;
 * - the run is the library's portable pipeline (`runFineTune`), with the arena capped (`arena.limit`) and
 *   the working set checked every step (`maxWorkingSetBytes`), as `train.ts --max-memory` does;
 * - the result is a PEFT adapter (`adapter_config.json` + `adapter_model.safetensors`) in memory,
 *   decoded again to check it.
 *
 * Prints one JSON line: `{"ok":true,"losses":[...],"adapter":{...},"memory":{...}}`.
 *
 * @module
 */
import {
  ADAPTER_FILES,
  decodeAdapter,
  kernelModuleBytes,
  loadKernels,
  memoryFiles,
  memoryRunHost,
  MemorySource,
  openModel,
  runFineTune,
  supportsRelaxedSimd,
} from "../../mod.ts";
import { byteRows, randomCheckpointFiles, TINY_QWEN2 } from "../shared/random_checkpoint.ts";

/** Options of {@link finetuneInMemory}. */
export interface EdgeFinetuneOptions {
  /** The compiled kernels (required: edge runtimes inject them). */
  module: WebAssembly.Module;
  steps?: number;
  seqLen?: number;
  /** Arena cap and working-set limit in MiB (default 64). */
  maxMemoryMB?: number;
}

/** What {@link finetuneInMemory} produced. */
export interface EdgeFinetuneResult {
  losses: number[];
  variant: string;
  adapter: { configJson: string; safetensors: Uint8Array; tensors: number };
  memory: { workingSetBytes: number; wasmHighWaterBytes: number; jsBytesHeld: number };
}

const TEXT = "slimtune trains LoRA adapters anywhere: a laptop, a browser tab, an edge function. ";

/** Fine-tunes a tiny in-memory model and returns the losses and the adapter bytes. */
export async function finetuneInMemory(o: EdgeFinetuneOptions): Promise<EdgeFinetuneResult> {
  const steps = o.steps ?? 30;
  const seqLen = o.seqLen ?? 64;
  const limit = (o.maxMemoryMB ?? 64) * 1048576;
  const { kernels, arena, variant } = await loadKernels({ module: o.module });
  arena.limit = limit;
  const files = memoryFiles("random-tiny-qwen2", randomCheckpointFiles(TINY_QWEN2, 7));
  const store = await openModel({ source: files, quant: "int4", kernels, arena });
  const adapterInfo = {
    r: 8,
    alpha: 16,
    targets: ["q", "k", "v", "o", "gate", "up", "down"] as const,
    baseModel: "random-tiny-qwen2",
  };
  // The library's run pipeline; this script is its host: no files, the adapter kept in memory.
  const host = memoryRunHost(() => {});
  const result = await runFineTune(host, {
    store,
    kernels,
    arena,
    adapter: { ...adapterInfo, targets: [...adapterInfo.targets] },
    session: {
      method: "mesp",
      seed: 1,
      maxGradNorm: 1,
      optimizer: { kind: "adamw", lr: 3e-3, weightDecay: 0 },
    },
    train: byteRows(TEXT.repeat(4), seqLen),
    batchSize: 1,
    seqLen,
    steps,
    out: "",
    maxWorkingSetBytes: limit,
  });
  const files2 = {
    configJson: new TextDecoder().decode(host.files.get(ADAPTER_FILES.config)),
    safetensors: host.files.get(ADAPTER_FILES.weights)!,
  };
  // Decode it again: the bytes are a valid PEFT adapter for this model.
  const back = await decodeAdapter(
    files2.configJson,
    "adapter_config.json",
    new MemorySource("adapter_model.safetensors", files2.safetensors),
    store.config,
  );
  const m = result.memory;
  await store.close();
  return {
    losses: result.history.map((p) => p.loss),
    variant,
    adapter: { ...files2, tensors: back.tensors.size },
    memory: {
      workingSetBytes: m.workingSetBytes,
      wasmHighWaterBytes: m.wasmHighWaterBytes,
      jsBytesHeld: m.jsBytesHeld,
    },
  };
}

if (import.meta.main) {
  const bytes = kernelModuleBytes(supportsRelaxedSimd() ? "relaxed" : "simd");
  const module = await WebAssembly.compile(bytes as BufferSource);
  const r = await finetuneInMemory({ module });
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", r.adapter.safetensors as BufferSource),
  );
  console.log(JSON.stringify({
    ok: true,
    variant: r.variant,
    losses: r.losses,
    adapter: {
      config: JSON.parse(r.adapter.configJson),
      safetensorsBytes: r.adapter.safetensors.byteLength,
      sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
      tensors: r.adapter.tensors,
    },
    memory: r.memory,
  }));
}
