/**
 * `import '@modelmaxx/instrument/auto'` (ESM) or `require('@modelmaxx/instrument/auto')` (CJS), as
 * the app's first line: reads `OTEL_*` / `MODELMAXX_*`, patches the CJS and the ESM copy of
 * `openai` and `@anthropic-ai/sdk` resolved from the app, and exports spans over OTLP/HTTP unless
 * the app registers its own tracer provider before its first LLM call. No top-level await, so
 * CJS apps can `require()` it (Node >= 22.12).
 */
import { setupInstrumentation } from './sdk-setup.js';

setupInstrumentation();
