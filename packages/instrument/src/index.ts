export { instrumentOpenAI, uninstrumentOpenAI } from './instrument-openai.js';
export { instrumentAnthropic, uninstrumentAnthropic } from './instrument-anthropic.js';
export { observe } from './observe.js';
export { configureInstrumentation } from './config.js';
export { withLlmContext, withRouteAttributes } from './context.js';
export { feedback } from './feedback.js';
export { judge } from './judge.js';
export type {
  JudgeEvaluator,
  JudgeMode,
  JudgeOptions,
  JudgeSample,
  JudgeStats,
} from './judge-types.js';
export { REQUEST_OPTION_KEY } from './patch.js';
export type {
  ChatMessage,
  ContentKind,
  EvaluationResult,
  Evaluator,
  EvaluatorCall,
  FeedbackInput,
  InstrumentConfig,
  LlmContextAttributes,
  MessagePart,
  Redactor,
  TokenUsage,
  ToolCallSummary,
} from './types.js';
