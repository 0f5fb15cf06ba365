/**
 * `node --import @modelmaxx/instrument/register app.js`: the zero-code set-up of `auto`, and it
 * waits for any SDK copy that can only be loaded with `import()` before the app starts.
 */
import { setupInstrumentation } from './sdk-setup.js';

await setupInstrumentation().ready;
