/**
 * A trainable Network from the backbone registry: the backbone (include_top=False) with its pretrained weights,
 * a head on its feature map (starting with global average pooling, so the feature cache can store pooled vectors),
 * Keras's preprocessing for that backbone, and its block structure for phase 2.
 */
import type * as tf from '@tensorflow/tfjs';
import { getBackbone, type BackboneId } from '../model/backbones/index.ts';
import { buildHead, useKerasBatchNormSemantics, type HeadConfig } from '../model/heads.ts';
import { preprocessInput } from '../model/preprocess.ts';
import { assignWeights, type NamedWeight } from '../model/weights/index.ts';
import type { Checkpoint } from './checkpoint.ts';
import { writeWeights } from './checkpoint.ts';
import { seedInitialWeights } from './seeding.ts';
import type { Network } from './loop.ts';

export interface NetworkSpec {
  backbone: BackboneId;
  inputSize: number;
  head: HeadConfig;
  /** Seeds the head's initial weights (the run's seed); without it they are drawn unseeded. */
  seed?: number;
}

/**
 * Builds the network on the current backend. `pretrained` (read once, kept as arrays) is assigned to the base by
 * layer and weight name; without it the base keeps its random initialisation.
 */
export function createNetwork(
  spec: NetworkSpec,
  pretrained?: { weights: readonly NamedWeight[]; label: string } | null,
): Network {
  const backbone = getBackbone(spec.backbone);
  const base = backbone.build(spec.inputSize);
  try {
    if (pretrained) assignWeights(base, pretrained.weights, pretrained.label);
    // tfjs draws a new layer's kernels unseeded: a random base is drawn again from the run's seed.
    else if (spec.seed !== undefined) seedInitialWeights(base, spec.seed);
    base.trainable = false;
    useKerasBatchNormSemantics(base);
    const featureShape = (base.outputs[0]!.shape as number[]).slice(1);
    const head = buildHead(featureShape, spec.head, { seed: spec.seed });
    return {
      base,
      head,
      inputSize: spec.inputSize,
      preprocess: (images: tf.Tensor4D) => preprocessInput(images, backbone.preprocessing),
      blocks: backbone,
    };
  } catch (error) {
    base.dispose();
    throw error;
  }
}

/** Frees the network's weights; safe on a backend whose device is gone. */
export function disposeNetwork(network: Network): void {
  for (const model of [network.base, network.head]) {
    try {
      model.dispose();
    } catch {
      // Already disposed, or its backend is lost: nothing left to free.
    }
  }
}

/**
 * Puts a saved checkpoint (e.g. the best epoch, from OPFS) into a network built with the same spec: each saved
 * weight goes to the head or base weight of that name. A name the network lacks is an error that names it.
 */
export function restoreCheckpoint(network: Network, checkpoint: Checkpoint): void {
  const byName = new Map([...network.base.weights, ...network.head.weights].map((w) => [w.originalName, w]));
  const targets = checkpoint.weights.map((w) => {
    const target = byName.get(w.name);
    if (!target) throw new Error(`checkpoint weight ${w.name} is not a weight of this network`);
    return target.read() as tf.Variable;
  });
  writeWeights(targets, checkpoint.weights);
}
