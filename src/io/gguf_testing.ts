/**
 * Test helper: reads a GGUF file's header with an independent parser (npm `@huggingface/gguf`),
 * served from memory through ranged fetches.
 */
import { gguf } from "@huggingface/gguf";

/** The file's bytes, as an independent reader sees them through ranged fetches. */
export async function readGguf(bytes: Uint8Array) {
  const serve = (_: RequestInfo | URL, init?: RequestInit) => {
    const range = new Headers(init?.headers).get("Range");
    const m = /bytes=(\d+)-(\d+)/.exec(range ?? "");
    const body = m ? bytes.slice(Number(m[1]), Number(m[2]) + 1) : bytes;
    return Promise.resolve(new Response(body as BodyInit, { status: m ? 206 : 200 }));
  };
  const r = await gguf("https://example.invalid/x.gguf", { fetch: serve as typeof fetch });
  return { ...r, metadata: r.metadata as unknown as Record<string, unknown> };
}

/** A writer's chunks as one file. */
export function concatChunks(chunks: Iterable<Uint8Array>): Uint8Array {
  const parts = [...chunks];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
