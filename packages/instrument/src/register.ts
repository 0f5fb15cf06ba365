/**
 * `node --import @modelmaxx/instrument/register app.js`: the zero-code set-up of `auto`. As
 * it runs before the app's modules load, so it patches each copy of `openai` / `@anthropic-ai/sdk`
 * as the app loads it (Node >= 24; earlier, all copies at start-up, waiting for any copy that
 * can only be loaded with `import()`).
 */
import { setupInstrumentation } from './sdk-setup.js';

await setupInstrumentation({ patchOnLoad: true }).ready;
