/**
 * {@link RunStateStore}s over the places an edge function can keep bytes between invocations.
 * Each is a few lines: the store only gets and puts one value per key.
 *
 * - Workers KV: values up to 25 MiB, eventually consistent across locations (a run's invocations
 *   should go to one location, or carry the step they expect);
 * - R2: objects of any size, strongly consistent;
 * - any HTTP service with GET and PUT of `/<key>` (workerd's writable `disk` service, an object
 *   store's HTTP API behind a service binding).
 *
 * The types are the parts of the bindings used here, so this file needs no Workers typings.
 *
 * @module
 */
import type { RunStateStore } from "../../mod_slim.ts";

/** The part of a Workers KV namespace binding used here. */
export interface KvNamespaceLike {
  get(key: string, type: "arrayBuffer"): Promise<ArrayBuffer | null>;
  put(key: string, value: ArrayBuffer | Uint8Array): Promise<void>;
}

/** The part of an R2 bucket binding used here. */
export interface R2BucketLike {
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
  put(key: string, value: ArrayBuffer | Uint8Array): Promise<unknown>;
}

/** The part of a service binding (`Fetcher`) used here. */
export interface FetcherLike {
  fetch(input: Request | string, init?: RequestInit): Promise<Response>;
}

export function kvRunStateStore(kv: KvNamespaceLike): RunStateStore {
  return {
    async get(key) {
      const v = await kv.get(key, "arrayBuffer");
      return v === null ? null : new Uint8Array(v);
    },
    put: (key, bytes) => kv.put(key, bytes),
  };
}

export function r2RunStateStore(bucket: R2BucketLike): RunStateStore {
  return {
    async get(key) {
      const o = await bucket.get(key);
      return o === null ? null : new Uint8Array(await o.arrayBuffer());
    },
    async put(key, bytes) {
      await bucket.put(key, bytes);
    },
  };
}

/** GET and PUT of `/<key>` on `service` (404 = no value yet). */
export function fetchRunStateStore(service: FetcherLike): RunStateStore {
  const url = (key: string) => `http://state/${encodeURIComponent(key)}`;
  return {
    async get(key) {
      const r = await service.fetch(url(key));
      if (r.status === 404) {
        await r.body?.cancel();
        return null;
      }
      if (!r.ok) throw new Error(`state store: GET ${key}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    async put(key, bytes) {
      const r = await service.fetch(url(key), { method: "PUT", body: bytes as BodyInit });
      await r.body?.cancel();
      if (!r.ok) throw new Error(`state store: PUT ${key}: HTTP ${r.status}`);
    },
  };
}
