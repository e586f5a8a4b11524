/**
 * The app's offline copy and its updates. A service worker (built by vite-plugin-pwa, see deploy/pwa.ts) keeps
 * this version for offline use; when a newer deployment is found it installs next to the running one and waits.
 * The user is told and chooses when to reload: the running version is never swapped under a training run or an
 * ingest, and Reload stays disabled while one runs.
 *
 * The register function is handed in by src/main.ts (from `virtual:pwa-register`, which only the app build
 * provides), so this module and the components reading it load anywhere, tests included.
 */
import type { RegisterSWOptions } from 'vite-plugin-pwa/types';
import { dataset } from './dataset.svelte.ts';
import { training } from './training.svelte.ts';

export type RegisterServiceWorker = (options: RegisterSWOptions) => (reloadPage?: boolean) => Promise<void>;

/** A long-open tab (a workshop, a day of clinic) looks for a new deployment this often, not only on reload. */
const UPDATE_CHECK_MS = 60 * 60 * 1000;

/** Why a waiting update must not be applied now, as the banner says it; null when nothing holds it back. */
export function updateWaitReason(work: { training: boolean; ingest: boolean }): string | null {
  if (work.training && work.ingest) {
    return 'It will wait until training has finished and the dataset has been read: reloading now would stop them.';
  }
  if (work.training) return 'It will wait until training has finished: reloading now would stop it.';
  if (work.ingest) return 'It will wait until the dataset has been read: reloading now would stop it.';
  return null;
}

/**
 * Resolves once the service worker of this page's scope has finished activating. Only then does a reload without
 * a network open the app: Workbox reports "installed" (the precache is written) while the worker still has to
 * activate, and a reload in that instant failed offline (seen once in the walk).
 */
async function serviceWorkerActivated(): Promise<void> {
  const worker = (await navigator.serviceWorker.ready).active;
  if (worker === null || worker.state === 'activated') return;
  await new Promise<void>((resolve) => {
    const check = () => {
      if (worker.state !== 'activated') return;
      worker.removeEventListener('statechange', check);
      resolve();
    };
    worker.addEventListener('statechange', check);
    check();
  });
}

function createAppUpdate() {
  /** A newer version is installed and waiting for the user. */
  let available = $state(false);
  /** This version is stored and its service worker active: the app opens without a network from now on. */
  let offlineReady = $state(
    typeof navigator !== 'undefined' &&
      'serviceWorker' in navigator &&
      navigator.serviceWorker.controller?.state === 'activated',
  );
  let offlineCheck: Promise<void> | null = null;
  /** Says "Available offline" once the stored version's worker is activated, not as soon as it is installed. */
  function whenOfflineReady() {
    offlineCheck ??= serviceWorkerActivated().then(() => {
      offlineReady = true;
    });
  }
  let registerError = $state<string | null>(null);
  let applying = $state(false);
  let applyUpdate: ((reloadPage?: boolean) => Promise<void>) | null = null;
  let started = false;

  return {
    get available() {
      return available;
    },
    get offlineReady() {
      return offlineReady;
    },
    get registerError() {
      return registerError;
    },
    get applying() {
      return applying;
    },
    /** What the update waits for (training, an ingest), or null when Reload may go ahead. */
    get waitReason() {
      return updateWaitReason({ training: training.running, ingest: dataset.busy });
    },
    /** Registers the service worker once. Without service worker support (or in `vite dev`) nothing happens. */
    start(register: RegisterServiceWorker) {
      if (started) return;
      started = true;
      applyUpdate = register({
        onNeedRefresh: () => {
          available = true;
        },
        onOfflineReady: whenOfflineReady,
        onRegisteredSW: (_url, registration) => {
          if (!registration) return;
          if (registration.active) whenOfflineReady();
          // Offline or the host unreachable: the check fails quietly and the next one tries again.
          setInterval(() => void registration.update().catch(() => undefined), UPDATE_CHECK_MS);
        },
        onRegisterError: (error: unknown) => {
          registerError = error instanceof Error ? error.message : String(error);
        },
      });
    },
    /**
     * Lets the waiting version take over; the page reloads once it controls the page. Refused while training or
     * an ingest runs (the button is disabled then too).
     */
    async reload() {
      if (!available || !applyUpdate || this.waitReason !== null) return;
      applying = true;
      await applyUpdate(true);
    },
  };
}

export const appUpdate = createAppUpdate();
