export { startLlmSim } from './server.js';
export type { LlmSim, LlmSimOptions } from './server.js';
export type { SimModelStats } from './model-registry.js';
export { DEFAULT_SIM_MODELS } from './models.js';
export type {
  SimFailure,
  SimLatency,
  SimModel,
  SimModelConfig,
  SimModelPatch,
  SimPrice,
  SimQuality,
} from './models.js';
export {
  TASK_DIFFICULTIES,
  TASK_KINDS,
  checkAnswer,
  generateTask,
  recognizeTask,
} from './tasks.js';
export type { GenerateTaskOptions, SimTask, TaskDifficulty, TaskKind } from './tasks.js';
export { REFUSAL_TEXT } from './engine.js';
export { estimateTokens } from './tokens.js';
export { parseDirectiveList } from './directives.js';
export type { Directives } from './directives.js';
export { embeddingOf } from './openai-embeddings.js';
export {
  DEFAULT_SIM_JUDGE,
  JUDGE_PROMPT_MARKER,
  answerIsCorrect,
  judgeVerdict,
  parseJudgePrompt,
} from './judge.js';
export type { JudgePrompt, SimJudgeConfig, SimVerdict } from './judge.js';
