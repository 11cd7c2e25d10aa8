/**
 * The house's shape, checked over the module graph that `deno info --json` reads from every
 * module of the repository (entry points, src/, bench/, scripts/, tools/, tests/): no import
 * cycles; the layering of docs/design.md, "Source layout" (`runtime/` imports nothing above it,
 * `model/` neither `methods/` nor `train/`, `io/` never `train/`, `generate/` and `train/` never
 * each other, and `cli/`, what their command lines share, neither of them; `deno/`, the Deno
 * adapters and hosts, may import the portable core, which never imports it; and no circle among
 * the folders); and every `src/` module has a sibling `_test.ts`, or is listed below with the test
 * file that covers it, which must reach it through its imports.
 */
import assert from "node:assert/strict";
import { runWithDeadline } from "../scripts/harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const GRAPH_DEADLINE_MS = 60_000;

/**
 * Modules without a sibling `_test.ts`, each with the test file that exercises it. A test file
 * named here must import the module, directly or through what it imports.
 */
const COVERED_BY: Record<string, string> = {
  "src/cli/demo_showcase_run.ts": "src/generate/showcase_test.ts",
  "src/data/batch.ts": "src/data/dataset_test.ts",
  "src/data/tokenizer.ts": "src/data/dataset_test.ts",
  "src/deno/tokenizer.ts": "src/data/chat_test.ts",
  "src/deno/generate_cli.ts": "tests/generate_test.ts",
  "src/deno/demo_showcase.ts": "src/generate/showcase_test.ts",
  "src/generate/loop.ts": "src/generate/chat_test.ts",
  "src/io/cache_store.ts": "src/io/cache_key_test.ts",
  "src/deno/cache_store.ts": "src/io/cache_key_test.ts",
  "src/io/model_source.ts": "src/io/weight_store_test.ts",
  "src/deno/model_source.ts": "src/io/weight_store_test.ts",
  "src/io/model_source_files.ts": "src/io/cache_key_test.ts",
  "src/deno/model_source_files.ts": "tests/llama_cpp_test.ts",
  "src/deno/file_source.ts": "src/io/byte_source_test.ts",
  "src/io/http_source.ts": "src/io/byte_source_test.ts",
  "src/deno/peft_adapter.ts": "src/io/peft_adapter_test.ts",
  "src/io/tensor_loader.ts": "src/io/weight_store_test.ts",
  "src/io/tensor_set.ts": "src/io/weight_store_test.ts",
  "src/io/tensor_source.ts": "src/train/gguf_model_test.ts",
  "src/io/weight_plan.ts": "src/io/weight_store_test.ts",
  "src/kernels/abi.ts": "src/kernels/wasm_test.ts",
  "src/kernels/load.ts": "src/kernels/wasm_test.ts",
  "src/kernels/reference/attention.ts": "src/kernels/attention_test.ts",
  "src/kernels/reference/cross_entropy.ts": "src/kernels/cross_entropy_test.ts",
  "src/kernels/reference/elementwise.ts": "src/kernels/elementwise_test.ts",
  "src/kernels/reference/fused.ts": "src/kernels/fused_test.ts",
  "src/kernels/reference/embedding.ts": "src/kernels/embedding_test.ts",
  "src/kernels/reference/floats.ts": "src/kernels/elementwise_test.ts",
  "src/kernels/reference/geglu.ts": "src/kernels/geglu_test.ts",
  "src/kernels/reference/gemm.ts": "src/kernels/gemm_test.ts",
  "src/kernels/reference/int4.ts": "src/kernels/int4_test.ts",
  "src/kernels/reference/mod.ts": "src/kernels/injected_test.ts",
  "src/kernels/reference/norm.ts": "src/kernels/norm_test.ts",
  "src/kernels/reference/optim.ts": "src/kernels/optim_test.ts",
  "src/kernels/reference/rope.ts": "src/kernels/rope_test.ts",
  "src/kernels/reference/swiglu.ts": "src/kernels/swiglu_test.ts",
  "src/kernels/reference/views.ts": "src/kernels/elementwise_test.ts",
  "src/kernels/tile_shape.ts": "tests/generated_kernels_test.ts",
  "src/methods/recompute.ts": "src/methods/session_test.ts",
  "src/methods/full.ts": "src/methods/session_test.ts",
  "src/methods/gradient.ts": "src/methods/session_test.ts",
  "src/methods/lcsb.ts": "tests/exactness_test.ts",
  "src/methods/mebp.ts": "src/methods/session_test.ts",
  "src/methods/memory_plan.ts": "tests/plan_measured_test.ts",
  "src/methods/mesp.ts": "src/methods/session_test.ts",
  "src/methods/step_plan.ts": "src/methods/registry_test.ts",
  "src/model/block.ts": "tests/exactness_test.ts",
  "src/model/config.ts": "src/model/rope_tables_test.ts",
  "src/model/demo_model.ts": "src/generate/chat_test.ts",
  "src/model/linear.ts": "tests/exactness_test.ts",
  "src/model/transformer.ts": "tests/exactness_test.ts",
  "src/model/weights.ts": "src/model/lora_test.ts",
  "src/optim/adamw.ts": "src/optim/optimizer_test.ts",
  "src/optim/factory.ts": "src/optim/optimizer_test.ts",
  "src/optim/sgd.ts": "src/optim/optimizer_test.ts",
  "src/runtime/arena.ts": "src/runtime/memory_test.ts",
  "src/runtime/kernel_worker.ts": "src/runtime/worker_pool_test.ts",
  "src/runtime/mem_views.ts": "src/runtime/memory_test.ts",
  "src/runtime/ptr.ts": "src/runtime/memory_test.ts",
  "src/deno/base_model_name.ts": "tests/cli_test.ts",
  "src/deno/run_state.ts": "src/train/run_state_test.ts",
  "src/deno/train_cli.ts": "tests/cli_test.ts",
  "src/train/compare_base.ts": "tests/compare_base_test.ts",
  "src/deno/model.ts": "tests/cli_test.ts",
  "src/deno/model_export.ts": "tests/export_test.ts",
  "src/deno/preflight.ts": "tests/cli_test.ts",
  "src/deno/run_dir.ts": "tests/cli_test.ts",
};

