/**
 * Synthetic multiple-choice data for replay tests: a frontier model and two cheap ones, every
 * prompt's truth one of A-D, a wrong model answering a different letter each (so wrong cheap
 * models disagree).
 */
import { createRandom } from '../../src/random.js';
import type { RandomSource } from '../../src/random.js';
import type { RecordedDataset, RecordedPrompt } from '../../src/routerbench.js';

export const MODELS = ['frontier', 'cheap-a', 'cheap-b'];

/** One prompt's draw: its text, and whether the frontier and the cheap models are right. */
export interface PromptDraw {
  readonly text: string;
  readonly frontierRight: boolean;
  readonly cheapRight: boolean;
}

/** `count` prompts of task `qa`, each drawn by `draw` (then its truth) from a seeded source. */
export function syntheticDataset(
  count: number,
  seed: number,
  prefix: string,
  draw: (random: RandomSource, index: number) => PromptDraw,
): RecordedDataset {
  const random = createRandom(seed);
  const prompts: RecordedPrompt[] = [];
  for (let index = 0; index < count; index += 1) {
    const { text, frontierRight, cheapRight } = draw(random, index);
    const truth = 'ABCD'[Math.floor(random() * 4)]!;
    const wrong = (offset: number) => 'ABCD'[('ABCD'.indexOf(truth) + offset) % 4]!;
    prompts.push({
      sampleId: `${prefix}.${index}`,
      prompt: text,
      task: 'qa',
      scores: Float64Array.from([frontierRight ? 1 : 0, cheapRight ? 1 : 0, cheapRight ? 1 : 0]),
      costs: Float64Array.from([0.01, 0.0005, 0.0004]),
      responses: [
        frontierRight ? truth : wrong(1),
        cheapRight ? truth : wrong(2),
        cheapRight ? truth : wrong(3),
      ],
    });
  }
  return { models: MODELS, prompts, skipped: 0 };
}
