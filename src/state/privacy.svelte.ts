/**
 * The Privacy page's state: what anyone can check about this page from the page itself.
 *
 * - The Content-Security-Policy in force, read from the document's <meta http-equiv> (what every host serves;
 *   hosts that send headers add `frame-ancestors`), and every `securitypolicyviolation` the page has seen.
 * - What this origin stores in the browser (browser-storage.ts), with deletion one item at a time.
 * - Every request the page has made since it loaded, from the Performance API (resource and navigation entries,
 *   kept up to date by a PerformanceObserver): its origin, and whether it went to the network.
 */
import { appUpdate } from './app-update.svelte.ts';
import { deleteStoredItem, listStoredItems, type StoredItem } from './browser-storage.ts';

export interface CspViolation {
  directive: string;
  blocked: string;
  at: number;
}

export interface ObservedRequest {
  url: string;
  /** The page's own origin? */
  sameOrigin: boolean;
  /** What the Performance API says made it: navigation, script, fetch, img, link, other… */
  initiator: string;
  /** Bytes over the network (0 when a cache or the service worker answered). */
  transferred: number;
  /** ms since the page started loading. */
  start: number;
}

/** The policy as the page declares it: the content of its CSP <meta>, or null when there is none. */
export function declaredPolicy(doc: Document): string | null {
  const meta = doc.querySelector('meta[http-equiv="Content-Security-Policy" i]');
  return meta?.getAttribute('content') ?? null;
}

/** "connect-src 'self'; img-src …" → [["connect-src", "'self'"], …], in the order written. */
export function policyDirectives(policy: string): [string, string][] {
  return policy
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .map((d) => {
      const [name = '', ...sources] = d.split(/\s+/);
      return [name.toLowerCase(), sources.join(' ')];
    });
}

function createPrivacy() {
  const origin = typeof location === 'undefined' ? '' : location.origin;
  let policy = $state<string | null>(null);
  let violations = $state<CspViolation[]>([]);
  let requests = $state<ObservedRequest[]>([]);
  /** When the service worker had stored the app (ms since load), for "no request since". */
  let offlineSince = $state<number | null>(null);
  let items = $state<StoredItem[] | null>(null);
  let listing = $state(false);
  let deleting = $state<string | null>(null);
  let storageError = $state<string | null>(null);
  let notice = $state<string | null>(null);
  let started = false;

  function record(entries: readonly PerformanceEntry[]) {
    const next: ObservedRequest[] = [];
    for (const e of entries) {
      const timing = e as PerformanceResourceTiming;
      let url: URL;
      try {
        url = new URL(timing.name, location.href);
      } catch {
        continue;
      }
      // data: and blob: URLs are made by the page itself; nothing leaves the machine for them.
      if (url.protocol === 'data:' || url.protocol === 'blob:') continue;
      next.push({
        url: url.href,
        sameOrigin: url.origin === origin,
        initiator: e.entryType === 'navigation' ? 'navigation' : timing.initiatorType || 'other',
        transferred: timing.transferSize ?? 0,
        start: e.startTime,
      });
    }
    if (next.length > 0) requests = [...requests, ...next];
  }

  return {
    /** Starts watching (once): the page's requests since load, CSP violations, the offline copy. */
    start() {
      if (started || typeof window === 'undefined') return;
      started = true;
      policy = declaredPolicy(document);
      document.addEventListener('securitypolicyviolation', (e) => {
        violations = [
          ...violations,
          { directive: e.effectiveDirective, blocked: e.blockedURI, at: e.timeStamp },
        ];
      });
      if (typeof PerformanceObserver !== 'undefined') {
        record(performance.getEntriesByType('navigation'));
        // buffered: the entries made before this observer existed come first, then every new one.
        new PerformanceObserver((list) => record(list.getEntries())).observe({
          type: 'resource',
          buffered: true,
        });
      }
      $effect.root(() => {
        $effect(() => {
          if (appUpdate.offlineReady && offlineSince === null) offlineSince = performance.now();
        });
      });
    },
    get origin() {
      return origin;
    },
    get policy() {
      return policy;
    },
    get violations() {
      return violations;
    },
    get requests() {
      return requests;
    },
    get offlineSince() {
      return offlineSince;
    },
    get items() {
      return items;
    },
    get listing() {
      return listing;
    },
    get deleting() {
      return deleting;
    },
    get storageError() {
      return storageError;
    },
    get notice() {
      return notice;
    },
    async refresh() {
      listing = true;
      storageError = null;
      try {
        items = await listStoredItems();
      } catch (error) {
        storageError = `This browser's storage could not be listed: ${error instanceof Error ? error.message : String(error)}`;
      } finally {
        listing = false;
      }
    },
    async remove(item: StoredItem) {
      deleting = item.key;
      storageError = null;
      notice = null;
      try {
        await deleteStoredItem(item.key);
        notice = `Deleted ${item.label}.`;
      } catch (error) {
        storageError = `${item.label} could not be deleted: ${error instanceof Error ? error.message : String(error)}`;
      } finally {
        deleting = null;
      }
      await this.refresh();
    },
  };
}

export const privacy = createPrivacy();
