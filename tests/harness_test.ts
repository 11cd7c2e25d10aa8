/**
 * The deadline harness of `scripts/harness.ts` on real children (`sh`): one that exits is
 * returned with its output; one that sleeps for ever is stopped by SIGTERM at its deadline and
 * named with its last output; one that ignores SIGTERM gets SIGKILL; a chatty one cannot block on
 * a full pipe; a grandchild holding the pipes does not hold the wait.
 */
import assert from "node:assert/strict";
import { denoBundle, isEsbuildInstallRace } from "../scripts/deno_bundle.ts";
import {
  freePort,
  KILL_GRACE_MS,
  runWithDeadline,
  spawnWithDeadline,
  waitUntil,
  withDeadline,
} from "../scripts/harness.ts";

/** Enough for `sh` to start and exit on a loaded machine; the deadline cases use far less. */
const SHELL_DEADLINE_MS = 60_000;

const sh = (script: string) => ["-c", script];

Deno.test("harness: a child that exits is returned with its code and whole output", async () => {
  const r = await runWithDeadline("sh", sh("echo out; echo err >&2; exit 3"), {
    timeoutMs: SHELL_DEADLINE_MS,
  });
  assert.equal(r.code, 3);
  assert.equal(r.success, false);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  assert.ok(r.pid > 0);
});

