/**
 * Random-access byte sources: the one interface every checkpoint reader goes through, so the same
 * code loads from a local file (`src/deno/file_source.ts`), an HTTP(S) URL with Range requests
 * (`http_source.ts`), a browser `Blob`/`File`, or bytes already in memory.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./byte_source.ts";
 * const src = new MemorySource("x.bin", new Uint8Array([1, 2, 3, 4]));
 * await src.read(1, 2); // Uint8Array [2, 3]
 * ```
 */

/** A readable, seekable sequence of bytes with a known size. */
export interface ByteSource {
  /** Shown in error messages (file path, URL, blob name). */
  readonly name: string;
  /** Total size in bytes. */
  size(): Promise<number>;
  /**
   * Exactly `length` bytes starting at `offset`; rejects when fewer exist. The result may be a
   * view of the source's own buffer (in-memory sources): treat it as read-only.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: reads `target.length` bytes at `offset` straight into `target` (e.g. an arena view),
   * saving the intermediate buffer.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /**
   * Optional: a cheap string that changes when the bytes change (file size + mtime + inode, an
   * HTTP ETag, ...), used to key caches derived from the bytes; null when the source has none.
   * Callers without one fall back to hashing samples of the bytes (`cache_identity.ts`).
   */
  identity?(): Promise<string | null>;
  close(): Promise<void>;
}

/** Reads `target.length` bytes at `offset` into `target`, directly when the source can. */
export async function readInto(
  source: ByteSource,
  offset: number,
  target: Uint8Array,
): Promise<void> {
  if (source.readInto) return await source.readInto(offset, target);
  target.set(await source.read(offset, target.length));
}

/** Throws a RangeError naming `name` when `[offset, offset + length)` is not a valid range. */
export function checkRange(name: string, offset: number, length: number, size?: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`${name}: bad read range offset ${offset}, length ${length}`);
  }
  if (size !== undefined && offset + length > size) {
    throw new RangeError(
      `${name}: read of ${length} bytes at ${offset} goes past the end (size ${size})`,
    );
  }
}

/** Bytes already in memory. No {@link ByteSource.identity}: nothing says when they changed. */
export class MemorySource implements ByteSource {
  constructor(readonly name: string, private readonly bytes: Uint8Array) {}

  size(): Promise<number> {
    return Promise.resolve(this.bytes.byteLength);
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    try {
      checkRange(this.name, offset, length, this.bytes.byteLength);
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve(this.bytes.subarray(offset, offset + length));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A `Blob` or `File` (browsers, Deno): each read slices the blob, so nothing else is loaded. */
export class BlobSource implements ByteSource {
  readonly name: string;

  constructor(private readonly blob: Blob, name?: string) {
    this.name = name ?? ((blob as File).name || "blob");
  }

  size(): Promise<number> {
    return Promise.resolve(this.blob.size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, offset, length, this.blob.size);
    const bytes = new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
    if (bytes.byteLength !== length) {
      throw new RangeError(`${this.name}: blob gave ${bytes.byteLength} of ${length} bytes`);
    }
    return bytes;
  }

  /**
   * A `File`'s name, size and `lastModified`; null for a plain `Blob`, which carries no date.
   * A File built in memory without a `lastModified` gets the current time, so it never matches
   * an earlier run's identity: a cache keyed by it is rebuilt, not served stale.
   */
  identity(): Promise<string | null> {
    const blob = this.blob;
    if (typeof File === "undefined" || !(blob instanceof File)) return Promise.resolve(null);
    return Promise.resolve(
      `blob-file ${JSON.stringify([blob.name, blob.size, blob.lastModified])}`,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
