/**
 * Normalized answers, so a cascade can tell whether two models agree exactly as production
 * would: by comparing their answer texts. Returns undefined when no comparable answer is found.
 */
export function normalizeAnswer(response: string): string | undefined {
  const text = response.trim();
  if (text === '') return undefined;
  const choice =
    /^\(?([A-Ea-e])(?:\)|\.|:|\s|$)/.exec(text) ?? /\banswer(?: is)?:?\s*\(?([A-E])\b/.exec(text);
  if (choice) return choice[1]!.toUpperCase();
  const stated = /\b(?:answer|result) is:?\s*"?([-\w.,]+?)"?[.!]?$/i.exec(text);
  if (stated) return canonical(stated[1]!);
  const number = /^-?\d+(?:\.\d+)?$/.exec(text.replace(/[,$]/g, ''));
  if (number) return String(Number(number[0]));
  if (text.length <= 40 && !text.includes('\n')) return text.toLowerCase().replace(/[.!\s]+$/, '');
  return undefined;
}

function canonical(value: string): string {
  const number = Number(value.replace(/,/g, ''));
  return Number.isFinite(number) && value.trim() !== '' ? String(number) : value.toLowerCase();
}
