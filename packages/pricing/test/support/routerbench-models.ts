/** The 11 models of RouterBench (`../shared/data/routerbench`), in the data set's column order. */
export const ROUTERBENCH_MODELS = [
  'WizardLM/WizardLM-13B-V1.2',
  'claude-instant-v1',
  'claude-v1',
  'claude-v2',
  'gpt-3.5-turbo-1106',
  'gpt-4-1106-preview',
  'meta/code-llama-instruct-34b-chat',
  'meta/llama-2-70b-chat',
  'mistralai/mistral-7b-chat',
  'mistralai/mixtral-8x7b-chat',
  'zero-one-ai/Yi-34B-Chat',
];
