/**
 * `--checkpoints disk`: the block-input checkpoints of mebp, mesp and lcsb kept in a scratch file
 * instead of the wasm arena (a {@link CheckpointSpill}). Block i's input goes to offset
 * i × (its bytes) in the forward and is read back just before block i's backward; the page cache
 * usually serves both, and it is not process memory.
 *
 * The file is created in the cache folder under a name no other process uses, and unlinked at
 * once where the platform allows (POSIX): it then occupies disk only while this process holds it
 * open, and is gone however the process ends, a kill included. Elsewhere `close` removes it.
 *
 * @example
 * ```ts
 * import { openCheckpointSpill } from "./checkpoint_spill.ts";
 * await using spill = await openCheckpointSpill(await Deno.makeTempDir());
 * await spill.save(1, new Float32Array([1, 2, 3]));
 * const back = new Float32Array(3);
 * await spill.load(1, back);
 * console.log(back); // Float32Array(3) [ 1, 2, 3 ]
 * ```
 */
import type { CheckpointSpill } from "../methods/block_checkpoints.ts";
import { reason } from "./fs.ts";

/** The scratch file failed: the message names its path and what went wrong. */
export class CheckpointSpillError extends Error {
  constructor(readonly path: string, what: string, cause?: unknown) {
    super(
      `checkpoint scratch file ${path}: ${what}${cause === undefined ? "" : `: ${reason(cause)}`}` +
        " (--checkpoints memory keeps them in memory instead)",
      { cause },
    );
    this.name = "CheckpointSpillError";
  }
}

/** Creates a scratch file for the checkpoints in `dir` (created if missing). */
export async function openCheckpointSpill(dir: string): Promise<CheckpointSpillFile> {
  const root = dir.replace(/\/+$/, "") || "/";
  const path = `${root}/.checkpoints-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.f32`;
  let file: Deno.FsFile;
  try {
    await Deno.mkdir(root, { recursive: true });
    file = await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o600 });
  } catch (e) {
    throw new CheckpointSpillError(path, "cannot create it", e);
  }
  let linked = true;
  try {
    await Deno.remove(path);
    linked = false;
  } catch {
    // An open file cannot be removed here (Windows): close() removes it.
  }
  return new CheckpointSpillFile(path, file, linked);
}

/** A scratch file of block checkpoints; create with {@link openCheckpointSpill}. */
export class CheckpointSpillFile implements CheckpointSpill, AsyncDisposable {
  #closed = false;

  constructor(
    readonly path: string,
    private readonly file: Deno.FsFile,
    /** Whether the path still names the file (it could not be unlinked while open). */
    private readonly linked: boolean,
  ) {}

  async save(block: number, input: Float32Array): Promise<void> {
    this.#check();
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    try {
      await this.file.seek(block * bytes.byteLength, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.byteLength) done += await this.file.write(bytes.subarray(done));
    } catch (e) {
      throw new CheckpointSpillError(this.path, `cannot write block ${block}'s input`, e);
    }
  }

  async load(block: number, into: Float32Array): Promise<void> {
    this.#check();
    const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
    let got = 0;
    try {
      await this.file.seek(block * bytes.byteLength, Deno.SeekMode.Start);
      while (got < bytes.byteLength) {
        const n = await this.file.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
    } catch (e) {
      throw new CheckpointSpillError(this.path, `cannot read block ${block}'s input`, e);
    }
    if (got < bytes.byteLength) {
      throw new CheckpointSpillError(
        this.path,
        `block ${block}'s input ends after ${got} of ${bytes.byteLength} bytes (changed by another program?)`,
      );
    }
  }

  /** Closes the file (and removes it where it could not be unlinked while open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.file.close();
    if (this.linked) await Deno.remove(this.path).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(): void {
    if (this.#closed) throw new CheckpointSpillError(this.path, "used after close");
  }
}
