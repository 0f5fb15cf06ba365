import { DEFAULT_SIM_MODELS } from './models.js';
import { startLlmSim } from './server.js';
import type { LlmSim } from './server.js';
import { describeSim } from './cli.js';

/**
 * `pnpm start` (for now): starts the simulator with realistic latency and failures on port 8787
 * (or any free port when it is taken), prints how to call it, and runs until Ctrl-C.
 */
async function demo(): Promise<void> {
  const port = Number(process.env['LLM_SIM_PORT'] ?? 8787);
  const options = { seed: 1, latencyScale: 1, failureScale: 1, models: DEFAULT_SIM_MODELS };
  let sim: LlmSim;
  try {
    sim = await startLlmSim({ ...options, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    sim = await startLlmSim({ ...options, port: 0 });
  }
  console.log(describeSim(sim));
  console.log(`
Try it:
  curl -s ${sim.openaiBaseURL}/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is 37 * 48?"}]}'

  curl -sN ${sim.anthropicBaseURL}/v1/messages -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \\
    -d '{"model":"claude-haiku-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Reverse the word \\"kaleidoscope\\"."}]}'

  OPENAI_BASE_URL=${sim.openaiBaseURL} OPENAI_API_KEY=sim node your-app.js

Press Ctrl-C to stop.`);
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void sim.close().then(() => console.log('llm-sim stopped'));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await demo();
