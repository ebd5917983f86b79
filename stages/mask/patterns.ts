import { maskCardRun } from './card.js';
import { type MaskPattern, REDACTED } from './types.js';

/*
 * ReDoS invariant for every regex below: each can start only at a boundary (a lookbehind rejects
 * starts inside a run of the same characters) or at a literal, and every quantifier is either
 * bounded or followed by a character its class cannot contain, so each start position does
 * bounded or run-local work and a 64 KiB string is scanned in linear time.
 */

/** `scheme://user:password@host` → `scheme://user:[REDACTED]@host`. Before `email`, which would see `password@host`. */
const urlPassword: MaskPattern = {
  name: 'url-password',
  // The password runs to the last `@` before a `/` or whitespace, so an unencoded `@` in it is masked too.
  regex: /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^\s:@/]{0,256}:)[^\s/]{1,256}@/g,
  replace: (_match, prefix) => `${prefix}${REDACTED}@`,
  mayMatch: (text) => text.includes('://'),
};

/** `Bearer <token>` → `Bearer [REDACTED]` (scheme spelling kept). Before `jwt`, so a bearer JWT reads `Bearer [REDACTED]`. */
const bearer: MaskPattern = {
  name: 'bearer',
  regex: /\b(Bearer|bearer|BEARER)\s+[A-Za-z0-9\-._~+/]+=*/g,
  replace: (_match, scheme) => `${scheme} ${REDACTED}`,
  mayMatch: (text) => text.includes('earer') || text.includes('EARER'),
};

/** A JWT (three base64url segments, the header starting `eyJ`, i.e. `{"`) → `[JWT]`. An empty signature (`alg: none`) still counts. */
const jwt: MaskPattern = {
  name: 'jwt',
  regex: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  replace: () => '[JWT]',
  mayMatch: (text) => text.includes('eyJ'),
};

/** AWS access key ids (`AKIA` long-term, `ASIA` temporary, 20 characters) → `[AWS_KEY]`. */
const awsAccessKeyId: MaskPattern = {
  name: 'aws-access-key-id',
  regex: /(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])/g,
  replace: () => '[AWS_KEY]',
  mayMatch: (text) => text.includes('AKIA') || text.includes('ASIA'),
};

/**
 * `aws_secret_access_key=<secret>` (also `:`, quotes, `AWS_SECRET_ACCESS_KEY`, `awsSecretAccessKey`)
 * → `aws_secret_access_key=[REDACTED]`. A bare 40-character secret has no recognizable shape, so only
 * the labelled form is caught.
 */
const awsSecretAccessKey: MaskPattern = {
  name: 'aws-secret-access-key',
  regex: /(aws[_.-]?secret[_.-]?access[_.-]?key\\?["']?[ \t]*[:=][ \t]*\\?["']?)[A-Za-z0-9/+=]+/gi,
  replace: (_match, prefix) => `${prefix}${REDACTED}`,
  mayMatch: (text) => SECRET_WORD.test(text),
};
const SECRET_WORD = /secret/i;

/**
 * PEM private keys (`-----BEGIN RSA PRIVATE KEY-----` ... `-----END ...-----`) → `[PRIVATE_KEY]`.
 * The body is base64 without dashes, so `[^-]*` stops at the END line (or at the first dash of a
 * truncated key) and never rescans.
 */
const privateKey: MaskPattern = {
  name: 'private-key',
  regex: /-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[^-]*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?/g,
  replace: () => '[PRIVATE_KEY]',
  mayMatch: (text) => text.includes('PRIVATE KEY'),
};

/**
 * Luhn-valid card numbers → `[CARD ****1234]` (last four digits kept). The regex only finds runs of
 * 13+ digits separated by single spaces or dashes and not glued to letters or digits; `maskCardRun`
 * decides which part of the run, if any, is a card (see there).
 */
const creditCard: MaskPattern = {
  name: 'credit-card',
  regex: /(?<![A-Za-z0-9])\d(?:[ -]?\d){12,}(?![A-Za-z0-9])/g,
  replace: (match) => maskCardRun(match),
  // Every card window contains four consecutive digits (see maskCardRun).
  mayMatch: (text) => FOUR_DIGITS.test(text),
};
const FOUR_DIGITS = /\d{4}/;

/** `john.doe@example.com` → `j***@example.com`: first character of the local part and the domain kept. */
const email: MaskPattern = {
  name: 'email',
  regex:
    /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@((?:[A-Za-z0-9-]{1,63}\.){1,10}[A-Za-z]{2,63})/g,
  replace: (_match, first, domain) => `${first}***@${domain}`,
  mayMatch: (text) => text.includes('@'),
};

/** Built-in string patterns, in the order they are applied (the order matters, see each pattern). */
export const DEFAULT_PATTERNS: readonly MaskPattern[] = [
  urlPassword,
  bearer,
  jwt,
  awsAccessKeyId,
  awsSecretAccessKey,
  privateKey,
  creditCard,
  email,
];
