/**
 * A local file as a {@link ByteSource} (Deno). Reads are positioned (seek + read) and serialized,
 * so concurrent callers never interleave on the shared file cursor.
 *
 * @example
 * ```ts
 * import { openFileSource } from "./file_source.ts";
 * const src = await openFileSource("model.safetensors");
 * const lengthPrefix = await src.read(0, 8);
 * await src.close();
 * ```
 */
import { type ByteSource, checkRange } from "../io/byte_source.ts";

/** Opens `path` for reading. */
export async function openFileSource(path: string): Promise<FileSource> {
  const file = await Deno.open(path, { read: true });
  try {
    const { size } = await file.stat();
    return new FileSource(path, file, size);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** A local file; create with {@link openFileSource}. */
export class FileSource implements ByteSource {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly name: string,
    private readonly file: Deno.FsFile,
    private fileSize: number,
  ) {}

  size(): Promise<number> {
    return Promise.resolve(this.fileSize);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  readInto(offset: number, target: Uint8Array): Promise<void> {
    const run = this.queue.then(() => this.readNow(offset, target));
    this.queue = run.catch(() => {});
    return run;
  }

  private async readNow(offset: number, target: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`${this.name}: read after close`);
    checkRange(this.name, offset, target.length, this.fileSize);
    await this.file.seek(offset, Deno.SeekMode.Start);
    // Straight into the target, shared (threads) memory included: no bounce buffer to hold.
    let got = 0;
    while (got < target.length) {
      const n = await this.file.read(target.subarray(got));
      if (n === null) throw this.shortRead(offset + got);
      got += n;
    }
  }

  /**
   * Size, mtime (ms), device and inode of the open file, or null when the platform reports no
   * mtime. A rewrite in place changes the mtime; a replacement by rename (atomic writers,
   * downloads, a Hugging Face cache symlink moved to a new blob) also changes the inode, even
   * within the same millisecond. Where the platform has no inode the path stands in for it, so
   * two different files never share an identity. ctime is left out on purpose: metadata-only
   * changes (chmod/chown of a model directory at container start) would otherwise throw away a
   * valid cache on every run.
   */
  identity(): Promise<string | null> {
    // Through the queue, so it never races close() on the same handle.
    const run = this.queue.then(async () => {
      if (this.closed) throw new Error(`${this.name}: identity after close`);
      const info = await this.file.stat();
      if (!info.mtime) return null;
      const where = info.ino === null ? this.name : info.ino;
      return `local-file ${JSON.stringify([info.size, info.mtime.getTime(), info.dev, where])}`;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private shortRead(at: number): RangeError {
    return new RangeError(
      `${this.name}: unexpected end of file at byte ${at} (file changed on disk?)`,
    );
  }

  async close(): Promise<void> {
    await this.queue;
    if (!this.closed) {
      this.closed = true;
      this.file.close();
    }
  }
}