/** What a folder of src/ may not import: `null` = any src/ folder but its own. */
const LAYERING: Record<string, string[] | null> = {
  runtime: null,
  cli: ["train", "generate"],
  model: ["methods", "train"],
  io: ["train"],
  generate: ["train"],
  train: ["generate"],
};

/**
 * Folders of one runtime's adapters and hosts: each may import the portable core; no other folder
 * (the core, or another runtime's) imports it.
 */
const RUNTIME_FOLDERS = ["deno"];

const SCANNED_DIRS = ["src", "bench", "scripts", "tools", "tests"];
const ENTRY_POINTS = ["mod.ts", "mod_slim.ts", "train.ts", "generate.ts"];

async function listModules(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await listModules(path));
    else if (entry.isFile && path.endsWith(".ts")) found.push(path);
  }
  return found;
}

interface InfoDependency {
  code?: { specifier: string };
  type?: { specifier: string };
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

/** The repository's import graph: module -> the repository modules it imports (paths from ROOT). */
async function importGraph(): Promise<Map<string, Set<string>>> {
  const modules = [...ENTRY_POINTS];
  for (const dir of SCANNED_DIRS) modules.push(...await listModules(dir));
  const dir = await Deno.makeTempDir({ prefix: "slimtune-house-" });
  try {
    const root = `${dir}/all.ts`;
    await Deno.writeTextFile(
      root,
      modules.map((m) => `import ${JSON.stringify(new URL(m, `file://${ROOT}`).href)};`).join("\n"),
    );
    const out = await runWithDeadline(Deno.execPath(), ["info", "--json", root], {
      timeoutMs: GRAPH_DEADLINE_MS,
      what: "deno info --json of every module",
      cwd: ROOT,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    assert.equal(out.code, 0, `deno info failed: ${out.stderr}`);
    const info = JSON.parse(out.stdout) as { modules: InfoModule[] };
    const prefix = `file://${ROOT}`;
    const local = (s: string | undefined) =>
      s?.startsWith(prefix) ? decodeURIComponent(s.slice(prefix.length)) : undefined;
    const graph = new Map<string, Set<string>>();
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (from === undefined) continue;
      const to = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          const path = local(s);
          if (path !== undefined) to.add(path);
        }
      }
      graph.set(from, to);
    }
    for (const m of modules) assert.ok(graph.has(m), `${m} is missing from deno info's graph`);
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let graphOnce: Promise<Map<string, Set<string>>> | undefined;
const graph = () => graphOnce ??= importGraph();

/** Strongly connected components of more than one module, or a module importing itself. */
function cycles(g: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || g.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => a[0].localeCompare(b[0]));
}

const isTestCode = (path: string) =>
  /_test\.ts$|_testing\.ts$/.test(path) || path.split("/").pop()!.startsWith("_");

function srcFolder(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "src" && parts.length > 2 ? parts[1] : undefined;
}

function layerBreaches(g: Map<string, Set<string>>): string[] {
  const breaches: string[] = [];
  for (const [from, tos] of g) {
    const folder = srcFolder(from);
    if (isTestCode(from) || folder === undefined) continue;
    const forbidden = LAYERING[folder];
    for (const to of tos) {
      const target = srcFolder(to);
      if (target === undefined || target === folder) continue;
      if (
        RUNTIME_FOLDERS.includes(target) || forbidden === null ||
        (forbidden !== undefined && forbidden.includes(target))
      ) breaches.push(`${from} -> ${to}`);
    }
  }
  return breaches.sort();
}

/** The graph of src/'s folders: folder -> the other folders its (non-test) modules import. */
function folderGraph(g: Map<string, Set<string>>): Map<string, Set<string>> {
  const folders = new Map<string, Set<string>>();
  for (const [from, tos] of g) {
    const a = srcFolder(from);
    if (isTestCode(from) || a === undefined) continue;
    if (!folders.has(a)) folders.set(a, new Set());
    for (const to of tos) {
      const b = srcFolder(to);
      if (b !== undefined && b !== a) folders.get(a)!.add(b);
    }
  }
  return folders;
}

function reaches(g: Map<string, Set<string>>, from: string, target: string): boolean {
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length > 0) {
    for (const next of g.get(todo.pop()!) ?? []) {
      if (next === target) return true;
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return false;
}

Deno.test("house: the import graph has no cycles", async () => {
  assert.deepEqual(cycles(await graph()), []);
});

Deno.test("house: src/ folders import only what the layering allows", async () => {
  assert.deepEqual(layerBreaches(await graph()), []);
});

Deno.test("house: src/'s folders stand on floors: no two folders import each other, even around", async () => {
  const folders = folderGraph(await graph());
  assert.ok(folders.size >= 9, `${folders.size} folders`);
  assert.deepEqual(cycles(folders), []);
});

Deno.test("house: every src/ module has a sibling test or a listed test that reaches it", async () => {
  const g = await graph();
  const src = [...g.keys()].filter((p) => p.startsWith("src/") && !isTestCode(p)).sort();
  const uncovered = src.filter((p) => !g.has(p.replace(/\.ts$/, "_test.ts")) && !(p in COVERED_BY));
  assert.deepEqual(uncovered, [], "modules with neither a sibling _test.ts nor a COVERED_BY entry");
  const wrong: string[] = [];
  for (const [module, test] of Object.entries(COVERED_BY)) {
    if (!src.includes(module)) wrong.push(`${module} is no src/ module`);
    else if (g.has(module.replace(/\.ts$/, "_test.ts"))) wrong.push(`${module} has a sibling test`);
    else if (!g.has(test)) wrong.push(`${test} (for ${module}) is no test file`);
    else if (!reaches(g, test, module)) wrong.push(`${test} does not import ${module}`);
  }
  assert.deepEqual(wrong, [], "COVERED_BY entries to correct");
});

Deno.test("house: the cycle finder and the layering check catch what they are for", () => {
  const g = new Map<string, Set<string>>([
    ["src/a/x.ts", new Set(["src/a/y.ts"])],
    ["src/a/y.ts", new Set(["src/a/x.ts", "src/runtime/z.ts"])],
    ["src/runtime/z.ts", new Set(["src/kernels/k.ts"])],
    ["src/generate/g.ts", new Set(["src/train/t.ts", "src/io/i.ts"])],
    ["src/model/m.ts", new Set(["src/methods/q.ts", "src/model/n.ts"])],
    ["src/data/d.ts", new Set(["src/deno/h.ts"])],
    ["src/deno/h.ts", new Set(["src/io/i.ts", "src/runtime/z.ts"])],
  ]);
  assert.deepEqual(cycles(g), [["src/a/x.ts", "src/a/y.ts"]]);
  assert.deepEqual(layerBreaches(g), [
    "src/data/d.ts -> src/deno/h.ts",
    "src/generate/g.ts -> src/train/t.ts",
    "src/model/m.ts -> src/methods/q.ts",
    "src/runtime/z.ts -> src/kernels/k.ts",
  ]);
  assert.ok(reaches(g, "src/a/x.ts", "src/kernels/k.ts"));
  assert.ok(!reaches(g, "src/model/m.ts", "src/a/x.ts"));
  // Folders: a -> runtime -> kernels, generate -> train and io, model -> methods,
  // data -> deno -> io and runtime; no circle.
  assert.deepEqual(cycles(folderGraph(g)), []);
  g.set("src/kernels/k.ts", new Set(["src/a/x.ts"]));
  assert.deepEqual(cycles(folderGraph(g)), [["a", "kernels", "runtime"]]);
});
