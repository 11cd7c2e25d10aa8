/**
 * Portable working-set accounting (docs/design.md, "Memory").
 *
 * - working set = high-water of every WebAssembly memory the trainer owns (the arenas' highest
 *   top: linear memory never shrinks, and pages above the high-water were never touched) + the
 *   bytes of JS ArrayBuffers the trainer holds (weights, checkpoints, optimizer-state copies).
 * - process peak = the operating system's high-water mark for the whole process, when the host
 *   can tell (VmHWM on Linux through `src/deno/process_memory.ts`), else null.
 *
 * Runs anywhere: the process reader is injected, nothing here touches the file system.
 *
 * @example
 * ```ts
 * import { Arena } from "./arena.ts";
 * import { formatMemoryReport, memoryReport } from "./memory.ts";
 * const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), 1024);
 * arena.alloc(1 << 20);
 * console.log(formatMemoryReport(memoryReport({ arenas: arena, jsBytesHeld: 4096 })));
 * ```
 */

/** What the report needs from an arena (`Arena` satisfies it). */
export interface ArenaUsage {
  /** Highest byte offset ever in use. */
  readonly highWater: number;
  /** Bytes of linear memory committed. */
  readonly committed: number;
}

/** One memory measurement, all in bytes. */
export interface MemoryReport {
  /** Sum over the arenas of their high-water marks. */
  wasmHighWaterBytes: number;
  /** Sum over the arenas of the linear memory committed (≥ the high-water; page granular). */
  wasmCommittedBytes: number;
  /** Bytes of JS ArrayBuffers the trainer holds outside linear memory. */
  jsBytesHeld: number;
  /** `wasmHighWaterBytes + jsBytesHeld`: what the trainer itself needed. */
  workingSetBytes: number;
  /** Whole-process peak from the OS, or null where the host cannot tell. */
  processPeakBytes: number | null;
}

/** Reads the whole-process peak in bytes, or null where unavailable. */
export type ProcessPeakReader = () => number | null;

/** Inputs of {@link memoryReport}. */
export interface MemoryReportInput {
  /** Every arena (one per WebAssembly memory) the trainer owns. */
  arenas: ArenaUsage | readonly ArenaUsage[];
  /** JS bytes held (e.g. `WeightStore.jsBytesHeld()` + a {@link JsBytesLedger} total). */
  jsBytesHeld?: number;
  /** Optional process-peak reader, e.g. `processPeakBytes` from `src/deno/process_memory.ts`. */
  processPeak?: ProcessPeakReader;
}

/** Builds a report from the arenas, the JS bytes held and an optional process-peak reader. */
export function memoryReport(input: MemoryReportInput): MemoryReport {
  const arenas: readonly ArenaUsage[] = Array.isArray(input.arenas)
    ? input.arenas
    : [input.arenas as ArenaUsage];
  let high = 0, committed = 0;
  for (const a of arenas) {
    high += a.highWater;
    committed += a.committed;
  }
  const js = input.jsBytesHeld ?? 0;
  if (!Number.isFinite(js) || js < 0) throw new RangeError(`bad jsBytesHeld ${js}`);
  return {
    wasmHighWaterBytes: high,
    wasmCommittedBytes: committed,
    jsBytesHeld: js,
    workingSetBytes: high + js,
    processPeakBytes: input.processPeak ? input.processPeak() : null,
  };
}

/** Bytes per MB in every printed figure (2^20, the unit OS memory tools print as "MB"). */
export const BYTES_PER_MB = 1 << 20;

/** `bytes` as MB with one decimal, e.g. "136.2 MB"; "n/a" for null. */
export function formatMB(bytes: number | null): string {
  return bytes === null ? "n/a" : `${(bytes / BYTES_PER_MB).toFixed(1)} MB`;
}

/** One line for logs, e.g. "working set 136.2 MB (wasm high-water 120.0 MB, committed …". */
export function formatMemoryReport(r: MemoryReport): string {
  return `working set ${formatMB(r.workingSetBytes)} ` +
    `(wasm high-water ${formatMB(r.wasmHighWaterBytes)}, ` +
    `committed ${formatMB(r.wasmCommittedBytes)}; JS held ${formatMB(r.jsBytesHeld)}), ` +
    `process peak ${formatMB(r.processPeakBytes)}`;
}

/**
 * A labelled tally of JS buffers the trainer holds (checkpoint copies, state exports, …), so the
 * report's `jsBytesHeld` is bookkeeping rather than a guess. Tracks the current total and its
 * peak.
 */
export class JsBytesLedger {
  readonly #held = new Map<string, number>();
  #total = 0;
  #peak = 0;

  /** Records `bytes` (a number or a buffer/view) under `label`, replacing an earlier entry. */
  hold(label: string, bytes: number | ArrayBufferLike | ArrayBufferView): void {
    const n = typeof bytes === "number" ? bytes : bytes.byteLength;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad byte count ${n}`);
    this.#total += n - (this.#held.get(label) ?? 0);
    this.#held.set(label, n);
    if (this.#total > this.#peak) this.#peak = this.#total;
  }

  /** Forgets `label` (no-op when absent). */
  release(label: string): void {
    this.#total -= this.#held.get(label) ?? 0;
    this.#held.delete(label);
  }

  /** Bytes held now. */
  get total(): number {
    return this.#total;
  }

  /** Most bytes ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Current entries, label -> bytes. */
  entries(): Map<string, number> {
    return new Map(this.#held);
  }
}
