/**
 * Compiles a `String.prototype.replace`-style template (`$1`..`$99`, `$&`, `$$`) into a function of
 * the match and its groups, validated against the regex's group count up front so that a bad rules
 * file fails at startup rather than producing odd output. `$<name>` and `` $` ``/`$'` are rejected:
 * the masker passes groups by position only, and text outside the match is not the pattern's to copy.
 */
export function compileTemplate(
  template: string,
  groupCount: number,
): (match: string, ...groups: string[]) => string {
  const parts: (string | number)[] = [];
  let literal = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '$' || i + 1 >= template.length) {
      literal += c;
      continue;
    }
    const next = template[i + 1]!;
    if (next === '$') {
      literal += '$';
      i++;
    } else if (next === '&') {
      parts.push(literal, 0);
      literal = '';
      i++;
    } else if (next >= '0' && next <= '9') {
      const two = template.slice(i + 1, i + 3);
      let ref: number;
      if (/^\d\d$/.test(two) && Number(two) >= 1 && Number(two) <= groupCount) {
        ref = Number(two);
        i += 2;
      } else {
        ref = Number(next);
        i++;
      }
      if (ref < 1 || ref > groupCount) {
        throw new Error(`replacement references $${ref} but the regex has ${groupCount} capture group(s)`);
      }
      parts.push(literal, ref);
      literal = '';
    } else if (next === '<' || next === '`' || next === "'") {
      throw new Error(`replacement token $${next} is not supported (use $&, $1..$99 or $$)`);
    } else {
      literal += c;
    }
  }
  parts.push(literal);
  if (parts.length === 1) {
    const constant = literal;
    return () => constant;
  }
  return (match, ...groups) => {
    let out = '';
    for (const part of parts) {
      out += typeof part === 'string' ? part : part === 0 ? match : (groups[part - 1] ?? '');
    }
    return out;
  };
}
