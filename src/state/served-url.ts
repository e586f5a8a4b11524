/**
 * Absolute URL of a file the app serves from `public/` (weights, the sample pack). Built from Vite's base so it holds
 * in dev, preview and a sub-path deploy alike; absolute because a relative URL handed to a worker would resolve
 * against the worker script's URL (under /assets/), not the page's.
 */
export function servedUrl(path: string): string {
  return new URL(`${import.meta.env.BASE_URL}${path.replace(/^\/+/, '')}`, document.baseURI).href;
}
