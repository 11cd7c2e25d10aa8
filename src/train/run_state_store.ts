/**
 * A run's complete state as one byte string, and where such bytes are kept between invocations.
 *
 * Edge functions get seconds to minutes of CPU per invocation, so a fine-tune there is many
 * invocations: each resumes the state the previous one put, trains a few steps and puts it back.
 * {@link encodeRunState} packs the four files of a checkpoint (`run_state.ts`: adapter, its
 * config, optimizer state, trainer state with RNG, data position and schedule step) into one
 * safetensors file, two U8 tensors and two metadata strings, so a store that keeps values (Workers
 * KV, R2, Deno KV, a file) is all that is needed. {@link decodeRunState} validates it as a
 * checkpoint directory is validated.
 *
 * @example
 * ```ts
 * import { MemoryRunStateStore } from "./run_state_store.ts";
 * const store = new MemoryRunStateStore();
 * await store.put("run-1", new Uint8Array([1, 2, 3]));
 * console.log(await store.get("run-1"), await store.get("run-2")); // Uint8Array(3) [1, 2, 3] null
 * ```
 */
import { MemorySource } from "../io/byte_source.ts";
import { SafetensorsFile } from "../io/safetensors.ts";
import { serializeSafetensors } from "../io/safetensors_writer.ts";
import type { ModelConfig } from "../model/config.ts";
import {
  CHECKPOINT_FILES,
  decodeCheckpoint,
  encodeCheckpoint,
  type TrainingState,
} from "./run_state.ts";

/** Where a run's state bytes are kept between invocations: one value per key. */
export interface RunStateStore {
  /** The bytes last put under `key`, or null when there are none. */
  get(key: string): Promise<Uint8Array | null>;
  /** Replaces the value of `key` whole (a reader never sees half of it). */
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/** A {@link RunStateStore} in JS memory (tests; one process that trains in slices). */
export class MemoryRunStateStore implements RunStateStore {
  readonly #values = new Map<string, Uint8Array>();

  get(key: string): Promise<Uint8Array | null> {
    return Promise.resolve(this.#values.get(key)?.slice() ?? null);
  }

  put(key: string, bytes: Uint8Array): Promise<void> {
    this.#values.set(key, bytes.slice());
    return Promise.resolve();
  }
}

/** The `format` metadata entry of an encoded run state. */
export const RUN_STATE_FORMAT = "slimtune-run-state/1";

/** Concatenates a file's bytes, whatever form they come in. */
export async function collectBytes(
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<Uint8Array<ArrayBuffer>> {
  if (data instanceof Uint8Array) return data.slice();
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of data as AsyncIterable<Uint8Array>) {
    parts.push(p.slice());
    n += p.byteLength;
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** `state` as one byte string (its tensors are copied: they may be views of linear memory). */
export async function encodeRunState(state: TrainingState): Promise<Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [name, data] of encodeCheckpoint(state)) files.set(name, await collectBytes(data));
  const dec = new TextDecoder();
  const blob = (name: string) => {
    const data = files.get(name)!;
    return { name, dtype: "U8" as const, shape: [data.byteLength], data };
  };
  return serializeSafetensors(
    [blob(CHECKPOINT_FILES.adapterWeights), blob(CHECKPOINT_FILES.optimizer)],
    {
      format: RUN_STATE_FORMAT,
      [CHECKPOINT_FILES.adapterConfig]: dec.decode(files.get(CHECKPOINT_FILES.adapterConfig)!),
      [CHECKPOINT_FILES.trainerState]: dec.decode(files.get(CHECKPOINT_FILES.trainerState)!),
    },
  );
}

/**
 * Reads bytes of {@link encodeRunState} back, validating the adapter against `model`; errors
 * name `name` (the store and key, say).
 */
export async function decodeRunState(
  bytes: Uint8Array,
  name: string,
  model: ModelConfig,
): Promise<TrainingState> {
  const outer = await SafetensorsFile.open(new MemorySource(name, bytes));
  const meta = outer.metadata ?? {};
  if (meta.format !== RUN_STATE_FORMAT) {
    throw new Error(`${name}: not a slimtune run state (format ${JSON.stringify(meta.format)})`);
  }
  const text = (file: string) => {
    const t = meta[file];
    if (typeof t !== "string") throw new Error(`${name}: no ${file} in the run state`);
    return t;
  };
  const inner = async (file: string) => {
    if (!outer.names().includes(file)) throw new Error(`${name}: no ${file} in the run state`);
    return new MemorySource(`${name}/${file}`, await outer.read(file));
  };
  return await decodeCheckpoint({
    name,
    trainerStateJson: text(CHECKPOINT_FILES.trainerState),
    adapterConfigJson: text(CHECKPOINT_FILES.adapterConfig),
    adapterWeights: await inner(CHECKPOINT_FILES.adapterWeights),
    optimizer: await inner(CHECKPOINT_FILES.optimizer),
  }, model);
}
