/**
 * Possible hidden duplicates (one lesion filed under two lesion ids): the search's pairs, the similarity threshold
 * above which pairs are kept together, and the pairs the user confirmed. The next training run's split keeps every
 * such pair in one split (`keptPairs`, sent as `split.together`).
 */
import type { DuplicatesReport } from '../worker/train-protocol.ts';
import type { TrainClient } from '../worker/train-client.ts';
import { TrainFailure } from '../worker/train-client.ts';
import type { ImageSize } from '../lib/data/types.ts';
import type { BackboneId } from '../lib/model/backbones/catalog.ts';
import type { WeightsSource } from '../worker/train-protocol.ts';

export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

function createDuplicates() {
  let report = $state.raw<DuplicatesReport | null>(null);
  let progress = $state.raw<{
    stage: 'features' | 'search';
    done: number;
    total: number;
    seconds: number;
  } | null>(null);
  let error = $state<string | null>(null);
  let working = $state(false);
  let threshold = $state(DEFAULT_DUPLICATE_THRESHOLD);
  let confirmed = $state.raw<ReadonlySet<string>>(new Set());
  let subscribed: TrainClient | null = null;

  return {
    get report() {
      return report;
    },
    get progress() {
      return progress;
    },
    get error() {
      return error;
    },
    get working() {
      return working;
    },
    get threshold() {
      return threshold;
    },
    set threshold(value: number) {
      threshold = value;
    },
    isConfirmed(a: string, b: string): boolean {
      return confirmed.has(pairKey(a, b));
    },
    setConfirmed(a: string, b: string, keep: boolean) {
      // A new set each time: the state is $state.raw, replaced rather than mutated.
      // eslint-disable-next-line svelte/prefer-svelte-reactivity
      const next = new Set(confirmed);
      if (keep) next.add(pairKey(a, b));
      else next.delete(pairKey(a, b));
      confirmed = next;
    },
    /** Pairs the next split keeps together: above the threshold, or confirmed. */
    keptPairs(): Array<[string, string]> {
      if (!report) return [];
      return report.pairs
        .filter((p) => p.similarity >= threshold || confirmed.has(pairKey(p.a, p.b)))
        .map((p) => [p.a, p.b]);
    },
    async find(
      trainer: TrainClient,
      options: { imageSize: ImageSize; backbone: BackboneId; weights: WeightsSource; top: number },
    ) {
      if (working) return;
      if (subscribed !== trainer) {
        subscribed = trainer;
        trainer.subscribe((event) => {
          if (event.type === 'duplicates-progress') progress = event;
        });
      }
      working = true;
      error = null;
      progress = null;
      try {
        report = await trainer.nearDuplicates(options);
        confirmed = new Set();
      } catch (e) {
        error = e instanceof TrainFailure ? e.error.message : e instanceof Error ? e.message : String(e);
      } finally {
        working = false;
        progress = null;
      }
    },
  };
}

export const duplicates = createDuplicates();
