import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../../vitest.config.ts';

export { chromiumArgs, chromiumPath };

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
}

/** Records every request a page makes, so a test can assert that nothing left the page's origin. */
export function recordRequests(page: Page): { urls: string[]; foreign(origin: string): string[] } {
  const urls: string[] = [];
  page.on('request', (r: Request) => urls.push(r.url()));
  return {
    urls,
    foreign(origin: string) {
      return urls.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
    },
  };
}
