/**
 * Weights served over HTTP next to the app (`public/models/<backbone>/model.json` and its shards). Static hosts and
 * dev servers answer a missing file in different ways (404, or 200 with index.html as an SPA fallback), so the
 * model.json is fetched and checked before tf sees it: a missing file must read as "not served here", never as a
 * JSON parse error. Free of tf so the UI can probe availability without pulling TensorFlow.js into its bundle.
 */
import type { FileLike } from './tfjsLayers.ts';

/** Where the served weights of a backbone live, relative to the app's base URL. */
export function servedModelPath(backbone: string): string {
  return `models/${backbone}/model.json`;
}

/** The served model.json is missing or is not a TensorFlow.js layers model. */
export class ServedWeightsMissingError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`no weights are served at ${url} (${reason})`);
  }
}

type Fetch = (url: string) => Promise<Response>;

interface ModelJsonShape {
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths?: unknown }>;
}

async function fetchOk(url: string, fetcher: Fetch): Promise<Response> {
  let response: Response;
  try {
    response = await fetcher(url);
  } catch (error) {
    throw new ServedWeightsMissingError(
      url,
      `the request failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!response.ok) throw new ServedWeightsMissingError(url, `HTTP ${response.status}`);
  return response;
}

/**
 * Fetches and checks a served model.json, and returns it with its shards as FileLikes (each shard is fetched when
 * tf asks for it, and a missing shard names its URL), ready for `filesIOHandler`.
 */
export async function servedModelFiles(url: string, fetcher: Fetch = fetch): Promise<FileLike[]> {
  const response = await fetchOk(url, fetcher);
  const bytes = await response.arrayBuffer();
  let json: ModelJsonShape;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes)) as ModelJsonShape;
  } catch {
    const type = response.headers.get('content-type') ?? 'no content type';
    throw new ServedWeightsMissingError(
      url,
      type.includes('html')
        ? 'the server answered with an HTML page, so the file is not there'
        : `the answer is not JSON (${type})`,
    );
  }
  if (
    json === null ||
    typeof json !== 'object' ||
    json.modelTopology == null ||
    !Array.isArray(json.weightsManifest)
  ) {
    throw new ServedWeightsMissingError(url, 'the file is not a TensorFlow.js layers model.json');
  }
  const paths = json.weightsManifest.flatMap((group) =>
    Array.isArray(group.paths) ? group.paths.filter((p): p is string => typeof p === 'string') : [],
  );
  const shards: FileLike[] = paths.map((path) => {
    const shardUrl = new URL(path, url).href;
    return {
      name: path,
      async arrayBuffer() {
        const shard = await fetchOk(shardUrl, fetcher);
        return shard.arrayBuffer();
      },
    };
  });
  return [{ name: 'model.json', arrayBuffer: () => Promise.resolve(bytes) }, ...shards];
}

/** Whether a usable model.json is served at `url` (the shards are not downloaded). */
export async function isModelServed(url: string, fetcher: Fetch = fetch): Promise<boolean> {
  try {
    await servedModelFiles(url, fetcher);
    return true;
  } catch (error) {
    if (error instanceof ServedWeightsMissingError) return false;
    throw error;
  }
}
