import { strictEqual } from "node:assert/strict";
import { baseModelName, hubIdOfUrl, isHubId } from "./base_model_name.ts";

Deno.test("base_model_name_or_path: the hub id when known, else the absolute local path", () => {
  const cwd = "/home/me/work";
  strictEqual(
    baseModelName("m", { _name_or_path: "Qwen/Qwen2.5-0.5B-Instruct" }, cwd),
    "Qwen/Qwen2.5-0.5B-Instruct",
  );
  // A saved local path in the config is no hub id.
  strictEqual(baseModelName("./m", { _name_or_path: "/tmp/trained/qwen" }, cwd), "/home/me/work/m");
  strictEqual(baseModelName("../models/./llama/", {}, cwd), "/home/me/models/llama");
  strictEqual(baseModelName("/abs/model", null, cwd), "/abs/model");
  strictEqual(
    baseModelName("https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main", {}, cwd),
    "HuggingFaceTB/SmolLM2-135M",
  );
  strictEqual(hubIdOfUrl("https://example.com/models/x"), null);
  strictEqual(isHubId("a/b/c"), false);
  strictEqual(isHubId("./a"), false);
  strictEqual(isHubId("meta-llama/Llama-3.2-1B"), true);
});
