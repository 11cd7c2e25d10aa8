/**
 * The run directory (`--out`) and the CLI's other output paths, with Deno file APIs: checked
 * before anything is loaded, locked while a run uses them, and only ever changed in the files a
 * run owns.
 *
 * A run owns, inside its directory: `checkpoint-N/` (and their `.tmp`/`.old` transients), the
 * final `adapter_config.json` + `adapter_model.safetensors`, `loss.svg` and the lock file
 * {@link LOCK_FILE}. Nothing else in the directory is read, moved or removed.
 *
 * @example
 * ```ts
 * import { acquireRunLock, checkWritableDir } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await checkWritableDir(`${dir}/run`, "--out"); // nothing is created
 * const lock = await acquireRunLock(`${dir}/run`);
 * await lock.release();
 * ```
 */
import { FileWriteError, reason } from "./fs.ts";
import { UsageError } from "../cli/usage.ts";

/** The lock file inside a run directory while a run uses it. */
export const LOCK_FILE = ".slimtune.lock";

/** The files a finished run leaves beside its checkpoints. */
export const RUN_OUTPUT_FILES = [
  "adapter_config.json",
  "adapter_model.safetensors",
  "loss.svg",
] as const;

const CHECKPOINT_ENTRY = /^checkpoint-\d+(\.tmp|\.old)?$/;

/** What a path is on disk: missing, a directory, a file, or something else. */
async function kindOf(path: string): Promise<"missing" | "dir" | "file" | "other"> {
  try {
    const s = await Deno.stat(path);
    return s.isDirectory ? "dir" : s.isFile ? "file" : "other";
  } catch (e) {
    // Under a file (ENOTDIR) it does not exist either; the walk up finds the file.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return "missing";
    }
    throw e;
  }
}

function parentOf(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimmed.slice(0, i);
}

/** Creates and removes a probe file in `dir`; a failure names `flag` and `shown`. */
async function probeDir(dir: string, flag: string, shown: string): Promise<void> {
  const probe = `${dir}/.slimtune-probe-${crypto.randomUUID().slice(0, 8)}`;
  try {
    (await Deno.open(probe, { write: true, createNew: true })).close();
  } catch (e) {
    throw new UsageError(flag, `${shown}: cannot write in ${dir} (${reason(e)})`);
  }
  await Deno.remove(probe).catch(() => {});
}

/**
 * Checks that `dir` is, or can become, a directory this process can write, without creating it:
 * an existing path must be a directory and gets a probe file; a missing one is checked at its
 * nearest existing ancestor, which must be a writable directory. Errors name `named` (the path
 * the user gave, when `dir` is its folder).
 */
export async function checkWritableDir(dir: string, flag: string, named = dir): Promise<void> {
  let at = dir;
  for (;;) {
    const kind = await kindOf(at);
    if (kind === "dir") return await probeDir(at, flag, named);
    if (kind !== "missing") {
      throw new UsageError(
        flag,
        at === named
          ? `${named} exists and is not a directory`
          : `${named}: ${at} is not a directory`,
      );
    }
    const up = parentOf(at);
    if (up === at) throw new UsageError(flag, `${named}: no existing parent directory`);
    at = up;
  }
}

/**
 * Checks that `file` can be appended to: an existing path must be a regular file opened for
 * appending (not changed); a missing one needs a writable parent directory.
 */
export async function checkAppendableFile(file: string, flag: string): Promise<void> {
  const kind = await kindOf(file);
  if (kind === "dir") throw new UsageError(flag, `${file} is a directory (expected a file)`);
  if (kind === "other") throw new UsageError(flag, `${file} is not a regular file`);
  if (kind === "file") {
    try {
      (await Deno.open(file, { append: true })).close();
    } catch (e) {
      throw new UsageError(flag, `${file}: cannot append (${reason(e)})`);
    }
    return;
  }
  await checkWritableDir(parentOf(file), flag, file);
}

/** The absolute, symlink-free form of `path` (of its parent when `path` does not exist). */
export async function canonicalPath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    const up = parentOf(path);
    const base = path.replace(/\/+$/, "").slice(up === "." ? 0 : up.length + 1);
    if (up === path) return path;
    return `${await canonicalPath(up)}/${base}`.replace(/\/\/+/g, "/");
  }
}

