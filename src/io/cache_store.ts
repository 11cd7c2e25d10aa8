/**
 * Where a streamed weight store keeps its per-layer int4 cache file. Portable interface; the Deno
 * directory implementation (atomic writes) is in `src/deno/cache_store.ts`.
 */
import { type ByteSource, MemorySource } from "./byte_source.ts";

/** A place to keep derived files by name. */
export interface CacheStore {
  readonly name: string;
  /** The file `file`, or null when it does not exist. */
  open(file: string): Promise<ByteSource | null>;
  /** Writes `file` atomically from chunks (readers never see a partial file). */
  write(file: string, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * A cache held in JS memory (tests, or runtimes with no file system). It holds the whole cache
 * file, so it saves no memory; {@link MemoryCacheStore.bytesHeld} reports how much.
 */
export class MemoryCacheStore implements CacheStore {
  readonly name: string = "memory-cache";
  readonly files: Map<string, Uint8Array> = new Map();

  open(file: string): Promise<ByteSource | null> {
    const bytes = this.files.get(file);
    return Promise.resolve(bytes ? new MemorySource(`${this.name}/${file}`, bytes) : null);
  }

  async write(file: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const c of chunks) {
      parts.push(c.slice()); // chunks may be views of memory that is reused right after
      total += c.byteLength;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    this.files.set(file, out);
  }

  /** Bytes of every file held. */
  bytesHeld(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.byteLength;
    return n;
  }
}
