import { describe, expect, it } from 'vitest';
import { csvCell, csvRow } from './csv.js';

describe('csvCell (RFC 4180 + formula neutralization)', () => {
  it.each([
    ['plain text', 'hello', 'hello'],
    ['empty', '', ''],
    ['undefined', undefined, ''],
    ['null', null, ''],
    ['a comma', 'a,b', '"a,b"'],
    ['a quote', 'say "hi"', '"say ""hi"""'],
    ['CRLF', 'a\r\nb', '"a\r\nb"'],
    ['LF', 'a\nb', '"a\nb"'],
    ['a leading =', '=1+1', "'=1+1"],
    ['a leading +', '+33 1 23', "'+33 1 23"],
    ['a leading -', '-5', "'-5"],
    ['a leading @', '@SUM(A1)', "'@SUM(A1)"],
    ['a leading tab', '\tx', "'\tx"],
    ['a leading CR (also quoted)', '\rx', `"'\rx"`],
    ['a formula with a comma and quotes', '=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['= not at the start', 'a=b', 'a=b'],
    ['a leading space before =', ' =1', ' =1'],
    ['unicode', 'Zürich – 東京', 'Zürich – 東京'],
  ])('%s', (_name, input, expected) => {
    expect(csvCell(input)).toBe(expected);
  });

  it('joins a row with commas and ends it with CRLF', () => {
    expect(csvRow(['a', undefined, 'b,c', '=x'])).toBe(`a,,"b,c",'=x\r\n`);
  });
});
