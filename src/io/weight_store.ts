/**
 * The two {@link WeightStore}s:
 *
 * - {@link ResidentWeightStore}: every base weight in the arena once (int4 or f32), the LM head
 *   served as windows of the resident matrix.
 * - {@link StreamedWeightStore}: a per-layer cache file (int4 or f32, already in slot layout) is
 *   written once; `acquireBlock(i)` reads block i into ONE planned slot sized for the largest
 *   block, the LM head is read in vocabulary chunks into one planned chunk slot, and `embed` reads
 *   only the rows it needs. Its arena footprint does not depend on the number of layers or on the
 *   vocabulary size beyond one chunk.
 *
 * Both allocate all their linear memory when they are built (never later), so a training step's
 * mark/release discipline is unaffected. Use `openModel` (`model_source.ts`) to build one.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { ModelConfig } from "../model/config.ts";
import type { BlockWeights, HeadChunk, LinearWeight, WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { CacheStore } from "./cache_store.ts";
import { MemoryCacheStore } from "./cache_store.ts";
import { SafetensorsError, SafetensorsFile } from "./safetensors.ts";
import { type LazyTensor, safetensorsChunks } from "./safetensors_writer.ts";
import type { TensorLoader } from "./tensor_loader.ts";
import type { TensorSet } from "./tensor_set.ts";
import {
  type BlockLayout,
  blockWeightsAt,
  linearAt,
  type MatrixPlan,
  type MatrixRegion,
  matrixRegion,
  type ModelPlan,
  rowBytes,
} from "./weight_plan.ts";

/** Loads every tensor of a block into a slot at `base` laid out by `layout`. */
export async function fillBlock(
  loader: TensorLoader,
  layout: BlockLayout,
  base: Ptr,
): Promise<void> {
  for (const l of layout.linears) {
    await loader.loadRows(l.region, base, 0, l.region.rows);
    if (l.bias !== null) await loader.loadVector(l.biasName!, l.region.rows, base + l.bias);
  }
  const hidden = loader.set.get(layout.inputNormName).info.shape[0];
  const offset = layout.normWeightOffset;
  await loader.loadNormWeight(layout.inputNormName, hidden, base + layout.inputNorm, offset);
  await loader.loadNormWeight(layout.postNormName, hidden, base + layout.postNorm, offset);
  const qk = layout.qkNorm;
  if (qk) {
    await loader.loadNormWeight(qk.qName, qk.headDim, base + qk.q, offset);
    await loader.loadNormWeight(qk.kName, qk.headDim, base + qk.k, offset);
  }
  const sw = layout.sandwichNorms;
  if (sw) {
    await loader.loadNormWeight(sw.attnOutName, hidden, base + sw.attnOut, offset);
    await loader.loadNormWeight(sw.mlpOutName, hidden, base + sw.mlpOut, offset);
  }
}

/** A window of rows `[v0, v0 + n)` of a resident matrix at `base`, as a {@link LinearWeight}. */
function windowAt(region: MatrixRegion, base: Ptr, v0: number, n: number): LinearWeight {
  const rb = rowBytes(region.plan);
  const w = linearAt(region, base, null, n);
  if (w.kind === "f32") return { ...w, w: w.w + v0 * rb.w };
  return {
    ...w,
    q: w.q + v0 * rb.q,
    scales: w.scales + v0 * rb.sb,
    biases: w.biases + v0 * rb.sb,
  };
}

function checkIds(arena: Arena, ids: Ptr, T: number, vocab: number): Int32Array {
  const v = arena.i32(ids, T).slice();
  for (let t = 0; t < T; t++) {
    if (!(v[t] >= 0 && v[t] < vocab)) {
      throw new RangeError(`embed: token id ${v[t]} at position ${t} is outside [0, ${vocab})`);
    }
  }
  return v;
}

/** Vocabulary chunk size actually used: at most `rows`, at most `cap`, 16-row aligned if >= 16. */
function chunkRows(rows: number, cap: number): number {
  if (!Number.isSafeInteger(rows) || rows < 1) {
    throw new RangeError(`headChunks: rows must be a positive integer, got ${rows}`);
  }
  const r = Math.min(rows, cap);
  return r >= 16 ? r - (r % 16) : r;
}

