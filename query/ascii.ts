/** ASCII codes the byte-level export code (`tuple-format.ts`, `sealed-members.ts`) looks for. */
export const QUOTE = 0x22;
export const APOSTROPHE = 0x27;
export const COMMA = 0x2c;
export const BACKSLASH = 0x5c;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const LF = 0x0a;
export const CR = 0x0d;
