import { afterEach } from 'vitest';
import { flushSync, mount, unmount, type Component } from 'svelte';

let mounted: ReturnType<typeof mount> | null = null;
let host: HTMLElement | null = null;

/** Takes down what render() mounted; runs after each test, and a test may call it to render something else. */
export function cleanup(): void {
  if (mounted) unmount(mounted);
  mounted = null;
  host?.remove();
  host = null;
}

afterEach(cleanup);

/** Mounts a component into a fresh element on the page (taken down after each test) and flushes its effects. */
export function render<P extends Record<string, unknown>>(
  component: Component<P>,
  props: P,
  options: { width?: string } = {},
): HTMLElement {
  cleanup();
  host = document.createElement('div');
  if (options.width) host.style.width = options.width;
  document.body.append(host);
  mounted = mount(component, { target: host, props });
  flushSync();
  return host;
}
