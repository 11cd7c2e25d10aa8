import assert from "node:assert/strict";
import { Arena } from "../runtime/arena.ts";
import { floatBytes, StackPeak, tableBytes } from "./buffer_table.ts";

Deno.test("buffer table: bytes are the arena's, buffer by buffer", () => {
  const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), 0);
  const table = { a: 1, b: 17, none: 0, c: 64 };
  const start = arena.used;
  for (const n of Object.values(table)) arena.allocF32(n);
  assert.equal(arena.used - start, tableBytes(table));
  assert.equal(tableBytes(table), 64 + 128 + 0 + 256);
  assert.equal(floatBytes(0), 0);
  assert.equal(floatBytes(16), 64);
});

Deno.test("stack peak: follows marks, releases and temporaries as the arena does", () => {
  const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), 0);
  const s = new StackPeak();
  const base = arena.used;
  // The same sequence on both.
  arena.allocF32(10);
  s.alloc(10);
  const am = arena.mark();
  const sm = s.mark();
  arena.allocF32(100);
  s.alloc(100);
  arena.release(am);
  s.release(sm);
  const t = arena.mark();
  arena.allocF32(40);
  arena.release(t);
  s.temp(40);
  arena.allocF32(5);
  s.alloc(5);
  assert.equal(s.top, arena.used - base);
  assert.equal(s.peak, arena.highWater - base);
  assert.equal(s.peak, 64 + 448);
  // A nested peak below the current one changes nothing.
  assert.equal(s.nested(0).peak, 64 + 448);
});
