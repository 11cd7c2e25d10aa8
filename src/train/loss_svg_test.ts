import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { lossCurveSvg, niceTicks } from "./loss_svg.ts";

Deno.test("niceTicks gives round values covering the range", () => {
  deepStrictEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  deepStrictEqual(niceTicks(1.13, 1.92, 4), [1.2, 1.4, 1.6, 1.8]);
  deepStrictEqual(niceTicks(3, 3), [3]);
});

Deno.test("lossCurveSvg draws one vertex per step, higher loss higher up, eval as dots", () => {
  const history = [
    { step: 1, loss: 4 },
    { step: 2, loss: 3 },
    { step: 3, loss: NaN },
    { step: 4, loss: 1, evalLoss: 1.5 },
  ];
  const svg = lossCurveSvg(history, { title: "a <b> & c" });
  ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  ok(svg.trimEnd().endsWith("</svg>"));
  match(svg, /a &#60;b&#62; &#38; c/);
  const pts = /class="train"[^>]*points="([^"]+)"/.exec(svg)![1].split(" ").map((p) =>
    p.split(",").map(Number)
  );
  strictEqual(pts.length, 3); // NaN skipped
  ok(pts[0][0] < pts[1][0] && pts[1][0] < pts[2][0]); // steps left to right
  ok(pts[0][1] < pts[1][1] && pts[1][1] < pts[2][1]); // falling loss goes down the page
  strictEqual((svg.match(/class="eval"/g) ?? []).length, 1);
  match(lossCurveSvg([]), /no data/);
});
