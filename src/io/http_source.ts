/**
 * An HTTP(S) URL read with Range requests (`fetch`), so a multi-gigabyte checkpoint is fetched one
 * tensor at a time. Every response is checked: status 206, a `Content-Range` that matches the
 * request, and exactly the requested number of body bytes. Servers that ignore Range (200 with
 * the whole body), truncate, or drop the connection midway give a clear error.
 *
 * @example
 * ```ts
 * import { HttpSource } from "./http_source.ts";
 * // A stand-in server holding 16 bytes; without `fetch` the global one goes to the network.
 * const bytes = Uint8Array.from({ length: 16 }, (_, i) => i);
 * const fetch = (_url: RequestInfo | URL, init?: RequestInit) => {
 *   const [first, last] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get("Range")!)!
 *     .slice(1).map(Number);
 *   return Promise.resolve(new Response(bytes.slice(first, last + 1), {
 *     status: 206,
 *     headers: { "Content-Range": `bytes ${first}-${last}/${bytes.length}` },
 *   }));
 * };
 * const src = new HttpSource("https://example.com/model.safetensors", { fetch });
 * console.log(await src.size(), Array.from(await src.read(4, 3))); // 16 [4, 5, 6]
 * ```
 */
import { type ByteSource, checkRange } from "./byte_source.ts";

/** Options for {@link HttpSource}. */
export interface HttpSourceOptions {
  /** Extra request headers (e.g. `Authorization`). */
  headers?: HeadersInit;
  /** The fetch to use (tests, proxies); defaults to the global one. */
  fetch?: typeof fetch;
}

/** Thrown for every HTTP failure; the message starts with the URL. */
export class HttpSourceError extends Error {
  /** `status`: the HTTP status when the server answered with an unexpected one. */
  constructor(readonly url: string, what: string, readonly status?: number) {
    super(`${url}: ${what}`);
    this.name = "HttpSourceError";
  }
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** A remote file read by byte ranges. */
export class HttpSource implements ByteSource {
  readonly name: string;
  private knownSize: number | undefined;
  /** The validator of the size probe's response (ETag, else Last-Modified); null when neither. */
  private validator: string | null = null;
  /**
   * What later range requests send as `If-Range`: the probe's strong ETag, else its
   * Last-Modified (a weak ETag may not be used there). A server whose file changed since then
   * answers 200 with the whole new file instead of 206, which is refused as "changed": the
   * ranges of one load never mix two versions of the file.
   */
  private ifRange: string | null = null;
  /**
   * Calls the fetch function as a plain function: browsers and Cloudflare's workerd throw
   * "Illegal invocation" when the global `fetch` runs with any `this` but the global object, as
   * it would if called as a method of this source.
   */
  private readonly fetchFn: typeof fetch;

  constructor(readonly url: string | URL, private readonly options: HttpSourceOptions = {}) {
    this.name = String(url);
    const custom = options.fetch;
    this.fetchFn = custom
      ? (input, init) => custom(input, init)
      : (input, init) => fetch(input, init);
  }

  /** Total size, from the `Content-Range` of a one-byte request (HEAD is not always honest). */
  async size(): Promise<number> {
    if (this.knownSize === undefined) {
      const { total } = await this.rangeRequest(0, 1, true);
      this.knownSize = total;
    }
    return this.knownSize;
  }

