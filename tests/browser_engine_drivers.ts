/**
 * One small driver surface over the three browser engines the engine matrix runs the browser
 * example in, each through the automation its vendor ships for it:
 *
 * - Chromium (Debian `/usr/bin/chromium`) through playwright-core (CDP);
 * - Firefox ESR (Debian `/usr/bin/firefox-esr`) through puppeteer-core over WebDriver BiDi;
 * - WebKitGTK (Debian `webkit2gtk-driver`: `/usr/bin/WebKitWebDriver` and the MiniBrowser of
 *   libwebkit2gtk) through selenium-webdriver, under Xvfb (WebKitGTK has no headless mode).
 *
 * A page is driven only by evaluating script in it (`evaluate` of an expression whose value is
 * JSON-cloneable), so the tests read the page's `globalThis.slimtuneDemo` the same way on all
 * three.
 *
 * @module
 */
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
import { Builder, Capabilities, type WebDriver } from "selenium-webdriver";
import {
  freePort,
  type SpawnedProcess,
  spawnWithDeadline,
  waitUntil,
  withDeadline,
} from "../scripts/harness.ts";

/** The engines of the matrix. */
export type EngineName = "chromium" | "firefox" | "webkit";

/** The binaries each engine needs (all must exist for its tests to run). */
export const ENGINE_BINARIES: Record<EngineName, string[]> = {
  chromium: ["/usr/bin/chromium"],
  firefox: ["/usr/bin/firefox-esr"],
  webkit: [
    "/usr/bin/WebKitWebDriver",
    "/usr/bin/Xvfb",
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
  ],
};

/** The Debian packages that bring them. */
export const ENGINE_PACKAGES: Record<EngineName, string> = {
  chromium: "chromium",
  firefox: "firefox-esr",
  webkit: "webkit2gtk-driver xvfb",
};

/** The first binary of `engine` that is absent, or null when all are there. */
export function missingBinary(engine: EngineName): string | null {
  for (const path of ENGINE_BINARIES[engine]) {
    try {
      if (!Deno.statSync(path).isFile) return path;
    } catch {
      return path;
    }
  }
  return null;
}

/** An open page of one engine. */
export interface EnginePage {
  engine: EngineName;
  /** The browser's own version string. */
  version: string;
  goto(url: string): Promise<void>;
  /** The value of a script expression evaluated in the page (JSON-cloneable). */
  evaluate<T>(expression: string): Promise<T>;
  /** Saves a PNG of the viewport. */
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link openEngine}. */
export interface OpenEngineOptions {
  /** Extra environment of the browser process (WebKit: JSC_* switches). */
  env?: Record<string, string>;
}

/**
 * Deadlines of the WebKit helper processes (milliseconds): Xvfb naming its display and the
 * WebDriver answering (seconds alone, far more when loaded), and their whole life, which spans a
 * page's training run in the browser and ends before the suite's own limit.
 */
const WEBKIT_DEADLINE_MS = {
  start: 60_000,
  lifetime: 30 * 60_000,
} as const;

async function openChromium(): Promise<EnginePage> {
  const browser = await chromium.launch({
    executablePath: ENGINE_BINARIES.chromium[0],
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 1000 } });
  return {
    engine: "chromium",
    version: browser.version(),
    async goto(url) {
      await page.goto(url);
    },
    evaluate<T>(e: string) {
      return page.evaluate(e) as Promise<T>;
    },
    async screenshot(path) {
      await page.screenshot({ path, fullPage: true });
    },
    async close() {
      await browser.close();
    },
  };
}

async function openFirefox(): Promise<EnginePage> {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: ENGINE_BINARIES.firefox[0],
    headless: true,
    defaultViewport: { width: 1000, height: 1000 },
  });
  const page = await browser.newPage();
  return {
    engine: "firefox",
    version: await browser.version(),
    async goto(url) {
      await page.goto(url);
    },
    evaluate<T>(e: string) {
      return page.evaluate(e) as Promise<T>;
    },
    async screenshot(path) {
      await page.screenshot({ path, fullPage: true });
    },
    async close() {
      await browser.close();
    },
  };
}

