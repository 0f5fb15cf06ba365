/** ≈ 4 characters per token, at least 1 for non-empty text. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** Splits text into stream pieces of roughly one word (a few tokens) each. */
export function splitPieces(text: string): string[] {
  if (text === '') return [];
  return text.match(/\s*\S+|\s+$/g) ?? [text];
}

/** Splits tool-call arguments the way providers stream them: short fragments. */
export function splitArguments(text: string): string[] {
  const pieces: string[] = [];
  for (let index = 0; index < text.length; index += 12) pieces.push(text.slice(index, index + 12));
  return pieces;
}
