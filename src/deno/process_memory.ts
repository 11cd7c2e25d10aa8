/**
 * Whole-process memory figures under Deno: VmHWM (peak resident set) and VmRSS from
 * `/proc/self/status` on Linux. Elsewhere, or without read permission, the figures are null and
 * `reason` says why. Plugs into `memory.ts` as its `ProcessPeakReader`.
 *
 * @example
 * ```ts
 * import { processPeakBytes, readProcessMemory } from "./process_memory.ts";
 * const m = readProcessMemory();
 * console.log(m.peakBytes ?? m.reason, processPeakBytes());
 * ```
 */

/** Resident-memory figures of this process, in bytes. */
export interface ProcessMemory {
  /** VmHWM: peak resident set size since start (or since the last reset). */
  peakBytes: number | null;
  /** VmRSS: resident set size now. */
  rssBytes: number | null;
  /** Why the figures are null, when they are. */
  reason?: string;
}

/** Extracts VmHWM / VmRSS (reported in kB) from the text of a `/proc/<pid>/status` file. */
export function parseProcStatus(
  text: string,
): { peakBytes: number | null; rssBytes: number | null } {
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s*(\\d+)\\s*kB\\s*$`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  return { peakBytes: field("VmHWM"), rssBytes: field("VmRSS") };
}

/** Reads this process's peak and current resident memory. */
export function readProcessMemory(): ProcessMemory {
  if (Deno.build.os !== "linux") {
    return { peakBytes: null, rssBytes: null, reason: `no /proc on ${Deno.build.os}` };
  }
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/status");
  } catch (e) {
    return {
      peakBytes: null,
      rssBytes: null,
      reason: `cannot read /proc/self/status: ${e instanceof Error ? e.message : e}`,
    };
  }
  const parsed = parseProcStatus(text);
  if (parsed.peakBytes === null || parsed.rssBytes === null) {
    return { ...parsed, reason: "VmHWM/VmRSS missing from /proc/self/status" };
  }
  return parsed;
}

/** The process peak in bytes, or null (a `ProcessPeakReader` for `memoryReport`). */
export function processPeakBytes(): number | null {
  return readProcessMemory().peakBytes;
}

/**
 * Resets VmHWM to the current resident size (Linux ≥ 4.0: writing "5" to
 * `/proc/self/clear_refs`), so a benchmark can measure one phase's peak. Returns false where
 * that is not possible (other OS, no write permission, older kernel).
 */
export function resetProcessPeak(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}