/** Starts Xvfb on a display it picks itself (`-displayfd`) and returns it. */
async function startXvfb(): Promise<{ display: string; process: SpawnedProcess }> {
  const process = spawnWithDeadline(
    ENGINE_BINARIES.webkit[1],
    ["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
    { timeoutMs: WEBKIT_DEADLINE_MS.lifetime, what: "Xvfb" },
  );
  await waitUntil(() => process.stdout.includes("\n"), {
    timeoutMs: WEBKIT_DEADLINE_MS.start,
    what: "Xvfb naming its display",
    child: process,
  });
  return { display: `:${process.stdout.split("\n")[0].trim()}`, process };
}

async function openWebKit(o: OpenEngineOptions): Promise<EnginePage> {
  const xvfb = await startXvfb();
  const port = freePort();
  const driverProcess = spawnWithDeadline(
    ENGINE_BINARIES.webkit[0],
    [`--port=${port}`, "--host=127.0.0.1"],
    {
      timeoutMs: WEBKIT_DEADLINE_MS.lifetime,
      what: `WebKitWebDriver on port ${port}`,
      env: { DISPLAY: xvfb.display, ...o.env },
    },
  );
  // SIGTERM, SIGKILL after the grace; past their lifetime the stop names the one that overran.
  const stop = async () => {
    const results = await Promise.allSettled([driverProcess.stop(), xvfb.process.stop()]);
    for (const r of results) if (r.status === "rejected") throw r.reason;
  };
  let driver: WebDriver;
  try {
    const caps = new Capabilities({
      browserName: "MiniBrowser",
      "webkitgtk:browserOptions": {
        binary: ENGINE_BINARIES.webkit[2],
        args: ["--automation"],
      },
    });
    const startBy = performance.now() + WEBKIT_DEADLINE_MS.start;
    for (;;) {
      try {
        driver = await withDeadline(
          new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities(caps).build(),
          WEBKIT_DEADLINE_MS.start,
          `WebKitWebDriver on port ${port}: a MiniBrowser session`,
        );
        break;
      } catch (e) {
        if (driverProcess.exited || performance.now() > startBy) {
          throw new Error(`${(e as Error).message}; the driver: ${driverProcess.describe()}`);
        }
        await new Promise((r) => setTimeout(r, 100)); // the driver is still starting
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const version = String((await driver.getCapabilities()).get("browserVersion") ?? "");
  return {
    engine: "webkit",
    version,
    async goto(url) {
      await driver.get(url);
    },
    evaluate<T>(e: string) {
      return driver.executeScript(`return (${e});`) as Promise<T>;
    },
    async screenshot(path) {
      const b64 = await driver.takeScreenshot();
      await Deno.writeFile(path, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    },
    async close() {
      try {
        await driver.quit();
      } finally {
        await stop();
      }
    },
  };
}

/** Opens a page of `engine` (blank until `goto`). */
export function openEngine(engine: EngineName, o: OpenEngineOptions = {}): Promise<EnginePage> {
  switch (engine) {
    case "chromium":
      return openChromium();
    case "firefox":
      return openFirefox();
    case "webkit":
      return openWebKit(o);
  }
}

/**
 * Polls `expression` every 100 ms until it is truthy; throws after `timeoutMs`, with what the
 * page shows (its status and progress lines) so that a stalled run says where it stalled.
 */
export async function waitFor(
  page: EnginePage,
  expression: string,
  timeoutMs: number,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await page.evaluate<boolean>(`!!(${expression})`))) {
    if (performance.now() > end) {
      const shows = await page.evaluate<string>(
        `["status", "progress", "kernel-threads"].map((id) =>
          id + ": " + (document.getElementById(id)?.textContent ?? "-").slice(-300)).join("; ")`,
      ).catch((e) => `(the page did not answer: ${e})`);
      throw new Error(
        `${page.engine}: timed out after ${timeoutMs} ms waiting for ${expression}; the page ` +
          `shows ${shows}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
