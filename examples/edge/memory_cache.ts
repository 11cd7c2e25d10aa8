/**
 * A memory-only cache store for the streamed weight store where there is no file system (edge
 * functions). Unlike `MemoryCacheStore.write`, which gathers the chunks and then copies them into
 * one buffer (twice the cache file at its peak), this keeps the chunks as written and reads across
 * them, so writing the int4 cache never holds more than the cache itself.
 *
 * It extends `MemoryCacheStore`, so the streamed store counts its bytes in `jsBytesHeld()` (the
 * working set) exactly as it does for the library's memory cache.
 *
 * @module
 */
import { type ByteSource, MemoryCacheStore } from "../../mod.ts";

/** The cache file as the list of chunks it was written in. */
class ChunkedSource implements ByteSource {
  readonly #starts: number[] = [];
  readonly #size: number;

  constructor(readonly name: string, private readonly parts: readonly Uint8Array[]) {
    let at = 0;
    for (const p of parts) {
      this.#starts.push(at);
      at += p.byteLength;
    }
    this.#size = at;
  }

  size(): Promise<number> {
    return Promise.resolve(this.#size);
  }

  /** Index of the part holding byte `offset`. */
  #partAt(offset: number): number {
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    const length = target.byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.#size) {
      return Promise.reject(
        new RangeError(`${this.name}: read of ${length} bytes at ${offset} (size ${this.#size})`),
      );
    }
    let done = 0;
    for (let i = this.#partAt(offset); done < length; i++) {
      const part = this.parts[i];
      const from = offset + done - this.#starts[i];
      const n = Math.min(part.byteLength - from, length - done);
      target.set(part.subarray(from, from + n), done);
      done += n;
    }
    return Promise.resolve();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A cache held in JS memory as the chunks it was written in (no whole-file copy). */
export class ChunkedMemoryCacheStore extends MemoryCacheStore {
  readonly #parts = new Map<string, Uint8Array[]>();

  override open(file: string): Promise<ByteSource | null> {
    const parts = this.#parts.get(file);
    return Promise.resolve(parts ? new ChunkedSource(`${this.name}/${file}`, parts) : null);
  }

  override async write(file: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    // Chunks may be views of memory that is reused right after: keep copies.
    for await (const c of chunks) if (c.byteLength > 0) parts.push(c.slice());
    this.#parts.set(file, parts);
  }

  override bytesHeld(): number {
    let n = 0;
    for (const parts of this.#parts.values()) for (const p of parts) n += p.byteLength;
    return n;
  }
}
