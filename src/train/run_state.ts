/**
 * Training-state checkpoints, portable part: everything needed to continue a run so that
 * interrupted + resumed training gives bit-identical adapters to an uninterrupted run.
 *
 * A checkpoint is four files:
 * - `adapter_config.json` + `adapter_model.safetensors`: the adapter so far (a valid PEFT adapter);
 * - `optimizer.safetensors`: optimizer state tensors (AdamW `exp_avg` / `exp_avg_sq`), F32, or
 *   for 8-bit AdamW their U8 codes and F32 block scales;
 * - `trainer_state.json`: step, optimizer step count and RNG state, data position, the run's
 *   arguments and the loss history (for `loss.svg` and metrics continuity).
 *
 * See `src/deno/run_state.ts` for writing them as a directory atomically.
 */
import type { ByteSource } from "../io/byte_source.ts";
import { SafetensorsFile } from "../io/safetensors.ts";
import { safetensorsChunks, tensorBytes } from "../io/safetensors_writer.ts";
import type { ModelConfig } from "../model/config.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { OptimizerState, StateTensor } from "../optim/optimizer.ts";
import type { DataPosition } from "../data/dataset.ts";
import { type DataIdentity, parseDataIdentity } from "./data_identity.ts";
import { type AdapterInfo, decodeAdapter, encodeAdapterChunks } from "../io/peft_adapter.ts";

/** Version tag of `trainer_state.json`. */
export const CHECKPOINT_FORMAT = "slimtune-checkpoint/1";

/** One point of the loss history. */
export interface HistoryPoint {
  step: number;
  loss: number;
  evalLoss?: number;
}

/** Everything a run needs to continue exactly where it was. */
export interface TrainingState {
  /** Optimizer steps completed. */
  step: number;
  adapter: AdapterInfo;
  lora: LoraTensors;
  optimizer: OptimizerState;
  /** Next row of the training data (null for runs without training data). */
  data: DataPosition | null;
  /** The run's arguments (JSON-safe), so `--resume` needs no other flags. */
  args: Record<string, unknown>;
  history: HistoryPoint[];
  /** The training data file's identity, to refuse a resume on other data (absent: unknown). */
  dataIdentity?: DataIdentity | null;
}

/** File names inside a checkpoint directory. */
export const CHECKPOINT_FILES = {
  adapterConfig: "adapter_config.json",
  adapterWeights: "adapter_model.safetensors",
  optimizer: "optimizer.safetensors",
  trainerState: "trainer_state.json",
} as const;

/**
 * The checkpoint's files, in the order they should be written (state last). The two safetensors
 * files are streams that copy or view one tensor at a time, so saving never holds a serialized
 * copy of the whole adapter or optimizer state beside the state itself.
 */
export function encodeCheckpoint(
  s: TrainingState,
): [string, Uint8Array | AsyncIterable<Uint8Array>][] {
  const adapter = encodeAdapterChunks(s.lora, s.adapter);
  const optimizer = safetensorsChunks(
    [...s.optimizer.tensors.keys()].sort().map((name) => {
      const t = s.optimizer.tensors.get(name)!;
      return {
        name,
        dtype: t instanceof Uint8Array ? "U8" as const : "F32" as const,
        shape: [t.length],
        data: () => tensorBytes(t),
      };
    }),
    { format: "pt" },
  );
  const state = {
    format: CHECKPOINT_FORMAT,
    step: s.step,
    optimizer_step_count: s.optimizer.stepCount,
    rng: s.optimizer.rng,
    data: s.data,
    args: s.args,
    history: s.history,
    data_identity: s.dataIdentity ?? null,
  };
  const enc = new TextEncoder();
  return [
    [CHECKPOINT_FILES.adapterWeights, adapter.safetensors],
    [CHECKPOINT_FILES.adapterConfig, enc.encode(adapter.configJson)],
    [CHECKPOINT_FILES.optimizer, optimizer],
    [CHECKPOINT_FILES.trainerState, enc.encode(JSON.stringify(state, null, 1) + "\n")],
  ];
}

function isU32Array(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
}

/** Where a checkpoint's files come from. */
export interface CheckpointSources {
  /** Directory (or other label) used in error messages. */
  name: string;
  trainerStateJson: string;
  adapterConfigJson: string;
  adapterWeights: ByteSource;
  optimizer: ByteSource;
}

/** The parts of `trainer_state.json` that are needed before the model is opened. */
export function parseTrainerState(text: string, name: string): {
  step: number;
  optimizerStepCount: number;
  rng: number[];
  data: DataPosition | null;
  args: Record<string, unknown>;
  history: HistoryPoint[];
  dataIdentity: DataIdentity | null;
} {
  const fail = (what: string): never => {
    throw new Error(`${name}/${CHECKPOINT_FILES.trainerState}: ${what}`);
  };
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!j || typeof j !== "object") fail("expected a JSON object");
  if (j.format !== CHECKPOINT_FORMAT) {
    fail(`format ${JSON.stringify(j.format)} is not ${CHECKPOINT_FORMAT}`);
  }
  const int = (v: unknown, what: string) => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`${what} must be a natural number`);
    return v as number;
  };
  const step = int(j.step, "step");
  const optimizerStepCount = int(j.optimizer_step_count, "optimizer_step_count");
  if (!isU32Array(j.rng)) fail("rng must be an array of u32");
  let data: DataPosition | null = null;
  if (j.data !== null) {
    const d = j.data as Record<string, unknown>;
    if (!d || typeof d !== "object") fail("data must be an object or null");
    data = { epoch: int(d.epoch, "data.epoch"), index: int(d.index, "data.index") };
  }
  if (!j.args || typeof j.args !== "object") fail("args must be an object");
  if (!Array.isArray(j.history)) fail("history must be an array");
  return {
    step,
    optimizerStepCount,
    rng: j.rng as number[],
    data,
    args: j.args as Record<string, unknown>,
    history: j.history as HistoryPoint[],
    dataIdentity: parseDataIdentity(j.data_identity),
  };
}

/** Reads a checkpoint, validating the adapter against the model shape. */
export async function decodeCheckpoint(
  src: CheckpointSources,
  model: ModelConfig,
): Promise<TrainingState> {
  const st = parseTrainerState(src.trainerStateJson, src.name);
  const { info, tensors } = await decodeAdapter(
    src.adapterConfigJson,
    `${src.name}/${CHECKPOINT_FILES.adapterConfig}`,
    src.adapterWeights,
    model,
  );
  const opt = await SafetensorsFile.open(src.optimizer);
  const optTensors = new Map<string, StateTensor>();
  for (const name of opt.names()) {
    const t = opt.info(name);
    if (t.dtype !== "F32" && t.dtype !== "U8") {
      throw new Error(`${opt.name}: ${name} is ${t.dtype}, expected F32 or U8`);
    }
    const bytes = await opt.read(name);
    if (t.dtype === "U8") {
      optTensors.set(name, bytes.slice());
      continue;
    }
    const copy = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(copy.buffer).set(bytes);
    optTensors.set(name, copy);
  }
  return {
    step: st.step,
    adapter: info,
    lora: tensors,
    optimizer: { stepCount: st.optimizerStepCount, tensors: optTensors, rng: st.rng },
    data: st.data,
    args: st.args,
    history: st.history,
    ...(st.dataIdentity ? { dataIdentity: st.dataIdentity } : {}),
  };
}