Deno.test("harness: stdin is written and closed; cwd and env reach the child", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runWithDeadline("sh", sh('cat; echo; pwd; echo "$HARNESS_PROBE"'), {
      timeoutMs: SHELL_DEADLINE_MS,
      stdin: "hello",
      cwd: dir,
      env: { HARNESS_PROBE: "probe value" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello\n${await Deno.realPath(dir)}\nprobe value\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("harness: a child that sleeps for ever is stopped at its deadline and named", async () => {
  const child = spawnWithDeadline("sh", sh("echo started; echo warming up >&2; exec sleep 1000"), {
    timeoutMs: 500,
    what: "the sleeper",
  });
  const e = await child.result().then(() => null, (e: Error) => e);
  assert.ok(e !== null, "a child past its deadline is an error");
  assert.match(e.message, /^the sleeper: no answer within 0\.5 s; sent SIGTERM; /);
  assert.match(e.message, /it then ended \(SIGTERM\)/);
  assert.match(e.message, /sh -c echo started/);
  assert.match(e.message, /stderr:\n {2}warming up\n stdout:\n {2}started$/);
  assert.ok(child.exited);
});

Deno.test("harness: a child that ignores SIGTERM gets SIGKILL after the grace period", async () => {
  const t0 = performance.now();
  const child = spawnWithDeadline(
    "sh",
    sh('trap "" TERM; echo ready; while :; do sleep 0.1; done'),
    { timeoutMs: 1_000, what: "the stubborn one" },
  );
  await waitUntil(() => child.stdout.includes("ready"), {
    timeoutMs: SHELL_DEADLINE_MS,
    what: "the stubborn one's trap",
    child,
  });
  const e = await child.result().then(() => null, (e: Error) => e);
  assert.ok(e !== null);
  assert.match(e.message, /^the stubborn one: no answer within 1 s; sent SIGTERM, then SIGKILL; /);
  assert.match(e.message, /it then ended \(SIGKILL\)/);
  assert.ok(performance.now() - t0 >= 1_000 + KILL_GRACE_MS - 100, "SIGKILL came before the grace");
});

Deno.test("harness: a chatty child is read as it writes, so it never blocks on a full pipe", async () => {
  // 4 MB to each pipe, far past a pipe's 64 KB buffer: the child exits only if both are read.
  const MB4 = 4_000_000;
  const r = await runWithDeadline(
    "sh",
    sh(
      `head -c ${MB4} /dev/zero | tr '\\0' a; head -c ${MB4} /dev/zero | tr '\\0' b >&2; ` +
        `head -c ${MB4} /dev/zero | tr '\\0' c`,
    ),
    { timeoutMs: SHELL_DEADLINE_MS, what: "the chatty child" },
  );
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, 2 * MB4);
  assert.equal(r.stdout.slice(MB4 - 1, MB4 + 1), "ac");
  assert.equal(r.stderr, "b".repeat(MB4));
});

Deno.test("harness: a grandchild that keeps the pipes open does not hold the wait", async () => {
  const t0 = performance.now();
  // The shell exits at once; its background sleep keeps stdout open a few seconds longer.
  const r = await runWithDeadline("sh", sh(`sleep ${KILL_GRACE_MS / 1000 + 3} & echo hi`), {
    timeoutMs: SHELL_DEADLINE_MS,
  });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "hi\n");
  const took = performance.now() - t0;
  assert.ok(took < KILL_GRACE_MS + 2_500, `the wait took ${took} ms`);
});

Deno.test("harness: stop() ends a child on purpose and returns its result", async () => {
  const child = spawnWithDeadline("sh", sh("echo up; exec sleep 1000"), {
    timeoutMs: SHELL_DEADLINE_MS,
  });
  await waitUntil(() => child.stdout === "up\n", {
    timeoutMs: SHELL_DEADLINE_MS,
    what: "the sleeper's first line",
    child,
  });
  const r = await child.stop();
  assert.equal(r.signal, "SIGTERM");
  assert.equal(r.stdout, "up\n");
});

Deno.test("harness: a signal sent by the test is the child's answer, not a timeout", async () => {
  const child = spawnWithDeadline("sh", sh("exec sleep 1000"), { timeoutMs: SHELL_DEADLINE_MS });
  child.kill("SIGKILL");
  const r = await child.result();
  assert.equal(r.signal, "SIGKILL");
  child.kill("SIGTERM"); // after the exit: nothing to signal, no error
});

Deno.test("harness: waitUntil fails when the child exits first, and stops it when it times out", async () => {
  const quitter = spawnWithDeadline("sh", sh("echo bye >&2; exit 4"), {
    timeoutMs: SHELL_DEADLINE_MS,
    what: "the quitter",
  });
  await assert.rejects(
    waitUntil(() => false, { timeoutMs: SHELL_DEADLINE_MS, what: "a file", child: quitter }),
    /^Error: a file: the quitter exited first\. Command: sh -c .*\n stderr:\n {2}bye\n/,
  );
  const sleeper = spawnWithDeadline("sh", sh("exec sleep 1000"), {
    timeoutMs: SHELL_DEADLINE_MS,
  });
  await assert.rejects(
    waitUntil(() => false, { timeoutMs: 200, what: "a line", child: sleeper }),
    /^Error: a line: not seen within 0\.2 s\. Command: sh -c exec sleep 1000/,
  );
  assert.ok(sleeper.exited, "the wait stopped the child it waited on");
  await assert.rejects(waitUntil(() => false, { timeoutMs: 100, what: "nothing" }), {
    message: "nothing: not seen within 0.1 s",
  });
  let n = 0;
  await waitUntil(() => ++n === 3, { timeoutMs: SHELL_DEADLINE_MS, what: "three", intervalMs: 1 });
  assert.equal(n, 3);
});

Deno.test("harness: withDeadline passes an answer through and names what is late", async () => {
  assert.equal(await withDeadline(Promise.resolve(7), 1_000, "seven"), 7);
  await assert.rejects(withDeadline(new Promise(() => {}), 50, "the silent one"), {
    message: "the silent one: no answer within 0.05 s",
  });
});

Deno.test("harness: freePort gives a port that can be listened on", () => {
  const port = freePort();
  assert.ok(port > 0 && port < 65536);
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  l.close();
});

Deno.test("harness: a command that cannot start is a rejection, not a throw", async () => {
  const p = runWithDeadline("/nonexistent/harness-probe", [], { timeoutMs: SHELL_DEADLINE_MS });
  await assert.rejects(p, Deno.errors.NotFound);
});

Deno.test("deno bundle: only the esbuild install race is tried again; a broken entry fails at once with deno's words", async () => {
  const raceText = "error: failed to copy esbuild binary from /root/.cache/deno/npm/registry." +
    "npmjs.org/@esbuild/linux-x64/0.25.5/bin/esbuild to /root/.cache/deno/dl/esbuild-0.25.5-1/" +
    ".esbuild-30551.tmp\n\nCaused by:\n    No such file or directory (os error 2)";
  assert.ok(isEsbuildInstallRace(raceText));
  assert.ok(!isEsbuildInstallRace('error: Module not found "file:///x/missing.ts".'));
  const dir = await Deno.makeTempDir({ prefix: "slimtune-bundle-" });
  try {
    await Deno.writeTextFile(`${dir}/ok.ts`, 'export const s: string = "slimtune-bundled";\n');
    await denoBundle(`${dir}/ok.ts`, `${dir}/ok.js`, { cwd: dir, timeoutMs: 180_000 });
    assert.ok((await Deno.readTextFile(`${dir}/ok.js`)).includes("slimtune-bundled"));
    await Deno.writeTextFile(`${dir}/bad.ts`, 'import "./missing.ts";\n');
    const t0 = performance.now();
    await assert.rejects(
      denoBundle(`${dir}/bad.ts`, `${dir}/bad.js`, { cwd: dir, timeoutMs: 180_000 }),
      (e: Error) => /deno bundle .*bad\.ts failed:\n[^]*missing\.ts/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 60_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
