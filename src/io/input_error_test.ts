import assert from "node:assert/strict";
import { ConfigError } from "./config.ts";
import { HttpSourceError } from "./http_source.ts";
import { isInputError } from "./input_error.ts";
import { SafetensorsError } from "./safetensors.ts";

Deno.test("input errors: the readers' errors and missing or unreadable files are the user's", () => {
  assert.ok(isInputError(new SafetensorsError("model.safetensors", "header is not JSON")));
  assert.ok(isInputError(new ConfigError("config.json", "hidden_size is missing")));
  assert.ok(isInputError(new HttpSourceError("https://host/x", "status 404", 404)));
  assert.ok(isInputError(new Deno.errors.NotFound("no such file")));
  assert.ok(isInputError(new Deno.errors.PermissionDenied("read access")));
  // A plain Error is what the adapter and checkpoint readers throw for a malformed file.
  assert.ok(isInputError(new Error("adapter_config.json: r must be a positive integer")));
});

Deno.test("input errors: a bug is not one, even one that extends Error", () => {
  assert.ok(!isInputError(new TypeError("x is undefined")));
  assert.ok(!isInputError(new RangeError("offset out of bounds")));
  class InternalError extends Error {}
  assert.ok(!isInputError(new InternalError("invariant broken")));
  assert.ok(!isInputError("a thrown string"));
  assert.ok(!isInputError(null));
  assert.ok(!isInputError(new Deno.errors.Interrupted("interrupted")));
});
