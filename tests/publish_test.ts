/**
 * Packaging: `mod.ts` and everything it imports is web-standard (no `node:` module, no `Deno.*`:
 * the module graph from `deno info`, and a type check against the browser's lib with no Deno
 * namespace), and `deno publish --dry-run` passes with no slow-types exemption, publishing the
 * wasm builds and no tests, test helpers, fixtures, benchmarks, tools or examples.
 * Works offline: the dry run needs no JSR access.
 */
import assert from "node:assert/strict";
import { runWithDeadline } from "../scripts/harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** `deno info`, `deno check` or `deno publish --dry-run` of the package: minutes when loaded. */
const DENO_DEADLINE_MS = 5 * 60_000;

async function deno(args: string[], cwd = ROOT): Promise<{ code: number; text: string }> {
  const out = await runWithDeadline(Deno.execPath(), args, {
    timeoutMs: DENO_DEADLINE_MS,
    what: `deno ${args.join(" ")}`,
    cwd,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  return { code: out.code, text: out.stdout + out.stderr };
}

Deno.test("publish: mod.ts's module graph is web-standard (no node:, no npm built-ins)", async () => {
  const r = await deno(["info", "--json", "mod.ts"]);
  assert.equal(r.code, 0, r.text);
  const graph = JSON.parse(r.text.slice(r.text.indexOf("{")));
  const specs: string[] = graph.modules.map((m: { specifier: string }) => m.specifier);
  const local = specs.filter((s) => s.startsWith("file://")).map((s) => s.slice(7));
  assert.ok(local.length > 50, `${local.length} modules`);
  const allowedNpm = /node_modules\/@huggingface\/(tokenizers|jinja)\//;
  for (const path of local) {
    const rel = path.slice(ROOT.length);
    assert.ok(
      rel === "mod.ts" || rel === "mod_slim.ts" || rel.startsWith("src/") ||
        rel.startsWith("wasm/") ||
        allowedNpm.test(rel),
      `unexpected module in the graph: ${rel}`,
    );
    assert.doesNotMatch(rel, /^src\/deno\/|_test\.ts$/, `Deno-only module: ${rel}`);
  }
  const nonFile = specs.filter((s) => !s.startsWith("file://"));
  assert.deepEqual(nonFile, [], "node:/npm:/jsr:/https: imports in the graph");
  // No `Deno.` in code (comments and strings aside: the type check below is the strict test).
  for (const path of local.filter((p) => p.endsWith(".ts") && !p.includes("node_modules"))) {
    const code = (await Deno.readTextFile(path))
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bDeno\.[a-zA-Z]/, `${path} uses Deno.*`);
    assert.doesNotMatch(code, /from "node:/, `${path} imports node:`);
  }
});

Deno.test("publish: mod.ts type-checks against the browser lib with no Deno namespace", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-webcheck-" });
  try {
    const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
    const web = {
      nodeModulesDir: config.nodeModulesDir,
      compilerOptions: { ...config.compilerOptions, lib: ["esnext", "dom", "dom.iterable"] },
    };
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(web));
    const r = await deno(["check", "--config", `${dir}/deno.json`, "mod.ts"]);
    assert.equal(r.code, 0, r.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("publish: `deno publish --dry-run` passes (no slow types) with the wasm and no tests", async () => {
  const r = await deno(["publish", "--dry-run", "--allow-dirty"]);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /Success Dry run complete/);
  assert.match(r.text, /Checking for slow types/);
  assert.doesNotMatch(r.text, /missing-explicit|allow-slow-types|error\[/);
  const files = [...r.text.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1].slice(ROOT.length));
  assert.ok(files.length > 50, r.text);
  for (
    const f of [
      "mod.ts",
      "deno.json",
      "wasm/embedded.ts",
      "wasm/kernels.relaxed.wasm",
      "wasm/kernels.simd.wasm",
      "src/kernels/wasm.ts",
      "src/io/model_source.ts",
    ]
  ) {
    assert.ok(files.includes(f), `${f} is not published`);
  }
  const bad = files.filter((f) =>
    /(^|\/)(tests|bench|tools|examples|scripts|out|assembly|node_modules)\//.test(f) ||
    /_test\.ts$|_testing\.ts$|\.fixtures|\.py$/.test(f)
  );
  assert.deepEqual(bad, [], "tests, fixtures or dev files in the published package");
});
