/**
 * The `usage` object llm-sim's chat completions must report, computed independently of the
 * simulator: about 4 characters a token for the prompt text, plus 3 per message and 3 for the
 * reply's priming; no cache, audio, reasoning or prediction tokens.
 */
export function expectedChatUsage(promptText: string, messages: number, completionTokens: number) {
  const promptTokens = Math.ceil(promptText.length / 4) + 3 * messages + 3;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}
