/**
 * Deadlines for every wait of the tests and harness scripts on another process, a port or a
 * promise: a wait that never ends takes the whole suite with it, so each one here ends by its
 * deadline with an error naming what did not answer.
 *
 * - {@link withDeadline}: a promise, or an error once its time has passed;
 * - {@link spawnWithDeadline} / {@link runWithDeadline}: a child process whose stdout and stderr
 *   are read as they come (a chatty child never blocks on a full pipe) and which, past its
 *   deadline, gets SIGTERM, then SIGKILL {@link KILL_GRACE_MS} later, and fails naming the
 *   command, what was waited for, and its last lines of output;
 * - {@link waitUntil}: polls a condition (a file appears, a port answers) to a deadline, failing
 *   early when the child it waits on has exited;
 * - {@link freePort}: a local TCP port that is free when chosen.
 *
 * @module
 */

/** Milliseconds between SIGTERM and SIGKILL of a child past its deadline or being stopped. */
export const KILL_GRACE_MS = 5_000;

/** How many of a child's last output lines an error quotes, from each of stdout and stderr. */
const TAIL_LINES = 20;

/** `p`, or an error naming `what` once `ms` have passed. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A TCP port on 127.0.0.1 that was free when chosen (not held: bind it soon). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Options of {@link spawnWithDeadline} and {@link runWithDeadline}. */
export interface DeadlineOptions {
  /** The child's whole life, from spawn to exit, in milliseconds. */
  timeoutMs: number;
  /** What the wait is for, in the error message (default: the command line). */
  what?: string;
  cwd?: string;
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** Written to the child's stdin, which is then closed; without it stdin is null. */
  stdin?: string | Uint8Array;
}

/** How a child ended and everything it wrote. */
export interface ProcessResult {
  pid: number;
  success: boolean;
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** The last `n` non-empty lines of `text`, indented, or "(nothing)". */
function tail(text: string, n = TAIL_LINES): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return "(nothing)";
  const kept = lines.slice(-n).map((l) => `  ${l}`).join("\n");
  return lines.length > n ? `  [${lines.length - n} lines before]\n${kept}` : kept;
}

/** Reads `stream` to its end into `sink`; `stop()` ends the reading early. */
function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        sink(decoder.decode(value, { stream: true }));
      }
    } catch {
      // cancelled by stop(), or the pipe broke: what was read is kept
    }
    sink(decoder.decode());
  })();
  return { done, stop: () => reader.cancel().catch(() => {}) };
}

/**
 * A child process under a deadline (see {@link spawnWithDeadline}). Its output so far is readable
 * at any time; {@link SpawnedProcess.result} waits for its end, bounded by the deadline.
 */
export class SpawnedProcess {
  /** What is waited for, as the errors name it. */
  readonly what: string;
  readonly pid: number;
  readonly #commandLine: string;
  readonly #timeoutMs: number;
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  #status: Deno.CommandStatus | null = null;
  #signalsSent: Deno.Signal[] = [];
  #timedOut = false;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #killTimer: ReturnType<typeof setTimeout> | undefined;
  #stuckTimer: ReturnType<typeof setTimeout> | undefined;
  #stuck: () => void = () => {};
  /** Settles once the child has exited and its pipes are read; never rejects. */
  readonly #ended: Promise<"exited" | "stuck">;

  constructor(command: string, args: string[], o: DeadlineOptions) {
    this.#commandLine = [command, ...args].join(" ");
    this.what = o.what ?? this.#commandLine;
    this.#timeoutMs = o.timeoutMs;
    this.#child = new Deno.Command(command, {
      args,
      cwd: o.cwd,
      env: o.env,
      clearEnv: o.clearEnv,
      stdin: o.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    const out = drain(this.#child.stdout, (t) => this.#stdout += t);
    const err = drain(this.#child.stderr, (t) => this.#stderr += t);
    if (o.stdin !== undefined) {
      const bytes = typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin;
      const w = this.#child.stdin.getWriter();
      // A child that exits without reading its input breaks the pipe: that is its answer.
      w.write(bytes).then(() => w.close()).catch(() => {});
    }
    this.#deadlineTimer = setTimeout(() => {
      this.#timedOut = true;
      this.#terminate();
    }, o.timeoutMs);
    const status = this.#child.status.then((s) => {
      this.#status = s;
      clearTimeout(this.#deadlineTimer);
      clearTimeout(this.#killTimer);
      clearTimeout(this.#stuckTimer);
      return s;
    });
    // Past the deadline, a child that even SIGKILL does not end is left: the error says so.
    const stuck = new Promise<"stuck">((resolve) => this.#stuck = () => resolve("stuck"));
    this.#ended = (async () => {
      if (await Promise.race([status.then(() => "exited" as const), stuck]) === "stuck") {
        out.stop();
        err.stop();
        return "stuck";
      }
      // A grandchild can hold the pipes open after the child is gone: read what is there.
      let graceTimer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((r) => graceTimer = setTimeout(r, KILL_GRACE_MS));
      await Promise.race([Promise.all([out.done, err.done]), grace]);
      clearTimeout(graceTimer);
      out.stop();
      err.stop();
      await Promise.all([out.done, err.done]);
      return "exited";
    })();
  }

