// The worker's entry point under Deno (`deno serve`, Deno Deploy): injects the compiled kernels
// with a source-phase import, so nothing is compiled from bytes at run time and no file access is
// needed. Plain JS: TypeScript's checker does not parse `import source` yet.
//
//   npx deno serve --allow-net examples/edge/deno_entry.js
import source KERNELS from "../../wasm/kernels.relaxed.wasm";
import worker from "./worker.ts";

export default {
  fetch(request) {
    return worker.fetch(request, { KERNELS });
  },
};
