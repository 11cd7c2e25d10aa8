import { strictEqual } from "node:assert/strict";
import { generatedFiles } from "../scripts/gen_kernels.ts";
import * as shape from "../src/kernels/tile_shape.ts";

Deno.test("generated kernel files equal what scripts/gen_kernels.ts writes", async () => {
  const root = new URL("../", import.meta.url);
  for (const [path, text] of Object.entries(generatedFiles())) {
    const committed = await Deno.readTextFile(new URL(path, root));
    strictEqual(committed, text, `${path} is stale: run deno run -A scripts/gen_kernels.ts`);
  }
});

Deno.test("the TypeScript tile shape is the AssemblyScript one", async () => {
  const as = await Deno.readTextFile(new URL("../assembly/tile_shape.ts", import.meta.url));
  for (const [name, value] of Object.entries(shape)) {
    const m = as.match(new RegExp(`export const ${name}: i32 = (\\d+);`));
    strictEqual(Number(m?.[1]), value, `assembly/tile_shape.ts ${name}`);
  }
});
