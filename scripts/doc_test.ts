/**
 * Runs every `@example` of the published modules (`mod.ts` and everything it imports) with
 * `deno test --doc`: each example is type-checked and evaluated, so the documentation cannot drift
 * from the code. `.ci/run` calls it; exits with deno's status.
 *
 *   deno run -A scripts/doc_test.ts
 */
const ROOT = new URL("..", import.meta.url).pathname;
const DEADLINE_MS = 5 * 60_000;

async function deno(args: string[], stdout: "piped" | "inherit"): Promise<Deno.CommandOutput> {
  return await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout,
    stderr: "inherit",
    signal: AbortSignal.timeout(DEADLINE_MS),
  }).output().catch((e) => {
    console.error(`doc_test: deno ${args[0]} did not finish within ${DEADLINE_MS / 1000} s: ${e}`);
    Deno.exit(1);
  });
}

/** Paths (from the repository root) of the TypeScript modules in mod.ts's graph. */
async function publishedModules(): Promise<string[]> {
  const info = await deno(["info", "--json", "mod.ts"], "piped");
  if (info.code !== 0) Deno.exit(info.code);
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { specifier: string }[];
  };
  const prefix = `file://${ROOT}`;
  return graph.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith(prefix) && s.endsWith(".ts"))
    .map((s) => decodeURIComponent(s.slice(prefix.length)))
    .sort();
}

if (import.meta.main) {
  const modules = await publishedModules();
  const run = await deno(["test", "-A", "--doc", "--parallel", ...modules], "inherit");
  Deno.exit(run.code);
}
