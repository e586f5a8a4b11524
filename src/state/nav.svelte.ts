/**
 * Which page the app shows. The page lives in the URL hash (#data, #explore, …) so a reload, a bookmark and the
 * browser's back button all land where the user was; nothing is sent anywhere.
 */

export interface PageInfo {
  id: PageId;
  label: string;
  /** Pages of later slices are listed so the shell's layout is settled, but cannot be opened yet. */
  available: boolean;
}

export type PageId = 'learn' | 'data' | 'explore' | 'train' | 'results' | 'runs' | 'predict' | 'privacy';

export const PAGES: readonly PageInfo[] = [
  { id: 'data', label: 'Data', available: true },
  { id: 'explore', label: 'Explore', available: true },
  { id: 'train', label: 'Train', available: true },
  { id: 'results', label: 'Results', available: true },
  { id: 'runs', label: 'Runs', available: true },
  { id: 'predict', label: 'Predict', available: true },
  { id: 'learn', label: 'Learn', available: true },
  { id: 'privacy', label: 'Privacy', available: true },
];

function pageFromHash(hash: string): PageId {
  const id = hash.replace(/^#\/?/, '');
  const page = PAGES.find((p) => p.id === id && p.available);
  return page ? page.id : 'data';
}

function createNav() {
  let current = $state<PageId>(typeof location === 'undefined' ? 'data' : pageFromHash(location.hash));

  if (typeof window !== 'undefined') {
    window.addEventListener('hashchange', () => {
      current = pageFromHash(location.hash);
    });
  }

  return {
    get current(): PageId {
      return current;
    },
    go(id: PageId): void {
      const page = PAGES.find((p) => p.id === id);
      if (!page?.available || id === current) return;
      current = id;
      // pushState rather than assigning location.hash: Back still works, and the page does not jump to an anchor.
      history.pushState(null, '', `#${id}`);
    },
  };
}

export const nav = createNav();
