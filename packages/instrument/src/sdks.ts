import { instrumentAnthropic, uninstrumentAnthropic } from './instrument-anthropic.js';
import { instrumentOpenAI, uninstrumentOpenAI } from './instrument-openai.js';
import { SUPPORTED_SDK_RANGES, rangeText } from './sdk-versions.js';
import type { InstrumentConfig } from './types.js';

/**
 * One provider SDK this package instruments: its npm name, the versions supported, and how one
 * loaded copy (an ESM namespace or CJS exports) is patched and unpatched. Both ways in read this
 * table: the zero-code set-up (`register` / `auto`, our own module hooks) and
 * `ModelmaxxInstrumentation` (`InstrumentationBase`'s module definitions).
 */
export interface InstrumentedSdk {
  readonly packageName: string;
  /** The npm range, as in `peerDependencies` (`>=6.0.0 <8`). */
  readonly supportedVersions: string;
  instrument(moduleExports: unknown, config?: InstrumentConfig): boolean;
  uninstrument(moduleExports: unknown): boolean;
}

const PATCHERS: Record<string, Pick<InstrumentedSdk, 'instrument' | 'uninstrument'>> = {
  openai: { instrument: instrumentOpenAI, uninstrument: uninstrumentOpenAI },
  '@anthropic-ai/sdk': { instrument: instrumentAnthropic, uninstrument: uninstrumentAnthropic },
};

export const INSTRUMENTED_SDKS: readonly InstrumentedSdk[] = SUPPORTED_SDK_RANGES.flatMap(
  (range) => {
    const patcher = PATCHERS[range.packageName];
    return patcher === undefined
      ? []
      : [{ packageName: range.packageName, supportedVersions: rangeText(range), ...patcher }];
  },
);
