export { normalizeAnswer } from './answer.js';
export { CascadePlanner } from './cascade.js';
export type { CascadePlan, CallOutcome, CascadeOptions } from './cascade.js';
export { classifyRequest, classOfFeatures, extractFeatures } from './classifier.js';
export type { ClassifiableRequest, RequestFeatures } from './classifier.js';
export { chooseModel, computeWeights } from './decision.js';
export type {
  CandidateWeight,
  Choice,
  ClassWeights,
  ComputeWeightsInput,
  ModelClassStats,
  WeightTable,
} from './decision.js';
export {
  CandidateSchema,
  PolicyError,
  PolicySchema,
  loadPolicyFile,
  parsePolicy,
} from './policy.js';
export type { Candidate, Policy, PolicyInput } from './policy.js';
export { createRandom } from './random.js';
export type { RandomSource } from './random.js';
export {
  defaultReplayPolicy,
  engineRequestOf,
  labelledExamples,
  runReplay,
  scaledWarmup,
  seedPriors,
  twoModelMetrics,
} from './replay.js';
export { ROUTELLM_PRICES, loadRouteLlm, parseRouteLlmCsv, routeLlmTaskOf } from './routellm.js';
export { loadRecorded, loadRecordedFile, splitDataset } from './recorded.js';
export { RoutingEngine } from './engine.js';
export { nextChoice } from './candidate-choice.js';
export { isPlan, runPlan } from './plan-run.js';
export type { PlanCaller, PlanEnd } from './plan-run.js';
export { windowMs } from './window-stats.js';
export type {
  Decision,
  DecisionKind,
  EngineOptions,
  EngineOutcome,
  EngineRequest,
  LabelledExample,
  PredictedQuality,
  Step,
} from './engine.js';
export { cachedEmbedder, featurize, featurizeInputOf, hashText } from './features.js';
export type { Embedder, FeaturizeInput, RequestVector } from './features.js';
export { QualityPredictor } from './predictor.js';
export type { Prediction, PredictorOptions } from './predictor.js';
export { curveOf, pgrAt, routingMetrics, MARGIN_KNOBS, PENALTY_KNOBS } from './metrics.js';
export type { Curve, CurvePoint, MetricsOptions, RoutingMetrics } from './metrics.js';
export { parseJudgePrompt, parseMtBenchJsonl } from './mtbench.js';
export { isTrafficJsonl, parseTrafficJsonl } from './traffic.js';
export type {
  ReplayDecision,
  ReplayOptions,
  ReplayReport,
  StrategyResult,
  TwoModelMetrics,
} from './replay.js';
export {
  isRouterBenchCsv,
  loadRouterBench,
  mergeDatasets,
  parseCsv,
  parsePythonStringList,
  parseRouterBenchCsv,
} from './routerbench.js';
export type { RecordedDataset, RecordedPrompt } from './routerbench.js';
export { AllCandidatesFailedError, RouterConfigError, classifyError } from './route-errors.js';
export { createRouter } from './router-client.js';
export { SHADOW_EVALUATION_NAME, ShadowDispatcher } from './shadow-dispatch.js';
export { CandidateClients } from './candidate-call.js';
export type {
  AnthropicLike,
  OpenAILike,
  RouteAttempt,
  RouteRequestOptions,
  Router,
  RouterOptions,
  ShadowResult,
  ShadowStats,
} from './router-types.js';
export {
  ShadowMonitor,
  ShadowQueue,
  SpendWindow,
  interval95,
  pairwiseJudge,
  pairwisePrompt,
  referenceModelOf,
} from './shadow.js';
export type {
  PairwiseJudge,
  PairwiseJudgeOptions,
  ShadowEstimate,
  ShadowPair,
  ShadowVerdict,
} from './shadow.js';
export {
  fromAnthropicMessage,
  fromAnthropicStream,
  toAnthropicParams,
} from './anthropic-adapter.js';
export { StatsFetchError, collectorStatsSource, toModelClassStats } from './stats-source.js';
export type { CollectorStatsOptions, StatsSource } from './stats-source.js';
export { WeightUpdater } from './weight-updater.js';
export type { WeightUpdaterOptions } from './weight-updater.js';