/** Every base weight resident in the arena. */
export class ResidentWeightStore implements WeightStore {
  private constructor(
    readonly config: ModelConfig,
    readonly quant: "int4" | "none",
    private readonly kernels: Kernels,
    private readonly arena: Arena,
    private readonly plan: ModelPlan,
    private readonly blockBases: Ptr[],
    private readonly embedRegion: MatrixRegion,
    private readonly embedBase: Ptr,
    private readonly headRegion: MatrixRegion,
    private readonly headBase: Ptr,
    readonly finalNorm: Ptr,
    private readonly set: TensorSet,
  ) {}

  /** Loads everything; peak arena = all weights + one scratch chunk. */
  static async build(
    config: ModelConfig,
    quant: "int4" | "none",
    plan: ModelPlan,
    loader: TensorLoader,
  ): Promise<ResidentWeightStore> {
    const { arena } = loader;
    const matrix = async (p: MatrixPlan): Promise<[MatrixRegion, Ptr]> => {
      const [region, bytes] = matrixRegion(p, p.out, 0);
      const base = arena.alloc(bytes);
      await loader.loadRows(region, base, 0, p.out);
      return [region, base];
    };
    const [embedRegion, embedBase] = await matrix(plan.embedding);
    const [headRegion, headBase] = plan.head === plan.embedding
      ? [embedRegion, embedBase]
      : await matrix(plan.head);
    const finalNorm = arena.allocF32(config.hiddenSize);
    await loader.loadNormWeight(
      plan.finalNormName,
      config.hiddenSize,
      finalNorm,
      config.normWeightOffset ?? 0,
    );
    const blockBases: Ptr[] = [];
    for (const layout of plan.blocks) {
      const base = arena.alloc(layout.bytes);
      await fillBlock(loader, layout, base);
      blockBases.push(base);
    }
    return new ResidentWeightStore(
      config,
      quant,
      loader.kernels,
      arena,
      plan,
      blockBases,
      embedRegion,
      embedBase,
      headRegion,
      headBase,
      finalNorm,
      loader.set,
    );
  }

  acquireBlock(i: number): Promise<BlockWeights> {
    const layout = this.plan.blocks[i];
    if (!layout) return Promise.reject(new RangeError(`acquireBlock: no block ${i}`));
    return Promise.resolve(blockWeightsAt(layout, this.blockBases[i]));
  }

  releaseBlock(_i: number): void {}

