/**
 * A prototype of `@modelmaxx/instrument`'s openai chat patch built on
 * `@opentelemetry/instrumentation`'s `InstrumentationBase`, for the instrument overhead bench
 * only (not shipped): one `InstrumentationNodeModuleDefinition` for `openai` with our supported
 * range, applied by the base class's require hook (require-in-the-middle) once `enable()` ran,
 * and `_wrap` / `_unwrap` (shimmer) around `Completions.prototype.create`. The wrapper is our own
 * span logic (`wrapCreate` with the chat adapter, as `instrumentOpenAI` installs it) fed with the
 * base class's tracer, so the bench compares the two ways of installing the same patch.
 */
import type { Tracer, TracerProvider } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
// Internal modules of the built package (its exports map offers only the public API).
import { openaiChatAdapter } from '../packages/instrument/dist/openai-chat.js';
import { wrapCreate } from '../packages/instrument/dist/patch.js';
import type { AnyFunction } from '../packages/instrument/dist/util.js';

/** The scope name of this prototype's spans (the bench counts spans per scope). */
export const PROTOTYPE_SCOPE = 'modelmaxx-instrumentation-base-prototype';

interface CompletionsPrototype {
  create: AnyFunction;
}

interface OpenAIExports {
  OpenAI?: { Chat?: { Completions?: { prototype: CompletionsPrototype } } };
}

function completionsPrototype(moduleExports: unknown): CompletionsPrototype | undefined {
  return (moduleExports as OpenAIExports | undefined)?.OpenAI?.Chat?.Completions?.prototype;
}

export class OpenAIChatInstrumentationPrototype extends InstrumentationBase {
  /** Our span logic resolves its tracer from a provider: this one hands out the base class's. */
  private readonly ownTracer: TracerProvider = { getTracer: (): Tracer => this.tracer };
  /** One config object for every call (our resolver caches by identity, as for `instrumentOpenAI`). */
  private readonly patchConfig = { tracerProvider: this.ownTracer };

  constructor(config: InstrumentationConfig = {}) {
    super(PROTOTYPE_SCOPE, '0.0.0', { enabled: false, ...config });
  }

  protected init(): InstrumentationNodeModuleDefinition[] {
    return [
      new InstrumentationNodeModuleDefinition(
        'openai',
        ['>=6.0.0 <8'],
        (moduleExports: unknown) => {
          const target = completionsPrototype(moduleExports);
          if (target !== undefined) {
            this._wrap(target, 'create', (original) =>
              wrapCreate(original, {
                adapter: openaiChatAdapter,
                config: () => this.patchConfig,
              }),
            );
          }
          return moduleExports;
        },
        (moduleExports: unknown) => {
          const target = completionsPrototype(moduleExports);
          if (target !== undefined) this._unwrap(target, 'create');
        },
      ),
    ];
  }
}
