import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { SimModelConfig, SimModelPatch } from './models.js';
import { DEFAULT_SIM_MODELS, applyPatch, cloneModel } from './models.js';
import { startLlmSim } from './server.js';
import type { LlmSim, LlmSimOptions } from './server.js';

export const USAGE = `Usage: llm-sim [options]

Simulated OpenAI- and Anthropic-compatible LLM server.

Options:
  --port N             port to listen on (default 8787; 0 = any free port)
  --host H             host to bind (default 127.0.0.1)
  --seed N             seed for answers, ids, latency and failures (default 1)
  --latency-scale X    multiplier on model latencies (default 1; 0 = no delay)
  --failure-scale X    multiplier on random failure rates (default 1; 0 = none)
  --timeout-hold-ms N  how long a simulated timeout holds a request (default 30000)
  --models FILE        JSON array of model configs; entries named like a default model
                       are patches of it, other entries are new models
  -h, --help           show this help
`;

export interface CliResult {
  sim: LlmSim;
  options: LlmSimOptions;
}

/** Reads a models file: an array (or `{ models: [...] }`) of full configs or patches of defaults. */
export function loadModelsFile(path: string): SimModelConfig[] {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const list: unknown = Array.isArray(parsed)
    ? parsed
    : (parsed as { models?: unknown } | null)?.models;
  if (!Array.isArray(list))
    throw new TypeError(`${path}: expected an array of models or { "models": [...] }`);
  const template = DEFAULT_SIM_MODELS.find(
    (model) => model.name === 'gpt-4o-mini',
  ) as SimModelConfig;
  return list.map((entry: unknown, index) => {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof (entry as { name?: unknown }).name !== 'string'
    ) {
      throw new TypeError(`${path}: model #${index} needs a "name"`);
    }
    const config = entry as Partial<SimModelConfig> & { name: string };
    const base = DEFAULT_SIM_MODELS.find((model) => model.name === config.name);
    const start: SimModelConfig = base
      ? cloneModel(base)
      : {
          ...cloneModel(template),
          name: config.name,
          provider: config.provider ?? 'openai',
          kind: config.kind ?? 'chat',
        };
    if (!base) delete start.responseModel;
    if (config.kind !== undefined) start.kind = config.kind;
    return applyPatch(start, config as SimModelPatch);
  });
}

function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0)
    throw new TypeError(`--${name} must be a non-negative number`);
  return number;
}

export function parseCliArgs(argv: readonly string[]): LlmSimOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      'latency-scale': { type: 'string' },
      'failure-scale': { type: 'string' },
      'timeout-hold-ms': { type: 'string' },
      models: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const options: LlmSimOptions = {
    port: numberOption(values.port, 'port', 8787),
    host: values.host ?? '127.0.0.1',
    seed: numberOption(values.seed, 'seed', 1),
    latencyScale: numberOption(values['latency-scale'], 'latency-scale', 1),
    failureScale: numberOption(values['failure-scale'], 'failure-scale', 1),
    timeoutHoldMs: numberOption(values['timeout-hold-ms'], 'timeout-hold-ms', 30_000),
  };
  if (values.models !== undefined) options.models = loadModelsFile(values.models);
  return options;
}

export function describeSim(sim: LlmSim): string {
  const names = sim.models().map((model) => `${model.name} (${model.provider})`);
  return [
    `llm-sim listening on ${sim.url}`,
    `  OpenAI base URL:    ${sim.openaiBaseURL}`,
    `  Anthropic base URL: ${sim.anthropicBaseURL}`,
    `  models: ${names.join(', ')}`,
  ].join('\n');
}

/** Starts the simulator from command-line arguments; undefined when only help was printed. */
export async function runCli(
  argv: readonly string[],
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<CliResult | undefined> {
  const options = parseCliArgs(argv);
  if (options === 'help') {
    write(USAGE);
    return undefined;
  }
  const sim = await startLlmSim(options);
  write(describeSim(sim));
  return { sim, options };
}

/** Entry point of `bin/llm-sim.js`: runs until SIGINT/SIGTERM, then closes cleanly. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let result: CliResult | undefined;
  try {
    result = await runCli(argv);
  } catch (error) {
    process.stderr.write(`llm-sim: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  if (!result) return;
  const { sim } = result;
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    sim.close().then(
      () => process.stdout.write('llm-sim stopped\n'),
      (error: unknown) => {
        process.stderr.write(`llm-sim: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