  /** What the child has written to stdout so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** What the child has written to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Whether the child has exited. */
  get exited(): boolean {
    return this.#status !== null;
  }

  /** Sends `signal` to the child, unless it has exited. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#status !== null) return;
    try {
      this.#child.kill(signal);
      this.#signalsSent.push(signal);
    } catch {
      // exited meanwhile
    }
  }

  /** SIGTERM now, SIGKILL after {@link KILL_GRACE_MS} unless it has exited. */
  #terminate(): void {
    this.kill("SIGTERM");
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => {
      this.kill("SIGKILL");
      this.#stuckTimer = setTimeout(this.#stuck, KILL_GRACE_MS);
    }, KILL_GRACE_MS);
  }

  /** The command line and the child's last output, for error messages. */
  describe(): string {
    return `${this.#commandLine}\n stderr:\n${tail(this.#stderr)}\n stdout:\n${tail(this.#stdout)}`;
  }

  /**
   * The child's exit and whole output. Past the deadline the child is stopped (SIGTERM, then
   * SIGKILL) and this rejects, naming what was waited for and quoting the child's last lines.
   */
  async result(): Promise<ProcessResult> {
    const ended = await this.#ended;
    if (ended === "stuck" || this.#timedOut) {
      const signals = this.#signalsSent.length > 0 ? this.#signalsSent.join(", then ") : "none";
      const end = ended === "stuck"
        ? "it did not exit even then"
        : `it then ended (${this.#status!.signal ?? `code ${this.#status!.code}`})`;
      throw new Error(
        `${this.what}: no answer within ${this.#timeoutMs / 1000} s; sent ${signals}; ${end}. ` +
          `Command: ${this.describe()}`,
      );
    }
    const s = this.#status!;
    return {
      pid: this.pid,
      success: s.success,
      code: s.code,
      signal: s.signal,
      stdout: this.#stdout,
      stderr: this.#stderr,
    };
  }

  /** Stops the child on purpose (SIGTERM, then SIGKILL) and returns its result. */
  stop(): Promise<ProcessResult> {
    if (this.#status === null) this.#terminate();
    return this.result();
  }
}

/**
 * Starts `command` with `args`; the child's whole life is bounded by `o.timeoutMs` (see
 * {@link SpawnedProcess.result}). Its stdout and stderr are always piped and read.
 */
export function spawnWithDeadline(
  command: string,
  args: string[],
  o: DeadlineOptions,
): SpawnedProcess {
  return new SpawnedProcess(command, args, o);
}

/**
 * Runs `command` to its end under `o.timeoutMs` and returns its exit and output; rejects (never
 * throws) when the command cannot start, e.g. `Deno.errors.NotFound`.
 */
export async function runWithDeadline(
  command: string,
  args: string[],
  o: DeadlineOptions,
): Promise<ProcessResult> {
  return await spawnWithDeadline(command, args, o).result();
}

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  timeoutMs: number;
  /** What is waited for, in the error message. */
  what: string;
  /** Milliseconds between checks (default 50). */
  intervalMs?: number;
  /**
   * The child whose work the condition waits for: its exit fails the wait at once, and a wait
   * that fails stops it, both quoting its last output.
   */
  child?: SpawnedProcess;
}

/** Resolves once `check()` is true; fails by the deadline, or when `o.child` exits first. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  o: WaitUntilOptions,
): Promise<void> {
  const by = performance.now() + o.timeoutMs;
  for (;;) {
    // The exit is read before the check: a child that did the work and exited still counts.
    const exited = o.child?.exited ?? false;
    if (await check()) return;
    let why: string | null = null;
    if (exited) why = `${o.child!.what} exited first`;
    else if (performance.now() > by) why = `not seen within ${o.timeoutMs / 1000} s`;
    if (why !== null) {
      if (o.child === undefined) throw new Error(`${o.what}: ${why}`);
      await o.child.stop().catch(() => {});
      throw new Error(`${o.what}: ${why}. Command: ${o.child.describe()}`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
}
