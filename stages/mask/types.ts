/**
 * Placeholder for a whole secret value. A fixed string (not a hash or a length-preserving mask)
 * so that nothing about the secret survives, and so that masking an already-masked event is a no-op.
 */
export const REDACTED = '[REDACTED]';

/** A rule applied to the text of every masked string (the `message` and every nested string value). */
export interface MaskPattern {
  /** Stable identifier, unique within a rule set; used in error messages. */
  name: string;
  /**
   * What to mask. `createMasker` compiles its own global copy, so the flags given here (with or
   * without `g`) and this object's `lastIndex` do not matter. Must be linear-time on 64 KiB inputs.
   */
  regex: RegExp;
  /**
   * Returns the replacement for one match; `groups` are the capture groups in order, `''` when a
   * group did not take part. Must be idempotent: its output must not be matched and changed again
   * by any pattern, otherwise masking twice differs from masking once.
   */
  replace: (match: string, ...groups: string[]) => string;
  /**
   * Optional cheap necessary condition (e.g. an `includes` of a literal the regex requires).
   * When it returns false the regex is skipped; it must never return false for a string the
   * pattern would change. Exists because most strings match nothing and the masker is on the
   * hot path.
   */
  mayMatch?: (text: string) => boolean;
}

/** The complete configuration of the masker. */
export interface MaskRules {
  /**
   * Secret key names, normalized: lowercase ASCII letters and digits only (`api_key`, `API-Key` and
   * `apiKey` all become `apikey`). A key of 4+ characters matches any object key whose normalized
   * form contains it; a key of 1–3 characters (`ssn`, `cvv`) must equal a whole word of the
   * object key (camelCase, `_`, `-`, `.` boundaries), because as a bare substring it would match
   * unrelated names (`className` contains `ssn`).
   */
  keys: string[];
  /** Applied in order to every masked string; see `MaskPattern`. */
  patterns: MaskPattern[];
}