  embed(out: Ptr, ids: Ptr, T: number): Promise<void> {
    try {
      const v = checkIds(this.arena, ids, T, this.config.vocabSize);
      const K = this.config.hiddenSize;
      const w = linearAt(this.embedRegion, this.embedBase, null);
      if (w.kind === "int4") {
        this.kernels.int4GatherRows(out, ids, w.q, w.scales, w.biases, T, K, w.groupSize);
      } else {
        const bytes = this.arena.u8(0, this.arena.committed);
        for (let t = 0; t < T; t++) {
          bytes.copyWithin(out + t * K * 4, w.w + v[t] * K * 4, w.w + (v[t] + 1) * K * 4);
        }
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async *headChunks(rows: number): AsyncIterable<HeadChunk> {
    const V = this.config.vocabSize;
    const R = chunkRows(rows, V);
    for (let v0 = 0; v0 < V; v0 += R) {
      const n = Math.min(R, V - v0);
      yield { v0, weight: windowAt(this.headRegion, this.headBase, v0, n) };
    }
  }

  jsBytesHeld(): number {
    return 0;
  }

  close(): Promise<void> {
    return this.set.close();
  }
}

/** Cache file format version; bump when the slot layout or the file's content changes. */
export const CACHE_VERSION = "1";

/** Options of {@link StreamedWeightStore.build}. */
export interface StreamedOptions {
  cache: CacheStore;
  /** Identifies the source checkpoint + settings (see `weightCacheKey`). */
  key: string;
  /** Rows of the planned LM-head chunk slot (the largest chunk `headChunks` yields). */
  headChunkRows: number;
}

interface Bands {
  prefix: string;
  region: MatrixRegion;
  rows: number;
}

/** Base weights read from a per-layer cache file into planned slots. */
export class StreamedWeightStore implements WeightStore {
  private held = -1;

  private constructor(
    readonly config: ModelConfig,
    readonly quant: "int4" | "none",
    private readonly kernels: Kernels,
    private readonly arena: Arena,
    private readonly plan: ModelPlan,
    private readonly file: SafetensorsFile,
    private readonly cache: CacheStore,
    private readonly blockSlot: Ptr,
    private readonly headSlot: Ptr,
    private readonly headSlotRegion: MatrixRegion,
    private readonly rowSlot: Ptr,
    private readonly rowSlotRegion: MatrixRegion,
    private readonly head: Bands,
    private readonly embedding: Bands,
    readonly finalNorm: Ptr,
    private readonly set: TensorSet,
  ) {}

  /** File name of the cache for `key`. */
  static cacheFileName(key: string): string {
    return `slimtune-weights-${key.slice(0, 24)}.safetensors`;
  }

  /**
   * Allocates the planned slots, writes the cache file if it is missing or stale, and opens it.
   * Peak arena = final norm + block slot + head chunk slot + one embedding row + one scratch chunk.
   */
  static async build(
    config: ModelConfig,
    quant: "int4" | "none",
    plan: ModelPlan,
    loader: TensorLoader,
    options: StreamedOptions,
  ): Promise<StreamedWeightStore> {
    const { arena } = loader;
    const finalNorm = arena.allocF32(config.hiddenSize);
    await loader.loadNormWeight(
      plan.finalNormName,
      config.hiddenSize,
      finalNorm,
      config.normWeightOffset ?? 0,
    );
    const blockSlot = arena.alloc(plan.maxBlockBytes);
    const headRows = Math.min(options.headChunkRows, config.vocabSize);
    const [headSlotRegion, headBytes] = matrixRegion(plan.head, headRows, 0);
    const headSlot = arena.alloc(headBytes);
    const [rowSlotRegion, rowBytesTotal] = matrixRegion(plan.embedding, 1, 0);
    const rowSlot = arena.alloc(rowBytesTotal);

    // Bands of the head / embedding in the cache are built in the block slot, so they are sized
    // to fit it (and capped so one band read stays small).
    const bands = (prefix: string, p: MatrixPlan): Bands => {
      const perRow = matrixRegion(p, 64, 0)[1] / 64;
      let rows = Math.max(1, Math.min(4096, Math.floor(plan.maxBlockBytes / perRow)));
      while (rows > 1 && matrixRegion(p, rows, 0)[1] > plan.maxBlockBytes) rows--;
      return { prefix, region: matrixRegion(p, rows, 0)[0], rows };
    };
    const head = bands("head", plan.head);
    const embedding = plan.head === plan.embedding ? head : bands("embed", plan.embedding);

    const fileName = StreamedWeightStore.cacheFileName(options.key);
    let file = await openCache(options.cache, fileName, options.key);
    if (!file) {
      await options.cache.write(
        fileName,
        safetensorsChunks(cacheTensors(plan, loader, blockSlot, head, embedding), {
          format: "slimtune-weight-cache",
          version: CACHE_VERSION,
          key: options.key,
        }),
      );
      file = await openCache(options.cache, fileName, options.key);
      if (!file) {
        throw new Error(
          `${options.cache.name}/${fileName}: cache was written but does not read back`,
        );
      }
    }
    return new StreamedWeightStore(
      config,
      quant,
      loader.kernels,
      arena,
      plan,
      file,
      options.cache,
      blockSlot,
      headSlot,
      headSlotRegion,
      rowSlot,
      rowSlotRegion,
      head,
      embedding,
      finalNorm,
      loader.set,
    );
  }

  async acquireBlock(i: number): Promise<BlockWeights> {
    const layout = this.plan.blocks[i];
    if (!layout) throw new RangeError(`acquireBlock: no block ${i}`);
    if (this.held !== -1) {
      throw new Error(
        `acquireBlock(${i}): block ${this.held} is still held; a streamed store holds one block ` +
          `at a time (call releaseBlock first)`,
      );
    }
    this.held = i;
    try {
      await this.file.readInto(`block.${i}`, this.arena.u8(this.blockSlot, layout.bytes));
    } catch (e) {
      this.held = -1;
      throw e;
    }
    return blockWeightsAt(layout, this.blockSlot);
  }

  releaseBlock(i: number): void {
    if (this.held !== i) {
      throw new Error(`releaseBlock(${i}): block ${i} is not held (held: ${this.held})`);
    }
    this.held = -1;
  }

  /** Reads rows `[v0, v0 + n)` of a banded matrix into `region` at `base`. */
  private async readRows(b: Bands, region: MatrixRegion, base: Ptr, v0: number, n: number) {
    const rb = rowBytes(region.plan);
    for (let a = v0; a < v0 + n;) {
      const j = Math.floor(a / b.rows);
      const b0 = j * b.rows;
      const c = Math.min(v0 + n, b0 + b.rows);
      const name = `${b.prefix}.${j}`;
      const at = a - v0, from = a - b0, cnt = c - a;
      if (region.plan.target === "f32") {
        await this.file.readInto(
          name,
          this.arena.u8(base + region.w + at * rb.w, cnt * rb.w),
          b.region.w + from * rb.w,
        );
      } else {
        await this.file.readInto(
          name,
          this.arena.u8(base + region.q + at * rb.q, cnt * rb.q),
          b.region.q + from * rb.q,
        );
        await this.file.readInto(
          name,
          this.arena.u8(base + region.scales + at * rb.sb, cnt * rb.sb),
          b.region.scales + from * rb.sb,
        );
        await this.file.readInto(
          name,
          this.arena.u8(base + region.biases + at * rb.sb, cnt * rb.sb),
          b.region.biases + from * rb.sb,
        );
      }
      a = c;
    }
  }

  async embed(out: Ptr, ids: Ptr, T: number): Promise<void> {
    const v = checkIds(this.arena, ids, T, this.config.vocabSize);
    const K = this.config.hiddenSize;
    const r = this.rowSlotRegion;
    for (let t = 0; t < T; t++) {
      if (r.plan.target === "f32") {
        // Straight into the output row: the f32 layout of one row is exactly K floats.
        const target: MatrixRegion = { ...r, w: 0 };
        await this.readRows(this.embedding, target, out + t * K * 4, v[t], 1);
      } else {
        await this.readRows(this.embedding, r, this.rowSlot, v[t], 1);
        this.kernels.int4Dequantize(
          out + t * K * 4,
          this.rowSlot + r.q,
          this.rowSlot + r.scales,
          this.rowSlot + r.biases,
          1,
          K,
          r.plan.groupSize,
        );
      }
    }
  }

  async *headChunks(rows: number): AsyncIterable<HeadChunk> {
    const V = this.config.vocabSize;
    const R = chunkRows(rows, this.headSlotRegion.rows);
    for (let v0 = 0; v0 < V; v0 += R) {
      const n = Math.min(R, V - v0);
      await this.readRows(this.head, this.headSlotRegion, this.headSlot, v0, n);
      yield { v0, weight: linearAt(this.headSlotRegion, this.headSlot, null, n) };
    }
  }

  jsBytesHeld(): number {
    return this.cache instanceof MemoryCacheStore ? this.cache.bytesHeld() : 0;
  }

  async close(): Promise<void> {
    await this.file.close();
    await this.set.close();
  }
}

async function openCache(
  cache: CacheStore,
  fileName: string,
  key: string,
): Promise<SafetensorsFile | null> {
  const src = await cache.open(fileName);
  if (!src) return null;
  try {
    const file = await SafetensorsFile.open(src);
    const m = file.metadata;
    if (m.format === "slimtune-weight-cache" && m.version === CACHE_VERSION && m.key === key) {
      return file;
    }
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    // A damaged cache file is rebuilt.
  }
  await src.close();
  return null;
}

/** The cache file's tensors, each produced in the block slot just before it is written. */
function cacheTensors(
  plan: ModelPlan,
  loader: TensorLoader,
  slot: Ptr,
  head: Bands,
  embedding: Bands,
): LazyTensor[] {
  const { arena } = loader;
  const tensors: LazyTensor[] = plan.blocks.map((layout) => ({
    name: `block.${layout.index}`,
    dtype: "U8",
    shape: [layout.bytes],
    data: async () => {
      await fillBlock(loader, layout, slot);
      return arena.u8(slot, layout.bytes);
    },
  }));
  const banded = (b: Bands, p: MatrixPlan) => {
    for (let j = 0; j * b.rows < p.out; j++) {
      const n = Math.min(b.rows, p.out - j * b.rows);
      // Every band uses the full-band layout, so row offsets are the same in each; the last one
      // is cut after its last used byte.
      const full = b.region;
      const size = bandBytes(full, n);
      tensors.push({
        name: `${b.prefix}.${j}`,
        dtype: "U8",
        shape: [size],
        data: async () => {
          await loader.loadRows(full, slot, j * b.rows, n);
          return arena.u8(slot, size);
        },
      });
    }
  };
  banded(head, plan.head);
  if (embedding !== head) banded(embedding, plan.embedding);
  return tensors;
}

/** Bytes of a band laid out for `full.rows` rows but holding only `n`: up to the last byte used. */
function bandBytes(full: MatrixRegion, n: number): number {
  const rb = rowBytes(full.plan);
  if (full.plan.target === "f32") return full.w + n * rb.w;
  return full.biases + n * rb.sb;
}