  /**
   * The URL, size, and the `ETag` (strong or weak) or else `Last-Modified` of the size probe's
   * response, so no extra request is made; null when the server sends neither. The URL is part
   * of it because validators are only meaningful per resource (nginx's ETag is mtime + size).
   */
  async identity(): Promise<string | null> {
    const size = await this.size();
    if (this.validator === null) return null;
    return `http ${JSON.stringify([this.name, size, this.validator])}`;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, offset, length, this.knownSize);
    if (length === 0) return new Uint8Array(0);
    const { body } = await this.rangeRequest(offset, length, false);
    return body;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async rangeRequest(
    offset: number,
    length: number,
    probe: boolean,
  ): Promise<{ body: Uint8Array; total: number }> {
    const last = offset + length - 1;
    const headers = new Headers(this.options.headers);
    headers.set("Range", `bytes=${offset}-${last}`);
    // Ask for identity so the byte ranges refer to the stored file, not a compressed stream.
    headers.set("Accept-Encoding", "identity");
    if (!probe && this.ifRange !== null) headers.set("If-Range", this.ifRange);
    let res: Response;
    try {
      res = await this.fetchFn(this.url, { headers });
    } catch (e) {
      throw new HttpSourceError(this.name, `request failed: ${(e as Error).message}`);
    }
    if (res.status === 200 && !probe && this.ifRange !== null) {
      await res.body?.cancel();
      throw new HttpSourceError(
        this.name,
        `the file changed on the server while it was being read (If-Range ${this.ifRange} ` +
          `no longer matches); open it again`,
      );
    }
    if (res.status === 200) {
      await res.body?.cancel();
      throw new HttpSourceError(
        this.name,
        `server ignored the Range request (HTTP 200 with the full body); ranged reads are required`,
      );
    }
    if (probe) {
      this.validator = validatorOf(res.headers);
      this.ifRange = ifRangeOf(res.headers);
    }
    if (res.status === 416 && probe) {
      await res.body?.cancel();
      // Range not satisfiable for byte 0: the file is empty (if the server says so).
      const m = /^bytes \*\/(\d+)$/.exec(res.headers.get("Content-Range") ?? "");
      if (m && Number(m[1]) === 0) return { body: new Uint8Array(0), total: 0 };
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new HttpSourceError(
        this.name,
        `HTTP ${res.status} ${res.statusText}`.trimEnd(),
        res.status,
      );
    }
    const cr = res.headers.get("Content-Range");
    const m = cr ? CONTENT_RANGE.exec(cr) : null;
    if (!m) {
      await res.body?.cancel();
      throw new HttpSourceError(this.name, `206 response without a valid Content-Range (${cr})`);
    }
    const total = m[3] === "*" ? NaN : Number(m[3]);
    if (probe && Number.isNaN(total)) {
      await res.body?.cancel();
      throw new HttpSourceError(this.name, `server does not report the file size (${cr})`);
    }
    const gotFirst = Number(m[1]);
    const gotLast = Number(m[2]);
    const want = probe ? Math.min(length, total) : length;
    if (gotFirst !== offset || gotLast !== offset + want - 1) {
      await res.body?.cancel();
      throw new HttpSourceError(
        this.name,
        `asked for bytes ${offset}-${last}, server sent ${cr}` +
          (gotLast < last && !probe ? " (range past the end of the file?)" : ""),
      );
    }
    const body = await readBody(this.name, res, want);
    return { body, total };
  }
}

/** `etag <value>`, else `last-modified <value>`, else null. */
function validatorOf(headers: Headers): string | null {
  const etag = headers.get("ETag");
  if (etag) return `etag ${etag}`;
  const modified = headers.get("Last-Modified");
  return modified ? `last-modified ${modified}` : null;
}

/** A strong ETag, else Last-Modified, else null: what `If-Range` may carry. */
function ifRangeOf(headers: Headers): string | null {
  const etag = headers.get("ETag");
  if (etag && !etag.startsWith("W/")) return etag;
  return headers.get("Last-Modified");
}

/** Reads exactly `length` body bytes into one buffer; rejects short, long, or broken bodies. */
async function readBody(name: string, res: Response, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  if (!res.body) {
    if (length === 0) return out;
    throw new HttpSourceError(name, `response has no body, expected ${length} bytes`);
  }
  const reader = res.body.getReader();
  let got = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got + value.byteLength > length) {
        throw new HttpSourceError(
          name,
          `server sent more than the ${length} bytes requested`,
        );
      }
      out.set(value, got);
      got += value.byteLength;
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof HttpSourceError) throw e;
    throw new HttpSourceError(
      name,
      `connection failed after ${got} of ${length} bytes: ${(e as Error).message}`,
    );
  }
  if (got !== length) {
    throw new HttpSourceError(name, `response truncated: got ${got} of ${length} bytes`);
  }
  return out;
}
