import assert from "node:assert/strict";
import { expPortable, logPortable, powInt } from "./portable_math.ts";

Deno.test("powInt: the multiplications of repeated squaring, exactly, and close to Math.pow", () => {
  assert.equal(powInt(0.9, 0), 1);
  assert.equal(powInt(0.9, 1), 0.9);
  // 0.9^4 = (0.9 * 0.9) * (0.9 * 0.9), each product rounded once: V8's Math.pow agrees here,
  // SpiderMonkey's and JavaScriptCore's give 0.6561000000000001.
  const sq = 0.9 * 0.9;
  assert.equal(powInt(0.9, 4), sq * sq);
  assert.equal(powInt(0.9, 5), 0.9 * (sq * sq));
  assert.equal(powInt(2, 30), 2 ** 30);
  for (const b of [0.9, 0.999, 0.95]) {
    for (const n of [2, 3, 7, 10, 100, 1000, 12345]) {
      const want = Math.pow(b, n);
      assert.ok(Math.abs(powInt(b, n) - want) <= 1e-12 * want, `${b}^${n}`);
    }
  }
  assert.throws(() => powInt(0.9, -1), /n must be >= 0/);
  assert.throws(() => powInt(0.9, 1.5), /n must be >= 0/);
});

/** Distance in ulps between two positive finite doubles. */
function ulps(a: number, b: number): number {
  const v = new DataView(new ArrayBuffer(16));
  v.setFloat64(0, a);
  v.setFloat64(8, b);
  return Math.abs(Number(v.getBigInt64(0) - v.getBigInt64(8)));
}

Deno.test("logPortable and expPortable: within 2 ulp of Math.log / Math.exp, special values", () => {
  let worstLog = 0, worstExp = 0;
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 20000; i++) {
    const x = Math.exp((rand() - 0.5) * 1400);
    if (x > 0 && Number.isFinite(x) && Math.abs(Math.log(x)) > 1e-3) {
      worstLog = Math.max(worstLog, ulps(logPortable(x), Math.log(x)));
    }
    const y = (rand() - 0.5) * 1400;
    if (Math.exp(y) > 1e-300 && Number.isFinite(Math.exp(y))) {
      worstExp = Math.max(worstExp, ulps(expPortable(y), Math.exp(y)));
    }
  }
  for (const x of [0.5, 0.75, 1.5, 2, 10, 1e-310, 5e-324, 1.0000001, 0.9999999]) {
    assert.ok(Math.abs(logPortable(x) - Math.log(x)) <= 4e-16 * Math.abs(Math.log(x)) + 1e-300);
  }
  assert.ok(worstLog <= 2, `log: ${worstLog} ulp`);
  assert.ok(worstExp <= 2, `exp: ${worstExp} ulp`);
  assert.equal(logPortable(1), 0);
  assert.equal(logPortable(0), -Infinity);
  assert.ok(Number.isNaN(logPortable(-1)));
  assert.equal(logPortable(Infinity), Infinity);
  assert.equal(expPortable(0), 1);
  assert.equal(expPortable(-Infinity), 0);
  assert.equal(expPortable(800), Infinity);
  assert.ok(Number.isNaN(expPortable(NaN)));
  assert.ok(Math.abs(expPortable(-740) - Math.exp(-740)) <= 1e-323);
});