/** The entries of `dir` that belong to a run (checkpoints and final outputs), sorted. */
export async function runEntries(dir: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (
        CHECKPOINT_ENTRY.test(e.name) || (RUN_OUTPUT_FILES as readonly string[]).includes(e.name)
      ) {
        found.push(e.name);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return found.sort();
}

/** Removes what {@link runEntries} lists (for `--overwrite`); other files stay. */
export async function clearRun(dir: string): Promise<string[]> {
  const entries = await runEntries(dir);
  for (const name of entries) await Deno.remove(`${dir}/${name}`, { recursive: true });
  return entries;
}

/** Checkpoint steps present in `dir` (complete or not), ascending. */
export async function checkpointSteps(dir: string): Promise<number[]> {
  const steps: number[] = [];
  for (const name of await runEntries(dir)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (m) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

/**
 * Keeps the newest `keep` checkpoints of `dir` (`--save-total-limit`); returns the removed
 * directories. `keep` 0 keeps all.
 */
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  if (keep <= 0) return [];
  const steps = await checkpointSteps(dir);
  const removed: string[] = [];
  for (const step of steps.slice(0, Math.max(0, steps.length - keep))) {
    const path = `${dir}/checkpoint-${step}`;
    await Deno.remove(path, { recursive: true });
    removed.push(path);
  }
  return removed;
}

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the run started. */
  started: string;
  /** The process's start time in clock ticks since boot (Linux), to tell a reused pid apart. */
  processStart: string | null;
}

/** The start time of process `pid` (field 22 of /proc/PID/stat), or null where unknown. */
function processStartOf(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** True when `owner` is certainly gone: same host, and no process with its pid and start time. */
function isStale(owner: LockOwner): boolean {
  if (owner.host !== Deno.hostname()) return false;
  if (Deno.build.os !== "linux") return false; // no cheap, harmless liveness check elsewhere
  const now = processStartOf(owner.pid);
  return now === null || (owner.processStart !== null && now !== owner.processStart);
}

/** A held run lock. */
export interface RunLock {
  /** Set when a stale lock of a dead run was taken over. */
  tookOver: LockOwner | null;
  release(): Promise<void>;
}

/**
 * Takes `dir/.slimtune.lock` (creating `dir` if needed). Another live run's lock is a
 * {@link UsageError} naming its pid, host and start; a dead run's lock on this host is taken over.
 */
export async function acquireRunLock(dir: string, flag = "--out"): Promise<RunLock> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new FileWriteError(dir, e);
  }
  const path = `${dir}/${LOCK_FILE}`;
  const me: LockOwner = {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: new Date().toISOString(),
    processStart: processStartOf(Deno.pid),
  };
  const text = JSON.stringify(me) + "\n";
  let tookOver: LockOwner | null = null;
  for (let attempt = 0;; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(text));
      } catch (e) {
        await Deno.remove(path).catch(() => {});
        throw new FileWriteError(path, e);
      } finally {
        f.close();
      }
      break;
    } catch (e) {
      if (e instanceof FileWriteError) throw e;
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt > 0) {
        throw new FileWriteError(path, e);
      }
    }
    let owner: LockOwner | null = null;
    try {
      owner = JSON.parse(await Deno.readTextFile(path));
    } catch {
      // unreadable: treated as held, the user decides
    }
    if (!owner || typeof owner.pid !== "number" || !isStale(owner)) {
      const who = owner
        ? `pid ${owner.pid} on ${owner.host}, started ${owner.started}`
        : "an unreadable lock";
      throw new UsageError(
        flag,
        `${dir} is in use by another run (${who}); wait for it, use another --out, or remove ` +
          `${path} if that run is gone`,
      );
    }
    tookOver = owner;
    await Deno.remove(path);
  }
  return {
    tookOver,
    release: async () => {
      // Only our own lock: a run that lost it (removed by hand) must not remove another's.
      const now = await Deno.readTextFile(path).catch(() => "");
      if (now === text) await Deno.remove(path).catch(() => {});
    },
  };
}
