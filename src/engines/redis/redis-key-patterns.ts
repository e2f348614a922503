/**
 * Key names to key patterns: the variable parts of a key (ids, UUIDs, hashes, dates, tokens)
 * become `*`, so `user:42:cart` and `user:43:cart` are both `user:*:cart`. Pure and
 * deterministic; the rules are heuristics, chosen so that the usual naming schemes
 * (`object:id:field`, `prefix/id`, `{tag}:id`) collapse and plain words stay.
 */

const wildcard = '*';

// Whole-key replacements first: these contain separators (`-`, `:`) that splitting would break.
const uuid = /(?<![0-9A-Za-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9A-Za-z])/gi;
const isoDateTime =
  /(?<![0-9A-Za-z])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?![0-9A-Za-z])/g;

// What separates the parts of a key name; kept in the pattern as written.
const separators = /([:/|#,;={}\s]+)/;
// Inside one part, what separates words: `order_42`, `page-3`, `10.0.0.1`.
const wordSeparators = /([._-]+)/;

/** The pattern of one key name, e.g. `session:5f1c9a0e3b…` → `session:*`. */
export function keyPattern(key: string): string {
  const replaced = key.replace(uuid, wildcard).replace(isoDateTime, wildcard);
  return replaced
    .split(separators)
    .map((part, i) => (i % 2 === 1 ? part : partPattern(part)))
    .join('');
}

function partPattern(part: string): string {
  if (part === '' || part === wildcard) return part;
  if (isVariable(part) || isEmail(part) || isToken(part)) return wildcard;
  return part
    .split(wordSeparators)
    .map((word, i) => (i % 2 === 0 && isVariable(word) ? wildcard : word))
    .join('');
}

/** Numbers, and hex ids of 8+ characters that contain a digit (ObjectIds, hashes, short SHAs). */
function isVariable(word: string): boolean {
  return /^-?\d+$/.test(word) || (word.length >= 8 && /^[0-9a-f]+$/i.test(word) && /\d/.test(word));
}

/**
 * Long random-looking tokens (base64, base64url, nanoid…): 16+ characters mixing letters and
 * digits. With `_` or `-` inside, only mixed case counts, so `report_2024_q1_summary` (a
 * snake_case name) is split into words instead.
 */
function isToken(part: string): boolean {
  if (part.length < 16 || !/^[A-Za-z0-9+/=_-]+$/.test(part) || !/\d/.test(part) || !/[A-Za-z]/.test(part)) {
    return false;
  }
  return !/[_-]/.test(part) || (/[a-z]/.test(part) && /[A-Z]/.test(part));
}

function isEmail(part: string): boolean {
  return /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/.test(part);
}
